-- show.lua: jobs by id, with the Redis clock to compute live values.
-- ARGV: prefix, id...
-- Reply: {now_ms, job...}: each job the flat field/value list of its
--   hash, empty when the job does not exist. A pending job held back by
--   its type's limit (claim.lua) has the field held_by_limit too, which
--   says the limit and where its type stands.

local function held(id, f)
	local status, ty = nil, nil
	for i = 1, #f, 2 do
		if f[i] == F_status then status = f[i + 1]
		elseif f[i] == F_type then ty = f[i + 1] end
	end
	local l = status == S_PENDING and ty and limits()
	l = l and l[ty]
	if not l or not redis.call('ZSCORE', P .. K_held .. ty, id) then return end
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
	f[#f + 1] = 'held_by_limit'
	f[#f + 1] = 'type ' .. ty .. ': ' .. table.concat(what, ', ')
end

local out = {NOW}
for i = 2, #ARGV do
	local f = job_fields(ARGV[i])
	if #f > 0 then held(ARGV[i], f) end
	out[#out + 1] = f
end
return out
