-- The gate's verdict when the run's counts and its reports disagree, when a
-- re-run's report leaves a failed test out, and the deadline over the
-- report's download: a gate must not pass what it cannot confirm, nor wait
-- past its --timeout.
local helper = require("helper")
local cjson = require("cjson")
local empirical = require("empirical")
local gate = require("empirical.gate")

-- A Playwright JSON report of one file suite `file` with a describe `describe`
-- holding `tests`: {title, status ("expected", "unexpected"...), line}.
local function playwright_report(file, describe, tests)
  local specs = {}
  for i, t in ipairs(tests) do
    local result = t.status == "expected" and "passed" or "failed"
    specs[i] = { title = t.title, file = file, line = t.line or i, column = 1,
                 tests = { { projectName = "chromium", expectedStatus = "passed", status = t.status,
                             results = { { status = result, duration = 100 } } } } }
  end
  return cjson.encode { suites = { { title = file, file = file, specs = {},
                                     suites = { { title = describe, file = file, specs = specs } } } } }
end

describe("gate.judge", function()
  local ended = { testRun = { id = 1, state = "ended", total_count = 2, success_count = 2, failed_count = 0,
                              skipped_count = 0, flaky_count = 0 } }

  it("passes a run whose counts and report agree", function()
    local parsed = assert(empirical.parse_report(playwright_report("tests/a.spec.ts", "a", {
      { title = "one", status = "expected" }, { title = "two", status = "expected" } })))
    assert.equal("passed", gate.judge(ended, false, parsed))
    assert.equal("passed", gate.judge(ended, false, nil))
  end)

  it("fails a run whose report says a test failed, though the run counts none", function()
    local parsed = assert(empirical.parse_report(playwright_report("tests/a.spec.ts", "a", {
      { title = "one", status = "expected" }, { title = "two", status = "unexpected" } })))
    assert.equal("failed", gate.judge(ended, false, parsed))
  end)
end)

