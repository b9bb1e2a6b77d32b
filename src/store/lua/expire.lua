-- expire.lua: hands back the jobs whose lease expired (their instance died
-- or lost Redis): in progress becomes pending, stopping becomes stopped.
-- ARGV: prefix, stats_ttl_ms, max
-- Reply: the ids handed back.

local max = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', P .. K_leases, '-inf', NOW, 'LIMIT', 0, max)
local out = {}
for _, id in ipairs(ids) do
	local h = load_run(id)
	redis.call('ZREM', P .. K_leases, id)
	if h and (h.status == S_IN_PROGRESS or h.status == S_STOPPING) and h.awaiting ~= '1' then
		local f = {}
		settle_charge(h, f)
		local inst = redis.call('HGET', jkey(id), F_instance) or '?'
		local to = h.status == S_STOPPING and S_STOPPED or S_PENDING
		set_status(h, to, f)
		joblog(id, 'warn', h.attempt, 'lease of ' .. inst .. ' expired (attempt ' .. h.attempt .. '): ' .. to)
		out[#out + 1] = tonumber(id)
	end
end
flush(tonumber(ARGV[2]))
return out
