-- purge.lua: retention. Deletes the trees of terminal root jobs that
-- finished before a cutoff, with every key they own, a bounded batch per
-- call, and the log search index of the minutes before the cutoff: the
-- entries it points at are past retention too (those of a job still
-- alive stay in its own log, but leave the search across jobs).
-- ARGV: prefix, cutoff_ms, max (jobs or set members visited per call)
-- Reply: {jobs deleted, work left (0/1)}.
-- A root is expired when it is finished or canceled and the minute of
-- its finished_at ended by the cutoff (retention's index is kept per
-- minute: a root goes up to a minute later than the cutoff alone says);
-- its descendants go with it (a child is never deleted while its root
-- lives, so counters stay true). The work list
-- P:purge holds "job:ID" entries (delete the job, queue its child sets)
-- and "set:KEY:CURSOR" entries (queue the members of a child set), so a
-- root with 100,000 children takes many calls, each bounded.

local cutoff = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local todo = P .. ':purge'
local deleted = 0
local found = 0

-- Finds expired roots when there is nothing left to do: the buckets of
-- retention's index (lib.lua ended_bucket) of the minutes wholly before
-- the cutoff, oldest first, at most MAX ids. Every id read is settled:
-- queued (its job expired), moved to the bucket of its job's true end,
-- or dropped (no such job, or not an ended root any more; fsck reports
-- how that came about). So a call costs what it finds, and nothing that
-- ended later can stand in front of what expired: the ids scanned
-- before, lowest first, let 500 old roots restarted and ended again
-- hide every later expired job. The minute the cutoff falls in waits
-- for a later cutoff: its roots that ended after the cutoff would be
-- read by every call and settled by none.
local searched = redis.call('LLEN', todo) == 0
if searched then
	local last = cutoff - N_MINUTE_MS
	local bs = redis.call('ZRANGEBYSCORE', P .. K_endd, '-inf', I(last),
		'LIMIT', 0, max)
	for _, b in ipairs(bs) do
		if found >= max then break end
		local ids = redis.call('SMEMBERS', P .. K_endb .. b)
		-- A directory entry without its bucket (fsck reports it).
		if #ids == 0 then redis.call('ZREM', P .. K_endd, b) end
		for i = 1, min(#ids, max - found) do
			local id = ids[i]
			local v = job_hmget(id, F_finished_at, F_parent)
			found = found + 1
			if not terminal(v[1]) or v[3] then
				bucket_later(ENDED, b, id, false)
			else
				if ended_bucket(id, v[2]) ~= b then
					bucket_later(ENDED, b, id, false)
					ended_later(id, v[2], true)
				end
				local at = num(v[2])
				if at - at % N_MINUTE_MS <= last then
					redis.call('RPUSH', todo, 'job\t' .. id .. '\t')
				end
			end
		end
	end
end

-- The log search index: minutes wholly before the cutoff.
local mins = redis.call('ZRANGEBYSCORE', P .. ':logix:minutes', '-inf',
	I(cutoff - 60000), 'LIMIT', 0, max)
for _, m in ipairs(mins) do
	redis.call('DEL', P .. ':logix:m:' .. m)
end
if #mins > 0 then redis.call('ZREM', P .. ':logix:minutes', unpack(mins)) end

local budget = max
while budget > 0 do
	local e = redis.call('LPOP', todo)
	if not e then break end
	local kind, a, b, c = string.match(e, '^(%a+)\t([^\t]*)\t([^\t]*)\t?(.*)$')
	if kind == 'job' then
		local id, scope = a, b
		local h = load_fields(id, {F_status, F_parent, F_root, F_system,
			F_run_by, F_key, F_restarts, F_finished_at})
		if h then
			local cls = class_of(h.parent, h.system)
			if running(h.status) then
				zset_later(LEASES, id, false)
			else
				ix_later(cls .. ':s:' .. h.status, id, false)
			end
			-- A descendant that a cancel's cascade has not reached yet
			-- (its operator died) may still wait in a ready queue.
			if h.status == S_PENDING then dequeue(h) end
			ix_later(cls .. ':t:' .. h.type, id, false)
			if h.run_by ~= '' then ix_later(cls .. ':u:' .. h.run_by, id, false) end
			-- Its key: a root's in the two windows that exist (a lookup
			-- would pass it over, but fsck would report it), a child's
			-- with its parent's P:ckeys (below).
			keys_conf()
			if h.key ~= '' and h.parent == '' then key_unmap(h.key, id) end
			if h.key ~= '' and KEYS_OLD then redis.call('DEL', P .. K_key .. scope .. h.key) end
			redis.call('DEL', P .. K_ckeys .. id)
			if h.parent == '' and terminal(h.status) then
				ended_later(id, h.finished_at, false)
			end
			count_add(h.status, -1)
			local ck = P .. K_children .. id
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
-- A full batch of either kind may have left more behind it, and a call
-- that worked through the list found nothing: the next one looks.
local more = found == max or #mins == max or not searched or
	redis.call('LLEN', todo) > 0
return {deleted, more and 1 or 0}
