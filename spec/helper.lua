-- Shared by the specs: a fake API per file, clients for it, and a way to
-- run the example scripts as a CI job would.
local fake = require("empirical.fake")

local M = {}

function M.start_fake(options)
  return assert(fake.spawn(options))
end

-- A client for the fake, with retries fast enough for specs.
function M.client(f, options)
  local empirical = require("empirical")
  local opts = { token = f.token, base_url = f.url }
  for k, v in pairs(options or {}) do opts[k] = v end
  return assert(empirical.new(opts))
end

function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a command with extra environment variables (false unsets one);
-- returns exit code, stdout, stderr.
function M.run(argv, env)
  local err_file = os.tmpname()
  local unset, set = {}, {}
  for name, value in pairs(env or {}) do
    if value == false then unset[#unset + 1] = "-u " .. name
    else set[#set + 1] = name .. "=" .. M.shell_quote(value) end
  end
  local parts = { "env", table.concat(unset, " "), table.concat(set, " ") }
  for _, a in ipairs(argv) do parts[#parts + 1] = M.shell_quote(a) end
  local pipe = assert(io.popen(table.concat(parts, " ") .. " 2>" .. err_file, "r"))
  local out = pipe:read("a")
  local _, _, code = pipe:close()
  local f = assert(io.open(err_file, "r"))
  local err = f:read("a")
  f:close()
  os.remove(err_file)
  return code, out, err
end

-- The requests in a fake's log with this method.
function M.count(log, method)
  local n = 0
  for _, r in ipairs(log) do if r.method == method then n = n + 1 end end
  return n
end

return M
