-- create.lua: creates N jobs, idempotently by key.
-- ARGV: prefix, stats_ttl_ms, actor, n, t, then t groups of 6, the
--   policy of each type of the batch: type, system (0/1), stoppable (0/1),
--   restartable (0/1), retries, backoff_ms; then n groups of 8: key, type,
--   parent, run_by, low_priority (0/1), payload (JSON text), source, when
--   ('' = now, 'MS' = at MS since the epoch, '+MS' = MS after the Redis
--   clock of this call)
-- Reply: n entries, each the job's id (negative when its key named a job
--   already: that job's id) or an error string naming why ("parent 7 not
--   found"), as JOBD.CREATE answers: a table a job would cost the reply's
--   conversion several lookups each.
-- A job with a key whose mapping exists returns the existing id and
-- changes nothing, so a create retried after a lost reply makes no second
-- job. A child of a stopping or stopped parent is created stopped; no
-- child under a finished or canceled parent.
-- A job whose WHEN is later than the Redis clock is scheduled: it stores
-- run_at (the time asked for, kept), not_before (so it waits in
-- P:delayed as a retry does, and claim.lua makes it ready when its time
-- comes) and queued_at (its waiting time counts from there); a WHEN not
-- after the clock is now, and stores nothing (docs/design.md, "Scheduled
-- jobs").
-- The hash holds only what differs from the defaults (docs/redis-keys.md):
-- a zero counter or a default policy is an absent field, which keeps the
-- hash small and every later read of it cheap.

local ttl = tonumber(ARGV[2])
local actor = ARGV[3]
local n = tonumber(ARGV[4])
local out = {}
-- The policies, once per type rather than once per job.
local POLICY = {}
local t = tonumber(ARGV[5])
for i = 0, t - 1 do
	local a = 6 + i * 6
	local pol = {system = ARGV[a + 1], stoppable = ARGV[a + 2],
		restartable = ARGV[a + 3], retries = ARGV[a + 4],
		backoff_ms = ARGV[a + 5]}
	-- The policy's fields of the new hash (those that differ from
	-- their defaults), the same for every job of the type.
	local pf = {}
	local function opt(name, v, default)
		if v ~= default then pf[#pf + 1] = name; pf[#pf + 1] = v end
	end
	opt(F_stoppable, pol.stoppable, '1')
	opt(F_restartable, pol.restartable, '0')
	opt(F_retries, pol.retries, '0')
	if pol.retries ~= '0' then opt(F_backoff_ms, pol.backoff_ms, '') end
	pol.fields = pf
	POLICY[ARGV[a]] = pol
end
local FIRST = 6 + t * 6
local W = 8
-- Ids for the whole batch in one call; unused ones are simply skipped.
-- P:seq counts the shard's ids: the Nth is N x SHARDS + SHARD (lib.lua
-- shard_parse; N itself in a store of one shard).
local next_id = redis.call('INCRBY', P .. K_seq, I(n)) - n

