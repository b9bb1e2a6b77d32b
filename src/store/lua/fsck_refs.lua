-- fsck_refs.lua: checks (and with repair, drops) entries of the scheduling
-- structures that name no job or a job in another state: leases (running
-- jobs), the delayed set (pending jobs), the roots sets and their ready
-- queues (pending jobs of that root and priority), retention's index of
-- ended roots (its buckets and their directory), the minutes of the log search index (each listed
-- minute has its stream: one that expired or was deleted is dropped),
-- and the idempotency keys: each field of a key window's bucket
-- P:keys:START:B names a root job with that key (in that bucket), each of
-- P:ckeys:PARENT a child of PARENT with that key. fsck.lua checks the
-- other direction, from each job.
-- The lists of roots without children (alone, alone_low): a list with
-- entries has its member ALONE in its roots set (repair: added at the
-- floor), and in the roots set ALONE stands for a list with entries
-- (repair: dropped). Their stale entries (lib.lua alone_ok) are counted,
-- not reported: they cost a claim a try each, as they reach the head,
-- and removing one from the middle of a list (LREM) reads the whole list.
-- ARGV: prefix, structure (leases | delayed | roots | roots_low | alone |
--   alone_low | ended | logix:minutes | ix | keys), start
--   (rank; for ended, ix and keys a SCAN cursor), count, repair (0/1)
-- Reply: {next start (0 = done), fixed, {violation...}}, and for the
--   lists the stale entries read

local what, start, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local repair = ARGV[5] == '1'
local bad = {}
local fixed, removed = 0, 0
local key = P .. ':' .. what

