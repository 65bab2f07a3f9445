-- The endpoints as rows: cancel and list beside trigger, rerun and get, what
-- each sends (checked on the wire by a capture server: the fake's scripted
-- answers and its request log), and responses as liberal as the vendor's
-- schema.
local empirical = require("empirical")
local helper = require("helper")
local cjson = require("cjson")

local JSON = "application/json"

describe("the operations", function()
  it("are one list of rows, in the order of the vendor's docs, that the client's methods come from", function()
    local names = {}
    for i, op in ipairs(empirical.OPERATIONS) do names[i] = op.name end
    assert.same({ "trigger", "rerun", "get", "cancel", "list" }, names)
    local rows = {}
    for _, op in ipairs(empirical.OPERATIONS) do rows[op.name] = op end
    assert.same({ "POST", "/api/test-runs/{id}/cancel", true, true, { "id" } },
                { rows.cancel.method, rows.cancel.path, rows.cancel.idempotent, rows.cancel.body, rows.cancel.path_params })
    assert.same({ "id", "branch", "state", "result", "environment_ids", "interval_in_days", "page", "per_page" },
                rows.list.query)
    assert.is_false(rows.trigger.idempotent)
    assert.is_false(rows.rerun.idempotent)
    local client = assert(empirical.new { token = "t", base_url = "http://127.0.0.1:9" })
    for name in pairs(rows) do assert.is_function(client[name], name) end
    client:close()
  end)
end)

describe("every public function", function()
  it("fails as nil, err with a kind, whatever it is given", function()
    for _, call in ipairs {
      function() return empirical.encode("delete", {}) end,
      function() return empirical.encode(nil) end,
      function() return empirical.encode("get", "5") end,
      function() return empirical.decode("nope", 200, "{}") end,
      function() return empirical.decode("get", "200", "{}") end,
      function() return empirical.decode("get", 200, { "body" }) end,
      function() return empirical.decode("get", 7, "") end,
      function() return empirical.parse_report(nil) end,
      function() return empirical.new("token") end,
      function() return empirical.compose({}, "x") end,
    } do
      local result, err = call()
      assert.is_nil(result)
      assert.equal("table", type(err))
      assert.truthy(err.kind == "invalid" or err.kind == "config", tostring(err.kind))
      assert.truthy(tostring(err):find("^empirical: "), tostring(err))
    end
  end)
end)