-- New roots without children join the lists of roots without children
-- with one RPUSH per list, and ALONE the roots set with one ZADD NX
-- (enqueue() does the same one job at a time).
local ALONE_IDS = {['0'] = {}, ['1'] = {}}
local function alone_flush()
	for low, ids in pairs(ALONE_IDS) do
		if #ids > 0 then
			for i = 1, #ids, 4000 do
				redis.call('RPUSH', alone_key(low),
					unpack(ids, i, math.min(i + 3999, #ids)))
			end
			redis.call('ZADD', roots_key(low), 'NX', I(vr_floor(low)), ALONE)
			ALONE_IDS[low] = {}
		end
	end
end
-- The time a job's WHEN argument names, or nil when it is now or past.
local function scheduled_at(when)
	if when == '' then return nil end
	local t
	if string.byte(when) == 43 then -- "+MS"
		t = NOW + (tonumber(string.sub(when, 2)) or 0)
	else
		t = tonumber(when) or 0
	end
	if t > NOW then return t end
	return nil
end

-- The answer for a key that names job V already: its id, negative. A
-- child's mapping is not checked against its job: one that holds no id
-- keeps the answer of earlier versions, {id, 1}.
local function existed(v)
	local id = tonumber(v)
	if id and id > 0 then return -id end
	return {id, 1}
end

-- The type indexes of the batch by class and type (CLASS:t:TYPE).
local TYPE_IX = {}

-- The parents of the batch, each loaded once (false: no such job): a
-- handler's children come in batches under one parent, and loading it
-- reads every field of its hash. What this call changes in a parent is
-- kept in its table (children_total) or drops the cache (the progress of
-- ancestors, below).
local PARENTS = {}
local function parent_of(parent)
	local p = PARENTS[parent]
	if p == nil then
		p = load(parent) or false
		PARENTS[parent] = p
	end
	return p or nil
end

for i = 0, n - 1 do
	local a = FIRST + i * W
	local key, ty, parent, run_by = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
	local low, payload, source = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
	local at = scheduled_at(ARGV[a + 7])
	local pol = POLICY[ty]
	local system = pol.system
	local ck, cf = nil, nil
	local res = nil
	local p = nil
	if parent ~= '' then p = parent_of(parent) end
	if key ~= '' and p then
		-- A child's key, in its parent's hash (or, until backfill.lua
		-- moved it, where the earlier layout kept it).
		ck, cf = P .. K_ckeys .. parent, ckey_field(p.restarts, key)
		local existing = redis.call('HGET', ck, cf)
		keys_conf()
		if not existing and KEYS_OLD then
			existing = redis.call('GET', P .. K_key .. child_scope(parent, p.restarts) .. key)
		end
		if existing then res = existed(existing) end
	elseif key ~= '' and parent == '' then
		local existing = key_find(key)
		if existing then res = existed(existing) end
	end
	if not res and parent ~= '' then
		if not p then
			res = 'parent ' .. parent .. ' not found'
		elseif terminal(p.status) then
			res = 'parent ' .. parent .. ' is ' .. p.status ..
				': no new children'
		elseif num(p.depth) + 1 >= N_MAX_DEPTH then
			res = 'parent ' .. parent .. ' is ' .. N_MAX_DEPTH ..
				' levels deep: no deeper children'
		end
	end
	if not res then
		next_id = next_id + 1
		local id = next_id * SHARDS + SHARD
		local sid = I(id) -- ("%d": tostring's "%.14g" costs more)
		local root, status = sid, S_PENDING
		if p then
			root = p.root
			if p.low_priority == '1' then low = '1' end
			-- Children run for whoever ran their parent.
			if run_by == '' then run_by = p.run_by end
			if p.status == S_STOPPING or p.status == S_STOPPED then
				status = S_STOPPED
			end
		end
		if system == '1' then run_by = '' end
		-- No id (the key has it), no root for a root job (its own). A
		-- field that holds its default is left out; NF counts F's
		-- entries (cheaper than #f a field on this hot path).
		-- Nor the status when pending (a job without status is), nor
		-- the payload when {} (docs/redis-keys.md): 32 bytes a pending
		-- job in jemalloc's classes (bench/README.md).
		local f = {F_type, ty, F_created_at, NOWS}
		local nf = 4
		if status ~= S_PENDING then f[5] = F_status; f[6] = status; nf = 6 end
		if payload ~= '{}' then f[nf + 1] = F_payload; f[nf + 2] = payload; nf = nf + 2 end
		if p then f[nf + 1] = F_root; f[nf + 2] = root; nf = nf + 2 end
		if system ~= '0' then f[nf + 1] = F_system; f[nf + 2] = system; nf = nf + 2 end
		if low ~= '0' then f[nf + 1] = F_low_priority; f[nf + 2] = low; nf = nf + 2 end
		if key ~= '' then f[nf + 1] = F_key; f[nf + 2] = key; nf = nf + 2 end
		if p then f[nf + 1] = F_parent; f[nf + 2] = parent; nf = nf + 2 end
		if run_by ~= '' then f[nf + 1] = F_run_by; f[nf + 2] = run_by; nf = nf + 2 end
		if source ~= '' then f[nf + 1] = F_source; f[nf + 2] = source; nf = nf + 2 end
		local pf = pol.fields
		for j = 1, #pf do f[nf + j] = pf[j] end
		nf = nf + #pf
		if p then f[nf + 1] = F_depth; f[nf + 2] = tostring(num(p.depth) + 1); nf = nf + 2 end
		-- The audit log reads "created by ACTOR" from here, not a stream;
		-- a job with a source came from the consumer, which it names itself.
		if actor ~= '' and actor ~= run_by and source == '' then
			f[nf + 1] = F_created_by; f[nf + 2] = actor; nf = nf + 2
		end
		if at then
			local t = I(at)
			f[nf + 1] = F_run_at; f[nf + 2] = t
			f[nf + 3] = F_not_before; f[nf + 4] = t
			f[nf + 5] = F_queued_at; f[nf + 6] = t
		end
		redis.call('HSET', jkey(sid), unpack(f))
		-- The key is written through at once: a key repeated later in
		-- the batch finds it, and a call failing later leaves no job
		-- without its key.
		if ck then
			redis.call('HSET', ck, cf, sid)
		elseif key ~= '' and parent == '' then
			key_map(key, sid)
		end
		local cls = class_of(parent, system)
		-- (lib.lua index_names, without its table; the bucket from the
		-- id as a number, and each type's index named once a call)
		local b = floor(id / IXW)
		local tix = TYPE_IX[cls]
		if not tix then
			tix = {}
			TYPE_IX[cls] = tix
		end
		local tname = tix[ty]
		if not tname then
			tname = cls .. ':t:' .. ty
			tix[ty] = tname
		end
		bucket_later(IX_S[cls][status], b, sid, true)
		bucket_later(tname, b, sid, true)
		if run_by ~= '' then bucket_later(cls .. ':u:' .. run_by, b, sid, true) end
		count_add(status, 1)
		if p then
			local pk = jkey(parent)
			local old = overall(p)
			redis.call('ZADD', P .. K_children .. parent, sid, sid)
			redis.call('HINCRBY', pk, F_children_total, '1')
			redis.call('HINCRBY', pk, 'children_' .. status, '1')
			if p.parent == '' and num(p.children_total) == 0 then
				-- In the list first, should it be one of this batch's.
				alone_flush()
				root_to_tree(p)
			end
			p.children_total = num(p.children_total) + 1
			local new = overall(p)
			if p.parent ~= '' and old ~= new then
				propagate_progress(p, old, new)
				PARENTS = {} -- it wrote children_progress above P
			end
			joblog(parent, 'info', p.attempt, 'child ' .. sid .. ' (' .. ty .. ') created')
			if status == S_STOPPED then
				joblog(sid, 'info', 0, 'created stopped: parent ' .. parent .. ' is ' .. p.status)
			end
		end
		if status == S_PENDING and at then
			enqueue({id = sid, root = root, low_priority = low,
				children_total = 0, not_before = at, vruntime = ''})
		elseif status == S_PENDING and not p then
			local q = ALONE_IDS[low] or ALONE_IDS['0']
			q[#q + 1] = sid
			WAKE = true
		elseif status == S_PENDING then
			-- Its root may be one of this batch's: queued first.
			alone_flush()
			enqueue({id = sid, root = root, low_priority = low,
				children_total = 0, not_before = '', vruntime = ''})
		end
		stat_one(W_created, ty)
		res = id
	end
	out[#out + 1] = res
end
alone_flush()
flush(ttl)
return out
