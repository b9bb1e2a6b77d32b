-- limits.lua: writes the per-type limits of one instance's configuration
-- into P:limits (docs/job-types.md, "Limits"): the last instance to start
-- or reload sets them for all. A type newly limited in concurrency gets
-- its running count from the jobs running now; a type no longer limited
-- loses its count and window, and its held jobs go back to their queues.
-- ARGV: prefix, instance, n, then n groups of 4:
--   type, concurrency (0 = none), rate (0 = none), window_ms
-- Reply: {changed (0/1), the instance that wrote the limits before ('' if
--   none)}

local instance = ARGV[2]
local n = tonumber(ARGV[3])
local old = limits() or {}
local new, flat, changed = {}, {}, false
for i = 0, n - 1 do
	local a = 4 + i * 4
	local ty = ARGV[a]
	local v = I(tonumber(ARGV[a + 1])) .. ' ' .. I(tonumber(ARGV[a + 2])) ..
		' ' .. I(tonumber(ARGV[a + 3]))
	new[ty] = {c = tonumber(ARGV[a + 1]), r = tonumber(ARGV[a + 2])}
	flat[#flat + 1] = ty
	flat[#flat + 1] = v
	local o = old[ty]
	if not o or I(o.c) .. ' ' .. I(o.r) .. ' ' .. I(o.w) ~= v then changed = true end
end
for ty in pairs(old) do
	if not new[ty] then changed = true end
end
local by = redis.call('GET', P .. ':limits_by') or ''
redis.call('SET', P .. ':limits_by', instance)
if not changed then return {0, by} end

redis.call('DEL', P .. K_limits)
if #flat > 0 then redis.call('HSET', P .. K_limits, unpack(flat)) end
LIMITS = nil

-- The jobs whose handler runs now, by type (for newly counted types).
local run = nil
local function running_now()
	if run then return run end
	run = {}
	local ids = redis.call('ZRANGEBYSCORE', P .. K_leases, '-inf', '+inf')
	for _, id in ipairs(ids) do
		local v = job_hmget(id, F_type, F_awaiting)
		if running(v[1] or '') and v[3] ~= '1' then
			run[v[2]] = run[v[2]] or {}
			local r = run[v[2]]
			r[#r + 1] = id
		end
	end
	return run
end

for ty, l in pairs(new) do
	local o = old[ty]
	if l.c > 0 and not (o and o.c > 0) then
		local k = P .. K_slots .. ty
		redis.call('DEL', k)
		for _, id in ipairs(running_now()[ty] or {}) do
			redis.call('ZADD', k, NOWS, id)
		end
	elseif l.c == 0 then
		redis.call('DEL', P .. K_slots .. ty)
	end
	if l.r == 0 then redis.call('DEL', P .. K_starts .. ty) end
end
for ty in pairs(old) do
	if not new[ty] then
		redis.call('DEL', P .. K_slots .. ty, P .. K_starts .. ty)
		local hk = P .. K_held .. ty
		for _, id in ipairs(redis.call('ZRANGE', hk, 0, -1)) do
			local h = load_fields(id, {F_status, F_root, F_low_priority,
				F_children_total, F_vruntime, F_not_before})
			if h and h.status == S_PENDING then enqueue(h) end
		end
		redis.call('DEL', hk)
	end
end
WAKE = true
flush(nil)
return {1, by}
