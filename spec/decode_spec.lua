-- Responses to results and errors, without I/O: empirical.decode.
local empirical = require("empirical")
local cjson = require("cjson")

local JSON = { ["Content-Type"] = "application/json; charset=utf-8" }

local function detail_body(overrides)
  local run = {
    id = 456, state = "ended", total_count = 3, success_count = 2, failed_count = 1,
    skipped_count = cjson.null, flaky_count = 0, duration = 61000, test_run_branch = "main",
    environment_slug = "staging", environment_name = "Staging", build_url = cjson.null,
    build_branch = "main", commit = "abc", created_at = "2024-01-15T10:30:00.000Z",
    test_run_head_sha = cjson.null, run_started_at = cjson.null, run_ended_at = cjson.null,
    summary_url = cjson.null, undocumented = { nested = 2 },
  }
  for k, v in pairs(overrides or {}) do run[k] = v end
  return cjson.encode { data = { test_run = {
    project = { id = 1, name = "Acme", repo_name = "acme/e2e" },
    testRun = run,
    flattenedSummaryDetails = { { name = "a", status = "passed" }, cjson.null, { name = "b", status = "failed", snooze_info = cjson.null } },
  } } }
end

local CREATED = '{"data":{"trigger":{"success":true},"test_run":{"id":456,"state":"queued",'
  .. '"test_run_branch":"main","created_at":"2024-01-15T10:30:00.000Z"}}}'

describe("decode", function()
  it("returns data.test_run of a trigger, with the id as an integer", function()
    local run = assert(empirical.decode("trigger", 200, CREATED, JSON))
    assert.same({ id = 456, state = "queued", test_run_branch = "main", created_at = "2024-01-15T10:30:00.000Z" }, run)
    assert.equal("456", tostring(run.id))
    if math.type then assert.equal("integer", math.type(run.id)) end
  end)

  it("returns the detail of a get: nulls become nil, unknown fields are kept, null items dropped", function()
    local d = assert(empirical.decode("get", 200, detail_body(), JSON))
    assert.equal("Acme", d.project.name)
    assert.equal(456, d.testRun.id)
    assert.is_nil(d.testRun.skipped_count)
    assert.is_nil(d.testRun.build_url)
    assert.equal(2, d.testRun.undocumented.nested)
    assert.equal("61000", tostring(d.testRun.duration))
    assert.equal(2, #d.flattenedSummaryDetails)
    assert.equal("b", d.flattenedSummaryDetails[2].name)
    assert.is_nil(d.flattenedSummaryDetails[2].snooze_info)
  end)

  it("keeps fractions as floats", function()
    local d = assert(empirical.decode("get", 200, detail_body { duration = 1.5 }, JSON))
    assert.equal(1.5, d.testRun.duration)
  end)

  it("accepts a response without a content type, like OpenResty's capture may give", function()
    assert.truthy(empirical.decode("trigger", 200, CREATED))
  end)

  it("reads the server's message from an error envelope", function()
    local r, err = empirical.decode("get", 404, '{"data":null,"error":{"message":"Test run 9 not found"}}', JSON)
    assert.is_nil(r)
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("Test run 9 not found", err.message)
    assert.is_false(err.retryable)
    assert.equal("empirical: http 404: Test run 9 not found", tostring(err))
  end)

  it("names the token as the likely cause of a 401", function()
    local _, err = empirical.decode("get", 401, '{"data":null,"error":{"message":"Unauthorized"}}', JSON)
    assert.truthy(err.message:find("EMPIRICALRUN_KEY", 1, true))
  end)

  it("treats a 2xx carrying an error envelope as an error", function()
    local _, err = empirical.decode("get", 200, '{"data":null,"error":{"message":"quota exceeded"}}', JSON)
    assert.equal("http", err.kind)
    assert.equal("quota exceeded", err.message)
  end)

  it("treats trigger.success = false as an error", function()
    local _, err = empirical.decode("trigger", 200,
      '{"data":{"trigger":{"success":false},"test_run":{"id":1,"state":"queued","test_run_branch":"m","created_at":"x"}}}', JSON)
    assert.equal("http", err.kind)
    assert.equal("data.trigger.success", err.field)
  end)

  it("marks a 5xx on trigger as not retryable and says the run may exist", function()
    local _, err = empirical.decode("trigger", 503, "", JSON)
    assert.equal(503, err.status)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("may have been created", 1, true))
  end)

  it("marks a 5xx on get as retryable", function()
    local _, err = empirical.decode("get", 503, "", JSON)
    assert.is_true(err.retryable)
  end)

  it("describes an HTML error page and keeps the first KiB of it", function()
    local page = "<html>" .. ("x"):rep(5000) .. "</html>"
    local _, err = empirical.decode("get", 502, page, { ["content-type"] = "text/html" })
    assert.equal("http", err.kind)
    assert.truthy(err.message:find("text/html", 1, true))
    assert.equal(1024, #err.body)
  end)

  it("names the target host of a redirect and follows nothing", function()
    local _, err = empirical.decode("get", 302, "", { Location = "https://evil.example.net/steal" })
    assert.equal(302, err.status)
    assert.truthy(err.message:find("evil.example.net", 1, true))
  end)

  local bad = {
    { "truncated JSON", '{"data":{"test_run":', "not valid JSON" },
    { "not JSON at all", "OK", "not valid JSON" },
    { "a JSON array", "[1,2]", "expected a JSON object" },
    { "no data", '{"meta":1}', "data: is missing from the response" },
    { "null data", '{"data":null}', "data: expected an object, got null" },
    { "invalid UTF-8", '{"data":"caf\233"}', "UTF-8" },
    { "NaN literal", '{"data":{"test_run":{"testRun":{"id":NaN,"state":"x"}}}}', "not valid JSON" },
    { "missing testRun", '{"data":{"test_run":{"project":{}}}}', "data.test_run.testRun: is missing" },
    { "id as string", '{"data":{"test_run":{"testRun":{"id":"456","state":"ended"}}}}',
      "data.test_run.testRun.id: expected a number, got a string (\"456\")" },
    { "state as number", '{"data":{"test_run":{"testRun":{"id":4,"state":3}}}}', "data.test_run.testRun.state: expected a string" },
    { "counts as strings", '{"data":{"test_run":{"testRun":{"id":4,"state":"ended","failed_count":"1"}}}}', "failed_count: expected a number" },
    { "details as object", '{"data":{"test_run":{"testRun":{"id":4,"state":"ended"},"flattenedSummaryDetails":{"a":1}}}}', "expected an array" },
    { "nested too deep", '{"data":' .. ("["):rep(200) .. ("]"):rep(200) .. "}", "not valid JSON" },
  }
  for _, row in ipairs(bad) do
    it("refuses a 200 with " .. row[1], function()
      local r, err = empirical.decode("get", 200, row[2], JSON)
      assert.is_nil(r)
      assert.equal("decode", err.kind)
      assert.equal(200, err.status)
      assert.truthy(err.message:find(row[3], 1, true), err.message)
    end)
  end

  it("refuses a 200 whose content type is not JSON", function()
    local _, err = empirical.decode("trigger", 200, CREATED, { ["Content-Type"] = "text/plain" })
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("text/plain", 1, true))
  end)

  it("leaves the caller's own cjson settings alone", function()
    local before = cjson.encode_max_depth()
    empirical.decode("get", 200, detail_body(), JSON)
    assert.equal(before, cjson.encode_max_depth())
  end)
end)
