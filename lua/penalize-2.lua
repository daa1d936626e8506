--[[
  penalize-2: the upstream said "slow down" (429, captcha): no admission on this endpoint,
  fleet-wide, before now + retryAfterMs. Stored as a time (pu, the bucket's hold), not as token
  debt: no rate raise (adaptive probing, configure(), resetOverrides) can shorten it; the bucket
  is drained (reservations already handed out stand, as debt) and refills nothing until the
  pause ends, so the endpoint restarts at its rate, without a burst. Only this endpoint; queued
  tickets simply see a longer wait. Adaptive mode cuts the rate and raises nothing while paused.

  KEYS[1] cfg   KEYS[2] bucket
  ARGV[1] rate, tokens/ms   ARGV[2] burst   ARGV[3] retry after, ms (already rounded up)
  ARGV[4] adaptive spec 'factor,quietMs,step,minRate' ('' = fixed rate)
  ARGV[5] 'recover' after an outage: not a penalty, but the hand-over back to Redis. The bucket
          is held empty until at least now + retryAfter (not added to any existing pause, so every
          process that comes back extends the same grace instead of stacking), while processes
          that have not reconnected yet still spend their leased local shares.
  ARGV[6] the caller's config version (see acquire-9)
  The bucket's TTL only grows (it covers the pause); the queue and class keys are not touched.
  Returns { pausedUntil ms, tokens, effective rate before, effective rate after }
]]
--- @include "clock"
--- @include "buckets"
--- @include "endpoint"

local state = readEndpoint(KEYS[2])
local settings = loadSettings(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 0, ARGV[6], state)
local adaptive = parseAdaptive(ARGV[4])
local ep = loadEndpoint(state, settings, adaptive)
local retryAfter = tonumber(ARGV[3])
local rateBefore = ep.r
if ARGV[5] ~= 'recover' then
  if adaptiveCut(ep, adaptive, settings.configuredRate) then ep.r = ep.er end
  ep.pen = ep.pen + 1
end
-- whatever debt exists (future reservations) stays; the pause comes on top of a drained bucket
ep.t = math.min(ep.t, 0)
ep.pu = math.max(ep.pu, now + retryAfter)
ep.hold = ep.pu
saveEndpoint(ep)
return { num(ep.pu), num(ep.t), tostring(rateBefore), tostring(ep.r) }
