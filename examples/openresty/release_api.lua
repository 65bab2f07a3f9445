--- The release service's handlers (nginx.conf.in). Each route answers one
-- method, to callers that send the service's token; empirical.encode builds
-- the API request, ngx.location.capture sends it through the internal proxy
-- location (the worker keeps serving meanwhile), empirical.decode reads it.
-- Every error answer says whether the request reached the API (`sent`) and
-- whether repeating it is safe (`retryable`).
local empirical = require("empirical")
local cjson = require("cjson.safe")
local bit = require("bit")

local ngx = ngx
local M = {}

local TOKEN_HEADER = "X-Release-Token"
local MIN_TOKEN_LENGTH = 16
local METHODS = { GET = ngx.HTTP_GET, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST }

-- Whether an op may be repeated after an ambiguous failure: the endpoint
-- rows (empirical.OPERATIONS, the one list) say.
local IDEMPOTENT = {}
for _, row in ipairs(empirical.OPERATIONS) do IDEMPOTENT[row.name] = row.idempotent end

local api_key, authorization, token_digest   -- set by M.init

-- A secret from nginx's environment (its `env` lines), or an error that stops nginx from starting.
local function secret(name, min_length)
  local value = os.getenv(name)
  if value == nil or value == "" then error(name .. " is not set in nginx's environment", 0) end
  if not value:match("^[\33-\126]+$") then error(name .. " must be printable ASCII without spaces", 0) end
  if #value < (min_length or 1) then
    error(("%s must be at least %d characters (e.g. openssl rand -hex 32)"):format(name, min_length), 0)
  end
  return value
end

--- init_by_lua: read and check both secrets once, before nginx accepts a request.
function M.init()
  api_key = secret("EMPIRICALRUN_KEY")
  authorization = "Bearer " .. api_key
  token_digest = ngx.sha1_bin(secret("EMPIRICAL_RELEASE_TOKEN", MIN_TOKEN_LENGTH))
end

--- set_by_lua in the internal location: the Authorization header for the API.
function M.authorization()
  return authorization
end

