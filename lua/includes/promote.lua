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
local WINDOW = 16
local MAX_SCAN = 256

-- posts to a mailbox; each mailbox touched gets its expiry once, at the end (expireMailboxes)
local mailed = {}
local function mail(q, towner, seq, value)
  local key = q.mailboxPrefix .. towner
  redis.call('HSET', key, seq, value)
  mailed[key] = q.mailTtl
end
local function expireMailboxes()
  for key, ttl in pairs(mailed) do redis.call('PEXPIRE', key, ttl) end
end

-- whether a ticket's owner still holds its lease; asked once per owner per script run
local alive = {}
local function ownerAlive(q, towner)
  if towner == q.owner then return true end
  local a = alive[towner]
  if a == nil then
    a = redis.call('EXISTS', q.prefix .. 'o:' .. towner) == 1
    alive[towner] = a
  end
  return a
end

-- moves a ticket held by its tenant's budget back to where the budget lets it run; keeps its
-- class's finish tag behind it so the class stays in arrival order
local function retag(q, member, t, tag, budget, heldCost)
  local ep = q.ep
  local newTag = ep.v + waitForAmount(budget, heldCost) * ep.r / math.max(ep.bw, 1e-9)
  if not (newTag > tag) or newTag == INF then return false end
  redis.call('ZADD', q.qKey, 'XX', newTag, member)
  local f, wf = classField('f', t.tenant, t.priority), classField('w', t.tenant, t.priority)
  local cls = redis.call('HMGET', q.cKey, f, wf)
  local finish = newTag + t.cost / (tonumber(cls[2]) or 1)
  if finish > (tonumber(cls[1]) or 0) then redis.call('HSET', q.cKey, f, tostring(finish)) end
  return true
end

local function promote(q)
  local ep = q.ep
  local skipped, scanned = 0, 0
  local held, moved = {}, {}
  while ep.n > 0 and scanned < MAX_SCAN do
    local window = redis.call('ZRANGE', q.qKey, skipped, skipped + WINDOW - 1, 'WITHSCORES')
    if #window == 0 then return end
    for i = 1, #window, 2 do
      scanned = scanned + 1
      local member, tag = window[i], tonumber(window[i + 1])
      local t = parseTicket(member)
      local tenantRate, tenantBurst = tenantBudget(q.prefix, t.tenant, t.tenantRate, t.tenantBurst)
      local list = chargedBuckets(ep, q.globalRate, q.globalBurst, q.prefix, t.tenant, tenantRate, tenantBurst)
      local w = math.max(waitAll(list, t.cost), q.settings.pauseWait)
      local tooBig = costAboveBurst(list, t.cost)
      if moved[member] then
        skipped = skipped + 1
      elseif not ownerAlive(q, t.owner) then
        removeTicket(ep, q.qKey, q.cKey, member, t)
        ep.dr = ep.dr + 1
        mail(q, t.owner, t.seq, 'd')
      elseif tooBig ~= nil then
        removeTicket(ep, q.qKey, q.cKey, member, t)
        ep.to = ep.to + 1
        mail(q, t.owner, t.seq, 'b' .. tostring(tooBig))
      elseif t.deadline >= 0 and now + w > t.deadline then
        removeTicket(ep, q.qKey, q.cKey, member, t)
        ep.to = ep.to + 1
        mail(q, t.owner, t.seq, 'x')
      elseif w <= q.horizon then
        debitAll(list, t.cost)
        chargeShadow(ep, q.settings, q.shadowKey, t.cost)
        removeTicket(ep, q.qKey, q.cKey, member, t)
        if tag > ep.v then ep.v = tag end
        ep.adm = ep.adm + 1
        mail(q, t.owner, t.seq, num(now + w))
      elseif q.settings.pauseWait > q.horizon or waitForAmount(ep, t.cost) > q.horizon or (#list > 1 and list[2].key == q.prefix .. 'g' and waitForAmount(list[2], t.cost) > q.horizon) then
        -- the endpoint (or the namespace cap) is what holds it back: everyone behind waits too
        return
      else
        held[t.tenant] = (held[t.tenant] or 0) + t.cost
        if retag(q, member, t, tag, list[#list], held[t.tenant]) then moved[member] = true else skipped = skipped + 1 end
      end
    end
  end
end
