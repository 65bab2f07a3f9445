-- Shared by the specs: a fake API per file, and small assertions.
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

return M
