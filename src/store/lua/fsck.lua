-- fsck.lua: checks (and with repair, fixes) a range of jobs against the
-- invariants of the store. The job hashes are the truth: indexes, ready
-- queues, leases and the parent counters are derived from them.
-- ARGV: prefix, from, count, repair (0/1), then the ids of the range
--   in the list of roots without children and in its low-priority list
--   (P:alone, P:alone_low), each as text of ids separated by spaces;
--   FROM and COUNT count the shard's ids, the Nth of them N x SHARDS +
--   SHARD (lib.lua shard_parse), N itself in a store of one shard
-- Reply: {next (0 = past the last id), fixed, {violation...},
--   {status, n, status, n, ...} (jobs seen per status)}
-- A hash of the range without a type is no job (a job without status is
-- pending: lib.lua load_fields), reported. Checked for every job of the
-- range: it is in exactly the status index its status implies (P:leases for running jobs), in its type and run_by
-- indexes (the bucket of its id; fsck_refs.lua checks each bucket's
-- entries and the directories), in the bucket of retention's index of
-- its finished_at when it is an ended root (fsck_refs.lua checks that
-- the buckets hold nothing else); a pending job is in exactly one ready
-- queue (or delayed; a root without children: its list, or its "=ID"
-- member), no other job in any; a job in the delayed set has a
-- not_before (the claim counts membership only with one: lib.lua
-- is_delayed). A job whose not_before is to come may wait in its ready
-- queue: a claim moves a due job there with its not_before, which stays
-- until the job is claimed, and a Redis clock that steps back (a
-- failover to a node behind, an NTP step) reads before it again; the
-- claim runs it, so fsck leaves it. A parent's children counters,
-- children progress and tree_stopping equal what its children say. A
-- pending job held by its type's limit (P:held:TYPE) is in no ready
-- queue. The running count of a type with a concurrency limit
-- (P:slots:TYPE) holds exactly the jobs of the type whose handler runs
-- (running, not waiting for children); the last call checks the entries
-- of the slots and held sets themselves. A job's idempotency key
-- (docs/redis-keys.md, "Idempotency keys") finds it: a root's, when the
-- root was made in the current or the previous key window under the
-- window it was made under (the current one, or for a root made before
-- a change of the window, the one the change replaced, while its keys
-- live), in that window's bucket (repair: mapped there); a child's in its parent's
-- P:ckeys, under its run's field (repair, for a child of the parent's
-- current run: mapped). Not checked while keys of an earlier version
-- wait to be moved (backfill.lua). Work per call is bounded by COUNT
-- jobs and CHILD_MAX children per parent.

local from, count = tonumber(ARGV[2]), tonumber(ARGV[3])
local repair = ARGV[4] == '1'
-- A pending root without children is queued when it is in the list of
-- its priority (any number of times: lib.lua alone_ok) or has its "=ID"
-- member. fsck.c reads the lists first, in bounded calls, and passes the
-- range's ids; a root listed since (at the tail) is looked for there,
-- within the last LISTED_TAIL entries.
local LISTED = {['0'] = {}, ['1'] = {}}
for low, a in pairs({['0'] = ARGV[5], ['1'] = ARGV[6]}) do
	for x in string.gmatch(a or '', '%d+') do LISTED[low][x] = true end
end
local LISTED_TAIL = 1000
local function listed(id, low)
	return LISTED[low][id] or redis.call('LPOS', alone_key(low), id,
		'RANK', -1, 'MAXLEN', LISTED_TAIL) ~= false
end
local CHILD_MAX = 10000
local seq = num(redis.call('GET', P .. K_seq))
local bad = {}
local fixed = 0
local seen = {}

