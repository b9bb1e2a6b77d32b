-- claim.lua: a worker pool takes up to N ready jobs, fairly per root.
-- ARGV: prefix, stats_ttl_ms, instance, lease_ms, max, max_low,
--   estimate_ms (charge for a root with no history)
-- Reply: a list of jobs, each {id, attempt, type, payload, checkpoint,
--   low_priority (0/1), root, progress}.
-- Roots take turns by virtual runtime (DESIGN section 5): the root with
-- the least is served first and charged its mean duration at claim, so a
-- batch does not hand every worker to one root; finish.lua corrects the
-- charge. Low-priority jobs are taken only when no normal job is ready,
-- at most max_low of them. A job under a stopping or stopped ancestor is
-- stopped here instead of run, so a cascade in progress is never raced.

local ttl = tonumber(ARGV[2])
local instance = ARGV[3]
local lease = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local max_low = tonumber(ARGV[6])
local estimate = tonumber(ARGV[7])
local out = {}

-- Due retries become ready (bounded per call).
local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', NOW, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
	redis.call('ZREM', P .. ':delayed', id)
	local v = redis.call('HMGET', jkey(id), 'status', 'root', 'low_priority')
	if v[1] == 'pending' then enqueue(id, v[2], v[3], 0) end
end

local function pick(low)
	local rk = roots_key(low)
	local r = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
	if #r == 0 then return nil end
	local root, vr = r[1], tonumber(r[2])
	local rq = ready_key(root, low)
	local ids = redis.call('ZRANGE', rq, 0, 0)
	if #ids == 0 then
		redis.call('ZREM', rk, root)
		return false
	end
	local id = ids[1]
	redis.call('ZREM', rq, id)
	local avg = num(redis.call('HGET', jkey(root), 'avg_ms'))
	local charge = avg > 0 and avg or estimate
	redis.call('SET', P .. ':vr_floor', vr)
	redis.call('HSET', jkey(root), 'vruntime', vr + charge)
	if redis.call('EXISTS', rq) == 1 then
		redis.call('ZADD', rk, vr + charge, root)
	else
		redis.call('ZREM', rk, root)
	end
	return id, charge
end

local low_taken = 0
local tries = 0
while #out < max and tries < max * 4 + 8 do
	tries = tries + 1
	local low = '0'
	local id, charge = pick('0')
	if id == nil and low_taken < max_low then
		low = '1'
		id, charge = pick('1')
	end
	if id == nil then break end
	if id then
		local h = load(id)
		if h and h.status == 'pending' then
			local sa, how = nil, nil
			if h.parent ~= '' then sa, how = stopped_ancestor(h.parent) end
			if sa then
				local to = how == 'canceled' and 'canceled' or 'stopped'
				set_status(h, to)
				joblog(id, 'info', h.attempt, to .. ': ancestor ' .. sa .. ' is ' .. how)
			else
				local attempt = num(h.attempt) + 1
				local f = {'attempt', attempt, 'instance', instance,
					'run_since', NOW, 'charged', charge,
					'not_before', 0}
				if h.started_at == '' then
					f[#f + 1] = 'started_at'; f[#f + 1] = NOW
					stat_wait(h.type, NOW - num(h.queued_at))
				end
				h.not_before = 0
				set_status(h, 'in_progress', f)
				redis.call('ZADD', P .. ':leases', NOW + lease, id)
				joblog(id, 'info', attempt, 'claimed by ' .. instance .. ' attempt ' .. attempt)
				if low == '1' then low_taken = low_taken + 1 end
				local v = redis.call('HMGET', jkey(id), 'payload', 'checkpoint')
				out[#out + 1] = {tonumber(id), attempt, h.type, v[1] or '{}',
					v[2] or '', tonumber(h.low_priority) or 0,
					tonumber(h.root), h.progress}
			end
		end
	end
end
flush_stats(ttl)
return out
