-- Judging and reporting a run (verdict, summary, JUnit) and composing
-- triggers: pure functions, checked on details built here and on details
-- decoded from the JSON the API sends.
local empirical = require("empirical")
local lxp = require("lxp")
local cjson = require("cjson")

local function detail(run, items)
  local r = { id = 12, state = "ended", total_count = 0, success_count = 0, failed_count = 0,
              skipped_count = 0, flaky_count = 0, duration = 61500, environment_slug = "staging",
              build_branch = "main", commit = "4f2c9e1d0b3a77", build_url = "https://staging.example.com" }
  for k, v in pairs(run or {}) do r[k] = v end
  return { project = { id = 1, name = "p", repo_name = "r" }, testRun = r, flattenedSummaryDetails = items or {} }
end

-- Parse XML with expat into a tree of {tag, attrs, children, text}.
local function parse_xml(text)
  local root = { children = {} }
  local stack = { root }
  local parser = lxp.new {
    StartElement = function(_, tag, attrs)
      local node = { tag = tag, attrs = attrs, children = {}, text = "" }
      table.insert(stack[#stack].children, node)
      stack[#stack + 1] = node
    end,
    EndElement = function() stack[#stack] = nil end,
    CharacterData = function(_, data) stack[#stack].text = (stack[#stack].text or "") .. data end,
  }
  local ok, msg, line = parser:parse(text)
  if ok then ok, msg, line = parser:parse() end
  parser:close()
  assert(ok, ("not well-formed XML: %s at line %s\n%s"):format(tostring(msg), tostring(line), text))
  return root.children[1]
end

local function children(node, tag)
  local out = {}
  for _, c in ipairs(node.children) do if c.tag == tag then out[#out + 1] = c end end
  return out
end

describe("verdict", function()
  local cases = {
    { "ended with no failures", { state = "ended" }, nil, "passed" },
    { "ended with flaky tests only", { state = "ended", flaky_count = 2 }, { { name = "a", status = "flaky" } }, "passed" },
    { "ended with failed tests", { state = "ended", failed_count = 1 }, nil, "failed" },
    { "ended with a failed item the counts missed", { state = "ended" }, { { name = "a", status = "failed" } }, "failed" },
    { "ended with a timed-out item", { state = "ended" }, { { name = "a", status = "timedOut" } }, "failed" },
    { "error", { state = "error" }, nil, "error" },
    { "cancelled", { state = "cancelled" }, nil, "cancelled" },
    { "cancelling", { state = "cancelling" }, nil, "cancelled" },
    { "pending", { state = "pending" }, nil, "running" },
    { "queued", { state = "queued" }, nil, "running" },
    { "started, with failures so far", { state = "started", failed_count = 3 }, nil, "running" },
    { "a state this version does not know", { state = "warming_up" }, nil, "running" },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " -> " .. case[4], function()
      assert.equal(case[4], empirical.verdict(detail(case[2], case[3])))
    end)
  end

  it("takes a testRun on its own", function()
    assert.equal("failed", empirical.verdict { state = "ended", failed_count = 2 })
  end)

  it("calls anything that is not a run detail an error", function()
    assert.equal("error", empirical.verdict(nil))
    assert.equal("error", empirical.verdict("ended"))
    assert.equal("error", empirical.verdict {})
  end)
end)

describe("summary", function()
  it("gives the state, the counts, the duration, where it ran and the failed tests", function()
    local text = empirical.summary(detail({ total_count = 6, success_count = 4, failed_count = 1, flaky_count = 1,
                                            skipped_count = 1 },
                                          { { name = "login", status = "passed" },
                                            { name = "checkout > pays", status = "failed" } }))
    assert.matches("^run 12 ended: FAILED\n", text)
    -- success_count 4 holds the flaky test (4 + 1 + 1 = 6): counted once, as flaky
    assert.matches("3 passed, 1 failed, 1 flaky, 1 skipped of 6 tests in 1m01s", text, 1, true)
    assert.matches("environment staging, branch main, commit 4f2c9e1d0b3a", text, 1, true)
    assert.matches("build https://staging.example.com", text, 1, true)
    assert.equal("failed tests:\n    - checkout > pays", text:sub(-#"failed tests:\n    - checkout > pays"))
  end)

  it("leaves out what the run does not have", function()
    local bare = detail()
    for _, key in ipairs { "duration", "environment_slug", "build_branch", "commit", "build_url", "flaky_count" } do
      bare.testRun[key] = nil
    end
    local text = empirical.summary(bare)
    assert.equal("run 12 ended: PASSED\n  0 passed, 0 failed, ? flaky, 0 skipped of 0 tests", text)
  end)

  it("never raises on odd summary items", function()
    local odd = { cjson.null, {}, { name = 7, status = "failed" }, { status = "failed" }, "text", 42,
                  { name = "deep", status = "failed", undocumented = { nested = { cjson.null } } },
                  { name = { "a table" }, status = { "x" } } }
    local d = detail({ failed_count = 3 }, odd)
    local text = empirical.summary(d)
    assert.matches("%(unnamed test 3%)", text)
    assert.matches("%(unnamed test 4%)", text)
    assert.matches("- deep", text, 1, true)
    assert.equal(3, #empirical.failed_tests(d))
    assert.truthy(empirical.junit(d))
  end)

  it("reads a detail decoded from the API's JSON, nulls and unknown fields included", function()
    local body = cjson.encode { data = { test_run = {
      project = { id = 1, name = "p", repo_name = "r" },
      testRun = { id = 5, state = "ended", total_count = 2, success_count = 1, failed_count = 1, skipped_count = cjson.null,
                  flaky_count = cjson.null, duration = 2000, test_run_branch = "main", environment_slug = "qa",
                  environment_name = "QA", build_url = cjson.null, build_branch = cjson.null, commit = cjson.null,
                  created_at = "2026-11-24T10:00:00Z", test_run_head_sha = cjson.null, run_started_at = cjson.null,
                  run_ended_at = cjson.null, summary_url = cjson.null, brand_new_field = { 1, 2 } },
      flattenedSummaryDetails = { cjson.null, { name = "x", status = "failed", retries = cjson.null, shard = 2 },
                                  { name = "y", status = "passed" } },
    } } }
    local d = assert(empirical.decode("get", 200, body, "application/json"))
    local text = empirical.summary(d)
    assert.matches("run 5 ended: FAILED", text, 1, true)
    assert.matches("1 passed, 1 failed, ? flaky, ? skipped of 2 tests in 2.0 s", text, 1, true)   -- null: not known
    assert.matches("environment qa, branch main", text, 1, true)
    assert.matches("- x", text, 1, true)
  end)

  it("says when the run was cancelled while pending", function()
    local text = empirical.summary(detail { state = "cancelled" }, { superseded = true })
    assert.matches("run 12 cancelled: CANCELLED", text, 1, true)
    assert.matches("cancelled while pending: a newer trigger for this environment replaced it", text, 1, true)
  end)
end)

describe("compose", function()
  local base = {
    environment = "staging", total_shards = 2, tags = { "@smoke", "@checkout" },
    build = { url = "https://staging.example.com", branch = "main" },
    metadata = { team = "web", pipeline = 1 },
    environment_variables_overrides = { FEATURE_X = "on", REGION = "eu" },
  }
  local release = {
    total_shards = 4, tags = { "@checkout", "@payments" },
    build = { commit = "4f2c9e1", branch = "release/1.8" },
    metadata = { pipeline = 4127 },
    environment_variables_overrides = { { name = "REGION", value = "us" }, { name = "DEBUG", value = "1" } },
  }

  it("merges left to right into a new table by the rules of each field", function()
    local t = assert(empirical.compose(base, release, { environment = "production" }))
    assert.equal("production", t.environment)                -- scalars: the last wins
    assert.equal(4, t.total_shards)
    assert.same({ url = "https://staging.example.com", branch = "release/1.8", commit = "4f2c9e1" }, t.build)
    assert.same({ team = "web", pipeline = 4127 }, t.metadata)
    assert.same({ { name = "FEATURE_X", value = "on" }, { name = "REGION", value = "us" }, { name = "DEBUG", value = "1" } },
                t.environment_variables_overrides)
    assert.same({ "@smoke", "@checkout", "@payments" }, t.tags)
  end)

  it("merges overrides given as a list into ones given as a map, and the other way", function()
    local t = assert(empirical.compose({ environment_variables_overrides = { { name = "A", value = "1" } } },
                                       { environment_variables_overrides = { A = "2", B = "3" } }))
    assert.same({ { name = "A", value = "2" }, { name = "B", value = "3" } }, t.environment_variables_overrides)
  end)

  it("leaves its inputs untouched and shares no table with them", function()
    local before_base, before_release = cjson.encode(base), cjson.encode(release)
    local t = assert(empirical.compose(base, release))
    t.build.url, t.tags[1], t.metadata.team = "changed", "changed", "changed"
    t.environment_variables_overrides[1].value = "changed"
    local single = assert(empirical.compose(base))
    single.build.url, single.environment_variables_overrides.REGION = "changed", "changed"
    assert.equal(before_base, cjson.encode(base))
    assert.equal(before_release, cjson.encode(release))
  end)

  it("skips nil and false layers", function()
    local t = assert(empirical.compose(base, nil, false and release, { total_shards = 8 }))
    assert.equal(8, t.total_shards)
    assert.same(base.tags, t.tags)
  end)

  it("refuses a layer that is not a table, naming it", function()
    local t, err = empirical.compose(base, "production")
    assert.is_nil(t)
    assert.equal("invalid", err.kind)
    assert.equal("compose argument 2", err.field)
  end)

  it("leaves validation to send time: the result encodes, and a conflict is named", function()
    assert(empirical.encode("trigger", assert(empirical.compose(base, release))))
    local _, err = empirical.encode("trigger", assert(empirical.compose(base, { branch = "feature" })))
    assert.equal("invalid", err.kind)
    assert.matches("branch", err.message)
  end)
end)

describe("junit", function()
  local items = {
    { name = "login", status = "passed", duration = 1200 },
    { name = "checkout > pays <card> & \"cash\" 'now'", status = "failed" },
    { name = "search", status = "flaky" },
    { name = "avatar", status = "skipped" },
    { name = "bell\7 and\tt\1ab", status = "passed" },
  }
  local d = detail({ total_count = 5, success_count = 3, failed_count = 1, flaky_count = 1, skipped_count = 1,
                     run_started_at = "2026-11-24T10:00:00.000Z" }, items)

  it("is XML a real parser accepts, one testcase per item, with the counts on the suite", function()
    local root = parse_xml(assert(empirical.junit(d)))
    assert.equal("testsuites", root.tag)
    local suite = children(root, "testsuite")[1]
    assert.equal("5", suite.attrs.tests)
    assert.equal("1", suite.attrs.failures)
    assert.equal("1", suite.attrs.skipped)
    assert.equal("0", suite.attrs.errors)
    assert.equal("61.500", suite.attrs.time)
    assert.equal("2026-11-24T10:00:00.000Z", suite.attrs.timestamp)
    assert.equal(root.attrs.tests, suite.attrs.tests)
    local cases = children(suite, "testcase")
    assert.equal(5, #cases)
    assert.equal("login", cases[1].attrs.name)
    assert.equal("1.200", cases[1].attrs.time)
    assert.equal("staging", cases[1].attrs.classname)
    assert.equal(items[2].name, cases[2].attrs.name)               -- escaped, and read back whole
    assert.equal(1, #children(cases[2], "failure"))
    assert.equal(0, #children(cases[3], "failure"))                -- flaky passes
    assert.equal(1, #children(cases[4], "skipped"))
    assert.equal("bell\239\191\189 and\tt\239\191\189ab", cases[5].attrs.name)  -- XML 1.0 cannot hold \1 or \7
    local props = {}
    for _, p in ipairs(children(children(suite, "properties")[1], "property")) do props[p.attrs.name] = p.attrs.value end
    assert.equal("12", props.run_id)
    assert.equal("4f2c9e1d0b3a77", props.commit)
  end)

  it("adds an error testcase for a run that ended in error or was cancelled", function()
    for _, state in ipairs { "error", "cancelled", "started" } do
      local suite = children(parse_xml(assert(empirical.junit(detail { state = state }))), "testsuite")[1]
      assert.equal("1", suite.attrs.errors, state)
      assert.equal("1", suite.attrs.tests, state)
      local err = children(children(suite, "testcase")[1], "error")[1]
      assert.truthy(err, state)
    end
  end)

  it("lets re-runs decide the tests they ran, and keeps the history", function()
    local rerun = detail({ id = 13, total_count = 1, success_count = 1 }, { { name = items[2].name, status = "passed" } })
    local suite = children(parse_xml(assert(empirical.junit(d, { rerun }))), "testsuite")[1]
    assert.equal("0", suite.attrs.failures)
    local case = children(suite, "testcase")[2]
    assert.equal(0, #children(case, "failure"))
    assert.equal("failed in run 12; then passed in re-run 13", children(case, "system-out")[1].text)
  end)

  it("refuses what is not a run detail", function()
    assert.is_nil((empirical.junit(nil)))
    assert.is_nil((empirical.junit(d, "rerun")))
  end)
end)

-- The gate's outputs from a report shaped as empirical.parse_report returns
-- it: here, by hand, the failures of the fixture v1.47-five-projects.json
-- (Playwright 1.47, one describe, projects with spaces in their names).
local V147 = {
  stats = { expected = 3, unexpected = 6, flaky = 0, skipped = 1 },
  failed = {
    { title = "should login an existing user", path = { "Login Page Tests", "should login an existing user" },
      file = "loginPage.spec.js", line = 16, column = 5, project = "Desktop Chrome", status = "timedOut", retries = 0,
      message = 'Test timeout of 30000ms exceeded while running "beforeEach" hook.',
      error = 'Test timeout of 30000ms exceeded while running "beforeEach" hook.' },
    { title = "should display an error message for invalid login",
      path = { "Login Page Tests", "should display an error message for invalid login" },
      file = "loginPage.spec.js", line = 29, column = 5, project = "Desktop Firefox", status = "failed", retries = 0,
      message = "Error: page.goto: Target page, context or browser has been closed",
      error = 'Error: page.goto: Target page, context or browser has been closed\nCall log:\n' ..
              '  - navigating to "https://www.saucedemo.com/", waiting until "load"\n' },
  },
  flaky = {},
}

describe("the gate's outputs", function()
  local render = require("empirical.cli.render")
  local publish = require("empirical.cli.publish")
  local report = require("empirical.report")

  describe("counts", function()
    it("add up: flaky tests the vendor counted inside success are taken out of passed", function()
      local c = render.counts(detail { total_count = 6, success_count = 4, failed_count = 1, flaky_count = 1,
                                       skipped_count = 1 })
      assert.same({ total = 6, passed = 3, failed = 1, flaky = 1, skipped = 1 }, c)
      assert.equal("3 passed, 1 failed, 1 flaky, 1 skipped of 6", render.counts_text(c))
      c = render.counts(detail { total_count = 6, success_count = 3, failed_count = 1, flaky_count = 1,
                                 skipped_count = 1 })
      assert.equal(3, c.passed)   -- already apart
    end)

    it("show ? for null, missing, fractional-NaN or odd counts, and take the report's stats when the run has none", function()
      local d = detail { total_count = cjson.null, success_count = "4", failed_count = 0 / 0 }
      d.testRun.flaky_count, d.testRun.skipped_count = nil, nil
      assert.equal("? passed, ? failed, ? flaky, ? skipped of ?", render.counts_text(render.counts(d)))
      assert.same({ total = 10, passed = 3, failed = 6, flaky = 0, skipped = 1 }, render.counts({}, V147))
      assert.equal("? passed, ? failed, ? flaky, ? skipped of ?", render.counts_text(render.counts(nil)))
    end)
  end)

  it("writes a test as file:line › describe › title [project], and copes with missing parts", function()
    assert.equal("loginPage.spec.js:16 › Login Page Tests › should login an existing user [Desktop Chrome]",
                 render.test_line(V147.failed[1]))
    assert.equal("only a title", render.test_line { title = "only a title" })
    assert.equal("(unnamed test)", render.test_line {})
  end)

  it("links runs to the dashboard only when the project is known, or by a template", function()
    assert.is_nil(render.link({}, 5))
    assert.equal("https://dash.empirical.run/acme/test-runs/5", render.link({ project_slug = "acme" }, 5))
    assert.equal("https://ci.example/runs/5", render.link({ dashboard_url = "https://ci.example/runs/{id}" }, 5))
    assert.is_nil(render.link({ project_slug = "a/../b" }, 5))
  end)

  it("JUnit: one testcase per test and project, file, line, message and the error's text, with expat", function()
    local d = detail({ total_count = 10, success_count = 3, failed_count = 6, skipped_count = 1 },
                     { { name = "Login Page Tests > should login an existing user", status = "failed" },
                       { name = "Login Page Tests > shows the form", status = "passed" } })
    local xml = assert(report.junit_suites { { name = "staging", attempts = { { detail = d, report = V147, id = 12,
                                                                                url = "https://x/12" } } } })
    local suite = children(parse_xml(xml), "testsuite")[1]
    local cases = children(suite, "testcase")
    assert.equal(3, #cases)   -- the summary item of the first failure is the report's entry, not a second case
    assert.equal("Login Page Tests › should login an existing user [Desktop Chrome]", cases[1].attrs.name)
    assert.same({ "loginPage.spec.js", "16" }, { cases[1].attrs.file, cases[1].attrs.line })
    local failure = children(cases[2], "failure")[1]
    assert.equal("Error: page.goto: Target page, context or browser has been closed", failure.attrs.message)
    assert.equal(V147.failed[2].error, failure.text)
    assert.equal("Login Page Tests > shows the form", cases[3].attrs.name)
    assert.equal("2", suite.attrs.failures)
    local props = {}
    for _, p in ipairs(children(children(suite, "properties")[1], "property")) do props[p.attrs.name] = p.attrs.value end
    assert.same({ "12", "https://x/12" }, { props.run_id, props.run_url })
  end)

  it("JUnit: a test a re-run fixed keeps the name, file and line its report gave it", function()
    local first = detail({ id = 12, total_count = 2, success_count = 1, failed_count = 1 },
                         { { name = "Login Page Tests > should login an existing user", status = "failed" } })
    local rerun = detail({ id = 13, total_count = 1, success_count = 1, failed_count = 0 },
                         { { name = "Login Page Tests > should login an existing user", status = "passed" } })
    local one = { failed = { V147.failed[1] }, flaky = {}, stats = { expected = 1, unexpected = 1, flaky = 0, skipped = 0 } }
    local xml = assert(report.junit_suites { { name = "staging", attempts = { { detail = first, report = one, id = 12 },
                                                                             { detail = rerun, id = 13 } } } })
    local cases = children(children(parse_xml(xml), "testsuite")[1], "testcase")
    assert.equal(1, #cases)
    assert.equal("Login Page Tests › should login an existing user [Desktop Chrome]", cases[1].attrs.name)
    assert.same({ "loginPage.spec.js", "16" }, { cases[1].attrs.file, cases[1].attrs.line })
    assert.equal(0, #children(cases[1], "failure"))
    assert.matches("then passed in re%-run 13", children(cases[1], "system-out")[1].text)
  end)

  it("JUnit: a failed run that names no test is a failure testcase, never an empty green report", function()
    local d = detail({ total_count = 4, success_count = 2, failed_count = 2 })
    local suite = children(parse_xml(assert(report.junit_suites { { name = "qa", attempts = { { detail = d } } } })),
                           "testsuite")[1]
    assert.same({ "1", "1" }, { suite.attrs.tests, suite.attrs.failures })
    assert.matches("2 tests failed", children(children(suite, "testcase")[1], "failure")[1].attrs.message, 1, true)
  end)

  it("JUnit: a suite without results is an error testcase, never an empty green report", function()
    local suite = children(parse_xml(assert(report.junit_suites { { name = "moon", attempts = {},
                                                                   error = "Unknown environment 'moon'" } })),
                           "testsuite")[1]
    assert.equal("1", suite.attrs.errors)
    assert.equal("Unknown environment 'moon'", children(children(suite, "testcase")[1], "error")[1].attrs.message)
  end)

  local result = {
    verdict = "failed", exit_code = 1, cancelled = {},
    runs = { { label = "staging", given = false, outcome = "failed", exit_code = 1, attempts = { {
      id = 12, kind = "run", url = "https://dash.empirical.run/acme/test-runs/12", state = "ended", verdict = "failed",
      counts = { total = 10, passed = 3, failed = 6, flaky = 0, skipped = 1 },
      failed_tests = { V147.failed[1], { title = "a, b: 100%", path = { "a, b: 100%" }, file = "x:y.spec.ts", line = 3,
                                         message = "line one\r\nline two" } },
      flaky_tests = {} } } } },
  }

  it("annotations: one ::error per failed test, escaped by GitHub's rules", function()
    local lines = publish.annotations(result)
    assert.equal(2, #lines)
    assert.equal("::error file=loginPage.spec.js,line=16,title=staging%3A Login Page Tests › should login an existing " ..
                 "user [Desktop Chrome]::Test timeout of 30000ms exceeded while running \"beforeEach\" hook.", lines[1])
    assert.equal("::error file=x%3Ay.spec.ts,line=3,title=staging%3A a%2C b%3A 100%25::line one%0D%0Aline two", lines[2])
  end)

  it("step summary: the verdict, counts, link and failed tests with messages, table cells escaped", function()
    local md = publish.markdown(result)
    assert.matches("^## Empirical release gate: failed %(exit 1%)\n", md)
    assert.truthy(md:find("| staging | ❌ failed | 3 | 6 | 0 | 1 | 10 | [run 12](https://dash.empirical.run/acme/test-runs/12) |",
                          1, true), md)
    assert.truthy(md:find("- loginPage.spec.js:16 › Login Page Tests › should login an existing user \\[Desktop Chrome\\]: " ..
                          '`Test timeout of 30000ms exceeded while running "beforeEach" hook.`', 1, true), md)
  end)

  it("JSON: lists stay arrays when empty, unknown counts are null", function()
    local text = publish.json { verdict = "invalid", exit_code = 3, cancelled = {}, runs = { { label = "s", given = false,
      outcome = "invalid", exit_code = 3, attempts = { { id = 1, kind = "run", counts = {}, failed_tests = {},
                                                         flaky_tests = {} } } } } }
    assert.truthy(text:find('"cancelled":[]', 1, true))
    assert.truthy(text:find('"failed_tests":[]', 1, true))
    assert.truthy(text:find('"total":null', 1, true))
    assert.truthy(text:find('"url":null', 1, true))
  end)
end)
