-- The fake API itself, spoken to over plain HTTP (luasocket), as a user's own
-- script or another client would.
local helper = require("helper")
local http, ltn12, cjson = require("socket.http"), require("ltn12"), require("cjson")

local function call(fake, method, path, body, token)
  local chunks = {}
  local _, status = http.request {
    url = fake.url .. path, method = method, sink = ltn12.sink.table(chunks),
    source = body and ltn12.source.string(body) or nil,
    headers = { authorization = token and ("Bearer " .. token) or nil,
                ["content-length"] = body and #body or nil, ["content-type"] = body and "application/json" or nil },
  }
  return status, cjson.decode(table.concat(chunks))
end

describe("the fake API", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 20, environments = { "staging", "qa" } } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("answers 401 with the error envelope without the right token", function()
    local status, body = call(fake, "GET", "/api/test-runs/1", nil, "nope")
    assert.equal(401, status)
    assert.equal(cjson.null, body.data)
    assert.truthy(body.error.message)
    assert.equal(401, (call(fake, "GET", "/api/test-runs/1")))
  end)

  it("validates trigger bodies like the schema", function()
    local bad = {
      '{"build":{}}', '{"environment":"prod"}', '{"environment":"qa","branch":"x","build":{}}',
      '{"environment":"qa","total_shards":0}', '{"environment":"qa","tags":[1]}', "{nope",
    }
    for _, body in ipairs(bad) do
      local status, answer = call(fake, "PUT", "/api/test-runs", body, fake.token)
      assert.equal(400, status, body)
      assert.truthy(answer.error.message, body)
    end
    local _, answer = call(fake, "PUT", "/api/test-runs", '{"environment":"prod"}', fake.token)
    assert.truthy(answer.error.message:find("Valid environments: staging, qa", 1, true))
  end)

  it("answers 404 for unknown runs, and moves known ones to ended", function()
    assert.equal(404, (call(fake, "GET", "/api/test-runs/77", nil, fake.token)))
    assert.equal(404, (call(fake, "POST", "/api/test-runs/77/re-run", "{}", fake.token)))
    local _, created = call(fake, "PUT", "/api/test-runs", '{"environment":"qa"}', fake.token)
    local id = ("%d"):format(created.data.test_run.id)   -- plain cjson decodes 1 as 1.0
    fake:clock { advance = 60 }
    local _, detail = call(fake, "GET", "/api/test-runs/" .. id, nil, fake.token)
    local run = detail.data.test_run.testRun
    assert.equal("ended", run.state)
    assert.equal(1, run.failed_count)
    assert.equal(1, run.flaky_count)
    assert.equal(run.total_count, #detail.data.test_run.flattenedSummaryDetails)
  end)

  it("logs every API request and none of the control calls", function()
    call(fake, "GET", "/api/test-runs/1", nil, fake.token)
    fake:clock { advance = 1 }
    local log = fake:log()
    assert.equal(1, #log)
    assert.equal("/api/test-runs/1", log[1].path)
  end)
end)
