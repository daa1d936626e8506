--[[
  The well-known simple Redis token bucket (the shape published with Stripe's rate limiter post
  and copied widely): two keys, reject with a retry-after. Used by the peers benchmark as the
  "naive" baseline: the caller sleeps retry-after plus jitter and tries again.

  KEYS[1] tokens     KEYS[2] timestamp of the last refill
  ARGV[1] rate (tokens/s)   ARGV[2] capacity (burst)   ARGV[3] requested
  ARGV[4] now in ms from the caller's clock (the published form), or '' to read Redis TIME
  Returns { allowed (1/0), retry-after ms (0 when allowed) }
]]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('time')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local fill_time = capacity / rate
local ttl = math.max(1, math.floor(fill_time * 2))

local last_tokens = tonumber(redis.call('get', KEYS[1]))
if last_tokens == nil then last_tokens = capacity end
local last_refreshed = tonumber(redis.call('get', KEYS[2]))
if last_refreshed == nil then last_refreshed = 0 end

local delta = math.max(0, now - last_refreshed)
local filled = math.min(capacity, last_tokens + delta / 1000 * rate)
local allowed = filled >= requested
local new_tokens = filled
local retry_after = 0
if allowed then
  new_tokens = filled - requested
else
  retry_after = math.ceil((requested - filled) / rate * 1000)
end

redis.call('setex', KEYS[1], ttl, new_tokens)
redis.call('setex', KEYS[2], ttl, now)
if allowed then return { 1, 0 } end
return { 0, retry_after }
