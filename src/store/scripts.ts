/**
 * The store's server-side scripts. Each runs atomically on the Valkey/Redis server, so
 * two replicas can never both take the last slot; time is the server's (`TIME`), so
 * replicas' clocks never matter.
 *
 * Key layout (prefix P, one standalone server or a primary; not Redis Cluster: the
 * scripts touch keys they compute, e.g. other replicas' liveness keys):
 * - `P alive:<replica>`   a replica's heartbeat, with a TTL of `leaseTtl`;
 * - `P slots:<host:port>` hash replica → handshake slots it holds on that sshd;
 * - `P wait:<host:port>`  sorted set replica → when its oldest waiter queued (fairness);
 *   `P seen:<host:port>`  hash replica → when it last asked (a waiter gone quiet is skipped);
 * - `P src:<source>`      hash replica → open connections from that source;
 * - `P rate:<source>`     the source's token bucket;
 * - `P pen:<source>`      the source's penalty; `P penalised` sorted set source → expiry;
 * - `P replicas`          sorted set replica → when its heartbeat runs out (the live count);
 * - channel `P events`    "f <host:port>" (a slot was freed while someone waited),
 *                         "p <source> <remainingMs> <kind> <charges>" (a penalty is active).
 *
 * A replica's holdings are counts under its id; they count only while its `alive` key
 * exists, so a replica that is killed, partitioned or frozen stops counting within
 * `leaseTtl` and the next script that meets its count deletes it.
 */

const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- A heartbeat always carries a TTL (leaseTtl): a key without one is not a replica's.
local function alive(prefix, owner)
  return redis.call('PTTL', prefix .. 'alive:' .. owner) > 0
end
-- Sum of the live owners' counts; dead owners' counts are deleted and returned as expired.
-- A count of the wrong shape (not a whole number, negative) is deleted and not counted;
-- with cap, no owner counts for more than cap (a forged huge count cannot exceed the limit).
local function live_sum(key, prefix, me, cap)
  local fields = redis.call('HGETALL', key)
  local sum, expired = 0, 0
  for i = 1, #fields, 2 do
    local owner, count = fields[i], tonumber(fields[i + 1])
    if count == nil or count < 0 or count ~= math.floor(count) then
      redis.call('HDEL', key, owner)
    elseif owner == me or alive(prefix, owner) then
      if cap ~= nil and count > cap then count = cap end
      sum = sum + count
    else
      redis.call('HDEL', key, owner)
      expired = expired + count
    end
  end
  return sum, expired
end
`;

/**
 * KEYS: slots, wait, seen. ARGV: prefix, me, limit, waitMs (of the oldest waiter asking),
 * keyTtlMs, seenWindowMs, channel, address.
 * Returns {granted 0|1, held cluster-wide after, expired}.
 * A free slot goes to the replica whose waiter has waited longest: a younger asker
 * yields while older live waiters elsewhere outnumber the free slots.
 */
export const SLOT_TAKE = `${COMMON}
local prefix, me, limit, wait_ms, key_ttl, seen_window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local sum, expired = live_sum(KEYS[1], prefix, me, limit)
if expired > 0 and redis.call('ZCARD', KEYS[2]) > 0 then redis.call('PUBLISH', ARGV[7], 'f ' .. ARGV[8]) end
local my_at = now - wait_ms
local free = limit - sum
if free > 0 then
  local ahead = 0
  local older = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. my_at)
  for _, owner in ipairs(older) do
    if owner ~= me then
      local seen = tonumber(redis.call('HGET', KEYS[3], owner) or '0') or 0
      if seen >= now - seen_window and alive(prefix, owner) then
        ahead = ahead + 1
      else
        redis.call('ZREM', KEYS[2], owner)
        redis.call('HDEL', KEYS[3], owner)
      end
    end
  end
  if ahead < free then
    redis.call('HINCRBY', KEYS[1], me, 1)
    redis.call('PEXPIRE', KEYS[1], key_ttl)
    redis.call('ZREM', KEYS[2], me)
    redis.call('HDEL', KEYS[3], me)
    return {1, sum + 1, expired}
  end
end
redis.call('ZADD', KEYS[2], my_at, me)
redis.call('HSET', KEYS[3], me, now)
redis.call('PEXPIRE', KEYS[2], key_ttl)
redis.call('PEXPIRE', KEYS[3], key_ttl)
return {0, sum, expired}
`;

/**
 * KEYS: slots, wait. ARGV: prefix, me, channel, address. Gives one slot back and, if
 * anyone waits for this server, says so on the channel. Returns {live count after, expired}.
 */
export const SLOT_GIVE = `${COMMON}
local left = redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
if redis.call('ZCARD', KEYS[2]) > 0 then redis.call('PUBLISH', ARGV[3], 'f ' .. ARGV[4]) end
local sum, expired = live_sum(KEYS[1], ARGV[1], ARGV[2])
return {sum, expired}
`;

/** KEYS: wait, seen. ARGV: me. This replica no longer waits for the server. */
export const SLOT_UNWAIT = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

/**
 * KEYS: learned. ARGV: address, limit, channel, me. Records a learnt limit and tells the
 * other replicas ("c address limit replica").
 */
export const CAPACITY_LEARNED = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'c ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[4])
return 1
`;

