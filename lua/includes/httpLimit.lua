-- Shared by the inbound limiter scripts (httpTokenBucket, httpGcra, httpSlidingWindow,
-- httpFixedWindow): clock, calendar quotas, abuse blocking and the reply. Each script reads its
-- algorithm's fields with read(), computes its verdict and new fields, then calls decide();
-- nothing is written for a refused request except the refusal count of the abuse block.
--
-- KEYS[1] state   one limited key under one policy (hash): rate fields, quota counts, block
--                 fields, and x: the end of the key's TTL (ms, on the script's clock)
-- ARGV[1]  now ms ('' = Redis TIME; tests inject a clock to cross window boundaries)
-- ARGV[2]  cost of this request
-- ARGV[3]  algorithm parameter a      ARGV[4] algorithm parameter b
-- ARGV[5]  daily quota (0 = none)     ARGV[6..8]  start, end and next end of the client's day
-- ARGV[9]  monthly quota (0 = none)   ARGV[10..12] start, end and next end of the client's month
-- ARGV[13] block after N refusals (0 = no blocking)  ARGV[14] within ms  ARGV[15] block for ms
--
-- Returns { status, remaining, resetMs, retryMs, dayUsed, dayEnd, monthUsed, monthEnd,
--           blockedUntil, newlyBlocked, now }
--   status  1 admitted   0 refused by the rate   -1 daily quota spent   -2 monthly quota spent
--          -3 blocked (abuse)
--   remaining  requests the rate admits now (after this one when admitted)
--   resetMs    until the rate is fully available again;  retryMs  until this request would pass
--
-- Commands per request: TIME, one HMGET of the fields this policy uses, one HSET when something
-- changes; PEXPIRE only when the key's TTL must grow past x (see decide).

local key = KEYS[1]
local now = tonumber(ARGV[1])
-- an injected clock does not move with real time, so TTLs computed on it would expire state
-- while the test's time stands still: such keys live at least an hour of real time
local minTtl = 0
if now then minTtl = 3600000 end
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[2])
local A, B = tonumber(ARGV[3]), tonumber(ARGV[4])
local dayLimit, monthLimit, blockAfter = tonumber(ARGV[5]), tonumber(ARGV[9]), tonumber(ARGV[13])
-- float sums of rates and timestamps: a request that is exactly due must pass
local EPS = 1e-9
local function fmt(x) return string.format('%.17g', x) end

-- the key's fields this request needs: the algorithm's (given), x and bu always, quota and
-- refusal-count fields only under a policy that has them
local h = {}
local function read(...)
  local names = { ... }
  local n = #names
  names[n + 1] = 'x'; names[n + 2] = 'bu'; n = n + 2
  if dayLimit > 0 then names[n + 1] = 'de'; names[n + 2] = 'dc'; n = n + 2 end
  if monthLimit > 0 then names[n + 1] = 'me'; names[n + 2] = 'mc'; n = n + 2 end
  if blockAfter > 0 then names[n + 1] = 'rs'; names[n + 2] = 'rn'; n = n + 2 end
  local values = redis.call('HMGET', key, unpack(names))
  for i = 1, n do
    if values[i] then h[names[i]] = values[i] end
  end
end

-- the calendar window holding now; the client's clock chose the boundaries, Redis's picks one, so
-- a skewed client clock cannot count a request in the wrong day
local function windowEnd(i)
  local s, e1, e2 = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if now < s then return s elseif now < e1 then return e1 end
  return e2
end

-- remaining: what the rate admits after this request; before: what it admits without it (a
-- request the quota refuses takes nothing from the rate)
local function decide(ok, remaining, before, resetMs, retryMs, fields, rateTtl)
  local bu = tonumber(h.bu) or 0
  local dEnd, mEnd, dUsed, mUsed = 0, 0, 0, 0
  if dayLimit > 0 then
    dEnd = windowEnd(6)
    if tonumber(h.de) == dEnd then dUsed = tonumber(h.dc) end
  end
  if monthLimit > 0 then
    mEnd = windowEnd(10)
    if tonumber(h.me) == mEnd then mUsed = tonumber(h.mc) end
  end
  if bu > now then
    return { -3, 0, resetMs, bu - now, dUsed, dEnd, mUsed, mEnd, bu, 0, now }
  end

  local status = 1
  if not ok then
    status = 0
  elseif dayLimit > 0 and dUsed + cost > dayLimit then
    status, retryMs, remaining = -1, math.max(retryMs, dEnd - now), before
  elseif monthLimit > 0 and mUsed + cost > monthLimit then
    status, retryMs, remaining = -2, math.max(retryMs, mEnd - now), before
  end

  -- what the key holds after this request must outlive its TTL, computed from its fields (no
  -- PTTL round): the rate state until it equals a fresh one, quota counts until their window
  -- ends, a block and its refusal count
  local ttl = 0
  local function keep(ms) if ms and ms > ttl then ttl = ms end end
  local function keepUntil(at) if at then keep(at - now) end end
  local newlyBlocked = 0
  local n = #fields
  if status == 1 then
    if dayLimit > 0 then
      dUsed = dUsed + cost
      fields[n + 1] = 'de'; fields[n + 2] = dEnd; fields[n + 3] = 'dc'; fields[n + 4] = dUsed
      n = n + 4
      keep(dEnd - now)
    end
    if monthLimit > 0 then
      mUsed = mUsed + cost
      fields[n + 1] = 'me'; fields[n + 2] = mEnd; fields[n + 3] = 'mc'; fields[n + 4] = mUsed
      n = n + 4
      keep(mEnd - now)
    end
    keep(rateTtl)
    if blockAfter > 0 and h.rs then keepUntil(tonumber(h.rs) + tonumber(ARGV[14])) end
  elseif blockAfter > 0 then
    local within = tonumber(ARGV[14])
    local rs, rn = tonumber(h.rs), tonumber(h.rn) or 0
    if not rs or now >= rs + within or now < rs then rs, rn = now, 0 end
    rn = rn + 1
    if rn >= blockAfter then
      bu = now + tonumber(ARGV[15])
      newlyBlocked = 1
      fields = { 'bu', bu }
      redis.call('HDEL', key, 'rs', 'rn')
      retryMs = math.max(retryMs, bu - now)
      status = -3
      keepUntil(bu)
    else
      fields = { 'rs', rs, 'rn', rn }
      keepUntil(rs + within)
    end
    n = #fields
    -- what the key held before this refusal still needs its time (x covers it, unless the key
    -- was written by a script that kept no x)
    keep(resetMs)
    keepUntil(tonumber(h.de))
    keepUntil(tonumber(h.me))
  end
  if n == 0 then
    return { status, remaining, resetMs, retryMs, dUsed, dEnd, mUsed, mEnd, bu, newlyBlocked, now }
  end
  -- x is when the key expires: a write that needs no more than that leaves the TTL alone. When
  -- it needs more, the TTL is renewed with slack (as long again, 1 s to 1 min), so a busy key
  -- renews about once per slack instead of every request, and an idle one is gone at most a
  -- minute after its state ran out
  local x = tonumber(h.x)
  local renew = not x or now + ttl > x
  if renew then
    x = now + ttl + math.min(math.max(ttl, 1000), 60000)
    fields[n + 1] = 'x'; fields[n + 2] = x
  end
  redis.call('HSET', key, unpack(fields))
  if renew then redis.call('PEXPIRE', key, math.ceil(math.max(x - now, minTtl))) end
  return { status, remaining, resetMs, retryMs, dUsed, dEnd, mUsed, mEnd, bu, newlyBlocked, now }
end
