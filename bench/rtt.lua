-- Round trips over an emulated network: bench/delay_proxy.lua in front of
-- the benchmark's nginx adds DELAY ms each way. For each call: the time it
-- took, that time in round trips (2 x DELAY), the connections opened and
-- the round trips summed over connections (the proxy's flights).
--
--   lua5.4 bench/rtt.lua HTTP_PORT HTTPS_PORT CA_FILE [FANOUT]
-- prints a markdown table.
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;./build/bench/?.so;" .. package.cpath
local socket = require("socket")
local empirical = require("empirical")
local cjson = require("cjson")
local floor_lua = require("floor_lua")

local HTTP_PORT, HTTPS_PORT, CA = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local FANOUT = tonumber(arg[4]) or 10
local DELAY_MS, WARM = 20, 10
local RTT = 2 * DELAY_MS / 1000
local TOKEN = "bench-token"

local function start_proxy(port)
  local pipe = assert(io.popen(("exec lua5.4 bench/delay_proxy.lua %d %d"):format(port, DELAY_MS), "r"))
  local line = pipe:read("*l")
  local listen, control = line:match("(%d+) (%d+)")
  return { pipe = pipe, port = tonumber(listen), control = tonumber(control) }
end

local function ask(proxy, line)
  local c = assert(socket.connect("127.0.0.1", proxy.control))
  c:send(line .. "\n")
  local answer = c:receive("*l")
  c:close()
  return answer
end

local function stats(proxy)
  local conns, flights = ask(proxy, "stats"):match("(%d+) (%d+)")
  return tonumber(conns), tonumber(flights)
end

local rows = {}
-- Time fn (which makes `calls` calls) and read the proxy's counters.
local function measure(proxy, scheme, what, calls, fn)
  stats(proxy)                                  -- zero the counters
  local t0 = socket.gettime()
  fn()
  local elapsed = socket.gettime() - t0
  local conns, flights = stats(proxy)
  rows[#rows + 1] = ("| %s | %s | %.0f ms | %.1f | %d | %d |"):format(
    scheme, what, elapsed / calls * 1000, elapsed / calls / RTT, conns, flights)
end

local ids = {}
for i = 1, FANOUT do ids[i] = i end

for _, scheme in ipairs { { "HTTPS", HTTPS_PORT, CA }, { "HTTP", HTTP_PORT } } do
  local name, port, ca = scheme[1], scheme[2], scheme[3]
  local proxy = start_proxy(port)
  local base = ("%s://127.0.0.1:%d"):format(name:lower(), proxy.port)
  local c = assert(empirical.new { token = TOKEN, base_url = base, ca_file = ca })
  measure(proxy, name, "cold `client:get` (new client)", 1, function() assert(c:get(1)) end)
  measure(proxy, name, ("warm `client:get`, each of %d"):format(WARM), WARM,
          function() for _ = 1, WARM do assert(c:get(1)) end end)
  measure(proxy, name, "`client:trigger` on a warm client (a new connection by design)", 1,
          function() assert(c:trigger { environment = "staging" }) end)
  c:close()
  local f = assert(empirical.new { token = TOKEN, base_url = base, ca_file = ca })
  measure(proxy, name, ("cold fan-out: `get_all` of %d (new client)"):format(FANOUT), 1, function()
    local details = f:get_all(ids)
    for i = 1, FANOUT do assert(details[i]) end
  end)
  measure(proxy, name, ("warm fan-out: `get_all` of %d again"):format(FANOUT), 1, function()
    local details = f:get_all(ids)
    for i = 1, FANOUT do assert(details[i]) end
  end)
  f:close()
  socket.sleep(0.2)   -- the closed connections' last words reach the proxy before the next count
  local floor = floor_lua.new(TOKEN, ca)
  local url = base .. "/api/test-runs/1"
  measure(proxy, name, "the fair floor: cold get", 1, function() cjson.decode((floor:get(url))) end)
  measure(proxy, name, ("the fair floor: warm get, each of %d"):format(WARM), WARM,
          function() for _ = 1, WARM do cjson.decode((floor:get(url))) end end)
  floor = nil   -- luacheck: ignore
  collectgarbage()
  ask(proxy, "quit")
  proxy.pipe:close()
end

print(("Emulated network: %d ms each way (a round trip is %d ms), a proxy on loopback.\n"):format(DELAY_MS, 2 * DELAY_MS))
print("| scheme | call | time a call | in round trips | connections opened | round trips, all connections |")
print("|---|---|---|---|---|---|")
for _, r in ipairs(rows) do print(r) end
