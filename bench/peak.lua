-- Peak memory of one large run detail read off the wire and decoded, in a
-- fresh process, so that no memory freed earlier in the process (say, by
-- building the body) is reused and hides the peak. Prints the bytes the
-- peak RSS rose by, and the body's size.
--
--   lua5.4 bench/peak.lua ours|fair BASE [CA]   a get of run 99 (after a small
--                                               get of run 1 opened the connection)
--   lua5.4 bench/peak.lua file PATH             read the body from a file, cjson.decode
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;./build/bench/?.so;" .. package.cpath
local bodies = require("bodies")
local cjson = require("cjson")

local mode, where, ca = arg[1], arg[2], arg[3]
local TOKEN = "bench-token"
local run   -- returns the decoded detail's item count and the body's size

if mode == "ours" then
  local client = assert(require("empirical").new { token = TOKEN, base_url = where, ca_file = ca })
  assert(client:get(1))
  run = function()
    local detail = assert(client:get(99))
    return #detail.flattenedSummaryDetails
  end
elseif mode == "fair" then
  local floor = require("floor_lua").new(TOKEN, ca)
  cjson.decode((floor:get(where .. "/api/test-runs/1")))
  run = function()
    local body = floor:get(where .. "/api/test-runs/99")
    return #cjson.decode(body).data.test_run.flattenedSummaryDetails, #body
  end
elseif mode == "file" then
  run = function()
    local f = assert(io.open(where, "rb"))
    local body = f:read("*a")
    f:close()
    return #cjson.decode(body).data.test_run.flattenedSummaryDetails, #body
  end
else
  error("usage: peak.lua ours|fair BASE [CA] | file PATH")
end

collectgarbage()
collectgarbage()
local f = io.open("/proc/self/clear_refs", "w")   -- "5" resets the peak (VmHWM) to the current RSS
if f then f:write("5") f:close() end
local before = bodies.rss()
local items = run()
local _, peak = bodies.rss()
assert(items > 0)
print((peak - before) * 1024)
