-- handback.lua: running jobs go back without finishing: jobd shuts down,
-- or a job claimed ahead waited too long for a worker (docs/reliability.md,
-- "Claiming ahead"). In progress becomes pending (resumed later from the
-- checkpoint), stopping becomes stopped. An attempt that lost its lease
-- writes nothing: expire.lua hands its job back once the lease ran out.
-- ARGV: prefix, stats_ttl_ms, reason, n, then n groups of 4:
--   id, attempt, progress (-1 keeps it), checkpoint ('' keeps it)
-- Reply: n strings: pending | stopped | fenced.

local reason = ARGV[3]
local n = tonumber(ARGV[4])
local out = {}
for i = 0, n - 1 do
	local a = 5 + i * 4
	local id, attempt = ARGV[a], ARGV[a + 1]
	local h = load_run(id)
	if fenced(h, attempt) then
		out[#out + 1] = 'fenced'
	else
		local f = {}
		set_progress(h, tonumber(ARGV[a + 2]), ARGV[a + 3], 0, f, true)
		settle_charge(h, f)
		local to = h.status == S_STOPPING and S_STOPPED or S_PENDING
		set_status(h, to, f)
		joblog(id, 'info', attempt, 'attempt ' .. attempt .. ' handed back (' .. reason .. '): ' .. to)
		out[#out + 1] = to
	end
end
flush(tonumber(ARGV[2]))
return out
