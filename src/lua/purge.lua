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
					redis.call('RPUSH', todo, 'job:' .. id)
				end
			end
		end
	end
end

local budget = max
while budget > 0 do
	local e = redis.call('LPOP', todo)
	if not e then break end
	if string.sub(e, 1, 4) == 'job:' then
		local id = string.sub(e, 5)
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
			if h.key ~= '' then
				redis.call('DEL', P .. ':key:' .. (h.parent ~= '' and (h.parent .. '/') or '') .. h.key)
			end
			count_add(h.status, -1)
			redis.call('RPUSH', todo, 'set:' .. P .. ':children:' .. id .. ':0')
			for n = 1, num(h.restarts) do
				redis.call('RPUSH', todo, 'set:' .. P .. ':children:' .. id .. ':run:' .. n .. ':0')
			end
			redis.call('DEL', jkey(id), P .. ':log:' .. id)
			deleted = deleted + 1
		end
		budget = budget - 1
	else
		-- "set:KEY:CURSOR": queue up to BUDGET members above CURSOR.
		local sep = string.find(e, ':[^:]*$')
		local key, cursor = string.sub(e, 5, sep - 1), string.sub(e, sep + 1)
		local ids = redis.call('ZRANGEBYSCORE', key, '(' .. cursor, '+inf', 'LIMIT', 0, budget)
		for _, id in ipairs(ids) do redis.call('RPUSH', todo, 'job:' .. id) end
		if #ids == budget then
			redis.call('LPUSH', todo, 'set:' .. key .. ':' .. ids[#ids])
		else
			redis.call('DEL', key)
		end
		budget = budget - #ids - 1
	end
end
flush(nil)
return {deleted, redis.call('LLEN', todo) > 0 and 1 or 0}
