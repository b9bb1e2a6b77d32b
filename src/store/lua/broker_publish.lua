-- broker_publish.lua: publish, refresh or read the live embedded broker.
-- ARGV: prefix, address ('' = only read), ttl_ms
-- Reply: {1, address} when ADDRESS is now the published one (TTL
--   refreshed), else {0, current address or ''}.
-- One script, so two instances starting together cannot both win.

local k = P .. ':broker'
local cur = redis.call('GET', k)
local addr = ARGV[2]
if addr ~= '' and (not cur or cur == addr) then
	redis.call('SET', k, addr, 'PX', ARGV[3])
	return {1, addr}
end
return {0, cur or ''}
