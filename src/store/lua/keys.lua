-- keys.lua: which job an idempotency key names (jobctl key; docs/redis-
-- keys.md, "Idempotency keys"), read as create.lua reads it.
-- ARGV: prefix, parent ('' for root keys), then either "get" and keys,
--   or "scan", a cursor (0 to start) and a Lua pattern (the glob
--   jobctl was given, translated).
-- Reply to get: the id of each key, or '' when it names no job.
-- Reply to scan: {next cursor ('0': done), {key, id, key, id, ...}}: the
--   root keys of both windows that match, from the buckets one SCAN step
--   of 100 visits (and, until backfill.lua moved them, the mappings of
--   the earlier layout); with a parent, its keys at once ('0').

local parent, mode = ARGV[2], ARGV[3]
local out = {}

-- Job ID's key when it is KEY: the mapping counts only then.
local function confirmed(id, key)
	return id and redis.call('HGET', jkey(id), F_key) == key
end

if mode == 'get' then
	local p = parent ~= '' and load_fields(parent, {F_status, F_restarts}) or nil
	for i = 4, #ARGV do
		local key, id = ARGV[i], nil
		if parent == '' then
			id = key_find(key)
		elseif p then
			keys_conf()
			id = redis.call('HGET', P .. K_ckeys .. parent, ckey_field(p.restarts, key))
			if not id and KEYS_OLD then
				id = redis.call('GET', P .. K_key .. child_scope(parent, p.restarts) .. key)
			end
			if not confirmed(id, key) then id = nil end
		end
		out[#out + 1] = id or ''
	end
	return out
end

local pat = ARGV[5]
local found = {}
local function add(key, id)
	if string.match(key, pat) and confirmed(id, key) then
		found[#found + 1] = key
		found[#found + 1] = id
	end
end
if parent ~= '' then
	local v = redis.call('HGETALL', P .. K_ckeys .. parent)
	for i = 1, #v, 2 do
		add(string.match(v[i], '^%d+/(.*)$') or v[i], v[i + 1])
	end
	return {'0', found}
end
keys_conf()
local r = redis.call('SCAN', ARGV[4], 'MATCH',
	prefix_match(':key*'), 'COUNT', 100)
local bucket = P .. K_keys
local old = P .. K_key
for _, k in ipairs(r[2]) do
	if string.sub(k, 1, #bucket) == bucket then
		local v = redis.pcall('HGETALL', k)
		for i = 1, type(v) == 'table' and #v or 0, 2 do
			local key = v[i]
			-- A long key's field is its digest: the job has the key.
			if string.byte(key) == 35 and #key == 17 then
				key = redis.call('HGET', jkey(v[i + 1]), F_key) or key
			end
			add(key, v[i + 1])
		end
	elseif KEYS_OLD and string.sub(k, 1, #old) == old then
		local id = redis.pcall('GET', k)
		if type(id) == 'string' then add(string.sub(k, #old + 1), id) end
	end
end
return {r[1], found}
