-- restart.lua: runs finished root jobs of restartable types again.
-- ARGV: prefix, stats_ttl_ms, actor, id...
-- Reply: per id 'ok pending' (its status now) or the refusal.
-- Progress, checkpoint and errors are reset; the old children are
-- detached (their set is kept as P:children:ID:run:N for history until
-- retention removes the job).

local actor = ARGV[3]
local out = {}
for i = 4, #ARGV do
	local id = ARGV[i]
	local h = load(id)
	local r = nil
	if not h then
		r = 'job ' .. id .. ' not found'
	elseif h.status ~= S_FINISHED then
		r = refuse(h, 'restart', S_FINISHED)
	elseif h.parent ~= '' then
		r = 'job ' .. id .. ' is a child of ' .. h.parent .. ': only root jobs restart'
	elseif h.restartable ~= '1' then
		r = 'job ' .. id .. ' (' .. h.type .. ') cannot be restarted: its type is not restartable'
	else
		-- Its end, before the HDEL below: set_status takes the root
		-- out of the bucket of retention's index that this names.
		need(h, {F_finished_at})
		local restarts = num(redis.call('HGET', jkey(id), F_restarts)) + 1
		local ck = P .. K_children .. id
		if redis.call('EXISTS', ck) == 1 then
			redis.call('RENAME', ck, ck .. ':run:' .. restarts)
		end
		redis.call('HDEL', jkey(id), F_checkpoint, F_started_at, F_finished_at,
			F_with_errors, F_retry_count, F_inconsistent, F_instance,
			F_claimed_at, F_charged)
		local f = {F_restarts, restarts, F_progress, 0, F_errors, 0,
			F_run_ms, 0, F_run_since, 0, F_queued_at, NOW, F_awaiting, 0,
			F_not_before, 0, F_children_progress, 0}
		for _, c in ipairs({'total', S_PENDING, S_IN_PROGRESS, S_STOPPING,
			S_STOPPED, S_FINISHED, S_CANCELED, 'errors'}) do
			f[#f + 1] = 'children_' .. c; f[#f + 1] = 0
		end
		h.not_before = 0
		h.children_total = 0
		set_status(h, S_PENDING, f)
		joblog(id, 'info', h.attempt, 'restarted by ' .. actor .. ' (restart ' .. restarts .. ')')
		r = 'ok pending'
	end
	out[#out + 1] = r
end
flush(nil)
return out
