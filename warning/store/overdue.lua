-- Jobs whose delivery receipt is overdue, taken atomically (one process falls back for
-- each). KEYS: the deadline set, the job hash (one channel tag); ARGV: now, limit.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local jobs = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local job = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  if job then table.insert(jobs, job) end
end
return jobs
