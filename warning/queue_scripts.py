"""The delivery store's Lua scripts: each one atomic, so a crash or a second consumer
never sees half of an enqueue, a status change or a token take (used by warning/queue.py)."""

# ARGV[2] holds a whole batch, one "<channel:recipient>\t<job json>" per line (JSON has
# no raw tabs or newlines): one argument instead of two per job keeps the client cheap.
# The batch's members are checked and added with one SMISMEMBER and one SADD, not a SADD
# per job: Redis is what bounds a big enqueue, and this takes ~7 % of its time off.
# (Lua's unpack takes at most ~8,000 values: hence the cap on ``enqueue_batch``.)
ENQUEUE = r"""
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
"""

# Returns the loudest tier rank the alert ever had, or -1 when this version is older than
# the one stored (a replayed partition must not roll an alert back). The active index
# scores an alert by its expiry; a Cancel scores it by its own issue time (ARGV[7]), in the
# past, so it is no longer active and the archivist finds it (warning/response/history.py).
RECORD_ALERT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) < current then return -1 end
local rank = tonumber(redis.call('HGET', KEYS[1], 'max_rank') or '0')
if tonumber(ARGV[2]) > rank then rank = tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 'max_rank', rank, unpack(ARGV, 8))
if ARGV[5] == 'Cancel' then
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return rank
"""

# Due retries back into their lane. KEYS: the delayed set, then the lanes in the order of
# ARGV[3..] (tier names); members are "<tier>|<job json>".
PROMOTE = """
local lanes = {}
for i = 3, #ARGV do lanes[ARGV[i]] = KEYS[i - 1] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  redis.call('XADD', lanes[string.sub(member, 1, sep - 1)], '*', 'job', string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# A token bucket on Redis's own clock, shared by every consumer of a sender: returns
# {granted, seconds until the rest could be granted}.
TAKE_TOKENS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
local wait = 0
if granted < want then wait = (math.min(want - granted, burst) - tokens) / rate end
return {granted, tostring(wait)}
"""

# Receipts of a batch in one call, counts moved from each delivery's current status (no
# hash yet: "queued"). KEYS: n delivery hashes, then the counts hashes; ARGV: status, time,
# reason, n, then per delivery its attempt, TTL and counts-hash index. A provider's final
# receipt can overtake the worker's "sent" mark: then only sent_at is recorded.
MARK = """
local status, now, reason, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local final = {delivered = true, undelivered = true, failed = true, unconfirmed = true}
local moved, deltas = 0, {}
for i = 1, n do
  local key, at = KEYS[i], 4 + 3 * (i - 1)
  local old = redis.call('HGET', key, 'status')
  if status == 'sent' and final[old] then
    redis.call('HSET', key, 'sent_at', now)
  elseif old ~= status then
    redis.call('HSET', key, 'status', status, status .. '_at', now, 'reason', reason, 'attempt', ARGV[at + 1])
    local counts = ARGV[at + 3]
    deltas[counts] = deltas[counts] or {}
    local d = deltas[counts]
    d[old or 'queued'] = (d[old or 'queued'] or 0) - 1
    d[status] = (d[status] or 0) + 1
    moved = moved + 1
  end
  if not old then redis.call('EXPIRE', key, ARGV[at + 2]) end  -- HSET keeps a TTL once set
end
for index, d in pairs(deltas) do  -- counts once per alert and status, not per delivery
  for name, delta in pairs(d) do
    if delta ~= 0 then redis.call('HINCRBY', KEYS[n + tonumber(index)], name, delta) end
  end
end
return moved
"""

# Jobs whose delivery receipt is overdue, taken atomically (one process falls back for
# each). KEYS: the deadline set, the job hash; ARGV: now, limit.
OVERDUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local jobs = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local job = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  if job then table.insert(jobs, job) end
end
return jobs
"""

# The job awaiting a receipt, taken once: a receipt settles it or the deadline does.
SETTLE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local job = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return job
"""
