-- lib.lua: the start of the jobd function library. build-aux/lua2c.sh
-- appends every script of src/store/lua/ as a function of the library (FUNCTION
-- LOAD once; FCALL jobd_HASH_NAME 0 PREFIX ARG...), so this file's code
-- runs once per load, not once per call; begin() resets the per-call
-- state. Keys are derived from the prefix inside the functions, so a
-- call's keys are in one hash slot only when the prefix has a hash tag
-- (docs/scaling.md); a tag {N/S} also makes it shard N of S
-- (shard_parse). All times come from Redis TIME, in ms.
--
-- A job is the hash P:job:ID (docs/redis-keys.md), one with a type; a
-- pending one has no status field (create writes none: load_fields and
-- the other readers take its absence for pending; set_status writes
-- every status it moves to, pending too). Its status lives in
-- exactly one status index per visibility class, and a pending job in
-- exactly one ready queue (or the delayed set). set_status() is the only
-- place that moves a job between statuses, so counters, indexes, queues and
-- statistics change together.
--
-- Names the module writes too are symbols of src/store/schema.def: a
-- job's field F_status ('status'; a loaded job h has it as h.status), a
-- status S_PENDING, a statistics field W_created, a key K_ready (after
-- the prefix P), a number N_MAX_DEPTH. build-aux/lua2c.sh writes each
-- symbol's literal into the library Redis loads.

