-- low_priority.lua: set or remove the low-priority flag of N jobs and
-- their descendants; children created later inherit it.
-- ARGV: prefix, stats_ttl_ms, actor, on (1/0), id...
-- Reply: per id 'ok STATUS', 'ok STATUS:TASK' or the refusal.

local r = run_op(ARGV[4] == '1' and 'low-priority' or 'low-priority-off', ARGV[3], 5)
flush(nil)
return r
