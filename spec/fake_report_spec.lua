-- The Playwright JSON report behind an ended run's summary_url, fetched with
-- plain HTTP (luasocket): the shape real reports have (the fixtures), the
-- run's own tests, what empirical.parse_report reads from it, and the
-- scripted variants clients must survive.
local helper = require("helper")
local wire = require("fake_wire")
local empirical = require("empirical")
local cjson = require("cjson")

local call = wire.call

local read = helper.read_file

-- Every key path of a JSON value with the type found there, arrays as [],
-- nested suites folded into one level: "suites[].specs[].tests[].status:string".
local function shape(value, prefix, out)
  out, prefix = out or {}, prefix or ""
  if type(value) == "table" then
    if next(value) == nil then
      out[prefix .. ":empty"] = true
    elseif value[1] ~= nil then
      for _, v in ipairs(value) do shape(v, prefix .. "[]", out) end
    else
      for k, v in pairs(value) do
        local path = (prefix == "" and k or prefix .. "." .. k):gsub("suites%[%]%.suites%[%]", "suites[]")
        shape(v, (path:gsub("suites%[%]%.suites%[%]", "suites[]")), out)
      end
    end
  else
    out[prefix .. ":" .. (value == cjson.null and "null" or type(value))] = true
  end
  return out
end

