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

-- A report's JSON text, as Playwright writes it (cjson.null for JSON null).
local function json_report(doc)
  return cjson.encode(doc)
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

  it("JUnit: a re-run's own report takes the place of its tests, by file and project; the other projects stand", function()
    local function entry(project, outcome, status, extra)
      local e = { title = "logs in", path = { "auth", "logs in" }, file = "auth.spec.ts", line = 7, column = 3,
                  project = project, outcome = outcome, status = status, retries = 0, duration = 1500 }
      for k, v in pairs(extra or {}) do e[k] = v end
      return e
    end
    local function parsed(tests)
      local r = { tests = tests, passed = {}, failed = {}, flaky = {}, skipped = {}, errors = {} }
      local into = { expected = r.passed, unexpected = r.failed, flaky = r.flaky, skipped = r.skipped }
      for _, e in ipairs(tests) do table.insert(into[e.outcome], e) end
      return r
    end
    local first = detail({ id = 12, total_count = 2, success_count = 1, failed_count = 1 },
                         { { name = "auth > logs in", status = "failed" }, { name = "auth > logs in", status = "passed" } })
    local rerun = detail({ id = 13, total_count = 1, success_count = 1, failed_count = 0 },
                         { { name = "auth > logs in", status = "passed" } })
    local one = parsed { entry("chromium", "unexpected", "failed", { message = "Error: boom", error = "Error: boom\n  at x" }),
                         entry("firefox", "expected", "passed") }
    local function cases_of(attempts)
      local suite = children(parse_xml(assert(report.junit_suites { { name = "staging", attempts = attempts } })),
                             "testsuite")[1]
      return children(suite, "testcase"), suite
    end
    for _, second in ipairs { parsed { entry("chromium", "expected", "passed", { duration = 900 }) }, false } do
      local cases, suite = cases_of { { detail = first, report = one }, { detail = rerun, report = second or nil } }
      assert.equal(2, #cases, "one per project, with or without the re-run's report")
      assert.same({ "2", "0", "0" }, { suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped })
      for i, project in ipairs { "chromium", "firefox" } do
        assert.same({ "auth › logs in [" .. project .. "]", "auth.spec.ts", "auth.spec.ts", "7" },
                    { cases[i].attrs.name, cases[i].attrs.classname, cases[i].attrs.file, cases[i].attrs.line })
        assert.equal(0, #children(cases[i], "failure"))
      end
      assert.equal("failed in run 12; then passed in re-run 13", children(cases[1], "system-out")[1].text)
      assert.equal(0, #children(cases[2], "system-out"), "firefox did not run again")
      assert.equal(second and "0.900" or nil, cases[1].attrs.time)
      assert.equal("1.500", cases[2].attrs.time)
    end
    -- a re-run that failed again keeps the failure, with the same identity
    local again = detail({ id = 13, total_count = 1, success_count = 0, failed_count = 1 })
    local cases, suite = cases_of { { detail = first, report = one },
                                    { detail = again, report = parsed { entry("chromium", "unexpected", "timedOut") } } }
    assert.same({ "2", "1" }, { suite.attrs.tests, suite.attrs.failures })
    assert.equal("timedOut", children(cases[1], "failure")[1].attrs.type)
    assert.equal("auth › logs in [chromium]", cases[1].attrs.name)
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
    runs = { { label = "staging", given = false, outcome = "failed", exit_code = 1,
               counts = { total = 10, passed = 3, failed = 6, flaky = 0, skipped = 1 }, attempts = { {
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

-- JUnit from whole Playwright reports, parsed by parse_report: the real ones
-- in ../shared/fixtures/playwright, and odd but valid ones built here.
describe("JUnit from a run's Playwright report", function()
  local report = require("empirical.report")
  local parse_report = require("empirical.playwright").parse
  local SHARED = "../shared/fixtures/playwright/"
  local FIXTURES = {
    "v1.31-webkit-snapshot.json", "v1.37-merged-shards.json", "v1.38-nested-describes.json",
    "v1.47-five-projects.json", "v1.57-nested-retries.json", "v1.59-flaky.json",
  }

  local function read_shared(name)
    local f = io.open(SHARED .. name, "rb")
    if not f then return nil end
    local text = f:read("*a")
    f:close()
    return text
  end

  -- The run as the API would give it for a parsed report: counts from the
  -- stats, a summary item per test named by its describe path.
  local function run_for(parsed, extra)
    local items = {}
    local SUMMARY = { expected = "passed", unexpected = "failed", flaky = "flaky", skipped = "skipped" }
    for i, e in ipairs(parsed.tests) do items[i] = { name = table.concat(e.path, " > "), status = SUMMARY[e.outcome] } end
    local s = parsed.stats
    local fields = { total_count = s.expected + s.unexpected + s.flaky + s.skipped, success_count = s.expected + s.flaky,
                     failed_count = s.unexpected, flaky_count = s.flaky, skipped_count = s.skipped }
    for k, v in pairs(extra or {}) do fields[k] = v end
    return detail(fields, items)
  end

  local function suite_of(attempts, name)
    local xml = assert(report.junit_suites { { name = name or "staging", attempts = attempts } })
    return children(parse_xml(xml), "testsuite")[1]
  end

  -- What a CI's test history keys a testcase by.
  local function identity(case)
    return { case.attrs.classname, case.attrs.name, case.attrs.file, case.attrs.line }
  end

  local function expected_name(e)
    return table.concat(e.path, " › ") .. (e.project and (" [" .. e.project .. "]") or "")
  end

  for _, name in ipairs(FIXTURES) do
    it("gives every test of " .. name .. " its file, line, name and project, whatever its outcome", function()
      local text = read_shared(name)
      if not text then return pending(SHARED .. " is not beside this checkout") end
      local parsed = assert(parse_report(text))
      local suite = suite_of { { detail = run_for(parsed), report = parsed, id = 12 } }
      local cases = children(suite, "testcase")
      assert.equal(#parsed.tests, #cases)   -- the summary items name the same tests: no second case for any
      assert.same({ tostring(#parsed.tests), tostring(#parsed.failed), tostring(#parsed.skipped), "0" },
                  { suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped, suite.attrs.errors })
      local by_identity = {}   -- a test's projects are side by side, each test where it first appears
      for _, case in ipairs(cases) do
        local key = table.concat(identity(case), "\n")
        assert.is_nil(by_identity[key], "one testcase per test and project: " .. key)
        by_identity[key] = case
      end
      for i, e in ipairs(parsed.tests) do
        local case = by_identity[table.concat({ e.file, expected_name(e), e.file, tostring(e.line) }, "\n")]
        assert.truthy(case, name .. " test " .. i .. ": " .. expected_name(e))
        assert.equal(("%.3f"):format(e.duration / 1000), case.attrs.time)
        local failure, skipped = children(case, "failure")[1], children(case, "skipped")[1]
        assert.equal(e.outcome == "unexpected", failure ~= nil, name .. " test " .. i)
        assert.equal(e.outcome == "skipped", skipped ~= nil, name .. " test " .. i)
        if failure then
          assert.equal(e.message, failure.attrs.message)
          assert.equal(e.error, failure.text)
        end
        local out = children(case, "system-out")[1]
        assert.equal(e.outcome == "flaky" and "flaky: passed on retry" or nil, out and out.text)
      end
    end)
  end

  -- One test, written as Playwright writes it, with the outcome given.
  local function one_test(status, results, expected_status)
    return json_report {
      suites = { { title = "cart.spec.ts", file = "cart.spec.ts", line = 0, column = 0, specs = {}, suites = {
        { title = "cart", file = "cart.spec.ts", line = 3, column = 6, specs = { {
          title = "adds an item", file = "cart.spec.ts", line = 9, column = 7, id = "x1",
          tests = { { projectName = "webkit", expectedStatus = expected_status or "passed", status = status,
                      results = results } } } } } } } },
    }
  end

  it("names one test the same whether it passed, failed, was flaky or skipped", function()
    local rows = {
      { "expected", { { status = "passed", duration = 40, errors = {} } }, nil, "passed" },
      { "unexpected", { { status = "failed", duration = 40, errors = { { message = "Error: no cart" } } } }, "failure" },
      { "flaky", { { status = "failed", duration = 40, errors = { { message = "x" } } }, { status = "passed", duration = 5 } },
        "system-out" },
      { "skipped", { { status = "skipped", duration = 0 } }, "skipped" },
      { "skipped", {}, "skipped" },                                         -- never ran: no results at all
      { "expected", { { status = "failed", duration = 40, errors = { { message = "as it should" } } } }, nil, "failed" },
    }
    local first
    for i, row in ipairs(rows) do
      local parsed = assert(parse_report(one_test(row[1], row[2], row[4])))
      local suite = suite_of { { detail = run_for(parsed), report = parsed } }
      local cases = children(suite, "testcase")
      assert.equal(1, #cases, i)
      assert.same({ "cart.spec.ts", "cart › adds an item [webkit]", "cart.spec.ts", "9" }, identity(cases[1]), i)
      first = first or identity(cases[1])
      assert.same(first, identity(cases[1]))
      local shown = {}
      for _, c in ipairs(cases[1].children) do shown[#shown + 1] = c.tag end
      assert.same(row[3] and { row[3] } or {}, shown, i)
      assert.equal(row[3] == "skipped" and "1" or "0", suite.attrs.skipped, i)
      assert.equal(row[3] == "failure" and "1" or "0", suite.attrs.failures, i)
    end
  end)

  it("copes with odd but valid reports: nulls, no line, no file, no project, an unknown status, zero tests", function()
    local parsed = assert(parse_report(json_report {
      suites = { { title = "odd.spec.ts", specs = {
        { title = "no place", line = cjson.null, column = cjson.null,
          tests = { { projectName = cjson.null, status = "expected", results = { cjson.null, { status = "passed" } } } } },
        { title = "warped", file = "odd.spec.ts", tests = { { status = "warped", projectName = "p", results = {} } } },
        { title = "passed when it should fail", file = "odd.spec.ts", line = 4,
          tests = { { expectedStatus = "failed", status = "unexpected", projectName = "p", results = { { status = "passed" } } } } },
        cjson.null,
      } }, cjson.null },
    }))
    local suite = suite_of({ { detail = detail({ total_count = 3, success_count = 1, failed_count = 1 },
                                               { { name = "no place", status = "passed" } }), report = parsed } }, "qa")
    local cases = children(suite, "testcase")
    assert.equal(3, #cases)
    assert.same({ "qa", "no place" }, { cases[1].attrs.classname, cases[1].attrs.name })   -- no file: the suite's name
    assert.same({}, { cases[1].attrs.file, cases[1].attrs.line, cases[1].attrs.time })
    assert.equal("status: warped", children(cases[2], "system-out")[1].text)
    assert.same({ "odd.spec.ts", "odd.spec.ts", nil }, { cases[2].attrs.classname, cases[2].attrs.file, cases[2].attrs.line })
    assert.equal("failed", children(cases[3], "failure")[1].attrs.type)   -- test.fail() that passed fails the run
    assert.same({ "3", "1", "0" }, { suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped })

    -- a report of zero tests: the run's own names, as without a report
    local empty = assert(parse_report('{"suites":[],"stats":{"expected":0,"unexpected":0,"flaky":0,"skipped":0}}'))
    local d = detail({ total_count = 2, success_count = 1, skipped_count = 1 },
                     { { name = "a > b", status = "passed", duration = 250 }, { name = "c", status = "skipped" } })
    cases = children(suite_of { { detail = d, report = empty } }, "testcase")
    assert.same({ "a > b", "staging", "0.250" }, { cases[1].attrs.name, cases[1].attrs.classname, cases[1].attrs.time })
    assert.equal(1, #children(cases[2], "skipped"))
  end)

  it("falls back to the run's summary items when there is no report", function()
    local d = detail({ total_count = 2, success_count = 1, failed_count = 1 },
                     { { name = "cart > adds an item", status = "passed" }, { name = "cart > pays", status = "failed" } })
    local suite = suite_of { { detail = d } }
    local cases = children(suite, "testcase")
    assert.same({ "cart > adds an item", "staging" }, { cases[1].attrs.name, cases[1].attrs.classname })
    assert.same({ "2", "1" }, { suite.attrs.tests, suite.attrs.failures })
  end)
end)

-- A test keeps one identity in a CI's history whether or not a report could
-- be had: summary items that carry the test's file and project (the vendor's
-- do) name it as the report does, only without the line.
describe("JUnit identity without a report", function()
  local report = require("empirical.report")

  local function item(name, status, project, extra)
    local it_ = { name = name, status = status, file = "tests/checkout.spec.ts", project = project }
    for k, v in pairs(extra or {}) do it_[k] = v end
    return it_
  end
  local function entry(project, outcome, status, extra)
    local e = { title = "pays with card", path = { "checkout", "pays with card" }, file = "tests/checkout.spec.ts",
                line = 6, column = 5, project = project, outcome = outcome, status = status, retries = 0 }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end
  local function parsed(tests)
    local r = { tests = tests, passed = {}, failed = {}, flaky = {}, skipped = {}, errors = {} }
    local into = { expected = r.passed, unexpected = r.failed, flaky = r.flaky, skipped = r.skipped }
    for _, e in ipairs(tests) do table.insert(into[e.outcome], e) end
    return r
  end
  local function cases_of(attempts)
    local xml = assert(report.junit_suites { { name = "staging", attempts = attempts } })
    local suite = children(parse_xml(xml), "testsuite")[1]
    return children(suite, "testcase"), suite
  end
  local function identity(case) return { case.attrs.classname, case.attrs.name, case.attrs.file } end

  it("names a test from its summary item as its report would, without the line", function()
    local d = detail({ total_count = 2, success_count = 0, failed_count = 2 },
                     { item("checkout > pays with card", "failed", "chromium", { duration = 1500 }),
                       item("checkout > pays with card", "failed", "firefox") })
    local without = cases_of { { detail = d } }
    local with = cases_of { { detail = d, report = parsed { entry("chromium", "unexpected", "failed"),
                                                            entry("firefox", "unexpected", "failed") } } }
    assert.equal(2, #without)
    for i, project in ipairs { "chromium", "firefox" } do
      assert.same({ "tests/checkout.spec.ts", "checkout › pays with card [" .. project .. "]",
                    "tests/checkout.spec.ts" }, identity(without[i]))
      assert.same(identity(with[i]), identity(without[i]))
      assert.is_nil(without[i].attrs.line)
      assert.equal("6", with[i].attrs.line)
    end
    assert.equal("1.500", without[1].attrs.time)
    -- an item without a project keeps the run's name and the suite's classname
    local plain = cases_of { { detail = detail({ total_count = 1, failed_count = 1 },
                                               { { name = "checkout > pays with card", status = "failed" } }) } }
    assert.same({ "staging", "checkout > pays with card" }, { plain[1].attrs.classname, plain[1].attrs.name })
  end)

  it("shows one identity per test when one attempt's report is missing and another's is there", function()
    local first = detail({ id = 12, total_count = 3, success_count = 1, failed_count = 2 },
                         { item("checkout > pays with card", "failed", "chromium"),
                           item("checkout > pays with card", "failed", "firefox"),
                           item("checkout > pays with cash", "passed", "chromium") })
    local rerun = detail({ id = 13, total_count = 2, success_count = 1, failed_count = 1 },
                         { item("checkout > pays with card", "failed", "firefox"),
                           item("checkout > pays with card", "passed", "chromium") })
    local rerun_report = parsed { entry("firefox", "unexpected", "failed"), entry("chromium", "expected", "passed") }
    local first_report = parsed { entry("chromium", "unexpected", "failed"), entry("firefox", "unexpected", "failed"),
                                  entry("chromium", "expected", "passed", { title = "pays with cash",
                                                                            path = { "checkout", "pays with cash" } }) }
    local seen
    for _, attempts in ipairs {
      { { detail = first }, { detail = rerun, report = rerun_report } },     -- the run's report missing
      { { detail = first, report = first_report }, { detail = rerun } },     -- the re-run's
      { { detail = first }, { detail = rerun } },                            -- both
    } do
      local cases, suite = cases_of(attempts)
      local names = {}
      for i, case in ipairs(cases) do names[i] = case.attrs.classname .. " | " .. case.attrs.name end
      table.sort(names)
      assert.same({ "tests/checkout.spec.ts | checkout › pays with card [chromium]",
                    "tests/checkout.spec.ts | checkout › pays with card [firefox]",
                    "tests/checkout.spec.ts | checkout › pays with cash [chromium]" }, names)
      assert.same({ "3", "1" }, { suite.attrs.tests, suite.attrs.failures })
      seen = seen or names
      assert.same(seen, names)
    end
  end)

  it("counts per project when a re-run's report is missing: the one fixed is flaky, the other still failed", function()
    -- firefox fails, chromium fails and a re-run fixes it; the re-run's report could not be had
    local first = detail({ id = 12, total_count = 3, success_count = 1, failed_count = 2 },
                         { item("checkout > pays with card", "failed", "firefox"),
                           item("checkout > pays with card", "failed", "chromium"),
                           item("checkout > pays with cash", "passed", "chromium") })
    local rerun = detail({ id = 13, total_count = 2, success_count = 1, failed_count = 1 },
                         { item("checkout > pays with card", "failed", "firefox"),
                           item("checkout > pays with card", "passed", "chromium") })
    local first_report = parsed { entry("firefox", "unexpected", "failed"), entry("chromium", "unexpected", "failed"),
                                  entry("chromium", "expected", "passed", { title = "pays with cash",
                                                                            path = { "checkout", "pays with cash" } }) }
    for _, one in ipairs { first_report, false } do
      local attempts = { { detail = first, report = one or nil }, { detail = rerun } }
      assert.same({ total = 3, passed = 1, failed = 1, flaky = 1, skipped = 0 }, report.judged_counts(attempts))
      local cases, suite = cases_of(attempts)
      assert.same({ "3", "1" }, { suite.attrs.tests, suite.attrs.failures })
      for _, case in ipairs(cases) do
        local failed = #children(case, "failure") == 1
        assert.equal(case.attrs.name == "checkout › pays with card [firefox]", failed, case.attrs.name)
      end
    end
  end)

  it("items without a project: a re-run's items never hide a failure, nor count a test twice", function()
    local function plain(name, status) return { name = name, status = status } end
    local first = detail({ id = 12, total_count = 2, failed_count = 1, success_count = 1 },
                         { plain("a > b", "passed"), plain("a > b", "failed") })
    -- a re-run of the failed one, its report missing: one case replaced, the other standing
    local rerun = detail({ id = 13, total_count = 1, success_count = 1 }, { plain("a > b", "passed") })
    assert.same({ total = 2, passed = 1, failed = 0, flaky = 1, skipped = 0 },
                report.judged_counts { { detail = first }, { detail = rerun } })
    -- two projects from a report, the re-run's two items without projects: the worst goes to both
    local two = parsed { entry("chromium", "unexpected", "failed"), entry("firefox", "unexpected", "failed") }
    local again = detail({ id = 13, total_count = 2, success_count = 1, failed_count = 1 },
                         { plain("checkout > pays with card", "passed"), plain("checkout > pays with card", "failed") })
    local c = report.judged_counts { { detail = first, report = two }, { detail = again } }
    assert.same({ 2, 2 }, { c.total, c.failed })
  end)

  it("gives JUnit a finite time, whatever the duration", function()
    local d = detail({ total_count = 3, success_count = 3 },
                     { item("a > b", "passed", "chromium", { duration = math.huge }),
                       item("a > c", "passed", "chromium", { duration = -5 }),
                       item("a > d", "passed", "chromium", { duration = 0 / 0 }) })
    for _, case in ipairs(cases_of { { detail = d, report = parsed { entry("chromium", "expected", "passed",
                                                                         { duration = math.huge }) } } }) do
      assert.is_nil(case.attrs.time)
    end
    for _, case in ipairs(cases_of { { detail = d } }) do assert.is_nil(case.attrs.time) end
  end)
end)
