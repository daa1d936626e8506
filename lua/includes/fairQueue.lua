--- @include "lib"
--- @include "clock"
-- Start-time fair queuing over classes (tenant, priority): a ticket's tag is
-- max(V, lastFinish[class]) and the class's finish moves on by cost / weight. Tickets leave in
-- tag order, so busy classes share the rate in proportion to their weights, and an idle class
-- neither blocks the others nor banks credit (its stale finish tag is overtaken by V).
--
-- A ticket is one sorted-set member that carries everything its promotion needs:
--   seq|owner|cost|deadline|tenant|priority|tenantRate|tenantBurst|aliveUntil[|count]
-- aliveUntil (Redis ms): until then its owner's lease certainly holds (it was renewed when the
-- ticket queued), so promote need not ask for it.
-- count (absent: 1): a bundle of alike requests of one call, without deadlines, queued at
-- consecutive tags of their class and promoted together once the first one's turn comes (see
-- acquire-9 and promote.lua): the queue, the parse and the mail cost once for them all. Counters
-- (the endpoint's n and qc, a class's n) count requests, not tickets.
-- A member is a pure function of its fields and back: a Function remembers each member's fields
-- (never changed by their readers), made when the ticket queues or first read, and forgets them
-- when the ticket leaves the queue; so the ticket at the head of a queue, looked at by run after
-- run, is parsed once. At most 256 members (about 1 KB of Lua memory each: a longer queue's head
-- is parsed again once per 256 tickets queued; see newCache).
local TICKETS = newCache(256)

-- (the numbers in their strings, their text given too: Lua turns a number into text with sprintf)
-- class: 'tenant|priority' (see loadClass)
local function newTicket(seq, owner, cost, costText, deadline, deadlineText, tenant, priority, class, tenantRate, tenantRateText, tenantBurst, tenantBurstText, alive, aliveText, count)
  local seqText = format('%012d', seq)
  local member = seqText .. '|' .. owner .. '|' .. costText .. '|' .. deadlineText .. '|' ..
    tenant .. '|' .. priority .. '|' .. tenantRateText .. '|' .. tenantBurstText .. '|' .. aliveText
  if count > 1 then member = member .. '|' .. msText(count) end
  remember(TICKETS, member, {
    seq = seqText, owner = owner, cost = cost, deadline = deadline, tenant = tenant, priority = priority,
    class = class, tenantRate = tenantRate, tenantBurst = tenantBurst, alive = alive, count = count,
  })
  return member
end

-- one match, not a split into a table; a member of an older layout, without aliveUntil, reads 0
local TICKET = '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|?([^|]*)|?([^|]*)'
local function parseTicket(member)
  local t = TICKETS.items[member]
  if t then return t end
  local seq, owner, cost, deadline, tenant, priority, tenantRate, tenantBurst, alive, count = match(member, TICKET)
  return remember(TICKETS, member, {
    seq = seq, owner = owner, cost = parsed(cost), deadline = deadline == '-1' and -1 or tonumber(deadline),
    tenant = tenant, priority = priority, class = tenant .. '|' .. priority,
    tenantRate = tenantRate ~= '' and parsed(tenantRate) or nil,
    tenantBurst = tenantBurst ~= '' and parsed(tenantBurst) or nil, alive = tonumber(alive) or 0,
    count = parsed(count) or 1,
  })
end

