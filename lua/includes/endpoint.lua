--- @include "adaptive"
-- An endpoint's effective settings: the caller's configured defaults, overridden at runtime by
-- the operator's hash (so a change reaches every worker on its next call, without restart).
-- Fields: rate burst maxQueue w:<priority>; tmp:<same> with tmp:until (a temporary override);
-- paused (until ms, 'inf'); dryRun; shadow:rate shadow:burst; bypass:<tenant> (until ms, 'inf').
local function loadSettings(cfgKey, rate, burst, maxQueue)
  local s = { rate = rate, burst = burst, maxQueue = maxQueue, weights = {}, bypass = {},
              pauseWait = 0, dryRun = false, shadowRate = nil, shadowBurst = nil }
  local raw = redis.call('HGETALL', cfgKey)
  local fields = {}
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  local tmpActive = (tonumber(fields['tmp:until']) or 0) > now
  local function pick(name)
    if tmpActive and fields['tmp:' .. name] then return fields['tmp:' .. name] end
    return fields[name]
  end
  s.rate = tonumber(pick('rate')) or s.rate
  s.burst = tonumber(pick('burst')) or s.burst
  s.maxQueue = tonumber(pick('maxQueue')) or s.maxQueue
  for f, v in pairs(fields) do
    if string.sub(f, 1, 2) == 'w:' then
      s.weights[string.sub(f, 3)] = tonumber(pick(f))
    elseif tmpActive and string.sub(f, 1, 6) == 'tmp:w:' then
      s.weights[string.sub(f, 7)] = tonumber(v)
    elseif string.sub(f, 1, 7) == 'bypass:' and (tonumber(v) or INF) > now then
      s.bypass[string.sub(f, 8)] = true
    end
  end
  local paused = fields['paused']
  if paused then s.pauseWait = math.max(0, (tonumber(paused) or INF) - now) end
  s.dryRun = fields['dryRun'] == '1'
  s.shadowRate, s.shadowBurst = tonumber(fields['shadow:rate']), tonumber(fields['shadow:burst'])
  return s
end

-- The endpoint's bucket carries the fair-queue clock and counters beside its tokens.
local EP_FIELDS = { 'v', 'n', 'qc', 'bw', 's', 'adm', 'qd', 'to', 'qf', 'dr', 'pu', 'pen', 'dw', 'byp', 'sw', 'er', 'ceil', 'lp', 'la' }
-- `adaptive` (optional): the endpoint's AIMD spec; its effective rate replaces the configured one.
local function loadEndpoint(key, settings, adaptive)
  -- one read for the bucket and the queue's state
  local v = redis.call('HMGET', key, 't', 'ts', 'r', 'b', unpack(EP_FIELDS))
  local fields = {}
  for i = 1, #EP_FIELDS do fields[EP_FIELDS[i]] = tonumber(v[i + 4]) or 0 end
  settings.configuredRate = settings.rate
  if adaptive ~= nil then
    if fields.er <= 0 then fields.er = settings.rate end
    fields.er = math.min(fields.er, settings.rate)
  end
  local ep = loadBucket(key, adaptiveRate(fields, adaptive, settings.rate), settings.burst, { v[1], v[2], v[3], v[4] })
  for f, x in pairs(fields) do ep[f] = x end
  return ep
end

local function saveEndpoint(ep, extraTtl)
  local args = {}
  for i = 1, #EP_FIELDS do
    args[#args + 1] = EP_FIELDS[i]
    args[#args + 1] = num(ep[EP_FIELDS[i]])
  end
  ep.dirty = true
  flushBuckets(extraTtl, ep.key, args)
end

-- A shadow limit previews a change: every admission is also charged to it, and what would have
-- waited under it is counted. It never holds anyone back.
local function chargeShadow(ep, settings, shadowKey, cost)
  if settings.shadowRate == nil then return end
  local sh = loadBucket(shadowKey, settings.shadowRate, settings.shadowBurst)
  if waitForAmount(sh, cost) > 0 then ep.sw = ep.sw + 1 end
  sh.t = math.max(sh.t - cost, -sh.b)
  sh.dirty = true
end
