-- why.lua: what the store knows about why a job has not started, read in
-- one call so the facts agree with each other (jobctl why, GET
-- /api/jobs/ID/why; src/store/why.c turns them into reasons).
-- ARGV: prefix, id
-- Reply: {} when the job does not exist, else a flat list of names and
--   values (text; "" = absent): now, status, type, low_priority,
--   created_at, queued_at, not_before, run_at, root, stopped_by (the first
--   stopping, stopped or canceled ancestor) and how (its status),
--   delayed (the job's score in the delayed set), queued (1 = on a ready
--   queue: its root's, the list of roots without children, or the roots
--   set as a root of its own), ahead (jobs of its root before it),
--   root_vr (its root's virtual runtime), roots_ahead (roots served
--   before it: members of the roots set and entries of the list),
--   roots (roots with ready jobs in its class), normal_roots (roots
--   with ready normal jobs), running (jobs holding a lease), held (held back by its type's
--   limit: which and where the type stands; docs/job-types.md, "Limits").
-- Reads only.

local id = ARGV[2]
local h = load_fields(id, {F_status, F_low_priority, F_created_at,
	F_queued_at, F_not_before, F_run_at, F_parent, F_root, F_children_total})
if not h then return {} end
local out = {'now', NOWS, 'status', h.status, 'type', h.type,
	'low_priority', h.low_priority, 'created_at', h.created_at,
	'queued_at', h.queued_at, 'not_before', h.not_before, 'run_at', h.run_at}
local function put(k, v) out[#out + 1] = k; out[#out + 1] = v or '' end
local root = h.root ~= '' and h.root or id
put('root', root)
if h.status ~= S_PENDING then return out end

local sa, how = nil, nil
if h.parent ~= '' then sa, how = stopped_ancestor(h.parent) end
put('stopped_by', sa)
put('how', how)
put('delayed', redis.call('ZSCORE', P .. K_delayed, id))
put('held', limit_held(id, h.type))

local low = h.low_priority == '1' and '1' or '0'
local rk = roots_key(low)

-- The list of roots without children of priority L (lib.lua enqueue)
-- holds stale entries too (lib.lua alone_ok): of its first SCAN entries
-- only those that would run count, each job once. Returns how many count
-- before ID's first entry (nil when ID is not listed) and how many in
-- all; past SCAN entries every entry counts (LPOS reads the list from
-- its head: O(N), fine for a diagnostic).
local SCAN = 1000
local function listed(l, want)
	local ak = alone_key(l)
	local ids = redis.call('LRANGE', ak, 0, SCAN - 1)
	local seen, n, before = {}, 0, nil
	for _, e in ipairs(ids) do
		if e == want and not before then before = n end
		if not seen[e] and alone_ok(load_fields(e, {F_status, F_low_priority,
			F_children_total, F_not_before, F_type}), l) then
			seen[e] = true
			n = n + 1
		end
	end
	local more = redis.call('LLEN', ak) - #ids
	if want and not before and more > 0 then
		local pos = redis.call('LPOS', ak, want)
		if pos then before = n + pos - #ids end
	end
	return before, n + math.max(more, 0)
end
-- The roots waiting in priority L: the roots set's members, the list's
-- entries for ALONE.
local function waiting(l)
	local k = roots_key(l)
	local n = redis.call('ZCARD', k)
	if redis.call('ZSCORE', k, ALONE) then n = n - 1 end
	local _, listed_n = listed(l, nil)
	return n + listed_n
end

-- A root without children waits in the list of its priority (or as
-- "=ID" in the roots set); any other job on its root's ready queue, the
-- root in the roots set.
local member, ahead, pos = root, nil, nil
if id == root and num(h.children_total) == 0 then
	if redis.call('ZSCORE', rk, '=' .. id) then
		member, ahead = '=' .. id, 0
	else
		-- Listed, and the list in the roots set (fsck restores ALONE).
		pos = listed(low, id)
		if pos and redis.call('ZSCORE', rk, ALONE) then
			member, ahead = ALONE, 0
		end
	end
else
	ahead = redis.call('ZRANK', ready_key(root, low), id)
end
put('queued', ahead and '1' or '0')
put('ahead', ahead and I(ahead) or '')
local vr = redis.call('ZSCORE', rk, member)
put('root_vr', vr)
-- ZPOPMIN serves the lowest runtime first, equal ones in member order:
-- the member's rank (the list's entries ahead count as roots).
local rank = vr and redis.call('ZRANK', rk, member)
if rank then
	local at = redis.call('ZRANK', rk, ALONE)
	if member == ALONE then rank = rank + pos
	elseif at and at < rank then
		rank = rank - 1 + select(2, listed(low, nil))
	end
end
put('roots_ahead', rank and I(rank) or '')
local nr = waiting(low)
put('roots', I(nr))
put('normal_roots', I(low == '0' and nr or waiting('0')))
put('running', I(redis.call('ZCOUNT', P .. K_leases, '-inf', '(+inf')))
return out
