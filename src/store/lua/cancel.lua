-- cancel.lua: the operator's cancel of N jobs
-- (docs/design.md, "State machine").
-- ARGV: prefix, stats_ttl_ms, actor, id...
-- Reply: per id 'ok STATUS' (the status it is in now), 'ok STATUS:TASK'
--   (run cascade.lua on TASK for the descendants before returning to the
--   operator) or the refusal.

local r = run_op('cancel', ARGV[3], 4)
flush(tonumber(ARGV[2]))
return r
