-- finish.lua: the handlers of N running jobs returned.
-- ARGV: prefix, stats_ttl_ms, n, then n variable groups:
--   id, attempt, outcome (done | failed | stopped), progress (-1 keeps
--   it), errors_delta, checkpoint ('' keeps it), jitter (0..1, for the
--   retry backoff), message (logged for failed), nlogs, then nlogs pairs:
--   level, message (the handler's last log lines)
-- Reply: n strings: finished | waiting (for children) | stopped | retry
--   | fenced (the attempt is no longer the job's: nothing written).
-- A failed handler finishes the job with errors unless its retry policy
-- hands it back to pending with a not-before time (exponential backoff
-- with jitter). "stopped" is honoured only after a stop request;
-- otherwise it counts as a failure.

local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local out = {}
local a = 4

for i = 0, n - 1 do
	local id, attempt, outcome = ARGV[a], ARGV[a + 1], ARGV[a + 2]
	-- (the usual texts without a parse: tonumber parses twice)
	local nlogs = ARGV[a + 8] == '0' and 0 or tonumber(ARGV[a + 8])
	local h = load_run(id, true)
	if fenced(h, attempt) then
		out[#out + 1] = 'fenced'
	else
		for j = 0, nlogs - 1 do
			joblog(id, ARGV[a + 9 + j * 2], attempt, ARGV[a + 10 + j * 2])
		end
		-- Eight empty slots at once (trailing nils make a table's array
		-- part and count for nothing in #f): a run that ends writes
		-- four fields, and a table grown a field at a time is resized
		-- at 1, 2, 4 and 8 entries.
		local f = {nil, nil, nil, nil, nil, nil, nil, nil}
		set_progress(h, tonumber(ARGV[a + 3]), ARGV[a + 5],
			ARGV[a + 4] == '0' and 0 or tonumber(ARGV[a + 4]), f, true)
		settle_charge(h, f)
		if outcome == 'stopped' and h.status ~= S_STOPPING then
			outcome = 'failed'
		end
		if outcome == 'failed' then
			need(h, {F_retries, F_retry_count, F_backoff_ms})
			h.errors = num(h.errors) + 1
			-- The last 'errors' of F wins in HSET.
			f[#f + 1] = F_errors; f[#f + 1] = h.errors
			joblog(id, 'error', attempt, ARGV[a + 7] ~= '' and ARGV[a + 7] or 'handler failed')
		end
		if outcome == 'stopped' then
			set_status(h, S_STOPPED, f)
			joblog(id, 'info', attempt, 'stopped at checkpoint')
			out[#out + 1] = 'stopped'
		elseif outcome == 'failed' and h.status == S_IN_PROGRESS and
			num(h.retry_count) < num(h.retries) then
			local rc = num(h.retry_count)
			local delay = num(h.backoff_ms) * (2 ^ rc) * (0.5 + tonumber(ARGV[a + 6]))
			h.not_before = NOW + math.floor(delay)
			f[#f + 1] = F_retry_count; f[#f + 1] = rc + 1
			f[#f + 1] = F_not_before; f[#f + 1] = h.not_before
			set_status(h, S_PENDING, f)
			joblog(id, 'warn', attempt, 'retry ' .. (rc + 1) .. ' of ' .. h.retries ..
				' in ' .. math.floor(delay) .. 'ms')
			out[#out + 1] = 'retry'
		else
			out[#out + 1] = finish_job(h, f)
		end
	end
	a = a + 9 + nlogs * 2
end
flush(ttl)
return out
