-- show.lua: jobs by id, with the Redis clock to compute live values.
-- ARGV: prefix, id...
-- Reply: {now_ms, job...}: each job the flat field/value list of its
--   hash, empty when the job does not exist (a hash without status is
--   pending, without payload {}: create writes neither at its default). A pending job held back by
--   its type's limit (claim.lua) has the field held_by_limit too, which
--   says the limit and where its type stands.

local function held(id, f)
	-- (a job without status is pending: lib.lua load_fields)
	local status, ty = S_PENDING, nil
	for i = 1, #f, 2 do
		if f[i] == F_status then status = f[i + 1]
		elseif f[i] == F_type then ty = f[i + 1] end
	end
	local what = status == S_PENDING and ty and limit_held(id, ty)
	if what then
		f[#f + 1] = 'held_by_limit'
		f[#f + 1] = what
	end
end

local out = {NOW}
for i = 2, #ARGV do
	local f = job_fields(ARGV[i])
	if #f > 0 then held(ARGV[i], f) end
	out[#out + 1] = f
end
return out
