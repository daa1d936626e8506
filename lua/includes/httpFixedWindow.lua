--[[
  httpFixedWindow (algorithm 4 of lua/httpLimit-n.lua): one inbound request by fixed window: at
  most `limit` per window, windows aligned on the epoch (the same boundaries for every key). Across a boundary a client can get
  up to 2 x limit within one window's length: that is the algorithm, documented in docs/http.md.
  Quotas and abuse block as in lua/includes/httpLimit.lua.

  The item's key (hash): w window index, c its count, quota and block fields
  Arguments as in httpLimit, with  a = limit (requests per window)   b = window (ms)
  Returns the item's tuple of httpLimit.
]]
--- @include "httpLimit"

local function fixedWindow()
  local limit, window = A, B
  local wi = math.floor(now / window)
  -- a clock gone back (a failover to a server whose clock is behind) stays in the window it knew:
  -- an earlier window must not admit a second limit
  local w, c = read({ 'w', 'c' })
  w = tonumber(w)
  if w and w > wi then wi = w end
  local count = 0
  if w == wi then count = tonumber(c) end
  local reset = (wi + 1) * window - now
  if count + cost <= limit then
    return decide(true, limit - count - cost, limit - count, reset, 0, { 'w', wi, 'c', count + cost }, reset)
  end
  return decide(false, math.max(0, limit - count), math.max(0, limit - count), reset, reset, {}, 0)
end
