--- @include "lib"
-- Promote queued tickets, in tag order, into reservations that fit the horizon, and post each
-- to its owner's mailbox; the owner learns of it on its next call (most owners call anyway, so
-- a promotion rarely costs a call of its own). Every ticket that leaves the queue is posted:
--   slot ms   promoted            'x'   its deadline passed
--   'd'       dropped: its owner's lease lapsed (the owner, if it was only stalled, queues again)
--   'b<burst>' its cost is above a burst lowered since it queued: it could never be served
-- A ticket's tenant budget is read at promotion (an operator's runtime budget applies to tickets
-- already queued). A ticket held back only by its own tenant's budget is moved back to the tag at
-- which that budget lets it run (the fair-queue clock V advances rate / busy weight per ms), so a
-- tenant at its budget never sits in front of other tenants' tickets, however many it queued.
-- The first window holds as many tickets as the endpoint's tokens within the horizon can pay at
-- the smallest cost queued, and the one after them, which stops the scan: every member read costs
-- Redis a printed score and Lua two strings, so a run reads what it can promote and one more.
-- Later windows (after drops and expiries, which take no tokens) are larger.
local WINDOW = 16
-- a window's last index as text (a number argument costs Redis a sprintf)
local LAST_INDEX = { '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15' }
local MAX_SCAN = 256

