-- cascade.lua: applies an operation to the descendants of a job, a
-- bounded batch per call, so no call approaches the busy-script limit.
-- ARGV: prefix, stats_ttl_ms, task, batch
-- Reply: the number of jobs still to visit (0 = the task is done and gone).
-- The task is a todo list of "ID:CURSOR" entries: the children of ID with
-- ids above CURSOR remain to be visited. Any process may continue a task
-- whose operator died (jobd does, see engine housekeeping).

local task = ARGV[3]
local batch = tonumber(ARGV[4])
local tk = P .. ':cascade:' .. task
local todo = tk .. ':todo'
local meta = redis.call('HMGET', tk, 'op', 'actor')
if not meta[1] then
	redis.call('ZREM', P .. ':cascades', task)
	redis.call('DEL', todo)
	return 0
end
local op, actor = meta[1], meta[2]
local budget = batch
while budget > 0 do
	local e = redis.call('LPOP', todo)
	if not e then break end
	local sep = string.find(e, ':', 1, true)
	local id, cursor = string.sub(e, 1, sep - 1), string.sub(e, sep + 1)
	local kids = redis.call('ZRANGEBYSCORE', P .. K_children .. id,
		'(' .. cursor, '+inf', 'LIMIT', 0, budget)
	for _, cid in ipairs(kids) do
		local h = load(cid)
		if h then
			OPS[op](h, actor, false)
			if num(h.children_total) > 0 then
				redis.call('RPUSH', todo, cid .. ':0')
			end
		end
	end
	budget = budget - #kids - 1
	if #kids > 0 and redis.call('ZCOUNT', P .. K_children .. id,
		'(' .. kids[#kids], '+inf') > 0 then
		redis.call('LPUSH', todo, id .. ':' .. kids[#kids])
	end
end
local left = redis.call('LLEN', todo)
if left == 0 then
	redis.call('DEL', tk, todo)
	redis.call('ZREM', P .. ':cascades', task)
end
flush(tonumber(ARGV[2]))
return left