-- Numbers in an $upstream_* variable: one per address tried, "-" for none.
local function numbers(value)
  local list = {}
  for item in (value or ""):gmatch("[^,%s]+") do list[#list + 1] = tonumber(item) end
  return list
end

--- header_filter_by_lua in the internal location: whether an answer's
-- header came back and whether bytes of the request left for the API, for
-- the handler, through the table it gave ngx.location.capture as ctx.
-- nginx counts the bytes sent when it closes the connection: before its
-- own 502 or 504, but after an answer's header (which proves the sending).
function M.note_upstream()
  local sent = 0
  for _, n in ipairs(numbers(ngx.var.upstream_bytes_sent)) do sent = sent + n end
  ngx.ctx.answered = #numbers(ngx.var.upstream_header_time) > 0
  ngx.ctx.sent = ngx.ctx.answered or sent > 0
end

-- The key must not leave in an answer, even if the API put it in a message.
local function redact(text)
  if type(text) ~= "string" or not api_key then return text end
  local from, to = text:find(api_key, 1, true)
  while from do
    text = text:sub(1, from - 1) .. "[the API key]" .. text:sub(to + 1)
    from, to = text:find(api_key, from, true)
  end
  return text
end

-- Fields that hold lists: Debian's lua-cjson writes an empty table as {},
-- so an empty one is rewritten as [] (a key's quotes are never escaped).
local LISTS = { "failed_tests" }

local function reply(status, value, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  for name, v in pairs(headers or {}) do ngx.header[name] = v end
  local text = cjson.encode(value)
  for _, name in ipairs(LISTS) do
    if type(value[name]) == "table" and next(value[name]) == nil then
      text = text:gsub('"' .. name .. '":{}', '"' .. name .. '":[]', 1)
    end
  end
  ngx.say(text)
end

-- An error answer. sent: whether the request reached the API.
local function reply_error(status, err, sent, headers)
  return reply(status, { error = {
    kind = err.kind, field = err.field, message = redact(err.message), status = err.status,
    sent = sent, retryable = err.retryable == true,
  } }, headers)
end

local function refuse(status, field, message, headers)
  return reply_error(status, { kind = "invalid", field = field, message = message }, false, headers)
end

local MAY_EXIST = "; the run may have been created: look for it before triggering again"

-- A failure with no complete answer from the API, as nil, err, sent.
local function no_answer(op, res, upstream)
  local kind = res.status == ngx.HTTP_GATEWAY_TIMEOUT and "timeout" or "transport"
  if not upstream.sent then
    return nil, empirical.error(kind, "the request did not reach the API: nginx could not connect, or refused "
      .. "the API's certificate (nginx's error log says which); nothing was sent, so it is safe to retry",
      { retryable = true }), false
  end
  local what = upstream.answered and "the API's answer was cut off"
    or "the connection to the API failed after the request was sent (nginx's error log says how)"
  local safe = IDEMPOTENT[op] == true
  return nil, empirical.error(kind, what .. (safe and "" or MAY_EXIST), { retryable = safe }), true
end

-- The result of op, or nil, err, sent: as client:<op>(...) would give.
local function call(op, params)
  local req, err = empirical.encode(op, params)
  if not req then return nil, err, false end
  local upstream = {}
  local res = ngx.location.capture("/_empirical" .. req.path,
                                   { method = METHODS[req.method], body = req.body, ctx = upstream })
  if not upstream.answered or res.truncated then return no_answer(op, res, upstream) end
  local result, decode_err = empirical.decode(op, res.status, res.body, res.header)
  return result, decode_err, true
end

-- The status the service answers for a failed call.
local function status_of(err)
  if err.kind == "invalid" then return 400 end
  if err.kind == "timeout" then return 504 end
  -- The API's refusal of our key is the service's fault, not the caller's.
  if err.kind == "http" and err.status and err.status < 500 and err.status ~= 401 and err.status ~= 403 then
    return err.status
  end
  return 502
end

local function reply_result(result, err, sent, shape)
  if not result then return reply_error(status_of(err), err, sent) end
  return reply(200, shape(result))
end

-- JSON null means absent, as the schema reads it.
local function drop_nulls(value)
  for k, v in pairs(value) do
    if v == cjson.null then value[k] = nil elseif type(v) == "table" then drop_nulls(v) end
  end
  return value
end

-- The request's JSON object ({} for an empty body unless required), or nil, message.
local function body_object(required)
  ngx.req.read_body()
  local text = ngx.req.get_body_data() or ""
  if text:match("^%s*$") then
    if required then return nil, "the body must be a JSON object" end
    return {}
  end
  local value, err = cjson.decode(text)
  if type(value) ~= "table" then return nil, "the body must be a JSON object" .. (err and ": " .. err or "") end
  return drop_nulls(value)
end

local function run_shape(run)
  return { id = run.id, state = run.state }
end

local function trigger()
  local params, problem = body_object(true)
  if not params then return refuse(400, "body", problem) end
  local run, err, sent = call("trigger", params)
  reply_result(run, err, sent, run_shape)
end

local function rerun(id)
  local params, problem = body_object(false)
  if not params then return refuse(400, "body", problem) end
  if params.id ~= nil then return refuse(400, "id", "id: the run's id is in the path, not the body") end
  params.id = tonumber(id)
  local run, err, sent = call("rerun", params)
  reply_result(run, err, sent, run_shape)
end

local function get(id)
  local detail, err, sent = call("get", { id = tonumber(id) })
  reply_result(detail, err, sent, function(d)
    return { id = d.testRun.id, state = d.testRun.state, verdict = empirical.verdict(d),
             summary = empirical.summary(d), failed_tests = empirical.failed_tests(d) }
  end)
end

-- The routes: a path (its capture is the run id) and the one method it answers.
local ROUTES = {
  { method = "POST", path = "^/release/trigger$", handler = trigger, doc = "POST /release/trigger" },
  { method = "POST", path = "^/release/(%d+)/rerun$", handler = rerun, doc = "POST /release/{id}/rerun" },
  { method = "GET", path = "^/release/(%d+)$", handler = get, doc = "GET /release/{id}" },
}

-- Whether the caller sent the service's token. Digests of equal length,
-- compared in full: the time taken says nothing about the token.
local function authorized()
  local given = ngx.req.get_headers()[TOKEN_HEADER]
  if type(given) ~= "string" then return false end   -- missing, or sent twice
  local digest, diff = ngx.sha1_bin(given), 0
  for i = 1, #token_digest do diff = bit.bor(diff, bit.bxor(digest:byte(i), token_digest:byte(i))) end
  return diff == 0
end

--- content_by_lua for every path but the internal one.
function M.serve()
  if not authorized() then
    return refuse(401, TOKEN_HEADER, "send the service's token in " .. TOKEN_HEADER)
  end
  local uri, method = ngx.var.uri, ngx.req.get_method()
  local allowed, docs = {}, {}
  for _, route in ipairs(ROUTES) do
    local captured = uri:match(route.path)
    if captured and route.method == method then
      return route.handler(captured)
    elseif captured then
      allowed[#allowed + 1] = route.method
    end
    docs[#docs + 1] = route.doc
  end
  if #allowed > 0 then
    local allow = table.concat(allowed, ", ")
    return refuse(405, "method", ("%s %s: this route answers %s only"):format(method, uri, allow), { Allow = allow })
  end
  return refuse(404, "path", ("no route %s %s; the routes: %s"):format(method, uri, table.concat(docs, ", ")))
end

return M
