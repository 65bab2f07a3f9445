-- The fault matrix: each fault the fake can play, against each call, on a
-- connection the client has already used. For each: the error kind, a
-- readable message, and exactly the number of requests the retry policy
-- allows (read from the fake's log). check-valgrind runs this file too.
local helper = require("helper")

local OPS = {
  trigger = { method = "PUT", call = function(c) return c:trigger { environment = "staging" } end },
  rerun = { method = "POST", call = function(c, id) return c:rerun(id) end },
  get = { method = "GET", call = function(c, id) return c:get(id) end },
}

local function nested(depth)
  return '{"data":{"test_run":' .. ("["):rep(depth) .. ("]"):rep(depth) .. "}}"
end

-- fault: what the fake plays (times = 5 unless set). expect: per call, or
-- for all: { kind, requests, message pattern } (kind nil: the call succeeds).
local MATRIX = {
  -- A get's first attempt rides the used connection; when that dies before
  -- answering, libcurl resends once on a fresh one by itself: 3 requests.
  -- Calls that create runs always connect afresh, so this cannot double them.
  { "a reset before the response", { drop = "before_response" },
    { trigger = { "transport", 1, "may have been created" }, rerun = { "transport", 1, "may have been created" },
      get = { "transport", 3, "", attempts = 2 } } },
  { "a reset mid-body", { drop = "mid_body", body = { data = { pad = ("x"):rep(300) } } },
    { trigger = { "transport", 1, "may have been created" }, rerun = { "transport", 1, "may have been created" },
      get = { "transport", 2, "" } } },
  { "headers that never come", { delay = 2 },
    { trigger = { "transport", 1, "may have been created" }, rerun = { "transport", 1, "may have been created" },
      get = { "transport", 2, "timed out" } } },
  { "a trickling body", { trickle = 0.05, body = { data = { pad = ("x"):rep(200) } }, client = { timeout = 30 } },
    { trigger = { "transport", 1, "may have been created" }, rerun = { "transport", 1, "may have been created" },
      get = { "transport", 2, "too slow" } } },
  { "429 with Retry-After in seconds, once", { status = 429, body = "", headers = { ["Retry-After"] = "1" }, times = 1 },
    { all = { nil, 2 } } },
  { "500 once", { status = 500, body = "", times = 1 },
    { trigger = { "http", 1, "may have been created" }, rerun = { "http", 1, "may have been created" }, get = { nil, 2 } } },
  { "502 once", { status = 502, body = "", times = 1 },
    { trigger = { "http", 1, "may have been created" }, rerun = { "http", 1, "may have been created" }, get = { nil, 2 } } },
  { "503 once", { status = 503, body = "", times = 1 },
    { trigger = { "http", 1, "may have been created" }, rerun = { "http", 1, "may have been created" }, get = { nil, 2 } } },
  { "504 once", { status = 504, body = "", times = 1 },
    { trigger = { "http", 1, "may have been created" }, rerun = { "http", 1, "may have been created" }, get = { nil, 2 } } },
  { "503 every time", { status = 503, body = "" },
    { trigger = { "http", 1, "may have been created" }, rerun = { "http", 1, "may have been created" },
      get = { "http", 2, "503" } } },
  { "an HTML error page", { status = 502, content_type = "text/html", body = "<html><h1>Bad Gateway</h1></html>" },
    { all = { "http", nil, "HTTP 502 with a text/html body" }, get = { "http", 2, "HTTP 502 with a text/html body" } } },
  { "an HTML page on a 200", { content_type = "text/html", body = "<html>maintenance</html>" },
    { all = { "decode", 1, "text/html" } } },
  { "truncated JSON", { body = '{"data":{"test_run":{"id":1,' }, { all = { "decode", 1, "JSON" } } },
  { "invalid JSON", { body = '{"data": nope}' }, { all = { "decode", 1, "JSON" } } },
  { "a wrong content type", { content_type = "text/plain", body = '{"data":{}}' }, { all = { "decode", 1, "text/plain" } } },
  { "a body over the cap", { body = { data = { pad = ("x"):rep(8192) } } }, { all = { "decode", 1, "max_response_bytes" } } },
  { "JSON nested past the depth cap", { body = nested(100) }, { all = { "decode", 1, "too many nested data structures" } } },
  { "invalid UTF-8", { body = '{"data":{"test_run":{"id":1,"state":"\255\254"}}}' }, { all = { "decode", 1, "UTF%-8" } } },
  { "a 200 carrying the error envelope", { body = { data = false, error = { message = "quota exceeded" } } },
    { all = { "http", 1, "quota exceeded" } } },
  { "trigger.success = false", { body = { data = { trigger = { success = false },
                                                   test_run = { id = 9, state = "queued", test_run_branch = "main",
                                                                created_at = "2026-11-24T10:00:00Z" } } } },
    { trigger = { "http", 1, "success" }, rerun = { "http", 1, "success" }, get = { "decode", 1, "test_run" } } },
  { "a redirect to another host", { status = 302, body = "", headers = { Location = "https://elsewhere.example/x" } },
    { all = { "http", 1, "elsewhere.example" } } },
  { "headers over the cap", { headers = { ["X-Padding"] = ("p"):rep(70 * 1024) }, body = "{}" },
    { all = { "decode", 1, "headers are larger" } } },
}

describe("fault matrix", function()
  local fake, run_id

  local CLIENT = { retries = 1, timeout = 0.5, low_speed_limit = 1000, low_speed_time = 1, max_response_bytes = 4096 }
  local clients = {}

  -- A new client per row: the connection it reuses is the one its own get
  -- left, so libcurl's resends are the same every run.
  local function client_for(options)
    local opts = {}
    for k, v in pairs(CLIENT) do opts[k] = v end
    for k, v in pairs(options or {}) do opts[k] = v end
    local c = helper.client(fake, opts)
    clients[#clients + 1] = c
    return c
  end

  setup(function() fake = helper.start_fake { speed = 1000 } end)
  teardown(function()
    for _, c in pairs(clients) do c:close() end
    fake:stop()
  end)

  for _, row in ipairs(MATRIX) do
    local name, fault, expect = row[1], row[2], row[3]
    for _, op in ipairs { "trigger", "rerun", "get" } do
      local want = expect[op] or expect.all
      if want[2] == nil then want = { want[1], 1, want[3] } end
      local attempts = want.attempts or want[2]
      local kind, requests, pattern = want[1], want[2], want[3]
      it(("%s: %s -> %s, %d request(s)"):format(name, op, kind or "success", requests), function()
        fake:reset()
        local client = client_for(fault.client)
        run_id = assert(client:trigger { environment = "staging" }).id
        assert(client:get(run_id))                                       -- the connection is in use
        local method = OPS[op].method
        local s = { method = method, times = 5 }
        for k, v in pairs(fault) do if k ~= "client" then s[k] = v end end
        fake:script(s)
        local before = helper.count(fake:log(), method)
        local result, err = OPS[op].call(client, run_id)
        if kind then
          assert.is_nil(result)
          assert.equal(kind, err.kind, tostring(err))
          assert.matches(pattern, err.message)
          assert.equal(attempts, err.attempts, tostring(err))
          assert.matches("^empirical: " .. kind, tostring(err))
          if method ~= "GET" then assert.is_false(err.retryable, tostring(err)) end
        else
          assert.truthy(result, tostring(err))
        end
        assert.equal(requests, helper.count(fake:log(), method) - before)
      end)
    end
  end

  it("a refused connection: transport and retryable for every call, nothing could be sent", function()
    local c = helper.client({ token = "t", url = "http://127.0.0.1:" .. helper.free_port() }, { retries = 1 })
    for op, spec in pairs(OPS) do
      local _, err = spec.call(c, 1)
      assert.equal("transport", err.kind, op)
      assert.is_true(err.retryable, op)
      assert.equal(2, err.attempts, op)   -- never reached a server: safe to retry even a trigger
      assert.equal(spec.method, err.request:match("^%u+"), op)
    end
    c:close()
  end)
end)
