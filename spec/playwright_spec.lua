-- empirical.playwright (exported as empirical.parse_report) on real reports
-- and on everything else.
--
-- What "agrees" is checked against: spec/tools/playwright_extract.js, a
-- second extraction written apart from the module, in JavaScript, on Node's
-- own JSON.parse and ANSI stripper (util.stripVTControlCharacters), so a
-- shared mistake would need the same bug twice in two languages. When `node`
-- is on the machine the spec runs it over spec/fixtures/playwright at test
-- time; its output, reviewed once against the counts and descriptions in
-- SOURCES.md, is committed as spec/fixtures/playwright-expected.json, so a
-- machine without node still checks every field. The counts are also read
-- straight from SOURCES.md's table, a third source neither program wrote.
local cjson = require("cjson")
local helper = require("helper")
local playwright = require("empirical.playwright")
local parse = playwright.parse

local json = cjson.new()
json.encode_sparse_array(true)
json.decode_max_depth(10000)
local NULL = json.null
local DIR = "spec/fixtures/playwright/"
local FIXTURES = {
  "v1.31-webkit-snapshot.json", "v1.37-merged-shards.json", "v1.38-nested-describes.json",
  "v1.47-five-projects.json", "v1.57-nested-retries.json", "v1.59-flaky.json",
}
local OUTCOMES = { "expected", "unexpected", "flaky", "skipped" }
local FIELDS = { "title", "path", "file", "line", "column", "project", "outcome", "status", "message", "error", "retries",
                 "duration" }

local read = helper.read_file