local function violation(id, msg)
	bad[#bad + 1] = 'job ' .. id .. ': ' .. msg
end

-- Membership of ID in KEY should be WANT; repairs with SCORE when missing.
local function member(id, key, want, score, what)
	local has = redis.call('ZSCORE', key, id) ~= false
	if has == want then return end
	violation(id, (want and 'missing from ' or 'stale entry in ') .. what ..
		' (' .. key .. ')')
	if repair then
		if want then redis.call('ZADD', key, score, id)
		else redis.call('ZREM', key, id) end
		fixed = fixed + 1
	end
end

-- Membership of ID in index NAME (its bucket, lib.lua ix_bucket) should
-- be WANT. While the backfill has not moved an earlier version's indexes
-- (lib.lua ix_legacy), a job still in its old index is not missing.
local legacy = ix_legacy()
local function in_index(id, name, want, what)
	local key = ix_bucket(name, id)
	local has = redis.call('SISMEMBER', key, id) == 1
	if has == want then return end
	if want and legacy and redis.call('ZSCORE', P .. K_ix .. name, id) then
		return
	end
	violation(id, (want and 'missing from ' or 'stale entry in ') .. what ..
		' (' .. key .. ')')
	if repair then
		ix_later(name, id, want)
		fixed = fixed + 1
	end
end

local ended_legacy = redis.call('HGET', P .. ':backfill', 'endb') ~= 'done'

local STATIC = {S_PENDING, S_STOPPED, S_FINISHED, S_CANCELED}
local last = math.min(seq, from + count - 1)
for n = from, last do
	local id = I(n * SHARDS + SHARD)
	local h = load(id)
	if h then
		seen[h.status] = (seen[h.status] or 0) + 1
		local cls = class_of(h.parent, h.system)
		for _, st in ipairs(STATIC) do
			in_index(id, cls .. ':s:' .. st, st == h.status, st .. ' index')
		end
		member(id, P .. K_leases, running(h.status),
			h.awaiting == '1' and '+inf' or NOWS, 'leases')
		in_index(id, cls .. ':t:' .. h.type, true, 'type index')
		if h.run_by ~= '' then
			in_index(id, cls .. ':u:' .. h.run_by, true, 'run_by index')
		end
		-- Retention's index: every ended root, in the bucket of its end
		-- (lib.lua ended_bucket; fsck_refs.lua finds the entries that
		-- are not). While the backfill has not moved the index of an
		-- earlier version (P:ended), a root still in it is not missing.
		if h.parent == '' and terminal(h.status) then
			local at = redis.call('HGET', jkey(id), F_finished_at) or '0'
			local b = ended_bucket(id, at)
			if redis.call('SISMEMBER', P .. K_endb .. b, id) == 0 and
				not (ended_legacy and redis.call('ZSCORE', P .. K_ended, id)) then
				violation(id, 'missing from the ended index (' .. P .. K_endb .. b .. ')')
				if repair then
					ended_later(id, at, true)
					fixed = fixed + 1
				end
			end
		end

		-- Its idempotency key finds it.
		keys_conf()
		h.key = redis.call('HGET', jkey(id), F_key) or ''
		if h.key ~= '' and not KEYS_OLD and h.parent == '' then
			local made = num(h.created_at)
			local other = key_find(h.key)
			-- The window its key was made under and whose lookup
			-- reads the bucket of MADE while the key lives: the one
			-- a change replaced for a root made before the change
			-- (none once its keys have expired), else the current
			-- one. A key made under the other window lives as long
			-- as that window says: its expiry is no fault.
			local w = nil
			if KEYS_CHANGED and made < KEYS_CHANGED then
				if KEYS_PREV and made >= NOW - NOW % KEYS_PREV - KEYS_PREV then
					w = KEYS_PREV
				end
			elseif made >= NOW - NOW % KEYS_W - KEYS_W then
				w = KEYS_W
			end
			-- Another job with the key is no fault: one whose mapping
			-- an operator deleted is made again.
			if not other and w then
				violation(id, 'its key ' .. h.key .. ' finds no job')
				if repair then
					local f, b = key_slot(h.key)
					local ws = made - made % w
					local k = keys_bucket(ws, b)
					redis.call('HSET', k, f, id)
					redis.call('PEXPIRE', k, I(ws + 2 * w - NOW))
					fixed = fixed + 1
				end
			end
		elseif h.key ~= '' and not KEYS_OLD then
			local ck = P .. K_ckeys .. h.parent
			local pr = redis.call('HGET', jkey(h.parent), F_restarts)
			local found = false
			for n = 0, num(pr) do
				if redis.call('HGET', ck, ckey_field(n, h.key)) == id then found = true end
			end
			if not found then
				violation(id, 'its key ' .. h.key .. ' is not in its parent\'s keys (' .. ck .. ')')
				if repair and redis.call('ZSCORE', P .. K_children .. h.parent, id) then
					redis.call('HSETNX', ck, ckey_field(pr, h.key), id)
					fixed = fixed + 1
				end
			end
		end

		-- Ready structures: where the job is, and where it should be.
		local places = {}
		for _, low in ipairs({'0', '1'}) do
			if redis.call('ZSCORE', ready_key(h.root, low), id) then
				places[#places + 1] = {'ready', low}
			end
			if id == h.root and redis.call('ZSCORE', roots_key(low), '=' .. id) then
				places[#places + 1] = {'alone', low}
			end
		end
		if redis.call('ZSCORE', P .. K_delayed, id) then
			places[#places + 1] = {'delayed'}
		end
		local lim = limits()
		lim = lim and lim[h.type]
		if lim and redis.call('ZSCORE', P .. K_held .. h.type, id) then
			places[#places + 1] = {'held'}
		end
		if lim and lim.c > 0 then
			member(id, P .. K_slots .. h.type,
				running(h.status) and h.awaiting ~= '1', NOWS,
				'running count of type ' .. h.type)
		end
		local low = h.low_priority == '1' and '1' or '0'
		local ok = false
		if h.status == S_PENDING and #places == 1 then
			local p = places[1]
			ok = p[1] == 'delayed' or p[1] == 'held' or p[2] == low
			if ok and p[1] == 'ready' and not redis.call('ZSCORE', roots_key(low), h.root) then
				ok = false
			end
		elseif h.status == S_PENDING and #places == 0 then
			-- Entries of a root with children are stale, not a place.
			ok = id == h.root and num(h.children_total) == 0 and listed(id, low)
		elseif h.status ~= S_PENDING then
			ok = #places == 0
		end
		local untimed = ok and h.status == S_PENDING and
			(places[1] and places[1][1]) == 'delayed' and num(h.not_before) <= 0
		if untimed then
			ok = false
			violation(id, 'in ' .. P .. K_delayed .. ' without a not_before')
		elseif not ok then
			violation(id, h.status .. ' job in ' .. #places .. ' ready structures')
		end
		if not ok then
			if repair then
				for _, p in ipairs(places) do
					if p[1] == 'delayed' then
						redis.call('ZREM', P .. K_delayed, id)
					elseif p[1] == 'held' then
						redis.call('ZREM', P .. K_held .. h.type, id)
					elseif p[1] == 'alone' then
						redis.call('ZREM', roots_key(p[2]), '=' .. id)
					else
						redis.call('ZREM', ready_key(h.root, p[2]), id)
					end
				end
				if h.status == S_PENDING then enqueue(h) end
				fixed = fixed + 1
			end
		end

		-- The parent side: counters from the children themselves.
		local kids = redis.call('ZRANGE', P .. K_children .. id, 0, CHILD_MAX - 1)
		if #kids > 0 or num(h.children_total) > 0 then
			local c = {total = 0, pending = 0, in_progress = 0, stopping = 0,
				stopped = 0, finished = 0, canceled = 0, errors = 0}
			local progress, stopping = 0, 0
			for _, k in ipairs(kids) do
				local v = job_hmget(k, F_with_errors,
					F_progress, F_children_progress, F_children_total,
					F_tree_stopping)
				if v[1] and c[v[1]] then
					c.total = c.total + 1
					c[v[1]] = c[v[1]] + 1
					if v[1] == S_FINISHED and v[2] == '1' then c.errors = c.errors + 1 end
					progress = progress + (num(v[3]) + num(v[4])) / (1 + num(v[5]))
					stopping = stopping + num(v[6]) + (v[1] == S_STOPPING and 1 or 0)
				end
			end
			if #kids < CHILD_MAX then
				local f = {}
				for k, want in pairs(c) do
					if num(h['children_' .. k]) ~= want then
						violation(id, 'children_' .. k .. ' is ' .. num(h['children_' .. k]) ..
							', its children say ' .. want)
						f[#f + 1] = 'children_' .. k; f[#f + 1] = I(want)
					end
				end
				if math.abs(num(h.children_progress) - progress) > 0.01 then
					violation(id, 'children_progress is ' .. num(h.children_progress) ..
						', its children say ' .. progress)
					f[#f + 1] = F_children_progress; f[#f + 1] = progress
				end
				if num(h.tree_stopping) ~= stopping then
					violation(id, 'tree_stopping is ' .. num(h.tree_stopping) ..
						', its descendants say ' .. stopping)
					f[#f + 1] = F_tree_stopping; f[#f + 1] = I(stopping)
				end
				if repair and #f > 0 then
					redis.call('HSET', jkey(id), unpack(f))
					fixed = fixed + 1
				end
			end
		end
	elseif redis.call('EXISTS', jkey(id)) == 1 then
		-- (a job without status is pending: a job is a hash with a type)
		violation(id, 'not a job: its hash has no type')
	end
end

-- The last call: entries of the limits' sets naming a job that is gone,
-- of another type, or not (or no longer) where the set says.
if last >= seq then
	for ty, l in pairs(limits() or {}) do
		for _, set in ipairs({{K_slots, 'running count'}, {K_held, 'held'}}) do
			local k = P .. set[1] .. ty
			for _, id in ipairs(redis.call('ZRANGE', k, 0, -1)) do
				local v = job_hmget(id, F_type,
					F_awaiting)
				local right = v[2] == ty and (set[1] == K_held and
					v[1] == S_PENDING or set[1] == K_slots and
					running(v[1]) and v[3] ~= '1' and l.c > 0)
				if not right then
					violation(id, 'stale entry in the ' .. set[2] ..
						' of type ' .. ty .. ' (' .. k .. ')')
					if repair then
						redis.call('ZREM', k, id)
						fixed = fixed + 1
					end
				end
			end
		end
	end
end

local counts = {}
for st, k in pairs(seen) do counts[#counts + 1] = st; counts[#counts + 1] = k end
flush(nil)
return {last >= seq and 0 or last + 1, fixed, bad, counts}
