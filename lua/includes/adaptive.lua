--- @include "lib"
-- Adaptive rate, per endpoint, opt-in. The effective rate lives in the endpoint's bucket hash
-- ('er'), so every worker follows it on its next call. A penalty cuts it by `factor` and remembers
-- the rate that tripped ('ceil'). Each quiet period without a penalty raises it, in three phases
-- (CUBIC-like: the last ceiling is where the limit probably still is):
--   1. fast recovery: half the way back up to PLATEAU x ceiling, where it is safe;
--   2. hold there for quietMs x HOLD_GROWTH^pk (at most maxHold), then probe past the ceiling by
--      `step` per quiet period. 'pk' counts the penalties in a row since a probe last found room
--      (exponential backoff: each failed probe, one violation, makes the next come 4x later), so
--      a static hidden limit costs about one violation per longest hold, not one per climb;
--   3. above the ceiling the step doubles with each quiet period (the distance above the ceiling
--      is added), so a limit that was raised is found in a few periods; passing the ceiling by
--      NEAR without a penalty proves the room and resets pk.
-- The trade-off is maxHold: a limit that relaxes while the fleet holds is found only when the hold
-- ends. A quiet period counts only if the fleet used the rate (window validation, as TCP's RFC
-- 7661): at least USED of the effective rate admitted since the period began (aw, with the
-- admission counter at aa). An idle or half-used endpoint learns nothing about the limit by not
-- being refused, and raising it anyway drifts it past the limit, which it trips when demand comes
-- back; such a period starts over instead. Bounded by [minRate, configured rate], and never above the configured rate even when an
-- operator sets one below minRate: an operator's lower rate wins. Never raised while the endpoint
-- is paused by a penalty; the quiet period counts from the pause's end. Penalties within one quiet
-- period of the last cut only pause: a burst of 429s seen by many workers at once is one signal,
-- not many.
-- spec: 'factor,quietMs,step,minRate,maxHoldMs' (rates in tokens/ms) or '' when the endpoint is not
-- adaptive; a spec without maxHoldMs (an older caller) holds at most DEFAULT_MAX_HOLD quiet periods.
local PLATEAU = 0.9
local NEAR = 0.15
local HOLD_GROWTH = 4
local DEFAULT_MAX_HOLD = 64
local USED = 0.9

local function parseAdaptive(spec)
  if spec == nil or spec == '' then return nil end
  local f = {}
  for part in string.gmatch(spec, '([^,]+)') do f[#f + 1] = tonumber(part) end
  local maxHold = f[5] or f[2] * DEFAULT_MAX_HOLD
  return { factor = f[1], quietMs = f[2], step = f[3], minRate = f[4], maxHoldMs = max(f[2], maxHold) }
end

-- the configured rate `rate`, or the adaptive one below it; returns rate and ep fields to use
local function adaptiveRate(ep, a, rate)
  if a == nil or ep.er == nil or ep.er <= 0 then return rate end
  return min(rate, max(a.minRate, ep.er))
end

-- called on every acquire: raise the rate after a quiet period; returns 'up' when it did
local function adaptiveRaise(ep, a, configured)
  if a == nil or ep.er == nil or ep.er <= 0 then return '' end
  if (ep.pu or 0) > now then return '' end
  local since = max(ep.lp or 0, ep.la or 0, ep.pu or 0, ep.aw or 0)
  if ep.er >= configured then
    -- a quiet period at the configured rate proves the room as well: the backoff is over
    if (ep.pk or 0) > 0 and now - since >= a.quietMs then ep.pk = 0 end
    return ''
  end
  local ceil = ep.ceil or 0
  local target = PLATEAU * ceil
  -- stored rates are rounded: within 0.1% of the target counts as there
  local atPlateau = ceil > 0 and ep.er >= target * 0.999 and ep.er <= target * 1.001
  local quiet = a.quietMs
  if atPlateau then quiet = min(a.quietMs * HOLD_GROWTH ^ (ep.pk or 0), a.maxHoldMs) end
  if now - since < quiet then return '' end
  -- admissions since the period began, against what the effective rate allowed in it
  if (ep.adm - (ep.aa or 0)) < USED * ep.er * (now - since) then
    ep.aw, ep.aa = now, ep.adm
    return ''
  end
  local before = ep.er
  if ceil <= 0 then
    ep.er = ep.er + a.step
  elseif ep.er < target * 0.999 then
    ep.er = ep.er + (target - ep.er) / 2
    if target - ep.er < a.step then ep.er = target end
  elseif ep.er < ceil then
    ep.er = ep.er + a.step
  else
    ep.er = ep.er + max(a.step, ep.er - ceil)
    if ep.er > ceil * (1 + NEAR) then ep.pk = 0 end
  end
  ep.er = min(ep.er, configured)
  ep.la, ep.aw, ep.aa = now, now, ep.adm
  if ep.er ~= before then return 'up' end
  return ''
end

-- called by penalize: cut the rate (once per quiet period)
local function adaptiveCut(ep, a, configured)
  if a == nil then return false end
  local current = ep.er
  if current == nil or current <= 0 then current = configured end
  if (ep.lp or 0) > 0 and now - ep.lp < a.quietMs and ep.er ~= nil and ep.er > 0 then return false end
  -- another penalty before a probe found room: the next probe waits HOLD_GROWTH x longer (no
  -- further once the hold is at maxHold, so the level shown stays meaningful)
  if (ep.ceil or 0) > 0 and a.quietMs * HOLD_GROWTH ^ (ep.pk or 0) < a.maxHoldMs then
    ep.pk = (ep.pk or 0) + 1
  end
  ep.ceil = current
  ep.er = max(a.minRate, current * a.factor)
  ep.lp, ep.aw, ep.aa = now, now, ep.adm
  return true
end
