-- Store an alert version in its record (one hash, one slot). KEYS: the record; ARGV: version,
-- tier rank, TTL, then the fields and values. Returns the loudest tier rank the alert ever
-- had, or -1 when this version is older than the one stored (a replayed partition must not
-- roll an alert back; its caller then leaves the active index alone too).
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) < current then return -1 end
local rank = tonumber(redis.call('HGET', KEYS[1], 'max_rank') or '0')
if tonumber(ARGV[2]) > rank then rank = tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 'max_rank', rank, unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return rank
