-- The job awaiting a receipt, taken once: a receipt settles it or the deadline does.
-- KEYS: the deadline set, the job hash (one channel tag); ARGV: the delivery id.
redis.call('ZREM', KEYS[1], ARGV[1])
local job = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return job