describe("encode", function()
  describe("cancel", function()
    it("is a POST with no body, or with the reason when one is given", function()
      assert.same({ method = "POST", path = "/api/test-runs/7/cancel" }, empirical.encode("cancel", { id = 7 }))
      assert.same({ method = "POST", path = "/api/test-runs/7/cancel", body = '{"reason":"rolled back"}' },
                  empirical.encode("cancel", { id = 7, reason = "rolled back" }))
    end)

    it("refuses a bad id or reason, naming the field", function()
      for _, row in ipairs {
        { { id = 0 }, "id" }, { { id = "7" }, "id" }, { { reason = "x" }, "id" },
        { { id = 7, reason = "" }, "reason" }, { { id = 7, reason = 3 }, "reason" }, { { id = 7, why = "x" }, "why" },
      } do
        local req, err = empirical.encode("cancel", row[1])
        assert.is_nil(req)
        assert.equal("invalid", err.kind)
        assert.equal(row[2], err.field)
      end
    end)
  end)

  describe("list", function()
    it("puts every filter in the query, in the schema's order, escaped by libcurl", function()
      local req = assert(empirical.encode("list", {
        per_page = 50, page = 2, environment_ids = { 3, 4 }, state = "ended", result = "failed",
        branch = "feat/x y&z=1", interval_in_days = 7, id = 12,
      }))
      assert.equal("GET", req.method)
      assert.is_nil(req.body)
      assert.equal("/api/test-runs?id=12&branch=feat%2Fx%20y%26z%3D1&state=ended&result=failed"
                   .. "&environment_ids=3%2C4&interval_in_days=7&page=2&per_page=50", req.path)
      assert.same({ method = "GET", path = "/api/test-runs" }, empirical.encode("list", {}))
      assert.equal("/api/test-runs?page=3", empirical.encode("list", { page = 3.0 }).path)
    end)

    local bad = {
      { { page = "2" }, "page", "whole number from 1 to 2^53, got a string" },
      { { page = 0 }, "page", "got 0" },
      { { page = 1.5 }, "page", "got 1.5" },
      { { page = 0 / 0 }, "page", "got NaN" },
      { { page = math.huge }, "page", "got inf" },
      { { page = true }, "page", "got a boolean" },
      { { page = {} }, "page", "got a table" },
      { { per_page = 101 }, "per_page", "from 1 to 100, got 101" },
      { { per_page = 0 }, "per_page", "from 1 to 100, got 0" },
      { { interval_in_days = 0 }, "interval_in_days", "got 0" },
      { { id = -1 }, "id", "got -1" },
      { { state = "done" }, "state", 'expected one of pending, queued, started, ended, error, cancelled or cancelling, got "done"' },
      { { state = 1 }, "state", "expected a string" },
      { { result = "PASSED" }, "result", 'expected one of passed or failed, got "PASSED"' },
      { { environment_ids = {} }, "environment_ids", "must not be empty" },
      { { environment_ids = "3,4" }, "environment_ids", "expected a list of ids" },
      { { environment_ids = { 3, "4" } }, "environment_ids[2]", "expected a whole number" },
      { { environment_ids = { [1] = 3, [3] = 4 } }, "environment_ids", "holes" },
      { { branch = "" }, "branch", "must not be empty" },
      { { sort = "asc" }, "sort", "unknown field" },
    }
    for _, row in ipairs(bad) do
      it("refuses " .. row[2] .. " " .. row[3], function()
        local req, err = empirical.encode("list", row[1])
        assert.is_nil(req)
        assert.equal("invalid", err.kind)
        assert.equal(row[2], err.field)
        assert.truthy(err.message:find(row[3], 1, true), err.message)
      end)
    end

    it("takes no unknown field even when not strict: a query or a path has no room for them", function()
      local _, err = empirical.encode("list", { sort = "asc" }, { strict = false })
      assert.equal("sort", err.field)
      _, err = empirical.encode("get", { id = 1, extra = 2 }, { strict = false })
      assert.equal("extra", err.field)
      local req = assert(empirical.encode("cancel", { id = 1, note = "x" }, { strict = false }))
      assert.same({ note = "x" }, cjson.decode(req.body))
    end)
  end)
end)

