--[[
  httpTokenBucket (algorithm 1 of lua/httpLimit-n.lua): one inbound request against a token
  bucket (bursts up to `burst`, refilled at `rate`), with the quotas and abuse block of
  lua/includes/httpLimit.lua.

  The item's key (hash): t tokens, ts last update (ms), quota and block fields
  Arguments as in httpLimit, with  a = burst (tokens)   b = rate (tokens/ms)
  Returns the item's tuple of httpLimit.
]]
--- @include "httpLimit"

local function tokenBucket()
  local burst, rate = A, B
  local t, ts = read({ 't', 'ts' })
  t, ts = tonumber(t), tonumber(ts)
  if not t then t, ts = burst, now end
  -- a clock going backwards refills nothing and never rewinds ts (no double refill later)
  t = math.min(burst, t + math.max(0, now - ts) * rate)
  ts = math.max(ts, now)
  if t + EPS >= cost then
    local left = math.max(0, t - cost)
    local reset = math.ceil((burst - left) / rate)
    return decide(true, math.floor(left + EPS), math.floor(t + EPS), reset, 0, { 't', fmt(left), 'ts', ts }, reset + 1)
  end
  -- the first ms at which the check above passes (EPS / 2: on the boundary, float noise cannot make it late or early)
  return decide(false, math.floor(t + EPS), math.floor(t + EPS), math.ceil((burst - t) / rate), math.ceil((cost - t - EPS / 2) / rate), {}, 0)
end
