-- logscan.lua: one page of the log search across jobs (logs --all): the
-- entries of the index streams P:logix:m:MINUTE (lib.lua joblog) from a
-- position on, in the order they were written, with the log entries they
-- point at and what the lifecycle entries of their jobs need. Reads
-- nothing but that: it writes nothing.
-- ARGV: prefix, start (index entry id "MS-SEQ": the first one wanted),
--   until_ms, max (index entries to read)
-- Reply: {last, {entry...}, {job...}, scanned}
--   last: the id of the last index entry read when MAX were read, or
--     "MINUTE-0/0" when the call stopped before MINUTE having visited
--     MAX minutes without entries, or "" when nothing is left up to
--     until_ms
--   entry: "POSITION\0JOB\0ID\0LEVEL\0ATTEMPT\0MESSAGE" (POSITION the
--     index entry's id, ID the log entry's) for each index entry whose
--     log entry still exists (the job's log may have dropped it, or the
--     job be gone)
--   job: "ID\0" and the values of LIFECYCLE below, each followed by
--     "\0" ("" when absent), for each job of the entries, once per call:
--     what its lifecycle entries are made of
--   scanned: index entries read, whether their entry exists or not
-- One string per entry and per job: a reply of 10,000 small strings
-- instead of 60,000 costs Redis a third less.
-- A call reads at most MAX index entries, MAX log entries, MAX jobs and
-- MAX + 1 minutes of the index: its cost is bounded by MAX whatever the
-- window and however many jobs logged in it.

local start, untilms, cap = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local sms = tonumber(string.match(start, '^(%d+)')) or 0
local dir = P .. ':logix:minutes'
local entries, jobs, seen = {}, {}, {}
local scanned, visited = 0, 0
local m = sms - sms % 60000
local LIFECYCLE = {F_created_at, F_created_by, F_source, F_run_by, F_parent,
	F_claimed_at, F_started_at, F_instance, F_attempt, F_status,
	F_finished_at, F_with_errors, F_type}

while true do
	local mins = redis.call('ZRANGEBYSCORE', dir, I(m), I(untilms), 'LIMIT', 0, 64)
	if #mins == 0 then return {'', entries, jobs, scanned} end
	for _, mm in ipairs(mins) do
		local from = mm .. '-0'
		if tonumber(mm) == sms - sms % 60000 then from = start end
		local ix = redis.call('XRANGE', P .. ':logix:m:' .. mm, from, I(untilms),
			'COUNT', cap - scanned)
		for _, e in ipairs(ix) do
			local f = e[2]
			local job, sid = f[2], f[4]
			local x = redis.call('XRANGE', P .. ':log:' .. job, sid, sid)
			if x[1] then
				local kv, lv, at, msg = x[1][2], '', '0', ''
				for i = 1, #kv, 2 do
					local k = kv[i]
					if k == 'level' then lv = kv[i + 1]
					elseif k == 'attempt' then at = kv[i + 1]
					elseif k == 'msg' then msg = kv[i + 1] end
				end
				entries[#entries + 1] = e[1] .. '\0' .. job .. '\0' .. sid ..
					'\0' .. lv .. '\0' .. at .. '\0' .. msg
				if not seen[job] then
					seen[job] = true
					local v = redis.call('HMGET', jkey(job), unpack(LIFECYCLE))
					-- (a job has a type; one without status is pending)
					if v[13] then
						v[10] = v[10] or S_PENDING
						for i = 1, #LIFECYCLE do v[i] = v[i] or '' end
						jobs[#jobs + 1] = job .. '\0' .. table.concat(v, '\0') .. '\0'
					end
				end
			end
		end
		scanned = scanned + #ix
		if scanned >= cap then
			return {ix[#ix][1], entries, jobs, scanned}
		end
		visited = visited + 1
		if visited > cap then
			return {I(tonumber(mm) + 60000) .. '-0/0', entries, jobs, scanned}
		end
	end
	m = tonumber(mins[#mins]) + 1
end