-- The buckets of an index and their directory D (listing indexes,
-- retention's): an entry B names a bucket K that exists (else it goes),
-- and a bucket that exists is listed, scored SC.
local function names_bucket(d, b, k)
	if redis.call('EXISTS', k) == 1 then return true end
	bad[#bad + 1] = d .. ': ' .. b .. ': no such bucket'
	if repair then
		redis.call('ZREM', d, b)
		fixed = fixed + 1
	end
	return false
end
local function listed(d, b, sc)
	if redis.call('ZSCORE', d, b) then return end
	bad[#bad + 1] = d .. ': bucket ' .. b .. ' missing'
	if repair then
		redis.call('ZADD', d, sc, b)
		fixed = fixed + 1
	end
end
-- An index K of an earlier version, left after the backfill's STEP
-- moved it: the repair has the step run again.
local function left_behind(k, step)
	bad[#bad + 1] = k .. ': an index of an earlier version, left ' ..
		'after the backfill moved it'
	if repair then
		redis.call('HDEL', P .. ':backfill', step)
		fixed = fixed + 1
	end
end

-- The listing indexes (lib.lua index_names), by a SCAN over P:ix*
-- (START is its cursor): each directory P:ixd:NAME lists exactly the
-- buckets P:ixb:NAME:BUCKET that exist, and each bucket holds only ids
-- of its range whose job belongs in NAME. An index of an earlier
-- version (P:ix:NAME) left after the backfill moved them is reported,
-- and the repair has the backfill run that step again.
if what == 'ix' then
	local r = redis.call('SCAN', ARGV[3], 'MATCH', prefix_match(':ix*'), 'COUNT', count)
	local moved = redis.call('HGET', P .. ':backfill', 'ix') == 'done'
	local dirs, buckets = P .. K_ixd, P .. K_ixb
	for _, k in ipairs(r[2]) do
		if string.sub(k, 1, #dirs) == dirs then
			local name = string.sub(k, #dirs + 1)
			for _, b in ipairs(redis.call('ZRANGE', k, 0, -1)) do
				names_bucket(k, b, buckets .. name .. ':' .. b)
			end
		elseif string.sub(k, 1, #buckets) == buckets then
			local name, b = string.match(string.sub(k, #buckets + 1), '^(.*):(%d+)$')
			local dk = dirs .. (name or '')
			local ids = redis.pcall('SMEMBERS', k)
			if not name or ids.err then
				bad[#bad + 1] = k .. ': not an index bucket'
			else
				listed(dk, b, b)
				for _, id in ipairs(ids) do
					local v = job_hmget(id, F_type,
						F_run_by, F_parent, F_system)
					local ok = false
					if v[1] and floor(tonumber(id) / IXW) == tonumber(b) then
						local st = running(v[1]) and '' or v[1]
						for _, n in ipairs(index_names(class_of(v[4] or '', v[5] or '0'),
							st, v[2] or '', v[3] or '')) do
							if n == name then ok = true end
						end
					end
					if not ok then
						bad[#bad + 1] = k .. ': ' .. id .. ': ' .. (v[1] and
							'job is not of this index' or 'no such job')
						if repair then
							ix_later(name, id, false)
							fixed = fixed + 1
						end
					end
				end
			end
		elseif moved and string.sub(k, 1, #P + #K_ix) == P .. K_ix then
			left_behind(k, 'ix')
		end
	end
	flush(nil)
	return {tonumber(r[1]), fixed, bad}
end

-- Retention's index (lib.lua ended_bucket), by a SCAN over P:end* (START
-- is its cursor): the directory P:endd lists exactly the buckets
-- P:endb:MINUTE:N that exist, each scored MINUTE, and each bucket holds
-- only roots that ended (finished or canceled) in its minute, of its id
-- range; fsck.lua checks that every ended root is in its bucket. The
-- sorted set of module revisions up to r9 (P:ended) left after the
-- backfill moved it is reported, and the repair has the backfill run
-- that step again.
if what == 'ended' then
	local r = redis.call('SCAN', ARGV[3], 'MATCH',
		prefix_match(':end*'), 'COUNT', count)
	local dir, buckets = P .. K_endd, P .. K_endb
	local moved = redis.call('HGET', P .. ':backfill', 'endb') == 'done'
	for _, k in ipairs(r[2]) do
		if k == dir then
			local v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
			for i = 1, #v, 2 do
				local b, sc = v[i], v[i + 1]
				local m = string.match(b, '^(%d+):%d+$')
				if not m then
					bad[#bad + 1] = k .. ': ' .. b .. ': not a bucket of the ended index'
					if repair then
						redis.call('ZREM', k, b)
						fixed = fixed + 1
					end
				elseif names_bucket(k, b, buckets .. b) and num(sc) ~= num(m) then
					bad[#bad + 1] = k .. ': ' .. b .. ': scored ' .. sc
					if repair then
						redis.call('ZADD', k, m, b)
						fixed = fixed + 1
					end
				end
			end
		elseif string.sub(k, 1, #buckets) == buckets then
			local b = string.sub(k, #buckets + 1)
			local m = string.match(b, '^(%d+):%d+$')
			local ids = redis.pcall('SMEMBERS', k)
			if not m or ids.err then
				bad[#bad + 1] = k .. ': not a bucket of the ended index'
			else
				listed(dir, b, m)
				for _, id in ipairs(ids) do
					local v = job_hmget(id,
						F_finished_at, F_parent)
					if not terminal(v[1]) or v[3] or ended_bucket(id, v[2]) ~= b then
						bad[#bad + 1] = k .. ': ' .. id .. ': ' .. (not v[1] and
							'no such job' or v[3] and 'a child' or
							not terminal(v[1]) and 'job is ' .. v[1] or
							'job ended at ' .. v[2])
						if repair then
							bucket_later(ENDED, b, id, false)
							fixed = fixed + 1
						end
					end
				end
			end
		elseif moved and k == P .. K_ended then
			left_behind(k, 'endb')
		end
	end
	flush(nil)
	return {tonumber(r[1]), fixed, bad}
end

-- The keys: one SCAN step of COUNT over both kinds of hash.
if what == 'keys' then
	local function hdrop(k, f, msg)
		bad[#bad + 1] = k .. ': ' .. f .. ': ' .. msg
		if repair then
			redis.call('HDEL', k, f)
			fixed = fixed + 1
		end
	end
	local r = redis.call('SCAN', ARGV[3], 'MATCH',
		prefix_match(':*keys:*'), 'COUNT', count)
	local roots, kids = P .. K_keys, P .. K_ckeys
	for _, k in ipairs(r[2]) do
		local b = string.match(string.sub(k, #roots + 1), '^%d+:(%d+)$')
		local parent = string.match(string.sub(k, #kids + 1), '^(%d+)$')
		if string.sub(k, 1, #roots) ~= roots then b = nil end
		if string.sub(k, 1, #kids) ~= kids then parent = nil end
		local v = (b or parent) and redis.call('HGETALL', k) or {}
		for i = 1, #v, 2 do
			local f, id = v[i], v[i + 1]
			local j = redis.call('HMGET', jkey(id), F_key, F_parent)
			if not j[1] then
				hdrop(k, f, 'job ' .. id .. ' is gone or has no key')
			elseif b then
				local want, wb = key_slot(j[1])
				if j[2] or want ~= f or I(wb) ~= b then
					hdrop(k, f, 'job ' .. id .. ' is not a root with this key')
				end
			elseif j[2] ~= parent or (f ~= j[1] and
				string.match(f, '^%d+/(.*)$') ~= j[1]) then
				hdrop(k, f, 'job ' .. id .. ' is not a child with this key')
			end
		end
	end
	return {r[1], fixed, bad}
end

if what == 'alone' or what == 'alone_low' then
	local low = what == 'alone_low' and '1' or '0'
	local rk = roots_key(low)
	if start == 0 and redis.call('EXISTS', key) == 1 and
		not redis.call('ZSCORE', rk, ALONE) then
		bad[#bad + 1] = key .. ': not in ' .. rk .. ' (no member ' .. ALONE ..
			'): its roots wait for no claim'
		if repair then
			redis.call('ZADD', rk, I(vr_floor(low)), ALONE)
			fixed = fixed + 1
		end
	end
	local ids = redis.call('LRANGE', key, start, start + count - 1)
	local stale = 0
	for _, id in ipairs(ids) do
		if not alone_ok(load_fields(id, {F_status, F_low_priority,
			F_children_total, F_not_before, F_type}), low) then
			stale = stale + 1
		end
	end
	return {#ids == count and start + count or 0, fixed, bad, stale}
end

local members = redis.call('ZRANGE', key, start, start + count - 1)

local function drop(k, m, msg)
	bad[#bad + 1] = k .. ': ' .. m .. ': ' .. msg
	if repair then
		redis.call('ZREM', k, m)
		fixed = fixed + 1
		if k == key then removed = removed + 1 end
	end
end

-- Status, low_priority and root of job ID (a root job stores no root).
local function status_of(id)
	local v = job_hmget(id, F_low_priority, F_root)
	if v[1] and not v[3] then v[3] = id end
	return v
end

local low = what == 'roots_low' and '1' or '0'
for _, m in ipairs(members) do
	if what == 'leases' then
		local v = status_of(m)
		if not v[1] then drop(key, m, 'no such job')
		elseif not running(v[1]) then drop(key, m, 'job is ' .. v[1]) end
	elseif what == 'delayed' then
		local v = status_of(m)
		if v[1] ~= S_PENDING then drop(key, m, 'job is ' .. (v[1] or 'gone')) end
	elseif what == 'logix:minutes' then
		if redis.call('EXISTS', P .. ':logix:m:' .. m) == 0 then
			drop(key, m, 'no index stream')
		end
	elseif m == ALONE then
		if redis.call('EXISTS', alone_key(low)) == 0 then
			drop(key, m, 'stands for ' .. alone_key(low) .. ', which is empty')
		end
	elseif string.byte(m) == 61 then
		local id = string.sub(m, 2)
		local v = status_of(id)
		if v[1] ~= S_PENDING or (v[2] == '1' and '1' or '0') ~= low or v[3] ~= id then
			drop(key, m, 'not a pending root of this priority')
		end
	else
		local rq = ready_key(m, low)
		local ids = redis.call('ZRANGE', rq, 0, 9999)
		if #ids == 0 then drop(key, m, 'root without ready jobs') end
		for _, id in ipairs(ids) do
			local v = status_of(id)
			if v[1] ~= S_PENDING or (v[2] == '1' and '1' or '0') ~= low or v[3] ~= m then
				drop(rq, id, 'not a pending job of root ' .. m .. ' at this priority')
			end
		end
		if repair and #ids > 0 and redis.call('EXISTS', rq) == 0 then
			redis.call('ZREM', key, m)
			removed = removed + 1
		end
	end
end
local next_start = 0
if #members == count then next_start = start + count - removed end
return {next_start, fixed, bad}
