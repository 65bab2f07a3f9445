--- The handlers of examples/openresty/nginx.conf: empirical.encode builds
-- each request, ngx.location.capture sends it through the internal proxy
-- location (the worker keeps serving meanwhile), empirical.decode reads it.
local empirical = require("empirical")
local cjson = require("cjson.safe")

local ngx = ngx
local M = {}

local METHODS = { GET = ngx.HTTP_GET, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST }

-- The same result, or nil, err, as client:<op>(...) would give.
local function call(op, params)
  local req, err = empirical.encode(op, params)
  if not req then return nil, err end
  local res = ngx.location.capture("/_empirical" .. req.path, { method = METHODS[req.method], body = req.body })
  return empirical.decode(op, res.status, res.body, res.header)
end

local STATUS_OF_KIND = { invalid = 400, config = 500, http = 502, transport = 502, decode = 502, timeout = 504 }

local function reply(status, value)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(value))
end

local function reply_result(result, err, shape)
  if not result then
    local status = STATUS_OF_KIND[err.kind] or 500
    if err.kind == "http" and err.status and err.status < 500 then status = err.status end
    return reply(status, { error = { kind = err.kind, field = err.field, message = err.message } })
  end
  return reply(200, shape(result))
end

local function body_table()
  ngx.req.read_body()
  local value = cjson.decode(ngx.req.get_body_data() or "{}")
  if type(value) ~= "table" then return nil end
  return value
end

local function run_shape(run)
  return { id = run.id, state = run.state }
end

--- POST /release/trigger with a trigger as JSON.
function M.trigger()
  local params = body_table()
  if not params then return reply(400, { error = { kind = "invalid", message = "the body must be a JSON object" } }) end
  local run, err = call("trigger", params)
  reply_result(run, err, run_shape)
end

--- POST /release/{id}/rerun with {only_failed=, send_notifications=} as JSON.
function M.rerun(id)
  local params = body_table() or {}
  params.id = tonumber(id)
  local run, err = call("rerun", params)
  reply_result(run, err, run_shape)
end

--- GET /release/{id}: the run's state, verdict and summary.
function M.get(id)
  local detail, err = call("get", { id = tonumber(id) })
  reply_result(detail, err, function(d)
    return { id = d.testRun.id, state = d.testRun.state, verdict = empirical.verdict(d),
             summary = empirical.summary(d), failed_tests = empirical.failed_tests(d) }
  end)
end

return M
