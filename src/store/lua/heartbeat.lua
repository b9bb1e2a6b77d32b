-- heartbeat.lua: one call per instance per interval renews the leases of
-- all its running jobs and tells it which ones to stop or abandon.
-- ARGV: prefix, lease_ms, n, then n pairs: id, attempt
-- Reply: n strings: ok | stop (a stop was requested: checkpoint and
--   return) | fenced (the attempt is no longer the job's: kill the
--   handler now, its writes are refused).

local lease = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
	local id, attempt = ARGV[4 + i * 2], ARGV[5 + i * 2]
	local v = job_hmget(id, F_attempt, F_awaiting)
	if (v[1] ~= S_IN_PROGRESS and v[1] ~= S_STOPPING) or v[2] ~= attempt or v[3] == '1' then
		out[#out + 1] = 'fenced'
	else
		redis.call('ZADD', P .. K_leases, NOW + lease, id)
		out[#out + 1] = v[1] == S_STOPPING and 'stop' or 'ok'
	end
end
return out