-- The fields a user reads, with JSON null (the extraction's absent) as nil.
local function view(report)
  local function entries(list)
    local out = {}
    for i, e in ipairs(list or {}) do
      out[i] = {}
      for _, k in ipairs(FIELDS) do if e[k] ~= NULL then out[i][k] = e[k] end end
    end
    return out
  end
  local errors = {}
  for i, e in ipairs(report.errors) do errors[i] = { message = e.message, error = e.error } end
  return { stats = report.stats, counted = report.counted, tests = entries(report.tests),
           failed = entries(report.failed), flaky = entries(report.flaky), errors = errors }
end

local function has_node()
  local status = os.execute("command -v node >/dev/null 2>&1")
  return status == true or status == 0   -- 5.2+ and LuaJIT with 5.2 compatibility: true; 5.1: 0
end

describe("parse_report on the fixture reports", function()
  local expected = json.decode(read("spec/fixtures/playwright-expected.json"))

  it("has an expectation for every fixture and a fixture for every expectation", function()
    local names = {}
    for name in pairs(expected) do names[#names + 1] = name end
    table.sort(names)
    assert.same(FIXTURES, names)
  end)

  for _, name in ipairs(FIXTURES) do
    it("agrees with the committed independent extraction: " .. name, function()
      local report, err = parse(read(DIR .. name))
      assert.is_nil(err)
      assert.same(expected[name], view(report))
    end)
  end

  it("the committed extraction is what the Node script prints today, and the parser agrees with it", function()
    if not has_node() then pending("node is not installed: the committed expectation was checked above") return end
    local code, out, err = helper.run({ "node", "spec/tools/playwright_extract.js", DIR })
    assert.equal(0, code, err)
    local live = json.decode(out)
    assert.same(expected, live)
    for _, name in ipairs(FIXTURES) do assert.same(live[name], view(assert(parse(read(DIR .. name))))) end
  end)

  it("counts what SOURCES.md's table says for each report", function()
    local rows = 0
    for line in read(DIR .. "SOURCES.md"):gmatch("[^\n]+") do
      local name, e, u, f, s = line:match("^| `([^`]+%.json)` |.* (%d+) / (%d+) / (%d+) / (%d+) |$")
      if name then
        rows = rows + 1
        local report = assert(parse(read(DIR .. name)))
        assert.same({ expected = tonumber(e), unexpected = tonumber(u), flaky = tonumber(f), skipped = tonumber(s) },
                    report.stats, name)
        assert.same(report.stats, report.counted, name)   -- the walk agrees with the stats block where there is one
        assert.equal(report.stats.unexpected, #report.failed)
        assert.equal(report.stats.flaky, #report.flaky)
        assert.equal(report.stats.expected, #report.passed)
        assert.equal(report.stats.skipped, #report.skipped)
        assert.equal(tonumber(e) + tonumber(u) + tonumber(f) + tonumber(s), #report.tests)
      end
    end
    assert.equal(#FIXTURES, rows)
  end)

  it("lists every test in report order; passed, failed, flaky and skipped are its entries by outcome", function()
    local LIST = { expected = "passed", unexpected = "failed", flaky = "flaky", skipped = "skipped" }
    for _, name in ipairs(FIXTURES) do
      local r = assert(parse(read(DIR .. name)))
      local want = { passed = {}, failed = {}, flaky = {}, skipped = {} }
      for _, e in ipairs(r.tests) do
        local into = want[LIST[e.outcome]]
        into[#into + 1] = e
      end
      for which, entries in pairs(want) do
        assert.equal(#entries, #r[which], name .. " " .. which)
        for i, e in ipairs(entries) do assert.is_true(rawequal(e, r[which][i]), name .. " " .. which .. " " .. i) end
      end
      for _, e in ipairs(r.tests) do
        assert.is_string(e.file, name)
        assert.is_number(e.line, name)
        assert.is_string(e.project, name)
      end
    end
    -- the 1.47 report: a skipped test whose only result was interrupted, and passing tests with their places
    local r = assert(parse(read(DIR .. "v1.47-five-projects.json")))
    local s = r.skipped[1]
    assert.same({ "skipped", "interrupted", "Mobile Safari", "loginPage.spec.js", 29 },
                { s.outcome, s.status, s.project, s.file, s.line })
    local p = r.passed[1]
    assert.same({ { "Login Page Tests", "should display an error message for invalid login" }, "Desktop Chrome", 29, "passed" },
                { p.path, p.project, p.line, p.status })
    assert.is_nil(p.message)
    assert.equal(29202, p.duration)
    if math.type then assert.equal("integer", math.type(p.duration)) end
  end)

  it("reads copies of ../shared/fixtures/playwright that are still current", function()
    local f = io.open("../shared/fixtures/playwright/SOURCES.md", "rb")
    if not f then return pending("../shared/fixtures/playwright is not beside this checkout") end
    f:close()
    for _, name in ipairs(FIXTURES) do
      assert.equal(read("../shared/fixtures/playwright/" .. name), read(DIR .. name),
                   "refresh spec/fixtures/playwright/" .. name .. " from ../shared/fixtures/playwright")
    end
  end)

  it("lists one entry per test per project, describes nested, messages without ANSI", function()
    local r = assert(parse(read(DIR .. "v1.47-five-projects.json")))
    local projects = {}
    for i, e in ipairs(r.failed) do projects[i] = e.project end
    assert.same({ "Desktop Chrome", "Desktop Firefox", "Desktop Firefox", "Desktop Safari", "Mobile Chrome", "Mobile Chrome" }, projects)
    -- two errors in the last result: both kept, in order, the first gives the message
    local two = r.failed[2]
    assert.equal('Test timeout of 30000ms exceeded while running "beforeEach" hook.', two.message)
    assert.truthy(two.error:find("Error: page.goto: Test timeout of 30000ms exceeded.", 1, true))
    r = assert(parse(read(DIR .. "v1.57-nested-retries.json")))
    assert.same({ "Loan Actions", "Approve Loan", "should approve a pending loan" }, r.failed[1].path)
    assert.same({ file = "tests/03-loan-actions.spec.ts", line = 22, column = 5, retries = 2, status = "failed" },
                { file = r.failed[1].file, line = r.failed[1].line, column = r.failed[1].column,
                  retries = r.failed[1].retries, status = r.failed[1].status })
    assert.falsy(r.failed[1].error:find("\27", 1, true))
    if math.type then assert.equal("integer", math.type(r.failed[1].line)) end
  end)
end)

-- Reports built here: a file suite around describes, specs, tests.
local function result(status, err, extra)
  local r = { status = status, errors = err and { { message = err } } or {} }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local function test(status, results, extra)
  local t = { status = status, projectName = "chromium", results = results or { result("failed", "boom") } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end
local function spec(title, tests, extra)
  local s = { title = title, file = "a.spec.ts", line = 3, column = 5, tests = tests or { test("unexpected") } }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end
local function report(specs, suites, extra)
  local d = { suites = { { title = "a.spec.ts", file = "a.spec.ts", line = 0, column = 0, specs = specs or {}, suites = suites } } }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end
local function run(doc) return parse(type(doc) == "string" and doc or json.encode(doc)) end

describe("parse_report's shape decisions", function()
  it("builds paths from describes, leaving out the file suite and empty titles, in report order", function()
    local deep = { title = "inner", specs = { spec("t2") }, suites = { { title = "", specs = { spec("t3") } } } }
    local r = assert(run(report({ spec("t1") }, { { title = "outer", suites = { deep } } })))
    local paths = {}
    for i, e in ipairs(r.failed) do paths[i] = table.concat(e.path, " > ") end
    assert.same({ "t1", "outer > inner > t2", "outer > inner > t3" }, paths)
  end)

  it("takes the last result with a non-blank error: errors[] joined, else error; message, else value, else stack", function()
    local t = test("flaky", {
      result("failed", nil, { errors = { { message = "\27[31mfirst\27[39m\nframe" }, { value = "second" } } }),
      result("failed", nil, { error = { stack = "Error: from stack\n    at x.js:1" } }),
      result("failed", "\27[31m\27[39m \n"),   -- blank once stripped: not the one to show
      result("passed"),
    })
    local e = assert(run(report({ spec("t", { t }) }))).flaky[1]
    assert.same({ status = "passed", retries = 3, message = "Error: from stack", error = "Error: from stack\n    at x.js:1" },
                { status = e.status, retries = e.retries, message = e.message, error = e.error })
    e = assert(run(report({ spec("t", { test("unexpected", { t.results[1] }) }) }))).failed[1]
    assert.same({ "first", "first\nframe\n\nsecond" }, { e.message, e.error })
    -- errors[] wins over error when both are there (the 1.31 fixture's case)
    local both = result("failed", "Error: plural", { error = { message = "singular" } })
    e = assert(run(report({ spec("t", { test("unexpected", { both }) }) }))).failed[1]
    assert.equal("Error: plural", e.message)
  end)

  it("gives nil message and error, status nil and retries 0 where there is nothing to read", function()
    local r = assert(run(report({
      spec("no results", { test("unexpected", {}) }),
      spec("blank error", { test("unexpected", { result("timedOut", nil, { error = { message = "" }, errors = { {} } }) }) }),
      spec("only escapes", { test("unexpected", { result("failed", "\27[31m\27[39m\n  \t") }) }),
      spec("no tests", {}),
    })))
    assert.equal(3, #r.failed)
    assert.same({ nil, 0 }, { r.failed[1].status, r.failed[1].retries })
    for _, e in ipairs(r.failed) do assert.same({}, { e.message, e.error }) end
    assert.same({ expected = 0, unexpected = 3, flaky = 0, skipped = 0 }, r.counted)
  end)

  it("computes a missing status as Playwright does, ignoring interrupted results", function()
    local function outcome(statuses, expected_status)
      local results = {}
      for i, s in ipairs(statuses) do results[i] = result(s, s ~= "passed" and s ~= "skipped" and "x" or nil) end
      local t = test(nil, results, { expectedStatus = expected_status })
      local r = assert(run(report({ spec("t", { t }) })))
      for _, k in ipairs(OUTCOMES) do if r.counted[k] == 1 then return k end end
    end
    assert.equal("flaky", outcome({ "failed", "passed" }))
    assert.equal("unexpected", outcome({ "failed", "timedOut" }))
    assert.equal("expected", outcome({ "passed", "interrupted" }))
    assert.equal("skipped", outcome({ "skipped" }))
    assert.equal("skipped", outcome({}))
    assert.equal("expected", outcome({ "failed" }, "failed"))   -- test.fail()
  end)

  it("lists passing and skipped tests with the same fields, odd but valid ones too", function()
    local fail_as_expected = test("expected", { result("failed", "\27[31mexpected to fail\27[39m", { duration = 5 }) },
                                  { expectedStatus = "failed" })
    local r = assert(run(report({
      spec("passes", { test("expected", { result("passed", nil, { duration = 120 }) }) }),
      spec("passes on the second try", { test("flaky", { result("failed", "x", { duration = 10 }),
                                                          result("passed", nil, { duration = 20 }) }) }),
      spec("skipped, never run", { test("skipped", {}, { projectName = "firefox" }) }),
      spec("skipped, null results", { test("skipped", NULL) }),
      spec("fails as expected", { fail_as_expected }),
      spec("odd durations", { test("expected", { result("passed", nil, { duration = -1 }), result("passed", nil, { duration = NULL }),
                                                 result("passed", nil, { duration = 2.5 }) }) }),
      spec("no line", { test("expected", { result("passed") }) }, { line = NULL, column = NULL }),
      spec("a status of its own", { test("warped", { result("passed") }) }),
    })))
    local titles = {}
    for i, e in ipairs(r.tests) do titles[i] = e.title .. ":" .. e.outcome end
    assert.same({ "passes:expected", "passes on the second try:flaky", "skipped, never run:skipped",
                  "skipped, null results:skipped", "fails as expected:expected", "odd durations:expected",
                  "no line:expected", "a status of its own:warped" }, titles)
    assert.same({ expected = 4, unexpected = 0, flaky = 1, skipped = 2 }, r.counted)
    assert.same({ 4, 0, 1, 2 }, { #r.passed, #r.failed, #r.flaky, #r.skipped })
    local p = r.passed[1]
    assert.same({ title = "passes", path = { "passes" }, file = "a.spec.ts", line = 3, column = 5, project = "chromium",
                  outcome = "expected", status = "passed", retries = 0, duration = 120 }, p)
    assert.equal(30, r.flaky[1].duration)
    local s = r.skipped[1]
    assert.same({ "firefox", 3, "skipped" }, { s.project, s.line, s.outcome })
    assert.same({}, { s.status, s.duration, s.message, s.error })
    assert.equal(0, s.retries)
    assert.is_true(rawequal(r.skipped[2], r.tests[4]))
    local expected_failure = r.passed[2]
    assert.same({ "failed", "expected to fail", 5 },
                { expected_failure.status, expected_failure.message, expected_failure.duration })
    assert.equal(2.5, r.passed[3].duration)   -- -1 and null are no duration
    assert.same({ "no line" }, { r.passed[4].title, r.passed[4].line, r.passed[4].column })
    assert.equal("warped", r.tests[8].outcome)   -- only in tests: no list of its own
  end)

  it("takes a duration that is not a finite number as no duration, and keeps the rest of the report", function()
    -- "duration":"12" once made the whole report a decode error: every test's file, line and message lost
    local text = [[{"suites":[{"title":"a.spec.ts","file":"a.spec.ts","specs":[
      {"title":"as text","file":"a.spec.ts","line":4,"tests":[{"projectName":"chromium","status":"unexpected",
        "results":[{"status":"failed","duration":"12","errors":[{"message":"Error: boom"}]}]}]},
      {"title":"odd kinds","file":"a.spec.ts","line":9,"tests":[{"projectName":"chromium","status":"expected",
        "results":[{"status":"failed","duration":{"ms":3}},{"status":"failed","duration":true},
                   {"status":"passed","duration":[1]},{"status":"passed","duration":7}]}]},
      {"title":"huge","file":"a.spec.ts","line":12,"tests":[{"projectName":"chromium","status":"expected",
        "results":[{"status":"failed","duration":1e308},{"status":"passed","duration":1e308},
                   {"status":"passed","duration":1e999}]}]}]}]}]]
    local r = assert(parse(text))
    local as_text, odd, huge = r.tests[1], r.tests[2], r.tests[3]
    assert.same({ "a.spec.ts", 4, "Error: boom", "failed" }, { as_text.file, as_text.line, as_text.message, as_text.status })
    assert.is_nil(as_text.duration)
    assert.equal(7, odd.duration)   -- only the number counts
    assert.is_true(huge.duration > 1e308 and huge.duration < math.huge, tostring(huge.duration))   -- inf is no duration
    -- and JUnit's time stays a finite number
    local junit = require("empirical.report")
    local xml = assert(junit.junit_suites { { name = "staging", attempts = { {
      detail = { testRun = { id = 1, state = "ended", total_count = 3, success_count = 2, failed_count = 1 } },
      report = r } } } })
    local path = os.tmpname()
    helper.write_file(path, xml)
    local cases = helper.children(helper.junit_suites(path)[1], "testcase")
    assert.equal(3, #cases)
    assert.is_nil(cases[1].attr.time)
    assert.equal("0.007", cases[2].attr.time)
    local t = tonumber(cases[3].attr.time)
    assert.truthy(t and t == t and t < math.huge, cases[3].attr.time)
    assert.equal("a.spec.ts", cases[1].attr.file)
    assert.equal("Error: boom", helper.children(cases[1], "failure")[1].attr.message)
  end)

  it("reads a report of zero tests, and specs without tests", function()
    for _, doc in ipairs { report({}), report({ spec("empty", {}), spec("null tests", NULL) }), report(nil, { { title = "d" } }) } do
      local r = assert(run(doc))
      assert.same({ {}, {}, {}, {}, {} }, { r.tests, r.passed, r.failed, r.flaky, r.skipped })
      assert.same({ expected = 0, unexpected = 0, flaky = 0, skipped = 0 }, r.stats)
    end
  end)

  it("trusts the stats block for the counts and keeps the walk's beside it", function()
    local r = assert(run(report({ spec("t") }, nil, { stats = { expected = 7, unexpected = 0, skipped = 1, duration = 1.5 } })))
    assert.same({ expected = 7, unexpected = 0, flaky = 0, skipped = 1 }, r.stats)   -- flaky missing: the walk's
    assert.same({ expected = 0, unexpected = 1, flaky = 0, skipped = 0 }, r.counted)
    assert.equal(1, #r.failed)
  end)

  it("reports the report's own errors, and treats nulls as absent", function()
    local t = test("unexpected", { NULL, result("failed", "x") }, { projectName = NULL })
    local r = assert(run(report({ NULL, spec("t", { NULL, t }, { line = NULL }) },
      NULL, { errors = { { message = "\27[31mError: globalSetup threw\27[39m\n  at setup.ts:3" }, NULL }, stats = NULL })))
    assert.same({ { message = "Error: globalSetup threw", error = "Error: globalSetup threw\n  at setup.ts:3" } }, r.errors)
    local e = r.failed[1]
    assert.same({ nil, nil, 0, "x" }, { e.project, e.line, e.retries, e.message })
  end)

  it("strips CSI, OSC hyperlinks, charset and stray escapes and leaves UTF-8 alone", function()
    local rows = {
      { "\27[1;31mred\27[0m", "red" },
      { "\27]8;;https://x.example\27\\link\27]8;;\27\\", "link" },
      { "\27]0;title\7text", "text" },
      { "\27(Bplain\27[?25h\27[2K", "plain" },
      { "end\27", "end" },
      { "≤ caf\195\169 \226\156\147", "≤ caf\195\169 \226\156\147" },
    }
    for _, row in ipairs(rows) do assert.equal(row[2], playwright.strip(row[1])) end
  end)

  it("caps error and message at 4096 bytes without splitting a character, and accepts a BOM", function()
    local long = ("\226\156\147"):rep(3000)          -- 9000 bytes of 3-byte characters
    local r = assert(run("\239\187\191" .. json.encode(report({ spec("t", { test("unexpected", { result("failed", long .. "\n" .. long) }) }) }))))
    local e = r.failed[1]
    assert.equal(4095, #e.error)
    assert.equal(4095, #e.message)
    assert.equal(e.message, e.error)
    assert.truthy(e.error:match("^[\226\156\147]*$"))   -- whole characters only
    assert.equal(0, #e.error % 3)
  end)

  it("reads a huge error (megabytes of blanks before the text) to its first line", function()
    local r = assert(run(report({ spec("t", { test("unexpected", { result("failed", (" "):rep(2 ^ 21) .. "late\n" .. ("x"):rep(2 ^ 21)) }) }) })))
    assert.equal("late", r.failed[1].message)
    assert.equal(4096, #r.failed[1].error)
  end)

  it("follows suites nested as deep as the decoder allows", function()
    local levels = math.floor(playwright.MAX_DEPTH / 2) - 10
    local inner = { title = "d" .. levels, specs = { spec("deepest") } }
    for i = levels - 1, 1, -1 do inner = { title = "d" .. i, suites = { inner } } end
    local r = assert(run(report({}, { inner })))
    assert.equal(levels + 1, #r.failed[1].path)
    assert.equal("d1", r.failed[1].path[1])
  end)
end)

describe("parse_report on bad input", function()
  local S = '{"suites":[{"title":"a.spec.ts","specs":[%s]}]}'
  local T = S:format('{"title":"t","tests":[%s]}')
  local R = T:format('{"status":"unexpected","results":[%s]}')
  local rows = {
    { "not JSON", "nope", nil, "not JSON" },
    { "empty text", "", nil, "not JSON" },
    { "truncated", '{"suites":[', nil, "not JSON" },
    { "NaN literal", '{"suites":[],"stats":{"expected":NaN}}', nil, "not JSON" },
    { "JSON null", "null", nil, "got null" },
    { "an empty array (to cjson, also {})", "[]", "suites", "missing" },
    { "a list of objects", '[{"suites":[]}]', nil, "got a list" },
    { "a string", '"report"', nil, "got a string" },
    { "a number", "42", nil, "got 42" },
    { "no suites", '{"config":{}}', "suites", "missing" },
    { "null suites", '{"suites":null}', "suites", "missing" },
    { "suites an object", '{"suites":{"a":1}}', "suites", "expected a list, got an object" },
    { "suites a string", '{"suites":"x"}', "suites", "expected a list, got a string" },
    { "a suite that is a number", '{"suites":[1]}', "suites[1]", "expected an object, got 1" },
    { "a suite that is a list", '{"suites":[[1]]}', "suites[1]", "expected an object, got a list" },
    { "a suite title that is a number", '{"suites":[{"title":5}]}', "suites[1].title", "expected a string, got 5" },
    { "specs an object", '{"suites":[{"specs":{"x":1}}]}', "suites[1].specs", "expected a list" },
    { "a spec title that is a boolean", S:format('{"title":true}'), "suites[1].specs[1].title", "got true" },
    { "a spec title that is an object", S:format('{"title":{"a":1}}'), "suites[1].specs[1].title", "got an object" },
    { "a line that is a string", S:format('{"line":"20"}'), "suites[1].specs[1].line", "whole number" },
    { "a negative column", S:format('{"column":-1}'), "suites[1].specs[1].column", "got -1" },
    { "a fractional line", S:format('{"line":1.5}'), "suites[1].specs[1].line", "got 1.5" },
    { "a line beyond 2^53", S:format('{"line":1e300}'), "suites[1].specs[1].line", "whole number" },
    { "tests a string", S:format('{"tests":"x"}'), "suites[1].specs[1].tests", "expected a list" },
    { "a projectName that is a number", T:format('{"projectName":3}'), "suites[1].specs[1].tests[1].projectName", "got 3" },
    { "a status that is a list", T:format('{"status":["x"]}'), "suites[1].specs[1].tests[1].status", "got a list" },
    { "results an object", T:format('{"results":{"a":1}}'), "suites[1].specs[1].tests[1].results", "expected a list" },
    { "a result status that is a number", R:format('{"status":1}'), "suites[1].specs[1].tests[1].results[1].status", "got 1" },
    { "an errors item that is a string", R:format('{"errors":["x"]}'), "suites[1].specs[1].tests[1].results[1].errors[1]", "got a string" },
    { "an error message that is a number", R:format('{"error":{"message":7}}'), "suites[1].specs[1].tests[1].results[1].error.message", "got 7" },
    { "stats a string", '{"suites":[],"stats":"x"}', "stats", "expected an object" },
    { "a stats count that is a string", '{"suites":[],"stats":{"expected":"3"}}', "stats.expected", "got a string" },
    { "a negative stats count", '{"suites":[],"stats":{"flaky":-1}}', "stats.flaky", "got -1" },
    { "top-level errors an object", '{"suites":[],"errors":{"a":1}}', "errors", "expected a list" },
    { "nested past the decoder's limit", ("["):rep(playwright.MAX_DEPTH + 1) .. ("]"):rep(playwright.MAX_DEPTH + 1), nil, "nested" },
  }
  for _, row in ipairs(rows) do
    it("returns nil, err for " .. row[1], function()
      local r, err = parse(row[2])
      assert.is_nil(r)
      assert.equal("decode", err.kind)
      assert.equal(row[3], err.field)
      assert.truthy(err.message:find(row[4], 1, true), err.message)
      if row[3] then assert.equal(row[3] .. ": ", err.message:sub(1, #row[3] + 2)) end
      assert.truthy(tostring(err):find("empirical: decode", 1, true))
    end)
  end

  it("says what it found, a number as written (7, not 7.0)", function()
    local _, err = parse(S:format('{"title":7}'))
    assert.equal("suites[1].specs[1].title: expected a string, got 7", err.message)
  end)

  it("refuses a non-string argument as invalid", function()
    for _, v in ipairs({ false, 42, {} }) do
      local r, err = parse(v)
      assert.is_nil(r)
      assert.same({ "invalid", "json_text" }, { err.kind, err.field })
    end
    assert.equal("invalid", select(2, parse()).kind)
  end)

  it("reads an empty report and a suite given as [] (cjson cannot tell it from {})", function()
    for _, text in ipairs({ '{"suites":[]}', '{"suites":[[]]}', '{"suites":[{}],"stats":{}}' }) do
      local r = assert(parse(text))
      assert.same({ expected = 0, unexpected = 0, flaky = 0, skipped = 0 }, r.stats)
      assert.same({ {}, {}, {}, {}, {}, {} }, { r.tests, r.passed, r.failed, r.flaky, r.skipped, r.errors })
    end
  end)
end)

-- What holds for every answer, shared with the fuzz harness.
local check_shape = require("fuzz.report_shape")

-- A random JSON value, sometimes large or with escapes in it.
local function random_value(depth)
  local pick = math.random(12)
  if pick == 1 then return NULL end
  if pick == 2 then return math.random(2) == 1 end
  if pick == 3 then return ({ 0, -1, 1.5, 2 ^ 60, 3 })[math.random(5)] end
  if pick == 4 then return ("\27[31mx\27[0m\n"):rep(math.random(50)) end
  if pick == 5 then return ("é"):rep(math.random(3000)) end
  if pick == 6 then return {} end
  if pick == 7 and depth < 3 then return { random_value(depth + 1), random_value(depth + 1) } end
  if pick == 8 and depth < 3 then return { message = random_value(depth + 1), status = random_value(depth + 1) } end
  return ({ "expected", "unexpected", "flaky", "skipped", "failed", "passed", "timedOut", "" })[math.random(8)]
end

-- Walk down from the root to a random table and drop, replace or retype one of its keys.
local function mutate(doc)
  local node = doc
  while true do
    local keys = {}
    for k in pairs(node) do keys[#keys + 1] = k end
    if #keys == 0 then return end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local k = keys[math.random(#keys)]
    if type(node[k]) ~= "table" or math.random(4) == 1 then
      if math.random(3) == 1 and type(k) == "string" then node[k] = nil
      elseif type(k) == "number" and math.random(3) == 1 then table.remove(node, k)
      else node[k] = random_value(0) end
      return
    end
    node = node[k]
  end
end

describe("parse_report on mutated fixtures (property: never raises, always well shaped)", function()
  local seed = tonumber(os.getenv("EMPIRICAL_SEED")) or os.time()
  local texts = {}
  for i, name in ipairs(FIXTURES) do texts[i] = read(DIR .. name) end

  it("re-encoding a fixture changes nothing, so the mutations below start from the real thing", function()
    for _, text in ipairs(texts) do assert.same(view(assert(parse(text))), view(assert(parse(json.encode(json.decode(text)))))) end
  end)

  it("holds over 300 mutated reports (seed " .. seed .. ", set EMPIRICAL_SEED to replay)", function()
    math.randomseed(seed)
    local failures = 0
    for i = 1, 300 do
      local doc = json.decode(texts[(i - 1) % #texts + 1])
      for _ = 1, math.random(6) do mutate(doc) end
      local text = json.encode(doc)
      local ok, r, err = pcall(parse, text)
      assert(ok, "raised on mutation " .. i .. ": " .. tostring(r))
      check_shape(r, err)
      if not r then failures = failures + 1 end
    end
    assert.truthy(failures > 0 and failures < 300, "mutations produce both errors and reports: " .. failures)
  end)

  it("never raises on truncations of a fixture", function()
    local text = texts[1]
    for cut = 0, #text, 7 do
      local ok, r, err = pcall(parse, text:sub(1, cut))
      assert(ok, "raised at " .. cut)
      check_shape(r, err)
    end
  end)
end)
