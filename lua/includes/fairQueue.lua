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

-- forget a ticket that leaves the queue (promoted, expired, cancelled or dropped)
local function removeTicket(ep, qKey, cKey, member, t)
  if redis.call('ZREM', qKey, member) == 0 then return false end
  ep.n = ep.n - 1
  ep.qc = ep.qc - t.cost
  local nField = classField('n', t.tenant, t.priority)
  if redis.call('HINCRBY', cKey, nField, -1) <= 0 then
    local w = tonumber(redis.call('HGET', cKey, classField('w', t.tenant, t.priority))) or 0
    ep.bw = ep.bw - w
    redis.call('HDEL', cKey, nField, classField('w', t.tenant, t.priority))
  end
  if ep.n <= 0 then
    -- an empty queue starts the next busy period afresh: no stale tags, no drift
    ep.n, ep.qc, ep.bw = 0, 0, 0
    redis.call('DEL', cKey, qKey)
  end
  return true
end

-- The queue itself says how many tickets wait (ZCARD), not a counter that could have expired with
-- the bucket while tickets remained. When they disagree, the queued cost and the busy weight are
-- rebuilt from the queue and the class hash (rare: only after a key was lost).
local function syncQueue(ep, qKey, cKey)
  local n = redis.call('ZCARD', qKey)
  if n == ep.n then return end
  ep.n, ep.qc, ep.bw = n, 0, 0
  if n == 0 then
    redis.call('DEL', cKey)
    return
  end
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
