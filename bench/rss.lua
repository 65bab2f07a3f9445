-- RSS of one client after its first 1,000 gets and after N more, in KiB.
-- `lua5.4 bench/rss.lua BASE_URL N CA_FILE`
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local empirical = require("empirical")
local bodies = require("bodies")

local client = assert(empirical.new { token = "bench-token", base_url = arg[1], ca_file = arg[3] })
for _ = 1, 1000 do assert(client:get(1)) end
collectgarbage()
collectgarbage()
local first = bodies.rss()
for _ = 1, tonumber(arg[2]) do assert(client:get(1)) end
collectgarbage()
collectgarbage()
print(first, (bodies.rss()))