-- Posts go to the endpoint's mailbox hash (one for every process: field 'owner|seq', value what
-- happened '@' when it was posted), all in one HSET at the end of the run (sendMail). The post
-- raises the owner's flag 'm|<owner>' in the endpoint's hash ('1': mail waits, '0': read), so an
-- owner reads the mailbox only when there is something for it. The field '_' keeps the hash from
-- vanishing when its last mail is read, so the expiry kept in the endpoint's state (mx) holds.
local posts, flags, flagged = nil, nil, nil -- made with the first post: most runs post nothing
-- the calling owner's own tickets need no mailbox: they go back in this run's reply, a slot as an
-- integer in millionths (fixed(): no sprintf)
local selfMail = { nil, nil } -- sized for one
-- value: what happened, or nil for a promotion to `slot` (a bundle's: a list of slots, in its
-- requests' order; to another owner as whole ms rounded up, one sprintf each instead of num()'s)
local function mail(q, towner, seq, value, slot)
  local self, bundle = towner == q.owner, type(slot) == 'table'
  if value == nil and bundle then
    for j = 1, #slot do slot[j] = self and fixed(slot[j]) or ceil(slot[j]) end
    value = self and slot or table.concat(slot, ',')
  end
  if self then
    selfMail[#selfMail + 1] = seq; selfMail[#selfMail + 1] = value or fixed(slot)
    return
  end
  value = value or num(slot)
  if posts == nil then posts, flags, flagged = {}, {}, {} end
  posts[#posts + 1] = towner .. '|' .. seq
  -- when it was posted, to the second (see takeMail)
  posts[#posts + 1] = value .. '@' .. msText(floor(now / 1000) * 1000)
  if not flagged[towner] then
    flagged[towner] = true
    flags[#flags + 1] = 'm|' .. towner; flags[#flags + 1] = '1'
  end
end
-- returns the flags to write with the endpoint (nil: none)
local function sendMail(ep, mKey, ttl)
  if posts then
    rcall('HSET', mKey, '_', '1', unpack(posts))
    local at = renewal(ep.mx, now + ttl, ttl / 2)
    if at then
      ep.mx = at
      rcall('PEXPIREAT', mKey, at)
    end
  end
  return flags
end

-- An owner's mail: seq, value pairs, taken out of the mailbox. Mail older than `ttl` is what a
-- per-process mailbox would have let expire (its owner is gone, or finds its tickets lost and
-- queues them again): swept when the mailbox holds more than 64 fields.
local function takeMail(mKey, owner, ttl, out)
  local raw = rcall('HGETALL', mKey)
  local prefix = owner .. '|'
  local n = #prefix
  local taken = {}
  local old = #raw > 128 and now - ttl or nil
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    -- a search, not a substring: no string made for every other owner's field
    if find(f, prefix, 1, true) == 1 then
      taken[#taken + 1] = f
      out[#out + 1] = sub(f, n + 1)
      out[#out + 1] = match(v, '^[^@]*')
    elseif old and f ~= '_' and (tonumber(match(v, '@(%d+)$')) or 0) < old then
      taken[#taken + 1] = f
    end
  end
  if #taken > 0 then rcall('HDEL', mKey, unpack(taken)) end
end

-- Owners' leases: one sorted set per slot, owner -> lease expiry (Redis ms). It expires with its
-- longest lease; lapsed leases are trimmed when an owner joins (ZADD adds a member), so a steady
-- fleet's set holds its live owners and those gone since the last one came, and a renewal (every
-- lease / 3 per owner, or whenever an owner with nothing queued queues) costs one command less.
local function renewLease(key, owner, lease)
  if rcall('ZADD', key, now + lease, owner) == 1 then rcall('ZREMRANGEBYSCORE', key, '-inf', now) end
  if rcall('PTTL', key) < lease then rcall('PEXPIRE', key, ceil(lease)) end
end

-- whether a ticket's owner still holds its lease; asked once per owner per script run
local alive = nil
local function ownerAlive(q, towner, aliveUntil)
  if towner == q.owner or now < aliveUntil then return true end
  local a = alive and alive[towner]
  if a == nil then
    a = (tonumber(rcall('ZSCORE', q.leasesKey, towner)) or 0) > now
    alive = alive or {}
    alive[towner] = a
  end
  return a
end

-- moves a ticket held by its tenant's budget back to where the budget lets it run; keeps its
-- class's finish tag behind it so the class stays in arrival order
local function retag(q, member, t, tag, budget, heldCost)
  local ep = q.ep
  local newTag = ep.v + waitForAmount(budget, heldCost) * ep.r / max(ep.bw, 1e-9)
  if not (newTag > tag) or newTag == INF then return false end
  rcall('ZADD', q.qKey, 'XX', newTag, member)
  local c = loadClass(ep, t.class)
  local finish = newTag + t.cost * t.count / (c.w > 0 and c.w or 1)
  if finish > c.f then c.f = finish; c.dirty = true end
  return true
end

-- Nothing in the queue can go before the horizon: the endpoint itself has no token that soon for
-- the smallest cost queued (other buckets only add to a wait; a cost above a lowered burst is
-- looked at, so its owner is told). Then a run need not read the queue, unless a queued ticket
-- may carry a deadline that promote should find passed (`deadlines`), or the owner of the ticket
-- promote last stopped at has lost its lease.
local function nothingToPromote(q, deadlines)
  local ep = q.ep
  if (deadlines and ep.qdl > 0) or ep.mc <= 0 or ep.xc > ep.b then return false end
  if max(waitForAmount(ep, ep.mc), q.settings.pauseWait) <= q.horizon then return false end
  -- a first ticket whose owner is gone is dropped at once, tokens or not
  return ep.ho ~= '' and ownerAlive(q, ep.ho, ep.hu)
end

-- What promote and its helpers work with in one run of acquire: a table a Function keeps and each
-- run fills anew (see SETTINGS in endpoint.lua)
local PROMOTION = {}
local function promotion(ep, qKey, owner, horizon, settings, shadowKey, leasesKey, globalRate, globalBurst, globalKey, tenantsKey, tenantCfgKey)
  local q = PROMOTION
  q.ep, q.qKey, q.owner, q.horizon, q.settings, q.shadowKey, q.leasesKey = ep, qKey, owner, horizon, settings, shadowKey, leasesKey
  -- the namespace's rate and burst are false when it has none
  q.globalRate, q.globalBurst, q.globalKey, q.tenantsKey, q.tenantCfgKey = globalRate or false, globalBurst or false, globalKey, tenantsKey, tenantCfgKey
  return q
end

local function promote(q)
  local ep = q.ep
  local skipped, scanned = 0, 0
  local held, moved -- by tenant, by member: made when a tenant's budget holds a ticket back
  local size = WINDOW
  if ep.mc > 0 then
    local hold, lag = ep.hold, 0
    if hold ~= nil and hold > now then lag = hold - now end
    local payable = floor((ep.t + (q.horizon - lag) * ep.r) / ep.mc)
    if payable < 0 then payable = 0 end
    if payable < WINDOW then size = payable + 1 end
  end
  while ep.n > 0 and scanned < MAX_SCAN do
    flushRemovals(q.qKey)
    local window
    if skipped == 0 then
      window = rcall('ZRANGE', q.qKey, '0', LAST_INDEX[size], 'WITHSCORES')
    else
      window = rcall('ZRANGE', q.qKey, skipped, skipped + size - 1, 'WITHSCORES')
    end
    size = WINDOW
    if #window == 0 then
      if skipped == 0 then
        -- the counter says tickets wait but the queue is gone (a lost key): start afresh
        ep.n, ep.qc, ep.bw, ep.qdl, ep.mc, ep.xc, ep.ho = 0, 0, 0, 0, 0, 0, ''
        newBusyPeriod(ep)
      end
      return
    end
    for i = 1, #window, 2 do
      scanned = scanned + 1
      local member = window[i]
      local t = parseTicket(member)
      local tenantRate, tenantBurst = tenantBudget(q.tenantCfgKey, t.tenant, t.tenantRate, t.tenantBurst)
      local list = chargedBuckets(ep, q.globalRate, q.globalBurst, q.globalKey, q.tenantsKey, t.tenant, tenantRate, tenantBurst)
      local w = waitAll(list, t.cost, q.settings.pauseWait)
      local tooBig = costAboveBurst(list, t.cost)
      if moved and moved[member] then
        skipped = skipped + 1
      elseif not ownerAlive(q, t.owner, t.alive) then
        removeTicket(ep, q.qKey, member, t, true)
        ep.dr = ep.dr + 1
        mail(q, t.owner, t.seq, 'd')
      elseif tooBig ~= nil then
        removeTicket(ep, q.qKey, member, t, true)
        ep.to = ep.to + 1
        mail(q, t.owner, t.seq, 'b' .. tostring(tooBig))
      elseif t.deadline >= 0 and now + w > t.deadline then
        removeTicket(ep, q.qKey, member, t, true)
        ep.to = ep.to + 1
        mail(q, t.owner, t.seq, 'x')
      elseif w <= q.horizon then
        local tag, count, slot = tonumber(window[i + 1]), t.count, now + w
        if count > 1 then
          if waitAll(list, t.cost * count, 0) == INF then
            -- a rate lowered to zero since the bundle queued: its last request has no slot
            ep.ho, ep.hu = t.owner, t.alive
            return
          end
          -- a bundle goes whole: its requests' slots one after another; V moves to its last tag
          local c = loadClass(ep, t.class)
          tag = tag + (count - 1) * t.cost / (c.w > 0 and c.w or 1)
          slot = { slot }
          local cost, pauseWait = t.cost, q.settings.pauseWait
          if list[2] == nil then
            -- the endpoint's bucket alone: waitForAmount's arithmetic, one debit (a call per
            -- request cost 4-5% of an admission at saturation, bash bench/script-instructions.sh saturation)
            local hold, tokens, r = ep.hold, ep.t, ep.r
            local lag = (hold ~= nil and hold > now) and hold - now or 0
            for j = 2, count do
              tokens = tokens - cost
              local x = tokens >= cost and lag or lag + (cost - tokens) / r
              slot[j] = now + (x > pauseWait and x or pauseWait)
            end
            ep.t, ep.dirty = tokens, true
          else
            for j = 2, count do
              debitAll(list, cost)
              slot[j] = now + waitAll(list, cost, pauseWait)
            end
          end
        end
        debitAll(list, t.cost)
        if q.settings.shadowRate then
          for _ = 1, count do chargeShadow(ep, q.settings, q.shadowKey, t.cost) end
        end
        removeTicket(ep, q.qKey, member, t, true)
        if tag > ep.v then ep.v = tag end
        ep.adm = ep.adm + count
        mail(q, t.owner, t.seq, nil, slot)
      elseif q.settings.pauseWait > q.horizon or waitForAmount(ep, t.cost) > q.horizon or (#list > 1 and list[2].key == q.globalKey and waitForAmount(list[2], t.cost) > q.horizon) then
        -- the endpoint (or the namespace cap) is what holds it back: everyone behind waits too
        ep.ho, ep.hu = t.owner, t.alive
        return
      else
        held, moved = held or {}, moved or {}
        held[t.tenant] = (held[t.tenant] or 0) + t.cost * t.count
        if retag(q, member, t, tonumber(window[i + 1]), list[#list], held[t.tenant]) then moved[member] = true else skipped = skipped + 1 end
      end
    end
  end
end
