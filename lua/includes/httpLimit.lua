-- Shared by the inbound limiter's algorithms (httpTokenBucket, httpGcra, httpSlidingWindow,
-- httpFixedWindow), run per item by lua/httpLimit-n.lua: clock, calendar quotas, abuse blocking
-- and the reply. An algorithm is a function of no arguments: it reads its fields with read(),
-- computes its verdict and new fields, then returns decide(...). Nothing is written for a refused
-- request except the refusal count of the abuse block.
--
-- The item being decided lives in the chunk-level locals below, set by item() before the
-- algorithm runs: the functions reach them as upvalues, so no table or closure is made per item.
--
-- One item's arguments, at ARGV[base + j] (base: where the item starts, see httpLimit-n):
--   j = 1  arguments of this item after this one (4, or 15 with quotas or blocking)
--   j = 2  algorithm (1 token bucket, 2 GCRA, 3 sliding window, 4 fixed window)
--   j = 3  cost of this request
--   j = 4  algorithm parameter a     j = 5  algorithm parameter b
--   j = 6  daily quota (0 = none)    j = 7..9   start, end and next end of the client's day
--   j = 10 monthly quota (0 = none)  j = 11..13 start, end and next end of the client's month
--   j = 14 block after N refusals (0 = no blocking)  j = 15 within ms  j = 16 block for ms
--
-- Each item's reply: { status, remaining, resetMs, retryMs, now, blockedUntil, newlyBlocked,
--                      dayUsed, dayEnd, monthUsed, monthEnd }
--   status  1 admitted   0 refused by the rate   -1 daily quota spent   -2 monthly quota spent
--          -3 blocked (abuse)
--   remaining  requests the rate admits now (after this one when admitted)
--   resetMs    until the rate is fully available again;  retryMs  until this request would pass
--   The last six are left out when the policy has no quota and no block is in force or begins.
--
-- Commands per item: one HMGET of the fields its policy uses, one HSET when something changes;
-- PEXPIRE only when the key's TTL must grow past x (see decide). TIME once per script call. Every
-- step here runs for every item: no closures or tables beyond what the item needs.

local now = tonumber(ARGV[1])
-- an injected clock does not move with real time, so TTLs computed on it would expire state
-- while the test's time stands still: such keys live at least an hour of real time
local minTtl = 0
if now then minTtl = 3600000 end
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- float sums of rates and timestamps: a request that is exactly due must pass
local EPS = 1e-9
local function fmt(x) return string.format('%.17g', x) end

-- the item: its key, where its arguments start, its cost and parameters, and the key's fields
-- read() fetched (strings as stored, or nil)
local key, base, cost, A, B, dayLimit, monthLimit, blockAfter
local x, bu, de, dc, me, mc, rs, rn

-- makes KEYS[i], whose arguments start after ARGV[b], the item; returns its algorithm's number
local function item(i, b)
  key, base = KEYS[i], b
  cost, A, B = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  if tonumber(ARGV[b + 1]) > 4 then
    dayLimit, monthLimit, blockAfter = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 10]), tonumber(ARGV[b + 14])
  else
    dayLimit, monthLimit, blockAfter = 0, 0, 0
  end
  x, bu, de, dc, me, mc, rs, rn = nil, nil, nil, nil, nil, nil, nil, nil
  return tonumber(ARGV[b + 2])
end

-- the key's fields this item needs, in one HMGET: the algorithm's (named by it, their values
-- returned in order), then x and bu always, quota and refusal-count fields only under a policy
-- that has them (kept in the locals above)
local function read(names)
  local k = #names
  local n = k
  names[n + 1] = 'x'; names[n + 2] = 'bu'; n = n + 2
  if dayLimit > 0 then names[n + 1] = 'de'; names[n + 2] = 'dc'; n = n + 2 end
  if monthLimit > 0 then names[n + 1] = 'me'; names[n + 2] = 'mc'; n = n + 2 end
  if blockAfter > 0 then names[n + 1] = 'rs'; names[n + 2] = 'rn' end
  local v = redis.call('HMGET', key, unpack(names))
  x, bu = v[k + 1] or nil, v[k + 2] or nil
  n = k + 2
  if dayLimit > 0 then de, dc = v[n + 1] or nil, v[n + 2] or nil; n = n + 2 end
  if monthLimit > 0 then me, mc = v[n + 1] or nil, v[n + 2] or nil; n = n + 2 end
  if blockAfter > 0 then rs, rn = v[n + 1] or nil, v[n + 2] or nil end
  return v[1] or nil, v[2] or nil, v[3] or nil
end

