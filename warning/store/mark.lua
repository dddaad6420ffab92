-- Receipts of one shard's deliveries in one call, counts moved from each delivery's current
-- status (no hash yet: "queued"). KEYS: n delivery hashes, then the counts hashes (all under
-- the shard's tag); ARGV: status, time, reason, n, then per delivery its attempt, TTL and
-- counts-hash index. A provider's final receipt can overtake the worker's "sent" mark: then
-- only sent_at is recorded.
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
