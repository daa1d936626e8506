--[[
  heartbeat-1: a process says it is alive and learns how many are. The count sizes each process's
  leased share of the rate when Redis goes away (failure policy 'local'): with N processes alive,
  each may admit rate / N on its own until its lease ends.

  KEYS[1] live   owners by lease expiry (sorted set)
  ARGV[1] owner id   ARGV[2] lease ms
  Returns the number of live processes, this one included.
]]
--- @include "clock"

redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