/** KEYS: learned. Every learnt limit, as a flat address, limit list (a replica adopts them on joining). */
export const CAPACITY_ALL = `
return redis.call('HGETALL', KEYS[1])
`;

/**
 * KEYS: alive, replicas. ARGV: prefix, me, ttlMs, keyTtlMs, then hash key / count pairs: this
 * replica's heartbeat, and what it holds, asserted as absolute counts (a restarted
 * store gets them all back; a lost reply or a missed give is corrected).
 * Returns the live sum of each hash, then the expired total, then the live replicas.
 */
export const RENEW = `${COMMON}
local prefix, me, ttl, key_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], '1', 'PX', ttl)
local now = now_ms()
redis.call('ZADD', KEYS[2], now + ttl, me)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], key_ttl)
local replicas = redis.call('ZCARD', KEYS[2])
local out, expired = {}, 0
for i = 5, #ARGV, 2 do
  local key, count = ARGV[i], tonumber(ARGV[i + 1])
  if count > 0 then
    redis.call('HSET', key, me, count)
    redis.call('PEXPIRE', key, key_ttl)
  else
    redis.call('HDEL', key, me)
  end
  local sum, gone = live_sum(key, prefix, me)
  out[#out + 1] = sum
  expired = expired + gone
end
out[#out + 1] = expired
out[#out + 1] = replicas
return out
`;

/**
 * KEYS: src, rate. ARGV: prefix, me, maxConnections (0: none), ratePerSecond (0: none), keyTtlMs.
 * Returns {1, 'ok', open, expired} or {0, 'limit'|'rate', open, expired}.
 */
export const SOURCE_ADMIT = `${COMMON}
local prefix, me, limit, rate, key_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local open, expired = 0, 0
if limit > 0 then
  open, expired = live_sum(KEYS[1], prefix, me, limit)
  if open >= limit then return {0, 'limit', open, expired} end
end
if rate > 0 then
  local now = now_ms()
  local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or rate
  local at = tonumber(bucket[2]) or now
  tokens = math.min(rate, tokens + (now - at) / 1000 * rate)
  local granted = tokens >= 1
  if granted then tokens = tokens - 1 end
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[2], 2000)
  if not granted then return {0, 'rate', open, expired} end
end
redis.call('HINCRBY', KEYS[1], me, 1)
redis.call('PEXPIRE', KEYS[1], key_ttl)
return {1, 'ok', open + 1, expired}
`;

/** KEYS: src. ARGV: me. One connection from the source closed. */
export const SOURCE_RELEASE = `
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return left
`;

/**
 * KEYS: pen, penalised. ARGV: chargeMs, minMs, maxMs, kind, channel, source.
 * sshd's srclimit.c arithmetic on one shared record: a charge adds to the expiry (capped
 * at max from now), and once more than min remains the source is refused until expiry.
 * Every charge that leaves the source refused is published, so each replica refuses it
 * at accept from its own table. Returns {activatedNow 0|1, active 0|1, remainingMs, charges}.
 */
export const PENALTY_CHARGE = `${COMMON}
local charge, min, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local record = redis.call('HMGET', KEYS[1], 'expires', 'active', 'charges')
local expires, active, charges = tonumber(record[1]), record[2] == '1', tonumber(record[3]) or 0
if not expires or expires <= now then
  expires, active, charges = now + math.min(charge, max), false, 1
else
  expires, charges = math.min(expires + charge, now + max), charges + 1
end
local activated = 0
if not active and expires - now > min then
  active, activated = true, 1
end
redis.call('HSET', KEYS[1], 'expires', tostring(expires), 'active', active and '1' or '0', 'kind', ARGV[4], 'charges', tostring(charges))
redis.call('PEXPIREAT', KEYS[1], expires)
if active then
  -- Sources whose penalty has run out leave the index here, not only when a replica loads it:
  -- it holds at most the sources penalised within the last \`max\`, however many come and go.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], expires, ARGV[6])
  redis.call('PUBLISH', ARGV[5], 'p ' .. ARGV[6] .. ' ' .. (expires - now) .. ' ' .. ARGV[4] .. ' ' .. charges)
end
return {activated, active and 1 or 0, expires - now, charges}
`;

/**
 * KEYS: penalised. ARGV: prefix, limit. The sources refused now (a replica loads them
 * when it connects): flat list of source, remainingMs, kind, charges.
 */
export const PENALTY_LOAD = `${COMMON}
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local rows = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local source, expires = rows[i], tonumber(rows[i + 1])
  local record = redis.call('HMGET', ARGV[1] .. 'pen:' .. source, 'kind', 'charges')
  if record[1] then
    out[#out + 1] = source
    out[#out + 1] = expires - now
    out[#out + 1] = record[1]
    out[#out + 1] = tonumber(record[2]) or 1
  end
end
return out
`;

/** KEYS: alive, replicas. ARGV: me. A replica leaving cleanly: what it still holds stops counting at once. */
export const LEAVE = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;
