-- Promote queued tickets, in tag order, into reservations that fit the horizon, and post each
-- to its owner's mailbox; the owner learns of it on its next call (most owners call anyway, so
-- a promotion rarely costs a call of its own). Dead owners' tickets are dropped, tickets past
-- their deadline expire. A ticket held back only by its own tenant's budget is stepped over, so
-- one tenant at its budget does not block the others.
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

local function promote(q)
  local ep = q.ep
  local skipped, scanned = 0, 0
  while ep.n > 0 and scanned < MAX_SCAN do
    local window = redis.call('ZRANGE', q.qKey, skipped, skipped + WINDOW - 1, 'WITHSCORES')
    if #window == 0 then return end
    for i = 1, #window, 2 do
      scanned = scanned + 1
      local member, tag = window[i], tonumber(window[i + 1])
      local t = parseTicket(member)
      local list = chargedBuckets(ep, q.globalRate, q.globalBurst, q.prefix, t.tenant, t.tenantRate, t.tenantBurst)
      local w = math.max(waitAll(list, t.cost), q.settings.pauseWait)
      if not ownerAlive(q, t.owner) then
        removeTicket(ep, q.qKey, q.cKey, member, t)
        ep.dr = ep.dr + 1
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
        skipped = skipped + 1
      end
    end
  end
end
