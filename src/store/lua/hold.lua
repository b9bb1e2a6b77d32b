-- hold.lua: holds every call of the deployment while jobctl cluster move
-- moves its slot to another primary, then lets them go (docs/scaling.md,
-- "Moving the slot"). The one function that runs while P:hold exists.
-- ARGV: prefix, action, then for 'set': to (host:port), by (who moves it),
--   node (the target's node id); for 'release': node (the hold must be a
--   move's to it; '' for any) and min_held (ms the hold lasted at least,
--   as another node's clock counts)
-- set: P:hold says where the slot goes (to, node), who moves it and since
--   when (ms, Redis's clock); a hold already there is kept, so a move
--   that was interrupted resumes under it, and another move sees whose
--   it is. Reply: {to, by, since, node} of the hold.
-- release: no heartbeat could renew a lease while the calls were held,
--   so every lease (P:leases) is lengthened by how long the hold lasted:
--   a job keeps the time it had left, and no instance takes a running
--   job for one whose owner died. The hold is counted by this node's
--   clock from its start (written by the source's), and at least
--   min_held. A lease without end (+inf: a parent waiting for its
--   children) stays so. Then P:hold goes. Reply: the leases lengthened,
--   or -1 when there was no hold.

local hk = P .. K_hold
local action = ARGV[2]
if action == 'set' then
	if redis.call('EXISTS', hk) == 0 then
		redis.call('HSET', hk, 'to', ARGV[3], 'by', ARGV[4], 'since', NOWS,
			'node', ARGV[5])
	end
	return redis.call('HMGET', hk, 'to', 'by', 'since', 'node')
end
if action ~= 'release' then
	return redis.error_reply('ERR hold.lua: unknown action ' .. tostring(action))
end
local h = redis.call('HMGET', hk, 'to', 'since', 'node')
if redis.call('EXISTS', hk) == 0 then return -1 end
if (ARGV[3] or '') ~= '' and h[3] ~= ARGV[3] then
	return redis.error_reply('ERR the calls are held by a move to ' ..
		tostring(h[1]) .. ' (node ' .. tostring(h[3]) .. '), not to node ' ..
		ARGV[3])
end
local since = tonumber(h[2] or '')
local held = max(since and NOW - since or 0, tonumber(ARGV[4] or '') or 0)
local n = 0
if held > 0 then
	local v = redis.call('ZRANGE', LEASES, 0, -1, 'WITHSCORES')
	local add = {}
	for i = 1, #v, 2 do
		local sc = tonumber(v[i + 1])
		if sc and sc < math.huge then
			add[#add + 1] = I(sc + held)
			add[#add + 1] = v[i]
		end
	end
	n = #add / 2
	-- In chunks: unpack() is bounded by the Lua stack.
	for i = 1, #add, 4000 do
		redis.call('ZADD', LEASES, unpack(add, i, min(i + 3999, #add)))
	end
end
redis.call('DEL', hk)
return n