local function missing(from, within)
  local out = {}
  for k in pairs(from) do if not within[k] then out[#out + 1] = k end end
  table.sort(out)
  return out
end

local TESTS = {
  { name = "signs in", describe = { "auth", "email" }, outcome = "passed", file = "tests/auth.spec.ts", line = 12 },
  { name = "pays with card", describe = { "checkout" }, outcome = "failed", file = "tests/checkout.spec.ts", line = 40,
    message = "Error: Total should be $50.00" },
  { name = "pays with card", describe = { "checkout" }, outcome = "passed", file = "tests/checkout.spec.ts", line = 40,
    project = "firefox" },
  { name = "finds by name", describe = { "search" }, outcome = "flaky", file = "tests/search.spec.ts", line = 8 },
  { name = "uploads an avatar", outcome = "skipped", file = "tests/profile.spec.ts", line = 3 },
  { name = "a > b > deep", outcome = "failed" },
}

describe("the fake's reports", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 0.001 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  -- An ended run of TESTS: its testRun, detail, and its report (status, decoded, raw).
  local function ended_run(scenario)
    scenario = scenario or {}
    scenario.tests = scenario.tests or TESTS
    fake:scenario(scenario)
    local id = wire.trigger(fake)
    fake:clock { advance = 600 }
    local run, detail = wire.run(fake, id)
    return run, detail, id
  end

  local function fetch(url)
    return call(fake, "GET", nil, { url = url, token = false })
  end

  it("is served at summary_url once a run ended, and not before", function()
    fake:scenario { tests = TESTS }
    local id = wire.trigger(fake)
    assert.equal(cjson.null, wire.run(fake, id).summary_url)
    assert.equal(404, (fetch(fake.url .. "/reports/" .. id .. ".json")))
    fake:clock { advance = 600 }
    local run = wire.run(fake, id)
    assert.equal(fake.url .. "/reports/" .. id .. ".json", run.summary_url)
    local status, report, _, headers = fetch(run.summary_url)
    assert.equal(200, status)
    assert.equal("application/json", headers["content-type"])
    assert.equal("table", type(report.suites))
  end)

  it("has the keys of real Playwright reports at the same depths, with the same types", function()
    local run = ended_run()
    local _, report = fetch(run.summary_url)
    local served = shape(report)
    local flaky = shape(cjson.decode(read("spec/fixtures/playwright/v1.59-flaky.json")))
    local real = shape(cjson.decode(read("spec/fixtures/playwright/v1.57-nested-retries.json")), "", shape(
      cjson.decode(read("spec/fixtures/playwright/v1.37-merged-shards.json")), "", shape(
        cjson.decode(read("spec/fixtures/playwright/v1.59-flaky.json")))))
    assert.same({}, missing(flaky, served))     -- all that Playwright 1.59 writes, down to results[].error.location.line
    assert.same({}, missing(served, real))      -- and nothing a real report never has
    assert.truthy(served["suites[].specs[].tests[].results[].error.message:string"])
    assert.truthy(served["suites[].specs[].tests[].results[].error.location.file:string"])
  end)

  it("holds the run's tests: nested describes, projects, failures with colour codes, a flaky retry, a skip", function()
    local run, detail = ended_run()
    local _, report = fetch(run.summary_url)
    assert.same({ expected = 2, unexpected = 2, flaky = 1, skipped = 1 },
                { expected = report.stats.expected, unexpected = report.stats.unexpected,
                  flaky = report.stats.flaky, skipped = report.stats.skipped })
    assert.equal(run.total_count, report.stats.expected + report.stats.unexpected + report.stats.flaky
                                  + report.stats.skipped)
    local projects = {}
    for _, p in ipairs(report.config.projects) do projects[#projects + 1] = p.name end
    assert.same({ "chromium", "firefox" }, projects)

    -- Walk it as a reader would: every test with its describe path.
    local found = {}
    local function walk(suite, path, depth)
      for _, spec in ipairs(suite.specs) do
        for _, test in ipairs(spec.tests) do
          local title = table.concat(path, " > ") .. (#path > 0 and " > " or "") .. spec.title
          found[#found + 1] = { name = title, spec = spec, test = test, depth = depth, file = suite.file }
        end
      end
      for _, child in ipairs(suite.suites or {}) do
        local p = { table.unpack(path) }
        p[#p + 1] = child.title
        walk(child, p, depth + 1)
      end
    end
    for _, file_suite in ipairs(report.suites) do walk(file_suite, {}, 0) end
    assert.equal(#detail.flattenedSummaryDetails, #found)
    local by_name = {}
    for _, f in ipairs(found) do by_name[f.name .. "@" .. f.test.projectName] = f end
    for _, item in ipairs(detail.flattenedSummaryDetails) do
      assert.truthy(by_name[item.name .. "@chromium"] or by_name[item.name .. "@firefox"], item.name)
    end

    local deep = by_name["auth > email > signs in@chromium"]
    assert.same({ 2, "tests/auth.spec.ts", 12, "expected" }, { deep.depth, deep.file, deep.spec.line, deep.test.status })
    local failed = by_name["checkout > pays with card@chromium"]
    assert.equal("unexpected", failed.test.status)
    assert.equal(2, #failed.spec.tests)                        -- the same spec in two projects
    local results = failed.test.results
    assert.same({ "failed", "failed" }, { results[1].status, results[2].status })
    assert.same({ 0, 1 }, { results[1].retry, results[2].retry })
    local err = results[2].error
    assert.equal("Error: Total should be $50.00", err.message:match("^[^\n]*"))
    assert.truthy(err.message:find("\27[", 1, true), "no ANSI colour codes")
    assert.matches("/tests/checkout%.spec%.ts$", err.location.file)
    assert.equal("number", type(err.location.line))
    assert.equal(err.location.line, results[2].errorLocation.line)
    local flaky = by_name["search > finds by name@chromium"]
    assert.equal("flaky", flaky.test.status)
    assert.same({ "failed", "passed" }, { flaky.test.results[1].status, flaky.test.results[2].status })
    assert.same({ 0, 1 }, { flaky.test.results[1].retry, flaky.test.results[2].retry })
    local skipped = by_name["uploads an avatar@chromium"]
    assert.same({ "skipped", "skipped", "skip" }, { skipped.test.status, skipped.test.expectedStatus,
                                                    skipped.test.annotations[1].type })
    local derived = by_name["a > b > deep@chromium"]
    assert.same({ 2, "tests/a.spec.ts" }, { derived.depth, derived.file })   -- describes from the name
    assert.matches("^Error: .*expect", derived.test.results[1].error.message)
  end)

  it("parses with empirical.parse_report into the run's failures, files, lines and messages", function()
    local run = ended_run()
    local _, _, raw = fetch(run.summary_url)
    local parsed = assert(empirical.parse_report(raw))
    assert.same({ expected = 2, unexpected = 2, flaky = 1, skipped = 1 }, parsed.stats)
    local failed = {}
    for _, e in ipairs(parsed.failed) do
      failed[#failed + 1] = { table.concat(e.path, " > "), e.file, e.line, e.project, e.message, e.retries }
    end
    table.sort(failed, function(a, b) return a[1] < b[1] end)
    assert.same({
      { "a > b > deep", "tests/a.spec.ts", 7, "chromium", "Error: expect(received).toBe(expected) // Object.is equality", 1 },
      { "checkout > pays with card", "tests/checkout.spec.ts", 40, "chromium", "Error: Total should be $50.00", 1 },
    }, failed)
    assert.equal(1, #parsed.flaky)
    assert.same({ "search", "finds by name" }, parsed.flaky[1].path)
  end)

  it("answers 403 or 404 like storage, or serves malformed or oversized JSON, when the scenario says so", function()
    for _, status in ipairs { 403, 404 } do
      local run = ended_run { report = status }
      local got, _, raw, headers = fetch(run.summary_url)
      assert.equal(status, got)
      assert.equal("application/xml", headers["content-type"])
      assert.matches(status == 403 and "AccessDenied" or "NoSuchKey", raw)
    end
    local run = ended_run { report = "malformed" }
    local status, decoded, raw = fetch(run.summary_url)
    assert.equal(200, status)
    assert.is_nil(decoded)
    assert.truthy(#raw > 100)
    local _, err = empirical.parse_report(raw)
    assert.equal("decode", err.kind)
    run = ended_run { report = "oversized", report_bytes = 3 * 1024 * 1024 }
    local _, big, text = fetch(run.summary_url)
    assert.is_true(#text >= 3 * 1024 * 1024, tostring(#text))
    assert.equal("table", type(big.suites))                   -- oversized, yet a report
  end)

  it("gives no summary_url when the scenario says none, nor to runs in error or cancelled", function()
    local run = ended_run { report = "none" }
    assert.same({ "ended", cjson.null }, { run.state, run.summary_url })
    assert.equal(404, (fetch(fake.url .. "/reports/" .. wire.id(run.id) .. ".json")))
    run = ended_run { end_state = "error", error_code = "report_not_generated" }
    assert.same({ "error", cjson.null, "report_not_generated" }, { run.state, run.summary_url, run.error_code })
    run = ended_run { end_state = "cancelled" }
    assert.same({ "cancelled", cjson.null }, { run.state, run.summary_url })
  end)

  it("sends counts as null or leaves them out while a run is queued or started, when the scenario says so", function()
    local COUNTS = { "total_count", "success_count", "failed_count", "skipped_count", "flaky_count" }
    for _, mode in ipairs { "null", "missing" } do
      fake:scenario { running_counts = mode }
      local id = wire.trigger(fake)
      for _, advance in ipairs { 0, 1.6 } do
        fake:clock { advance = advance }
        local run = wire.run(fake, id)
        for _, k in ipairs(COUNTS) do
          if mode == "null" then assert.equal(cjson.null, run[k], k) else assert.is_nil(run[k], k) end
        end
      end
      local _, answer = call(fake, "GET", "/api/test-runs")
      assert.equal(mode == "null" and cjson.null or nil, answer.data.test_runs.items[1].total_count)
      fake:clock { advance = 600 }
      assert.equal(6, wire.run(fake, id).total_count)
    end
  end)
end)

describe("a fake with report_origin", function()
  it("points summary_url at that origin and serves the report there too", function()
    local fake = helper.start_fake { speed = 0.001, report_origin = "http://localhost:{port}/" }
    finally(function() fake:stop() end)
    local id = wire.trigger(fake)
    fake:clock { advance = 600 }
    local run = wire.run(fake, id)
    local port = fake.url:match(":(%d+)$")
    assert.equal(("http://localhost:%s/reports/%s.json"):format(port, id), run.summary_url)
    local status = call(fake, "GET", nil, { url = run.summary_url:gsub("localhost", "127.0.0.1"), token = false })
    assert.equal(200, status)
    local log = fake:log()
    assert.equal("/reports/" .. id .. ".json", log[#log].path)
  end)
end)
