--[[
  cancel-9: give back what a caller holds and no longer wants (abort, deadline, close()).

  KEYS as acquire-9: cfg, bucket, queue, mailbox, leases (untouched), global, tenants, tcfg
  (untouched), shadow (untouched).
  ARGV[1] rate   ARGV[2] burst   ARGV[3] namespace rate ('' = none)   ARGV[4] namespace burst
  ARGV[5] adaptive spec ('' = fixed rate)
  ARGV[6] the caller's config version (see acquire-9)
  ARGV[7] item count, then 4 values per item:
          kind ('t' ticket | 'r' reservation), ticket member or slot ms, cost (of one request: a
          bundle's promoted requests are refunded each), tenant
          (a refund goes to the tenant's bucket as its hash remembers it: no budget is passed)

  Only future slots are refunded: a slot that has passed was used, or its tokens are gone, and
  refunding it could over-admit once the bucket is full. A refund goes to the buckets that were
  charged: the tenant's bucket as its hash remembers it (the budget charged, even if an operator
  changed it since), and none when that bucket's key is gone (it is full again).
  Queue emptiness is the queue's ZCARD; the bucket and queue keys keep one TTL.
  Returns, per item: 1 removed from the queue, 2 refunded, 0 nothing to give back (already used or expired).
]]
--- @include "clock"
--- @include "buckets"
--- @include "endpoint"
--- @include "fairQueue"

local state = readEndpoint(KEYS[2])
local settings = loadSettings(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 0, ARGV[6], state)
local ep = loadEndpoint(state, settings, parseAdaptive(ARGV[5]))
syncQueue(ep, KEYS[3], settings.weights)
local globalRate, globalBurst = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
local n = tonumber(ARGV[7])
for i = 0, n - 1 do
  local o = 8 + i * 4
  local kind, ref, cost = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2])
  local tenant = ARGV[o + 3]
  local result = 0
  local slots = nil
  if kind == 't' then
    local t = parseTicket(ref)
    if removeTicket(ep, KEYS[3], ref, t) then
      result = 1
    else
      -- promoted meanwhile: take it out of the mailbox and refund it like a reservation (a
      -- bundle's slots each)
      local field = t.owner .. '|' .. t.seq
      local mailed = redis.call('HGET', KEYS[4], field)
      if mailed then
        redis.call('HDEL', KEYS[4], field)
        slots = string.match(mailed, '^[^@]*')
      end
    end
  else
    slots = ref
  end
  for slot in string.gmatch(slots or '', '[^,]+') do
    if (tonumber(slot) or 0) > now then
      refundAll(refundBuckets(ep, globalRate, globalBurst, KEYS[6], KEYS[7], tenant), cost)
      ep.adm = ep.adm - 1
      result = 2
    end
  end
  out[#out + 1] = result
end
saveEndpoint(ep, KEYS[3])
return out
