-- OpenResty: nginx-light with lua-nginx-module, on loopback in front of the
-- fake, running examples/openresty. Requests go through nginx's own
-- non-blocking proxy (ngx.location.capture); the module only encodes and
-- decodes, loaded into nginx's LuaJIT from build/jit.
local helper = require("helper")
local socket = require("socket")
local http, ltn12, cjson = require("socket.http"), require("ltn12"), require("cjson")

local error_log

local function request(url, method, body)
  local chunks = {}
  local _, status = http.request {
    url = url, method = method, sink = ltn12.sink.table(chunks),
    source = body and ltn12.source.string(body) or nil,
    headers = body and { ["content-length"] = #body, ["content-type"] = "application/json" } or nil,
  }
  local text = table.concat(chunks)
  local ok, value = pcall(cjson.decode, text)
  if not ok then
    local f = io.open(error_log)
    error(("nginx answered %s: %s\nerror.log:\n%s"):format(tostring(status), text, f and f:read("*a") or "(none)"), 2)
  end
  return status, value
end

describe("OpenResty", function()
  local fake, dir, url

  setup(function()
    fake = helper.start_fake { speed = 50, token = "openresty-secret-token" }
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local port = helper.free_port()
    local f = assert(io.open("examples/openresty/nginx.conf"))
    local conf = f:read("*a")
    f:close()
    -- nginx's workers may run as another user: they get a world-readable
    -- copy of what they load, not this checkout (which may be private).
    local root = dir .. "/root"
    assert(os.execute(("mkdir -p %s/examples %s/build && cp -r lua %s/ && cp -r examples/openresty %s/examples/ "
                       .. "&& cp -r build/jit %s/build/ && chmod -R a+rX %s"):format(root, root, root, root, root, dir)))
    error_log = dir .. "/error.log"
    local values = { PREFIX = dir, ROOT = root, PORT = port, API_HOST = fake.url:match("//(.*)$"), API_SCHEME = "http" }
    conf = conf:gsub("%${(%u+_?%u*)}", function(name) return assert(values[name], name) end)
    f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local code, _, err = helper.run({ "nginx", "-p", dir, "-c", dir .. "/nginx.conf" },
                                    { EMPIRICALRUN_KEY = fake.token })
    assert(code == 0, "nginx did not start: " .. err)
    url = ("http://127.0.0.1:%d"):format(port)
    for _ = 1, 50 do   -- until nginx listens
      local probe = socket.tcp()
      local up = probe:connect("127.0.0.1", port)
      probe:close()
      if up then break end
      socket.sleep(0.1)
    end
  end)

  teardown(function()
    helper.run({ "nginx", "-p", dir, "-c", dir .. "/nginx.conf", "-s", "stop" })
    fake:stop()
    helper.remove_dir(dir)
  end)

  before_each(function() fake:reset() end)

  it("triggers, reads and re-runs a run through nginx", function()
    local status, run = request(url .. "/release/trigger", "POST",
                                cjson.encode { environment = "staging", total_shards = 2, tags = { "@smoke" } })
    assert.equal(200, status)
    assert.equal("queued", run.state)
    local id = ("%d"):format(run.id)
    fake:clock { advance = 60 }
    local _, detail = request(url .. "/release/" .. id, "GET")
    assert.equal("ended", detail.state)
    assert.equal("failed", detail.verdict)
    assert.same({ "checkout > pays with card" }, detail.failed_tests)
    local _, again = request(url .. "/release/" .. id .. "/rerun", "POST", '{"only_failed":true}')
    assert.is_true(again.id > run.id)

    local log = fake:log()
    assert.same({ "PUT", "GET", "POST" }, { log[1].method, log[2].method, log[3].method })
    assert.equal("Bearer " .. fake.token, log[1].headers.authorization)
    assert.same({ environment = "staging", total_shards = 2, tags = { "@smoke" } }, cjson.decode(log[1].body))
    assert.equal("/api/test-runs/" .. id .. "/re-run", log[3].path)
    assert.equal('{"only_failed":true}', log[3].body)
  end)

  it("refuses bad input in nginx, before anything reaches the API", function()
    local status, answer = request(url .. "/release/trigger", "POST", '{"environment":"staging","total_shards":0}')
    assert.equal(400, status)
    assert.equal("invalid", answer.error.kind)
    assert.equal("total_shards", answer.error.field)
    assert.equal(0, #fake:log())
  end)

  it("passes the API's errors on, with their message and no token", function()
    local status, answer = request(url .. "/release/4242", "GET")
    assert.equal(404, status)
    assert.equal("http", answer.error.kind)
    assert.matches("not found", answer.error.message)
    assert.is_nil(cjson.encode(answer):find(fake.token, 1, true))
  end)
end)
