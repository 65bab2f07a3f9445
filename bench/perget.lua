-- Per-get work, ours against the fair floor (one reused libcurl easy handle
-- driven from Lua, then cjson.decode of the body), in one process.
--
--   lua5.4 bench/perget.lua ours|fair BASE N [CA]     N gets, for callgrind
--   lua5.4 bench/perget.lua compare BASE N RUNS [CA]  alternate RUNS blocks of N
--     gets each; prints "<ours us> <floor us> <median paired ratio>"
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;./build/bench/?.so;" .. package.cpath
local empirical = require("empirical")
local cjson = require("cjson")
local floor_lua = require("floor_lua")

local mode, base = arg[1], arg[2]
local n = tonumber(arg[3])
local ca
if mode == "compare" then ca = arg[5] else ca = arg[4] end
local TOKEN = "bench-token"
local url = base .. "/api/test-runs/1"

local client = assert(empirical.new { token = TOKEN, base_url = base, ca_file = ca })
local floor = floor_lua.new(TOKEN, ca)
local decode = cjson.decode

local function ours()
  for _ = 1, n do assert(client:get(1)) end
end

local function fair()
  for _ = 1, n do
    local body, status = floor:get(url)
    assert(status == 200 and decode(body).data.test_run)
  end
end

assert(client:get(1))       -- connect and warm up both
assert(decode((floor:get(url))))
if mode == "ours" then ours()
elseif mode == "fair" then fair()
elseif mode == "compare" then
  local util = require("util")
  local t_ours, t_fair, ratio = util.compare(ours, fair, tonumber(arg[4]))
  print(("%.3f %.3f %.4f"):format(t_ours / n * 1e6, t_fair / n * 1e6, ratio))
else
  error("usage: perget.lua ours|fair|compare BASE N [RUNS] [CA]")
end
client:close()
