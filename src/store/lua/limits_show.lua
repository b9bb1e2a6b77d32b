-- limits_show.lua: where each limited type stands (/metrics).
-- ARGV: prefix
-- Reply: one {type, concurrency, rate, window_ms, running, held, started}
--   per type with a limit (0 = none); running counts the slots taken,
--   held the pending jobs held back, started the starts in the last
--   window.

local out = {}
for ty, l in pairs(limits() or {}) do
	local started = 0
	if l.r > 0 then
		started = redis.call('ZCOUNT', P .. K_starts .. ty,
			'(' .. I(NOW - l.w), '+inf')
	end
	out[#out + 1] = {ty, l.c, l.r, l.w,
		redis.call('ZCARD', P .. K_slots .. ty),
		redis.call('ZCARD', P .. K_held .. ty), started}
end
return out
