-- show.lua: jobs by id, with the Redis clock to compute live values.
-- ARGV: prefix, id...
-- Reply: {now_ms, job...}: each job the flat field/value list of its
--   hash, empty when the job does not exist.

local out = {NOW}
for i = 2, #ARGV do out[#out + 1] = job_fields(ARGV[i]) end
return out
