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
