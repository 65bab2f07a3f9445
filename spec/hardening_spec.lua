-- What an attack run found (issue 12), one block per finding, each case a
-- reproduction: where the token may go (look-alike loopback names, a proxy
-- from the environment, the HTTP/2 trace), callbacks that close, re-enter
-- or raise, numbers that must reach the wire unchanged, options out of
-- range, the wait loop and the core's retry decision, pass-through values,
-- header values, and a numeric token in a message. The fault matrix
-- (faults_spec.lua) holds the "the run may have been created" cases.
local empirical = require("empirical")
local helper = require("helper")
local cjson = require("cjson")

local TOKEN = "sk-live-attack-run-t0ken"

describe("where the token may go", function()
  it("plain http only to an address that is loopback, never to a name that looks like one", function()
    for _, url in ipairs {
      "http://127.0.0.1.evil.com", "http://127.evil.com", "http://127.0.0.1.nip.io:8080",
      "http://127.0.0.1%2eevil.com", "HTTP://127.0.0.1.evil.com", "http://localhost.evil.com",
      "http://128.0.0.1", "http://[::2]:80", "http://[fe80::1%25lo]:80", "http://0.0.0.0:80",
    } do
      local client, err = empirical.new { token = TOKEN, base_url = url }
      assert.is_nil(client, url)
      assert.same({ "config", "base_url" }, { err.kind, err.field }, url)
      assert.truthy(err.message:find("not loopback", 1, true), url .. ": " .. err.message)
      assert.is_nil(err.message:find(TOKEN, 1, true))
    end
    for url, normal in pairs {
      ["http://127.0.0.1:9"] = "http://127.0.0.1:9", ["http://127.1:9"] = "http://127.0.0.1:9",
      ["http://0x7f000001:9"] = "http://127.0.0.1:9", ["http://2130706433:9"] = "http://127.0.0.1:9",
      ["http://127.255.255.254:9"] = "http://127.255.255.254:9", ["http://[::1]:9"] = "http://[::1]:9",
      ["http://localhost:9/"] = "http://localhost:9",
    } do
      local client = assert(empirical.new { token = TOKEN, base_url = url })
      assert.equal("empirical.client (" .. normal .. ")", tostring(client))
      client:close()
    end
  end)

  it("takes a base_url with a path as a prefix, and says how to write one ending in /api", function()
    local fake = helper.start_fake {}
    fake:script { method = "GET", path = "/mounted/api/test-runs/4", body = { data = { test_run = {
      testRun = { id = 4, state = "ended" } } } } }
    local client = helper.client(fake, { base_url = fake.url .. "/mounted/" })
    assert.equal(4, assert(client:get(4)).testRun.id)
    client:close()
    fake:stop()
    local _, err = empirical.new { token = TOKEN, base_url = "https://api.empirical.run/api/" }
    assert.equal("base_url", err.field)
    assert.truthy(err.message:find("https://api.empirical.run (the module adds", 1, true), err.message)
  end)

  it("a loopback call never goes through a proxy from the environment", function()
    local api, proxy = helper.start_fake { token = TOKEN }, helper.start_fake {}
    local code, out, err = helper.run({ helper.LUA, "-e", ([[
      local c = assert(require("empirical").new { token = %q, base_url = %q })
      io.write(c:trigger { environment = "staging" } and "created" or "failed")
    ]]):format(TOKEN, api.url) }, { http_proxy = proxy.url, HTTP_PROXY = proxy.url, all_proxy = proxy.url })
    assert.equal(0, code, err)
    assert.equal("created", out)
    assert.equal(1, #api:log())
    assert.equal(0, #proxy:log())
    api:stop()
    proxy:stop()
  end)

  describe("the verbose trace over HTTP/2", function()
    local certs, prefix, port

    -- nginx-light serving h2 on loopback, a certificate made here.
    setup(function()
      certs = helper.make_certs()
      prefix = certs.dir .. "/nginx"
      port = helper.free_port()
      assert(os.execute("mkdir -p " .. prefix .. "/logs"))
      local conf = assert(io.open(prefix .. "/nginx.conf", "w"))
      conf:write(([[
        worker_processes 1;
        error_log %s/logs/error.log warn;
        pid %s/nginx.pid;
        events { worker_connections 64; }
        http {
          access_log off;
          client_body_temp_path %s/body;
          server {
            listen 127.0.0.1:%d ssl http2;
            ssl_certificate %s;
            ssl_certificate_key %s;
            location / {
              default_type application/json;
              return 200 '{"data":{"test_run":{"testRun":{"id":1,"state":"ended"}}}}';
            }
          }
        }
      ]]):format(prefix, prefix, prefix, port, certs.server_cert, certs.server_key))
      conf:close()
      local code, _, err = helper.run({ "nginx", "-p", prefix, "-c", "nginx.conf" })
      assert(code == 0, "nginx did not start: " .. err)
    end)
    teardown(function()
      helper.run({ "nginx", "-p", prefix, "-c", "nginx.conf", "-s", "stop" })
      helper.remove_dir(certs.dir)
    end)

    it("hides the token in every line, whatever form libcurl gives it", function()
      local code, out, trace
      for _ = 1, 50 do   -- until nginx listens
        code, out, trace = helper.run({ helper.LUA, "-e", ([[
          local c = assert(require("empirical").new { token = %q, base_url = %q, ca_file = %q, verbose = true })
          local d, err = c:get(1)
          io.write(d and "ok" or tostring(err))
        ]]):format(TOKEN, "https://127.0.0.1:" .. port, certs.ca) })
        if out == "ok" then break end
        os.execute("sleep 0.1")
      end
      assert.equal(0, code, trace)
      assert.equal("ok", out, trace)
      assert.truthy(trace:find("HTTP/2", 1, true), trace)                  -- it was h2
      assert.truthy(trace:lower():find("authorization: [redacted]", 1, true), trace)
      assert.is_nil(trace:find(TOKEN, 1, true), trace)
      assert.is_nil(trace:find("Bearer", 1, true), trace)
    end)
  end)
end)

describe("callbacks", function()
  local fake

  setup(function() fake = helper.start_fake { speed = 100 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("an on_event that closes the client while a get waits to retry: an error, not a crash", function()
    local client
    client = helper.client(fake, { retries = 3, on_event = function() client:close() end })
    fake:script { method = "GET", status = 503, body = "", times = 5 }
    local detail, err = client:get(1)
    assert.is_nil(detail)
    assert.equal("config", err.kind)
    assert.truthy(err.message:find("closed", 1, true), err.message)
    assert.equal(1, #fake:log())
  end)

  it("an on_event that closes the client after a trigger succeeded still returns the run", function()
    local client
    client = helper.client(fake, { on_event = function() client:close() end })
    local run, err = client:trigger { environment = "staging" }
    assert.is_nil(err)
    assert.equal(1, run.id)
    local _, closed = client:get(1)
    assert.equal("config", closed.kind)
  end)

  it("an on_event that closes the client between a 429 and the retry: nothing was created, and it says so", function()
    local client
    client = helper.client(fake, { on_event = function(ev) if ev.status == 429 then client:close() end end })
    fake:script { method = "PUT", status = 429, body = "", headers = { ["Retry-After"] = "1" }, times = 1 }
    local run, err = client:trigger { environment = "staging" }
    assert.is_nil(run)
    assert.equal("config", err.kind)
    assert.is_nil(err.run_may_exist)
    assert.equal(1, #fake:log())
  end)

  it("an on_event that polls or waits on its own request is refused, and the call goes on", function()
    local req, calls, problems = nil, 0, {}
    local client = helper.client(fake, { retries = 2, on_event = function()
      calls = calls + 1
      local ok, problem = pcall(req.wait, req)
      if not ok then problems[#problems + 1] = problem end
      req:poll()                                  -- raises too: caught, reported once, ignored
    end })
    fake:script { method = "PUT", status = 429, body = "", times = 1 }
    req = assert(client:start("trigger", { environment = "staging" }))
    local run, err = req:wait()
    assert.is_nil(err)
    assert.equal(1, run.id)                      -- the second attempt created it: returned, not an error
    assert.equal(2, calls)
    assert.truthy(problems[1]:find("busy", 1, true), problems[1])
    assert.equal(2, #fake:log())
    client:close()
  end)

  it("an on_event may start and wait on other calls on the same client", function()
    local seen = {}
    local client
    client = helper.client(fake, { on_event = function(ev)
      if ev.method == "PUT" then seen[#seen + 1] = assert(client:get(1)).testRun.id end
    end })
    assert(client:trigger { environment = "staging" })
    assert.same({ 1 }, seen)
    client:close()
  end)

  it("an on_event that yields is refused (it runs inside C), and the call goes on", function()
    local client = helper.client(fake, { on_event = function() coroutine.yield() end })
    local co = coroutine.create(function() return client:trigger { environment = "staging" } end)
    local ok, run = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal(1, run.id)
    assert.equal("dead", coroutine.status(co))
    client:close()
  end)

  it("wait's on_poll and on_poll_error are observers: an error is reported once and the wait goes on", function()
    local client = helper.client(fake)
    local run = assert(client:trigger { environment = "staging" })
    fake:script { method = "GET", status = 503, body = "", times = 4 }
    local code, out, stderr = helper.run({ helper.LUA, "-e", ([[
      local c = assert(require("empirical").new { token = %q, base_url = %q, retries = 0 })
      local d, info = c:wait(%d, { interval = 0.01,
        on_poll = function() error("on_poll broke") end,
        on_poll_error = function() error("on_poll_error broke") end })
      io.write(d and d.testRun.state or tostring(info))
    ]]):format(fake.token, fake.url, run.id) })
    assert.equal(0, code, stderr)
    assert.equal("ended", out)
    local _, reports = stderr:gsub("raised an error %(ignored, and later ones not reported%)", "")
    assert.equal(1, reports, stderr)
    client:close()
  end)

  it("a sleep that raises ends the wait with its error; one that yields is an event loop's", function()
    local client = helper.client(fake)
    fake:scenario { tests = { { name = "t", outcome = "passed" } }, pending_seconds = 1e6 }
    local id = assert(client:trigger { environment = "staging" }).id
    local detail, err = client:wait(id, { sleep = function() error("loop stopped") end })
    assert.is_nil(detail)
    assert.equal("interrupted", err.kind)
    assert.truthy(err.message:find("loop stopped", 1, true), err.message)

    local slept = 0
    local co = coroutine.wrap(function()
      return client:wait(id, { interval = 0.01, timeout = 0.05, sleep = function(s)
        slept = slept + 1
        coroutine.yield(s)
      end })
    end)
    local yielded = co()
    assert.is_number(yielded)                   -- handed to the event loop...
    detail, err = nil, nil
    while slept < 1000 do
      empirical.sleep(yielded)                  -- which sleeps as it likes, then resumes the wait
      local a, b = co()
      if type(a) ~= "number" then detail, err = a, b break end
      yielded = a
    end
    assert.is_nil(detail)
    assert.equal("timeout", err.kind)           -- ...which resumed it until the wait's own timeout
    client:close()
  end)
end)

describe("numbers on the wire", function()
  local function body(value)
    local req = assert(empirical.encode("trigger", { environment = "s", metadata = { v = value } }))
    return req.body:match('"v":([^,}]+)')
  end

  it("go out exactly: integers digit for digit, floats as the same double", function()
    if math.type then
      assert.equal("9223372036854775807", body(math.maxinteger))
      assert.equal("-9223372036854775808", body(math.mininteger))
      assert.equal("9007199254740993", body(9007199254740993))
      assert.equal("123456789012345", body(123456789012345))
    end
    for _, v in ipairs { 1e300, 1e39, -1e-300, 0.1, 1 / 3, 2 ^ 53, 2 ^ 63, 123456789.125, 5e-324, 1.7976931348623157e308 } do
      local text = body(v)
      assert.equal(v, tonumber(text), text)
      assert.truthy(cjson.decode('{"v":' .. text .. "}").v == v, text)
    end
    assert.equal("0", body(-0.0))
  end)

  it("that JSON cannot carry are refused, naming the field", function()
    for _, v in ipairs { 0 / 0, math.huge, -math.huge } do
      local _, err = empirical.encode("trigger", { environment = "s", metadata = { v = v } })
      assert.equal("metadata.v", err.field)
    end
    local _, err = empirical.encode("trigger", { environment = "s", future = { 1, 0 / 0 } }, { strict = false })
    assert.equal("future[2]", err.field)
  end)
end)

describe("options out of range", function()
  local bad = {
    { "retries", 2 ^ 31 }, { "retries", 2 ^ 32 }, { "retries", 2 ^ 40 }, { "retries", 11 }, { "retries", -1 },
    { "timeout", 0.0004 }, { "timeout", 0 }, { "timeout", 1e12 }, { "deadline", 0.0004 }, { "connect_timeout", 0 },
    { "low_speed_time", 0.5 }, { "low_speed_limit", 0 }, { "low_speed_limit", 2 ^ 40 },
    { "max_response_bytes", 0 }, { "max_response_bytes", 2 ^ 60 }, { "max_retry_after", -1 },
    { "project_id", 0 }, { "timeout", 0 / 0 },
  }
  for _, row in ipairs(bad) do
    it(("%s = %s is refused, naming the option"):format(row[1], tostring(row[2])), function()
      local client, err = empirical.new { token = TOKEN, base_url = "http://127.0.0.1:9", [row[1]] = row[2] }
      assert.is_nil(client)
      assert.same({ "config", row[1] }, { err.kind, err.field })
    end)
  end

  it("a wait with a huge timeout polls as usual", function()
    local fake = helper.start_fake { speed = 100 }
    local client = helper.client(fake)
    local run = assert(client:trigger { environment = "staging" })
    local detail = assert(client:wait(run.id, { timeout = 1e16, interval = 0.05 }))
    assert.equal("ended", detail.testRun.state)
    client:close()
    fake:stop()
  end)
end)

describe("the wait loop", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 100 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  -- What the core calls final ends the wait at the first poll.
  for _, case in ipairs {
    { "a 501", { status = 501, body = "" } }, { "a 505", { status = 505, body = "" } },
    { "a 999", { status = 999, body = "" } },
    { "an HTML 200", { content_type = "text/html", body = "<html>maintenance</html>" } },
    { "a body over the cap", { body = ("x"):rep(5000) }, { max_response_bytes = 1000 } },
  } do
    it("stops at " .. case[1] .. ", polling once", function()
      local client = helper.client(fake, case[3])
      local id = assert(client:trigger { environment = "staging" }).id
      local s = { method = "GET", times = 10 }
      for k, v in pairs(case[2]) do s[k] = v end
      fake:script(s)
      local before = helper.count(fake:log(), "GET")
      local detail, err = client:wait(id, { interval = 0.01, timeout = 5 })
      assert.is_nil(detail)
      assert.is_false(err.retryable)
      assert.equal(1, helper.count(fake:log(), "GET") - before)
      client:close()
    end)
  end

  it("stops at a certificate it cannot trust, polling once", function()
    local certs = helper.make_certs()
    local tls = helper.start_fake { tls_cert = certs.server_cert, tls_key = certs.server_key }
    local client = helper.client(tls)                       -- the system store: the test CA is not in it
    local detail, err = client:wait(1, { interval = 0.01, timeout = 5 })
    assert.is_nil(detail)
    assert.equal("transport", err.kind)
    assert.equal(1, err.polls)
    client:close()
    tls:stop()
    helper.remove_dir(certs.dir)
  end)

  it("keeps polling through a 503 storm until its timeout", function()
    local client = helper.client(fake, { retries = 0 })
    local id = assert(client:trigger { environment = "staging" }).id
    fake:script { method = "GET", status = 503, body = "", times = 1000 }
    local detail, err = client:wait(id, { interval = 0.01, max_interval = 0.02, timeout = 0.5 })
    assert.is_nil(detail)
    assert.equal("timeout", err.kind)
    assert.is_true(err.polls > 6, tostring(err.polls))
    client:close()
  end)
end)

describe("header values", function()
  local fake
  setup(function() fake = helper.start_fake {} end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("arrive whole, whatever their length up to the cap, and UTF-8 intact", function()
    local slug = ("s"):rep(601)
    local agent = ("a"):rep(599)
    local client = helper.client(fake, { project_slug = slug, user_agent = agent })
    client:get(1)
    client:close()
    local utf8_slug = ("é"):rep(300)
    client = helper.client(fake, { project_slug = utf8_slug })
    client:get(1)
    client:close()
    local log = fake:log()
    assert.equal(slug, log[1].headers["x-project-slug"])
    assert.equal("empirical-lua/" .. empirical.VERSION .. " " .. agent, log[1].headers["user-agent"])
    assert.equal(utf8_slug, log[2].headers["x-project-slug"])
  end)

  it("over 8 KiB are refused, naming the option", function()
    for _, option in ipairs { "project_slug", "user_agent", "token" } do
      local _, err = empirical.new { token = "t", base_url = fake.url, [option] = ("x"):rep(8193) }
      assert.same({ "config", option }, { err.kind, err.field })
      assert.truthy(err.message:find("too long for an HTTP header", 1, true), err.message)
    end
  end)
end)

describe("secrets in messages", function()
  it("a token of the wrong type is described, never shown", function()
    local _, err = empirical.new { token = 123456789, base_url = "http://127.0.0.1:9" }
    assert.equal("token: expected a string, got a number", err.message)
    _, err = empirical.new { token = { "secret" }, base_url = "http://127.0.0.1:9" }
    assert.is_nil(tostring(err):find("secret", 1, true))
  end)

  it("a value from the environment is named by its variable; an empty one counts as unset", function()
    local code, out = helper.run({ helper.LUA, "-e", [[
      local e = require("empirical")
      local _, err = e.new {}
      io.write(err.message, "\n")
      _, err = e.new { token = "t" }
      io.write(err.message, "\n")
      local c = assert(e.new { token = "t", base_url = "http://127.0.0.1:9" })
      io.write(tostring(c), "\n")
    ]] }, { EMPIRICALRUN_KEY = "", EMPIRICALRUN_API_URL = "http://127.0.0.1.evil.com" })
    assert.equal(0, code)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal("token: no token given and EMPIRICALRUN_KEY is not set", lines[1])
    assert.truthy(lines[2]:find("^base_url %(from EMPIRICALRUN_API_URL%): is plain http"), lines[2])
    assert.equal("empirical.client (http://127.0.0.1:9)", lines[3])
  end)
end)

-- What a review of the C core found, each reproduced.
describe("a review's findings", function()
  local fake

  setup(function() fake = helper.start_fake { speed = 100 } end)
  teardown(function()
    empirical.release_signals()
    fake:stop()
  end)
  before_each(function() fake:reset() end)

  -- Two triggers: the first answered at once, the second late, so waiting
  -- on the second leaves the first with its answer in hand, not yet read.
  local function first_answered(client)
    fake:script { method = "PUT", delay = 0, times = 1 }
    fake:script { method = "PUT", delay = 0.3, times = 1 }
    local first = assert(client:start("trigger", { environment = "staging" }))
    local second = assert(client:start("trigger", { environment = "production" }))
    assert(second:wait())
    return first
  end

  it("a close keeps the run a trigger's answer already created", function()
    local client = helper.client(fake)
    local first = first_answered(client)
    client:close()
    local run, err = first:wait()
    assert.is_nil(err)
    assert.equal("staging", fake:log()[1].body:match('"environment":"(%a+)"'))
    assert.equal(1, run.id)
  end)

  it("an abort keeps it too, and an abort of one in flight says the run may exist", function()
    local client = helper.client(fake)
    local first = first_answered(client)
    first:abort()
    assert.equal(1, assert(first:wait()).id)
    fake:script { method = "PUT", delay = 2 }
    local third = assert(client:start("trigger", { environment = "staging" }))
    for _ = 1, 20 do third:poll() empirical.sleep(0.01) end       -- the request is out
    third:abort()
    local _, err = third:wait()
    assert.equal("interrupted", err.kind)
    assert.is_true(err.run_may_exist)
    client:close()
  end)

  it("a signal during trigger_all gives each trigger its own error, saying its run may exist", function()
    local client = helper.client(fake)
    fake:script { method = "PUT", delay = 2, times = 2 }
    empirical.catch_signals()
    os.execute(("(sleep 0.5; kill -TERM %s) >/dev/null 2>&1 &"):format(helper.pid()))
    local runs, errs = client:trigger_all { { environment = "staging" }, { environment = "production" } }
    empirical.release_signals()
    for i = 1, 2 do
      assert.is_nil(runs[i])
      assert.same({ "interrupted", "SIGTERM", true }, { errs[i].kind, errs[i].signal, errs[i].run_may_exist })
    end
    assert.are_not.equal(errs[1], errs[2])
    client:close()
  end)

  it("a signal caught before a blocking call means nothing is sent", function()
    local client = helper.client(fake)
    empirical.catch_signals()
    os.execute("kill -TERM " .. helper.pid())
    local run, err = client:trigger { environment = "staging" }
    empirical.release_signals()
    assert.is_nil(run)
    assert.same({ "interrupted", "SIGTERM" }, { err.kind, err.signal })
    assert.is_nil(err.run_may_exist)
    assert.equal(0, #fake:log())
    client:close()
  end)

  it("a server's Retry-After of any size is kept in range", function()
    local client = helper.client(fake, { retries = 0 })
    fake:script { method = "GET", status = 503, body = "", headers = { ["Retry-After"] = "9223372036854775807" } }
    local _, err = client:get(1)
    assert.equal(86400, err.retry_after)
    client:close()
  end)

  it("a blocking wait sleeping before its retry does not spin while another answer arrives", function()
    local client = helper.client(fake, { retries = 1 })
    local id = assert(client:trigger { environment = "staging" }).id
    fake:script { method = "GET", path = "/api/test-runs/" .. id, status = 503, body = "",
                  headers = { ["Retry-After"] = "1" }, times = 1 }
    fake:script { method = "GET", path = "/api/test-runs/999", delay = 0.2 }
    local waiting = assert(client:start("get", id))
    local other = assert(client:start("get", 999))
    local cpu = os.clock()
    assert(waiting:wait())
    local spent = os.clock() - cpu
    assert.is_true(spent < 0.3, ("%.2f s of CPU for a 1 s wait"):format(spent))
    local _, err = other:wait()
    assert.equal(404, err.status)
    client:close()
  end)

  it("a trigger refused at the TLS handshake says nothing of a run", function()
    local certs = helper.make_certs()
    local tls = helper.start_fake { tls_cert = certs.server_cert, tls_key = certs.server_key }
    local client = helper.client(tls)                       -- the system store: the test CA is not in it
    local _, err = client:trigger { environment = "staging" }
    assert.equal("transport", err.kind)
    assert.is_nil(err.run_may_exist)
    assert.is_nil(err.message:find("may have been created", 1, true))
    assert.equal(0, #tls:log())
    client:close()
    tls:stop()
    helper.remove_dir(certs.dir)
  end)

  it("sleep takes a number, or says what it got", function()
    local ok, err = empirical.sleep(nil)
    assert.is_nil(ok)
    assert.same({ "invalid", "seconds" }, { err.kind, err.field })
  end)
end)
