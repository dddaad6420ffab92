-- Queue a batch of one shard lane's jobs, each recipient once per alert version.
-- KEYS: the shard's idempotency set for the version, the lane, the alert's counts in the shard
-- (one hash tag {channel:shard}: one slot). ARGV[1]: TTL; ARGV[2]: the whole batch, one
-- "<channel:recipient>\t<job json>" per line (JSON has no raw tabs or newlines): one argument
-- instead of two per job keeps the client cheap. The batch's members are checked and added
-- with one SMISMEMBER and one SADD, not a SADD per job: Redis is what bounds a big enqueue,
-- and this takes ~7 % of its time off. (Lua's unpack takes at most ~8,000 values: hence the
-- cap on ``enqueue_batch``.)
local members, jobs = {}, {}
for line in string.gmatch(ARGV[2], '[^\n]+') do
  local tab = string.find(line, '\t', 1, true)
  members[#members + 1] = string.sub(line, 1, tab - 1)
  jobs[#jobs + 1] = string.sub(line, tab + 1)
end
if #members == 0 then return 0 end
local known = redis.call('SMISMEMBER', KEYS[1], unpack(members))
local added, seen = 0, {}
for i = 1, #jobs do
  if known[i] == 0 and not seen[members[i]] then  -- a recipient twice in one batch: once
    seen[members[i]] = true
    redis.call('XADD', KEYS[2], '*', 'job', jobs[i])
    added = added + 1
  end
end
if added > 0 then
  redis.call('SADD', KEYS[1], unpack(members))
  redis.call('HINCRBY', KEYS[3], 'queued', added)
  redis.call('HINCRBY', KEYS[3], 'targeted', added)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return added
