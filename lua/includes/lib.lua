-- The library functions the scripts call most, bound to locals once. A Function reaches the
-- globals through a metatable's __index (a miss in its own table, then the real one): there
-- math.max costs ~600 instructions, max ~330 (scripts.ts hoists these aliases as constants).
local rcall = redis.call
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
local find, format, match, sub = string.find, string.format, string.match, string.sub

-- What a Function remembers across its calls (parsed numbers, texts, tickets, endpoint states):
-- `items` by key, dropped whole when it holds `limit` entries, so its memory stays bounded. Under
-- EVAL it starts empty at every call.
local function newCache(limit) return { size = 0, limit = limit, items = {} } end
local function remember(cache, key, value)
  local items = cache.items
  if items[key] == nil then
    if cache.size >= cache.limit then
      items = {}
      cache.items, cache.size = items, 0
    end
    cache.size = cache.size + 1
  end
  items[key] = value
  return value
end
local function forget(cache, key)
  local items = cache.items
  if items[key] ~= nil then
    items[key] = nil
    cache.size = cache.size - 1
  end
end
