-- why.lua: what the store knows about why a job has not started, read in
-- one call so the facts agree with each other (jobctl why, GET
-- /api/jobs/ID/why; src/store/why.c turns them into reasons).
-- ARGV: prefix, id
-- Reply: {} when the job does not exist, else a flat list of names and
--   values (text; "" = absent): now, status, type, low_priority,
--   created_at, queued_at, not_before, run_at, root, stopped_by (the first
--   stopping, stopped or canceled ancestor) and how (its status),
--   delayed (the job's score in the delayed set), queued (1 = on a ready
--   queue: its root's, or the roots set as a root of its own),
--   ahead (jobs of its root before it), root_vr (its root's virtual
--   runtime), roots_ahead (roots served before it), roots (roots with
--   ready jobs in its class), normal_roots (roots with ready normal
--   jobs), running (jobs holding a lease), held (held back by its type's
--   limit: which and where the type stands; docs/job-types.md, "Limits").
-- Reads only.

local id = ARGV[2]
local h = load_fields(id, {F_status, F_type, F_low_priority, F_created_at,
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
-- A root without children waits in the roots set as "=ID"; any other job
-- on its root's ready queue, the root in the roots set.
local member, ahead = root, nil
local own = redis.call('ZSCORE', rk, '=' .. id)
if id == root and own then
	member = '=' .. id
	ahead = 0
else
	ahead = redis.call('ZRANK', ready_key(root, low), id)
end
put('queued', ahead and '1' or '0')
put('ahead', ahead and I(ahead) or '')
local vr = redis.call('ZSCORE', rk, member)
put('root_vr', vr)
-- ZPOPMIN serves the lowest runtime first, equal ones in member order:
-- the member's rank.
put('roots_ahead', vr and I(redis.call('ZRANK', rk, member)) or '')
put('roots', I(redis.call('ZCARD', rk)))
put('normal_roots', I(redis.call('ZCARD', roots_key('0'))))
put('running', I(redis.call('ZCOUNT', P .. K_leases, '-inf', '(+inf')))
return out
