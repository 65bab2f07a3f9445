-- The encode row of bench/run.lua on its own: validate + encode N full
-- trigger tables against plain cjson.encode of the same tables, paired runs
-- (bench/util.lua's compare), the median ratio printed. Quick to rerun while
-- working on csrc/validate.c, marshal.c and json.c; also a callgrind target.
--
--   lua5.4 bench/encode.lua [N [RUNS]]          the ratio
--   lua5.4 bench/encode.lua N 0 ours|cjson      N encodes of one side only (for callgrind)
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath

local M = {}

--- The 100 tables bench/run.lua encodes: every kind of field a trigger takes.
function M.tables()
  local tables = {}
  for i = 1, 100 do
    tables[i] = {
      environment = "staging", total_shards = 4, tags = { "@smoke", "@checkout" },
      build = { url = "https://staging.example.com", branch = "main", commit = ("%040x"):format(i), version = "1.8." .. i },
      metadata = { pipeline = 4127 + i, deployed_by = "ci" },
      environment_variables_overrides = { { name = "FEATURE_FLAGS", value = "new-checkout" }, { name = "REGION", value = "eu" } },
    }
  end
  return tables
end

--- The two sides, each doing n encodes.
function M.sides(n)
  local encode = require("empirical").encode
  local cjson_encode = require("cjson").encode
  local tables = M.tables()
  local function ours() for i = 1, n do assert(encode("trigger", tables[i % 100 + 1])) end end
  local function plain() for i = 1, n do cjson_encode(tables[i % 100 + 1]) end end
  return ours, plain
end

--- Median time of each side and the median of the paired ratios ours/plain.
function M.compare(n, runs)
  local ours, plain = M.sides(n)
  return require("util").compare(ours, plain, runs)
end

if arg and arg[0] and arg[0]:match("encode%.lua$") then
  local n, runs = tonumber(arg[1]) or 100000, tonumber(arg[2]) or 7
  if runs == 0 then
    local ours, plain = M.sides(n)
    if arg[3] == "cjson" then plain() else ours() end
  else
    local a, b, ratio = M.compare(n, runs)
    print(("encode %d trigger tables: ours %.3f s, cjson.encode %.3f s, ratio %.2fx (median of %d paired runs)")
            :format(n, a, b, ratio, runs))
  end
end

return M
