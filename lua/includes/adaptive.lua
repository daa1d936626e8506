-- Adaptive rate (AIMD), per endpoint, opt-in. The effective rate lives in the endpoint's bucket
-- hash ('er'), so every worker follows it on its next call. A penalty cuts it by `factor` and
-- remembers the rate that tripped ('ceil'); each quiet period without a penalty raises it: fast
-- (half the way) back up to 90% of that ceiling, then additively by `step` to probe above it.
-- Bounded by [minRate, configured rate], and never above the configured rate even when an
-- operator sets one below minRate: an operator's lower rate wins. Never raised while the endpoint
-- is paused by a penalty; the quiet period counts from the pause's end. Penalties within one quiet
-- period of the last cut only pause: a burst of 429s seen by many workers at once is one signal,
-- not many.
-- spec: 'factor,quietMs,step,minRate' (rates in tokens/ms) or '' when the endpoint is not adaptive.
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
  if now - since < a.quietMs then return '' end
  local target = 0.9 * (ep.ceil or configured)
  local before = ep.er
  -- stored rates are rounded: within 0.1% of the target counts as there
  if ep.er < target * 0.999 then
    ep.er = ep.er + (target - ep.er) / 2
    if target - ep.er < a.step then ep.er = target end
  else
    ep.er = ep.er + a.step
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
  ep.ceil = current
  ep.er = math.max(a.minRate, current * a.factor)
  ep.lp = now
  return true
end
