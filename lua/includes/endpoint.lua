--- @include "lib"
--- @include "adaptive"
--- @include "fairQueue"
-- An endpoint's effective settings: the caller's configured defaults, overridden at runtime by
-- the operator's hash (so a change reaches every worker on its next call, without restart).
-- Fields: rate burst maxQueue w:<priority>; tmp:<same> with tmp:until (a temporary override);
-- paused (until ms, 'inf'); dryRun; shadow:rate shadow:burst; bypass:<tenant> (until ms, 'inf').
-- `version`: the caller's config version. The fleet's config file values live in the endpoint's
-- bucket (fv, fr, fb, fq: see resolveFileConfig); the newest version wins over the caller's file.
-- `state` (readEndpoint): the hash is read only when the endpoint's flag 'cf' says it may hold
-- something (the operators' controls set it with every change) or the endpoint's state is new.
-- Without overrides, weights, bypass and overridden are one shared empty table, never written.
-- The settings and the state (readEndpoint) are tables a Function keeps and every run fills anew,
-- every field (setting a field a table has costs ~150 instructions, a constructor's ~400). Such a
-- table's fields hold false rather than nil: a nil field is dropped by the collector, and setting
-- it again inserts it again.
local NO_OVERRIDES = {}
local SETTINGS = {}
local function loadSettings(cfgKey, rate, burst, maxQueue, version, state)
  local s = SETTINGS
  s.rate, s.burst, s.maxQueue, s.weights, s.bypass = rate, burst, maxQueue, NO_OVERRIDES, NO_OVERRIDES
  s.pauseWait, s.dryRun, s.shadowRate, s.shadowBurst = 0, false, false, false
  s.version, s.fileRate, s.fileBurst, s.fileMaxQueue = parsed(version) or 0, rate, burst, maxQueue
  s.overridden, s.stamping, s.stamped, s.configuredRate = NO_OVERRIDES, false, false, rate
  if not (state.cf or state.fresh) then return s end
  local raw = rcall('HGETALL', cfgKey)
  -- the flag follows what the hash holds (saveEndpoint writes it)
  state.cfWanted = #raw > 0
  if #raw == 0 then return s end
  s.weights, s.bypass, s.overridden = {}, {}, {}
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
    if sub(f, 1, 2) == 'w:' then
      s.weights[sub(f, 3)] = tonumber(pick(f))
    elseif tmpActive and sub(f, 1, 6) == 'tmp:w:' then
      s.weights[sub(f, 7)] = tonumber(v)
    elseif sub(f, 1, 7) == 'bypass:' and (tonumber(v) or INF) > now then
      s.bypass[sub(f, 8)] = true
    end
  end
  local paused = fields['paused']
  if paused then s.pauseWait = max(0, (tonumber(paused) or INF) - now) end
  s.dryRun = fields['dryRun'] == '1'
  s.shadowRate, s.shadowBurst = tonumber(fields['shadow:rate']) or false, tonumber(fields['shadow:burst']) or false
  return s
end

-- A rolling restart runs processes with two config files side by side. The fleet follows one: the
-- file of the newest config version any process has sent (fv, and its rate fr, burst fb, max
-- queue fq, kept in the bucket). A caller with an older version uses the stored values; a caller
-- with a newer one replaces them when settings.stamping (acquire only: the other scripts do not
-- know the max queue), and settings.stamped tells it what it replaced. An operator's runtime
-- override still wins over either file.
local function resolveFileConfig(settings, f)
  if f.fv > settings.version then
    if not settings.overridden.rate then settings.rate = f.fr end
    if not settings.overridden.burst then settings.burst = f.fb end
    if not settings.overridden.maxQueue then settings.maxQueue = f.fq end
  elseif settings.version > f.fv and settings.stamping then
    if f.fv > 0 and (f.fr ~= settings.fileRate or f.fb ~= settings.fileBurst or f.fq ~= settings.fileMaxQueue) then
      settings.stamped = { version = f.fv, rate = f.fr, burst = f.fb, maxQueue = f.fq }
    end
    f.fv, f.fr, f.fb, f.fq = settings.version, settings.fileRate, settings.fileBurst, settings.fileMaxQueue
  end
end

-- The endpoint's bucket carries the fair-queue clock and counters beside its tokens.
-- kt: ms the endpoint's keys outlive a full bucket (horizon + lease + 1 s, set by acquire), so
-- every script gives the bucket, queue and class keys one and the same TTL.
-- qx: when the queue and class keys expire (Redis ms; the bucket's own is kx, see flushBuckets).
-- qdl: 1 when a queued ticket may carry a deadline (promote must look even without tokens).
-- mc, xc: the smallest and the largest cost queued since the queue was last empty (bounds of what
-- waits). ho (a string): the owner of the ticket promote last stopped at, '' when unknown.
-- aw, aa: when the adaptive rate's current quiet period began and the admissions counter then
-- (see adaptive.lua). mx: when the endpoint's mailbox expires (see promote.lua). hu: until when ho's lease certainly holds (Redis ms; see newTicket). bp: the queue's busy
-- period (see fairQueue.lua).
-- All of them, after the bucket's t ts r b kx, are packed as doubles in the hash's field 'p' (see
-- buckets.lua); 'ho' and the config flag 'cf' are fields of their own.
local EP_FIELDS = { 'v', 'n', 'qc', 'bw', 's', 'adm', 'qd', 'to', 'qf', 'dr', 'pu', 'pen', 'dw', 'byp', 'sw', 'er', 'ceil', 'lp', 'la', 'pk', 'fv', 'fr', 'fb', 'fq', 'kt', 'qx', 'qdl', 'mc', 'xc', 'bp', 'hu', 'aw', 'aa', 'mx' }
local EP_FMT = '<' .. string.rep('d', 5 + #EP_FIELDS)
-- a new endpoint's: every number 0 (a double 0 is eight zero bytes)
local EP_ZERO = string.rep('\0', 8 * (5 + #EP_FIELDS))

-- One read for the bucket, the queue's state, the config flags and the hash's fields named in
-- `extra` (a list, or nil; see stateField): { packed (t ts r b kx, then EP_FIELDS, as doubles; an
-- older layout's fields are packed so when 'p' is absent), ho, cf, tf, fresh }. loadEndpoint
-- unpacks it.
local STATE = {}
local function readEndpoint(key, extra)
  local v
  if extra then
    v = rcall('HMGET', key, 'p', 'ho', 'cf', 'tf', unpack(extra))
  else
    v = rcall('HMGET', key, 'p', 'ho', 'cf', 'tf')
  end
  local state = STATE
  state.key, state.packed, state.ho, state.cf, state.fresh, state.tf = key, v[1] or EP_ZERO, v[2] or '', v[3] ~= false, false, v[4] ~= false
  state.fields, state.values, state.legacy = extra or false, v, false
  if not v[1] then
    -- new, or of the older layout (its fields, now packed)
    local old = rcall('HMGET', key, 't', 'ts', 'r', 'b', 'kx', unpack(EP_FIELDS))
    if old[2] then
      local values = {}
      for i = 1, #old do values[i] = tonumber(old[i]) or 0 end
      state.packed, state.legacy = struct.pack(EP_FMT, unpack(values)), { t = tonumber(old[1]), ts = tonumber(old[2]) }
    else
      state.fresh = true
    end
  end
  -- runtime tenant budgets: the controls raise 'tf' on every endpoint's state when they set one;
  -- a new state asks whether any exists
  tenantCfgMaybe = state.tf or state.fresh
  state.cfWanted = state.cf
  return state
end

local function packEndpoint(ep)
  -- in EP_FIELDS' order (named one by one: a table built per call costs more than the packing)
  ep.packed = struct.pack(EP_FMT, ep.t, ep.ts, ep.r, ep.b, ep.kx, ep.v, ep.n, ep.qc, ep.bw, ep.s, ep.adm, ep.qd, ep.to, ep.qf, ep.dr, ep.pu, ep.pen, ep.dw, ep.byp, ep.sw, ep.er, ep.ceil, ep.lp, ep.la, ep.pk, ep.fv, ep.fr, ep.fb, ep.fq, ep.kt, ep.qx, ep.qdl, ep.mc, ep.xc, ep.bp, ep.hu, ep.aw, ep.aa, ep.mx)
  return ep.packed
end

-- A Function keeps, per endpoint key, the table it last saved and the string it packed it into:
-- when the hash holds that very string again (Lua interns strings: one comparison), the table's
-- numbers are the stored ones, so the next run skips unpacking them and building the table (about
-- a tenth of a run). Equal bytes are equal numbers whichever process, database or script wrote
-- them. An entry is claimed by the run that loads it and given back only by its save, so a run
-- that fails half-way leaves nothing behind. Under EVAL it starts empty at every call.
local SAVED = newCache(64)

-- the saved table, with the fields of a run set as newEndpoint's constructor sets them; nil: unpack
local function reuseEndpoint(state)
  local saved = SAVED.items[state.key]
  if saved == nil or saved.packed ~= state.packed then return nil end
  saved.packed = false
  local ep = saved.ep
  -- every field a run sets that is not packed (see newEndpoint and the scripts)
  ep.r, ep.b, ep.hold, ep.dirty, ep.state, ep.fresh, ep.ho = 0, 0, 0, false, state, state.fresh, state.ho
  ep.tenantCfgKey, ep.writes, ep.grew = false, false, false
  return ep
end

-- after the save: nothing may change the endpoint's packed fields any more in this run
local function keepEndpoint(ep)
  local saved = SAVED.items[ep.key] or remember(SAVED, ep.key, {})
  saved.ep, saved.packed = ep, ep.packed
end

-- straight into locals and one constructor: a table of the unpacked values, read back field by
-- field, cost as much again as the constructor (and Lua sizes the table once: filling it field by
-- field rehashes it ~6 times)
local function newEndpoint(state)
  local t, ts, _, _, kx, v, n, qc, bw, s, adm, qd, to, qf, dr, pu, pen, dw, byp, sw, er, ceil, lp, la, pk, fv, fr, fb, fq, kt, qx, qdl, mc, xc, bp, hu, aw, aa, mx = struct.unpack(EP_FMT, state.packed)
  -- a new bucket is full (settleBucket); an older layout's may lack its tokens
  if state.fresh then t, ts = nil, nil elseif state.legacy then t, ts = state.legacy.t, state.legacy.ts end
  return {
    key = state.key, t = t, ts = ts, r = 0, b = 0, kx = kx, hold = 0, dirty = false, pack = packEndpoint, packed = false,
    tenantCfgKey = false, writes = false, grew = false,
    state = state, fresh = state.fresh, ho = state.ho,
    v = v, n = n, qc = qc, bw = bw, s = s, adm = adm, qd = qd, to = to, qf = qf, dr = dr, pu = pu, pen = pen,
    dw = dw, byp = byp, sw = sw, er = er, ceil = ceil, lp = lp, la = la, pk = pk, fv = fv, fr = fr, fb = fb, fq = fq,
    kt = kt, qx = qx, qdl = qdl, mc = mc, xc = xc, bp = bp, hu = hu, aw = aw, aa = aa, mx = mx,
  }
end

-- `state`: readEndpoint's. `adaptive` (optional): the endpoint's AIMD spec, whose effective rate
-- replaces the configured one; 'any': whatever adaptive rate the endpoint has (inspect).
local function loadEndpoint(state, settings, adaptive)
  local ep = not (state.fresh or state.legacy) and reuseEndpoint(state) or newEndpoint(state)
  if adaptive == 'any' then adaptive = ep.er > 0 and parseAdaptive('0.5,1,0,0') or nil end
  resolveFileConfig(settings, ep)
  settings.configuredRate = settings.rate
  if adaptive ~= nil then
    if ep.er <= 0 then ep.er = settings.rate end
    ep.er = min(ep.er, settings.rate)
  end
  -- a penalty's pause (pu) holds the bucket: no refill and no admission before it
  ep.r, ep.b, ep.hold = adaptiveRate(ep, adaptive, settings.rate), settings.burst, ep.pu
  return settleBucket(ep)
end

-- How long an idle adaptive endpoint remembers the rate it learned (one hour).
local ADAPTIVE_MEMORY_MS = 3600000

-- Writes the endpoint's bucket and class state (and every other bucket touched) and gives the
-- queue (when given and not empty) the bucket's TTL: renewed when it would come too soon (qx), or
-- when this run created the queue (ep.grew: a new key has no expiry yet).
local function saveEndpoint(ep, qKey)
  -- a learned adaptive rate outlives idleness: forgetting it one refill after the last request
  -- would send the fleet back to the configured rate, and into the same 429s, after every lull
  local keep = ep.kt + ((ep.ceil or 0) > 0 and ADAPTIVE_MEMORY_MS or 0)
  if qKey ~= nil and ep.n > 0 then
    local needed = now + bucketTtl(ep) + keep
    local at = renewal(ep.grew and 0 or ep.qx, needed, keep / 2)
    if at then
      -- the bucket (the queue's counter) never expires before the queue: renewed with it
      ep.qx, ep.kx = at, 0
      rcall('PEXPIREAT', qKey, at)
    end
  end
  local args = {}
  local state = ep.state
  if ep.ho ~= state.ho then args[1] = 'ho'; args[2] = ep.ho end
  if state.cfWanted and not state.cf then args[#args + 1] = 'cf'; args[#args + 1] = '1' end
  if state.fresh and not state.tf and ep.tenantCfgKey and rcall('EXISTS', ep.tenantCfgKey) == 1 then
    args[#args + 1] = 'tf'; args[#args + 1] = '1'
  end
  classWrites(ep, args)
  -- more fields the caller wants written with the endpoint (mail flags)
  local writes = ep.writes
  if writes then for i = 1, #writes do args[#args + 1] = writes[i] end end
  ep.dirty = true
  flushBuckets(keep, ep.key, args)
  if state.cf and not state.cfWanted then rcall('HDEL', ep.key, 'cf') end
  -- an older layout's fields, now packed
  if state.legacy then rcall('HDEL', ep.key, 't', 'ts', 'r', 'b', 'kx', unpack(EP_FIELDS)) end
  keepEndpoint(ep)
end

-- A shadow limit previews a change: every admission is also charged to it, and what would have
-- waited under it is counted. It never holds anyone back.
local function chargeShadow(ep, settings, shadowKey, cost)
  if not settings.shadowRate then return end
  local sh = loadBucket(shadowKey, settings.shadowRate, settings.shadowBurst)
  if waitForAmount(sh, cost) > 0 then ep.sw = ep.sw + 1 end
  sh.t = max(sh.t - cost, -sh.b)
  sh.dirty = true
end
