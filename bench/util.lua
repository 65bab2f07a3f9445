-- Small helpers the benchmark scripts share: shell, timing, medians.
local M = {}

local now = require("socket").gettime

function M.sh(command)
  local ok = os.execute(command)
  if not ok then error("bench: failed: " .. command, 2) end
end

function M.read(command)
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out
end

function M.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

function M.max(list)
  local m = list[1]
  for _, v in ipairs(list) do if v > m then m = v end end
  return m
end

function M.time(fn)
  collectgarbage()
  local t0 = now()
  fn()
  return now() - t0
end

--- Run a and b alternately `runs` times each, so that drift on a shared
-- machine hits both alike: median time of each, median of the paired ratios a/b.
function M.compare(a, b, runs)
  local ta, tb, ratios = {}, {}, {}
  for i = 1, runs do
    ta[i], tb[i] = M.time(a), M.time(b)
    ratios[i] = ta[i] / tb[i]
  end
  return M.median(ta), M.median(tb), M.median(ratios)
end

--- Instructions valgrind's callgrind counts for a command (its whole run).
function M.instructions(command)
  local text = M.read(("valgrind --tool=callgrind --callgrind-out-file=/dev/null %s 2>&1 >/dev/null"):format(command))
  return tonumber((text:match("Collected : (%d+)"))) or error("bench: callgrind failed for " .. command .. "\n" .. text)
end

--- Instructions per iteration: the difference of two run lengths, so that
-- start-up, connection set-up and exit cancel out. make(n) is the command.
function M.per_iteration(make, n1, n2)
  return (M.instructions(make(n2)) - M.instructions(make(n1))) / (n2 - n1)
end

return M
