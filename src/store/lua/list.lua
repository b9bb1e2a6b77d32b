-- list.lua: one bounded page of jobs, newest first, from the indexes.
-- ARGV: prefix, classes (comma list of ru, rs, cu, cs: root/child x
--   user/system), status, type, run_by ('' = any), cursor (list ids below
--   it; 0 = from the newest), limit, budget (index entries examined at most)
-- Reply: {now_ms, next_cursor, more (0/1), job...} where each job is the
--   flat field/value list of its hash. more = 1 with fewer than limit
--   jobs means the budget ran out: call again from next_cursor.
-- The most selective filter drives (status, then type, then run_by); the
-- others are checked on the job hash. Without a filter the six status
-- indexes of each class are merged (there is no index of all jobs: one
-- write less per job). No scan is unbounded.

local status, ty, run_by = ARGV[3], ARGV[4], ARGV[5]
local cursor = tonumber(ARGV[6])
local limit, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
-- Running jobs are indexed by P:leases only (all classes, see lib.lua).
local dims, leases = list_indexes(status, ty, run_by)
local classes = {}
for cls in string.gmatch(ARGV[2], '[^,]+') do classes[cls] = true end
local max = cursor > 0 and ('(' .. cursor) or '+inf'
-- Without filters beyond the driving one every candidate matches, so
-- each index needs to give only one page.
local post = leases or (status ~= '' and (ty ~= '' or run_by ~= '')) or
	(status == '' and ty ~= '' and run_by ~= '')
local fetch = post and budget or limit

local cand = {}
local full = false
if leases then
	-- As many as run at once: bounded by the workers of all instances.
	local ids = {}
	for _, id in ipairs(redis.call('ZRANGE', P .. K_leases, 0, -1)) do
		local n = tonumber(id)
		if cursor == 0 or n < cursor then ids[#ids + 1] = n end
	end
	table.sort(ids, function(x, y) return x > y end)
	for i = 1, math.min(#ids, fetch) do cand[#cand + 1] = ids[i] end
	if #ids > fetch then full = true end
end
-- Each index gives up to FETCH ids below the cursor (its buckets, newest
-- first); while the backfill has not moved an earlier version's index,
-- that one too (lib.lua ix_legacy).
local legacy = ix_legacy()
for cls in pairs(classes) do
	for _, dim in ipairs(dims) do
		local ids = ix_read(cls .. dim, cursor > 0 and cursor or nil, false, fetch)
		if #ids >= fetch then full = true end
		for i = 1, math.min(#ids, fetch) do cand[#cand + 1] = ids[i] end
		if legacy then
			ids = redis.call('ZREVRANGEBYSCORE', P .. K_ix .. cls .. dim,
				max, '-inf', 'LIMIT', 0, fetch)
			if #ids == fetch then full = true end
			for _, id in ipairs(ids) do cand[#cand + 1] = tonumber(id) end
		end
	end
end
table.sort(cand, function(x, y) return x > y end)
-- An id in both an old index and a bucket (or in two old ones) once.
local j = 0
for i = 1, #cand do
	if cand[i] ~= cand[j] then
		j = j + 1
		cand[j] = cand[i]
	end
end
for i = #cand, j + 1, -1 do cand[i] = nil end

local out = {NOW, 0, 0}
local found, examined, last = 0, 0, 0
for _, id in ipairs(cand) do
	if found >= limit or examined >= fetch then break end
	examined = examined + 1
	last = id
	local v = job_hmget(id, F_type, F_run_by,
		F_parent, F_system)
	if v[1] and (status == '' or v[1] == status) and (ty == '' or v[2] == ty)
		and (run_by == '' or v[3] == run_by)
		and classes[class_of(v[4] or '', v[5] or '0')] then
		out[#out + 1] = job_fields(id)
		found = found + 1
	end
end
-- More may follow when we stopped early or an index had more than we read.
if (examined < #cand) or full then
	out[2] = last; out[3] = 1
end
return out