describe("decode", function()
  it("returns a cancel's answer as it is", function()
    assert.same({ message = "Test run cancelled successfully" },
                empirical.decode("cancel", 200, '{"message":"Test run cancelled successfully"}', JSON))
    assert.same({}, empirical.decode("cancel", 200, "{}", JSON))
  end)

  it("says a 412 to a cancel means the run had already ended, with the server's words", function()
    local r, err = empirical.decode("cancel", 412, '{"data":null,"error":{"message":"Run 7 is ended"}}', JSON)
    assert.is_nil(r)
    assert.equal("http", err.kind)
    assert.equal(412, err.status)
    assert.truthy(err.message:find("had already ended", 1, true), err.message)
    assert.truthy(err.message:find("Run 7 is ended", 1, true), err.message)
    r, err = empirical.decode("cancel", 412, "", nil)
    assert.is_nil(r)
    assert.truthy(err.message:find("had already ended", 1, true), err.message)
    assert.is_false(err.retryable)
  end)

  it("returns a list page minus the data envelope, with the pagination beside it", function()
    local page = assert(empirical.decode("list", 200, cjson.encode {
      data = { project = { id = 123, name = "Acme", slug = "acme", repo_name = "acme/e2e" },
               test_runs = { items = { { id = 456, state = "ended", total_count = 50 }, cjson.null, { id = 455 } } } },
      pagination = { page = 1, per_page = 20, total = 150, total_pages = 8 },
    }, JSON))
    assert.equal("acme", page.project.slug)
    assert.equal(2, #page.test_runs.items)
    assert.equal(455, page.test_runs.items[2].id)
    assert.same({ page = 1, per_page = 20, total = 150, total_pages = 8 }, page.pagination)
    if math.type then assert.equal("integer", math.type(page.pagination.total_pages)) end
  end)

  it("reads an older page's list: no project, no pagination, limit and offset", function()
    local page = assert(empirical.decode("list", 200,
      '{"data":{"test_runs":{"items":[{"id":1,"state":"ended"}],"total":1,"limit":20,"offset":0}}}', JSON))
    assert.equal(1, page.test_runs.total)
    assert.is_nil(page.pagination)
  end)

  -- What the vendor's schema allows: any number where it says number, null
  -- where it says nullable, fields it does not name.
  it("accepts every odd value the schema allows", function()
    local d = assert(empirical.decode("get", 200, cjson.encode { data = { test_run = {
      project = { id = 0.5, name = cjson.null, repo_name = "r", extra = { 1 } },
      testRun = { id = 0, state = "a-state-from-the-future", total_count = -3, success_count = 2.5,
                  failed_count = cjson.null, skipped_count = 0, flaky_count = 1e300, duration = 0.001,
                  summary_url = cjson.null, new_field = { deep = { true } } },
      flattenedSummaryDetails = cjson.null,
    } } }, JSON))
    assert.equal(0, d.testRun.id)
    assert.equal(-3, d.testRun.total_count)
    assert.equal(2.5, d.testRun.success_count)
    assert.is_nil(d.testRun.failed_count)
    assert.equal(1e300, d.testRun.flaky_count)
    assert.same({ deep = { true } }, d.testRun.new_field)
    assert.is_nil(d.flattenedSummaryDetails)
    local run = assert(empirical.decode("trigger", 200,
      '{"data":{"trigger":{"success":true},"test_run":{"id":-4,"state":"queued","test_run_branch":null}}}', JSON))
    assert.equal(-4, run.id)
  end)

  it("refuses an id a double cannot hold exactly, showing the value, rather than name another run", function()
    for _, body in ipairs {
      '{"data":{"test_run":{"testRun":{"id":9007199254740993,"state":"ended"}}}}',
      '{"data":{"test_run":{"testRun":{"id":1e300,"state":"ended"}}}}',
    } do
      local d, err = empirical.decode("get", 200, body, JSON)
      assert.is_nil(d)
      assert.equal("decode", err.kind)
      assert.equal("data.test_run.testRun.id", err.field)
      assert.truthy(err.message:find("a number (9", 1, true) or err.message:find("a number (1e+300)", 1, true), err.message)
      assert.truthy(err.message:find("2^53", 1, true), err.message)
    end
    local _, err = empirical.decode("list", 200,
      '{"data":{"test_runs":{"items":[{"id":1},{"id":18014398509481984}]}},"pagination":{}}', JSON)
    assert.equal("data.test_runs.items[2].id", err.field)
    assert.truthy(empirical.decode("get", 200, '{"data":{"test_run":{"testRun":{"id":9007199254740991,"state":"ended"}}}}', JSON))
  end)

  it("names the list item that is wrong", function()
    local _, err = empirical.decode("list", 200, '{"data":{"test_runs":{"items":[{"id":1},{"id":"2"}]}}}', JSON)
    assert.equal("data.test_runs.items[2].id", err.field)
    assert.truthy(err.message:find('got a string ("2")', 1, true), err.message)
    _, err = empirical.decode("list", 200, '{"data":{"test_runs":{"items":[1]}}}', JSON)
    assert.equal("data.test_runs.items[1]", err.field)
  end)
end)

describe("on the wire", function()
  local fake, client

  setup(function()
    fake = helper.start_fake { speed = 20 }
  end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    client = helper.client(fake, { retries = 2 })
  end)
  after_each(function() client:close() end)

  local function answer(method, path, status, body, times)
    fake:script { method = method, path = path, status = status, body = body, times = times }
  end

  it("cancels with POST, no body and no content type unless a reason is given", function()
    answer("POST", "/api/test-runs/7/cancel", 200, { message = "Test run cancelled successfully" }, 2)
    assert.same({ message = "Test run cancelled successfully" }, client:cancel(7))
    assert.same({ message = "Test run cancelled successfully" }, client:cancel(7, { reason = "rolled back" }))
    local log = fake:log()
    assert.equal(2, #log)
    assert.same({ "POST", "/api/test-runs/7/cancel", "", "0" },
                { log[1].method, log[1].path, log[1].body, log[1].headers["content-length"] })
    assert.is_nil(log[1].headers["content-type"])
    assert.same({ reason = "rolled back" }, cjson.decode(log[2].body))
    assert.equal("application/json", log[2].headers["content-type"])
    assert.equal("Bearer " .. fake.token, log[2].headers.authorization)
  end)

  it("gives the server's Retry-After on the error, for a poller's next try", function()
    fake:script { method = "GET", status = 503, body = "", headers = { ["Retry-After"] = "120" } }
    local _, err = client:get(7)
    assert.same({ "http", 503, 120, 1 }, { err.kind, err.status, err.retry_after, err.attempts })
    assert.truthy(err.message:find("max_retry_after", 1, true), err.message)
  end)

  it("retries a cancel like a get: it is safe to repeat", function()
    answer("POST", "/api/test-runs/7/cancel", 503, "", 1)
    answer("POST", "/api/test-runs/7/cancel", 200, { message = "ok" })
    assert.same({ message = "ok" }, client:cancel(7))
    assert.equal(2, #fake:log())
  end)

  it("reports a cancel of an ended run as http 412, not retried", function()
    answer("POST", "/api/test-runs/7/cancel", 412, { data = cjson.null, error = { message = "Test run already ended" } })
    local r, err = client:cancel(7)
    assert.is_nil(r)
    assert.same({ "http", 412, 1 }, { err.kind, err.status, err.attempts })
    assert.truthy(err.message:find("had already ended", 1, true))
    assert.equal(1, #fake:log())
  end)

  it("sends list queries exactly as encode writes them", function()
    local target = "/api/test-runs?branch=release%2F1.2&state=ended&environment_ids=3%2C4&per_page=5"
    answer("GET", target, 200, { data = { test_runs = { items = {} } }, pagination = { page = 1, total_pages = 0 } })
    local page = assert(client:list { branch = "release/1.2", state = "ended", environment_ids = { 3, 4 }, per_page = 5 })
    assert.same({}, page.test_runs.items)
    assert.equal(target, fake:log()[1].path)
    assert.equal("", fake:log()[1].body)
  end)

  local function page_of(ids, page, total_pages)
    local items = {}
    for i, id in ipairs(ids) do items[i] = { id = id, state = "ended" } end
    return { data = { test_runs = { items = items } },
             pagination = { page = page, per_page = 2, total = 5, total_pages = total_pages } }
  end

  it("walks every page lazily with runs(), and stops at the limit", function()
    answer("GET", "/api/test-runs?page=1&per_page=2", 200, page_of({ 9, 8 }, 1, 3))
    answer("GET", "/api/test-runs?page=2&per_page=2", 200, page_of({ 7, 6 }, 2, 3))
    answer("GET", "/api/test-runs?page=3&per_page=2", 200, page_of({ 5 }, 3, 3))
    local iterate = client:runs { per_page = 2 }
    assert.equal(0, #fake:log())                       -- nothing asked before the first step
    local ids = {}
    for run, err in iterate do
      assert.is_nil(err)
      ids[#ids + 1] = run.id
    end
    assert.same({ 9, 8, 7, 6, 5 }, ids)
    assert.equal(3, #fake:log())

    fake:reset()
    answer("GET", "/api/test-runs?page=1&per_page=2", 200, page_of({ 9, 8 }, 1, 3))
    answer("GET", "/api/test-runs?page=2&per_page=2", 200, page_of({ 7, 6 }, 2, 3))
    ids = {}
    for run in client:runs({ per_page = 2 }, 3) do ids[#ids + 1] = run.id end
    assert.same({ 9, 8, 7 }, ids)
    assert.equal(2, #fake:log())
  end)

  it("gives a failed page to the loop as false, err, once, and then ends", function()
    answer("GET", "/api/test-runs?page=1&per_page=2", 200, page_of({ 9, 8 }, 1, 3))
    answer("GET", "/api/test-runs?page=2&per_page=2", 404, { data = cjson.null, error = { message = "nope" } })
    local seen, errors = {}, {}
    for run, err in client:runs { per_page = 2 } do
      if run then seen[#seen + 1] = run.id else errors[#errors + 1] = err end
    end
    assert.same({ 9, 8 }, seen)
    assert.equal(1, #errors)
    assert.same({ "http", 404 }, { errors[1].kind, errors[1].status })
  end)

  it("gives bad arguments to runs() the same way, sending nothing", function()
    for _, args in ipairs { { "x" }, { {}, 0 }, { {}, 1.5 }, { { per_page = 500 } } } do
      local iterate = client:runs(args[1], args[2])
      local first, err = iterate()
      assert.is_false(first)
      assert.equal("invalid", err.kind)
      assert.is_nil(iterate())
    end
    assert.equal(0, #fake:log())
  end)

  it("ends an older-style list (no pagination) when a page comes back short", function()
    answer("GET", "/api/test-runs?page=1", 200, { data = { test_runs = { items = { { id = 1 }, { id = 2 } } } } })
    local n = 0
    for run in client:runs() do n = n + (run and 1 or 0) end
    assert.equal(2, n)
    assert.equal(1, #fake:log())
  end)
end)
