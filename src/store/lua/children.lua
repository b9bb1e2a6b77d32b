-- children.lua: one page of a job's direct children, oldest first.
-- ARGV: prefix, id, cursor (ids above it; 0 = from the first), limit
-- Reply: {now_ms, next_cursor (0 = none), job...} with each job the flat
--   field/value list of its hash; or an error string when ID is unknown.

local id, cursor, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', jkey(id)) == 0 then return 'job ' .. id .. ' not found' end
local ids = redis.call('ZRANGEBYSCORE', P .. K_children .. id, '(' .. cursor,
	'+inf', 'LIMIT', 0, limit + 1)
local out = {NOW, 0}
for i, cid in ipairs(ids) do
	if i > limit then out[2] = tonumber(ids[limit]); break end
	out[#out + 1] = job_fields(cid)
end
return out
