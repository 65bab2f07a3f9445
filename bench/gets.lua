-- N sequential gets, for callgrind: `lua5.4 bench/gets.lua BASE_URL N`
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local client = assert(require("empirical").new { token = "bench-token", base_url = arg[1] })
for _ = 1, tonumber(arg[2]) do assert(client:get(1)) end
client:close()
