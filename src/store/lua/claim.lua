-- claim.lua: a worker pool takes up to N ready jobs, fairly per root.
-- ARGV: prefix, stats_ttl_ms, instance, lease_ms, max, max_low,
--   estimate_ms (charge for a root with no history)
-- Reply: the jobs one after the other, 8 entries each: id, attempt,
--   type, payload, checkpoint, low_priority (0/1), root, progress. (A
--   table a job, as JOBD.CLAIM answers, would cost the reply's conversion
--   seven lookups and a deferred length each; the store reads both.)
-- Roots take turns by virtual runtime
-- (docs/design.md, "Fair share between roots"): the root with the least is
-- served first and charged its mean duration at claim, so a batch does not
-- hand every worker to one root; finish.lua corrects the charge.
-- Low-priority jobs are taken only when no normal job is ready, at most
-- max_low of them. A job under a stopping, stopped or canceled ancestor is
-- stopped (or canceled) here instead of run, so a cascade in progress is
-- never raced.
-- A job whose type is at its limit (docs/job-types.md, "Limits") is held
-- in P:held:TYPE instead of run, off its root's queue, so it blocks
-- neither its root's other jobs nor other roots; held jobs go back to
-- their queues, first held first, as their type has room again.

local ttl = tonumber(ARGV[2])
local instance = ARGV[3]
local lease = tonumber(ARGV[4])
local max = tonumber(ARGV[5])
local max_low = tonumber(ARGV[6])
local estimate = tonumber(ARGV[7])
-- The lease of every job claimed, as text once.
local lease_until = I(NOW + lease)
local out, taken = {}, 0
-- What a claim reads of a job, in one constructor (see load_run).
local function load_claim(id)
	local v = redis.call('HMGET', jkey(id), F_status, F_parent, F_type,
		F_system, F_low_priority, F_attempt, F_progress, F_queued_at,
		F_created_at, F_started_at, F_not_before, F_avg_ms, F_vruntime,
		F_payload, F_checkpoint)
	if not v[3] then return nil end -- (no type: no job; lib.lua load_fields)
	return {id = id, status = v[1] or S_PENDING, parent = v[2] or '', type = v[3] or '',
		system = v[4] or '', low_priority = v[5] or '', attempt = v[6] or '',
		progress = v[7] or '', queued_at = v[8] or '', created_at = v[9] or '',
		started_at = v[10] or '', not_before = v[11] or '', avg_ms = v[12] or '',
		vruntime = v[13] or '', payload = v[14] or '', checkpoint = v[15] or ''}
end