describe("empirical gate against the fake", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function run(argv) return helper.run_command(fake, argv) end

  it("fails a lane whose re-run's report leaves out a test that failed before", function()
    fake:scenario { tests = {
      { name = "one", describe = { "auth" }, outcome = "failed", fixed_on_rerun = true, file = "tests/auth.spec.ts" },
      { name = "two", describe = { "auth" }, outcome = "failed", fixed_on_rerun = true, file = "tests/auth.spec.ts" },
    } }
    -- The re-run's report names test one only, passed: two's fate is unknown.
    fake:script { method = "GET", path = "/reports/2.json", status = 200, content_type = "application/json",
                  body = playwright_report("tests/auth.spec.ts", "auth", { { title = "one", status = "expected" } }) }
    local code, out, err = run { "gate", "--environment", "staging", "--rerun-failed", "1", "--interval", "0.05" }
    assert.equal(1, code, err)
    assert.truthy(err:find("staging: a test that failed earlier was not seen passing in a re-run\n", 1, true), err)
    assert.truthy(out:find("staging: failed (exit 1): 0 passed, 1 failed, 1 flaky, 0 skipped of 2", 1, true), out)
  end)

  it("stops waiting for a report at the deadline", function()
    fake:scenario { tests = { { name = "one", outcome = "passed" } } }
    fake:script { method = "GET", path = "/reports/1.json", delay = 20 }
    local started = empirical.now()
    local code, _, err = run { "gate", "--environment", "staging", "--timeout", "3", "--interval", "0.05" }
    local took = empirical.now() - started
    assert.equal(0, code, err)   -- the run passed; the report costs a line, never the verdict
    assert.truthy(err:find("the Playwright report could not be fetched", 1, true), err)
    assert.is_true(took < 5, ("took %.1f s"):format(took))
  end)

  it("a signal while triggers are in flight is no refusal: a --run given with --cancel-given is cancelled too",
     function()
    local client = helper.client(fake)
    fake:scenario { pending_seconds = 1e6 }
    local given = assert(client:trigger { environment = "production" }).id
    fake:script { method = "PUT", delay = 3 }
    local pid, finish = helper.start_command(fake, { "gate", "--environment", "staging", "--run", tostring(given),
                                                     "--cancel-given", "--interval", "0.05" })
    helper.wait_until("the trigger", function()
      local puts = 0
      for _, r in ipairs(fake:log()) do if r.method == "PUT" then puts = puts + 1 end end
      return puts > 1
    end)
    os.execute("kill -INT " .. pid)
    local code, out, err = finish()
    assert.equal(130, code, err)
    local cancels = {}
    for _, r in ipairs(fake:log()) do
      if r.method == "POST" and r.path:match("/cancel$") then cancels[#cancels + 1] = r.path end
    end
    assert.same({ "/api/test-runs/" .. given .. "/cancel" }, cancels, out .. err)
    assert.is_nil(out:find("aborted", 1, true), out)
    client:close()
  end)

  it("a signal while settling one lane keeps the verdict of another that had ended, and cancels nothing ended",
     function()
    fake:scenario { tests = { { name = "one", outcome = "passed" } } }
    -- Both runs end before the first poll that sees them; the gate settles
    -- staging first, and the signal comes while it fetches staging's report.
    fake:script { method = "GET", path = "/reports/1.json", delay = 5 }
    fake:script { method = "GET", path = "/reports/2.json", delay = 5 }
    fake:clock { speed = 0 }
    local pid, finish = helper.start_command(fake, { "gate", "--environment", "staging", "--environment",
                                                     "production", "--interval", "0.05", "--json" })
    helper.wait_until("both triggers", function() return helper.count(fake:log(), "PUT") == 2 end)
    fake:clock { advance = 3600 }
    helper.wait_until("a report", function() return helper.count(fake:log(), "GET", "^/reports/") > 0 end)
    os.execute("kill -INT " .. pid)
    local code, out, err = finish()
    assert.equal(130, code, err)
    local result = cjson.decode(out)
    local outcome = {}
    for _, lane in ipairs(result.runs) do outcome[lane.label] = lane.outcome end
    assert.same({ staging = "SIGINT", production = "passed" }, outcome, out)
    assert.same({}, result.cancelled)
    assert.equal(0, helper.count(fake:log(), "POST", "/cancel$"))
  end)

  it("a --run lane with fractional counts and no report: one label, and --json as the README's schema says",
     function()
    local validate, drop_schema = helper.readme_schema_validator()
    local body = cjson.encode { data = { test_run = { testRun = {
      id = 7, state = "ended", total_count = 2.5, success_count = 2.5, failed_count = 0, skipped_count = 0,
      flaky_count = 0, summary_url = cjson.null, duration = cjson.null } } } }
    fake:script { method = "GET", path = "/api/test-runs/7", status = 200, content_type = "application/json",
                  body = body, times = 5 }
    local code, out, err = run { "gate", "--run", "7", "--interval", "0.05", "--json" }
    assert.equal(0, code, err)
    assert.truthy(err:find("\nrun 7: the Playwright report could not be fetched: ", 1, true), err)
    assert.is_nil(err:find("run 7: run 7", 1, true), err)
    assert.equal(2.5, cjson.decode(out).runs[1].counts.total)
    local valid = validate(out)
    drop_schema()
    assert.is_true(valid)
  end)

  it("client:report(x, limit) ends within the limit", function()
    local client = helper.client(fake)
    local run1 = assert(client:trigger { environment = "staging" })
    local detail = assert(client:wait(run1.id, { interval = 0.05, timeout = 30 }))
    fake:script { method = "GET", path = "/reports/" .. run1.id .. ".json", delay = 5 }
    local started = empirical.now()
    local parsed, err = client:report(detail, 0.5)
    assert.is_nil(parsed)
    assert.equal("timeout", err.kind, tostring(err))
    assert.is_true(empirical.now() - started < 2)
    local none, bad = client:report(detail, "soon")
    assert.is_nil(none)
    assert.same({ "invalid", "limit" }, { bad.kind, bad.field })
    client:close()
  end)
end)
