--[[
  acquire-9: admit a batch of requests to one endpoint, promote queued tickets, deliver the
  caller's promotions. One call per endpoint per event-loop turn of a process.

  KEYS[1] cfg      runtime overrides of the endpoint (hash)
  KEYS[2] bucket   tokens, fair-queue clock, counters, the fleet's config file values, and per
                   class finish tag, queued count, weight (hash, see endpoint.lua and fairQueue.lua)
  KEYS[3] queue    tickets by start tag (sorted set)
  KEYS[4] mailbox  every process's tickets that left the queue: 'owner|seq' -> slot ms (a
                   bundle's: whole ms rounded up, comma-separated), 'x' expired, 'd' dropped
                   (lease lapsed), 'b<burst>' cost above a lowered burst, each with '@' and the
                   time it was posted (hash, see promote.lua)
  KEYS[5] leases   owners' leases in the slot: owner id -> lease expiry, Redis ms (sorted set,
                   see renewLease in promote.lua)
  KEYS[6] global   the namespace's bucket (hash; read only with a namespace rate, ARGV[9])
  KEYS[7] tenants  every tenant's budget bucket: tenant -> packed bucket (hash, see buckets.lua)
  KEYS[8] tcfg     operators' runtime tenant budgets: tenant -> 'rate,burst' (hash, read only)
  KEYS[9] shadow   the endpoint's shadow bucket (hash)
  These are every key the script touches (src/keys.ts, Keys.script); all share one {hash-tag}.

  ARGV[1]  endpoint                      ARGV[2]  owner id
  ARGV[3]  rate, tokens/ms               ARGV[4]  burst         ARGV[5] horizon ms
  ARGV[6]  max queue                     ARGV[7]  lease ms      ARGV[8] tickets out: '0' none, '1' some (renew the lease), '2' some, lease renewed within lease / 3
  ARGV[9]  namespace rate ('' = none)    ARGV[10] namespace burst
  ARGV[11] adaptive spec 'factor,quietMs,step,minRate' ('' = fixed rate)
  ARGV[12] the caller's config version: ARGV[3], [4], [6] are its config file's values; the
           newest version the fleet has sent wins (see resolveFileConfig), a change is audited
  ARGV[13] group count G, then 9 values per group of alike requests with consecutive ids:
           firstId count cost maxWaitMs(-1 = none) tenant priority weight tenantRate('' = none)
           tenantBurst (the tenant budget of the caller's config file: an operator's runtime one
           wins, also for tickets already queued). 64 uncontended callers are one group: Redis
           makes a Lua string of every argument and the client writes each one, so alike requests
           cost both sides 9 arguments in all instead of 8 each
  then     check count M, then M ticket members the caller holds: those neither queued nor in
           its mailbox come back as lost (the caller queues them again)

  The fast path (nobody queued: ZCARD of the queue, never a counter) reserves the exact slot.
  No slot is ever earlier than the endpoint's penalty pause (the bucket's hold) or an operator's
  pause. The bucket and queue keys get one TTL.

  Returns one flat array (Redis turns each table of a reply into RESP after seven lookups of its
  own, err, ok, double..., ~4k instructions a table; splitAcquireReply in src/redis/acquire-reply.ts
  reads it): header (10 values), audit, R, results (R values), M, mailbox (M values), lost (the rest)
    header  = now, tokens, vtime, busyWeight, rate ('' = ARGV[3]), burst ('' = ARGV[4]), queued, queuedCost,
              adaptive change ('up' or ''), paused until (Redis ms: the later of the penalty's and the
              operator's pause; 'inf'; 0 = none)
    results = id, status, a, b, c per request (per run of a bundle's requests: status 2):
       0 reserved     a = slot (Redis ms)
       1 queued       a = ticket member, b = estimated wait ms, c = start tag (the caller recomputes its ETA from later headers)
       2 joined       a = count: this id and the next a - 1 joined the ticket of the entry before (a
                      bundle, see fairQueue.lua; its mail lists their slots in id order, its own first)
    Times, tokens and tags in the header and in statuses 0 and 1 are integers in millionths
    (fixed() in clock.lua), or 'inf'.
      -1 timeout      a = estimated wait ms (refused up front, nothing changed)
      -2 queue full   a = max queue
      -3 cost above burst   a = the burst it cannot fit
    mailbox = seq, value for each of the caller's tickets that left the queue (see KEYS[4]; those this
              run promoted come straight here, without the mailbox, a slot as an integer in millionths,
              a bundle's slots as an array of them)
    lost    = the checked members that are gone without a word
    audit   = '' or the JSON audit entry of a config version this call replaced (the caller
              appends it to the namespace's audit log)
]]
--- @include "clock"
--- @include "buckets"
--- @include "endpoint"
--- @include "fairQueue"
--- @include "promote"

local endpoint, owner = ARGV[1], ARGV[2]
local gKey, tKey, tcfgKey = KEYS[6], KEYS[7], KEYS[8]
-- the same from call to call: parsed() remembers them
local rate, burst, horizon, maxQueue, lease = parsed(ARGV[3]), parsed(ARGV[4]), parsed(ARGV[5]), parsed(ARGV[6]), parsed(ARGV[7])
local hasTickets, leaseFresh = ARGV[8] ~= '0', ARGV[8] == '2'
local globalRate, globalBurst = parsed(ARGV[9]), parsed(ARGV[10])
local groups = parsed(ARGV[13])
local GROUP = 9
-- the requests' classes are read with the endpoint, in its one HMGET. Sized for one class and
-- the flag below: a table that grows is reallocated at 1, 2, 4... entries, ~500 instructions each
local wanted = { nil, nil }
local seen = groups > 1 and {} or nil
for k = 0, groups - 1 do
  local o = 14 + k * GROUP
  local field = classField(ARGV[o + 4] .. '|' .. ARGV[o + 5])
  if not (seen and seen[field]) then
    wanted[#wanted + 1] = field
    if seen then seen[field] = true end
  end
end
-- and the flag that says whether the caller's mailbox holds anything
local ownFlag = 'm|' .. owner
wanted[#wanted + 1] = ownFlag
local state = readEndpoint(KEYS[2], wanted)
local settings = loadSettings(KEYS[1], rate, burst, maxQueue, ARGV[12], state)
settings.stamping = true
local adaptive = parseAdaptive(ARGV[11])
local ep = loadEndpoint(state, settings, adaptive)
ep.tenantCfgKey = tcfgKey
local adaptiveChange = adaptiveRaise(ep, adaptive, settings.configuredRate)
if adaptiveChange ~= '' then ep.r = ep.er end
local qKey = KEYS[3]
if ep.fresh then
  -- the queue may have outlived its counters: syncQueue rebuilds the busy weight from the
  -- requests' weights and the operators'
  local weights = {}
  for k = 0, groups - 1 do weights[ARGV[14 + k * GROUP + 5]] = parsed(ARGV[14 + k * GROUP + 6]) end
  for p, w in pairs(settings.weights) do weights[p] = w end
  syncQueue(ep, qKey, weights)
end
local keyTtl = horizon + lease + 1000
-- this call renews the caller's lease if it is older than a third of it (see ARGV[8])
-- (rounded down to a tenth of a second: still certain, and its text is shared by the runs of that
-- tenth, see msText)
local aliveUntil = floor((now + lease * 2 / 3) / 100) * 100
ep.kt = keyTtl

local auditEntry = ''
if settings.stamped then
  -- a newer config file reached the fleet: one entry in the operators' audit log
  local was, s = settings.stamped, settings
  local entry = cjson.encode({
    at = floor(now), actor = 'config file', endpoint = endpoint,
    change = 'config version ' .. format('%d', settings.version) .. ' replaces ' .. format('%d', was.version),
    before = { rate = tostring(was.rate), burst = tostring(was.burst), maxQueue = tostring(was.maxQueue) },
    after = { rate = tostring(s.fileRate), burst = tostring(s.fileBurst), maxQueue = tostring(s.fileMaxQueue) },
  })
  -- the caller writes it: the audit log is the namespace's, and may live in another Cluster slot
  auditEntry = entry
end

local shadowKey = KEYS[9]
local queue = promotion(ep, qKey, owner, horizon, settings, shadowKey, KEYS[5], globalRate, globalBurst, gKey, tKey, tcfgKey)
if ep.n > 0 and not nothingToPromote(queue, true) then promote(queue) end

-- the reply: the header's 12 values are set at the end; sized for them, one request, the mail
-- count and one mail (a table that grows is reallocated at 1, 2, 4, 8, 16 entries)
local HEAD = 12
local reply, replyEnd = { nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil }, HEAD
local function push(id, status, a, b, c)
  local i = replyEnd
  reply[i + 1], reply[i + 2], reply[i + 3], reply[i + 4], reply[i + 5] = id, status, a, b or '', c or ''
  replyEnd = i + 5
end
local enqueued = false
local adds -- score, member pairs of the tickets this call queues: made with its first
for k = 0, groups - 1 do
  local o = 14 + k * GROUP
  -- ids never repeat: not worth remembering
  local firstId, count = tonumber(ARGV[o]), parsed(ARGV[o + 1])
  local cost, maxWait = parsed(ARGV[o + 2]), parsed(ARGV[o + 3])
  local tenant, priority = ARGV[o + 4], ARGV[o + 5]
  local classId = tenant .. '|' .. priority
  local weight = settings.weights[priority] or parsed(ARGV[o + 6])
  local fileRate, fileBurst = parsed(ARGV[o + 7]), parsed(ARGV[o + 8])
  -- alike requests: the same buckets, whose bursts no request of this call changes
  local tenantRate, tenantBurst = tenantBudget(tcfgKey, tenant, fileRate, fileBurst)
  local list = chargedBuckets(ep, globalRate, globalBurst, gKey, tKey, tenant, tenantRate, tenantBurst)
  local tooBig = costAboveBurst(list, cost)
  local bypassed, pauseWait = settings.bypass[tenant], settings.pauseWait
  -- the group's requests that queue go as bundles (one ticket with a count, see fairQueue.lua) when
  -- they have no deadline: at most what the slowest bucket charged (the endpoint, the namespace
  -- cap, the tenant's budget) pays in one horizon, so a bundle, promoted whole once its first
  -- request's turn comes, reserves no further than a horizon past it
  local bundleCap = 1
  if maxWait < 0 then
    local r = ep.r
    for i = 2, #list do if list[i].r < r then r = list[i].r end end
    bundleCap = max(1, floor(horizon * r / cost))
  end
  local id, lastId = firstId, firstId + count - 1
  while id <= lastId do
    local w = waitAll(list, cost, pauseWait)
    if tooBig ~= nil then
      push(id, -3, tostring(tooBig))
    elseif bypassed then
      -- allowlisted by an operator: goes at once, charged to nobody
      ep.byp = ep.byp + 1
      push(id, 0, fixed(now))
    elseif settings.dryRun then
      -- shadow mode: everyone goes at once; what would have waited is counted, the bucket still
      -- tracks reality as far as the horizon so the count stays meaningful
      if w > 0 then ep.dw = ep.dw + 1 end
      if w <= horizon then debitAll(list, cost) end
      chargeShadow(ep, settings, shadowKey, cost)
      ep.adm = ep.adm + 1
      push(id, 0, fixed(now))
    elseif ep.n == 0 and w <= horizon and (maxWait < 0 or w <= maxWait) then
      -- fast path: nobody queued and the tokens come within the horizon: reserve the exact slot
      debitAll(list, cost)
      chargeShadow(ep, settings, shadowKey, cost)
      ep.adm = ep.adm + 1
      push(id, 0, fixed(now + w))
    elseif ep.n == 0 and maxWait >= 0 and w > maxWait then
      ep.to = ep.to + 1
      push(id, -1, num(w))
    else
      local cls = loadClass(ep, classId)
      local last, queuedInClass = cls.f, cls.n
      local tag = max(ep.v, last)
      local busyWeight = ep.bw
      if queuedInClass <= 0 then busyWeight = busyWeight + weight end
      -- work ahead of this tag: every busy class is served (tag - V) * its weight, but never more than is queued
      local ahead = min((tag - ep.v) * busyWeight, ep.qc)
      local eta = max(waitForAmount(ep, ahead + cost), w)
      if maxWait >= 0 and eta > maxWait then
        ep.to = ep.to + 1
        push(id, -1, num(eta))
      elseif ep.n >= settings.maxQueue then
        ep.qf = ep.qf + 1
        push(id, -2, tostring(settings.maxQueue))
      else
        local deadline, deadlineText = -1, '-1'
        if maxWait >= 0 then
          deadline = floor(now + maxWait)
          deadlineText = format('%d', deadline)
        end
        -- this request and the next n - 1 of the group: one ticket, at consecutive tags of the class
        local n = min(bundleCap, lastId - id + 1, settings.maxQueue - ep.n)
        ep.s = ep.s + 1
        -- the caller's strings: the same numbers, without a sprintf each
        local member = newTicket(ep.s, owner, cost, ARGV[o + 2], deadline, deadlineText, tenant, priority, classId, fileRate, ARGV[o + 7], fileBurst, ARGV[o + 8], aliveUntil, msText(aliveUntil), n)
        if ep.n == 0 then ep.grew, ep.ho, ep.hu = true, owner, aliveUntil end
        if deadline >= 0 then ep.qdl = 1 end
        if ep.mc <= 0 or cost < ep.mc then ep.mc = cost end
        if cost > ep.xc then ep.xc = cost end
        -- one ZADD for the call's tickets (a lingering batch queues several): below
        adds = adds or {}
        adds[#adds + 1] = tag; adds[#adds + 1] = member
        cls.f, cls.w, cls.n, cls.dirty = tag + n * cost / weight, weight, queuedInClass + n, true
        ep.bw = busyWeight
        ep.n = ep.n + n
        ep.qc = ep.qc + n * cost
        ep.qd = ep.qd + n
        enqueued = true
        push(id, 1, member, fixed(eta), fixed(tag))
        -- the others of the bundle: one entry for them all
        if n > 1 then push(id + 1, 2, n - 1) end
        id = id + n - 1
      end
    end
    id = id + 1
  end
end
if adds then rcall('ZADD', qKey, unpack(adds)) end
if enqueued and not nothingToPromote(queue, false) then promote(queue) end
flushRemovals(qKey)
ep.writes = sendMail(ep, KEYS[4], keyTtl) or false

local mailbox = selfMail
-- tickets to check (below) read the mailbox whatever its flag says
local checksAt = 14 + groups * GROUP
local m = parsed(ARGV[checksAt]) or 0
if hasTickets or enqueued then
  if not leaseFresh then renewLease(KEYS[5], owner, lease) end
  local hasMail = stateField(state, ownFlag) == '1'
  if hasMail or m > 0 then
    takeMail(KEYS[4], owner, keyTtl, mailbox)
    if hasMail then
      local writes = ep.writes or {}
      writes[#writes + 1] = ownFlag; writes[#writes + 1] = '0'
      ep.writes = writes
    end
  end
end

saveEndpoint(ep, qKey)

local pausedUntil = max(ep.pu, now + settings.pauseWait)
reply[1], reply[2], reply[3], reply[4] = fixed(now), fixed(ep.t), fixed(ep.v), fixed(ep.bw)
reply[5], reply[6] = ep.r == rate and '' or tostring(ep.r), ep.b == burst and '' or tostring(ep.b)
reply[7], reply[8], reply[9] = ep.n, fixed(ep.qc), adaptiveChange
reply[10], reply[11], reply[12] = fixed(pausedUntil > now and pausedUntil or 0), auditEntry, replyEnd - HEAD
reply[replyEnd + 1] = #mailbox
for i = 1, #mailbox do reply[replyEnd + 1 + i] = mailbox[i] end
replyEnd = replyEnd + 1 + #mailbox

-- the caller's tickets that vanished without a word (their mail expired before the caller came back)
if m > 0 then
  local inMail = {}
  for i = 1, #mailbox, 2 do inMail[mailbox[i]] = true end
  local members = {}
  for i = 1, m do members[i] = ARGV[checksAt + i] end
  local scores = rcall('ZMSCORE', qKey, unpack(members))
  for i = 1, m do
    if not inMail[match(members[i], '^[^|]*')] and not scores[i] then
      replyEnd = replyEnd + 1
      reply[replyEnd] = members[i]
    end
  end
end
return reply
