--[[
  inspect-3: a read-only picture of one endpoint for status, metrics and tests.

  KEYS[1] cfg   KEYS[2] bucket   KEYS[3] queue
  ARGV[1] configured rate, tokens/ms   ARGV[2] configured burst   ARGV[3] configured max queue
  ARGV[4] the caller's config version (the fleet's newest config file wins, see acquire-9)
  Returns { now, tokens, rate, burst, maxQueue, vtime, queued, queuedCost, busyWeight, pausedUntil,
            admitted, queuedTotal, timeouts, queueFull, dropped, penalties, overrides, classes, ttls,
            wouldWait, bypassed, shadowWouldWait, pauseWait ms, shadow rate, shadow burst,
            adaptive rate, adaptive ceiling, last penalty ms, last raise ms, probe backoff level }
  The effective rate (field 3) is the adaptive one when the endpoint has an adaptive rate in Redis.
    overrides = flat field/value list of the cfg hash
    classes   = flat list tenant|priority, queued count
    ttls      = pttl of bucket, queue
]]
--- @include "clock"
--- @include "buckets"
--- @include "endpoint"

local state = readEndpoint(KEYS[2])
-- the operators' overrides are shown whatever the endpoint's flag says
state.cf = true
local settings = loadSettings(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], state)
-- inspect only reads the adaptive rate, if one is there
local ep = loadEndpoint(state, settings, 'any')
-- the queue itself says whether anyone waits (the bucket's counter may have gone with its key);
-- the counter says how many requests (a bundle is one ticket)
local tickets = redis.call('ZCARD', KEYS[3])
ep.n = tickets == 0 and 0 or math.max(ep.n, tickets)
local classes = {}
local raw = redis.call('HGETALL', KEYS[2])
for i = 1, #raw, 2 do
  if string.sub(raw[i], 1, 2) == 'c|' then
    local _, n, _, period = struct.unpack(CLASS_FMT, raw[i + 1])
    if period == ep.bp and n > 0 then
      classes[#classes + 1] = string.sub(raw[i], 3)
      classes[#classes + 1] = n
    end
  end
end
return {
  num(now), num(ep.t), tostring(ep.r), tostring(ep.b), tostring(settings.maxQueue), num(ep.v),
  ep.n, num(ep.qc), num(ep.bw), num(ep.pu), ep.adm, ep.qd, ep.to, ep.qf, ep.dr, ep.pen,
  redis.call('HGETALL', KEYS[1]), classes,
  { redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[3]) },
  ep.dw, ep.byp, ep.sw, num(settings.pauseWait), tostring(settings.shadowRate or ''), tostring(settings.shadowBurst or ''),
  tostring(ep.er), tostring(ep.ceil), num(ep.lp), num(ep.la), ep.pk,
}
