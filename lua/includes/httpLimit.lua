-- Shared by the inbound limiter scripts (httpTokenBucket, httpGcra, httpSlidingWindow,
-- httpFixedWindow): clock, calendar quotas, abuse blocking and the reply. Each script only
-- computes its algorithm's verdict and new fields, then calls decide(); nothing is written for a
-- refused request except the refusal count of the abuse block.
--
-- KEYS[1] state   one limited key under one policy (hash): rate fields, quota counts, block fields
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
-- float sums of rates and timestamps: a request that is exactly due must pass
local EPS = 1e-9
local function fmt(x) return string.format('%.17g', x) end

local raw = redis.call('HGETALL', key)
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end

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
  local dayLimit, monthLimit = tonumber(ARGV[5]), tonumber(ARGV[9])
  local blockAfter = tonumber(ARGV[13])
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

  -- the key's TTL covers everything it holds, computed from its fields (no PTTL round): the rate
  -- state until it equals a fresh one, quota counts until their window ends, a block and its count
  local ttl = 0
  local function keep(ms) if ms and ms > ttl then ttl = ms end end
  local function keepUntil(at) if at then keep(at - now) end end
  local newlyBlocked = 0
  if status == 1 then
    if dayLimit > 0 then
      dUsed = dUsed + cost
      fields[#fields + 1] = 'de'; fields[#fields + 1] = dEnd
      fields[#fields + 1] = 'dc'; fields[#fields + 1] = dUsed
      keep(dEnd - now)
    end
    if monthLimit > 0 then
      mUsed = mUsed + cost
      fields[#fields + 1] = 'me'; fields[#fields + 1] = mEnd
      fields[#fields + 1] = 'mc'; fields[#fields + 1] = mUsed
      keep(mEnd - now)
    end
    redis.call('HSET', key, unpack(fields))
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
      redis.call('HSET', key, 'bu', bu)
      redis.call('HDEL', key, 'rs', 'rn')
      retryMs = math.max(retryMs, bu - now)
      status = -3
      keepUntil(bu)
    else
      redis.call('HSET', key, 'rs', rs, 'rn', rn)
      keepUntil(rs + within)
    end
    -- what the key held before this refusal still needs its time
    if raw[1] then
      keep(resetMs)
      keepUntil(tonumber(h.de))
      keepUntil(tonumber(h.me))
    end
  end
  if ttl > 0 then redis.call('PEXPIRE', key, math.ceil(math.max(ttl, minTtl))) end
  return { status, remaining, resetMs, retryMs, dUsed, dEnd, mUsed, mEnd, bu, newlyBlocked, now }
end
