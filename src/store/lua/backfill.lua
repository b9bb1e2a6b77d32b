-- backfill.lua: builds the indexes that an earlier version of jobd did
-- not write, from what it left, a bounded batch per call. jobd's cleanup
-- job calls it until it is done (src/handlers/cleanup.c), before it purges.
-- ARGV: prefix, max (ids or minutes visited per call)
-- Reply: {work left (0/1), ended roots indexed, log minutes converted,
--   keys moved}
-- Progress lives in the hash P:backfill, so any process may continue
-- where another stopped:
--   ix     CURSOR (of a SCAN over P:ix:*) or "done": the listing indexes
--          of module revisions up to r9, one sorted set per index
--          (P:ix:NAME, score = id), move into this version's buckets
--          (lib.lua index_names: P:ixb:NAME:BUCKET and P:ixd:NAME), at
--          most MAX ids a call. Each id is checked against its job hash:
--          the transitions of this version write only the buckets, so an
--          old entry may be stale (the job moved on, or is gone) and is
--          dropped. Each old set is deleted as it empties. Until this step
--          is done, listings read the old sets too (lib.lua ix_legacy).
--   ended  "K:ID" (the K-th terminal root index, done up to id ID) or
--          "done": retention's index (lib.lua ended_bucket: the buckets
--          P:endb:MINUTE:N and their directory P:endd) gets every root
--          job that is finished or canceled, in the bucket of its
--          finished_at, for a store of a version before module revision
--          r7, which kept no such index. Jobs ending meanwhile are
--          indexed by the transitions themselves.
--   endb   "done" once retention's index of module revisions r7 to r9,
--          the sorted set P:ended (score = finished_at), is moved into
--          the buckets: at most MAX ids a call, lowest score first, each
--          checked against its job hash (a root restarted since, or
--          gone, is dropped; one that ended again is in the bucket of
--          its new end), the old set deleted as it empties. Retention
--          runs after the backfill (src/handlers/cleanup.c), so it reads
--          only the buckets; until this is done, fsck takes a root in
--          P:ended for indexed.
--   logs   MINUTE (the next minute to look at) or "done": the log search
--          sets of an earlier version, P:logmin:MINUTE (ids of the jobs
--          that logged in that minute, kept 30 days), become the index
--          streams P:logix:m:MINUTE, one minute per call, and are
--          deleted. A minute in which this version logged already is
--          rebuilt with both, in time order; only past minutes are
--          converted (the current one may still be written).
--   keys   a SCAN cursor or "done": the idempotency keys of an earlier
--          version, strings P:key:KEY (a root's), P:key:PARENT/KEY and
--          P:key:PARENT/N/KEY (a child's), move into this version's
--          layout (docs/redis-keys.md, "Idempotency keys"): a root's
--          into the current window (so a duplicate within key_window of
--          the move is still found), a child's into P:ckeys:PARENT. A
--          mapping whose job is gone, or has another key, is dropped.
--          Until this is done, create.lua and the module read P:key:*
--          too.
-- Delete P:backfill to run it again: every step can be repeated.

local batch = tonumber(ARGV[2])
local state = P .. ':backfill'
local SOURCES = {'ru:s:finished', 'ru:s:canceled', 'rs:s:finished', 'rs:s:canceled'}
local LEGACY_MS = 2592000000 + 60000 -- what the earlier sets lived
local indexed, converted, moved = 0, 0, 0

-- Moves up to BUDGET ids of the old index K into the buckets; returns
-- how many it took out of K.
local function move_index(k, budget)
	local name = string.sub(k, #P + #K_ix + 1)
	local ids = redis.pcall('ZRANGE', k, 0, budget - 1)
	-- Not a sorted set: not an index of jobd's, left alone.
	if ids.err then return 0 end
	for _, id in ipairs(ids) do
		local v = job_hmget(id, F_type, F_run_by,
			F_parent, F_system)
		if v[1] then
			-- A running job has no status index (an empty status names
			-- none), whatever an older version wrote.
			local st = running(v[1]) and '' or v[1]
			for _, n in ipairs(index_names(class_of(v[4] or '', v[5] or '0'),
				st, v[2] or '', v[3] or '')) do
				if n == name then ix_later(n, id, true) end
			end
		end
	end
	for i = 1, #ids, 2000 do
		redis.call('ZREM', k, unpack(ids, i, min(i + 1999, #ids)))
	end
	return #ids
end

local function ix_step()
	local at = redis.call('HGET', state, 'ix') or '0'
	if at == 'done' then return true end
	local budget = batch
	for _ = 1, 10 do
		local r = redis.call('SCAN', at, 'MATCH', prefix_match(K_ix .. '*'), 'COUNT', 100)
		local whole = true
		for _, k in ipairs(r[2]) do
			if budget <= 0 then
				whole = false
				break
			end
			local n = move_index(k, budget)
			budget = budget - n
			if n > 0 and redis.call('EXISTS', k) == 1 then whole = false end
		end
		-- A SCAN batch is passed once its sets are all moved: the next
		-- call scans it again, and finds only what is left of it.
		if not whole then break end
		at = r[1]
		if at == '0' then
			redis.call('HSET', state, 'ix', 'done')
			return true
		end
		if budget <= 0 then break end
	end
	redis.call('HSET', state, 'ix', at)
	return false
end

-- Each of IDS that is an ended root into retention's index, in the
-- bucket of its finished_at.
local function index_ended(ids)
	for _, id in ipairs(ids) do
		local v = job_hmget(id, F_finished_at, F_parent)
		if terminal(v[1]) and not v[3] then
			ended_later(id, v[2], true)
			indexed = indexed + 1
		end
	end
end

local function ended_step()
	local at = redis.call('HGET', state, 'ended') or '1:0'
	if at == 'done' then return true end
	local k, last = string.match(at, '^(%d+):(%d+)$')
	k, last = tonumber(k) or 1, tonumber(last) or 0
	local ids, more = ix_read(SOURCES[k], last > 0 and last or nil, true, batch)
	if #ids > batch then
		for i = #ids, batch + 1, -1 do ids[i] = nil end
		more = true
	end
	index_ended(ids)
	if more and #ids > 0 then
		redis.call('HSET', state, 'ended', k .. ':' .. I(ids[#ids]))
	elseif k < #SOURCES then
		redis.call('HSET', state, 'ended', (k + 1) .. ':0')
	else
		redis.call('HSET', state, 'ended', 'done')
		return true
	end
	return false
end

local function endb_step()
	if redis.call('HGET', state, 'endb') == 'done' then return true end
	local old = P .. K_ended
	local ids = redis.pcall('ZRANGE', old, 0, batch - 1)
	-- Not a sorted set: not an index of jobd's, left alone.
	if ids.err then ids = {} end
	index_ended(ids)
	for i = 1, #ids, 2000 do
		redis.call('ZREM', old, unpack(ids, i, min(i + 1999, #ids)))
	end
	if #ids == batch then return false end
	redis.call('HSET', state, 'endb', 'done')
	return true
end

-- Stream ids "MS-SEQ" as two numbers.
local function sid_parts(s)
	local ms, seq = string.match(s, '^(%d+)-(%d+)$')
	return tonumber(ms) or 0, tonumber(seq) or 0
end

-- The index stream of minute M from the set of an earlier version and
-- what this version wrote into it already.
local function convert(m)
	local old = P .. ':logmin:' .. I(m)
	local mk = P .. ':logix:m:' .. I(m)
	local have, ents = {}, {}
	for _, e in ipairs(redis.call('XRANGE', mk, '-', '+')) do
		local f = e[2]
		local job, sid = f[2], f[4]
		have[job .. '/' .. sid] = true
		ents[#ents + 1] = {job, sid, sid_parts(sid)}
	end
	for _, id in ipairs(redis.call('SMEMBERS', old)) do
		for _, x in ipairs(redis.call('XRANGE', P .. ':log:' .. id, I(m), I(m + 59999))) do
			if not have[id .. '/' .. x[1]] then
				ents[#ents + 1] = {id, x[1], sid_parts(x[1])}
			end
		end
	end
	table.sort(ents, function(a, b)
		if a[3] ~= b[3] then return a[3] < b[3] end
		if a[4] ~= b[4] then return a[4] < b[4] end
		return tonumber(a[1]) < tonumber(b[1])
	end)
	redis.call('DEL', mk, old)
	local lms, lseq = -1, 0
	for _, e in ipairs(ents) do
		local ms = max(e[3], m)
		if ms <= lms then lseq = lseq + 1 else lms, lseq = ms, 0 end
		redis.call('XADD', mk, I(lms) .. '-' .. I(lseq), 'job', e[1], 'sid', e[2])
	end
	if #ents > 0 then
		redis.call('PEXPIREAT', mk, I(m + 60000 + LOGIX_TTL))
		redis.call('ZADD', P .. ':logix:minutes', I(m), I(m))
	end
end

local function logs_step()
	local at = redis.call('HGET', state, 'logs')
	if at == 'done' then return true end
	local m = tonumber(at or '')
	if not m then m = MINUTE - LEGACY_MS - (MINUTE - LEGACY_MS) % 60000 end
	local seen = 0
	while m < MINUTE and seen < batch do
		seen = seen + 1
		if redis.call('EXISTS', P .. ':logmin:' .. I(m)) == 1 then
			convert(m)
			converted = converted + 1
			m = m + 60000
			break
		end
		m = m + 60000
	end
	if m >= MINUTE then
		redis.call('HSET', state, 'logs', 'done')
		return true
	end
	redis.call('HSET', state, 'logs', I(m))
	return false
end

-- The earlier layout's mapping K (text after P:key: NAME) of job ID,
-- into this layout.
local function move_key(k, name, id)
	local v = redis.call('HMGET', jkey(id), F_key, F_parent)
	local key, parent = v[1], v[2]
	if key and not parent and name == key then
		key_map(key, id)
		moved = moved + 1
	elseif key and parent and string.sub(name, 1, #parent + 1) == parent .. '/' then
		-- The field is what follows the parent's id: KEY or N/KEY.
		local field = string.sub(name, #parent + 2)
		if field == key or string.match(field, '^%d+/(.*)$') == key then
			redis.call('HSETNX', P .. K_ckeys .. parent, field, id)
			moved = moved + 1
		end
	end
	redis.call('DEL', k)
end

local function keys_step()
	local at = redis.call('HGET', state, 'keys')
	if at == 'done' then return true end
	local base = P .. K_key
	local r = redis.call('SCAN', at or '0', 'MATCH',
		prefix_match(K_key .. '*'), 'COUNT', batch)
	for _, k in ipairs(r[2]) do
		local id = redis.pcall('GET', k)
		if type(id) == 'string' then move_key(k, string.sub(k, #base + 1), id) end
	end
	if r[1] == '0' then
		redis.call('HSET', state, 'keys', 'done')
		return true
	end
	redis.call('HSET', state, 'keys', r[1])
	return false
end

local more = 1
-- The ended step reads the buckets the ix step wrote.
local ix_done = ix_step()
ix_flush()
if ix_done and ended_step() and endb_step() and logs_step() and keys_step() then
	more = 0
end
flush(nil)
return {more, indexed, converted, moved}
