-- lease.lua: a named leader lease (one stats publisher, one cleaner).
-- ARGV: prefix, name, holder, ttl_ms (0 = release it if held by holder)
-- Reply: 1 when HOLDER holds the lease now (taken or renewed), else 0.
-- One script, so two instances cannot both take a free lease.

local k = P .. ':lease:' .. ARGV[2]
local cur = redis.call('GET', k)
local ttl = tonumber(ARGV[4])
if ttl == 0 then
	if cur == ARGV[3] then redis.call('DEL', k) end
	return 0
end
if not cur or cur == ARGV[3] then
	redis.call('SET', k, ARGV[3], 'PX', ttl)
	return 1
end
return 0
