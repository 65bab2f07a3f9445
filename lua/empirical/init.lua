--- empirical: trigger, re-run and read Empirical end-to-end test runs.
--
-- The C core (empirical.core) validates, marshals and sends; this layer
-- fills defaults from the environment and gives the client its methods.
-- Every failure is `nil, err`; err.kind is one of "invalid", "config",
-- "transport", "http", "decode", "timeout".
local core = require("empirical.core")

local getmetatable, setmetatable, type, next, error, tostring = getmetatable, setmetatable, type, next, error, tostring
local getenv = os.getenv

local M = {}

M.VERSION = core.VERSION
M.DEFAULT_BASE_URL = "https://api.empirical.run"

local Client = {}
Client.__index = Client
Client.__name = "empirical.client"

local function check_self(self, method)
  if getmetatable(self) ~= Client then
    error(("empirical: call client:%s(...) with a colon"):format(method), 3)
  end
end

local function fail(kind, field, text)
  return nil, core.error(kind, field .. ": " .. text, { field = field })
end

--- Create a client. See the README for the options and their defaults.
function M.new(options)
  if options == nil then options = {} end
  if type(options) ~= "table" then
    return fail("config", "options", "expected a table, got " .. type(options))
  end
  local opts = {}
  for k, v in next, options do opts[k] = v end
  if opts.token == nil then opts.token = getenv("EMPIRICALRUN_KEY") end
  if opts.token == nil then
    return fail("config", "token", "no token given and EMPIRICALRUN_KEY is not set")
  end
  if opts.base_url == nil then opts.base_url = getenv("EMPIRICALRUN_API_URL") or M.DEFAULT_BASE_URL end
  local handle, err = core.client(opts)
  if not handle then return nil, err end
  return setmetatable({ _core = handle }, Client)
end

--- Trigger a run: PUT /api/test-runs. Returns data.test_run {id, state, test_run_branch, created_at}.
function Client:trigger(params)
  check_self(self, "trigger")
  return self._core:call("trigger", params)
end

--- Re-run a run: POST /api/test-runs/{id}/re-run. opts: only_failed, send_notifications.
function Client:rerun(id, opts)
  check_self(self, "rerun")
  local params = { id = id }
  if opts ~= nil then
    if type(opts) ~= "table" then return fail("invalid", "opts", "expected a table, got " .. type(opts)) end
    for k, v in next, opts do
      if k == "id" then return fail("invalid", "opts.id", "pass the run id as the first argument") end
      params[k] = v
    end
  end
  return self._core:call("rerun", params)
end

--- Read a run: GET /api/test-runs/{id}. Returns data.test_run {project, testRun, flattenedSummaryDetails}.
function Client:get(id)
  check_self(self, "get")
  return self._core:call("get", { id = id })
end

--- Release the connection. Also done by the garbage collector, and by `local c <close>` on 5.4.
function Client:close()
  check_self(self, "close")
  self._core:close()
end

Client.__close = Client.close

function Client:__tostring()
  return tostring(self._core)
end

--- Validate and marshal without I/O: {method=, path=, body=?} or nil, err.
-- opts.strict = false lets unknown top-level fields through.
function M.encode(op, params, opts)
  return core.encode(op, params, not (type(opts) == "table" and opts.strict == false))
end

local function header(headers, name)
  if type(headers) ~= "table" then return nil end
  local value = headers[name]
  if value == nil then
    for k, v in next, headers do
      if type(k) == "string" and k:lower() == name then value = v break end
    end
  end
  if type(value) == "table" then value = value[1] end
  return value
end

--- Decode a response you fetched yourself: the same result or nil, err as
-- the client's methods. headers (optional) is a table of response headers,
-- or the Content-Type string.
function M.decode(op, status, body, headers)
  local content_type, location
  if type(headers) == "string" then
    content_type = headers
  else
    content_type, location = header(headers, "content-type"), header(headers, "location")
  end
  return core.decode(op, status, body, content_type, location)
end

--- Make an error object like the module's own: core.error(kind, message, fields).
M.error = core.error

return M
