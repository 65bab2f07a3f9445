-- Cancel and list on the wire, with plain HTTP (luasocket): the vendor's
-- state machine and paging as the fake plays them. The clock is all but
-- stopped (speed 0.001) and moved by hand, so nothing here races real time.
local helper = require("helper")
local wire = require("fake_wire")
local cjson = require("cjson")

local call = wire.call

local function cancel(fake, id, body)
  return call(fake, "POST", "/api/test-runs/" .. id .. "/cancel", { body = body })
end

describe("the fake's cancel", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 0.001 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("moves a started run to cancelling, then cancelled, its counts frozen where they stood", function()
    local id = wire.trigger(fake)
    fake:clock { advance = 1 + 0.5 * 3 }                       -- three of six tests done
    local status, answer = cancel(fake, id)
    assert.equal(200, status)
    assert.same({ message = "Test run cancelled successfully" }, answer)
    local run = wire.run(fake, id)
    assert.same({ "cancelling", 2, 1 }, { run.state, run.success_count, run.failed_count })
    assert.equal(200, (cancel(fake, id)))                      -- again while cancelling: still fine
    fake:clock { advance = 1 }
    assert.equal("cancelling", wire.run(fake, id).state)
    fake:clock { advance = 1.5 }
    run = wire.run(fake, id)
    assert.same({ "cancelled", 2, 1, 0, cjson.null, cjson.null }, { run.state, run.success_count, run.failed_count,
                                                                   run.flaky_count, run.summary_url, run.duration })
    fake:clock { advance = 600 }
    local later, detail = wire.run(fake, id)
    assert.same({ "cancelled", 2 }, { later.state, later.success_count })
    assert.equal(3, #detail.flattenedSummaryDetails)
    assert.equal("string", type(later.run_ended_at))
  end)

  it("cancels a queued or pending run at once", function()
    local queued = wire.trigger(fake)
    assert.equal(200, (cancel(fake, queued)))
    local run = wire.run(fake, queued)
    assert.same({ "cancelled", 0, cjson.null }, { run.state, run.success_count, run.run_started_at })
    fake:scenario { pending_seconds = 60 }
    local pending = wire.trigger(fake, { environment = "production" })
    assert.equal("pending", wire.run(fake, pending).state)
    assert.equal(200, (cancel(fake, pending)))
    fake:clock { advance = 600 }
    assert.equal("cancelled", wire.run(fake, pending).state)
  end)

  it("answers 412 with the error envelope for a run already ended, errored or cancelled", function()
    local ended = wire.trigger(fake)
    fake:scenario { end_state = "error" }
    local errored = wire.trigger(fake, { environment = "production" })
    fake:clock { advance = 60 }
    local cancelled = wire.trigger(fake)
    cancel(fake, cancelled)
    for state, id in pairs { ended = ended, error = errored, cancelled = cancelled } do
      assert.equal(state, wire.run(fake, id).state)
      local status, answer = cancel(fake, id, '{"reason":"too late"}')
      assert.equal(412, status, state)
      assert.equal(cjson.null, answer.data)
      assert.equal(("Test run %s is already in a terminal state (%s)"):format(id, state), answer.error.message)
      assert.equal(state, wire.run(fake, id).state)
    end
  end)

  it("answers 404 for an unknown run and keeps the reason it was given", function()
    local status, answer = cancel(fake, "999")
    assert.equal(404, status)
    assert.equal("Test run 999 not found", answer.error.message)
    local id = wire.trigger(fake)
    assert.equal(200, (cancel(fake, id, '{"reason":"Deployment rolled back"}')))
    assert.equal("Deployment rolled back", wire.run(fake, id).cancel_reason)
    local log = fake:log()
    assert.equal('{"reason":"Deployment rolled back"}', log[#log - 1].body)
    local other = wire.trigger(fake)
    assert.equal(200, (cancel(fake, other)))
    assert.is_nil(wire.run(fake, other).cancel_reason)
  end)
end)

describe("the fake's list", function()
  local fake
  setup(function()
    fake = helper.start_fake { speed = 0.001, environments = { "staging", "production", "qa" },
                               project = { id = 4, name = "Shop", slug = "shop", repo_name = "acme/shop" } }
  end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function list(query)
    local status, answer, raw = call(fake, "GET", "/api/test-runs" .. (query and ("?" .. query) or ""))
    assert.equal(200, status, raw)
    local ids = {}
    for i, item in ipairs(answer.data.test_runs.items) do ids[i] = item.id end
    return ids, answer, raw
  end

  it("lists newest first, 20 a page by default, with the pagination and the project", function()
    for _ = 1, 25 do wire.trigger(fake) end
    local ids, answer = list()
    assert.equal(20, #ids)
    assert.same({ 25, 24 }, { ids[1], ids[2] })
    assert.equal(6, ids[20])
    assert.same({ page = 1, per_page = 20, total = 25, total_pages = 2 }, answer.pagination)
    assert.same({ id = 4, name = "Shop", slug = "shop", repo_name = "acme/shop" }, answer.data.project)
    ids, answer = list("page=2")
    assert.same({ 5, 4, 3, 2, 1 }, ids)
    assert.same({ page = 2, per_page = 20, total = 25, total_pages = 2 }, answer.pagination)
    local raw
    ids, answer, raw = list("page=3")
    assert.same({}, ids)
    assert.same({ page = 3, per_page = 20, total = 25, total_pages = 2 }, answer.pagination)
    assert.truthy(raw:find('"items":[]', 1, true), raw)         -- an empty list is a JSON array
    ids, answer = list("per_page=100")
    assert.equal(25, #ids)
    assert.same({ page = 1, per_page = 100, total = 25, total_pages = 1 }, answer.pagination)
    ids = list("per_page=7&page=4")
    assert.same({ 4, 3, 2, 1 }, ids)
  end)

  it("shows each run as a TestRunListItem with its state", function()
    local id = wire.trigger(fake, { build = { url = "https://staging.example.com", branch = "main", commit = "4f2c9e1" } })
    fake:clock { advance = 60 }
    local _, answer = list()
    local item = answer.data.test_runs.items[1]
    local keys = {}
    for k in pairs(item) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "build_branch", "build_url", "commit", "created_at", "duration", "environment_name",
                  "environment_slug", "failed_count", "flaky_count", "id", "skipped_count", "state", "success_count",
                  "test_run_branch", "total_count" }, keys)
    assert.same({ tonumber(id), "ended", 6, 4, 1, "https://staging.example.com", "4f2c9e1", "staging", "Staging" },
                { item.id, item.state, item.total_count, item.success_count, item.failed_count, item.build_url,
                  item.commit, item.environment_slug, item.environment_name })
  end)

  it("filters by id, branch, state, result, environment ids and age", function()
    local staging_fail = wire.trigger(fake, { branch = "main" })
    fake:scenario { tests = { { name = "ok", outcome = "passed" } } }
    local prod_pass = wire.trigger(fake, { environment = "production", branch = "release" })
    fake:scenario { end_state = "error" }
    local qa_error = wire.trigger(fake, { environment = "qa", branch = "hotfix" })
    fake:clock { advance = 2 * 86400 }
    fake:scenario {}
    local fresh = wire.trigger(fake, { branch = "main" })
    local n = tonumber
    assert.same({ n(prod_pass) }, list("id=" .. prod_pass))
    assert.same({ n(fresh), n(staging_fail) }, list("branch=main"))
    assert.same({ n(prod_pass) }, list("branch=release"))
    assert.same({ n(fresh) }, list("state=queued"))
    assert.same({ n(prod_pass), n(staging_fail) }, list("state=ended"))
    assert.same({ n(qa_error) }, list("state=error"))
    assert.same({ n(prod_pass) }, list("result=passed"))
    assert.same({ n(qa_error), n(staging_fail) }, list("result=failed"))
    assert.same({ n(prod_pass) }, list("environment_ids=2"))
    assert.same({ n(qa_error), n(prod_pass) }, list("environment_ids=2,3"))
    assert.same({ n(qa_error), n(prod_pass) }, list("environment_ids=2%2C3"))   -- as libcurl escapes it
    assert.same({ n(fresh) }, list("interval_in_days=1"))
    assert.same({ n(fresh), n(staging_fail) }, list("interval_in_days=3&branch=main"))
    local _, answer = list("branch=main&per_page=1")
    assert.same({ page = 1, per_page = 1, total = 2, total_pages = 2 }, answer.pagination)
    assert.same({}, (list("branch=nowhere")))
  end)

  it("checks the query like encode: a bad one is 400 naming the field, nothing listed", function()
    wire.trigger(fake)
    for _, query in ipairs { "page=abc", "per_page=101", "per_page=0", "result=maybe", "environment_ids=x" } do
      local status, answer = call(fake, "GET", "/api/test-runs?" .. query)
      assert.equal(400, status, query)
      assert.equal(cjson.null, answer.data)
      assert.equal(query:match("^[%w_]+"), answer.error.message:match("^([%w_]+)"), answer.error.message)
    end
    assert.equal(401, (call(fake, "GET", "/api/test-runs", { token = "wrong" })))
  end)
end)
