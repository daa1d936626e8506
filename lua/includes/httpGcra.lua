--[[
  httpGcra (algorithm 2 of lua/httpLimit-n.lua): one inbound request by GCRA (generic cell rate
  algorithm, a leaky bucket as a meter): requests are spaced by the emission interval, with a
  tolerance of `burst` requests. One stored number per key. Quotas and abuse block as in lua/includes/httpLimit.lua.

  The item's key (hash): g theoretical arrival time (ms), quota and block fields
  Arguments as in httpLimit, with  a = burst (requests that may go back to back, >= 1)
                              b = emission interval (ms per request)
  Returns the item's tuple of httpLimit.
]]
--- @include "httpLimit"

local function gcra()
  local burst, interval = A, B
  local tat = math.max(tonumber((read({ 'g' }))) or now, now)
  local newTat = tat + cost * interval
  local allowAt = newTat - burst * interval
  if now + EPS >= allowAt then
    local remaining = math.floor((burst * interval - (newTat - now)) / interval + EPS)
    local before = math.floor((burst * interval - (tat - now)) / interval + EPS)
    return decide(true, math.max(0, remaining), math.max(0, before), math.ceil(newTat - now), 0, { 'g', fmt(newTat) }, math.ceil(newTat - now) + 1)
  end
  local remaining = math.max(0, math.floor((burst * interval - (tat - now)) / interval + EPS))
  -- the first ms at which the check above passes (EPS / 2: see httpTokenBucket)
  return decide(false, remaining, remaining, math.ceil(tat - now), math.ceil(allowAt - now - EPS / 2), {}, 0)
end
