-- Peak memory of decoding one large run detail, in a fresh process: prints
-- the bytes the peak RSS rose by while decoding. `lua5.4 bench/peak.lua ITEMS`
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local empirical = require("empirical")
local bodies = require("bodies")

local body = bodies.detail(tonumber(arg[1]))
collectgarbage()
collectgarbage()
local f = io.open("/proc/self/clear_refs", "w")   -- "5" resets the peak (VmHWM) to the current RSS
if f then f:write("5") f:close() end
local before = bodies.rss()
local detail = assert(empirical.decode("get", 200, body, "application/json"))
local _, peak = bodies.rss()
assert(#detail.flattenedSummaryDetails > 0)
print((peak - before) * 1024)
