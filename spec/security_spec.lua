-- TLS and the token: a fake serving https with certificates made here by
-- the openssl command, redirects to a second server, the verbose trace and
-- on_event. The token must reach the API host over TLS and nowhere else.
local empirical = require("empirical")
local helper = require("helper")

local TOKEN = "sk-live-5ecret-t0ken-do-not-leak"

describe("TLS", function()
  local certs, fake, impostor

  setup(function()
    certs = helper.make_certs()
    fake = helper.start_fake { token = TOKEN, tls_cert = certs.server_cert, tls_key = certs.server_key }
    impostor = helper.start_fake { token = TOKEN, tls_cert = certs.other_cert, tls_key = certs.other_key }
  end)
  teardown(function()
    fake:stop()
    impostor:stop()
    helper.remove_dir(certs.dir)
  end)
  before_each(function()
    fake:reset()
    impostor:reset()
  end)

  it("serves the API over https, verified with ca_file", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", fake.url)
    local client = helper.client(fake, { ca_file = certs.ca })
    local run = assert(client:trigger { environment = "staging" })
    assert(client:get(run.id))
    assert(client:rerun(run.id))
    client:close()
    local log = fake:log()
    assert.equal(3, #log)
    assert.equal("Bearer " .. TOKEN, log[1].headers.authorization)
    assert.equal(log[1].conn, log[2].conn)                     -- the get rides the trigger's TLS connection
  end)

  it("also by host name", function()
    local client = helper.client(fake, { ca_file = certs.ca, base_url = fake.url:gsub("127%.0%.0%.1", "localhost") })
    assert(client:trigger { environment = "staging" })
    client:close()
  end)

  it("refuses a server its trust store does not vouch for, says certificate, sends nothing", function()
    local client = helper.client(fake)                        -- the system store: our test CA is not in it
    for _, call in ipairs { function() return client:trigger { environment = "staging" } end,
                            function() return client:get(1) end } do
      local result, err = call()
      assert.is_nil(result)
      assert.equal("transport", err.kind)
      assert.matches("certificate", err.message)
      assert.equal(1, err.attempts)                           -- a certificate does not get better on retry
      assert.is_nil(tostring(err):find(TOKEN, 1, true))
    end
    client:close()
    assert.equal(0, #fake:log())
  end)

  it("refuses a certificate for another host name, sends nothing", function()
    local client = helper.client(impostor, { ca_file = certs.ca })
    local _, err = client:get(1)
    assert.equal("transport", err.kind)
    assert.matches("127.0.0.1", err.message, 1, true)
    assert.matches("name", err.message)
    client:close()
    assert.equal(0, #impostor:log())
  end)
end)

describe("the token", function()
  local fake, elsewhere

  setup(function()
    fake = helper.start_fake { token = TOKEN }
    elsewhere = helper.start_fake { token = TOKEN }
  end)
  teardown(function()
    fake:stop()
    elsewhere:stop()
  end)
  before_each(function()
    fake:reset()
    elsewhere:reset()
  end)

  it("never follows a redirect to a second server", function()
    local client = helper.client(fake, { retries = 3 })
    for _, status in ipairs { 301, 302, 307, 308 } do
      fake:script { status = status, body = "", headers = { Location = elsewhere.url .. "/api/test-runs/1" } }
      local _, err = client:get(1)
      assert.equal("http", err.kind)
      assert.equal(status, err.status)
      assert.matches(elsewhere.url:match("//([^/]+)"), err.message, 1, true)
    end
    fake:script { method = "PUT", status = 307, body = "", headers = { Location = elsewhere.url .. "/api/test-runs" } }
    local _, err = client:trigger { environment = "staging" }
    assert.equal(307, err.status)
    client:close()
    assert.equal(5, #fake:log())
    assert.equal(0, #elsewhere:log())
  end)

  it("is redacted from the verbose trace", function()
    local script = ([[
      local e = require("empirical")
      local c = assert(e.new { token = %q, base_url = %q, verbose = true })
      assert(c:trigger { environment = "staging" })
      local _, err = c:get(999)
      io.stdout:write(tostring(err), tostring(c))
    ]]):format(TOKEN, fake.url)
    local code, out, trace = helper.run({ helper.LUA, "-e", script })
    assert.equal(0, code, trace)
    assert.matches("> PUT /api/test-runs HTTP/1.1", trace, 1, true)
    assert.matches("> Authorization: [redacted]", trace, 1, true)
    assert.matches("< HTTP/1.1 404", trace, 1, true)
    assert.is_nil((trace .. out):find(TOKEN, 1, true))
    assert.is_nil(trace:find('"environment"', 1, true))          -- bodies stay out of the trace
  end)

  it("is not in what on_event sees", function()
    local events = {}
    local client = helper.client(fake, { retries = 2, on_event = function(ev) events[#events + 1] = ev end })
    fake:script { method = "GET", status = 503, body = "", times = 1 }
    local run = assert(client:trigger { environment = "staging" })
    assert(client:get(run.id))
    client:get(999)
    client:close()
    assert.equal(4, #events)
    assert.same({ "PUT", "/api/test-runs", 1, 200 }, { events[1].method, events[1].path, events[1].attempt, events[1].status })
    assert.is_nil(events[1].kind)
    assert.same({ "GET", 1, 503, "http" }, { events[2].method, events[2].attempt, events[2].status, events[2].kind })
    assert.is_true(events[2].retry_in_ms >= 0)
    assert.same({ 2, 200 }, { events[3].attempt, events[3].status })
    assert.same({ 404, "http" }, { events[4].status, events[4].kind })
    for _, ev in ipairs(events) do
      assert.is_true(ev.elapsed_ms >= 0 and ev.elapsed_ms % 1 == 0)
      for k, v in pairs(ev) do
        assert.is_nil(tostring(v):find(TOKEN, 1, true), k)
      end
    end
  end)
end)

describe("on_event", function()
  local fake
  setup(function() fake = helper.start_fake {} end)
  teardown(function() fake:stop() end)

  it("that raises does not stop the call, nor lose its result", function()
    local code, out, err = helper.run({ helper.LUA, "-e", ([[
      local e = require("empirical")
      local c = assert(e.new { token = %q, base_url = %q, on_event = function() error("logger down") end })
      for i = 1, 50 do assert(c:trigger { environment = "staging" }) end
      local run = assert(c:trigger { environment = "staging" })
      collectgarbage() collectgarbage()
      io.stdout:write(run.id)
    ]]):format(fake.token, fake.url) })
    assert.equal(0, code, err)
    assert.equal("51", out)
    local _, reports = err:gsub("empirical: on_event raised an error %(ignored, and later ones not reported%): [^\n]*logger down\n", "")
    assert.equal(1, reports, err)
  end)

  it("must be a function", function()
    local c, err = empirical.new { token = "t", base_url = fake.url, on_event = "print" }
    assert.is_nil(c)
    assert.equal("config", err.kind)
    assert.equal("on_event", err.field)
  end)

  it("is collected with its client, closures over the client included", function()
    local weak = setmetatable({}, { __mode = "k" })
    do
      local client
      client = helper.client(fake, { on_event = function() return client end })
      weak[client] = true
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)
end)