-- The same for a root claimed alone (the common job): its whole hash, in
-- one HGETALL. A claim hands its payload over anyway, and a small hash
-- (a listpack) is read in one pass where HMGET scans it once a field,
-- each absent field the whole of it. No parent; what tells a stale
-- entry (lib.lua alone_ok) is read with the rest.
local function load_alone(id)
	local v = redis.call('HGETALL', jkey(id))
	if #v == 0 then return nil end
	local h = read_all(id, v)
	if not h then return nil end
	-- A root, whatever its hash says (as the module's claim_alone).
	h.parent = ''
	return h
end

-- Due retries become ready (bounded per call).
local due = redis.call('ZRANGEBYSCORE', P .. K_delayed, '-inf', NOWS, 'LIMIT', '0', '100')
for _, id in ipairs(due) do
	redis.call('ZREM', P .. K_delayed, id)
	local h = load_fields(id, {F_status, F_root, F_low_priority,
		F_children_total, F_vruntime, F_not_before})
	if h and h.status == S_PENDING then enqueue(h) end
end

-- Room left under each limited type's limits, counted once per call
-- (reading only: JOBD.CLAIM decides on the same counts whether to hand
-- over): ROOM[TYPE] = {c = free slots or nil, r = starts left or nil}.
local ROOM = {}
local function room(ty, l)
	local m = ROOM[ty]
	if m then return m end
	m = {}
	if l.c > 0 then m.c = l.c - redis.call('ZCARD', P .. K_slots .. ty) end
	if l.r > 0 then
		m.r = l.r - redis.call('ZCOUNT', P .. K_starts .. ty,
			'(' .. I(NOW - l.w), '+inf')
	end
	ROOM[ty] = m
	return m
end
local function room_left(m)
	local n = m.c or 1000000
	if m.r and m.r < n then n = m.r end
	return n
end

-- Held jobs go back to their queues, as many as their type has room for.
local LIM = limits()
if LIM then
	for ty, l in pairs(LIM) do
		local hk = P .. K_held .. ty
		local n = redis.call('EXISTS', hk) == 1 and room_left(room(ty, l)) or 0
		if n > 0 then
			local ids = redis.call('ZRANGE', hk, 0, n - 1)
			for _, id in ipairs(ids) do
				redis.call('ZREM', hk, id)
				local h = load_fields(id, {F_status, F_root, F_low_priority,
					F_children_total, F_vruntime, F_not_before})
				if h and h.status == S_PENDING then enqueue(h) end
			end
		end
	end
end

-- Whether job H may start under its type's limits; takes a slot and a
-- start when it may.
local function take(h)
	local l = LIM and LIM[h.type]
	if not l then return true end
	local m = room(h.type, l)
	if room_left(m) <= 0 then return false end
	if m.c then
		m.c = m.c - 1
		redis.call('ZADD', P .. K_slots .. h.type, NOWS, h.id)
	end
	if m.r then
		-- The window keeps the starts of the last interval only.
		local k = P .. K_starts .. h.type
		if m.r == l.r then redis.call('DEL', k)
		elseif not m.trimmed then
			redis.call('ZREMRANGEBYSCORE', k, '-inf', I(NOW - l.w))
		end
		m.r, m.trimmed = m.r - 1, true
		redis.call('ZADD', k, NOWS, h.id .. ':' .. I(num(h.attempt) + 1))
	end
	return true
end

-- The list of roots without children of each priority, read ahead
-- (docs/design.md, "Fair share between roots"): its entries from index
-- LIST[low].n on are LIST[low].ids from .i on; .n counts the entries
-- taken, off the list with one LTRIM at the end. The list is charged as
-- a group of as many roots as it holds, so that a stream of roots
-- without children does not hold its member ALONE, and the floor, at one
-- score while trees wait: each root it serves adds the estimate over .w,
-- the entries from the next on (LLEN, stale ones too), to .vr, ALONE's
-- score now (.at: its score in the set). ALONE serves while .vr is below
-- .nxt, the score of the member after it (nil: none); at the same score
-- that member sorts first.
local LIST = {['0'] = {n = 0, i = 1, ids = {}}, ['1'] = {n = 0, i = 1, ids = {}}}
local low_taken = 0

-- ALONE's score as charged goes back into the set: exact, as the module
-- writes the same double (%.17g reads back as the same number).
local function alone_score(l, low)
	if l.vr ~= l.at then
		redis.call('ZADD', roots_key(low), format('%.17g', l.vr), ALONE)
		l.at = l.vr
	end
end

-- Takes the root with the least virtual runtime and its first ready job.
-- Returns id, root, vruntime, more (the root has more ready jobs), alone
-- (a root with no ready key: its own queue), listed (LIST[low] when it
-- came from the list), or nil when no root is ready.
local function pick(low)
	local l = LIST[low]
	local id = l.ids[l.i]
	if id and (not l.nxt or l.vr < l.nxt) then
		l.i, l.n = l.i + 1, l.n + 1
		return id, id, l.vr, false, true, l
	end
	-- ALONE's turn is over, or its entries read ahead are done. Those
	-- not served yet stay read for its next turn in this call: nothing
	-- else writes the list meanwhile, and a claim that alternates
	-- between the list and a tree would otherwise read them again each
	-- turn.
	alone_score(l, low)
	local rk = roots_key(low)
	local r = redis.call('ZRANGE', rk, '0', '1', 'WITHSCORES')
	if #r == 0 then return nil end
	if r[1] == ALONE then
		-- The list's head. One read takes as many entries as this
		-- claim may still take: ALONE serves them while it stays the
		-- least (above; it stays in the set meanwhile).
		local ak = alone_key(low)
		local ids, i = l.ids, l.i
		if not ids[i] then
			local want = max - taken
			if low == '1' then want = math.min(want, max_low - low_taken) end
			ids, i = redis.call('LRANGE', ak, I(l.n), I(l.n + want - 1)), 1
			if #ids == 0 then
				l.ids, l.i = {}, 1
				redis.call('ZREM', rk, ALONE)
				return pick(low)
			end
		end
		l.ids, l.i, l.vr, l.at = ids, i + 1, tonumber(r[2]), tonumber(r[2])
		l.nxt = r[4] and tonumber(r[4])
		l.w = redis.call('LLEN', ak) - l.n
		l.n = l.n + 1
		return ids[i], ids[i], l.vr, false, true, l
	end
	r = redis.call('ZPOPMIN', rk)
	local root, vr = r[1], tonumber(r[2])
	if string.byte(root) == 61 then -- "=ID": a root that is its own queue
		root = string.sub(root, 2)
		return root, root, vr, false, true
	end
	local rq = ready_key(root, low)
	local ids = redis.call('ZRANGE', rq, 0, 1)
	if #ids == 0 then return root, root, vr, false end
	redis.call('ZREM', rq, ids[1])
	return ids[1], root, vr, #ids > 1
end

local tries = 0
while taken < max and tries < max * 4 + 8 do
	tries = tries + 1
	local low = '0'
	local id, root, vr, more, alone, listed = pick('0')
	if id == nil and low_taken < max_low then
		low = '1'
		id, root, vr, more, alone, listed = pick('1')
	end
	if id == nil then break end
	-- In whole milliseconds, as the module's (ALONE's may have a
	-- fraction).
	vr_served(floor(vr), low)
	local h
	if alone then h = load_alone(id) else h = load_claim(id) end
	if h then h.root = root end
	-- Stale entries (the job moved on, or sits in the other queue) are
	-- dropped; the queue it really is in still holds it.
	local ok
	if alone then ok = alone_ok(h, low)
	else
		ok = h and h.status == S_PENDING and
			(h.low_priority == '' and '0' or h.low_priority) == low
	end
	-- At its type's limit: held, not charged (its root goes on).
	local sa, how = nil, nil
	if ok and h.parent ~= '' then sa, how = stopped_ancestor(h.parent) end
	local held = ok and not sa and not take(h)
	if held then
		ok = false
		redis.call('ZADD', P .. K_held .. h.type, id, id)
	end
	-- A root the list serves charges ALONE its share (LIST above); a
	-- stale or held entry only leaves the list. The list's last entry
	-- takes ALONE out of the set (below, or the next pick), and what
	-- it was charged stays in the floor, where the list's next root
	-- brings it back: a list emptied at every claim (one root waiting
	-- at a time) would otherwise hold the floor, and starve trees, as
	-- a list never emptied did before the charge.
	if listed then
		if ok then
			listed.vr = listed.vr + estimate / (listed.w > 1 and listed.w or 1)
		end
		listed.w = listed.w - 1
		if listed.w == 0 then vr_served(floor(listed.vr), low) end
	end
	-- A root alone leaves the roots set with its run: nothing to charge.
	-- Should it become ready again, it starts at the current minimum.
	-- A root of the other priority keeps its own virtual runtime: this
	-- one counts on this priority's floor (lib.lua enqueue).
	local charge, mine = 0, true
	if ok and not alone then
		local avg
		if id == root then avg = num(h.avg_ms)
		else
			local v = redis.call('HMGET', jkey(root), F_avg_ms, F_low_priority)
			avg, mine = num(v[1]), (v[2] == '1' and '1' or '0') == low
		end
		charge = avg > 0 and avg or estimate
	end
	if more then
		redis.call('ZADD', roots_key(low), I(vr + charge), root)
	elseif ok and id ~= root and mine then
		redis.call('HSET', jkey(root), F_vruntime, I(vr + charge))
	end
	if ok then
		h.dequeued = true
		if sa then
			local to = how == S_CANCELED and S_CANCELED or S_STOPPED
			set_status(h, to)
			joblog(id, 'info', h.attempt, to .. ': ancestor ' .. sa .. ' is ' .. how)
		else
			local attempt = num(h.attempt) + 1
			-- "claimed by INSTANCE attempt N" is read from these fields
			-- (lib.lua run_start: the first claim's time is started_at).
			-- (room for the fields below: finish.lua's f)
			local f = {F_attempt, I(attempt), F_instance, instance,
				nil, nil, nil, nil}
			if h.started_at ~= '' then
				f[#f + 1] = F_claimed_at; f[#f + 1] = NOWS
			end
			if not alone then
				f[#f + 1] = F_charged; f[#f + 1] = I(charge)
			end
			if num(h.not_before) > 0 then
				f[#f + 1] = F_not_before; f[#f + 1] = '0'
			end
			if id == root and not more and not alone then
				f[#f + 1] = F_vruntime; f[#f + 1] = I(vr + charge)
			end
			if h.started_at == '' then
				f[#f + 1] = F_started_at; f[#f + 1] = NOWS
				local from = h.queued_at ~= '' and h.queued_at or h.created_at
				stat_wait(h.type, NOW - num(from))
			end
			h.lease_until = lease_until
			set_status(h, S_IN_PROGRESS, f)
			if low == '1' then low_taken = low_taken + 1 end
			-- The id and the root as the text they are (the store reads
			-- either): tonumber parses a text twice.
			local o = taken * 8
			taken = taken + 1
			-- (a job without payload has {}: create writes none)
			out[o + 1], out[o + 2], out[o + 3], out[o + 4] = id, attempt,
				h.type, h.payload ~= '' and h.payload or '{}'
			out[o + 5] = h.checkpoint
			out[o + 6] = h.low_priority == '1' and 1 or 0
			out[o + 7], out[o + 8] = root, h.progress
		end
	end
end
-- Out of tries with room left: what remains may be ready behind the
-- entries dropped (a cancel of many waiting roots leaves as many stale
-- entries in the list, lib.lua alone_ok). The wake-up has the workers
-- claim again at once rather than after their wait.
if taken < max and tries >= max * 4 + 8 then WAKE = true end
-- The entries served leave their list; an empty list's ALONE leaves the
-- roots set, another's takes the score it was charged.
for low, l in pairs(LIST) do
	if l.n > 0 then
		local ak = alone_key(low)
		redis.call('LTRIM', ak, I(l.n), '-1')
		if redis.call('EXISTS', ak) == 0 then
			redis.call('ZREM', roots_key(low), ALONE)
		else
			alone_score(l, low)
		end
	end
end
flush(ttl)
return out
