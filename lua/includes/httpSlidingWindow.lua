--[[
  httpSlidingWindow (algorithm 3 of lua/httpLimit-n.lua): one inbound request by the sliding-window counter (Cloudflare's): the
  count of the current fixed window plus the previous window's count weighted by how much of it
  the sliding window still covers. Two counters per key. Quotas and abuse block as in
  lua/includes/httpLimit.lua.

  The item's key (hash): w current window index, c its count, p previous count, quota and block
  fields
  Arguments as in httpLimit, with  a = limit (requests per window)   b = window (ms)
  Returns the item's tuple of httpLimit.
]]
--- @include "httpLimit"

-- until the window holding cur (and the previous one's prev) no longer counts: a plain function,
-- not a closure made per item
local function slidingReset(cur, prev, wi, window)
  if cur > 0 then return (wi + 2) * window - now end
  if prev > 0 then return (wi + 1) * window - now end
  return 0
end

local function slidingWindow()
  local limit, window = A, B
  local wi = math.floor(now / window)
  local w, c, p = read({ 'w', 'c', 'p' })
  local cur, prev = 0, 0
  w = tonumber(w)
  -- a clock gone back stays in the window it knew (see httpFixedWindow)
  if w and w > wi then wi = w end
  if w == wi then
    cur, prev = tonumber(c), tonumber(p)
  elseif w == wi - 1 then
    prev = tonumber(c)
  end
  local elapsed = math.max(0, now - wi * window)
  local estimate = prev * (window - elapsed) / window + cur
  if estimate + cost <= limit + EPS then
    cur = cur + cost
    return decide(true, math.max(0, math.floor(limit - estimate - cost + EPS)), math.max(0, math.floor(limit - estimate + EPS)), slidingReset(cur, prev, wi, window), 0,
      { 'w', wi, 'c', cur, 'p', prev }, (wi + 2) * window - now)
  end
  -- the first moment the estimate leaves room, if nobody else is admitted meanwhile
  local retry
  if prev > 0 and limit - cur - cost >= 0 then
    retry = math.ceil(window * (1 - (limit - cur - cost) / prev)) - elapsed
  else
    local into = 0
    if cur > 0 then into = math.max(0, math.ceil(window * (1 - (limit - cost) / cur))) end
    retry = (wi + 1) * window + into - now
  end
  local left = math.max(0, math.floor(limit - estimate + EPS))
  return decide(false, left, left, slidingReset(cur, prev, wi, window), math.max(1, retry), {}, 0)
end
