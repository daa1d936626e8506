--- @include "lib"
-- Token buckets held in hashes: field 'p' packs t (tokens at ts), ts (ms), r (tokens/ms), b (burst)
-- and kx (when the key expires) as doubles. Packed because turning numbers into text and back
-- (printf, strtod) was most of a script's CPU; an older layout's fields t, ts, r, b, kx are still
-- read when 'p' is absent, so an upgrade keeps the buckets' state.
-- Tokens may go negative: a debt that future refill pays, which is how a reservation promises a
-- slot in the future. A bucket may also be held (`hold`, ms): until then it refills nothing and
-- nothing is admitted from it, whatever its rate. That is how a penalty (Retry-After) pauses an
-- endpoint: a time, not a debt, so no rate raise can pay it off early. Every bucket touched in
-- one script run is cached here and written once at the end, so several buckets are debited
-- all-or-nothing.
-- Tenant buckets are fields of one hash per slot (KEYS: a script cannot declare a key per tenant,
-- since a promotion charges the promoted ticket's tenant): tenant -> the same packed numbers,
-- where kx is when the field's information runs out, and '|x' (no tenant name holds a '|') -> when
-- the hash itself expires, the latest kx of its fields. Fields past their kx are swept by sampling
-- (see sweepTenants).
local buckets = {}
local tenantBuckets = nil -- made with the first tenant's bucket: most runs have none
local MAX_TTL = 7 * 24 * 3600 * 1000
local BUCKET_FMT = '<ddddd'

-- t, ts, r, b, kx of a bucket's hash, or of a tenant's field in the tenants' hash (nil when absent)
local tenantsExpiry = 0
local function readBucket(key, field)
  if field then
    local v = rcall('HMGET', key, field, '|x')
    tenantsExpiry = tonumber(v[2]) or 0
    if v[1] then return { struct.unpack(BUCKET_FMT, v[1]) } end
    return {}
  end
  local v = rcall('HMGET', key, 'p', 't', 'ts', 'r', 'b', 'kx')
  if v[1] then return { struct.unpack(BUCKET_FMT, v[1]) } end
  return { tonumber(v[2]), tonumber(v[3]), tonumber(v[4]), tonumber(v[5]), tonumber(v[6]) }
end

-- Brings a bucket's tokens (b.t at b.ts, nil when unknown: full) up to now, then registers it.
local function settleBucket(b)
  local t, ts, cap = b.t, b.ts, b.b
  if t == nil or ts == nil then
    t, ts = cap, now
  elseif now > ts then
    -- refill; a clock that went backwards refills nothing, a held bucket refills from its hold's end
    local from = ts
    local hold = b.hold
    if hold ~= nil and hold > from then from = hold < now and hold or now end
    t = t + (now - from) * b.r
    ts = now
  end
  -- full, or a burst lowered at runtime (written as math.min(cap, t), a NaN becomes cap)
  if not (t < cap) then t = cap end
  b.t, b.ts = t, ts
  if b.field then
    tenantBuckets = tenantBuckets or {}
    tenantBuckets[b.field] = b
  else
    buckets[b.key] = b
  end
  return b
end

-- rate/burst given: they are the configured values (they win over what the hash remembers);
-- nil: use what the hash remembers (another caller's parent bucket). Returns nil if unknown.
-- `field`: a tenant's bucket in the tenants' hash `key`.
local function loadBucket(key, rate, burst, field)
  local b
  if field then b = tenantBuckets and tenantBuckets[field] else b = buckets[key] end
  if b then return b end
  local v = readBucket(key, field)
  local r = rate or v[3]
  local cap = burst or v[4]
  if r == nil or cap == nil then return nil end
  return settleBucket({ key = key, field = field, t = v[1], ts = v[2], r = r, b = cap, dirty = false, kx = v[5] or 0, new = v[1] == nil })
end

-- ms until `amount` tokens are there; INF when the rate is zero. A held bucket starts refilling
-- at its hold's end, so the wait is never shorter than the hold (what is left of it: lag).
local function waitForAmount(b, amount)
  local hold, lag = b.hold, 0
  if hold ~= nil and hold > now then lag = hold - now end
  if b.t >= amount then return lag end
  if b.r <= 0 then return INF end
  return lag + (amount - b.t) / b.r
end

-- the longest wait of a list's buckets, and never shorter than `atLeast` (a pause)
local function waitAll(list, cost, atLeast)
  local w = atLeast
  for i = 1, #list do
    local x = waitForAmount(list[i], cost)
    if x > w then w = x end
  end
  return w
end

local function debitAll(list, cost)
  for i = 1, #list do
    list[i].t = list[i].t - cost
    list[i].dirty = true
  end
end

-- refund a reservation whose slot is still in the future (a passed slot was used or lost)
local function refundAll(list, cost)
  for i = 1, #list do
    list[i].t = min(list[i].b, list[i].t + cost)
    list[i].dirty = true
  end
end

-- the burst of the first bucket a cost can never fit in, or nil
local function costAboveBurst(list, cost)
  for i = 1, #list do
    if cost > list[i].b then return list[i].b end
  end
  return nil
end

-- time for an idle bucket to be full again: after that its key carries no information
local function bucketTtl(b)
  if b.r <= 0 then return MAX_TTL end
  local hold, t = b.hold, b.t
  local lag = (hold ~= nil and hold > now) and hold - now or 0
  local ttl = ceil(lag + (b.b - (t < 0 and t or 0)) / b.r) + 1000
  -- (math.min(MAX_TTL, ttl) without the call)
  if ttl < MAX_TTL then return ttl end
  return MAX_TTL
end

-- Each new tenant field samples a few others and deletes those past their kx (their buckets are
-- full: nothing is lost). Stale fields then settle below a quarter of the hash (each insertion
-- removes 4 * the stale share on average, and adds at most one future stale field), while a
-- namespace with a steady set of tenants pays nothing. An idle hash expires as a whole ('|x').
local function sweepTenants(key)
  local sample = rcall('HRANDFIELD', key, 4, 'WITHVALUES')
  local stale = {}
  for i = 1, #sample, 2 do
    if sample[i] ~= '|x' then
      local _, _, _, _, kx = struct.unpack(BUCKET_FMT, sample[i + 1])
      if kx < now then stale[#stale + 1] = sample[i] end
    end
  end
  if #stale > 0 then rcall('HDEL', key, unpack(stale)) end
end

-- A key's expiry is renewed only when it would come too soon: each bucket remembers when its key
-- expires (kx, Redis ms) and is given that much more slack again (half of extraTtl) each time, so
-- a busy bucket pays one PEXPIREAT every few seconds instead of one per call.
local function renewal(expiresAt, needed, slack)
  if expiresAt >= needed then return nil end
  return ceil(needed + slack)
end

-- `extra` (optional): more field/value pairs to write to one bucket's hash in the same HSET.
-- A bucket with its own `pack` (the endpoint's) packs more than the bucket's numbers.
local function flushBuckets(extraTtl, extraKey, extra)
  for key, b in pairs(buckets) do
    if b.dirty then
      local at = renewal(b.kx, now + bucketTtl(b) + extraTtl, extraTtl / 2)
      if at then b.kx = at end
      local packed = b.pack and b.pack(b) or struct.pack(BUCKET_FMT, b.t, b.ts, b.r, b.b, b.kx)
      if key == extraKey then
        extra[#extra + 1] = 'p'; extra[#extra + 1] = packed
        rcall('HSET', key, unpack(extra))
      else
        rcall('HSET', key, 'p', packed)
      end
      if at then rcall('PEXPIREAT', key, at) end
    end
  end
  if tenantBuckets == nil then return end
  for field, b in pairs(tenantBuckets) do
    if b.dirty then
      local at = renewal(b.kx, now + bucketTtl(b) + extraTtl, extraTtl / 2)
      if at then b.kx = at end
      local packed = struct.pack(BUCKET_FMT, b.t, b.ts, b.r, b.b, b.kx)
      if b.kx > tenantsExpiry then
        -- the hash outlives its longest-lived field
        tenantsExpiry = b.kx
        rcall('HSET', b.key, field, packed, '|x', format('%d', b.kx))
        rcall('PEXPIREAT', b.key, b.kx)
      else
        rcall('HSET', b.key, field, packed)
      end
      if b.new then sweepTenants(b.key) end
    end
  end
end

-- An operator's runtime budget for a tenant (hash tcfg, tenant -> 'rate,burst', rate in
-- tokens/ms) wins over the configured one; read once per tenant per script run, and only while
-- the endpoint's flag 'tf' says such budgets may exist (tenantCfgMaybe: see readEndpoint).
local tenantOverrides = nil
local tenantCfgMaybe = true
local function tenantBudget(cfgKey, tenant, rate, burst)
  if not tenantCfgMaybe then return rate, burst end
  tenantOverrides = tenantOverrides or {}
  local o = tenantOverrides[tenant]
  if o == nil then
    o = false
    local v = rcall('HGET', cfgKey, tenant)
    if v then
      local r, b = match(v, '^([^,]+),([^,]+)$')
      if tonumber(r) and tonumber(b) then o = { tonumber(r), tonumber(b) } end
    end
    tenantOverrides[tenant] = o
  end
  if o then return o[1], o[2] end
  return rate, burst
end

-- The buckets a request is charged to: its endpoint, the namespace cap (key gKey), its tenant's
-- budget (a field of the hash tKey). A rate nil or false: no such bucket.
local soloList = nil -- { ep } of this run: the list of most requests and tickets, made once
local function chargedBuckets(ep, globalRate, globalBurst, gKey, tKey, tenant, tenantRate, tenantBurst)
  if not globalRate and not tenantRate then
    -- its readers never change a list
    if soloList == nil or soloList[1] ~= ep then soloList = { ep } end
    return soloList
  end
  local list = { ep }
  if globalRate then list[#list + 1] = loadBucket(gKey, globalRate, globalBurst) end
  if tenantRate then list[#list + 1] = loadBucket(tKey, tenantRate, tenantBurst, tenant) end
  return list
end

-- The buckets a refund goes back to: the same, except that the tenant's bucket is taken as its
-- hash remembers it (the budget that was charged, even if an operator changed it since), and only
-- if it still exists (a bucket whose key expired is full: nothing to give back).
local function refundBuckets(ep, globalRate, globalBurst, gKey, tKey, tenant)
  local list = { ep }
  if globalRate ~= nil then list[#list + 1] = loadBucket(gKey, globalRate, globalBurst) end
  local tb = loadBucket(tKey, nil, nil, tenant)
  if tb ~= nil then list[#list + 1] = tb end
  return list
end
