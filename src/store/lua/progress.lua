-- progress.lua: what running handlers reported since the last call:
-- progress, checkpoints, errors and log lines, for N jobs at once.
-- ARGV: prefix, n, then n variable groups:
--   id, attempt, progress (-1 keeps it), errors_delta, checkpoint ('' keeps
--   it), nlogs, then nlogs pairs: level, message
-- Reply: n strings: ok | stop (a stop was requested) | fenced.

local n = tonumber(ARGV[2])
local a = 3
local out = {}
for i = 1, n do
	local id, attempt = ARGV[a], ARGV[a + 1]
	local progress, errs, ck = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
	local nlogs = tonumber(ARGV[a + 5])
	local h = load_run(id)
	if fenced(h, attempt) then
		out[#out + 1] = 'fenced'
	else
		set_progress(h, progress, ck, errs)
		for j = 0, nlogs - 1 do
			joblog(id, ARGV[a + 6 + j * 2], attempt, ARGV[a + 7 + j * 2])
		end
		out[#out + 1] = h.status == S_STOPPING and 'stop' or 'ok'
	end
	a = a + 6 + nlogs * 2
end
return out
