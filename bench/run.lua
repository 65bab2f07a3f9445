-- `make bench`: the figures of bench/README.md, measured in one run against
-- a local nginx-light and printed as markdown tables. The reference for a
-- get is the fair floor (bench/floor_lua.c: one reused libcurl handle driven
-- from Lua, then cjson.decode). Instructions (callgrind) are the steady
-- figure; wall time is the noisy one: ours and the floor alternate block by
-- block and the median of the paired ratios is reported, once as the
-- scheduler places the processes and once with client and server pinned to
-- one CPU.
--
--   lua5.4 bench/run.lua [--quick]
package.path = "./bench/?.lua;./spec/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;./build/bench/?.so;" .. package.cpath

local empirical = require("empirical")
local cjson = require("cjson")
local util = require("util")
local bodies = require("bodies")

local QUICK = arg[1] == "--quick"
local RUNS = QUICK and 3 or 5
local N_WALL = QUICK and 500 or 3000       -- gets per block in the paired wall figure
local CG = QUICK and { 20, 120 } or { 200, 1200 }   -- callgrind: two run lengths, per get = the difference
local N_PROCESS = QUICK and 30 or 200
local N_LUASEC = QUICK and 50 or 300
local N_LUASOCKET = QUICK and 300 or 2000
local N_ENCODE = QUICK and 10000 or 100000
local N_LONG = QUICK and 10000 or 100000
local N_SEQ = QUICK and 1000 or 5000        -- sequential gets the alternatives are compared with
local TOKEN = "bench-token"
local LUA = "lua5.4"
local FLOOR = "build/bench/floor"

local function log(...) io.stderr:write(string.format(...), "\n") end
local function title(text) print("\n### " .. text .. "\n") end

local DETAIL, SMALL, BIG = bodies.detail(6), bodies.detail(0), bodies.detail(10000)
local ngx = require("nginx").start { created = bodies.CREATED, detail = DETAIL, small = SMALL, big = BIG }
local CA = ngx.ca

local function client(base)
  return assert(empirical.new { token = TOKEN, base_url = base, ca_file = base:match("^https") and CA or nil })
end

local function ca_arg(base) return base:match("^https") and CA or "" end

