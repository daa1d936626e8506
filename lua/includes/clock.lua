-- Redis time in ms (fractional): the only clock Sluice trusts. Worker clocks never enter a decision.
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local now = redisNowMs()
local INF = math.huge
local function num(s) return string.format('%.6f', s) end
-- A number for a script's reply: an integer in millionths (Redis sends an integer without printf,
-- at a sixth of num()'s cost), INF as 'inf'. The caller divides by 1e6 (fromFixed in src/lane.ts).
local function fixed(x)
  if x == INF then return 'inf' end
  return math.floor(x * 1e6 + 0.5)
end
