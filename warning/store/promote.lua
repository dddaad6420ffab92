-- A shard's due retries back into their lanes. KEYS: the shard's delayed set, then its lanes
-- in the order of ARGV[3..] (tier names); ARGV: now, limit. Members are "<tier>|<job json>".
local lanes = {}
for i = 3, #ARGV do lanes[ARGV[i]] = KEYS[i - 1] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  redis.call('XADD', lanes[string.sub(member, 1, sep - 1)], '*', 'job', string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
