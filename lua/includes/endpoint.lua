-- An endpoint's effective settings: the caller's configured defaults, overridden at runtime by
-- the operator's hash (so a change reaches every worker on its next call, without restart).
local function loadSettings(cfgKey, rate, burst, maxQueue)
  local s = { rate = rate, burst = burst, maxQueue = maxQueue, weights = {} }
  local raw = redis.call('HGETALL', cfgKey)
  for i = 1, #raw, 2 do
    local f, v = raw[i], raw[i + 1]
    if f == 'rate' then s.rate = tonumber(v)
    elseif f == 'burst' then s.burst = tonumber(v)
    elseif f == 'maxQueue' then s.maxQueue = tonumber(v)
    elseif string.sub(f, 1, 2) == 'w:' then s.weights[string.sub(f, 3)] = tonumber(v)
    end
  end
  return s
end

-- The endpoint's bucket carries the fair-queue clock and counters beside its tokens.
local EP_FIELDS = { 'v', 'n', 'qc', 'bw', 's', 'adm', 'qd', 'to', 'qf', 'dr', 'pu', 'pen' }
local function loadEndpoint(key, settings)
  local ep = loadBucket(key, settings.rate, settings.burst)
  local v = redis.call('HMGET', key, unpack(EP_FIELDS))
  for i = 1, #EP_FIELDS do ep[EP_FIELDS[i]] = tonumber(v[i]) or 0 end
  return ep
end

local function saveEndpoint(ep, extraTtl)
  local args = {}
  for i = 1, #EP_FIELDS do
    args[#args + 1] = EP_FIELDS[i]
    args[#args + 1] = num(ep[EP_FIELDS[i]])
  end
  redis.call('HSET', ep.key, unpack(args))
  ep.dirty = true
  flushBuckets(extraTtl)
end
