-- Start-time fair queuing over classes (tenant, priority): a ticket's tag is
-- max(V, lastFinish[class]) and the class's finish moves on by cost / weight. Tickets leave in
-- tag order, so busy classes share the rate in proportion to their weights, and an idle class
-- neither blocks the others nor banks credit (its stale finish tag is overtaken by V).
--
-- A ticket is one sorted-set member that carries everything its promotion needs:
--   seq|owner|cost|deadline|tenant|priority|tenantRate|tenantBurst
local function ticketMember(seq, owner, cost, deadline, tenant, priority, tenantRate, tenantBurst)
  return string.format('%012d', seq) .. '|' .. owner .. '|' .. cost .. '|' .. deadline .. '|' ..
    tenant .. '|' .. priority .. '|' .. (tenantRate or '') .. '|' .. (tenantBurst or '')
end

local function parseTicket(member)
  local f = {}
  for part in string.gmatch(member .. '|', '([^|]*)|') do f[#f + 1] = part end
  return {
    seq = f[1], owner = f[2], cost = tonumber(f[3]), deadline = tonumber(f[4]),
    tenant = f[5], priority = f[6], tenantRate = tonumber(f[7]), tenantBurst = tonumber(f[8]),
  }
end

local function classField(kind, tenant, priority)
  return kind .. '|' .. tenant .. '|' .. priority
end

-- Class state (finish tag f, queued count n, weight w) is read once per class per script run
-- and written once at the end (flushClasses): a run that queues and promotes tickets of one class
-- costs one HMGET and one HSET, not a read and a write per ticket.
local classes = {}
local classesGone = false -- the class hash was deleted in this run: what is not cached is empty
local function loadClass(cKey, tenant, priority)
  local id = tenant .. '|' .. priority
  local c = classes[id]
  if c then return c end
  c = { id = id, f = 0, n = 0, w = 0, dirty = false }
  if not classesGone then
    local v = redis.call('HMGET', cKey, 'f|' .. id, 'n|' .. id, 'w|' .. id)
    c.f, c.n, c.w = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  end
  classes[id] = c
  return c
end

local function flushClasses(cKey)
  local set, del = {}, {}
  for id, c in pairs(classes) do
    if c.dirty then
      set[#set + 1] = 'f|' .. id; set[#set + 1] = tostring(c.f)
      if c.n > 0 then
        set[#set + 1] = 'n|' .. id; set[#set + 1] = tostring(c.n)
        set[#set + 1] = 'w|' .. id; set[#set + 1] = tostring(c.w)
      else
        del[#del + 1] = 'n|' .. id; del[#del + 1] = 'w|' .. id
      end
    end
  end
  if #del > 0 and not classesGone then redis.call('HDEL', cKey, unpack(del)) end
  if #set > 0 then redis.call('HSET', cKey, unpack(set)) end
end

-- Members known to be in the queue (read by promote) leave it in one ZREM, sent before the
-- queue is read again (flushRemovals) and at the end.
local removals = {}
local function flushRemovals(qKey)
  if #removals > 0 then
    redis.call('ZREM', qKey, unpack(removals))
    removals = {}
  end
end

-- forget a ticket that leaves the queue (promoted, expired, cancelled or dropped); `known`: the
-- member was just read from the queue, so its ZREM can wait for flushRemovals
local function removeTicket(ep, qKey, cKey, member, t, known)
  if known then
    removals[#removals + 1] = member
  elseif redis.call('ZREM', qKey, member) == 0 then
    return false
  end
  ep.n = ep.n - 1
  ep.qc = ep.qc - t.cost
  local c = loadClass(cKey, t.tenant, t.priority)
  c.n = c.n - 1
  c.dirty = true
  if c.n <= 0 then ep.bw = ep.bw - c.w end
  if ep.n <= 0 then
    -- an empty queue starts the next busy period afresh: no stale tags, no drift
    ep.n, ep.qc, ep.bw, ep.qdl, ep.mc, ep.xc, ep.ho = 0, 0, 0, 0, 0, 0, ''
    redis.call('DEL', cKey, qKey)
    removals, classes, classesGone = {}, {}, true
  end
  return true
end

-- The queue itself says how many tickets wait (ZCARD), not a counter that could have expired with
-- the bucket while tickets remained: asked when the bucket's hash was gone (the bucket, queue and
-- class keys share one expiry, so otherwise the counter is the queue's; promote resets a counter
-- whose queue is gone). When they disagree, the queued cost and the busy weight are rebuilt from
-- the queue and the class hash (rare: only after a key was lost).
local function syncQueue(ep, qKey, cKey)
  if not ep.fresh then return end
  local n = redis.call('ZCARD', qKey)
  if n == ep.n then return end
  ep.n, ep.qc, ep.bw = n, 0, 0
  if n == 0 then
    redis.call('DEL', cKey)
    return
  end
  ep.qdl, ep.mc = 1, 0 -- unknown deadlines and costs: promote looks
  for _, member in ipairs(redis.call('ZRANGE', qKey, 0, -1)) do
    ep.qc = ep.qc + (tonumber(string.match(member, '^[^|]*|[^|]*|([^|]*)')) or 0)
  end
  local raw = redis.call('HGETALL', cKey)
  for i = 1, #raw, 2 do
    if string.sub(raw[i], 1, 2) == 'w|' then ep.bw = ep.bw + (tonumber(raw[i + 1]) or 0) end
  end
  -- a lost bucket lost its clock too: restart it at the queue's first tag
  local first = redis.call('ZRANGE', qKey, 0, 0, 'WITHSCORES')
  if ep.v == 0 and first[2] then ep.v = tonumber(first[2]) end
end
