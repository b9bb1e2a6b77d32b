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
	elseif h.status ~= 'finished' then
		r = refuse(h, 'restart', 'finished')
	elseif h.parent ~= '' then
		r = 'job ' .. id .. ' is a child of ' .. h.parent .. ': only root jobs restart'
	elseif h.restartable ~= '1' then
		r = 'job ' .. id .. ' (' .. h.type .. ') cannot be restarted: its type is not restartable'
	else
		local restarts = num(redis.call('HGET', jkey(id), 'restarts')) + 1
		local ck = P .. ':children:' .. id
		if redis.call('EXISTS', ck) == 1 then
			redis.call('RENAME', ck, ck .. ':run:' .. restarts)
		end
		redis.call('HDEL', jkey(id), 'checkpoint', 'started_at', 'finished_at',
			'with_errors', 'retry_count', 'inconsistent', 'instance',
			'claimed_at', 'charged')
		local f = {'restarts', restarts, 'progress', 0, 'errors', 0,
			'run_ms', 0, 'run_since', 0, 'queued_at', NOW, 'awaiting', 0,
			'not_before', 0, 'children_progress', 0}
		for _, c in ipairs({'total', 'pending', 'in_progress', 'stopping',
			'stopped', 'finished', 'canceled', 'errors'}) do
			f[#f + 1] = 'children_' .. c; f[#f + 1] = 0
		end
		h.not_before = 0
		h.children_total = 0
		set_status(h, 'pending', f)
		joblog(id, 'info', h.attempt, 'restarted by ' .. actor .. ' (restart ' .. restarts .. ')')
		r = 'ok pending'
	end
	out[#out + 1] = r
end
flush(nil)
return out
