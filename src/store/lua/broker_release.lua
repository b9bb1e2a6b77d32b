-- broker_release.lua: an embedded broker that stops withdraws its address.
-- ARGV: prefix, address
-- Reply: 1 when the key held ADDRESS and was deleted, else 0.

local k = P .. ':broker'
if redis.call('GET', k) == ARGV[2] then
	redis.call('DEL', k)
	return 1
end
return 0