local function per_get()
  title("A get against the fair floor")
  print("The fair floor: one reused libcurl easy handle driven from Lua, the body returned as a Lua string, then")
  print("`cjson.decode`. Instructions: callgrind, per get, the difference of two run lengths. Wall: the median of")
  print(("the paired ratios of %d blocks of %d gets each side, alternating (in brackets each side's median time a get);")
          :format(RUNS, N_WALL))
  print("pinned: client and nginx on CPU 0 (taskset).\n")
  print("| body | scheme | ours, instructions | fair floor | **ratio** | raw C floor (no decode) | wall ratio"
        .. " | wall ratio, pinned |")
  print("|---|---|---|---|---|---|---|---|")
  local all_cpus = "0-" .. (tonumber(util.read("nproc")) - 1)
  local cases = { { "run detail, 6 items (" .. #DETAIL .. " B)", "" } }
  if not QUICK then cases[2] = { "run detail, no items (" .. #SMALL .. " B)", "/small" } end
  for _, case in ipairs(cases) do
    for _, scheme in ipairs { { "HTTP", ngx.http }, { "HTTPS", ngx.https } } do
      local base = scheme[2] .. case[2]
      local ca = ca_arg(base)
      log("per get: %s %s", case[1], scheme[1])
      local function perget(mode, n) return ("%s bench/perget.lua %s %s %d %s"):format(LUA, mode, base, n, ca) end
      local ours = util.per_iteration(function(n) return perget("ours", n) end, CG[1], CG[2])
      local fair = util.per_iteration(function(n) return perget("fair", n) end, CG[1], CG[2])
      local raw = QUICK and 0 or util.per_iteration(function(n)
        return ("%s %s/api/test-runs/1 %d %s"):format(FLOOR, base, n, ca) end, CG[1], CG[2])
      local compare = ("bench/perget.lua compare %s %d %d %s"):format(base, N_WALL, RUNS, ca)
      local wall = util.read(LUA .. " " .. compare)
      ngx.pin("0")
      local pinned = util.read("taskset -c 0 " .. LUA .. " " .. compare)
      ngx.pin(all_cpus)
      local w_ours, w_fair, w_ratio = wall:match("(%S+) (%S+) (%S+)")
      local p_ours, p_fair, p_ratio = pinned:match("(%S+) (%S+) (%S+)")
      print(("| %s | %s | %.1fk | %.1fk | **%.2fx** | %s | %.2fx (%.0f vs %.0f µs) | %.2fx (%.0f vs %.0f µs) |"):format(
        case[1], scheme[1], ours / 1000, fair / 1000, ours / fair, QUICK and "-" or ("%.1fk"):format(raw / 1000),
        w_ratio, w_ours, w_fair, p_ratio, p_ours, p_fair))
    end
  end
end

-- The Lua alternatives decode what they fetch, as a script must.
local function alternatives()
  title("Other clients, sequential gets of the 6-item detail")
  local https, http, ltn12, socket = require("ssl.https"), require("socket.http"), require("ltn12"), require("socket")
  local rows = {}
  local function ours_per_get(base)
    local c = client(base)
    assert(c:get(1))
    local t = util.time(function() for _ = 1, N_SEQ do assert(c:get(1)) end end) / N_SEQ
    c:close()
    return t
  end
  local function sink_get(run, request)
    local chunks = {}
    request.sink = ltn12.sink.table(chunks)
    request.headers = { authorization = "Bearer " .. TOKEN }
    local _, status = assert(run(request))
    assert(status == 200, tostring(status))
    cjson.decode(table.concat(chunks))
  end
  local url_s, url = ngx.https .. "/api/test-runs/1", ngx.http .. "/api/test-runs/1"
  local ours_s, ours = ours_per_get(ngx.https), ours_per_get(ngx.http)
  local per_process = util.time(function()
    util.sh(("for i in $(seq %d); do curl -s --cacert %s -H 'Authorization: Bearer %s' %s -o /dev/null; done")
              :format(N_PROCESS, CA, TOKEN, url_s))
  end) / N_PROCESS
  rows[#rows + 1] = { "HTTPS", ("one `curl` process per request (%d)"):format(N_PROCESS), per_process, ours_s }
  local luasec = util.time(function()
    for _ = 1, N_LUASEC do
      sink_get(https.request, { url = url_s, cafile = CA, verify = "peer", protocol = "any" })
    end
  end) / N_LUASEC
  rows[#rows + 1] = { "HTTPS", ("luasec `ssl.https.request` as a script writes it (%d)"):format(N_LUASEC), luasec, ours_s }
  -- socket.http writes the request line and the headers separately; with
  -- Nagle on, the second write waits for a delayed ACK (40 ms). A socket
  -- made with its descriptor at once (tcp4) takes TCP_NODELAY before connect.
  local make = https.tcp { cafile = CA, verify = "peer", protocol = "any" }
  local function create()
    local conn = make()
    conn.sock = socket.tcp4()
    assert(conn.sock:setoption("tcp-nodelay", true))
    return conn
  end
  local luasec_fair = util.time(function()
    for _ = 1, N_LUASEC do sink_get(http.request, { url = url_s, create = create }) end
  end) / N_LUASEC
  rows[#rows + 1] = { "HTTPS", ("luasec with TCP_NODELAY, TLS 1.3 (%d)"):format(N_LUASEC), luasec_fair, ours_s }
  local luasocket = util.time(function()
    for _ = 1, N_LUASOCKET do sink_get(http.request, { url = url }) end
  end) / N_LUASOCKET
  rows[#rows + 1] = { "HTTP", ("luasocket `socket.http.request` (%d)"):format(N_LUASOCKET), luasocket, ours }
  print("Each Lua alternative opens a connection per request (socket.http has no keep-alive); ours reuses one.\n")
  print("| scheme | alternative (requests timed) | its time a get | ours | ours is faster by |")
  print("|---|---|---|---|---|")
  for _, r in ipairs(rows) do
    print(("| %s | %s | %.0f µs | %.0f µs | %.1fx |"):format(r[1], r[2], r[3] * 1e6, r[4] * 1e6, r[3] / r[4]))
  end
end

local function memory_and_more()
  title("Decode, memory, encode, concurrency")
  print("| figure | against | measured | target |")
  print("|---|---|---|---|")
  local _, _, ratio = util.compare(function() assert(empirical.decode("get", 200, BIG, "application/json")) end,
                                   function() cjson.decode(BIG) end, RUNS)
  print(("| decode a run detail of 10,000 items (%.1f MB), in memory | plain `cjson.decode` | %.2fx | at most 1.3x |")
          :format(#BIG / 1e6, ratio))
  -- Peak memory from a body read off the wire, each in a fresh process.
  local peaks = {}
  for _, mode in ipairs { "ours", "fair", "file" } do
    local where = mode == "file" and (ngx.dir .. "/static/api/test-runs/99") or ngx.https
    local list = {}
    for i = 1, (QUICK and 1 or 3) do
      list[i] = tonumber(util.read(("%s bench/peak.lua %s %s %s"):format(LUA, mode, where, mode == "file" and "" or CA)))
    end
    peaks[mode] = util.median(list) / #BIG
  end
  print(("| peak RSS of `client:get` of that detail over HTTPS, over the body's size | the fair floor's get + `cjson.decode` | "
         .. "%.1fx vs %.1fx (ratio %.2f); a file read + `cjson.decode`: %.1fx | no more than the floor |")
          :format(peaks.ours, peaks.fair, peaks.ours / peaks.fair, peaks.file))

  _, _, ratio = require("encode").compare(N_ENCODE, RUNS)   -- bench/encode.lua: the tables, the two sides
  print(("| validate + encode %d full trigger tables | plain `cjson.encode` | %.2fx | at most 1.5x |"):format(N_ENCODE, ratio))

  local c = client(ngx.https .. "/slow")
  assert(c:get(1))
  local times = {}
  for i = 1, RUNS do times[i] = util.time(function() assert(c:get(1)) end) end
  local one = util.median(times)
  local ids = {}
  for i = 1, 100 do ids[i] = 1 end
  for i = 1, RUNS do
    times[i] = util.time(function()
      local details = c:get_all(ids)
      for j = 1, 100 do assert(details[j]) end
    end)
  end
  local all = util.median(times)
  c:close()
  print(("| 100 concurrent gets, each answered after 50 ms (HTTPS) | one get | %.2fx one get's time (%.0f vs %.0f ms)"
         .. " | at most 3x |")
          :format(all / one, all * 1000, one * 1000))

  local out = util.read(("%s bench/rss.lua %s %d %s"):format(LUA, ngx.https, N_LONG, CA))
  local first, last = out:match("(%d+)%s+(%d+)")
  print(("| %d gets on one client (HTTPS) | its own first 1,000 | RSS %+d KiB | grows less than 1 MiB |")
          :format(N_LONG, tonumber(last) - tonumber(first)))
end

local function section(name, command)
  title(name)
  log("%s", name)
  local out = util.read(command)
  io.write(out)
  if out == "" then error("bench: no output from " .. command) end
end

local ok, err = pcall(function()
  print(("Latest `make bench%s`, %s, on %s."):format(QUICK and " BENCH_FLAGS=--quick" or "", os.date("!%Y-%m-%d"),
                                                    util.read("nproc"):match("%d+") .. " CPUs"))
  per_get()
  log("alternatives")
  alternatives()
  log("decode, memory, encode, concurrency")
  memory_and_more()
  if not QUICK then
    section("Where a get's instructions go (callgrind, inclusive)",
            ("%s bench/profile.lua %s %s %s"):format(LUA, ngx.http, ngx.https, CA))
  end
  section("Round trips over an emulated network",
          ("%s bench/rtt.lua %s %s %s"):format(LUA, ngx.http:match("%d+$"), ngx.https:match("%d+$"), CA))
end)
ngx.stop()
if not ok then error(err, 0) end
section("Verdict latency: progress-aware polling against a fixed 5 s poll",
        ("%s bench/latency.lua %s"):format(LUA, QUICK and "--quick" or ""))
section("Start-up", ("%s bench/startup.lua %s"):format(LUA, QUICK and "--quick" or ""))