-- Class state lives in the endpoint's hash, one field per class: 'c|tenant|priority' packs its
-- finish tag f, queued count n, weight w and the busy period it belongs to (the endpoint's bp,
-- which moves on each time the queue empties: a class of an earlier period is empty, so an emptied
-- queue deletes nothing). Read with the endpoint (readEndpoint is given the requests' classes) or
-- once per class per run, written once at the end with the endpoint (classWrites): a run that
-- queues and promotes tickets of one class costs no command of its own.
local CLASS_FMT = '<dddd'
local classes = nil -- made with the first class this run loads
local classesGone = false -- the queue emptied in this run: what is not cached is empty

local function classField(id) return 'c|' .. id end

-- from a field's value (nil: absent) and the endpoint's busy period; field: its name, when made
local function newClass(id, packed, bp, field)
  local c = { id = id, field = field or false, f = 0, n = 0, w = 0, dirty = false }
  if packed then
    local f, n, w, period = struct.unpack(CLASS_FMT, packed)
    if period == bp then c.f, c.n, c.w = f, n, w end
  end
  classes = classes or {}
  classes[id] = c
  return c
end

-- the value of a field readEndpoint (endpoint.lua) was asked for (false: absent from the hash), nil when not asked;
-- the fields are few (the requests' classes and a flag): a look through them costs less than a
-- table of them
local function stateField(state, field)
  local fields = state.fields
  if not fields then return nil end
  for i = 1, #fields do
    if fields[i] == field then return state.values[i + 4] end
  end
  return nil
end

-- id: 'tenant|priority', made once per group of requests or per ticket (its field 'class')
local function loadClass(ep, id)
  local c = classes and classes[id]
  if c then return c end
  if classesGone then return newClass(id, nil, ep.bp) end
  local field = classField(id)
  local packed = stateField(ep.state, field)
  if packed == nil then packed = rcall('HGET', ep.key, field) or nil end
  return newClass(id, packed, ep.bp, field)
end

-- field/value pairs for the endpoint's HSET
local function classWrites(ep, args)
  if classes == nil then return end
  for id, c in pairs(classes) do
    if c.dirty then
      args[#args + 1] = c.field or classField(id)
      args[#args + 1] = struct.pack(CLASS_FMT, c.f, c.n, c.w, ep.bp)
    end
  end
end

-- The queue emptied: a new busy period. Class fields of past periods and mail flags (see
-- promote.lua) gather in the hash while the endpoint never idles (tenants come and go, processes
-- restart): swept when they are many. A process whose flag went with them still gets its mail: its
-- next claim checks its tickets, which reads the mailbox whatever the flag says.
local SWEEP_AT_FIELDS = 64
local function newBusyPeriod(ep)
  ep.bp = ep.bp + 1
  classes, classesGone = {}, true
  if rcall('HLEN', ep.key) <= SWEEP_AT_FIELDS then return end
  local raw = rcall('HGETALL', ep.key)
  local stale = {}
  for i = 1, #raw, 2 do
    local kind = sub(raw[i], 1, 2)
    if kind == 'c|' or kind == 'm|' then stale[#stale + 1] = raw[i] end
  end
  if #stale > 0 then rcall('HDEL', ep.key, unpack(stale)) end
end

-- Members known to be in the queue (read by promote) leave it in one ZREM, sent before the
-- queue is read again (flushRemovals) and at the end.
local removals = nil -- nil: none
local function flushRemovals(qKey)
  if removals then
    rcall('ZREM', qKey, unpack(removals))
    removals = nil
  end
end

-- forget a ticket that leaves the queue (promoted, expired, cancelled or dropped); `known`: the
-- member was just read from the queue, so its ZREM can wait for flushRemovals
local function removeTicket(ep, qKey, member, t, known)
  forget(TICKETS, member)
  if known then
    removals = removals or {}
    removals[#removals + 1] = member
  elseif rcall('ZREM', qKey, member) == 0 then
    return false
  end
  local count = t.count
  ep.n = ep.n - count
  ep.qc = ep.qc - t.cost * count
  local c = loadClass(ep, t.class)
  c.n = c.n - count
  c.dirty = true
  if c.n <= 0 then ep.bw = ep.bw - c.w end
  if ep.n <= 0 then
    -- an empty queue starts the next busy period afresh: no stale tags, no drift
    ep.n, ep.qc, ep.bw, ep.qdl, ep.mc, ep.xc, ep.ho = 0, 0, 0, 0, 0, 0, ''
    rcall('DEL', qKey)
    removals = nil
    newBusyPeriod(ep)
  end
  return true
end

-- The queue itself says whether tickets wait (ZCARD), not a counter that could have expired with
-- the bucket while tickets remained: asked when the bucket's hash was gone (the bucket and the
-- queue share one expiry, so otherwise the counter is the queue's; promote resets a counter whose
-- queue is gone). When tickets wait, the counters, the queued cost and the busy weight are rebuilt
-- from the queue and its tickets (rare: only after a key was lost): each busy class counts with its weight,
-- `weights` (priority -> weight: what this run knows; 1 otherwise), its old finish tag is lost.
local function syncQueue(ep, qKey, weights)
  if not ep.fresh then return end
  local n = rcall('ZCARD', qKey)
  if n == 0 and ep.n == 0 then return end
  ep.n, ep.qc, ep.bw = 0, 0, 0
  if n == 0 then return end
  ep.qdl, ep.mc = 1, 0 -- unknown deadlines and costs: promote looks
  newBusyPeriod(ep)
  for _, member in ipairs(rcall('ZRANGE', qKey, 0, -1)) do
    local t = parseTicket(member)
    ep.n = ep.n + t.count
    ep.qc = ep.qc + (t.cost or 0) * t.count
    local c = classes[t.class] or newClass(t.class, nil, ep.bp)
    c.n, c.dirty = c.n + t.count, true
    if c.w == 0 then c.w = weights[t.priority] or 1; ep.bw = ep.bw + c.w end
  end
  -- a lost bucket lost its clock too: restart it at the queue's first tag
  local first = rcall('ZRANGE', qKey, 0, 0, 'WITHSCORES')
  if ep.v == 0 and first[2] then ep.v = tonumber(first[2]) end
end
