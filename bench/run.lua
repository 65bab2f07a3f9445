-- `make bench`: the figures of bench/README.md, measured in one run against
-- a local nginx-light (config and certificate written here, at run time) and
-- printed as a table of ratios. Absolute times on a shared machine drift;
-- ratios measured side by side hold. Each figure is the median of RUNS runs.
--
--   lua5.4 bench/run.lua [--quick]
package.path = "./bench/?.lua;./spec/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath

local empirical = require("empirical")
local core = require("empirical.core")
local cjson = require("cjson")

local QUICK = arg[1] == "--quick"
local RUNS = QUICK and 1 or 5
local N = QUICK and 1000 or 10000          -- sequential gets per run
local N_PROCESS = QUICK and 50 or 200      -- one curl process per request: fewer, per-request time compared
local N_LUASEC = QUICK and 100 or 500
local N_LUASOCKET = QUICK and 500 or 2000
local N_ENCODE = QUICK and 10000 or 100000
local N_LONG = QUICK and 10000 or 100000   -- gets for the memory figure
local TOKEN = "bench-token"

local function sh(command)
  local ok = os.execute(command)
  if not ok then error("bench: failed: " .. command) end
end

local function read(command)
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out
end

local function median(list)
  table.sort(list)
  local n = #list
  return n % 2 == 1 and list[(n + 1) / 2] or (list[n / 2] + list[n / 2 + 1]) / 2
end

local function time(fn)
  collectgarbage()
  local t0 = core.now()
  fn()
  return core.now() - t0
end

local function measure(fn)
  local times = {}
  for i = 1, RUNS do times[i] = time(fn) end
  return median(times)
end

-- Run a and b alternately, RUNS times each, so that drift on a shared
-- machine hits both alike. Returns the median time of each and the median
-- of the paired ratios a/b.
local function compare(a, b)
  local ta, tb, ratios = {}, {}, {}
  for i = 1, RUNS do
    ta[i], tb[i] = time(a), time(b)
    ratios[i] = ta[i] / tb[i]
  end
  return median(ta), median(tb), median(ratios)
end

local bodies = require("bodies")
local SMALL_DETAIL, CREATED = bodies.detail(6), bodies.CREATED

-- nginx ---------------------------------------------------------------------------

local dir = os.tmpname()
os.remove(dir)
sh("mkdir -p " .. dir)

local free_port = require("helper").free_port   -- spec/helper.lua
local HTTP_PORT, HTTPS_PORT = free_port(), free_port()
local CA = dir .. "/cert.pem"
sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
    .. "-keyout %s/key.pem -out %s >/dev/null 2>&1"):format(dir, CA))

