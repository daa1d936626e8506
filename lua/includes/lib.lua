-- The library functions the scripts call most, bound to locals once. A Function reaches the
-- globals through a metatable's __index (a miss in its own table, then the real one): there
-- math.max costs ~600 instructions, max ~330 (scripts.ts hoists these aliases as constants).
local rcall = redis.call
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
local find, format, match, sub = string.find, string.format, string.match, string.sub
