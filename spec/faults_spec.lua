-- The fault matrix: each fault the fake can play, against each call, on a
-- connection the client has already used. For each: the error kind, a
-- readable message, and exactly the number of requests the retry policy
-- allows (read from the fake's log). check-valgrind runs this file too.
local helper = require("helper")

-- Every call, by what the fake's script matches: its method and path.
local OPS = {
  trigger = { method = "PUT", path = function() return "/api/test-runs" end,
              call = function(c) return c:trigger { environment = "staging" } end },
  rerun = { method = "POST", path = function(id) return "/api/test-runs/" .. id .. "/re-run" end,
            call = function(c, id) return c:rerun(id) end },
  get = { method = "GET", path = function(id) return "/api/test-runs/" .. id end,
          call = function(c, id) return c:get(id) end },
  -- The answer after a fault that is retried: the fake's own for the three
  -- above; scripted for these, whatever state the run is in by then.
  cancel = { method = "POST", path = function(id) return "/api/test-runs/" .. id .. "/cancel" end,
             call = function(c, id) return c:cancel(id) end, ok = { message = "Test run cancelled successfully" } },
  list = { method = "GET", path = function() return "/api/test-runs" end, call = function(c) return c:list() end,
           ok = { data = { test_runs = { items = {} } }, pagination = { page = 1, per_page = 20, total = 0 } } },
}
local ORDER = { "trigger", "rerun", "get", "cancel", "list" }
local CREATES = { trigger = true, rerun = true }

local function nested(depth)
  return '{"data":{"test_run":' .. ("["):rep(depth) .. ("]"):rep(depth) .. "}}"
end

-- 20 MB of zeros, gzipped: 20 KB on the wire.
local function gzip_bomb()
  local pipe = assert(io.popen("head -c 20000000 /dev/zero | gzip -9 -c"))
  local bytes = pipe:read("*a")
  pipe:close()
  return bytes
end

-- Creating calls on a fault where the request reached the server: never
-- retried, and the error says the run may exist (run_may_exist).
local CREATED = { "transport", 1, "may have been created", may_exist = true }
local function created(kind, pattern) return { kind, 1, pattern, may_exist = true } end

-- fault: what the fake plays (times = 5 unless set). expect: per call, or
-- `create` (trigger, rerun), `read` (get, cancel, list: idempotent), `all`:
-- { kind, requests, message pattern, attempts =, may_exist = } (kind nil:
-- the call succeeds).
local MATRIX = {
  -- A read's first attempt rides the used connection; when that dies before
  -- answering, libcurl resends once on a fresh one by itself: 3 requests.
  -- Calls that create runs always connect afresh, so this cannot double them.
  { "a reset before the response", { drop = "before_response" },
    { create = CREATED, read = { "transport", 3, "", attempts = 2 } } },
  { "a reset mid-body", { drop = "mid_body", body = { data = { pad = ("x"):rep(300) } } },
    { create = CREATED, read = { "transport", 2, "" } } },
  { "headers that never come", { delay = 2 }, { create = CREATED, read = { "transport", 2, "timed out" } } },
  { "a trickling body", { trickle = 0.05, body = { data = { pad = ("x"):rep(200) } }, client = { timeout = 30 } },
    { create = CREATED, read = { "transport", 2, "too slow" } } },
  { "429 with Retry-After in seconds, once", { status = 429, body = "", headers = { ["Retry-After"] = "1" }, times = 1 },
    { all = { nil, 2 } } },
  { "500 once", { status = 500, body = "", times = 1 }, { create = created("http", "HTTP 500"), read = { nil, 2 } } },
  { "502 once", { status = 502, body = "", times = 1 }, { create = created("http", "HTTP 502"), read = { nil, 2 } } },
  { "503 once", { status = 503, body = "", times = 1 }, { create = created("http", "HTTP 503"), read = { nil, 2 } } },
  { "504 once", { status = 504, body = "", times = 1 }, { create = created("http", "HTTP 504"), read = { nil, 2 } } },
  { "503 every time", { status = 503, body = "" }, { create = created("http", "503"), read = { "http", 2, "503" } } },
  { "an HTML error page", { status = 502, content_type = "text/html", body = "<html><h1>Bad Gateway</h1></html>" },
    { create = created("http", "HTTP 502 with a text/html body"), read = { "http", 2, "HTTP 502 with a text/html body" } } },
  { "501: not worth a retry", { status = 501, body = "" },
    { create = created("http", "HTTP 501"), read = { "http", 1, "HTTP 501" } } },
  { "505: not worth a retry", { status = 505, body = "" },
    { create = created("http", "HTTP 505"), read = { "http", 1, "HTTP 505" } } },
  { "a status no one knows", { status = 999, body = "" },
    { create = created("http", "HTTP 999"), read = { "http", 1, "HTTP 999" } } },
  { "an HTML page on a 200", { content_type = "text/html", body = "<html>maintenance</html>" },
    { create = created("decode", "text/html"), read = { "decode", 1, "text/html" } } },
  { "truncated JSON", { body = '{"data":{"test_run":{"id":1,' },
    { create = created("decode", "JSON"), read = { "decode", 1, "JSON" } } },
  { "invalid JSON", { body = '{"data": nope}' }, { create = created("decode", "JSON"), read = { "decode", 1, "JSON" } } },
  { "a byte-order mark before the JSON", { body = '\239\187\191{"data":{}}' },
    { create = created("decode", "JSON"), read = { "decode", 1, "JSON" } } },
  { "a wrong content type", { content_type = "text/plain", body = '{"data":{}}' },
    { create = created("decode", "text/plain"), read = { "decode", 1, "text/plain" } } },
  { "a body over the cap", { body = { data = { pad = ("x"):rep(8192) } } },
    { create = created("decode", "max_response_bytes.*HTTP 200"), read = { "decode", 1, "max_response_bytes" } } },
  { "a gzip bomb", { body = gzip_bomb(), headers = { ["Content-Encoding"] = "gzip" } },
    { create = created("decode", "max_response_bytes.*HTTP 200"), read = { "decode", 1, "max_response_bytes" } } },
  { "JSON nested past the depth cap", { body = nested(100) },
    { create = created("decode", "too many nested"), read = { "decode", 1, "too many nested data structures" } } },
  { "invalid UTF-8", { body = '{"data":{"test_run":{"id":1,"state":"\255\254"}}}' },
    { create = created("decode", "UTF%-8"), read = { "decode", 1, "UTF%-8" } } },
  { "a 200 carrying the error envelope", { body = { data = false, error = { message = "quota exceeded" } } },
    { all = { "http", 1, "quota exceeded" } } },
  { "a long server message", { status = 503, body = { data = false, error = { message = ("overloaded "):rep(45) } } },
    { create = created("http", "overloaded.*may have been created"), read = { "http", 2, "overloaded" } } },
  { "a long message on a 401 keeps the hint", { status = 401, body = { data = false, error = { message = ("no "):rep(200) } } },
    { all = { "http", 1, "no no.*check the token: EMPIRICALRUN_KEY" } } },
  { "trigger.success = false", { body = { data = { trigger = { success = false },
                                                   test_run = { id = 9, state = "queued", test_run_branch = "main",
                                                                created_at = "2026-11-24T10:00:00Z" } } } },
    { create = { "http", 1, "success" }, get = { "decode", 1, "test_run" }, cancel = { nil, 1 }, list = { nil, 1 } } },
  { "a redirect to another host", { status = 302, body = "", headers = { Location = "https://elsewhere.example/x" } },
    { all = { "http", 1, "elsewhere.example" } } },
  { "headers over the cap", { headers = { ["X-Padding"] = ("p"):rep(70 * 1024) }, body = "{}" },
    { create = created("decode", "headers are larger"), read = { "decode", 1, "headers are larger" } } },
  { "a 300 KB header line", { headers = { ["X-Line"] = ("p"):rep(300 * 1024) }, body = "{}" },
    { create = created("decode", "headers are larger"), read = { "decode", 1, "headers are larger" } } },
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

  -- The requests the fake saw for this path.
  local function count(path)
    local n = 0
    for _, r in ipairs(fake:log()) do if r.path == path then n = n + 1 end end
    return n
  end

  for _, row in ipairs(MATRIX) do
    local name, fault, expect = row[1], row[2], row[3]
    for _, op in ipairs(ORDER) do
      local want = expect[op] or expect[CREATES[op] and "create" or "read"] or expect.all
      local kind, requests, pattern = want[1], want[2] or 1, want[3]
      local attempts = want.attempts or requests
      it(("%s: %s -> %s, %d request(s)"):format(name, op, kind or "success", requests), function()
        fake:reset()
        local client = client_for(fault.client)
        run_id = assert(client:trigger { environment = "staging" }).id
        assert(client:get(run_id))                                       -- the connection is in use
        local path = OPS[op].path(run_id)
        local s = { method = OPS[op].method, path = path, times = 5 }
        for k, v in pairs(fault) do if k ~= "client" then s[k] = v end end
        fake:script(s)
        if OPS[op].ok then fake:script { method = s.method, path = path, body = OPS[op].ok, times = 5 } end
        local before = count(path)
        local result, err = OPS[op].call(client, run_id)
        if kind then
          assert.is_nil(result)
          assert.equal(kind, err.kind, tostring(err))
          assert.matches(pattern, err.message)
          assert.equal(attempts, err.attempts, tostring(err))
          assert.matches("^empirical: " .. kind, tostring(err))
          if CREATES[op] then
            assert.is_false(err.retryable, tostring(err))
            assert.equal(want.may_exist == true, err.run_may_exist == true, tostring(err))
            if err.run_may_exist then   -- the advice is the message's tail, for callers with their own words
              assert.equal(err.advice, err.message:sub(-#err.advice))
              assert.matches("so the run may have been created: look for it", err.message, 1, true)
            else
              assert.is_nil(err.advice)
            end
          end
        else
          assert.truthy(result, tostring(err))
        end
        assert.equal(requests, count(path) - before)
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
      assert.is_nil(err.run_may_exist, op)
      assert.equal(spec.method, err.request:match("^%u+"), op)
    end
    c:close()
  end)
end)
