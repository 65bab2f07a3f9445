-- Plain HTTP to the fake with luasocket, as another client or a user's own
-- script would talk to it: nothing of this module's client on the way.
local http, ltn12, cjson = require("socket.http"), require("ltn12"), require("cjson")

local M = {}

--- status, the decoded JSON body (nil when it is not JSON), the raw body,
-- the response headers. opts: body (string), token (false: none; default
-- the fake's), url (instead of fake.url .. path).
function M.call(fake, method, path, opts)
  opts = opts or {}
  local chunks, token = {}, opts.token
  if token == nil then token = fake.token end
  local _, status, headers = http.request {
    url = opts.url or (fake.url .. path), method = method, sink = ltn12.sink.table(chunks),
    source = opts.body and ltn12.source.string(opts.body) or nil,
    headers = { authorization = token and ("Bearer " .. token) or nil,
                ["content-length"] = opts.body and #opts.body or nil,
                ["content-type"] = opts.body and "application/json" or nil },
  }
  local raw = table.concat(chunks)
  local ok, decoded = pcall(cjson.decode, raw)
  return status, ok and decoded or nil, raw, headers
end

-- A run's id as a path segment (plain cjson decodes 1 as 1.0).
function M.id(value)
  return ("%d"):format(value)
end

--- Trigger a run on `environment` (default staging); its id.
function M.trigger(fake, fields)
  local body = { environment = "staging" }
  for k, v in pairs(fields or {}) do body[k] = v end
  local status, answer, raw = M.call(fake, "PUT", "/api/test-runs", { body = cjson.encode(body) })
  assert(status == 200, raw)
  return M.id(answer.data.test_run.id)
end

--- The testRun of a get, and the whole detail.
function M.run(fake, id)
  local status, answer, raw = M.call(fake, "GET", "/api/test-runs/" .. id)
  assert(status == 200, raw)
  return answer.data.test_run.testRun, answer.data.test_run
end

return M
