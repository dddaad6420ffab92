-- A chain (re)started: its hash and its due time together, or neither. KEYS: the chain, the
-- due set (both under {esc}); ARGV: TTL, due, alert id, then the chain's fields and values.
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