-- Per call (set by begin()): the arguments, the key prefix, the Redis clock
-- in ms and as text, the start of its minute, the key of the leases (set
-- by the transitions of every run).
local ARGV, P, NOW, NOWS, MINUTE, LEASES
-- The shard of the prefix, and the ids a bucket of ids covers
-- (shard_parse(), below).
local SHARD_P, SHARDS, SHARD, IXW = nil, 1, 0, N_IX_BUCKET
-- The buckets of a key window (key_slot): N_KEY_BUCKETS over the shards,
-- so that a deployment's keys fill as many buckets as in one shard.
local KEYB = N_KEY_BUCKETS
-- Integers as text. Lua 5.1 turns every number it hands to redis.call
-- into text with "%.14g", a slow floating-point format: "%d" is several
-- times cheaper, and the hot paths pass a dozen numbers per job.
-- The library functions of the hot paths as upvalues (set by begin():
-- a library's load may read no global), and the global functions the
-- transitions call for every job: a global is a miss in the function's
-- environment, then a lookup in Redis's globals behind it.
local format, floor, log, min, max, bxor, sbyte
local tonumber, tostring, unpack
-- The integers 0 to 100 as text, made by the load (a number concatenated
-- is "%.14g" text, the same for these): attempts, progress and counters
-- are mostly small, and a format costs a C call and a string.
local SMALL = {}
for i = 0, 100 do SMALL[i] = i .. '' end
local function I(x) return SMALL[x] or format('%d', x) end

local function jkey(id) return P .. K_job .. id end

-- A SCAN MATCH pattern for the keys of the prefix whose names go on with
-- REST (a glob): the prefix's own glob characters are quoted, so a
-- prefix such as "app[1]" matches itself, not another prefix's keys.
local function prefix_match(rest)
	return (string.gsub(P, '([%*%?%[%]\\])', '\\%1')) .. rest
end

local function num(v)
	if not v or v == '' then return 0 end
	return tonumber(v) or 0
end

-- The index class of a job: root or child, user or system.
local function class_of(parent, system)
	if parent == nil or parent == '' or parent == '0' then
		return system == '1' and 'rs' or 'ru'
	end
	return system == '1' and 'cs' or 'cu'
end

-- The ended statuses, and (below) the running ones, as sets: set_status
-- indexes them where a call a job would cost more than the test.
local TERMINAL = {[S_FINISHED] = true, [S_CANCELED] = true}
local function terminal(s) return TERMINAL[s] == true end

-- Running jobs (in progress or stopping) are indexed by P:leases alone,
-- scored by lease expiry (+inf for a parent waiting for its children):
-- the status indexes hold the other four statuses. One write less per
-- claim and per finish; list.lua reads P:leases for these two statuses.
local RUNNING = {[S_IN_PROGRESS] = true, [S_STOPPING] = true}
local function running(s) return RUNNING[s] == true end

-- The indexes a list with these filters reads (list.lua, sort.lua): the
-- most selective filter drives (status, then type, then run_by), the
-- others are checked on the job hash. Returns the index suffixes (after
-- P:ix:CLASS) and whether P:leases is read too, which alone holds the
-- running jobs. Without a filter the four other status indexes.
local function list_indexes(status, ty, run_by)
	if status ~= '' then
		if running(status) then return {}, true end
		return {':s:' .. status}, false
	end
	if ty ~= '' then return {':t:' .. ty}, false end
	if run_by ~= '' then return {':u:' .. run_by}, false end
	local dims = {}
	for _, st in ipairs({S_PENDING, S_STOPPED, S_FINISHED, S_CANCELED}) do
		dims[#dims + 1] = ':s:' .. st
	end
	return dims, true
end

-- Index writes (status indexes, leases, create's indexes) are collected
-- per call and written at the end (flush) with one ZADD and one ZREM per
-- key: a batch of 200 jobs costs a few calls, not 200 per index. The last
-- write of a member wins, so a job that changes twice in one call is
-- indexed by its final state. Nothing reads these keys inside a
-- transition script; queues (read by the claim loop) are written at once.
local ZDEFER, ZKEYS = {}, {}
local function zset_later(key, member, score)
	local t = ZDEFER[key]
	if not t then
		t = {}
		ZDEFER[key] = t
		ZKEYS[#ZKEYS + 1] = key
	end
	-- (.. '' is tostring without a call: a text stays itself)
	t[member .. ''] = score
end

-- Status counters (P:count), like statistics, are summed per call and
-- written once at the end (flush).
local COUNT = {}
local function count_add(status, d)
	COUNT[status] = (COUNT[status] or 0) + d
end

-- Statistics are aggregated per script call and written once per field
-- (flush_stats), so a batch of N jobs costs a few calls, not N.
local STATS = {}
local STATS_MIN = {}
local STATS_MAX = {}
local function stat_add(field, ty, n)
	STATS[field] = (STATS[field] or 0) + n
	local f = field .. '|' .. ty
	STATS[f] = (STATS[f] or 0) + n
end
-- Per-job counts (created, finished, errors), summed per field and type
-- without a field name built per job: flush_stats() names them.
local TALLY = {}
local function stat_one(field, ty)
	local t = TALLY[field]
	if not t then
		t = {}
		TALLY[field] = t
	end
	t[ty] = (t[ty] or 0) + 1
end
-- Waiting times, summed per type and written by flush_stats: a claim of
-- 200 jobs builds no field name per job.
local WAITS = {}
local function stat_wait(ty, ms)
	local w = WAITS[ty]
	if not w then
		w = {n = 0, sum = 0, min = ms, max = ms, hist = {}}
		WAITS[ty] = w
	end
	w.n = w.n + 1
	w.sum = w.sum + ms
	if ms < w.min then w.min = ms end
	if ms > w.max then w.max = ms end
	-- Log-scale histogram: 4 buckets per power of two (about 19 % wide).
	local b = 0
	if ms > 0 then b = min(95, floor(log(ms + 1) * N_LOG2x4)) end
	w.hist[b] = (w.hist[b] or 0) + 1
end
local function waits_to_stats()
	for ty, w in pairs(WAITS) do
		stat_add(W_started, ty, w.n)
		stat_add(W_wait_sum, ty, w.sum)
		for b, n in pairs(w.hist) do stat_add('h' .. b, ty, n) end
		for _, f in ipairs({W_wait, W_wait .. '|' .. ty}) do
			if STATS_MIN[f] == nil or w.min < STATS_MIN[f] then STATS_MIN[f] = w.min end
			if STATS_MAX[f] == nil or w.max > STATS_MAX[f] then STATS_MAX[f] = w.max end
		end
	end
end
-- Adds COUNTERS to the statistics window K (START, SPAN ms long, listed
-- in the sorted set P..SET) and lowers or raises its minima and maxima
-- (MINS, MAXS: field name without the _min/_max suffix -> ms). The call
-- that creates the key (an increment that created a field: every field
-- is new in a new key) registers it and sets its expiry, the end of its
-- window plus the retention; later calls skip both.
local function write_window(k, start, span, set, counters, mins, maxs, ttl_ms)
	local fresh = false
	for f, n in pairs(counters) do
		if redis.call('HINCRBY', k, f, I(n)) == n then fresh = true end
	end
	if next(mins) ~= nil or next(maxs) ~= nil then
		-- Minima and maxima, read in one call and written in one.
		local names, vals = {}, {}
		for f, ms in pairs(mins) do
			names[#names + 1] = f .. '_min'
			vals[#vals + 1] = ms
		end
		local lows = #names
		for f, ms in pairs(maxs) do
			names[#names + 1] = f .. '_max'
			vals[#vals + 1] = ms
		end
		local cur = redis.call('HMGET', k, unpack(names))
		local upd = {}
		for i, name in ipairs(names) do
			local c = cur[i] and tonumber(cur[i])
			if not c or (i <= lows and vals[i] < c) or
				(i > lows and vals[i] > c) then
				upd[#upd + 1] = name
				upd[#upd + 1] = I(vals[i])
			end
		end
		if #upd > 0 then redis.call('HSET', k, unpack(upd)) end
	end
	if fresh then
		redis.call('PEXPIREAT', k, I(start + span + ttl_ms))
		redis.call('ZADD', P .. set, I(start), I(start))
	end
end

-- The hours (long windows, docs/statistics.md) are sums of their minutes,
-- made once a minute is closed: the first call that writes statistics
-- N_ROLL_GRACE ms after a minute's end adds it to its hour, at most
-- N_ROLL_MAX minutes a call. P:stats:rolled marks how far: later minutes
-- are not in their hour yet (readers add them themselves, src/store/stats.c), and
-- a call writing into a minute at or before the mark writes its hour
-- directly too. That covers the first call of this version on
-- statistics of an earlier one (the mark starts at the current minute:
-- earlier versions wrote the hours as they went) and a Redis clock
-- stepped back. Written by every call
-- instead, the hour doubled the statistics writes of every transition.
-- Adds to the hour that holds minute M.
local function write_hour(m, counters, mins, maxs, ttl_ms)
	local hour = m - m % N_HOUR_MS
	write_window(P .. K_stats_hour .. hour, hour, N_HOUR_MS, K_stats_hours,
		counters, mins, maxs, ttl_ms)
end
local function minmax_field(f)
	if f == W_wait .. '_min' or f == W_wait .. '_max' or
		string.sub(f, 1, #W_wait + 1) == W_wait .. '|' then
		return string.sub(f, 1, -5), string.sub(f, -3)
	end
	return nil
end
local function roll_mark()
	local done = redis.call('GET', P .. K_stats_rolled)
	if done then return tonumber(done) end
	-- No mark: statistics written by an earlier version, whose hours hold
	-- every minute up to now, or none at all (nothing to protect).
	done = MINUTE
	if redis.call('EXISTS', P .. K_stats_minutes) == 0 then
		done = MINUTE - N_MINUTE_MS
	end
	redis.call('SET', P .. K_stats_rolled, I(done))
	return done
end
local function roll_up(done, ttl_ms)
	local last = NOW - N_ROLL_GRACE - N_MINUTE_MS
	last = last - last % N_MINUTE_MS
	if done >= last then return end
	local mins = redis.call('ZRANGEBYSCORE', P .. K_stats_minutes,
		'(' .. I(done), I(last), 'LIMIT', '0', I(N_ROLL_MAX))
	for _, m in ipairs(mins) do
		local v = redis.call('HGETALL', P .. K_stats_minute .. m)
		local counters, lo, hi = {}, {}, {}
		for i = 1, #v, 2 do
			local f, x = v[i], tonumber(v[i + 1])
			-- Only integers (a hand-edited field would fail HINCRBY).
			if x and x == floor(x) then
				local name, which = minmax_field(f)
				if which == 'min' then lo[name] = x
				elseif which == 'max' then hi[name] = x
				else counters[f] = x end
			end
		end
		m = tonumber(m)
		write_hour(m, counters, lo, hi, ttl_ms)
		done = m
	end
	-- Fewer than asked for: every closed minute is in.
	if #mins < N_ROLL_MAX then done = last end
	redis.call('SET', P .. K_stats_rolled, I(done))
end

-- The counters since the store began (P:stats:total), for /metrics:
-- the per-type counters of the call (FIELD|TYPE, no minima or maxima),
-- added in the same call as its windows. They never expire and never go
-- down, so Prometheus' rate() reads them across minutes, hours and days;
-- the overall values are their sums (docs/metrics.md).
local function write_total(counters)
	local k = P .. ':stats:total'
	for f, n in pairs(counters) do
		if string.find(f, '|', 1, true) then
			redis.call('HINCRBY', k, f, I(n))
		end
	end
end

local function flush_stats(ttl_ms)
	if next(WAITS) ~= nil then waits_to_stats() end
	for field, t in pairs(TALLY) do
		for ty, n in pairs(t) do stat_add(field, ty, n) end
	end
	if next(STATS) == nil then return end
	write_total(STATS)
	ttl_ms = ttl_ms or 2592000000
	local done = roll_mark()
	write_window(P .. K_stats_minute .. MINUTE, MINUTE, N_MINUTE_MS, K_stats_minutes,
		STATS, STATS_MIN, STATS_MAX, ttl_ms)
	if MINUTE <= done then write_hour(MINUTE, STATS, STATS_MIN, STATS_MAX, ttl_ms) end
	roll_up(done, ttl_ms)
end

-- Wake idle workers of every instance: one message per script call, on
-- the shard channel P:wake (SPUBLISH), which a cluster sends to the
-- nodes of the slot's shard only, where a classic PUBLISH goes to every
-- node of the cluster. A user whose ACL rule has no SPUBLISH (the rule
-- of docs/security.md before it had) gets the classic message instead:
-- jobd listens on both (src/store/transitions.c jobd_store_wait), and a
-- refused SPUBLISH must not fail a call that has written its changes.
local WAKE = false
local function wake()
	local ch = P .. K_wake
	local r = redis.pcall('SPUBLISH', ch, '1')
	if type(r) == 'table' and r.err then redis.call('PUBLISH', ch, '1') end
end


-- The listing indexes (docs/redis-keys.md, "Indexes (listing)"): an
-- index NAME (CLASS:s:STATUS, CLASS:t:TYPE, CLASS:u:USER) is a set of
-- ids per range of IXW ids (N_IX_BUCKET of the shard's: shard_parse),
-- P:ixb:NAME:BUCKET (BUCKET = id / IXW), with the non-empty buckets in
-- the sorted set P:ixd:NAME (member = score = BUCKET), so a listing walks the buckets in id order
-- and skips the empty ranges. A bucket of at most set-max-intset-entries
-- (512) integers is an intset: 4 bytes an id below 2^31, where a
-- sorted-set skiplist member costs about 100 (bench/README.md, "Memory
-- per job"), and an SADD costs fewer instructions than a ZADD. Written
-- at the end of a call (flush), one SADD and one SREM per bucket.
local function index_names(cls, status, ty, run_by)
	local k = {cls .. ':s:' .. status, cls .. ':t:' .. ty}
	if run_by and run_by ~= '' then k[#k + 1] = cls .. ':u:' .. run_by end
	return k
end

-- Bucket writes collected per call, by index: IXDEFER[G][B][ID] = true
-- (add) or false (remove), G a listing index NAME (B = id / IXW,
-- a number) or ENDED, retention's index (B = "MINUTE:N", ended_later);
-- the last write of an id to a bucket wins, as in zset_later. A script
-- that reads the buckets after writing them flushes them first.
local IXDEFER, IXNAMES = {}, {}
local ENDED = {}
local function bucket_later(g, b, id, add)
	local t = IXDEFER[g]
	if not t then
		t = {}
		IXDEFER[g] = t
		IXNAMES[#IXNAMES + 1] = g
	end
	local s = t[b]
	if not s then
		s = {}
		t[b] = s
	end
	s[id .. ''] = add
end

local function ix_later(name, id, add)
	bucket_later(name, floor(id / IXW), id, add)
end

-- The status indexes' names (CLASS:s:STATUS), made once by the library's
-- load: set_status names one or two a job. (A status the schema lacks
-- is named as it comes.)
local IX_S = {}
do
	local cls = {'ru', 'rs', 'cu', 'cs'}
	local sts = {S_PENDING, S_IN_PROGRESS, S_STOPPING, S_STOPPED,
		S_FINISHED, S_CANCELED}
	for i = 1, #cls do
		local t = {}
		for j = 1, #sts do t[sts[j]] = cls[i] .. ':s:' .. sts[j] end
		IX_S[cls[i]] = t
	end
end

-- The bucket key of index NAME that holds id N (a number or its text).
local function ix_bucket(name, n)
	return P .. K_ixb .. name .. ':' .. I(floor(n / IXW))
end

-- Retention's index (docs/redis-keys.md, "Housekeeping"): the root jobs
-- that ended, per minute of their finished_at and range of IXW ids,
-- P:endb:MINUTE:N (MINUTE in ms, N = id / IXW), with the
-- buckets in the sorted set P:endd (member "MINUTE:N", score MINUTE).
-- The id range keeps a bucket within set-max-intset-entries however
-- many roots end in a minute; the minute lets retention read the oldest
-- first. ended_bucket is the member of the bucket that holds root ID
-- ended at AT (ms, a number or its text); the last one is kept, since
-- the roots of a batch mostly share it (two formats fewer a root).
local EB_M, EB_N, EB_S
local function ended_bucket(id, at)
	local m = num(at)
	m = m - m % N_MINUTE_MS
	local n = floor(id / IXW)
	if m ~= EB_M or n ~= EB_N then
		EB_M, EB_N, EB_S = m, n, I(m) .. ':' .. I(n)
	end
	return EB_S
end
local function ended_later(id, at, add)
	bucket_later(ENDED, ended_bucket(id, at), id, add)
end

-- Writes the collected bucket changes: per bucket one SADD and one SREM,
-- and whether the bucket was new or is now gone (Redis deletes an
-- emptied set), which the directory follows: P:ixd:NAME (member = score
-- = the bucket) or P:endd (member "MINUTE:N", score MINUTE).
local function ix_flush()
	for _, g in ipairs(IXNAMES) do
		local dadd, drem = {}, {}
		for b, s in pairs(IXDEFER[g]) do
			local adds, rems = {}, {}
			for id, add in pairs(s) do
				local l = add and adds or rems
				l[#l + 1] = id
			end
			local k, member, score
			if g == ENDED then
				member, score = b, string.match(b, '^(%d+)')
				k = P .. K_endb .. b
			else
				member = I(b)
				score = member
				k = P .. K_ixb .. g .. ':' .. member
			end
			-- A set that loses members existed; one that gains them
			-- exists after. (EXISTS, not SCARD: the ACL rule of
			-- docs/security.md allows it already.)
			local before = #adds == 0 or redis.call('EXISTS', k) == 1
			local added, removed = 0, 0
			for i = 1, #adds, 4000 do
				added = added + redis.call('SADD', k, unpack(adds, i, min(i + 3999, #adds)))
			end
			for i = 1, #rems, 4000 do
				removed = removed + redis.call('SREM', k, unpack(rems, i, min(i + 3999, #rems)))
			end
			if added > 0 or removed > 0 then
				local after = removed == 0 or redis.call('EXISTS', k) == 1
				if after and not before then
					dadd[#dadd + 1] = score
					dadd[#dadd + 1] = member
				elseif before and not after then
					drem[#drem + 1] = member
				end
			end
		end
		local d = g == ENDED and P .. K_endd or P .. K_ixd .. g
		if #dadd > 0 then redis.call('ZADD', d, unpack(dadd)) end
		if #drem > 0 then redis.call('ZREM', d, unpack(drem)) end
	end
	IXDEFER, IXNAMES = {}, {}
end

-- Until the backfill has moved the indexes of an earlier version (sorted
-- sets P:ix:NAME, score = id) into the buckets, listings read both
-- (backfill.lua, step ix): the transitions write only the buckets, so an
-- entry of the old index may be stale, and readers check every id
-- against its job hash and drop the repeats.
local function ix_legacy()
	return redis.call('HGET', P .. ':backfill', 'ix') ~= 'done'
end

-- Ids of index NAME past FROM (exclusive; nil: from the first) in id
-- order (ASC, or newest first), whole buckets until at least N: returns
-- them and whether buckets beyond them may hold more.
local function ix_read(name, from, asc, n)
	local d = P .. K_ixd .. name
	local out = {}
	local bound
	if from then bound = I(floor(from / IXW))
	else bound = asc and '-inf' or '+inf' end
	while #out < n do
		local want = floor((n - #out) / N_IX_BUCKET) + 2
		local bs
		if asc then
			bs = redis.call('ZRANGEBYSCORE', d, bound, '+inf', 'LIMIT', 0, want)
		else
			bs = redis.call('ZREVRANGEBYSCORE', d, bound, '-inf', 'LIMIT', 0, want)
		end
		for _, b in ipairs(bs) do
			local ids = {}
			for _, m in ipairs(redis.call('SMEMBERS', P .. K_ixb .. name .. ':' .. b)) do
				local id = tonumber(m)
				if id and (not from or (asc and id > from) or (not asc and id < from)) then
					ids[#ids + 1] = id
				end
			end
			if asc then table.sort(ids)
			else table.sort(ids, function(x, y) return x > y end) end
			for _, id in ipairs(ids) do out[#out + 1] = id end
			bound = '(' .. b
			if #out >= n then
				return out, true
			end
		end
		if #bs < want then return out, false end
	end
	return out, true
end

-- Reads fields of a job into a table (absent fields read as '', an
-- absent root as the job itself: a root job stores none, and an absent
-- status as pending: create writes none). A job is a hash with a type,
-- the one field every job has (its status may be absent): the type is
-- read first, where create writes it, and always (FIELDS need not name
-- it). Each transition reads only what it needs: HMGET costs grow with
-- the fields.
local function load_fields(id, fields)
	local v = redis.call('HMGET', jkey(id), F_type, unpack(fields))
	if not v[1] then return nil end
	local h = {id = id, type = v[1]}
	for i, f in ipairs(fields) do h[f] = v[i + 1] or '' end
	if h.root == '' then h.root = id end
	if h.status == '' then h.status = S_PENDING end
	return h
end

-- HMGET of job ID's status and FIELDS..., in that order, as the scripts
-- that read a few fields of many jobs want them: the status first
-- (pending when the hash has none: create writes none; false when there
-- is no job, a hash without a type: load_fields), then the fields.
local function job_hmget(id, ...)
	local a = {...}
	local n = #a + 1
	a[n] = F_type
	local v = redis.call('HMGET', jkey(id), F_status, unpack(a))
	if not v[n + 1] then v[1] = false
	elseif not v[1] then v[1] = S_PENDING end
	v[n + 1] = nil
	return v
end

-- The hash of job ID as HGETALL's flat list, with its id (which the hash
-- does not hold: the key has it); empty when there is no such job.
local function job_fields(id)
	local h = redis.call('HGETALL', jkey(id))
	if #h > 0 then
		h[#h + 1] = 'id'
		h[#h + 1] = type(id) == 'number' and I(id) or id
	end
	return h
end

-- A job read whole (HGETALL's flat list V of job ID's hash): every field
-- the hash has, and '' for those that a transition reads and it lacks;
-- need() reads nothing more for it (ALL_READ). More than 16 entries in
-- the constructor give the table 32 slots at once: one of 16 that the
-- hash's other fields and a claim's own marks overflow is rehashed whole.
local ALL_READ = {}
-- Fills H (its id and the defaults the reader wants) from V; nil when
-- V has no type: no job (as the module's job_open()).
local function read_into(h, v)
	local id = h.id
	for i = 1, #v, 2 do h[v[i]] = v[i + 1] end
	if h.type == '' then return nil end
	-- (a hash of an earlier version holds its id too: the key's wins)
	h.id = id
	if h.root == '' then h.root = id end
	-- (a job without status is pending)
	if h.status == '' then h.status = S_PENDING end
	h[ALL_READ] = true
	return h
end
local function read_all(id, v)
	return read_into({id = id, status = '', parent = '', root = '',
		type = '', system = '', low_priority = '', attempt = '',
		progress = '', queued_at = '', created_at = '', started_at = '',
		not_before = '', payload = '', checkpoint = '',
		children_total = '', key = '', created_by = ''}, v)
end

-- Adds FIELDS to a job already loaded (those it lacks).
local function need(h, fields)
	if h[ALL_READ] then
		for _, f in ipairs(fields) do
			if h[f] == nil then h[f] = '' end
		end
		return
	end
	local want = {}
	for _, f in ipairs(fields) do
		if h[f] == nil then want[#want + 1] = f end
	end
	if #want == 0 then return end
	local v = redis.call('HMGET', jkey(h.id), unpack(want))
	for i, f in ipairs(want) do h[f] = v[i] or '' end
	if h.root == '' then h.root = h.id end
end

-- What enqueue() and dequeue() read that a loaded run may lack.
local QUEUE = {F_not_before, F_low_priority, F_vruntime}

-- The ready structures of a pending job: normal or low priority.
local function ready_key(root, low)
	return P .. (low == '1' and K_ready_low or K_ready) .. root
end
local function roots_key(low)
	return P .. (low == '1' and K_roots_low or K_roots)
end
-- The roots without children waiting, first come first served
-- (docs/design.md, "Fair share between roots"): a list of ids, and in the
-- roots set the one member ALONE standing for the whole list, charged as
-- a group of as many roots as it holds (claim.lua). It
-- sorts after every other member (ids are digits, "=ID" starts with
-- '='), so a root at the same virtual runtime goes first, as it went
-- before "=ID" members.
local ALONE = 'alone'
local function alone_key(low)
	return P .. (low == '1' and K_alone_low or K_alone)
end

-- The virtual runtime at which a root of priority LOW that becomes
-- ready starts: the highest served root's of its roots set, or the
-- score ALONE was charged to when its list emptied (claim.lua), in whole
-- milliseconds: P:vr_floor or P:vr_floor_low (read once per call:
-- VR_FLOOR[LOW]). It never goes back, as CFS's min_vruntime:
-- settle_charge() may lower a waiting root below it, and serving that
-- root must not lower the floor, or a root without children that
-- arrives next would start below the roots waiting in the list, where
-- one list cannot keep their order. One per priority: low-priority roots are served only while
-- P:roots is empty, so normal claims would raise a shared floor while
-- P:roots_low's ALONE waits at an older score, and every later entry of
-- its list would run before the low-priority roots that became ready at
-- the higher floor.
local VR_FLOOR, VR_MOVED = {}, {}
local function vr_floor(low)
	low = low == '1' and '1' or '0'
	local fl = VR_FLOOR[low]
	if fl then return fl end
	local v = redis.call('GET', P .. (low == '1' and K_vr_floor_low or K_vr_floor))
	if not v and low == '1' then
		-- A store from before the floor of low priority: its
		-- low-priority roots entered at the shared floor, where this
		-- one starts, and written at once, so that normal claims no
		-- longer move it. (At 0, the roots that waited would wait
		-- behind every low-priority root until its floor reached
		-- theirs.)
		v = redis.call('GET', P .. K_vr_floor)
		VR_MOVED[low] = true
	end
	fl = num(v)
	VR_FLOOR[low] = fl
	return fl
end
-- A root of priority LOW was served at virtual runtime VR (claim.lua).
local function vr_served(vr, low)
	low = low == '1' and '1' or '0'
	if vr > vr_floor(low) then VR_FLOOR[low], VR_MOVED[low] = vr, true end
end

-- The per-type limits (docs/job-types.md, "Limits"), read once per call
-- from P:limits (TYPE -> "CONCURRENCY RATE WINDOW_MS", 0 = none):
-- LIMITS[TYPE] = {c =, r =, w =}, or false when no type has one.
local LIMITS = nil
local function limits()
	if LIMITS == nil then
		LIMITS = false
		local v = redis.call('HGETALL', P .. K_limits)
		for i = 1, #v, 2 do
			local c, r, w = string.match(v[i + 1], '^(%d+) (%d+) (%d+)$')
			if c then
				LIMITS = LIMITS or {}
				LIMITS[v[i]] = {c = tonumber(c), r = tonumber(r),
					w = tonumber(w)}
			end
		end
	end
	return LIMITS
end

-- For pending job ID of type TY held back by its type's limit
-- (claim.lua): which limit and where the type stands, e.g. "type mail:
-- concurrency 2 (2 running)"; nil when it is not held (show.lua,
-- why.lua).
local function limit_held(id, ty)
	local l = limits()
	l = l and l[ty]
	if not l or not redis.call('ZSCORE', P .. K_held .. ty, id) then return nil end
	local what = {}
	if l.c > 0 then
		what[#what + 1] = 'concurrency ' .. I(l.c) .. ' (' ..
			I(redis.call('ZCARD', P .. K_slots .. ty)) .. ' running)'
	end
	if l.r > 0 then
		local n = redis.call('ZCOUNT', P .. K_starts .. ty, '(' .. I(NOW - l.w), '+inf')
		what[#what + 1] = 'rate ' .. I(l.r) .. ' per ' .. I(l.w) .. ' ms (' ..
			I(n) .. ' started in the last window)'
	end
	return 'type ' .. ty .. ': ' .. table.concat(what, ', ')
end

-- Job H (running, of type h.type) gives back its slot of its type's
-- concurrency, if it holds one: its handler no longer runs. Claims wake
-- up to take it (claim.lua moves held jobs back to their queues).
local function release_slot(h)
	local l = limits()
	if l and l[h.type] and l[h.type].c > 0 and
		redis.call('ZREM', P .. K_slots .. h.type, h.id) == 1 then
		WAKE = true
	end
end

-- Puts pending job H on its root's ready queue (or the delayed set). A root
-- without children is its own queue, with no ready key, which saves four
-- calls per job for the common case: it waits in the list of roots
-- without children (alone_key) behind ALONE, which enters the roots set
-- at the floor. A root that becomes ready again starts at the current
-- minimum virtual runtime, so it neither jumps the queue nor starves
-- (docs/design.md, "Fair share between roots"). A root that arrives
-- while ALONE waits joins its list, in arrival order: ALONE, charged for
-- the roots it served, is at most one estimate above the floor. A root
-- whose own virtual runtime is above the floor waits as "=ID" at its
-- own.
local function enqueue(h)
	need(h, QUEUE)
	local nb = num(h.not_before)
	if nb > NOW then
		redis.call('ZADD', P .. K_delayed, nb, h.id)
		return
	end
	WAKE = true
	local rk = roots_key(h.low_priority)
	if h.id == h.root and num(h.children_total) == 0 then
		local fl, own = vr_floor(h.low_priority), num(h.vruntime)
		if own > fl then
			redis.call('ZADD', rk, 'NX', I(own), '=' .. h.id)
		else
			redis.call('RPUSH', alone_key(h.low_priority), h.id)
			-- Every time: cheap, and a lost ALONE comes back.
			redis.call('ZADD', rk, 'NX', I(fl), ALONE)
		end
		return
	end
	-- A root waiting alone became a real queue with its first child
	-- (root_to_tree).
	local rq = ready_key(h.root, h.low_priority)
	if not redis.call('ZSCORE', rk, h.root) then
		-- The root's own virtual runtime counts on its own priority's
		-- floor: a job moved to the other priority (set_low) enters
		-- that priority's roots set at its floor.
		local v = redis.call('HMGET', jkey(h.root), F_vruntime, F_low_priority)
		local own = ((v[2] == '1') == (h.low_priority == '1')) and num(v[1]) or 0
		redis.call('ZADD', rk, I(max(vr_floor(h.low_priority), own)), h.root)
	end
	redis.call('ZADD', rq, h.id, h.id)
end

-- Whether pending job H waits in the delayed set: for its time, or its
-- time come and not yet moved (claim.lua moves 100 a call). Membership
-- only, never its time: a claim moves a due job into its queue with its
-- not_before, which stays until the job is claimed, and a clock that
-- steps back (a failover to a node behind, an NTP step) may read before
-- it again; the job's entry in its queue is then its only one. A job
-- enters the set only with a not_before (enqueue), so one without is
-- not looked for.
local function is_delayed(h)
	return num(h.not_before) > 0 and
		redis.call('ZSCORE', P .. K_delayed, h.id) ~= false
end

-- Whether pending job ID of type TY waits in P:held:TY (claim.lua).
local function is_held(id, ty)
	local l = limits()
	return l and l[ty] and redis.call('ZSCORE', P .. K_held .. ty, id) ~= false
end

-- Root P (a loaded job) gets its first child: were it pending and
-- queued alone, it now waits in its own ready queue, where its children
-- join it. Its entry in the list of roots without children stays,
-- stale: claim.lua drops an entry of a root with children (alone_ok); an
-- "=ID" member is replaced at its score, as enqueue() does. It enters
-- the roots set at the floor, ahead of the roots that wait in the list
-- before it (it sorts before ALONE).
local function root_to_tree(p)
	if p.status ~= S_PENDING or is_delayed(p) or is_held(p.id, p.type) then
		return
	end
	local low = p.low_priority == '1' and '1' or '0'
	local rk = roots_key(low)
	local sc = redis.call('ZSCORE', rk, '=' .. p.id)
	if sc then redis.call('ZREM', rk, '=' .. p.id)
	else sc = I(max(vr_floor(low), num(p.vruntime))) end
	redis.call('ZADD', rk, 'NX', sc, p.id)
	redis.call('ZADD', ready_key(p.id, low), p.id, p.id)
	WAKE = true
end

-- Whether pending root H (claim.lua's load_alone), taken from an "=ID"
-- member or the list of priority LOW, may run now: entries are left
-- behind when a job leaves its queue (stop, cancel, the low-priority
-- move, a claim through another entry of it), and such a stale entry is
-- dropped. It runs when pending in this queue, without children (a root
-- with children waits in its ready queue: root_to_tree), not in the
-- delayed set (for its time, or moved from it later) nor held by its
-- type's limit. A job queued twice (stopped and resumed, say) runs
-- through its first entry: the claim makes it in progress, and its
-- second entry is then stale.
local function alone_ok(h, low)
	return h and h.status == S_PENDING and
		(h.low_priority == '' and '0' or h.low_priority) == low and
		num(h.children_total) == 0 and not is_delayed(h) and
		not is_held(h.id, h.type)
end

-- Takes pending job H off its ready queue (or the delayed set).
local function dequeue(h)
	need(h, QUEUE)
	if num(h.not_before) > 0 then redis.call('ZREM', P .. K_delayed, h.id) end
	local rq = ready_key(h.root, h.low_priority)
	local rk = roots_key(h.low_priority)
	if redis.call('ZREM', rq, h.id) == 1 then
		if redis.call('EXISTS', rq) == 0 then redis.call('ZREM', rk, h.root) end
	elseif h.id == h.root then
		redis.call('ZREM', rk, '=' .. h.id)
	end
	-- Or held by its type's limit (claim.lua).
	local l = limits()
	if l then
		need(h, {F_type})
		if l[h.type] then redis.call('ZREM', P .. K_held .. h.type, h.id) end
	end
end

-- Adds D to tree_stopping of every ancestor of a job (bounded depth).
local function ancestors_stopping(parent, d)
	local depth = 0
	while parent and parent ~= '' and depth < N_MAX_DEPTH do
		redis.call('HINCRBY', jkey(parent), F_tree_stopping, I(d))
		parent = redis.call('HGET', jkey(parent), F_parent)
		depth = depth + 1
	end
end

-- overall_progress = (progress + sum of children's overall) / (1 + children).
local function overall(h)
	return (num(h.progress) + num(h.children_progress)) / (1 + num(h.children_total))
end

local CHILDREN = {F_children_progress, F_children_pending,
	F_children_in_progress, F_children_stopping, F_children_stopped,
	F_children_finished, F_children_canceled, F_children_errors,
	F_tree_stopping}
-- Every field the transitions use (the children's counters included:
-- written out, because a library's load may call no library function).
local ALL = {F_status, F_parent, F_root, F_system, F_run_by,
	F_low_priority, F_progress, F_children_total, F_attempt, F_errors,
	F_awaiting, F_created_at, F_queued_at, F_started_at, F_claimed_at,
	F_run_since, F_run_ms, F_stoppable, F_restartable, F_retries, F_retry_count,
	F_backoff_ms, F_not_before, F_inconsistent, F_depth, F_charged,
	F_vruntime, F_avg_ms, F_restarts, F_children_progress, F_children_pending,
	F_children_in_progress, F_children_stopping, F_children_stopped,
	F_children_finished, F_children_canceled, F_children_errors,
	F_tree_stopping}

-- What the ends of a run (finish, hand back, lease expiry, reports) read,
-- in a table built by one constructor: filling a table field by field
-- grows it step by step, which costs twice as much on this hot path.
-- Fields that only some ends use (low_priority, not_before and vruntime
-- for a requeue, avg_ms for a charge, children_progress for a parent's
-- progress) are left nil here and read by need() where they are used:
-- each field read costs a listpack scan and two conversions. with_errors
-- (set_status's, at the end) makes 17 entries: 32 slots at once, where a
-- table of 16 full would be rehashed whole for it.
-- WHOLE (finish.lua) reads the whole hash in one HGETALL instead: one
-- pass over it, where HMGET scans it once a field, whole for each absent
-- one, and most of these fifteen are absent from a run without children
-- or history (for the job of bench/store, 17.6k instructions in HMGET,
-- 8k in HGETALL; 4k a job less in all, its reply being longer). The
-- payload comes with it, as the claim read it; progress.lua, which may
-- run many times a run, keeps HMGET.
local function load_run(id, whole)
	if whole then
		local v = redis.call('HGETALL', jkey(id))
		if #v == 0 then return nil end
		return read_into({id = id, status = '', parent = '', root = '',
			type = '', system = '', attempt = '', awaiting = '',
			progress = '', children_total = '', errors = '',
			run_since = '', run_ms = '', charged = '', claimed_at = '',
			started_at = '', with_errors = false}, v)
	end
	local v = redis.call('HMGET', jkey(id), F_status, F_parent, F_root,
		F_type, F_system, F_attempt, F_awaiting, F_progress,
		F_children_total, F_errors, F_run_since, F_run_ms, F_charged,
		F_claimed_at, F_started_at)
	if not v[4] then return nil end
	return {id = id, status = v[1] or S_PENDING, parent = v[2] or '', root = v[3] or id,
		type = v[4] or '', system = v[5] or '', attempt = v[6] or '',
		awaiting = v[7] or '', progress = v[8] or '',
		children_total = v[9] or '', errors = v[10] or '',
		run_since = v[11] or '', run_ms = v[12] or '', charged = v[13] or '',
		claimed_at = v[14] or '', started_at = v[15] or '',
		with_errors = false}
end

-- When the running attempt of running job H started. A claim writes no
-- field for it: the first claim's time is started_at, a later one's
-- claimed_at (written from the second claim on). Only a waiting parent
-- that runs again without a claim (resume) has run_since.
local STARTS = {F_claimed_at, F_started_at}
local function run_start(h)
	local s = num(h.run_since)
	if s > 0 then return s end
	need(h, STARTS)
	s = num(h.claimed_at)
	if s > 0 then return s end
	return num(h.started_at)
end

-- A whole job, for operations (off the hot path).
local function load(id) return load_fields(id, ALL) end

-- Changes the overall progress of job ID's parent chain after job ID's
-- own overall went from OLD to NEW (bounded by N_MAX_DEPTH).
local function propagate_progress(h, old, new)
	local parent = h.parent
	local depth = 0
	while parent ~= '' and depth < N_MAX_DEPTH and old ~= new do
		local pk = jkey(parent)
		local v = redis.call('HMGET', pk, F_progress, F_children_progress,
			F_children_total, F_parent)
		local t = num(v[3])
		local pold = (num(v[1]) + num(v[2])) / (1 + t)
		local cp = num(v[2]) + new - old
		redis.call('HSET', pk, F_children_progress, cp)
		old = pold
		new = (num(v[1]) + cp) / (1 + t)
		parent = v[4] or ''
		depth = depth + 1
	end
end

local finish_job -- forward: set_status may finish a waiting parent

-- Audit and lifecycle entries, bounded per job
-- (docs/design.md, "Logs and statistics").
local LOG_MAX = nil
-- The log search index (logs --all, GET /api/logs): each entry written
-- gets one in the stream of its minute, P:logix:m:MINUTE (fields job and
-- sid: the entry's id in P:log:JOB), so a search reads the entries of
-- every job in time order, as many as it chooses, and continues after
-- the last one it read. The minutes that have a stream are listed in
-- P:logix:minutes, so an empty window costs nothing. Each stream expires
-- LOGIX_TTL after its minute, and retention deletes it once its minute
-- is before the cutoff (purge.lua). The first entry of a call in a
-- minute checks whether the minute is new: one PTTL a call, not one per
-- entry.
local LOGIX_TTL = 2592000000
local LOGIX_SEEN = nil -- the minute whose stream this call checked
local function joblog(id, level, attempt, msg)
	if not LOG_MAX then
		LOG_MAX = tonumber(redis.call('HGET', P .. ':conf', 'logs_max_entries') or '') or 10000
	end
	local sid = redis.call('XADD', P .. ':log:' .. id, 'MAXLEN', '~', LOG_MAX, '*',
		'level', level, 'attempt', attempt or 0, 'msg', msg)
	-- At the entry's own millisecond, in the stream of its minute (the
	-- clock may have moved on since the call began, or since its XADD),
	-- so that the index orders entries as their times do; after the
	-- stream's last id otherwise (a clock stepped back).
	local ms = tonumber(string.match(sid, '^(%d+)'))
	local m = ms - ms % N_MINUTE_MS
	local k = P .. ':logix:m:' .. I(m)
	if type(redis.pcall('XADD', k, I(ms) .. '-*', 'job', id, 'sid', sid)) == 'table' then
		redis.call('XADD', k, '*', 'job', id, 'sid', sid)
	end
	if LOGIX_SEEN ~= m then
		LOGIX_SEEN = m
		if redis.call('PTTL', k) < 0 then
			redis.call('PEXPIREAT', k, I(m + N_MINUTE_MS + LOGIX_TTL))
			redis.call('ZADD', P .. ':logix:minutes', I(m), I(m))
			redis.call('ZREMRANGEBYSCORE', P .. ':logix:minutes', '-inf',
				'(' .. I(m - LOGIX_TTL))
		end
	end
end

-- Moves job H to status TO: status index, parent counters, tree counters,
-- ready queue, statistics. FIELDS are extra hash fields to write with it.
local function set_status(h, to, fields)
	local from = h.status
	local k = jkey(h.id)
	local cls = class_of(h.parent, h.system)
	fields = fields or {}
	-- RUNNING and TERMINAL rather than running() and terminal(): a
	-- function call costs more than its test, twice a job.
	local run_from, run_to = RUNNING[from], RUNNING[to]
	local end_to = TERMINAL[to] == true
	if from ~= to then
		local ixs = IX_S[cls]
		if not run_from then ix_later(ixs[from] or cls .. ':s:' .. from, h.id, false) end
		if not run_to then ix_later(ixs[to] or cls .. ':s:' .. to, h.id, true) end
		count_add(from, -1)
		count_add(to, 1)
		-- Retention's index (purge.lua): root jobs that ended, by the
		-- minute they did. Only a restart takes a job out of it alive,
		-- from the bucket of the end it had.
		if (TERMINAL[from] == true) ~= end_to and h.parent == '' then
			if end_to then
				ended_later(h.id, NOW, true)
			else
				need(h, {F_finished_at})
				ended_later(h.id, h.finished_at, false)
			end
		end
	end
	if run_to and not run_from then
		-- claim.lua sets the lease (as text: the same for every job of
		-- the call); a resumed waiting parent has none.
		zset_later(LEASES, h.id, h.lease_until or '+inf')
	end
	-- claim.lua takes the job off its queue itself (h.dequeued).
	if from == S_PENDING and to ~= S_PENDING and not h.dequeued then
		dequeue(h)
	end
	if run_from and not run_to then
		zset_later(LEASES, h.id, false)
		release_slot(h)
		local since = run_start(h)
		if since > 0 then
			h.run_ms = num(h.run_ms) + NOW - since
			fields[#fields + 1] = F_run_ms
			fields[#fields + 1] = I(h.run_ms)
		end
		if num(h.run_since) > 0 then
			fields[#fields + 1] = F_run_since
			fields[#fields + 1] = '0'
			h.run_since = 0
		end
	end
	if end_to then
		fields[#fields + 1] = F_finished_at
		fields[#fields + 1] = NOWS
		if to == S_FINISHED then
			-- A child's errors count where there are children (a
			-- restart zeroes children_errors with children_total).
			local errs = num(h.errors) > 0
			if not errs and num(h.children_total) > 0 then
				need(h, CHILDREN)
				errs = num(h.children_errors) > 0
			end
			-- Absent means without errors (restart deletes the field).
			if errs then
				fields[#fields + 1] = F_with_errors
				fields[#fields + 1] = '1'
			end
			h.with_errors = errs
			stat_one(W_finished, h.type)
			if errs then stat_one(W_errors, h.type) end
		end
	end
	fields[#fields + 1] = F_status
	fields[#fields + 1] = to
	redis.call('HSET', k, unpack(fields))
	h.status = to
	if from == S_STOPPING and to ~= S_STOPPING then
		ancestors_stopping(h.parent, -1)
	elseif to == S_STOPPING and from ~= S_STOPPING then
		ancestors_stopping(h.parent, 1)
	end
	if to == S_PENDING and from ~= S_PENDING then
		enqueue(h)
	end
	if h.parent == '' or from == to then return end
	-- The parent's counters of its direct children.
	local pk = jkey(h.parent)
	redis.call('HINCRBY', pk, 'children_' .. from, '-1')
	redis.call('HINCRBY', pk, 'children_' .. to, '1')
	if to == S_FINISHED and h.with_errors then
		redis.call('HINCRBY', pk, F_children_errors, '1')
	end
	-- A parent waiting for its children moves on when they allow it.
	local p = load(h.parent)
	if not p or p.awaiting ~= '1' then return end
	local running = num(p.children_in_progress) + num(p.children_stopping)
	local open = num(p.children_total) - num(p.children_finished) -
		num(p.children_canceled)
	if p.status == S_STOPPING and running == 0 then
		set_status(p, S_STOPPED)
		joblog(p.id, 'info', p.attempt, 'stopped: no child runs any more')
	elseif p.status == S_IN_PROGRESS and open == 0 then
		finish_job(p)
	end
end

-- A job whose handler is done: finished if its children are terminal,
-- else it waits for them, holding no worker.
finish_job = function(h, fields)
	fields = fields or {}
	-- None open without children (most jobs): one number read, not
	-- three.
	local open, total = 0, num(h.children_total)
	if total > 0 then
		need(h, CHILDREN)
		open = total - num(h.children_finished) - num(h.children_canceled)
	end
	if open > 0 then
		-- Still running, holding no worker: no lease to expire, and
		-- no slot of its type's concurrency.
		zset_later(LEASES, h.id, '+inf')
		release_slot(h)
		fields[#fields + 1] = F_awaiting
		fields[#fields + 1] = 1
		h.awaiting = '1'
		if h.status == S_STOPPING and
			num(h.children_in_progress) + num(h.children_stopping) == 0 then
			set_status(h, S_STOPPED, fields)
		else
			redis.call('HSET', jkey(h.id), unpack(fields))
		end
		return 'waiting'
	end
	-- No log entry: "finished" is read from the hash (finished_at).
	if h.awaiting == '1' then
		fields[#fields + 1] = F_awaiting
		fields[#fields + 1] = 0
	end
	set_status(h, S_FINISHED, fields)
	return 'finished'
end

-- The first stopping, stopped or canceled ancestor of a job and its
-- status, or nil.
local function stopped_ancestor(parent)
	local depth = 0
	while parent and parent ~= '' and depth < N_MAX_DEPTH do
		local v = redis.call('HMGET', jkey(parent), F_status, F_parent)
		if v[1] == S_STOPPING or v[1] == S_STOPPED or v[1] == S_CANCELED then
			return parent, v[1]
		end
		parent = v[2]
		depth = depth + 1
	end
	return nil
end

-- Pushes a cascade task for the descendants of ID: op and actor.
local function cascade(op, id, actor)
	local tid = redis.call('INCR', P .. ':cascade_seq')
	redis.call('HSET', P .. ':cascade:' .. tid, 'op', op, 'actor', actor or '')
	redis.call('RPUSH', P .. ':cascade:' .. tid .. ':todo', id .. ':0')
	redis.call('ZADD', P .. ':cascades', NOW, tid)
	return tid
end

-- Fencing: a write of a run is accepted only from its current attempt.
local function fenced(h, attempt)
	return not h or (h.status ~= S_IN_PROGRESS and h.status ~= S_STOPPING)
		or h.attempt ~= attempt or h.awaiting == '1'
end

-- Corrects the root's virtual runtime once a run's real length is known,
-- and keeps the root's mean duration that later claims are charged. For a
-- root job the fields go into FIELDS, written with its status change.
local function settle_charge(h, fields)
	-- A root claimed alone was not charged (claim.lua): nothing to correct
	-- unless it has spawned children meanwhile, whose queue its run must
	-- weigh on (charged counts as 0). Asked first: run_start parses a
	-- time, which set_status does again.
	if h.charged == '' and num(h.children_total) == 0 then return end
	local since = run_start(h)
	if since == 0 then return end
	local actual = NOW - since
	local delta = actual - num(h.charged)
	local vr, avg
	if h.id == h.root then
		need(h, {F_vruntime, F_avg_ms})
		vr, avg = num(h.vruntime), num(h.avg_ms)
	else
		local v = redis.call('HMGET', jkey(h.root), F_vruntime, F_avg_ms)
		vr, avg = num(v[1]), num(v[2])
	end
	avg = avg > 0 and (avg * 0.8 + actual * 0.2) or actual
	local f = {F_vruntime, I(vr + delta), F_avg_ms, I(max(1, floor(avg + 0.5)))}
	if h.id == h.root then
		for _, x in ipairs(f) do fields[#fields + 1] = x end
		h.vruntime = vr + delta
	else
		redis.call('HSET', jkey(h.root), unpack(f))
	end
	-- Only a root with children can be waiting in a roots set now.
	if delta ~= 0 and (h.id ~= h.root or num(h.children_total) > 0) then
		for _, low in ipairs({'0', '1'}) do
			if redis.call('ZSCORE', roots_key(low), h.root) then
				redis.call('ZINCRBY', roots_key(low), delta, h.root)
			end
		end
	end
end

-- A new own progress, checkpoint and error count of a running job. The
-- fields go into F (written by the caller with its other changes) or, when
-- F is nil, are written here. An audit line marks every 10 % crossed while
-- the job runs (QUIET: not at its finish, where it would only repeat it).
local function set_progress(h, progress, checkpoint, errors_delta, f, quiet)
	local own = f == nil
	f = f or {}
	if progress and progress >= 0 then
		if progress > 100 then progress = 100 end
		local before, old = num(h.progress), nil
		-- Only a parent's overall progress depends on this job's.
		if h.parent ~= '' then
			need(h, {F_children_progress})
			old = overall(h)
		end
		h.progress = progress
		if old then propagate_progress(h, old, overall(h)) end
		f[#f + 1] = F_progress
		f[#f + 1] = progress == floor(progress) and I(progress) or progress
		if not quiet and floor(progress / 10) > floor(before / 10) then
			joblog(h.id, 'info', h.attempt, 'progress ' .. floor(progress / 10) * 10 .. '%')
		end
	end
	if checkpoint and checkpoint ~= '' then
		f[#f + 1] = F_checkpoint; f[#f + 1] = checkpoint
	end
	if errors_delta and errors_delta > 0 then
		h.errors = num(h.errors) + errors_delta
		f[#f + 1] = F_errors; f[#f + 1] = h.errors
	end
	if own and #f > 0 then redis.call('HSET', jkey(h.id), unpack(f)) end
end

-- Operations (docs/design.md, "State machine"). Each OPS[op](h, actor, top)
-- applies the operation to one job: TOP is the job the operator named
-- (checked and refused with a reason), otherwise a descendant reached by
-- the cascade (changed only when its status allows it). Returns nil on
-- success or the reason for a refusal.
local OPS = {}

local function refuse(h, op, needs)
	return 'job ' .. h.id .. ' is ' .. h.status .. ': ' .. op .. ' needs ' .. needs
end

OPS['stop'] = function(h, actor, top)
	if h.stoppable == '0' then
		if top then return 'job ' .. h.id .. ' (' .. h.type .. ') cannot be stopped: its type is not stoppable' end
		return nil
	end
	if h.status == S_PENDING then
		set_status(h, S_STOPPED)
		joblog(h.id, 'info', h.attempt, 'stopped by ' .. actor .. ' before it started')
	elseif h.status == S_IN_PROGRESS then
		if h.awaiting == '1' and num(h.children_in_progress) + num(h.children_stopping) == 0 then
			set_status(h, S_STOPPED)
			joblog(h.id, 'info', h.attempt, 'stopped by ' .. actor .. ' while waiting for children')
		else
			set_status(h, S_STOPPING)
			joblog(h.id, 'info', h.attempt, 'stop requested by ' .. actor)
		end
	elseif top then
		return refuse(h, 'stop', 'pending or in_progress')
	end
	return nil
end

OPS['resume'] = function(h, actor, top)
	if h.status ~= S_STOPPED then
		if top then return refuse(h, 'resume', S_STOPPED) end
		return nil
	end
	-- A descendant still stopping would stop after the cascade passed it
	-- and leave the resumed tree waiting for it forever.
	if top and num(h.tree_stopping) > 0 then
		return 'job ' .. h.id .. ' has ' .. h.tree_stopping .. ' descendants still stopping: resume needs them stopped'
	end
	if top and h.parent ~= '' then
		local sa, how = stopped_ancestor(h.parent)
		if sa then return 'job ' .. h.id .. ' is under ' .. how .. ' job ' .. sa .. (how == S_CANCELED and ': it cannot run any more' or ': resume that one') end
	end
	if h.awaiting == '1' then
		-- Its handler had returned: back to waiting for its children,
		-- running again (its duration grows, as for any job in progress).
		h.run_since = NOW
		set_status(h, S_IN_PROGRESS, {F_run_since, NOWS})
		joblog(h.id, 'info', h.attempt, 'resumed by ' .. actor .. ', waiting for children')
		local open = num(h.children_total) - num(h.children_finished) - num(h.children_canceled)
		if open == 0 then finish_job(h) end
	else
		set_status(h, S_PENDING)
		joblog(h.id, 'info', h.attempt, 'resumed by ' .. actor)
	end
	return nil
end

OPS['force-stop'] = function(h, actor, top)
	if h.status ~= S_STOPPING then
		if top then return refuse(h, 'force-stop', S_STOPPING) end
		return nil
	end
	-- The running attempt is fenced off by the status change: its
	-- later writes and heartbeats are refused and its worker kills it.
	set_status(h, S_STOPPED, {F_inconsistent, 1})
	joblog(h.id, 'warn', h.attempt, 'force-stopped by ' .. actor .. ': attempt ' .. h.attempt .. ' fenced off, data may be inconsistent')
	return nil
end

OPS['cancel'] = function(h, actor, top)
	-- A descendant that a stop skipped (its type is not stoppable) and
	-- that never started is canceled with its tree, never run under it.
	if h.status ~= S_STOPPED and (top or h.status ~= S_PENDING) then
		if top then return refuse(h, 'cancel', S_STOPPED) end
		return nil
	end
	if num(h.tree_stopping) > 0 then
		return 'job ' .. h.id .. ' has ' .. h.tree_stopping .. ' descendants still stopping: cancel needs them stopped'
	end
	set_status(h, S_CANCELED)
	joblog(h.id, 'info', h.attempt, 'canceled by ' .. actor)
	return nil
end

local function set_low(h, actor, top, low)
	if terminal(h.status) then
		if top then return refuse(h, 'low-priority', 'a job that is not finished or canceled') end
		return nil
	end
	if h.low_priority == low then return nil end
	local queued = h.status == S_PENDING
	if queued then dequeue(h) end
	local f = {F_low_priority, low}
	-- A root's virtual runtime counts on its priority's floor: it keeps
	-- its lead over the floor it leaves, as CFS moves a task between run
	-- queues, and so enters the other priority at that one's floor, not
	-- far above it (normal roots run on a higher floor) nor below.
	if h.id == h.root and num(h.vruntime) > 0 then
		h.vruntime = max(0, num(h.vruntime) - vr_floor(h.low_priority)) +
			vr_floor(low)
		f[#f + 1] = F_vruntime; f[#f + 1] = I(h.vruntime)
	end
	redis.call('HSET', jkey(h.id), unpack(f))
	h.low_priority = low
	if queued then enqueue(h) end
	joblog(h.id, 'info', h.attempt, (low == '1' and 'low priority set by ' or 'low priority removed by ') .. actor)
	return nil
end
OPS['low-priority'] = function(h, actor, top) return set_low(h, actor, top, '1') end
OPS['low-priority-off'] = function(h, actor, top) return set_low(h, actor, top, '0') end

-- Applies OP to each id of ARGV from position FIRST on; a job with children
-- gets a cascade task for them. Reply: per id, 'ok STATUS' (the job's
-- status after the operation: a stop of a running job is only requested,
-- 'ok stopping'), 'ok STATUS:TASK' (a cascade to run with cascade.lua) or
-- the refusal.
local function run_op(op, actor, first)
	local out = {}
	for i = first, #ARGV do
		local id = ARGV[i]
		local h = load(id)
		local r
		if not h then
			r = 'job ' .. id .. ' not found'
		else
			r = OPS[op](h, actor, true)
		end
		if r then
			out[#out + 1] = r
		elseif num(h.children_total) > 0 then
			out[#out + 1] = 'ok ' .. h.status .. ':' .. cascade(op, id, actor)
		else
			out[#out + 1] = 'ok ' .. h.status
		end
	end
	return out
end

-- The module's skiplist_member (src/store/module/module.c), the same text.
local SKIPLIST_MEMBER =
	'jobd: a member long enough to make a sorted set a skip list, removed at once'

-- Writes what a script call summed up: statistics, status counters, the
-- virtual runtime floor, and one wake-up for idle workers.
local function flush(ttl_ms)
	ix_flush()
	for _, k in ipairs(ZKEYS) do
		local add, rem = {}, {}
		for m, sc in pairs(ZDEFER[k]) do
			if sc then
				add[#add + 1] = sc
				add[#add + 1] = m
			else
				rem[#rem + 1] = m
			end
		end
		-- P:leases churns: a skip list from its first member, as the
		-- module makes it (skiplist_begin() in its lib.c), where a
		-- listpack of up to 128 running jobs is scanned on every write.
		-- A member longer than zset-max-listpack-value converts it at
		-- once; the set stays a skip list when it goes, on the replicas
		-- too, which get both writes.
		local long = k == LEASES and #add > 0 and
			redis.call('EXISTS', k) == 0
		if long then redis.call('ZADD', k, '0', SKIPLIST_MEMBER) end
		-- In chunks: unpack() is bounded by the Lua stack.
		for i = 1, #add, 4000 do
			redis.call('ZADD', k, unpack(add, i, min(i + 3999, #add)))
		end
		for i = 1, #rem, 2000 do
			redis.call('ZREM', k, unpack(rem, i, min(i + 1999, #rem)))
		end
		if long then redis.call('ZREM', k, SKIPLIST_MEMBER) end
	end
	for st, d in pairs(COUNT) do
		if d ~= 0 then redis.call('HINCRBY', P .. K_count, st, I(d)) end
	end
	if VR_MOVED['0'] then redis.call('SET', P .. K_vr_floor, I(VR_FLOOR['0'])) end
	if VR_MOVED['1'] then redis.call('SET', P .. K_vr_floor_low, I(VR_FLOOR['1'])) end
	if WAKE then wake() end
	-- Last: statistics read older data (a roll-up), so whatever they meet
	-- cannot stop the transition's own writes half way.
	flush_stats(ttl_ms)
end

-- A move of the deployment's slot holds every call (jobctl cluster move,
-- docs/scaling.md "Moving the slot"): the first key each function reads
-- is P:hold (every function but hold.lua's, lua2c.sh), so while it
-- exists, and while the slot migrates (then this node refuses the key
-- itself: "non local key", or the key has gone ahead to the new node),
-- a call stops at its first command, before it writes anything. The
-- caller retries, as after any Redis error.
local function hold_check()
	if redis.call('EXISTS', P .. K_hold) == 1 then
		local h = redis.call('HMGET', P .. K_hold, 'to', 'since')
		error({err = 'HELD (since ' .. (h[2] or '?') .. ' ms) the slot of ' ..
			P .. ' is moving to ' .. (h[1] or '?') ..
			' (jobctl cluster move): calls wait until it is done'})
	end
end

-- Per call: the idempotency keys' window and layout (keys_conf()).
local KEYS_W, KEYS_PREV, KEYS_CHANGED, KEYS_OLD, KEYS_PFX

-- The shard of the call's prefix (docs/scaling.md, "Shards"): a prefix
-- whose hash tag is {N/S} is shard N of S, whose job ids are SEQ x S + N
-- (SEQ counted by its own P:seq), so that an id names its shard, and
-- whose buckets of ids (listing and retention indexes) cover N_IX_BUCKET
-- x S ids, N_IX_BUCKET of its own; any other prefix is shard 0 of 1, the
-- store as it always was. Read once per prefix (the module's shard_of()).
local function shard_parse()
	local s, n = 1, 0
	local tag = string.match(P, '^[^{]*{([^}]*)}')
	local a, b = string.match(tag or '', '^(%d+)/(%d+)$')
	if a then
		n, s = tonumber(a), tonumber(b)
		-- (a leading zero would name the same shard in another slot)
		if s < 1 or s > N_MAX_SHARDS or n >= s or
			string.match(a, '^0%d') or string.match(b, '^0%d') then
			error({err = 'ERR jobd: prefix ' .. P .. ': its tag names ' ..
				'no shard (N/S, 0 <= N < S <= ' .. N_MAX_SHARDS ..
				', without leading zeros)'})
		end
	end
	SHARD_P, SHARDS, SHARD, IXW = P, s, n, N_IX_BUCKET * s
	KEYB = max(floor(N_KEY_BUCKETS / s), 1)
end

-- Starts a call: its arguments and clock, and empty per-call state.
local function begin(args)
	if not format then
		format, floor, log = string.format, math.floor, math.log
		min, max = math.min, math.max
		bxor, sbyte = bit.bxor, string.byte
		tonumber, tostring, unpack = _G.tonumber, _G.tostring, _G.unpack
	end
	ARGV = args
	P = args[1]
	if P ~= SHARD_P then shard_parse() end
	local t = redis.call('TIME')
	NOW = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
	NOWS = I(NOW)
	MINUTE = NOW - NOW % N_MINUTE_MS
	LEASES = P .. K_leases
	ZDEFER, ZKEYS = {}, {}
	IXDEFER, IXNAMES = {}, {}
	COUNT, STATS, STATS_MIN, STATS_MAX, WAITS, TALLY = {}, {}, {}, {}, {}, {}
	WAKE, VR_FLOOR, VR_MOVED = false, {}, {}
	LOG_MAX, LOGIX_SEEN = nil, nil
	LIMITS = nil
	KEYS_W, KEYS_PREV, KEYS_CHANGED, KEYS_OLD = nil, nil, nil, nil
	KEYS_PFX = {}
end

-- The key scope of a parent's children: a restart starts a new scope, so
-- a restarted handler re-spawning its keys gets new children, not the
-- detached ones of the earlier run. The earlier layout named a child's
-- mapping P:key:SCOPE..KEY; this one keeps it in P:ckeys:PARENT, field
-- the scope after the parent's id ('' or 'N/') and the key.
local function child_scope(parent, restarts)
	if parent == '' then return '' end
	if num(restarts) > 0 then return parent .. '/' .. restarts .. '/' end
	return parent .. '/'
end

-- Idempotency keys (docs/redis-keys.md, "Idempotency keys"). A root
-- job's key maps to its id in a hash bucket of its time window,
-- P:keys:START:B (START: the window's start, a multiple of key_window
-- ms; B: the key's FNV-1a hash mod KEYB, N_KEY_BUCKETS over the shards),
-- field the key itself, or '#' and two hashes of it when it is longer
-- than N_KEY_FIELD_MAX bytes (a longer field would make its bucket a
-- hash table). A bucket
-- expires at the end of the window after its own, and a lookup reads the
-- current window and the one before: a duplicate within key_window of
-- the first is always found. A hit counts only when the job's key field
-- is the key: a digest may collide, and retention may have deleted the
-- job. The module's create does the same (src/store/module/create.c).
-- Per call: the window (P:conf key_window, ms); the window it replaced
-- while keys written under that one may live (key_window_prev, written
-- by key_window.lua with the time of the change, key_window_changed: a
-- bucket lives two of its windows, so until two old windows after the
-- change; else nil); the time of that change, while its windows differ
-- (kept after the replaced window's keys have expired: a root made
-- before it had its key under that window, fsck.lua); and whether
-- mappings of the earlier layout (P:key:*) may remain: backfill.lua's
-- keys step moves them, and until it is done a lookup reads them too
-- (KEYS_W, KEYS_PREV, KEYS_CHANGED, KEYS_OLD: declared before begin(),
-- which resets them).
local function window_of(v)
	local w = tonumber(v or '')
	if not w or w < 1 or w >= 9e15 then return nil end
	return floor(w)
end

local function keys_conf()
	if not KEYS_W then
		local c = redis.call('HMGET', P .. ':conf', 'key_window',
			'key_window_prev', 'key_window_changed')
		KEYS_W = window_of(c[1]) or N_KEY_WINDOW
		local prev, at = window_of(c[2]), tonumber(c[3] or '')
		if prev and at and prev ~= KEYS_W then
			KEYS_CHANGED = at
			if NOW < at + 2 * prev then KEYS_PREV = prev end
		end
		KEYS_OLD = redis.call('HGET', P .. ':backfill', 'keys') ~= 'done'
	end
end

-- FNV-1a, 32 bits, of S from H. Lua's numbers are doubles: H * 16777619
-- would lose bits, so it is 2^24 * H + 403 * H, mod 2^32 each. The bytes
-- come in few calls (a create hashes every root's key: per byte, a C
-- call is the cost), 64 at a time (a key may be longer than Lua's stack).
-- bxor answers a signed 32-bit number, H - 2^32 when H >= 2^31; Lua's
-- % rounds its quotient down, so both % give what they give for H
-- (2^32 is a multiple of 256) and the result is in [0, 2^32).
local function fnv(s, h)
	for j = 1, #s, 64 do
		local b = {sbyte(s, j, j + 63)}
		for i = 1, #b do
			h = bxor(h, b[i])
			h = ((h % 256) * 16777216 + h * 403) % 4294967296
		end
	end
	return h
end

-- The field of root key KEY in its bucket, and the bucket's number. The
-- last one is kept, with the number as text (SLOT_BT): a create looks a
-- key up, then maps it, naming two or three buckets.
local SLOT_KEY, SLOT_F, SLOT_B, SLOT_BT, SLOT_N
local function key_slot(key)
	if key == SLOT_KEY and SLOT_N == KEYB then return SLOT_F, SLOT_B end
	local h = fnv(key, 2166136261)
	local f = key
	if #key > N_KEY_FIELD_MAX then f = format('#%08x%08x', h, fnv(key, h)) end
	SLOT_KEY, SLOT_F, SLOT_B, SLOT_N = key, f, h % KEYB, KEYB
	SLOT_BT = I(SLOT_B)
	return f, SLOT_B
end

-- Bucket B of the window starting at START. The name up to B is kept
-- per window start for the call (KEYS_PFX, reset by begin()).
local function keys_bucket(start, b)
	local p = KEYS_PFX[start]
	if not p then
		p = P .. K_keys .. I(start) .. ':'
		KEYS_PFX[start] = p
	end
	return p .. (b == SLOT_B and SLOT_BT or I(b))
end

-- The id root key KEY (field F, bucket B) maps to in window W's current
-- or previous bucket, or nil.
local function key_get(w, f, b)
	local start = NOW - NOW % w
	return redis.call('HGET', keys_bucket(start, b), f) or
		redis.call('HGET', keys_bucket(start - w, b), f)
end

-- The id root key KEY maps to, or nil: in the current window's buckets,
-- then in those of the window it replaced (KEYS_PREV), as a lookup
-- before the change would have read them.
local function key_find(key)
	keys_conf()
	local f, b = key_slot(key)
	local id = key_get(KEYS_W, f, b)
	if not id and KEYS_PREV then id = key_get(KEYS_PREV, f, b) end
	if not id and KEYS_OLD then id = redis.call('GET', P .. K_key .. key) end
	if id and redis.call('HGET', jkey(id), F_key) == key then return id end
	return nil
end

-- Maps root key KEY to job id SID in the current window.
local MAP_TTL, MAP_TTLS
local function key_map(key, sid)
	keys_conf()
	local f, b = key_slot(key)
	local start = NOW - NOW % KEYS_W
	local k = keys_bucket(start, b)
	local ttl = start + 2 * KEYS_W - NOW
	-- (the same for every key of the call: made text once)
	if ttl ~= MAP_TTL then MAP_TTL, MAP_TTLS = ttl, I(ttl) end
	redis.call('HSET', k, f, sid)
	-- Relative: Redis expires by its own clock, which a test may have
	-- moved away from TIME's (src/store/module/testclock.c). NX: a
	-- bucket gets its expiry with its first key, and the others add
	-- nothing to the AOF or the replicas.
	redis.call('PEXPIRE', k, MAP_TTLS, 'NX')
	-- A start both windows share names one bucket of each: one made
	-- under a shorter old window would expire before two of this one
	-- have passed. Its expiry is at most START + 2 x KEYS_PREV, this
	-- window's START + 2 x KEYS_W: halfway between tells them apart.
	if KEYS_PREV and KEYS_PREV < KEYS_W and start % KEYS_PREV == 0 and
		redis.call('PTTL', k) < ttl - (KEYS_W - KEYS_PREV) then
		redis.call('PEXPIRE', k, I(ttl))
	end
end

-- Drops root key KEY's mapping to SID, from both windows that exist, of
-- the current window and of the one it replaced.
local function key_unmap(key, sid)
	keys_conf()
	local f, b = key_slot(key)
	for _, w in ipairs({KEYS_W, KEYS_PREV}) do
		local start = NOW - NOW % w
		for _, s in ipairs({start, start - w}) do
			local k = keys_bucket(s, b)
			if redis.call('HGET', k, f) == sid then redis.call('HDEL', k, f) end
		end
	end
end

-- Parent PARENT's field for its child key KEY after RESTARTS restarts.
local function ckey_field(restarts, key)
	if num(restarts) > 0 then return restarts .. '/' .. key end
	return key
end
