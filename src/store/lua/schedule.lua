-- schedule.lua: what the ticker of a [schedule.NAME] did
-- (docs/schedules.md, "Firing"; key P:schedule:NAME, docs/redis-keys.md).
-- ARGV: prefix, name, tick_ms, fired_ms (0 = none fired), job (0 = none),
--   missed (ticks this step skipped)
-- Reply: 1 when the call moved the schedule's tick forward, else 0.
-- The tick only grows, so a slow instance recording an older step undoes
-- nothing; the missed ticks count once, with the call that moved it.

local k = P .. ':schedule:' .. ARGV[2]
local tick, fired = tonumber(ARGV[3]), tonumber(ARGV[4])
local cur = tonumber(redis.call('HGET', k, 'tick') or '0')
local cur_fired = tonumber(redis.call('HGET', k, 'fired') or '0')
if fired > cur_fired then
	redis.call('HSET', k, 'fired', ARGV[4], 'job', ARGV[5])
end
if tick <= cur then return 0 end
redis.call('HSET', k, 'tick', ARGV[3])
if tonumber(ARGV[6]) > 0 then
	redis.call('HINCRBY', k, 'missed', ARGV[6])
end
return 1
