-- create.lua: creates N jobs, idempotently by key.
-- KEYS: none (derived from the prefix).
-- ARGV: prefix, stats_ttl_ms, actor, n, then n groups of 12:
--   key, type, parent, run_by, low_priority (0/1), payload (JSON text),
--   source, system (0/1), stoppable (0/1), restartable (0/1), retries,
--   backoff_ms
-- Reply: n entries, each {id, existed (0/1)} or an error string naming
--   the job's position ("parent 7 not found").
-- A job with a key whose mapping exists returns the existing id and
-- changes nothing, so a create retried after a lost reply makes no second
-- job. A child of a stopping or stopped parent is created stopped; no
-- child under a finished or canceled parent.

local ttl = tonumber(ARGV[2])
local actor = ARGV[3]
local n = tonumber(ARGV[4])
local out = {}
local W = 12

for i = 0, n - 1 do
	local a = 5 + i * W
	local key, ty, parent, run_by = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
	local low, payload, source, system = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
	local kk = nil
	local res = nil
	if key ~= '' then
		kk = P .. ':key:' .. (parent ~= '' and (parent .. '/') or '') .. key
		local existing = redis.call('GET', kk)
		if existing then res = {tonumber(existing), 1} end
	end
	local p = nil
	if not res and parent ~= '' then
		p = load(parent)
		if not p then
			res = 'parent ' .. parent .. ' not found'
		elseif terminal(p.status) then
			res = 'parent ' .. parent .. ' is ' .. p.status ..
				': no new children'
		elseif num(p.depth) + 1 >= MAX_DEPTH then
			res = 'parent ' .. parent .. ' is ' .. MAX_DEPTH ..
				' levels deep: no deeper children'
		end
	end
	if not res then
		local id = redis.call('INCR', P .. ':seq')
		local sid = tostring(id)
		local root, depth, status = sid, 0, 'pending'
		if p then
			root = p.root
			depth = num(p.depth) + 1
			if p.low_priority == '1' then low = '1' end
			if p.status == 'stopping' or p.status == 'stopped' then
				status = 'stopped'
			end
		end
		if system == '1' then run_by = '' end
		local f = {'id', sid, 'type', ty, 'status', status,
			'system', system, 'low_priority', low, 'root', root,
			'depth', depth, 'created_at', NOW, 'queued_at', NOW,
			'progress', 0, 'errors', 0, 'attempt', 0, 'restarts', 0,
			'children_total', 0, 'children_progress', 0,
			'inconsistent', 0, 'payload', payload,
			'stoppable', ARGV[a + 8], 'restartable', ARGV[a + 9],
			'retries', ARGV[a + 10], 'backoff_ms', ARGV[a + 11]}
		if key ~= '' then f[#f + 1] = 'key'; f[#f + 1] = key end
		if parent ~= '' then f[#f + 1] = 'parent'; f[#f + 1] = parent end
		if run_by ~= '' then f[#f + 1] = 'run_by'; f[#f + 1] = run_by end
		if source ~= '' then f[#f + 1] = 'source'; f[#f + 1] = source end
		redis.call('HSET', jkey(sid), unpack(f))
		if kk then redis.call('SET', kk, sid) end
		local cls = class_of(parent, system)
		for _, ik in ipairs(index_keys(cls, status, ty, run_by)) do
			redis.call('ZADD', ik, id, sid)
		end
		redis.call('HINCRBY', P .. ':count', status, 1)
		if p then
			local pk = jkey(parent)
			local old = overall(p)
			redis.call('ZADD', P .. ':children:' .. parent, id, sid)
			redis.call('HINCRBY', pk, 'children_total', 1)
			redis.call('HINCRBY', pk, 'children_' .. status, 1)
			p.children_total = num(p.children_total) + 1
			local new = overall(p)
			if p.parent ~= '' then propagate_progress(p, old, new) end
		end
		if status == 'pending' then enqueue(sid, root, low, 0) end
		stat_add('created', ty, 1)
		local how = 'created'
		if actor ~= '' then how = how .. ' by ' .. actor end
		if source ~= '' then how = how .. ' from ' .. source end
		if p then how = how .. ' as a child of ' .. parent end
		if status == 'stopped' then how = how .. ', stopped: parent is ' .. p.status end
		joblog(sid, 'info', 0, how)
		if p then joblog(parent, 'info', p.attempt, 'child ' .. sid .. ' (' .. ty .. ') created') end
		res = {id, 0}
	end
	out[#out + 1] = res
end
flush_stats(ttl)
flush_wake()
return out