-- the calendar window holding now; the client's clock chose the boundaries, Redis's picks one, so
-- a skewed client clock cannot count a request in the wrong day
local function windowEnd(j)
  local s, e1, e2 = tonumber(ARGV[base + j]), tonumber(ARGV[base + j + 1]), tonumber(ARGV[base + j + 2])
  if now < s then return s elseif now < e1 then return e1 end
  return e2
end

-- remaining: what the rate admits after this request; before: what it admits without it (a
-- request the quota refuses takes nothing from the rate). fields: the algorithm's new state
-- (written when admitted); rateTtl: how long that state differs from a fresh one
local function decide(ok, remaining, before, resetMs, retryMs, fields, rateTtl)
  bu = tonumber(bu) or 0
  local dEnd, mEnd, dUsed, mUsed = 0, 0, 0, 0
  if dayLimit > 0 then
    dEnd = windowEnd(7)
    if tonumber(de) == dEnd then dUsed = tonumber(dc) end
  end
  if monthLimit > 0 then
    mEnd = windowEnd(11)
    if tonumber(me) == mEnd then mUsed = tonumber(mc) end
  end
  if bu > now then
    return { -3, 0, resetMs, bu - now, now, bu, 0, dUsed, dEnd, mUsed, mEnd }
  end

  local status = 1
  if not ok then
    status = 0
  elseif dayLimit > 0 and dUsed + cost > dayLimit then
    status, retryMs, remaining = -1, math.max(retryMs, dEnd - now), before
  elseif monthLimit > 0 and mUsed + cost > monthLimit then
    status, retryMs, remaining = -2, math.max(retryMs, mEnd - now), before
  end

  -- ttl: how long what the key holds after this request must live, from its fields (no PTTL
  -- round): the rate state until it equals a fresh one, quota counts until their window ends, a
  -- block and its refusal count
  local ttl = 0
  local newlyBlocked = 0
  local n = #fields
  if status == 1 then
    ttl = rateTtl
    if dayLimit > 0 then
      dUsed = dUsed + cost
      fields[n + 1] = 'de'; fields[n + 2] = dEnd; fields[n + 3] = 'dc'; fields[n + 4] = dUsed
      n = n + 4
      ttl = math.max(ttl, dEnd - now)
    end
    if monthLimit > 0 then
      mUsed = mUsed + cost
      fields[n + 1] = 'me'; fields[n + 2] = mEnd; fields[n + 3] = 'mc'; fields[n + 4] = mUsed
      n = n + 4
      ttl = math.max(ttl, mEnd - now)
    end
    if blockAfter > 0 and rs then ttl = math.max(ttl, tonumber(rs) + tonumber(ARGV[base + 15]) - now) end
  elseif blockAfter > 0 then
    local within = tonumber(ARGV[base + 15])
    local rs, rn = tonumber(rs), tonumber(rn) or 0
    if not rs or now >= rs + within or now < rs then rs, rn = now, 0 end
    rn = rn + 1
    if rn >= blockAfter then
      bu = now + tonumber(ARGV[base + 16])
      newlyBlocked = 1
      fields = { 'bu', bu }
      redis.call('HDEL', key, 'rs', 'rn')
      retryMs = math.max(retryMs, bu - now)
      status = -3
      ttl = bu - now
    else
      fields = { 'rs', rs, 'rn', rn }
      ttl = rs + within - now
    end
    n = #fields
    -- what the key held before this refusal still needs its time (x covers it, unless the key
    -- was written by a script that kept no x)
    ttl = math.max(ttl, resetMs)
    if de then ttl = math.max(ttl, tonumber(de) - now) end
    if me then ttl = math.max(ttl, tonumber(me) - now) end
  end
  if n > 0 then
    -- x is when the key expires: a write that needs no more than that leaves the TTL alone. When
    -- it needs more, the TTL is renewed with slack (as long again, 1 s to 1 min), so a busy key
    -- renews about once per slack instead of on every request, and an idle one is gone at most
    -- a minute after its state ran out
    x = tonumber(x)
    if x and now + ttl <= x then
      redis.call('HSET', key, unpack(fields))
    else
      x = math.ceil(now + ttl + math.min(math.max(ttl, 1000), 60000))
      fields[n + 1] = 'x'; fields[n + 2] = x
      redis.call('HSET', key, unpack(fields))
      redis.call('PEXPIRE', key, math.max(x - now, minTtl))
    end
  end
  if dayLimit == 0 and monthLimit == 0 and bu == 0 then
    return { status, remaining, resetMs, retryMs, now }
  end
  return { status, remaining, resetMs, retryMs, now, bu, newlyBlocked, dUsed, dEnd, mUsed, mEnd }
end
