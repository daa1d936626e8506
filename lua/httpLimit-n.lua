--[[
  httpLimit-n: a batch of inbound requests, each against its own limited key under its own
  policy, decided in order (a later item sees what an earlier one wrote, so N requests on one key
  admit exactly what N calls one after another would). The client gathers the checks of one
  event-loop turn into one call; a lone request is a batch of one. The key count is passed per
  call (numkeys): one key per item.

  KEYS[i]  state of item i's limited key (hash), as its algorithm documents
  ARGV[1]  now ms ('' = Redis TIME, read once: one clock for the batch; tests inject a clock)
  ARGV[2..] the items' arguments, one after another, each as lua/includes/httpLimit.lua lists
           (a count first, then algorithm, cost, a, b and, for quotas or blocking, 11 more)
  Returns one tuple per item, in order, as httpLimit documents. An item whose commands fail (a
  key of the wrong type, Redis out of memory) answers { -8, message } and the others go on: a
  failure is its own key's, and each caller gets its failure policy; an algorithm number this
  version does not know answers { -9 }.
]]
--- @eval-only: an item whose commands fail (Redis out of memory) answers for itself and the others
--- go on, which needs EVAL's per-command OOM check; a Function is refused whole under OOM.
--- @include "httpLimit"
--- @include "httpTokenBucket"
--- @include "httpGcra"
--- @include "httpSlidingWindow"
--- @include "httpFixedWindow"

local ALGORITHMS = { tokenBucket, gcra, slidingWindow, fixedWindow }
local out = {}
local b = 1
for i = 1, #KEYS do
  local algorithm = ALGORITHMS[item(i, b)]
  if algorithm then
    local ok, reply = pcall(algorithm)
    if ok then
      out[i] = reply
    else
      -- redis.call raises a table { err = message }; a Lua error is a string
      if type(reply) == 'table' then reply = reply.err end
      out[i] = { -8, tostring(reply) }
    end
  else
    out[i] = { -9 }
  end
  b = b + 1 + tonumber(ARGV[b + 1])
end
return out
