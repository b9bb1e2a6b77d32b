-- key_window.lua: writes one instance's [retention] key_window into
-- P:conf (docs/redis-keys.md, "Idempotency keys"), where lib.lua
-- keys_conf() and the module read it: the last instance to start or
-- reload sets it for all. A root's key lives in a bucket named by the
-- start of its window, so when the window changes, the keys written
-- under the old one would be looked for in buckets they are not in: the
-- window replaced and the time of the change are kept beside it
-- (key_window_prev, key_window_changed, ms), and until those keys have
-- expired (two old windows after the change) a lookup reads the old
-- window's buckets too. A store without jobs has no keys to keep.
-- Only one window is kept: a second change within two old windows of
-- the first loses the keys of the first's old window.
-- ARGV: prefix, window (ms)
-- Reply: the window replaced (ms) when the keys made under it are kept,
--   else 0 (the same window, or a store without jobs)

local w = tonumber(ARGV[2])
if not w or w < 1 or w >= 9e15 or w ~= floor(w) then
	return redis.error_reply('key window ' .. ARGV[2] ..
		' is not a whole number of ms from 1 to 9e15')
end
keys_conf()
local set = redis.call('HGET', P .. ':conf', 'key_window')
if w == KEYS_W then
	if set ~= I(w) then redis.call('HSET', P .. ':conf', 'key_window', I(w)) end
	return 0
end
local was = KEYS_W
if redis.call('EXISTS', P .. K_seq) == 1 then
	redis.call('HSET', P .. ':conf', 'key_window', I(w),
		'key_window_prev', I(was), 'key_window_changed', NOWS)
	return was
end
redis.call('HDEL', P .. ':conf', 'key_window_prev', 'key_window_changed')
redis.call('HSET', P .. ':conf', 'key_window', I(w))
return 0
