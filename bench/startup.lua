-- Start-up time with hyperfine: the command's --help, --version and a usage
-- error beside bare Lua and `curl --version`. Before bin/empirical exists,
-- `require "empirical"` stands in for it.
--
--   lua5.4 bench/startup.lua [--quick]      prints a markdown table
package.path = "./bench/?.lua;" .. package.path
local cjson = require("cjson")
local util = require("util")

local QUICK = arg[1] == "--quick"
local ENV = "env LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./?.so;;' "

local commands = { { "`lua5.4 -e ''` (bare Lua)", "lua5.4 -e ''" }, { "`curl --version`", "curl --version" } }
local f = io.open("bin/empirical")
if f then
  f:close()
  for _, c in ipairs {
    { "`empirical --help`", "--help" }, { "`empirical --version`", "--version" },
    { "`empirical --no-such-flag` (usage error)", "--no-such-flag" },
  } do
    commands[#commands + 1] = { c[1], ENV .. "lua5.4 bin/empirical " .. c[2] }
  end
end
commands[#commands + 1] = { "`lua5.4 -e 'require \"empirical\"'` (loads libcurl)", ENV .. "lua5.4 -e 'require \"empirical\"'" }

local out = os.tmpname()
local argv = { "hyperfine", "-N", "--ignore-failure", "--style none", "--export-json", out,
               QUICK and "--runs 20 --warmup 3" or "--runs 200 --warmup 10" }
for _, c in ipairs(commands) do argv[#argv + 1] = "'" .. c[2]:gsub("'", "'\\''") .. "'" end
util.sh(table.concat(argv, " ") .. " >/dev/null 2>&1")
local file = assert(io.open(out))
local results = cjson.decode(file:read("*a")).results
file:close()
os.remove(out)

local bare = results[1].median
print("| command | median | mean ± σ | over bare Lua |")
print("|---|---|---|---|")
for i, r in ipairs(results) do
  print(("| %s | %.2f ms | %.2f ± %.2f ms | %+.2f ms |"):format(commands[i][1], r.median * 1000, r.mean * 1000,
                                                               r.stddev * 1000, (r.median - bare) * 1000))
end
