-- list.lua: one bounded page of jobs, newest first, from the indexes.
-- ARGV: prefix, classes (comma list of ru, rs, cu, cs: root/child x
--   user/system), status, type, run_by ('' = any), cursor (list ids below
--   it; 0 = from the newest), limit, budget (index entries examined at most)
-- Reply: {now_ms, next_cursor, more (0/1), job...} where each job is the
--   flat field/value list of its hash. more = 1 with fewer than limit
--   jobs means the budget ran out: call again from next_cursor.
-- The most selective filter drives (status, then type, then run_by); the
-- others are checked on the job hash. No scan is unbounded.

local status, ty, run_by = ARGV[3], ARGV[4], ARGV[5]
local cursor = tonumber(ARGV[6])
local limit, budget = tonumber(ARGV[7]), tonumber(ARGV[8])
local dim = ''
if status ~= '' then dim = ':s:' .. status
elseif ty ~= '' then dim = ':t:' .. ty
elseif run_by ~= '' then dim = ':u:' .. run_by end
local max = cursor > 0 and ('(' .. cursor) or '+inf'

local cand = {}
local full = false
for cls in string.gmatch(ARGV[2], '[^,]+') do
	local ids = redis.call('ZREVRANGEBYSCORE', P .. ':ix:' .. cls .. dim, max,
		'-inf', 'LIMIT', 0, budget)
	if #ids == budget then full = true end
	for _, id in ipairs(ids) do cand[#cand + 1] = tonumber(id) end
end
table.sort(cand, function(x, y) return x > y end)

local out = {NOW, 0, 0}
local found, examined, last = 0, 0, 0
for _, id in ipairs(cand) do
	if found >= limit or examined >= budget then break end
	examined = examined + 1
	last = id
	local v = redis.call('HMGET', jkey(id), 'status', 'type', 'run_by')
	if v[1] and (status == '' or v[1] == status) and (ty == '' or v[2] == ty)
		and (run_by == '' or v[3] == run_by) then
		out[#out + 1] = redis.call('HGETALL', jkey(id))
		found = found + 1
	end
end
-- More may follow when we stopped early or an index had more than we read.
if (examined < #cand) or full then
	out[2] = last; out[3] = 1
end
return out
