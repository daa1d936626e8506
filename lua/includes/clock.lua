-- Redis time in ms (fractional): the only clock Sluice trusts. Worker clocks never enter a decision.
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local now = redisNowMs()
local INF = math.huge
local function num(s) return string.format('%.6f', s) end
