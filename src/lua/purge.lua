-- purge.lua: retention. Deletes the trees of terminal root jobs that
-- finished before a cutoff, with every key they own, a bounded batch per
-- call.
-- ARGV: prefix, cutoff_ms, max (jobs or set members visited per call)
-- Reply: {jobs deleted, work left (0/1)}.
-- A root is expired when it is finished or canceled and its finished_at
-- is before the cutoff; its descendants go with it (a child is never
-- deleted while its root lives, so counters stay true). The work list
-- P:purge holds "job:ID" entries (delete the job, queue its child sets)
-- and "set:KEY:CURSOR" entries (queue the members of a child set), so a
-- root with 100,000 children takes many calls, each bounded.

local cutoff = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local todo = P .. ':purge'
local deleted = 0

-- Finds expired roots when there is nothing left to do. The terminal
-- indexes are read from the oldest id; a job created after the cutoff
-- cannot have finished before it, which bounds the scan.
if redis.call('LLEN', todo) == 0 then
	for _, cls in ipairs({'ru', 'rs'}) do
		for _, st in ipairs({'finished', 'canceled'}) do
			local ids = redis.call('ZRANGE', P .. ':ix:' .. cls .. ':s:' .. st, 0, max - 1)
			for _, id in ipairs(ids) do
				local v = redis.call('HMGET', jkey(id), 'finished_at', 'created_at')
				if num(v[2]) >= cutoff then break end
				if v[1] and num(v[1]) < cutoff then
					redis.call('RPUSH', todo, 'job\t' .. id .. '\t')
				end
			end
		end
	end
end

local budget = max
while budget > 0 do
	local e = redis.call('LPOP', todo)
	if not e then break end
	local kind, a, b, c = string.match(e, '^(%a+)\t([^\t]*)\t([^\t]*)\t?(.*)$')
	if kind == 'job' then
		local id, scope = a, b
		local h = load_fields(id, {'status', 'parent', 'type', 'system',
			'run_by', 'key', 'restarts'})
		if h then
			local base = P .. ':ix:' .. class_of(h.parent, h.system)
			if running(h.status) then
				zset_later(P .. ':leases', id, false)
			else
				zset_later(base .. ':s:' .. h.status, id, false)
			end
			zset_later(base .. ':t:' .. h.type, id, false)
			if h.run_by ~= '' then zset_later(base .. ':u:' .. h.run_by, id, false) end
			if h.key ~= '' then redis.call('DEL', P .. ':key:' .. scope .. h.key) end
			count_add(h.status, -1)
			local ck = P .. ':children:' .. id
			redis.call('RPUSH', todo, 'set\t' .. ck .. '\t0\t' ..
				child_scope(id, h.restarts))
			for n = 1, num(h.restarts) do
				redis.call('RPUSH', todo, 'set\t' .. ck .. ':run:' .. n ..
					'\t0\t' .. child_scope(id, n - 1))
			end
			redis.call('DEL', jkey(id), P .. ':log:' .. id)
			deleted = deleted + 1
		end
		budget = budget - 1
	else
		-- A child set: queue up to BUDGET members above the cursor.
		local key, cursor, scope = a, b, c
		local ids = redis.call('ZRANGEBYSCORE', key, '(' .. cursor, '+inf', 'LIMIT', 0, budget)
		for _, id in ipairs(ids) do
			redis.call('RPUSH', todo, 'job\t' .. id .. '\t' .. scope)
		end
		if #ids == budget then
			redis.call('LPUSH', todo, 'set\t' .. key .. '\t' .. ids[#ids] .. '\t' .. scope)
		else
			redis.call('DEL', key)
		end
		budget = budget - #ids - 1
	end
end
flush(nil)
return {deleted, redis.call('LLEN', todo) > 0 and 1 or 0}
