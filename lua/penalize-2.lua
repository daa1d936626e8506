--[[
  penalize-2: the upstream said "slow down" (429, captcha): push this endpoint's next admission
  back fleet-wide by putting its bucket into debt worth retryAfterMs. Only this endpoint; the
  reservations already handed out stand. Queued tickets simply see a longer wait.

  KEYS[1] cfg   KEYS[2] bucket
  ARGV[1] rate, tokens/ms   ARGV[2] burst   ARGV[3] retry after, ms (already rounded up)
  ARGV[4] adaptive spec 'factor,quietMs,step,minRate' ('' = fixed rate)
  ARGV[5] 'recover' after an outage: not a penalty, but the hand-over back to Redis. The bucket
          is held empty until at least now + retryAfter (not added to any existing pause, so every
          process that comes back extends the same grace instead of stacking), while processes
          that have not reconnected yet still spend their leased local shares.
  Returns { pausedUntil ms, tokens, effective rate before, effective rate after }
]]
--- @include "clock"
--- @include "buckets"
--- @include "endpoint"

local settings = loadSettings(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 0)
local adaptive = parseAdaptive(ARGV[4])
local ep = loadEndpoint(KEYS[2], settings, adaptive)
local retryAfter = tonumber(ARGV[3])
if ARGV[5] == 'recover' then
  ep.t = math.min(ep.t, -retryAfter * ep.r)
  saveEndpoint(ep, 0)
  return { num(now + retryAfter), num(ep.t), tostring(ep.r), tostring(ep.r) }
end
local rateBefore = ep.r
if adaptiveCut(ep, adaptive, settings.configuredRate) then ep.r = ep.er end
local pausedUntil = math.max(ep.pu, now + retryAfter)
-- whatever debt exists (future reservations) stays; the pause comes on top of a drained bucket
ep.t = math.min(ep.t, 0) - retryAfter * ep.r
ep.pu = pausedUntil
ep.pen = ep.pen + 1
saveEndpoint(ep, 0)
return { num(pausedUntil), num(ep.t), tostring(rateBefore), tostring(ep.r) }
