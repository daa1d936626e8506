-- Adaptive rate, per endpoint, opt-in. The effective rate lives in the endpoint's bucket hash
-- ('er'), so every worker follows it on its next call. A penalty cuts it by `factor` and remembers
-- the rate that tripped ('ceil'). Each quiet period without a penalty raises it, in three phases
-- (CUBIC-like: the last ceiling is where the limit probably still is):
--   1. fast recovery: half the way back up to PLATEAU x ceiling, where it is safe;
--   2. hold there for quietMs x HOLD_GROWTH^pk, then probe past the ceiling by `step` per quiet
--      period; 'pk' counts the trips in a row at about the same ceiling, so every probe that
--      only confirms the old ceiling (one violation) makes the next one come 4x later, up to
--      HOLD_GROWTH^MAX_PK quiet periods: a static hidden limit costs about one violation per
--      longest hold, not one per climb;
--   3. above the ceiling the step doubles with each quiet period (the distance above the ceiling
--      is added), so a limit that was raised is found in a few periods; passing the ceiling by
--      NEAR without a penalty proves the room and resets pk.
-- A raised limit is thus found within the current hold plus a few quiet periods: the price of
-- probing seldom. Bounded by [minRate, configured rate], and never above the configured rate even
-- when an operator sets one below minRate: an operator's lower rate wins. Never raised while the
-- endpoint is paused by a penalty; the quiet period counts from the pause's end. Penalties within
-- one quiet period of the last cut only pause: a burst of 429s seen by many workers at once is one
-- signal, not many.
-- spec: 'factor,quietMs,step,minRate' (rates in tokens/ms) or '' when the endpoint is not adaptive.
local PLATEAU = 0.9
local NEAR = 0.15
local HOLD_GROWTH = 4
local MAX_PK = 3

local function parseAdaptive(spec)
  if spec == nil or spec == '' then return nil end
  local f = {}
  for part in string.gmatch(spec, '([^,]+)') do f[#f + 1] = tonumber(part) end
  return { factor = f[1], quietMs = f[2], step = f[3], minRate = f[4] }
end

-- the configured rate `rate`, or the adaptive one below it; returns rate and ep fields to use
local function adaptiveRate(ep, a, rate)
  if a == nil or ep.er == nil or ep.er <= 0 then return rate end
  return math.min(rate, math.max(a.minRate, ep.er))
end

-- called on every acquire: raise the rate after a quiet period; returns 'up' when it did
local function adaptiveRaise(ep, a, configured)
  if a == nil or ep.er == nil or ep.er <= 0 or ep.er >= configured then return '' end
  if (ep.pu or 0) > now then return '' end
  local since = math.max(ep.lp or 0, ep.la or 0, ep.pu or 0)
  local ceil = ep.ceil or 0
  local target = PLATEAU * ceil
  -- stored rates are rounded: within 0.1% of the target counts as there
  local atPlateau = ceil > 0 and ep.er >= target * 0.999 and ep.er <= target * 1.001
  local quiet = a.quietMs
  if atPlateau then quiet = a.quietMs * HOLD_GROWTH ^ (ep.pk or 0) end
  if now - since < quiet then return '' end
  local before = ep.er
  if ceil <= 0 then
    ep.er = ep.er + a.step
  elseif ep.er < target * 0.999 then
    ep.er = ep.er + (target - ep.er) / 2
    if target - ep.er < a.step then ep.er = target end
  elseif ep.er < ceil then
    ep.er = ep.er + a.step
  else
    ep.er = ep.er + math.max(a.step, ep.er - ceil)
    if ep.er > ceil * (1 + NEAR) then ep.pk = 0 end
  end
  ep.er = math.min(ep.er, configured)
  ep.la = now
  if ep.er ~= before then return 'up' end
  return ''
end

-- called by penalize: cut the rate (once per quiet period)
local function adaptiveCut(ep, a, configured)
  if a == nil then return false end
  local current = ep.er
  if current == nil or current <= 0 then current = configured end
  if (ep.lp or 0) > 0 and now - ep.lp < a.quietMs and ep.er ~= nil and ep.er > 0 then return false end
  local old = ep.ceil or 0
  -- a trip near the old ceiling (a probe just past it, or the plateau below it) confirms it: hold
  -- longer next time. A trip well below it is the limit tightening (a new ceiling, level kept);
  -- one well above it comes after pk was reset by passing the old ceiling.
  if old > 0 and current <= old * (1 + NEAR) and current >= old * PLATEAU * 0.9 then
    ep.pk = math.min((ep.pk or 0) + 1, MAX_PK)
  end
  ep.ceil = current
  ep.er = math.max(a.minRate, current * a.factor)
  ep.lp = now
  return true
end
