-- sort.lua: one page of jobs in an order other than list.lua's newest
-- first: by created (id) ascending, or by started, waiting, duration or
-- status, either way, across all jobs that match the filters.
-- ARGV: prefix, classes (as list.lua), status, type, run_by ('' = any),
--   by (created, started, waiting, duration, status), desc (0/1),
--   after ('' = from the first; else the cursor a previous page returned:
--   an id for created, "KEY:ID:AT" for the others), limit, window (index
--   entries examined at most)
-- Reply: {now_ms, next ('' = no more), complete (0/1), examined, job...}
--   with each job the flat field/value list of its hash.
--
-- Created is id order, which the indexes are scored by: the indexes are
-- read in that order from the cursor on, and a page costs what list.lua's
-- does. No index holds the other keys (a job's waiting and duration change
-- with the clock, and one more sorted set per key would cost every
-- transition a write), so those read the WINDOW newest matching jobs,
-- compute each one's key as src/base/job.c does, and sort them here:
-- complete = 0 says that older jobs exist that this order leaves out. The
-- cursor is the last job's (key, id) and the clock AT its keys were taken
-- at: the next pages compute waiting and duration (which grow while a job
-- waits or runs) at that same instant, so a page never repeats or skips a
-- job whose status did not change meanwhile.

local status, ty, run_by = ARGV[3], ARGV[4], ARGV[5]
local by, desc = ARGV[6], ARGV[7] == '1'
local after = ARGV[8]
local limit, window = tonumber(ARGV[9]), tonumber(ARGV[10])
local ascending = by == 'created' and not desc

-- The indexes to read, as list.lua picks them (the most selective filter
-- drives; running jobs live in P:leases).
local dims, leases = list_indexes(status, ty, run_by)
local classes = {}
for cls in string.gmatch(ARGV[2], '[^,]+') do classes[cls] = true end

-- Created ascending starts past the cursor id; the others from the newest.
local from = 0
if by == 'created' and after ~= '' then from = tonumber(after) or 0 end

-- Streams of ids in order, one per index, merged: each is read 200 at a
-- time, so WINDOW entries cost about WINDOW reads however many indexes.
-- An index (lib.lua ix_read) is read a bucket at a time; while the
-- backfill has not moved an earlier version's index, that one is a
-- stream too (lib.lua ix_legacy).
local CHUNK = 200
local streams = {}
local legacy = ix_legacy()
for cls in pairs(classes) do
	for _, dim in ipairs(dims) do
		streams[#streams + 1] = {name = cls .. dim, buf = {},
			pos = 1, last = from, done = false}
		if legacy then
			streams[#streams + 1] = {key = P .. K_ix .. cls .. dim, buf = {},
				pos = 1, last = from, done = false}
		end
	end
