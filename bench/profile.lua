-- Where a get's instructions go, ours beside the fair floor: callgrind's
-- inclusive counts of the C core's functions (and libcurl's entry points),
-- per get, the difference of two run lengths.
--
--   lua5.4 bench/profile.lua HTTP_BASE HTTPS_BASE CA     prints a markdown table
package.path = "./bench/?.lua;" .. package.path
local util = require("util")

local N1, N2 = 200, 1200

-- The parts, as callgrind names the functions (optimised builds add suffixes).
local PARTS = {
  { "ours", "emp_request_call", "client:get in C: all below" },
  { "ours", "emp_request_start", "start: validate the id, build the request, set its libcurl options" },
  { "ours", "emp_marshal", "… of which the params' validation and the path" },
  { "ours", "emp_client_drive", "libcurl: the transfer (multi interface)" },
  { "ours", "emp_decode", "decode: all below" },
  { "ours", "emp_json_decode", "… `cjson.decode`" },
  { "ours", "normalize", "… the walk: nulls out, whole numbers to integers" },
  { "ours", "check_object", "… the response's schema check" },
  { "ours", "emp_utf8_valid", "… the UTF-8 check" },
  { "fair", "floor_get", "the fair floor's get (libcurl easy interface, body to a Lua string)" },
  { "fair", "curl_easy_perform", "… of which libcurl" },
}

local function inclusive(mode, n, base, ca)
  local out = os.tmpname()
  util.read(("valgrind --tool=callgrind --callgrind-out-file=%s lua5.4 bench/perget.lua %s %s %d %s 2>&1")
              :format(out, mode, base, n, ca or ""))
  local text = util.read("callgrind_annotate --inclusive=yes --threshold=100 " .. out .. " 2>/dev/null")
  os.remove(out)
  local costs = {}
  for line in text:gmatch("[^\n]+") do
    local count, name = line:match("^%s*([%d,]+)%s+%(%s*[%d.]+%%%)%s+%S-:([%w_]+)")
    if count and not line:find("'%d") then
      name = name:gsub("%.isra%.%d+$", ""):gsub("%.part%.%d+.*$", "")
      count = tonumber((count:gsub(",", "")))
      costs[name] = math.max(costs[name] or 0, count)
    end
    local total = line:match("^%s*([%d,]+)%s+%(100%.0+%%%)%s+PROGRAM TOTALS")
    if total then costs.TOTAL = tonumber((total:gsub(",", ""))) end
  end
  return costs
end

local function profile(base, ca)
  local per = {}
  for _, mode in ipairs { "ours", "fair" } do
    local a, b = inclusive(mode, N1, base, ca), inclusive(mode, N2, base, ca)
    per[mode] = {}
    for name, v in pairs(b) do per[mode][name] = (v - (a[name] or 0)) / (N2 - N1) end
  end
  return per
end

-- How many values the walk visits in the detail nginx serves: every member
-- of every object and every item of every array.
local function count_values(t)
  local n = 0
  for _, v in pairs(t) do
    n = n + 1
    if type(v) == "table" then n = n + count_values(v) end
  end
  return n
end
local VALUES = count_values(require("cjson").decode(require("bodies").detail(6)))

local http, https = profile(arg[1]), profile(arg[2], arg[3])
local function row(label, a, b)
  print(("| %s | %.1fk | %.1fk |"):format(label, a / 1000, b / 1000))
end
print("| part of one get of the 6-item detail | HTTP | HTTPS |")
print("|---|---|---|")
row("ours, the whole get (the Lua call included)", http.ours.TOTAL, https.ours.TOTAL)
for _, p in ipairs(PARTS) do
  local a, b = http[p[1]][p[2]], https[p[1]][p[2]]
  if a and b then row(("%s (`%s`)"):format(p[3], p[2]), a, b) end
end
row("the fair floor's `cjson.decode` and its Lua loop", http.fair.TOTAL - http.fair.floor_get,
    https.fair.TOTAL - https.fair.floor_get)
row("the fair floor, the whole get", http.fair.TOTAL, https.fair.TOTAL)
row("ours over the fair floor", http.ours.TOTAL - http.fair.TOTAL, https.ours.TOTAL - https.fair.TOTAL)
row("the allowance at 1.10x (a tenth of the fair floor)", http.fair.TOTAL / 10, https.fair.TOTAL / 10)
row("libcurl: ours beyond the floor's (`emp_client_drive` - `curl_easy_perform`)",
    http.ours.emp_client_drive - http.fair.curl_easy_perform, https.ours.emp_client_drive - https.fair.curl_easy_perform)
print(("| the walk, per value visited (%d values in the detail) | %.0f | %.0f |")
        :format(VALUES, http.ours.normalize / VALUES, https.ours.normalize / VALUES))
