-- Fire the due steps of the chains the caller found due. KEYS: the due set, the outbox
-- stream, then one chain hash per alert of ARGV[2..] (all under {esc}: one slot, every key
-- declared); ARGV[1]: now. A chain another escalator fired first is no longer due (its
-- score moved on, or it left the set): skipped, so each step lands in the outbox once.
local fired = 0
for i = 2, #ARGV do
  local alert_id, chain = ARGV[i], KEYS[i + 1]
  local score = redis.call('ZSCORE', KEYS[1], alert_id)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], alert_id)
    if redis.call('HGET', chain, 'state') == 'running' then
      local step = tonumber(redis.call('HGET', chain, 'step')) + 1
      local levels = cjson.decode(redis.call('HGET', chain, 'levels'))
      local timeout = tonumber(redis.call('HGET', chain, 'timeout_s'))
      local at = tonumber(redis.call('HGET', chain, 'due'))
      redis.call('HSET', chain, 'step', step, 'level', levels[step + 1])
      if step + 1 < #levels then
        redis.call('HSET', chain, 'due', at + timeout)
        redis.call('ZADD', KEYS[1], at + timeout, alert_id)
      else
        redis.call('HSET', chain, 'state', 'exhausted', 'due', '')
      end
      redis.call('XADD', KEYS[2], '*', 'alert_id', alert_id, 'step', step, 'level', levels[step + 1],
                 'version', redis.call('HGET', chain, 'version'), 'due', at)
      fired = fired + 1
    end
  end
end
return fired