end
if leases then
	-- As many as run at once: bounded by the workers of all instances.
	local ids = {}
	for _, id in ipairs(redis.call('ZRANGE', P .. K_leases, 0, -1)) do
		local n = tonumber(id)
		if from == 0 or (ascending and n > from) or (not ascending and n < from) then
			ids[#ids + 1] = n
		end
	end
	table.sort(ids, function(x, y) if ascending then return x < y end return x > y end)
	streams[#streams + 1] = {buf = ids, pos = 1, done = true}
end

local function head(s)
	if s.pos > #s.buf and not s.done and s.name then
		local more
		s.buf, more = ix_read(s.name, s.last > 0 and s.last or nil, ascending, 1)
		s.pos, s.done = 1, not more
		if #s.buf > 0 then s.last = s.buf[#s.buf] end
	elseif s.pos > #s.buf and not s.done then
		local ids
		if ascending then
			ids = redis.call('ZRANGEBYSCORE', s.key, '(' .. I(s.last), '+inf',
				'LIMIT', 0, CHUNK)
		else
			ids = redis.call('ZREVRANGEBYSCORE', s.key,
				s.last > 0 and ('(' .. I(s.last)) or '+inf', '-inf', 'LIMIT', 0, CHUNK)
		end
		s.buf, s.pos = {}, 1
		for i, id in ipairs(ids) do s.buf[i] = tonumber(id) end
		if #ids < CHUNK then s.done = true end
		if #ids > 0 then s.last = s.buf[#ids] end
	end
	return s.buf[s.pos]
end

-- The next id of the merged order, or nil when every stream is dry. An
-- id in two streams (an earlier version's index and a bucket) comes once.
local function next_id()
	local best
	for _, s in ipairs(streams) do
		local id = head(s)
		if id and (not best or (ascending and id < best) or (not ascending and id > best)) then
			best = id
		end
	end
	if best then
		for _, s in ipairs(streams) do
			if head(s) == best then s.pos = s.pos + 1 end
		end
	end
	return best
end

-- (after the status, which job_hmget reads first)
local FIELDS = {F_type, F_run_by, F_parent, F_system, F_created_at,
	F_queued_at, F_started_at, F_finished_at, F_run_ms, F_run_since,
	F_claimed_at, F_instance}
local ORDER = {[S_PENDING] = 0, [S_IN_PROGRESS] = 1, [S_STOPPING] = 2,
	[S_STOPPED] = 3, [S_FINISHED] = 4, [S_CANCELED] = 5}

-- The key of a job by BY, or nil when it has none (never started): as
-- jobd_job_waiting_ms and jobd_job_duration_ms count them.
local at = NOW
local function key_of(v)
	local st = v[1]
	if by == 'status' then return ORDER[st] or 6 end
	local started = num(v[8])
	if by == 'started' then return started > 0 and started or nil end
	if by == 'waiting' then
		local f = num(v[7]) > 0 and num(v[7]) or num(v[6])
		local to
		if started > 0 then to = started
		elseif st == S_PENDING then to = at
		elseif num(v[9]) > 0 then to = num(v[9])
		else to = at end
		return to > f and to - f or 0
	end
	-- duration
	local since = num(v[11])
	if since <= 0 and running(st) then
		since = num(v[12])
		if since <= 0 and (v[13] or '') ~= '' then since = started end
	end
	local ms = num(v[10])
	if since > 0 and at > since then ms = ms + at - since end
	if started <= 0 and ms == 0 then return nil end
	return ms
end

local function matches(v)
	return v[1] and (status == '' or v[1] == status) and (ty == '' or v[2] == ty)
		and (run_by == '' or v[3] == run_by)
		and classes[class_of(v[4] or '', v[5] or '0')]
end

local out = {NOW, '', 1, 0}
local examined = 0

if by == 'created' then
	-- In index order: the first LIMIT matches from the cursor on.
	local found, last = 0, 0
	while found < limit and examined < window do
		local id = next_id()
		if not id then break end
		examined = examined + 1
		last = id
		if matches(job_hmget(id, unpack(FIELDS))) then
			out[#out + 1] = job_fields(id)
			found = found + 1
		end
	end
	-- More may follow unless every stream ran dry.
	if next_id() then out[2] = I(last) end
	out[4] = examined
	return out
end

-- Nil keys (never started) go last either way.
local NONE = desc and -1 or 9007199254740992
local function before(a, b)
	if a.k ~= b.k then
		if desc then return a.k > b.k end
		return a.k < b.k
	end
	return a.id > b.id
end
local cur
if after ~= '' then
	local k, id, t = string.match(after, '^(%-?%d+):(%d+):(%d+)$')
	if k then
		cur = {k = tonumber(k), id = tonumber(id)}
		at = tonumber(t)
	end
end

local rows = {}
while examined < window do
	local id = next_id()
	if not id then break end
	examined = examined + 1
	local v = job_hmget(id, unpack(FIELDS))
	if matches(v) then
		local r = {id = id, k = key_of(v) or NONE}
		if not cur or before(cur, r) then rows[#rows + 1] = r end
	end
end
if examined >= window and next_id() then out[3] = 0 end
table.sort(rows, before)
for i = 1, math.min(limit, #rows) do out[#out + 1] = job_fields(rows[i].id) end
if #rows > limit then
	out[2] = format('%d:%d:%d', rows[limit].k, rows[limit].id, at)
end
out[4] = examined
return out