local conf = ([[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
error_log %s/error.log warn;
pid %s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  default_type application/json;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  server {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s/key.pem;
    location = /api/test-runs { return 200 '%s'; }
    location ~ ^/api/test-runs/\d+/re-run$ { return 200 '%s'; }
    location ~ ^/api/test-runs/\d+$ { return 200 '%s'; }
    location ~ ^/slow/api/test-runs/\d+$ { echo_sleep 0.05; echo -n '%s'; }
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, HTTP_PORT, HTTPS_PORT, CA, dir, CREATED, CREATED, SMALL_DETAIL, SMALL_DETAIL)
local f = assert(io.open(dir .. "/nginx.conf", "w"))
f:write(conf)
f:close()
sh(("nginx -p %s -c %s/nginx.conf"):format(dir, dir))
local function stop_nginx()
  os.execute(("nginx -p %s -c %s/nginx.conf -s stop 2>/dev/null; rm -rf %s"):format(dir, dir, dir))
end

local HTTP = ("http://127.0.0.1:%d"):format(HTTP_PORT)
local HTTPS = ("https://127.0.0.1:%d"):format(HTTPS_PORT)
local FLOOR = "build/bench/floor"

local rows = {}
local function row(figure, against, ratio, target, ok, note)
  rows[#rows + 1] = { figure, against, ratio, target, ok and "met" or "**missed**", note or "" }
  io.stderr:write(("  %-58s %s\n"):format(figure .. " vs " .. against, ratio))
end

local function client(base, options)
  local opts = { token = TOKEN, base_url = base, ca_file = base:match("^https") and CA or nil }
  for k, v in pairs(options or {}) do opts[k] = v end
  return assert(empirical.new(opts))
end

local ok_run, err_run = pcall(function()
  -- 1-4: sequential gets ----------------------------------------------------------
  for _, scheme in ipairs { { "HTTPS", HTTPS }, { "HTTP", HTTP } } do
    local name, base = scheme[1], scheme[2]
    local c = client(base)
    assert(c:get(1))
    local function gets() for _ = 1, N do assert(c:get(1)) end end
    local ours, floor, ratio = compare(gets, function()
      tonumber(read(("%s %s/api/test-runs/1 %d %s"):format(FLOOR, base, N, CA)))
    end)
    row(("%d sequential client:get, %s"):format(N, name), "C + libcurl, one reused handle (the floor)",
        ("%.2fx the floor's time"):format(ratio), "at most 1.15x", ratio <= 1.15,
        ("%.1f vs %.1f us a request"):format(ours / N * 1e6, floor / N * 1e6))
    if name == "HTTPS" then
      local per_process = measure(function()
        sh(("for i in $(seq %d); do curl -s --cacert %s -H 'Authorization: Bearer %s' %s/api/test-runs/1 -o /dev/null; done")
          :format(N_PROCESS, CA, TOKEN, base))
      end) / N_PROCESS
      row("the same, HTTPS", ("one curl process per request (%d timed)"):format(N_PROCESS),
          ("%.0fx faster"):format(per_process / (ours / N)), "at least 20x", per_process / (ours / N) >= 20)
      -- The Lua alternatives also decode the answer: a script must, to use it.
      local https, ltn12 = require("ssl.https"), require("ltn12")
      local per_luasec = measure(function()
        for _ = 1, N_LUASEC do
          local chunks = {}
          local _, status = https.request { url = base .. "/api/test-runs/1", headers = { authorization = "Bearer " .. TOKEN },
                                            cafile = CA, verify = "peer", protocol = "any", sink = ltn12.sink.table(chunks) }
          assert(status == 200, tostring(status))
          cjson.decode(table.concat(chunks))
        end
      end) / N_LUASEC
      row("the same, HTTPS", ("luasec ssl.https + cjson.decode (%d timed)"):format(N_LUASEC),
          ("%.0fx faster"):format(per_luasec / (ours / N)), "at least 20x", per_luasec / (ours / N) >= 20)
    else
      local http, ltn12 = require("socket.http"), require("ltn12")
      local _, _, ratio_luasocket = compare(gets, function()
        for _ = 1, N_LUASOCKET do
          local chunks = {}
          local _, status = http.request { url = base .. "/api/test-runs/1", headers = { authorization = "Bearer " .. TOKEN },
                                           sink = ltn12.sink.table(chunks) }
          assert(status == 200, tostring(status))
          cjson.decode(table.concat(chunks))
        end
      end)
      local faster = N / N_LUASOCKET / ratio_luasocket   -- per-request time, theirs over ours
      row("the same, HTTP", ("luasocket socket.http + cjson.decode (%d timed)"):format(N_LUASOCKET),
          ("%.2fx faster"):format(faster), "at least 1.25x", faster >= 1.25)
    end
    c:close()
  end

  -- 5: decode a 2 MB detail ----------------------------------------------------------
  local big = bodies.detail(10000)
  local _, _, ratio = compare(function() assert(empirical.decode("get", 200, big, "application/json")) end,
                             function() cjson.decode(big) end)
  local peak = tonumber(read(("lua5.4 bench/peak.lua %d"):format(10000)))
  row(("decode a run detail of 10,000 items (%.1f MB)"):format(#big / 1e6), "plain cjson.decode",
      ("%.2fx; peak %.1fx the body"):format(ratio, peak / #big), "at most 1.3x; at most 3x",
      ratio <= 1.3 and peak / #big <= 3)

  -- 6: validate + encode 100,000 trigger tables ---------------------------------------
  local tables = {}
  for i = 1, 100 do
    tables[i] = {
      environment = "staging", total_shards = 4, tags = { "@smoke", "@checkout" },
      build = { url = "https://staging.example.com", branch = "main", commit = ("%040x"):format(i), version = "1.8." .. i },
      metadata = { pipeline = 4127 + i, deployed_by = "ci" },
      environment_variables_overrides = { { name = "FEATURE_FLAGS", value = "new-checkout" }, { name = "REGION", value = "eu" } },
    }
  end
  local encode = empirical.encode
  _, _, ratio = compare(function() for i = 1, N_ENCODE do assert(encode("trigger", tables[i % 100 + 1])) end end,
                        function() for i = 1, N_ENCODE do cjson.encode(tables[i % 100 + 1]) end end)
  row(("validate + encode %d full trigger tables"):format(N_ENCODE), "plain cjson.encode",
      ("%.2fx"):format(ratio), "at most 1.5x", ratio <= 1.5)

  -- 7: 100 concurrent gets, each answered after 50 ms ---------------------------------
  local c = client(HTTPS .. "/slow")
  assert(c:get(1))
  local one = measure(function() assert(c:get(1)) end)
  local ids = {}
  for i = 1, 100 do ids[i] = 1 end
  local all = measure(function()
    local details = c:get_all(ids)
    for i = 1, 100 do assert(details[i]) end
  end)
  c:close()
  row("100 concurrent gets, each answered after 50 ms (HTTPS)", "one get",
      ("%.2fx one get's time"):format(all / one), "at most 3x", all / one <= 3,
      ("%.0f ms vs %.0f ms"):format(all * 1000, one * 1000))

  -- 8: memory over 100,000 gets ---------------------------------------------------------
  local out = read(("lua5.4 bench/rss.lua %s %d %s"):format(HTTPS, N_LONG, CA))
  local first, last = out:match("(%d+)%s+(%d+)")
  local growth = (tonumber(last) - tonumber(first))
  row(("%d gets on one client (HTTPS)"):format(N_LONG), "its own first 1,000",
      ("RSS %+d KiB"):format(growth), "grows less than 1 MiB", growth < 1024)

  -- 9: instructions per request (callgrind) ------------------------------------------------
  if not QUICK and read("command -v valgrind") ~= "" then
    local function instructions(command)
      local text = read(("valgrind --tool=callgrind --callgrind-out-file=/dev/null %s 2>&1 >/dev/null"):format(command))
      return tonumber((text:match("Collected : (%d+)")))
    end
    local n1, n2 = 200, 1200
    local function per_request(make)
      return (instructions(make(n2)) - instructions(make(n1))) / (n2 - n1)
    end
    local ours_ir = per_request(function(n) return ("lua5.4 bench/gets.lua %s %d"):format(HTTP, n) end)
    local floor_ir = per_request(function(n) return ("%s %s/api/test-runs/1 %d"):format(FLOOR, HTTP, n) end)
    local decode_ir = per_request(function(n) return ("lua5.4 bench/decode_small.lua %d"):format(n) end)
    row("instructions per get, HTTP (callgrind)", "the C floor",
        ("%.2fx (%.0fk vs %.0fk)"):format(ours_ir / floor_ir, ours_ir / 1000, floor_ir / 1000), "reported", true,
        ("of ours, plain cjson.decode of the body alone is %.0fk; each the difference of two run lengths")
          :format(decode_ir / 1000))
  end
end)
stop_nginx()
if not ok_run then error(err_run, 0) end

print(("| figure | against | measured | target | |\n|---|---|---|---|---|"))
for _, r in ipairs(rows) do
  print(("| %s | %s | %s%s | %s | %s |"):format(r[1], r[2], r[3], r[6] ~= "" and (" (" .. r[6] .. ")") or "", r[4], r[5]))
end
