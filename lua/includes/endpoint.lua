--- @include "adaptive"
-- An endpoint's effective settings: the caller's configured defaults, overridden at runtime by
-- the operator's hash (so a change reaches every worker on its next call, without restart).
-- Fields: rate burst maxQueue w:<priority>; tmp:<same> with tmp:until (a temporary override);
-- paused (until ms, 'inf'); dryRun; shadow:rate shadow:burst; bypass:<tenant> (until ms, 'inf').
-- `version`: the caller's config version. The fleet's config file values live in the endpoint's
-- bucket (fv, fr, fb, fq: see resolveFileConfig); the newest version wins over the caller's file.
local function loadSettings(cfgKey, rate, burst, maxQueue, version)
  local s = { rate = rate, burst = burst, maxQueue = maxQueue, weights = {}, bypass = {},
              pauseWait = 0, dryRun = false, shadowRate = nil, shadowBurst = nil,
              version = tonumber(version) or 0, file = { rate = rate, burst = burst, maxQueue = maxQueue },
              overridden = {}, stamping = false, stamped = nil }
  local raw = redis.call('HGETALL', cfgKey)
  local fields = {}
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  local tmpActive = (tonumber(fields['tmp:until']) or 0) > now
  local function pick(name)
    if tmpActive and fields['tmp:' .. name] then return fields['tmp:' .. name] end
    return fields[name]
  end
  for _, name in ipairs({ 'rate', 'burst', 'maxQueue' }) do
    local v = tonumber(pick(name))
    if v ~= nil then s[name] = v; s.overridden[name] = true end
  end
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

-- A rolling restart runs processes with two config files side by side. The fleet follows one: the
-- file of the newest config version any process has sent (fv, and its rate fr, burst fb, max
-- queue fq, kept in the bucket). A caller with an older version uses the stored values; a caller
-- with a newer one replaces them when settings.stamping (acquire only: the other scripts do not
-- know the max queue), and settings.stamped tells it what it replaced. An operator's runtime
-- override still wins over either file.
local function resolveFileConfig(settings, f)
  local mine = settings.file
  if f.fv > settings.version then
    if not settings.overridden.rate then settings.rate = f.fr end
    if not settings.overridden.burst then settings.burst = f.fb end
    if not settings.overridden.maxQueue then settings.maxQueue = f.fq end
  elseif settings.version > f.fv and settings.stamping then
    if f.fv > 0 and (f.fr ~= mine.rate or f.fb ~= mine.burst or f.fq ~= mine.maxQueue) then
      settings.stamped = { version = f.fv, rate = f.fr, burst = f.fb, maxQueue = f.fq }
    end
    f.fv, f.fr, f.fb, f.fq = settings.version, mine.rate, mine.burst, mine.maxQueue
  end
end

-- The endpoint's bucket carries the fair-queue clock and counters beside its tokens.
-- kt: ms the endpoint's keys outlive a full bucket (horizon + lease + 1 s, set by acquire), so
-- every script gives the bucket, queue and class keys one and the same TTL.
-- qx: when the queue and class keys expire (Redis ms; the bucket's own is kx, see flushBuckets).
-- qdl: 1 when a queued ticket may carry a deadline (promote must look even without tokens).
-- mc, xc: the smallest and the largest cost queued since the queue was last empty (bounds of what
-- waits). ho (a string): the owner of the ticket promote last stopped at, '' when unknown.
local EP_FIELDS = { 'v', 'n', 'qc', 'bw', 's', 'adm', 'qd', 'to', 'qf', 'dr', 'pu', 'pen', 'dw', 'byp', 'sw', 'er', 'ceil', 'lp', 'la', 'pk', 'fv', 'fr', 'fb', 'fq', 'kt', 'qx', 'qdl', 'mc', 'xc' }
-- written exactly (rates in tokens/ms are small): the others are counters, clocks and ms
local EP_EXACT = { fr = true, fb = true, fq = true }
-- `adaptive` (optional): the endpoint's AIMD spec; its effective rate replaces the configured one.
local function loadEndpoint(key, settings, adaptive)
  -- one read for the bucket and the queue's state
  local v = redis.call('HMGET', key, 't', 'ts', 'r', 'b', 'kx', 'ho', unpack(EP_FIELDS))
  local fields = {}
  local was = {}
  for i = 1, #EP_FIELDS do
    local x = tonumber(v[i + 6]) or 0
    fields[EP_FIELDS[i]] = x
    was[EP_FIELDS[i]] = x
  end
  resolveFileConfig(settings, fields)
  settings.configuredRate = settings.rate
  if adaptive ~= nil then
    if fields.er <= 0 then fields.er = settings.rate end
    fields.er = math.min(fields.er, settings.rate)
  end
  -- a penalty's pause (pu) holds the bucket: no refill and no admission before it
  local ep = loadBucket(key, adaptiveRate(fields, adaptive, settings.rate), settings.burst, { v[1], v[2], v[3], v[4], v[5] }, fields.pu)
  for f, x in pairs(fields) do ep[f] = x end
  -- what was read, so saveEndpoint formats and writes only the fields this run changed (number
  -- formatting is most of a script's CPU)
  ep.was = was
  -- the bucket's hash was gone: the queue's own count is asked (syncQueue)
  ep.fresh = v[2] == false
  ep.ho = v[6] or ''
  ep.wasHo = ep.ho
  return ep
end

-- How long an idle adaptive endpoint remembers the rate it learned (one hour).
local ADAPTIVE_MEMORY_MS = 3600000

-- Writes the endpoint's bucket (and every other bucket touched) and gives the queue and the class
-- keys (when given and the queue is not empty) the bucket's TTL: renewed when it would come too
-- soon (qx), or when this run created the queue (ep.grew: a new key has no expiry yet).
local function saveEndpoint(ep, qKey, cKey)
  -- a learned adaptive rate outlives idleness: forgetting it one refill after the last request
  -- would send the fleet back to the configured rate, and into the same 429s, after every lull
  local keep = ep.kt + ((ep.ceil or 0) > 0 and ADAPTIVE_MEMORY_MS or 0)
  if qKey ~= nil and ep.n > 0 then
    local needed = now + bucketTtl(ep) + keep
    local at = renewal(ep.grew and 0 or ep.qx, needed, keep / 2)
    if at then
      -- the bucket (the queue's counter) never expires before the queue: renewed with it
      ep.qx, ep.kx = at, 0
      redis.call('PEXPIREAT', qKey, at)
      redis.call('PEXPIREAT', cKey, at)
    end
  end
  local args = {}
  if ep.ho ~= ep.wasHo then args[1] = 'ho'; args[2] = ep.ho end
  local was = ep.was
  for i = 1, #EP_FIELDS do
    local f = EP_FIELDS[i]
    local x = ep[f]
    if x ~= was[f] then
      args[#args + 1] = f
      args[#args + 1] = EP_EXACT[f] and tostring(x) or num(x)
    end
  end
  ep.dirty = true
  flushBuckets(keep, ep.key, args)
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
