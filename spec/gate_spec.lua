-- `empirical gate` as a CI job runs it: bin/empirical in a subprocess
-- against the fake, judged by its exit code, its output, its files and the
-- fake's log.
local helper = require("helper")
local cjson = require("cjson")
local empirical = require("empirical")

-- What the core and the fake offer today: the parts of the gate that need
-- cancel, signals or Playwright reports are checked once those have landed.
local probe = assert(empirical.new { token = "t", base_url = "http://127.0.0.1:9" })
-- The rewritten fake (a directory of modules) serves cancel, list and reports.
local FAKE_V2 = package.searchpath("empirical.fake.api", package.path) ~= nil
local HAS_CANCEL = probe.cancel ~= nil and FAKE_V2
local HAS_SIGNALS = empirical.catch_signals ~= nil
local HAS_REPORTS = probe.report ~= nil and empirical.parse_report ~= nil and FAKE_V2
probe:close()
local it_cancel = HAS_CANCEL and it or pending
local it_signals = (HAS_SIGNALS and HAS_CANCEL) and it or pending
local it_reports = HAS_REPORTS and it or pending

local read, children, junit_suites = helper.take_file, helper.children, helper.junit_suites

local function no_traceback(...)
  for _, text in ipairs { ... } do
    assert.is_nil(text:find("stack traceback", 1, true), text)
    assert.is_nil(text:find("%.lua:%d+:"), text)
  end
end

