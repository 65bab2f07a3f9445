-- OpenResty: the release service of examples/openresty in Debian's
-- nginx-light with lua-nginx-module, its config written by the README's
-- render command, over https to fakes whose certificates are made here.
-- Requests go through nginx's own non-blocking proxy (ngx.location.capture);
-- the module only encodes and decodes, loaded into nginx's LuaJIT from build/jit.
local helper = require("helper")
local socket = require("socket")
local http, ltn12, cjson = require("socket.http"), require("ltn12"), require("cjson")

-- The README's command, run as is from the repository root (the README is checked for it below).
local RENDER = 'luajit examples/openresty/render.lua "$EMPIRICAL_RELEASE_DIR/nginx.conf"'
local KEY = "openresty-api-key-7c1e5d"
local TOKEN = "release-token-4b8f0a2d9e6c1357"

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local text = f:read("*a")
  f:close()
  return text
end

local function sh(command, env)
  return helper.run({ "sh", "-c", command }, env)
end

-- Two intermediates between the test CA and the API's certificate, as
-- public CAs issue them (nginx's default verify depth refuses this chain).
local function chain_certs(certs)
  local d = certs.dir
  local function openssl(args) assert(sh("openssl " .. args .. " >/dev/null 2>&1") == 0, "openssl " .. args) end
  local f = assert(io.open(d .. "/ca.ext", "w"))
  f:write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
  f:close()
  f = assert(io.open(d .. "/leaf.ext", "w"))
  f:write("subjectAltName=DNS:localhost\n")
  f:close()
  local issuer, issuer_key = certs.ca, d .. "/ca.key"
  for _, name in ipairs { "int1", "int2", "leaf" } do
    local p = d .. "/" .. name
    openssl(("req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s.key -out %s.csr"):format(name, p, p))
    openssl(("x509 -req -in %s.csr -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s/%s -out %s.pem")
      :format(p, issuer, issuer_key, d, name == "leaf" and "leaf.ext" or "ca.ext", p))
    issuer, issuer_key = p .. ".pem", p .. ".key"
  end
  assert(sh(("cat %s/leaf.pem %s/int2.pem %s/int1.pem > %s/chain.pem"):format(d, d, d, d)) == 0)
  return d .. "/chain.pem", d .. "/leaf.key"
end

describe("OpenResty", function()
  local certs, base, root, fake, wrong_host_fake
  local services = {}    -- name -> { url, prefix }
  local seen = {}        -- every answer's headers and body, for the key check

  -- Render (the README's command) and start one service in front of api_url.
  local function start_service(name, api_url, timeout)
    local prefix = base .. "/" .. name
    assert(os.execute("mkdir -p " .. prefix))
    local port = helper.free_port()
    local code, _, err = sh("cd " .. helper.shell_quote(root) .. " && " .. RENDER, {
      EMPIRICAL_RELEASE_DIR = prefix, EMPIRICALRUN_API_URL = api_url, EMPIRICAL_RELEASE_CA_FILE = certs.ca,
      EMPIRICAL_RELEASE_LISTEN = "127.0.0.1:" .. port, EMPIRICAL_RELEASE_TIMEOUT = timeout or false })
    assert(code == 0, "render.lua failed: " .. err)
    code, _, err = helper.run({ "nginx", "-p", prefix, "-c", "nginx.conf" },
                              { EMPIRICALRUN_KEY = KEY, EMPIRICAL_RELEASE_TOKEN = TOKEN })
    assert(code == 0, "nginx did not start: " .. err .. read(prefix .. "/error.log"))
    for _ = 1, 50 do   -- until nginx listens
      local probe = socket.tcp()
      local up = probe:connect("127.0.0.1", port)
      probe:close()
      if up then break end
      socket.sleep(0.1)
    end
    services[name] = { url = ("http://127.0.0.1:%d"):format(port), prefix = prefix }
    return services[name]
  end

  -- status, decoded JSON body, headers, the body's text. token: the X-Release-Token to send (false: none).
  local function request(service, method, path, body, token)
    local chunks = {}
    local headers = { ["x-release-token"] = token == nil and TOKEN or token or nil }
    if body then headers["content-length"], headers["content-type"] = #body, "application/json" end
    local _, status, answer_headers = http.request {
      url = service.url .. path, method = method, sink = ltn12.sink.table(chunks),
      source = body and ltn12.source.string(body) or nil, headers = headers,
    }
    local text = table.concat(chunks)
    seen[#seen + 1] = { headers = answer_headers, body = text }
    local ok, value = pcall(cjson.decode, text)
    if not ok then
      error(("nginx answered %s: %s\nerror.log:\n%s"):format(tostring(status), text,
                                                         read(service.prefix .. "/error.log")), 2)
    end
    return status, value, answer_headers, text
  end

  setup(function()
    certs = helper.make_certs()
    local chain, leaf_key = chain_certs(certs)
    fake = helper.start_fake { speed = 50, token = KEY, tls_cert = chain, tls_key = leaf_key }
    wrong_host_fake = helper.start_fake { token = KEY, tls_cert = certs.other_cert, tls_key = certs.other_key }
    base = os.tmpname()
    os.remove(base)
    -- nginx's workers may run as another user: they get a world-readable
    -- copy of what they load, not this checkout (which may be private).
    root = base .. "/root"
    assert(os.execute(("mkdir -p %s/examples %s/build/jit && cp -r lua %s/ && cp -r examples/openresty %s/examples/ "
                       .. "&& cp -r build/jit/empirical %s/build/jit/ && chmod -R a+rX %s")
                       :format(root, root, root, root, root, base)))
    start_service("main", "https://localhost:" .. fake.url:match(":(%d+)$"))
    start_service("impatient", "https://localhost:" .. fake.url:match(":(%d+)$"), "1")
    start_service("wrong_host", "https://localhost:" .. wrong_host_fake.url:match(":(%d+)$"))
    start_service("closed_port", "https://localhost:" .. helper.free_port())
  end)

  teardown(function()
    for _, service in pairs(services) do
      helper.run({ "nginx", "-p", service.prefix, "-c", "nginx.conf", "-s", "stop" })
    end
    if fake then fake:stop() end
    if wrong_host_fake then wrong_host_fake:stop() end
    if base then helper.remove_dir(base) end
    if certs then helper.remove_dir(certs.dir) end
  end)

  before_each(function() fake:reset() end)

  it("is configured by the render command the README gives", function()
    assert.truthy(read("README.md"):find(RENDER, 1, true), "README.md lacks: " .. RENDER)
  end)

  it("triggers, reads and re-runs a run over https, checking the API's certificate chain", function()
    local main = services.main
    local status, run = request(main, "POST", "/release/trigger",
                                cjson.encode { environment = "staging", total_shards = 2, tags = { "@smoke" } })
    assert.equal(200, status)
    assert.equal("queued", run.state)
    local id = ("%d"):format(run.id)
    local _, queued, _, text = request(main, "GET", "/release/" .. id)
    assert.equal("running", queued.verdict)
    assert.matches('"failed_tests":[]', text, 1, true)     -- a list, even when empty
    fake:clock { advance = 60 }
    local _, detail = request(main, "GET", "/release/" .. id)
    assert.equal("ended", detail.state)
    assert.equal("failed", detail.verdict)
    assert.same({ "checkout > pays with card" }, detail.failed_tests)
    local _, again = request(main, "POST", "/release/" .. id .. "/rerun", '{"only_failed":true}')
    assert.is_true(again.id > run.id)

    local log = fake:log()
    assert.same({ "PUT", "GET", "GET", "POST" }, { log[1].method, log[2].method, log[3].method, log[4].method })
    assert.equal("Bearer " .. KEY, log[1].headers.authorization)
    assert.equal("localhost:" .. fake.url:match(":(%d+)$"), log[1].headers.host)
    assert.is_nil(log[1].headers["x-release-token"])      -- the caller's headers stay in nginx
    assert.same({ environment = "staging", total_shards = 2, tags = { "@smoke" } }, cjson.decode(log[1].body))
    assert.equal("/api/test-runs/" .. id .. "/re-run", log[4].path)
    assert.equal('{"only_failed":true}', log[4].body)
  end)

  it("answers each route only with its method: 405 with Allow, and nothing reaches the API", function()
    local main = services.main
    local status, run = request(main, "POST", "/release/trigger", '{"environment":"staging"}')
    assert.equal(200, status)
    local id = ("%d"):format(run.id)
    local wrong = {
      { "GET", "/release/" .. id .. "/rerun", "POST" }, { "DELETE", "/release/" .. id .. "/rerun", "POST" },
      { "PUT", "/release/" .. id .. "/rerun", "POST" }, { "PATCH", "/release/" .. id .. "/rerun", "POST" },
      { "GET", "/release/trigger", "POST" }, { "PUT", "/release/trigger", "POST" },
      { "POST", "/release/" .. id, "GET" }, { "DELETE", "/release/" .. id, "GET" },
    }
    for _, case in ipairs(wrong) do
      local method, path, allow = case[1], case[2], case[3]
      local answer, headers
      status, answer, headers = request(main, method, path, method ~= "GET" and '{"environment":"staging"}' or nil)
      assert.equal(405, status, method .. " " .. path)
      assert.equal(allow, headers.allow, method .. " " .. path)
      assert.equal("method", answer.error.field)
      assert.is_false(answer.error.sent)
    end
    local log = fake:log()
    assert.equal(1, #log)        -- the trigger above, nothing since
    assert.equal(1, helper.count(log, "PUT"))
  end)

  it("refuses callers without the service's token with 401, before anything is sent", function()
    local main = services.main
    local body = '{"environment":"staging"}'
    for _, token in ipairs { false, "", TOKEN:sub(1, -2), TOKEN .. "x", TOKEN:upper(), KEY, "Bearer " .. TOKEN } do
      local status, answer = request(main, "POST", "/release/trigger", body, token)
      assert.equal(401, status, "token " .. tostring(token))
      assert.equal("X-Release-Token", answer.error.field)
      assert.is_false(answer.error.sent)
    end
    assert.equal(401, (request(main, "GET", "/no/such/route", nil, false)))   -- unknown callers learn no routes
    assert.equal(0, #fake:log())
  end)

  it("refuses bad input in nginx, before anything reaches the API", function()
    local main = services.main
    local status, answer = request(main, "POST", "/release/trigger", '{"environment":"staging","total_shards":0}')
    assert.equal(400, status)
    assert.equal("invalid", answer.error.kind)
    assert.equal("total_shards", answer.error.field)
    assert.is_false(answer.error.sent)
    status, answer = request(main, "POST", "/release/trigger", '{"environment":')
    assert.equal(400, status)
    assert.matches("JSON object", answer.error.message)
    status = request(main, "POST", "/release/trigger")
    assert.equal(400, status)
    status, answer = request(main, "POST", "/release/3/rerun", '{"id":4}')
    assert.equal(400, status)
    assert.equal("id", answer.error.field)
    status, answer = request(main, "POST", "/release/trigger", '{"environment":"' .. ("x"):rep(70000) .. '"}')
    assert.equal(413, status)
    assert.equal("body", answer.error.field)
    status, answer = request(main, "GET", "/release/abc")
    assert.equal(404, status)
    assert.matches("GET /release/{id}", answer.error.message, 1, true)
    assert.equal(0, #fake:log())
  end)

  it("reads JSON null as absent, as the schema does", function()
    local status, run = request(services.main, "POST", "/release/trigger",
                                '{"environment":"staging","branch":null,"metadata":{"pr":null}}')
    assert.equal(200, status)
    assert.equal("queued", run.state)
    assert.same({ environment = "staging", metadata = {} }, cjson.decode(fake:log()[1].body))
  end)

  it("passes the API's errors on with their message; the API refusing the key is the service's 502", function()
    local main = services.main
    local status, answer = request(main, "GET", "/release/4242")
    assert.equal(404, status)
    assert.equal("http", answer.error.kind)
    assert.equal(404, answer.error.status)
    assert.matches("not found", answer.error.message)
    assert.is_true(answer.error.sent)

    fake:script { method = "PUT", status = 401, body = { data = cjson.null, error = { message = "Invalid API key" } } }
    status, answer = request(main, "POST", "/release/trigger", '{"environment":"staging"}')
    assert.equal(502, status)
    assert.equal(401, answer.error.status)
    assert.matches("EMPIRICALRUN_KEY", answer.error.message)
  end)

  it("reports a request that never left as not sent: a certificate for another host", function()
    local status, answer = request(services.wrong_host, "POST", "/release/trigger", '{"environment":"staging"}')
    assert.equal(502, status)
    assert.equal("transport", answer.error.kind)
    assert.is_false(answer.error.sent)
    assert.is_true(answer.error.retryable)
    assert.matches("did not reach the API", answer.error.message)
    assert.not_matches("may have been created", answer.error.message)
    assert.equal(0, #wrong_host_fake:log())
    assert.matches('certificate does not match "localhost"', read(services.wrong_host.prefix .. "/error.log"))
  end)

  it("reports a request that never left as not sent: a port nothing listens on", function()
    local status, answer = request(services.closed_port, "POST", "/release/3/rerun")
    assert.equal(502, status)
    assert.is_false(answer.error.sent)
    assert.is_true(answer.error.retryable)
    assert.matches("did not reach the API", answer.error.message)
    assert.matches("Connection refused", read(services.closed_port.prefix .. "/error.log"))
  end)

  it("says the run may exist only when the request reached the API", function()
    local main = services.main
    local trigger = '{"environment":"staging"}'
    local function try()
      local status, answer = request(main, "POST", "/release/trigger", trigger)
      assert.equal(502, status)
      assert.is_true(answer.error.sent)
      assert.is_false(answer.error.retryable)
      assert.matches("the run may have been created", answer.error.message)
      return answer.error
    end
    fake:script { method = "PUT", drop = "before_response" }       -- reads the request, then hangs up
    assert.matches("failed after the request was sent", try().message)
    fake:script { method = "PUT", status = 503, body = { data = cjson.null, error = { message = "overloaded" } } }
    local err = try()
    assert.equal(503, err.status)
    assert.matches("overloaded", err.message)
    fake:script { method = "PUT", status = 200, body = { data = { test_run = { id = 9, state = "queued" } } },
                  drop = "mid_body" }
    assert.matches("answer was cut off", try().message)
    assert.equal(3, helper.count(fake:log(), "PUT"))   -- each went out once: nginx sent none again

    fake:script { method = "GET", drop = "before_response" }       -- a read is safe to repeat
    local status, answer = request(main, "GET", "/release/1")
    assert.equal(502, status)
    assert.is_true(answer.error.sent)
    assert.is_true(answer.error.retryable)
    assert.not_matches("may have been created", answer.error.message)

    fake:script { method = "PUT", delay = 2 }         -- answered after nginx gave up waiting (1 s)
    status, answer = request(services.impatient, "POST", "/release/trigger", trigger)
    assert.equal(504, status)
    assert.equal("timeout", answer.error.kind)
    assert.is_true(answer.error.sent)
    assert.matches("the run may have been created", answer.error.message)
    for _ = 1, 100 do                                 -- and so it was, once the fake answered
      status = request(main, "GET", "/release/1")
      if status == 200 then break end
      socket.sleep(0.1)
    end
    assert.equal(200, status)
  end)

  it("keeps the API key and the caller's token out of every answer and every log", function()
    local main = services.main
    request(main, "POST", "/release/trigger", '{"environment":"staging"}')
    request(main, "GET", "/release/1")
    request(main, "GET", "/release/1", nil, KEY)
    fake:script { method = "PUT", status = 401,
                  body = { data = cjson.null, error = { message = "key " .. KEY .. " is revoked" } } }
    local status, answer = request(main, "POST", "/release/trigger", '{"environment":"staging"}')
    assert.equal(502, status)
    assert.matches("key [the API key] is revoked", answer.error.message, 1, true)
    fake:script { method = "PUT", drop = "before_response" }
    request(main, "POST", "/release/trigger", '{"environment":"staging"}')
    request(services.wrong_host, "GET", "/release/1")

    for _, answer_seen in ipairs(seen) do     -- this test's answers and every earlier one
      local text = answer_seen.body
      for name, value in pairs(answer_seen.headers or {}) do text = text .. "\n" .. name .. ": " .. value end
      assert.is_nil(text:find(KEY, 1, true), text)
      assert.is_nil(text:find(TOKEN, 1, true), text)
    end
    for _, service in pairs(services) do
      for _, name in ipairs { "error.log", "access.log" } do
        local text = read(service.prefix .. "/" .. name)
        assert.is_nil(text:find(KEY, 1, true), service.prefix .. "/" .. name)
        assert.is_nil(text:find(TOKEN, 1, true), service.prefix .. "/" .. name)
      end
    end
    -- The logs checked hold what was done: the requests, and the upstream's failures.
    assert.matches('"POST /release/trigger HTTP/1.1" 502', read(services.main.prefix .. "/access.log"))
    assert.matches("upstream prematurely closed", read(services.main.prefix .. "/error.log"))
  end)

  it("will not start without the secrets, or with a guessable token", function()
    local prefix = base .. "/unstarted"
    assert(os.execute("mkdir -p " .. prefix))
    assert.equal(0, (sh("cd " .. helper.shell_quote(root) .. " && " .. RENDER, {
      EMPIRICAL_RELEASE_DIR = prefix, EMPIRICALRUN_API_URL = "https://localhost:" .. fake.url:match(":(%d+)$"),
      EMPIRICAL_RELEASE_CA_FILE = certs.ca, EMPIRICAL_RELEASE_LISTEN = "127.0.0.1:" .. helper.free_port() })))
    local cases = {
      { { EMPIRICALRUN_KEY = false, EMPIRICAL_RELEASE_TOKEN = TOKEN }, "EMPIRICALRUN_KEY is not set" },
      { { EMPIRICALRUN_KEY = KEY, EMPIRICAL_RELEASE_TOKEN = false }, "EMPIRICAL_RELEASE_TOKEN is not set" },
      { { EMPIRICALRUN_KEY = KEY, EMPIRICAL_RELEASE_TOKEN = "" }, "EMPIRICAL_RELEASE_TOKEN is not set" },
      { { EMPIRICALRUN_KEY = KEY, EMPIRICAL_RELEASE_TOKEN = "short-token" }, "at least 16 characters" },
      { { EMPIRICALRUN_KEY = "two words", EMPIRICAL_RELEASE_TOKEN = TOKEN }, "printable ASCII without spaces" },
    }
    for _, case in ipairs(cases) do
      local code, _, err = helper.run({ "nginx", "-p", prefix, "-c", "nginx.conf" }, case[1])
      if code == 0 then helper.run({ "nginx", "-p", prefix, "-c", "nginx.conf", "-s", "stop" }) end
      assert.is_not.equal(0, code)
      assert.matches(case[2], err, 1, true)
    end
  end)

  it("renders the API's URL with its port, and refuses URLs it cannot serve safely", function()
    local out = base .. "/render"
    assert(os.execute("mkdir -p " .. out))
    local function render(url)
      return sh("cd " .. helper.shell_quote(root) .. " && " .. RENDER,
                { EMPIRICAL_RELEASE_DIR = out, EMPIRICALRUN_API_URL = url })
    end
    assert.equal(0, (render(false)))           -- the default: https://api.empirical.run
    local conf = read(out .. "/nginx.conf")
    assert.matches("server api.empirical.run:443;", conf, 1, true)
    assert.matches("proxy_ssl_name api.empirical.run;", conf, 1, true)
    assert.matches("proxy_set_header Host api.empirical.run;", conf, 1, true)
    assert.matches("proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;", conf, 1, true)
    assert.matches("$remote_addr [$time_local]", conf, 1, true)   -- nginx's own variables are left alone
    assert.matches("proxy_read_timeout 30s;", conf, 1, true)
    assert.equal(0, (render("https://api.example.test:8443/")))
    assert.matches("server api.example.test:8443;", read(out .. "/nginx.conf"), 1, true)
    assert.matches("proxy_set_header Host api.example.test:8443;", read(out .. "/nginx.conf"), 1, true)

    local before = read(out .. "/nginx.conf")
    for url, problem in pairs {
      ["http://api.empirical.run"] = "in clear",
      ["https://127.0.0.1:8443"] = "not an IP address",
      ["https://user:pw@api.empirical.run"] = "without a user",
      ["https://api.empirical.run/?x=1"] = "must not contain",
      ["ftp://api.empirical.run"] = "must start with https://",
      ["https://api.empirical.run;evil"] = "must not contain",
      ["https://api.empirical.run:99999"] = "bad port",
    } do
      local code, _, err = render(url)
      assert.equal(1, code, url)
      assert.matches(problem, err, 1, true)
      assert.is_nil(err:find("traceback"), err)
    end
    for _, timeout in ipairs { "0", "1.5", "30s", "-1" } do
      local code, _, err = sh("cd " .. helper.shell_quote(root) .. " && " .. RENDER,
                              { EMPIRICAL_RELEASE_DIR = out, EMPIRICAL_RELEASE_TIMEOUT = timeout })
      assert.equal(1, code, timeout)
      assert.matches("whole seconds", err, 1, true)
    end
    assert.equal(before, read(out .. "/nginx.conf"))       -- a refused render leaves the file as it was
  end)
end)
