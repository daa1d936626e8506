--- @include "lib"
-- Arguments repeat from call to call (rates, bursts, costs, weights, the clock's seconds, ''): a
-- Function remembers the number each string parsed to (false: none), since tonumber (a C call,
-- then strtod) costs as much as ten table reads. Not for strings that never repeat (ids,
-- microseconds).
local PARSED = newCache(256)
local function parsed(s)
  local x = PARSED.items[s]
  if x == nil then x = remember(PARSED, s, tonumber(s) or false) end
  return x or nil
end

-- Redis time in ms (fractional): the only clock Sluice trusts. Worker clocks never enter a decision.
local function redisNowMs()
  local t = rcall('TIME')
  -- the microseconds by arithmetic on the string: the same strtod without tonumber's C call
  return parsed(t[1]) * 1000 + t[2] / 1000
end
local now = redisNowMs()
local INF = math.huge
local function num(s) return format('%.6f', s) end
-- Whole milliseconds as text, for times a run writes into strings: the callers round them (to a
-- tenth of a second, a second), and a Function remembers the texts it made, so the runs of that
-- time share each one instead of a sprintf each.
local MS_TEXTS = newCache(64)
local function msText(ms)
  return MS_TEXTS.items[ms] or remember(MS_TEXTS, ms, format('%d', ms))
end
-- A number for a script's reply: an integer in millionths (Redis sends an integer without printf,
-- at a sixth of num()'s cost), INF as 'inf'. The caller divides by 1e6 (fromFixed in src/lane.ts).
-- Redis truncates a reply's number towards zero: the half added away from zero rounds it, with
-- no call to math.floor
local function fixed(x)
  if x == INF then return 'inf' end
  if x < 0 then return x * 1e6 - 0.5 end
  return x * 1e6 + 0.5
end