describe("empirical gate", function()
  local fake

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function gate(args, env)
    local argv = { helper.LUA, "bin/empirical", "gate" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    if not table.concat(args, " "):find("--interval", 1, true) then argv[#argv + 1], argv[#argv + 2] = "--interval", "0.05" end
    local vars = { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, CI = "true",
                   EMPIRICALRUN_PROJECT = false, GITHUB_ACTIONS = false, GITHUB_STEP_SUMMARY = false }
    for k, v in pairs(env or {}) do vars[k] = v end
    local code, out, err = helper.run(argv, vars)
    no_traceback(out, err)
    return code, out, err
  end

  local function requests(method, pattern)
    local out = {}
    for _, r in ipairs(fake:log()) do
      if r.method == method and (not pattern or r.path:match(pattern)) then out[#out + 1] = r end
    end
    return out
  end

  describe("exits 0", function()
    it("when the run passes, printing its link as soon as it is triggered", function()
      fake:scenario { tests = { { name = "a", outcome = "passed" }, { name = "b", outcome = "flaky" } } }
      local code, out, err = gate({ "--environment", "staging" }, { EMPIRICALRUN_PROJECT = "acme" })
      assert.equal(0, code, err)
      assert.matches("^staging: triggered run 1  https://dash%.empirical%.run/acme/test%-runs/1\n", err)
      assert.matches("staging: run 1 ended: PASSED (1 passed, 0 failed, 1 flaky, 0 skipped of 2)", err, 1, true)
      assert.matches("release gate: passed (exit 0)", out, 1, true)
      assert.equal("acme", requests("PUT")[1].headers["x-project-slug"])
    end)

    it("when a re-run of the failed tests passes, after re-running only those, once", function()
      local code, out, err = gate { "--environment", "staging", "--rerun-failed", "2" }
      assert.equal(0, code, err)
      assert.matches("re-running the failed tests of run 1 (re-run 1 of 2) as run 2", err, 1, true)
      -- The closing line counts each test once: the one the re-run fixed as flaky.
      assert.matches("staging: passed (exit 0): 3 passed, 0 failed, 2 flaky, 1 skipped of 6, run 1 then re-run 2",
                     out, 1, true)
      assert.equal(1, #requests("PUT"))
      local posts = requests("POST", "/re%-run$")
      assert.equal(1, #posts)
      assert.same({ only_failed = true }, cjson.decode(posts[1].body))
    end)

    it("on a run of zero tests with --allow-empty", function()
      fake:scenario { tests = {} }
      assert.equal(0, (gate { "--environment", "staging", "--allow-empty" }))
    end)
  end)

  describe("exits 1", function()
    it("keeping on polling through a run of transient failures", function()
      -- each poll is 4 attempts (the client's retries): 6 polls in a row fail, more than wait's old default of 5
      fake:script { method = "GET", status = 503, body = "", times = 24 }
      local code, _, err = gate { "--environment", "staging" }
      assert.equal(1, code, err)
      assert.matches("poll failed (6 in a row), polling on: ", err, 1, true)
    end)

    it("without starting a re-run the deadline leaves no time to follow", function()
      local code, _, err = gate { "--environment", "staging", "--rerun-failed", "1", "--timeout", "2s",
                                  "--interval", "1" }
      assert.equal(1, code, err)
      assert.matches("no re%-run: %d s left before the deadline, a re%-run needs 3 s to follow", err)
      assert.equal(0, #requests("POST"))
    end)

    it("when tests failed and no re-run was asked for, naming them", function()
      local code, _, err = gate { "--environment", "staging" }
      assert.equal(1, code)
      assert.matches("failed:\n    tests/checkout.spec.ts:6 › checkout › pays with card [chromium]\n" ..
                     "        Error: expect(received).toBe(expected)", err, 1, true)
      assert.equal(0, #requests("POST"))
    end)

    it("when the re-runs do not fix them, after exactly N re-runs", function()
      fake:scenario { tests = { { name = "broken", outcome = "failed" } } }
      local code, out = gate { "--environment", "staging", "--rerun-failed", "2" }
      assert.equal(1, code)
      assert.equal(2, #requests("POST", "/re%-run$"))
      assert.matches("release gate: failed (exit 1)", out, 1, true)
    end)

    it("on a run of zero tests, saying why", function()
      fake:scenario { tests = {} }
      local code, out, err = gate { "--environment", "staging" }
      assert.equal(1, code)
      assert.matches("the run had no tests", err, 1, true)
      assert.matches("staging: empty (exit 1)", out, 1, true)
    end)
  end)

  describe("exits 2", function()
    it("when the run ends in error", function()
      fake:scenario { end_state = "error" }
      local code, _, err = gate { "--environment", "staging" }
      assert.equal(2, code)
      assert.matches("run 1 error: ERROR", err, 1, true)
    end)

    it("when the run is cancelled, without re-running it", function()
      fake:scenario { end_state = "cancelled" }
      assert.equal(2, (gate { "--environment", "staging", "--rerun-failed", "1" }))
      assert.equal(0, #requests("POST", "/re%-run$"))
    end)

    it("when the deadline passes, writing a JUnit error testcase, never an empty green report", function()
      fake:scenario { pending_seconds = 1e6 }
      local report = os.tmpname()
      local code, out = gate { "--environment", "staging", "--timeout", "1s", "--junit", report, "--on-timeout", "leave" }
      assert.equal(2, code)
      assert.matches("staging: timeout (exit 2)", out, 1, true)
      local suite = junit_suites(report)[1]
      assert.equal("1", suite.attr.errors)
      assert.equal(1, #children(children(suite, "testcase")[1], "error"))
      assert.equal(0, #requests("POST"))   -- --on-timeout leave
    end)

    it_cancel("when the deadline passes, cancelling the run it started", function()
      fake:scenario { pending_seconds = 1e6 }
      local code, _, err = gate { "--environment", "staging", "--timeout", "1s" }
      assert.equal(2, code)
      assert.equal(1, #requests("POST", "^/api/test%-runs/1/cancel$"))
      assert.matches("cancel run 1: cancelled", err, 1, true)
    end)

    it("when the API answers 503 to every poll until the deadline, without a traceback", function()
      fake:script { method = "GET", status = 503, body = "", times = 100000 }
      local code, _, err = gate { "--environment", "staging", "--timeout", "2s", "--on-timeout", "leave" }
      assert.equal(2, code, err)
      assert.matches("503", err, 1, true)
    end)

    it("with --max-poll-failures N, after N failed polls in a row, before the deadline", function()
      fake:script { method = "GET", status = 503, body = "", times = 100000 }
      local code, _, err = gate { "--environment", "staging", "--timeout", "1m", "--max-poll-failures", "2",
                                  "--on-timeout", "leave" }
      assert.equal(2, code, err)
      assert.matches("staging: http 503: 3 polls in a row failed (--max-poll-failures 2); the last: GET /api/test-runs/1", err, 1, true)
      assert.is_nil(err:find("max_poll_failures", 1, true), err)
    end)

    it("when the trigger gets a 5xx: sent once, saying the run may exist", function()
      fake:script { method = "PUT", status = 503, body = "", times = 5 }
      local code, _, err = gate { "--environment", "staging", "--rerun-failed", "1" }
      assert.equal(2, code)
      assert.matches("may have been created", err, 1, true)
      assert.equal(1, #fake:log())
    end)
  end)

  describe("exits 3", function()
    it("without EMPIRICALRUN_KEY, saying so, sending nothing", function()
      local code, _, err = gate({ "--environment", "staging" }, { EMPIRICALRUN_KEY = false })
      assert.equal(3, code)
      assert.matches("EMPIRICALRUN_KEY", err, 1, true)
      assert.equal(0, #fake:log())
    end)

    it("on a wrong key, without printing it", function()
      local code, out, err = gate({ "--environment", "staging" }, { EMPIRICALRUN_KEY = "sk-wrong-key-1234" })
      assert.equal(3, code)
      assert.matches("401", err, 1, true)
      assert.is_nil((out .. err):find("sk-wrong-key-1234", 1, true))
    end)

    local invalid = {
      { "shards of zero", { "--shards", "0" }, "--shards: '0' is not a whole number from 1" },
      { "an env override with a bad name", { "--env", "1BAD=x" }, "--env 1BAD=x: " },
      { "a test branch with build flags", { "--test-branch", "feature", "--commit", "abc" },
        "--test-branch cannot be used together with --commit" },
    }
    for _, case in ipairs(invalid) do
      it("on " .. case[1] .. ", naming it and sending nothing", function()
        local args = { "--environment", "staging" }
        for _, a in ipairs(case[2]) do args[#args + 1] = a end
        local code, _, err = gate(args)
        assert.equal(3, code, err)
        assert.matches(case[3], err, 1, true)
        assert.equal(0, #fake:log())
      end)
    end

    it("on an environment the API does not know, with its message", function()
      local code, _, err = gate { "--environment", "moon" }
      assert.equal(3, code)
      assert.matches("Unknown environment 'moon'", err, 1, true)
    end)
  end)

  describe("never prints a traceback", function()
    local function body(test_run, items)
      local run = { id = 1, state = "queued" }
      for k, v in pairs(test_run) do run[k] = v end
      return '{"data":{"test_run":{"project":{"id":1,"name":"p","repo_name":"r"},"testRun":' ..
             cjson.encode(run):gsub('"NULL"', "null") .. ',"flattenedSummaryDetails":' .. (items or "[]") .. "}}}"
    end
    local odd = {
      { "null counts while queued", body { total_count = "NULL", failed_count = "NULL", success_count = "NULL" } },
      { "missing counts", body { state = "started" } },
      { "null and odd items", body({ state = "started", total_count = 3 }, '[null, {"name": null}, 7, {"status": 1}]') },
      { "an unknown state", body { state = "warming_up", total_count = 6 } },
      { "fractional and huge counts", body { state = "started", total_count = 6.5, success_count = 1e300,
                                             failed_count = 0.25, duration = -3 } },
    }
    for _, counts in ipairs { "null", "missing" } do
      it("on counts " .. counts .. " while the run is queued and started (the fake's running_counts)", function()
        fake:scenario { running_counts = counts }
        local code, _, err = gate { "--environment", "staging", "--progress", "tty" }
        assert.equal(1, code, err)
        assert.matches("staging: run 1 %a+, %?/%?", err)
      end)
    end

    for _, variant in ipairs { 404, 403, "none", "malformed" } do
      it_reports(("when the report %s: a line, the verdict unchanged"):format(
                   type(variant) == "number" and ("answers " .. variant) or ("is " .. variant)), function()
        fake:scenario { report = variant }
        local report = os.tmpname()
        local code, _, err = gate { "--environment", "staging", "--junit", report, "--json" }
        assert.equal(1, code, err)
        assert.matches("staging: run 1: the Playwright report could not be fetched: ", err, 1, true)
        assert.matches("failed:\n    checkout > pays with card", err, 1, true)   -- the run's own names
        assert.equal("1", junit_suites(report)[1].attr.failures)
      end)
    end

    for _, case in ipairs(odd) do
      it("on " .. case[1] .. ", and goes on to the verdict", function()
        fake:script { method = "GET", status = 200, body = case[2], content_type = "application/json", times = 3 }
        local code, _, err = gate { "--environment", "staging", "--progress", "tty" }
        assert.equal(1, code, err)
        assert.matches("staging: run 1 ended: FAILED", err, 1, true)
      end)
    end
  end)

  describe("odd answers the schema allows, to the end", function()
    local function ended(test_run, items)
      local run = { id = 101, state = "ended", summary_url = cjson.null }
      for k, v in pairs(test_run) do run[k] = v end
      return cjson.encode { data = { test_run = { project = { id = 1 }, testRun = run,
                                                  flattenedSummaryDetails = items or {} } } }
    end
    local function serve(body)
      fake:script { method = "GET", path = "/api/test-runs/101", status = 200, body = body,
                    content_type = "application/json", times = 5 }
    end

    it("a run that ended saying nothing of its tests is no verdict (2), never a pass", function()
      serve(ended {})
      local code, _, err = gate { "--run", "101" }
      assert.equal(2, code, err)
      assert.matches("ended without saying what its tests did", err, 1, true)
    end)

    it("a run that says nothing of its tests is judged by its report's counts, failures included", function()
      local judge = require("empirical.gate").judge
      local silent = { testRun = { id = 101, state = "ended" }, flattenedSummaryDetails = {} }
      local function stats(e, u, f, s) return { stats = { expected = e, unexpected = u, flaky = f, skipped = s } } end
      assert.equal("uncounted", judge(silent, false, nil))
      assert.equal("failed", judge(silent, false, stats(3, 1, 0, 0)))
      assert.equal("passed", judge(silent, false, stats(3, 0, 1, 1)))
      assert.equal("empty", judge(silent, false, stats(0, 0, 0, 0)))
      -- the run's own count wins over the report's
      local counted = { testRun = { id = 101, state = "ended", total_count = 2, failed_count = 0 },
                        flattenedSummaryDetails = {} }
      assert.equal("passed", judge(counted, false, stats(1, 1, 0, 0)))
    end)

    it("a failed run that names no test still writes a red JUnit report", function()
      serve(ended({ failed_count = 2, total_count = 5, success_count = 3 }))
      local report = os.tmpname()
      local code, _, err = gate { "--run", "101", "--junit", report }
      assert.equal(1, code, err)
      local suite = junit_suites(report)[1]
      assert.equal("1", suite.attr.failures)
      local failure = children(children(suite, "testcase")[1], "failure")[1]
      assert.matches("2 tests failed", failure.attr.message, 1, true)
    end)

    it("fractional counts and ids show as they are, through get, list, wait and gate", function()
      serve(ended { total_count = 6.5, success_count = 6.5, failed_count = 0, skipped_count = 0, flaky_count = 0 })
      fake:script { method = "GET", path = "/api/test-runs", status = 200, content_type = "application/json",
                    body = cjson.encode { data = { test_runs = { items = { { id = 2.5, total_count = 0.5 } } } } } }
      for _, args in ipairs { { "get", "101" }, { "list" }, { "wait", "101" }, { "gate", "--run", "101" } } do
        local argv = { helper.LUA, "bin/empirical" }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local code, out, err = helper.run(argv, { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url,
                                                  CI = "true", EMPIRICALRUN_PROJECT = false })
        assert.is_true(code == 0 or code == 1, table.concat(args, " ") .. ": " .. err)
        no_traceback(out, err)
        assert.is_nil((out .. err):find("unexpected error", 1, true), err)
      end
    end)
  end)

  describe("reports", function()
    it("as JSON: each run's own id with its own counts, re-runs with theirs, lists as arrays", function()
      local code, out, err = gate { "--environment", "staging", "--rerun-failed", "1", "--json" }
      assert.equal(0, code, err)
      local result = cjson.decode(out)
      assert.equal("passed", result.verdict)
      local attempts = result.runs[1].attempts
      assert.same({ 1, "run", 1 }, { attempts[1].id, attempts[1].kind, attempts[1].counts.failed })
      assert.same({ 2, "rerun", 1, 0 }, { attempts[2].id, attempts[2].kind, attempts[2].counts.total,
                                          attempts[2].counts.failed })
      assert.same({ total = 6, passed = 3, failed = 1, flaky = 1, skipped = 1 }, attempts[1].counts)
      assert.truthy(out:find('"failed_tests":[]', 1, true))
      assert.truthy(out:find('"cancelled":[]', 1, true))
    end)

    it("as JUnit: the re-run deciding the tests it ran, the run links in properties", function()
      local report = os.tmpname()
      assert.equal(0, (gate({ "--environment", "staging", "--rerun-failed", "1", "--junit", report },
                            { EMPIRICALRUN_PROJECT = "acme" })))
      local suite = junit_suites(report)[1]
      assert.same({ "6", "0", "1" }, { suite.attr.tests, suite.attr.failures, suite.attr.skipped })
      local props = {}
      for _, p in ipairs(children(children(suite, "properties")[1], "property")) do props[p.attr.name] = p.attr.value end
      assert.equal("https://dash.empirical.run/acme/test-runs/1", props.run_url)
      assert.equal("2", props.rerun_1_id)
    end)

    it_reports("each failed test with its file, line and message, in the log, JUnit, step summary and annotations",
               function()
      fake:scenario { tests = { { name = "pays with card", outcome = "failed", file = "checkout.spec.ts", line = 42,
                                  message = "Error: expect(received).toBe(expected)", describe = { "checkout" },
                                  project = "chromium" } } }
      local report, summary = os.tmpname(), os.tmpname()
      local f = assert(io.open(summary, "w"))
      f:write("earlier step\n")
      f:close()
      local code, out, err = gate({ "--environment", "staging", "--junit", report },
                                  { GITHUB_STEP_SUMMARY = summary, GITHUB_ACTIONS = "true" })
      assert.equal(1, code)
      assert.matches("checkout.spec.ts:42 › checkout › pays with card [chromium]\n" ..
                     "        Error: expect(received).toBe(expected)", err, 1, true)
      local case = children(junit_suites(report)[1], "testcase")[1]
      assert.same({ "checkout.spec.ts", "42" }, { case.attr.file, case.attr.line })
      assert.equal("Error: expect(received).toBe(expected)", children(case, "failure")[1].attr.message)
      local md = read(summary)
      assert.matches("^earlier step\n## Empirical release gate: failed %(exit 1%)", md)
      assert.truthy(md:find("checkout.spec.ts:42", 1, true))
      assert.truthy(out:find("::error file=checkout.spec.ts,line=42,title=staging%3A checkout › pays with card " ..
                             "[chromium]::Error%3A expect", 1, true) or
                    out:find("::error file=checkout.spec.ts,line=42,title=", 1, true), out)
    end)

    it_reports("as JUnit: every test with the file, line and project its report gives, passing and skipped ones too",
               function()
      fake:scenario { tests = {
        { name = "signs in", describe = { "auth" }, outcome = "passed", file = "tests/auth.spec.ts", line = 12 },
        { name = "pays with card", describe = { "checkout" }, outcome = "failed", file = "tests/checkout.spec.ts",
          line = 40, fixed_on_rerun = true },
        { name = "pays with card", describe = { "checkout" }, outcome = "passed", file = "tests/checkout.spec.ts",
          line = 40, project = "firefox" },
        { name = "finds by name", describe = { "search" }, outcome = "flaky", file = "tests/search.spec.ts", line = 8 },
        { name = "uploads an avatar", outcome = "skipped", file = "tests/profile.spec.ts", line = 3 },
      } }
      local function cases_of(args)
        local report = os.tmpname()
        local argv = { "--environment", "staging", "--junit", report }
        for _, a in ipairs(args) do argv[#argv + 1] = a end
        local code, _, err = gate(argv)
        local suite = junit_suites(report)[1]
        local out = {}
        for _, case in ipairs(children(suite, "testcase")) do
          local shown = {}
          for _, c in ipairs(case) do if type(c) == "table" then shown[#shown + 1] = c.tag end end
          out[#out + 1] = { case.attr.classname, case.attr.name, case.attr.file, case.attr.line, table.concat(shown, ",") }
        end
        return code, out, { suite.attr.tests, suite.attr.failures, suite.attr.skipped }, err
      end
      local identities = {
        { "tests/auth.spec.ts", "auth › signs in [chromium]", "tests/auth.spec.ts", "12" },
        { "tests/checkout.spec.ts", "checkout › pays with card [chromium]", "tests/checkout.spec.ts", "40" },
        { "tests/checkout.spec.ts", "checkout › pays with card [firefox]", "tests/checkout.spec.ts", "40" },
        { "tests/search.spec.ts", "search › finds by name [chromium]", "tests/search.spec.ts", "8" },
        { "tests/profile.spec.ts", "uploads an avatar [chromium]", "tests/profile.spec.ts", "3" },
      }
      local function with(shown)
        local out = {}
        for i, id in ipairs(identities) do out[i] = { id[1], id[2], id[3], id[4], shown[i] } end
        return out
      end
      -- failed, then fixed by a re-run of the failed project only: the same testcases, the firefox one untouched
      local code, cases, counts, err = cases_of {}
      assert.equal(1, code, err)
      assert.same(with { "", "failure", "", "system-out", "skipped" }, cases)
      assert.same({ "5", "1", "1" }, counts)
      code, cases, counts, err = cases_of { "--rerun-failed", "1" }
      assert.equal(0, code, err)
      assert.same(with { "", "system-out", "", "system-out", "skipped" }, cases)
      assert.same({ "5", "0", "1" }, counts)
      -- a run that passes outright (its report fetched though nothing failed) names its tests the same way
      fake:scenario { tests = {
        { name = "signs in", describe = { "auth" }, outcome = "passed", file = "tests/auth.spec.ts", line = 12 },
        { name = "uploads an avatar", outcome = "skipped", file = "tests/profile.spec.ts", line = 3 },
      } }
      code, cases, counts, err = cases_of {}
      assert.equal(0, code, err)
      assert.same({ { identities[1][1], identities[1][2], identities[1][3], identities[1][4], "" },
                    { identities[5][1], identities[5][2], identities[5][3], identities[5][4], "skipped" } }, cases)
      assert.same({ "2", "0", "1" }, counts)
    end)

    it("a GitHub step summary and annotations when their variables are set", function()
      local summary = os.tmpname()
      local code, out = gate({ "--environment", "staging" }, { GITHUB_STEP_SUMMARY = summary, GITHUB_ACTIONS = "true" })
      assert.equal(1, code)
      local md = read(summary)
      assert.matches("## Empirical release gate: failed (exit 1)", md, 1, true)
      assert.matches("| staging | ❌ failed | 3 | 1 | 1 | 1 | 6 | run 1 |", md, 1, true)
      assert.matches("- tests/checkout.spec.ts:6 › checkout › pays with card \\[chromium\\]: `Error: expect(", md, 1, true)
      assert.matches("\n::error file=tests/checkout.spec.ts,line=6,title=staging%3A checkout › pays with card " ..
                     "[chromium]::Error: expect(received).toBe(expected)", "\n" .. out, 1, true)
    end)

    it("progress in CI as one plain line per change", function()
      local _, _, err = gate { "--environment", "staging" }
      assert.is_nil(err:find("\r", 1, true))
      local previous
      for line in err:gmatch("[^\n]+") do
        local progress = line:match("^(staging: run 1 %a+, [%d?]+/[%d?]+ done, [%d?]+ failed)")
        if progress then
          assert.are_not.equal(previous, progress)
          previous = progress
        end
      end
      assert.equal("staging: run 1 ended, 6/6 done, 1 failed", previous)
    end)

    it("progress on a terminal as live lines that fit its width", function()
      local _, _, err = gate({ "--environment", "staging", "--environment", "production", "--progress", "tty" },
                             { COLUMNS = "40" })
      assert.matches("\r\27[K", err, 1, true)
      for line in err:gsub("\27%[%d*[AJK]", ""):gmatch("[^\r\n]+") do
        if line:match("done,") then assert.is_true(#line <= 39, line) end
      end
    end)
  end)

  describe("with several environments", function()
    it("triggers every run before polling any, re-runs each one's failures, exits 0", function()
      local report = os.tmpname()
      local code, out = gate { "--environment", "staging", "--environment", "production", "--rerun-failed", "1",
                               "--json", "--junit", report }
      assert.equal(0, code, out)
      local log = fake:log()
      assert.same({ "PUT", "PUT" }, { log[1].method, log[2].method })
      local result = cjson.decode(out)
      assert.same({ "staging", "production" }, { result.runs[1].environment, result.runs[2].environment })
      assert.same({ "passed", "passed" }, { result.runs[1].outcome, result.runs[2].outcome })
      assert.equal(2, #junit_suites(report))
    end)

    it("exits with the worst outcome: a cancelled --run beside a passing environment is 2", function()
      local client = helper.client(fake)
      local cancelled = assert(client:trigger { environment = "production" }).id
      client:close()
      fake:set_state(cancelled, "cancelled")
      local code, out = gate { "--environment", "staging", "--run", ("%d"):format(cancelled), "--rerun-failed", "1" }
      assert.equal(2, code, out)
      assert.matches("staging: passed (exit 0)", out, 1, true)
      assert.matches(("run %d: cancelled (exit 2)"):format(cancelled), out, 1, true)
    end)

    it_cancel("fails fast on a refused environment, cancelling the run already triggered", function()
      fake:scenario { pending_seconds = 1e6 }
      local code, out, err = gate { "--environment", "staging", "--environment", "moon" }
      assert.equal(3, code, err)
      assert.matches("Unknown environment 'moon'", err, 1, true)
      assert.matches("staging: aborted (exit 2)", out, 1, true)
      assert.equal(1, #requests("POST", "^/api/test%-runs/1/cancel$"))
      assert.equal(0, #requests("GET"))
    end)

    it("with --on-reject wait, judges the others too and exits 3", function()
      local code, out = gate { "--environment", "staging", "--environment", "moon", "--on-reject", "wait" }
      assert.equal(3, code)
      assert.matches("staging: failed (exit 1)", out, 1, true)
      assert.matches("moon: rejected (exit 3)", out, 1, true)
    end)
  end)

  describe("on a signal", function()
    -- Start the gate in the background; returns its pid and a function that
    -- waits for it and returns code, stdout, stderr.
    local function start(args, env)
      local dir = os.tmpname()
      local vars = { "EMPIRICALRUN_KEY=" .. fake.token, "EMPIRICALRUN_API_URL=" .. fake.url, "CI=true",
                     "LUA_PATH=" .. helper.shell_quote(package.path), "LUA_CPATH=" .. helper.shell_quote(package.cpath) }
      for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. helper.shell_quote(v) end
      local quoted = {}
      for i, a in ipairs(args) do quoted[i] = helper.shell_quote(a) end
      local command = ("set -m; env %s %s bin/empirical gate --interval 0.05 %s >%s.out 2>%s.err & echo $!; wait $!; " ..
                       "echo $? >%s.code"):format(table.concat(vars, " "), helper.LUA, table.concat(quoted, " "),
                                                 dir, dir, dir)
      local pipe = assert(io.popen("bash -c " .. helper.shell_quote(command) .. " 2>/dev/null"))   -- no job notices
      local pid = pipe:read("*l")
      return pid, function()
        pipe:close()
        return tonumber(read(dir .. ".code")), read(dir .. ".out"), read(dir .. ".err")
      end
    end

    local function until_(what, check)
      for _ = 1, 400 do
        if check() then return end
        os.execute("sleep 0.05")
      end
      error("gave up waiting for " .. what)
    end

    for _, case in ipairs { { "INT", 130, "SIGINT" }, { "TERM", 143, "SIGTERM" } } do
      it_signals(("SIG%s: cancels the run it started within 2 s, writes what it knows, exits %d")
                   :format(case[1], case[2]), function()
        fake:scenario { pending_seconds = 1e6 }
        local junit = os.tmpname()
        local pid, finish = start { "--environment", "staging", "--json", "--junit", junit }
        until_("the trigger", function() return #requests("GET") > 0 end)
        local sent = empirical.now()
        os.execute("kill -" .. case[1] .. " " .. pid)
        until_("the cancel", function() return #requests("POST", "/cancel$") > 0 end)
        assert.is_true(empirical.now() - sent < 2)
        local code, out, err = finish()
        assert.equal(case[2], code, err)
        no_traceback(out, err)
        local result = cjson.decode(out)
        assert.equal(case[3], result.signal)
        assert.same({ id = 1, status = "cancelled" }, result.cancelled[1])
        assert.matches("interrupted by " .. case[3] .. "; cancelled: 1 (cancelled)", err, 1, true)
        assert.equal("1", junit_suites(junit)[1].attr.errors)
      end)
    end

    it_signals("with two environments, writes what it knows of each", function()
      fake:scenario { pending_seconds = 1e6 }
      local pid, finish = start { "--environment", "staging", "--environment", "production", "--json" }
      until_("both polls", function() return #requests("GET") >= 2 end)
      os.execute("kill -TERM " .. pid)
      local code, out, err = finish()
      assert.equal(143, code, err)
      local result = cjson.decode(out)
      for _, run in ipairs(result.runs) do
        assert.equal("pending", run.attempts[1].state, run.label)
        assert.equal(6, run.attempts[1].counts.total, run.label)
      end
      assert.equal(2, #result.cancelled)
    end)

    it_signals("a second SIGINT exits at once, without waiting for the cancels to be answered", function()
      fake:scenario { pending_seconds = 1e6 }
      fake:script { method = "POST", path = "/api/test-runs/1/cancel", delay = 30 }
      local pid, finish = start { "--environment", "staging" }
      until_("a poll", function() return #requests("GET") > 0 end)
      os.execute("kill -INT " .. pid)
      until_("the cancel", function() return #requests("POST", "/cancel$") > 0 end)
      os.execute("kill -INT " .. pid)
      local code, _, err = finish()
      assert.equal(130, code, err)
      assert.matches("second signal: not waiting for the cancels to be confirmed", err, 1, true)
    end)

    it_signals("leaves a run given with --run running", function()
      fake:scenario { pending_seconds = 1e6 }
      local client = helper.client(fake)
      local id = assert(client:trigger { environment = "production" }).id
      client:close()
      local pid, finish = start { "--run", ("%d"):format(id) }
      until_("a poll", function() return #requests("GET") > 0 end)
      os.execute("kill -INT " .. pid)
      assert.equal(130, (finish()))
      assert.equal(0, #requests("POST", "/cancel$"))
    end)
  end)

  describe("examples/release.lua, the library in a script,", function()
    it("triggers, waits, re-runs the failed tests and exits 0", function()
      local code, out = helper.run({ helper.LUA, "examples/release.lua", "staging" },
                                   { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, POLL_INTERVAL = "0.05" })
      assert.equal(0, code, out)
      assert.matches("run 2 ended: PASSED", out, 1, true)
    end)
  end)
end)
