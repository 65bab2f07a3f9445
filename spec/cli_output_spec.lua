-- What a user of the `empirical` command reads: the gate's lines, JUnit,
-- the GitHub step summary, help, the list table and the terminal's live
-- progress, through bin/empirical against the fake where it is about the
-- command, and the renderers' own edge cases.
local helper = require("helper")
local cjson = require("cjson")
local empirical = require("empirical")
local commands = require("empirical.cli.commands")
local render = require("empirical.cli.render")
local progress = require("empirical.cli.progress")
local report = require("empirical.report")

local read, children, junit_suites = helper.take_file, helper.children, helper.junit_suites


-- What a terminal shows after `bytes`: the lines of the screen (no
-- scrolling), interpreting the cursor moves and erases progress uses.
local function screen(bytes)
  local lines, row, col, i = { "" }, 1, 1, 1
  while i <= #bytes do
    local count, command, after = bytes:match("^\27%[(%d*)(%a)()", i)
    if command then
      local n = tonumber(count) or 1
      if command == "A" then row = math.max(1, row - n)
      elseif command == "J" then
        lines[row] = lines[row]:sub(1, col - 1)
        for r = #lines, row + 1, -1 do lines[r] = nil end
      elseif command == "K" then lines[row] = lines[row]:sub(1, col - 1) end
      i = after
    else
      local c = bytes:sub(i, i)
      if c == "\r" then col = 1
      elseif c == "\n" then row, col = row + 1, 1 lines[row] = lines[row] or ""
      else
        local line = lines[row]
        if #line < col - 1 then line = line .. (" "):rep(col - 1 - #line) end
        lines[row] = line:sub(1, col - 1) .. c .. line:sub(col + 1)
        col = col + 1
      end
      i = i + 1
    end
  end
  if lines[#lines] == "" then lines[#lines] = nil end
  return lines
end

describe("the command's output", function()
  local fake

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function run(argv, env) return helper.run_command(fake, argv, env, { EMPIRICALRUN_PROJECT = "acme" }) end

  -- The gate with a JUnit file and a step summary: code, stdout, stderr, the
  -- summary's text, the JUnit suites.
  local function gate(args, env)
    local junit, summary = os.tmpname(), os.tmpname()
    local argv = { "gate", "--interval", "0.05", "--junit", junit }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local vars = { GITHUB_STEP_SUMMARY = summary }
    for k, v in pairs(env or {}) do vars[k] = v end
    local code, out, err = run(argv, vars)
    return code, out, err, read(summary), junit_suites(junit)
  end

  describe("a run that ended in error", function()
    it("says the run's error code in its line, the step summary and JUnit's <error>", function()
      fake:scenario { end_state = "error", error_code = "merge_conflict" }
      local code, out, err, md, suites = gate { "--environment", "staging" }
      assert.equal(2, code, err)
      assert.matches("staging: run 1 error (merge_conflict): ERROR (3 passed, 1 failed, 1 flaky, 1 skipped of 6)",
                     err, 1, true)
      assert.matches("staging: error (merge_conflict) (exit 2): 3 passed, 1 failed, 1 flaky, 1 skipped of 6, run 1",
                     out, 1, true)
      assert.truthy(md:find("| staging | ⚠️ error (merge\\_conflict) | 3 | 1 | 1 | 1 | 6 |", 1, true), md)
      local errors = {}
      for _, case in ipairs(children(suites[1], "testcase")) do
        for _, e in ipairs(children(case, "error")) do errors[#errors + 1] = e.attr end
      end
      assert.equal(1, #errors)
      assert.equal("run 1 ended in state error (merge_conflict)", errors[1].message)
      assert.equal("error", errors[1].type)
    end)

    it("and in --json, as the attempt's error_code", function()
      fake:scenario { end_state = "error", error_code = "dispatch_failed" }
      local code, out = run { "gate", "--environment", "staging", "--interval", "0.05", "--json" }
      assert.equal(2, code)
      assert.equal("dispatch_failed", cjson.decode(out).runs[1].attempts[1].error_code)
    end)

    it("and in wait's line and --json", function()
      fake:scenario { end_state = "error", error_code = "merge_conflict" }
      local id = assert(helper.client(fake):trigger { environment = "staging" }).id
      local code, out = run { "wait", tostring(id), "--interval", "0.05" }
      assert.equal(2, code)
      assert.matches(("^run %d: error %%(merge_conflict%%), "):format(id), out)
      code, out = run { "wait", tostring(id), "--interval", "0.05", "--json" }
      assert.equal(2, code)
      assert.equal("merge_conflict", cjson.decode(out)[1].error_code)
    end)

    it("without an error code, says nothing of one", function()
      fake:scenario { end_state = "error" }
      local code, out, err, md, suites = gate { "--environment", "staging", "--json" }
      assert.equal(2, code, err)
      assert.matches("staging: run 1 error: ERROR (", err, 1, true)
      assert.truthy(md:find("| staging | ⚠️ error | ", 1, true), md)
      assert.is_nil(cjson.decode(out).runs[1].attempts[1].error_code)
      local case = children(suites[1], "testcase")
      assert.equal("run 1 ended in state error", children(case[#case], "error")[1].attr.message)
    end)

    it("reads the code only when it is a string, and never raises on an odd one", function()
      local function detail(code)
        return { testRun = { id = 7, state = "error", error_code = code, total_count = 1, success_count = 0,
                             failed_count = 0, skipped_count = 0, flaky_count = 0 } }
      end
      for _, odd in ipairs { 42, true, {}, "", "\0\1\n" } do
        local d = detail(odd)
        assert.is_nil(report.error_code(d))
        assert.equal("error", report.state_text(d))
        assert.matches("^run 7 error: ERROR\n", report.summary(d))
        local text = render.attempt_text({ label = "qa" }, { id = 7, detail = d, verdict = "error" })
        assert.matches("^qa: run 7 error: ERROR %(", text)
        assert.truthy(report.junit(d):find('message="run 7 ended in state error"', 1, true))
      end
      assert.is_nil(report.error_code(nil))
      assert.is_nil(report.error_code { testRun = "odd" })
      assert.equal("?", report.state_text {})
      -- controls dropped, and a long one cut to 200 bytes, whole characters only
      assert.equal("merge_conflict", report.error_code(detail("merge_conflict\n")))
      assert.equal("merge_[31mconflict", report.error_code(detail("merge_\27[31mconflict")))
      local long = report.error_code(detail(("a"):rep(199) .. "é" .. ("b"):rep(50)))
      assert.equal(("a"):rep(199), long)
      assert.matches("^run 7 error %(merge_conflict%): ERROR\n", report.summary(detail("merge_conflict")))
    end)
  end)

  describe("after re-runs", function()
    it("the step summary counts each environment as judged: every test once, one a re-run fixed as flaky",
       function()
      -- six tests: one fails and a re-run fixes it, one flaky, one skipped
      local code, out, err, md, suites = gate { "--environment", "staging", "--rerun-failed", "1", "--json" }
      assert.equal(0, code, err)
      assert.truthy(md:find("| staging | ✅ passed | 3 | 0 | 2 | 1 | 6 | ", 1, true), md)
      -- as JUnit counts its testcases, and --json the lane
      assert.same({ "6", "0", "1" }, { suites[1].attr.tests, suites[1].attr.failures, suites[1].attr.skipped })
      assert.same({ total = 6, passed = 3, failed = 0, flaky = 2, skipped = 1 }, cjson.decode(out).runs[1].counts)
      -- the flaky ones are listed, the one the re-run fixed saying so
      local flaky = md:match("%*%*staging%*%*: flaky tests\n\n(.-)\n\n") or md:match("%*%*staging%*%*: flaky tests\n\n(.*)$")
      assert.truthy(flaky, md)
      assert.truthy(flaky:find("search › finds by name", 1, true), flaky)
      assert.truthy(flaky:find("checkout › pays with card \\[chromium\\]: `Error: expect(received).toBe(expected) " ..
                               "// Object.is equality` (failed in run 1, passed on a re-run)", 1, true), flaky)
    end)

    it("a test still failing after the re-runs stays failed, counted once", function()
      fake:scenario { tests = { { name = "a > passes", outcome = "passed" }, { name = "b > breaks", outcome = "failed" } } }
      local code, out, err, md = gate { "--environment", "staging", "--rerun-failed", "1", "--json" }
      assert.equal(1, code, err)
      assert.truthy(md:find("| staging | ❌ failed | 1 | 1 | 0 | 0 | 2 | ", 1, true), md)
      assert.same({ total = 2, passed = 1, failed = 1, flaky = 0, skipped = 0 }, cjson.decode(out).runs[1].counts)
    end)

    it("without a re-run, the counts are the run's own", function()
      local attempt = { detail = { testRun = { id = 1, state = "ended", total_count = 6, success_count = 4,
                                               failed_count = 1, flaky_count = 1, skipped_count = 1 } } }
      assert.same(report.counts(attempt.detail), report.judged_counts { attempt })
      assert.same({}, report.judged_counts {})
      assert.same({}, report.judged_counts { { id = 3 } })
      assert.same({}, report.judged_counts(nil))
    end)
  end)

  describe("JUnit without a Playwright report", function()
    -- What a CI's test history keys a testcase by, for each testcase.
    local function identities(suite)
      local out = {}
      for _, case in ipairs(children(suite, "testcase")) do
        if #children(case, "error") == 0 then   -- a run that ended in error also has its no-verdict case
          out[#out + 1] = table.concat({ case.attr.classname, case.attr.name, case.attr.file or "-" }, " | ")
        end
      end
      table.sort(out)
      return out
    end

    it("names each test as its report does (file as classname, › path, [project]), only without the line",
       function()
      local code, _, err, _, suites = gate { "--environment", "staging" }
      assert.equal(1, code, err)
      local with = identities(suites[1])
      assert.truthy(with[1]:find("tests/cart.spec.ts | cart › adds an item [chromium] | tests/cart.spec.ts", 1, true),
                    with[1])
      for _, scenario in ipairs { { report = 500 }, { report = 404 }, { report = "malformed" }, { report = "none" },
                                  { end_state = "error" } } do
        fake:reset()
        fake:scenario(scenario)
        local _, _, err2, _, without = gate { "--environment", "staging" }
        assert.same(with, identities(without[1]), err2)
        for _, case in ipairs(children(without[1], "testcase")) do
          assert.is_nil(case.attr.line)
          assert.is_nil(case.attr.name:find(" > ", 1, true), case.attr.name)
        end
      end
    end)

    it("counts a test failing in one project and fixed in the other once each, the re-run's report missing",
       function()
      fake:scenario { tests = {
        { name = "checkout > pays with card", outcome = "failed", project = "firefox" },
        { name = "checkout > pays with card", outcome = "failed", project = "chromium", fixed_on_rerun = true },
        { name = "cart > adds an item", outcome = "passed" },
      } }
      fake:script { method = "GET", path = "/reports/2.json", status = 500, body = "oops", times = 5 }
      local code, out, err, md, suites = gate { "--environment", "staging", "--rerun-failed", "1", "--json" }
      assert.equal(1, code, err)
      assert.matches("run 2: the Playwright report could not be fetched", err, 1, true)
      assert.same({ total = 3, passed = 1, failed = 1, flaky = 1, skipped = 0 }, cjson.decode(out).runs[1].counts)
      assert.truthy(md:find("| staging | ❌ failed | 1 | 1 | 1 | 0 | 3 | ", 1, true), md)
      local suite = suites[1]
      assert.same({ "3", "1" }, { suite.attr.tests, suite.attr.failures })
      for _, case in ipairs(children(suite, "testcase")) do
        assert.equal(case.attr.name == "checkout › pays with card [firefox]", #children(case, "failure") == 1,
                     case.attr.name)
        assert.truthy(case.attr.line, case.attr.name)   -- the run's report gave it
      end
      assert.same({ "tests/cart.spec.ts | cart › adds an item [chromium] | tests/cart.spec.ts",
                    "tests/checkout.spec.ts | checkout › pays with card [chromium] | tests/checkout.spec.ts",
                    "tests/checkout.spec.ts | checkout › pays with card [firefox] | tests/checkout.spec.ts" },
                  identities(suite))
    end)

    it("a run's report missing and its re-run's there: one identity per test", function()
      fake:script { method = "GET", path = "/reports/1.json", status = 500, body = "oops", times = 5 }
      local code, _, err, _, suites = gate { "--environment", "staging", "--rerun-failed", "1" }
      assert.equal(0, code, err)
      local ids = identities(suites[1])
      assert.equal(6, #ids)
      for _, id in ipairs(ids) do assert.matches("^tests/[%w-]+%.spec%.ts | [^>]+ %[chromium%] | tests/", id) end
      local fixed = {}
      for _, case in ipairs(children(suites[1], "testcase")) do
        if case.attr.name == "checkout › pays with card [chromium]" then fixed[#fixed + 1] = case end
      end
      assert.equal(1, #fixed)
      assert.equal("failed in run 1; then passed in re-run 2", children(fixed[1], "system-out")[1][1])
    end)
  end)

  it("the step summary keeps the backticks of a message, in a code span", function()
    fake:scenario { tests = { { name = "a > quotes", outcome = "failed", message = "Error: expected `a` got ``b`` <i>" } } }
    local code, _, err, md = gate { "--environment", "staging" }
    assert.equal(1, code, err)
    assert.truthy(md:find(": ```Error: expected `a` got ``b`` <i>```", 1, true), md)
    local publish = require("empirical.cli.publish")
    local function item(message)
      local text = publish.markdown { verdict = "failed", exit_code = 1, cancelled = {}, runs = { {
        label = "s", outcome = "failed", exit_code = 1, counts = {}, attempts = { { id = 1, kind = "run",
        failed_tests = { { title = "t", path = { "t" }, message = message } }, flaky_tests = {} } } } } }
      return text:match("\n%- t: (.-)\n")
    end
    assert.equal("`plain`", item("plain"))
    assert.equal("`` `start and end` ``", item("`start and end`"))
    assert.equal("``  a`b  ``", item(" a`b "))   -- CommonMark strips one space at each end
  end)

  it("the step summary gives each environment's note its own paragraph", function()
    fake:scenario { pending_seconds = 1e6 }
    local code, _, err, md = gate { "--environment", "staging", "--environment", "production", "--timeout", "1s",
                                    "--on-timeout", "leave" }
    assert.equal(2, code, err)
    local notes = {}
    for label in md:gmatch("\n%*%*(%a+)%*%*: still pending at the deadline") do notes[#notes + 1] = label end
    assert.same({ "staging", "production" }, notes)
    -- a blank line before each: Markdown would join adjacent lines into one paragraph
    assert.truthy(md:find("\n\n**staging**: still pending", 1, true), md)
    assert.truthy(md:find("(--timeout 1s)\n\n**production**: still pending", 1, true), md)
  end)

  it("a run of no tests is a failed testcase in JUnit, of type empty, never an error", function()
    fake:scenario { tests = {} }
    local code, out, err, _, suites = gate { "--environment", "staging" }
    assert.equal(1, code, err)
    assert.matches("staging: empty (exit 1)", out, 1, true)
    local suite = suites[1]
    assert.same({ "1", "1", "0" }, { suite.attr.tests, suite.attr.failures, suite.attr.errors })
    local case = children(suite, "testcase")[1]
    assert.equal("staging: no tests", case.attr.name)
    local failure = children(case, "failure")[1]
    assert.equal("empty", failure.attr.type)
    assert.equal("run 1 ran no tests; a run of no tests fails the gate (--allow-empty lets it pass)",
                 failure.attr.message)
  end)

  it("a run that ended without counts is an error testcase of type uncounted, saying why", function()
    local publish = require("empirical.cli.publish")
    local detail = { testRun = { id = 4, state = "ended" } }
    local result = { verdict = "uncounted", exit_code = 2, cancelled = {},
                     runs = { { label = "qa", outcome = "uncounted", exit_code = 2, attempts = {} } } }
    local xml = publish.junit(result, { { label = "qa", attempts = { { id = 4, detail = detail } } } }, {})
    assert.truthy(xml:find('<error message="no verdict: the run ended without saying how many tests ran or failed ' ..
                           '(no counts, no items, no report)" type="uncounted"/>', 1, true), xml)
  end)

  describe("help", function()
    local function help_of(name)
      local code, out = run { name, "--help" }
      assert.equal(0, code)
      return out:match("\nEXIT CODES\n(.-)\n\n")
    end

    it("of each command shows the exit codes it can return, in its words, from the one table", function()
      for _, c in ipairs(commands.COMMANDS) do
        local section = help_of(c.name)
        assert.truthy(section, c.name)
        local shown = {}
        for code in section:gmatch("%f[^\n%z]  (%d+)%s") do shown[#shown + 1] = tonumber(code) end
        local expected = {}
        for _, row in ipairs(commands.exits_of(c)) do
          expected[#expected + 1] = row.code
          assert.truthy(section:gsub("%s+", " "):find(row.meaning, 1, true), c.name .. ": " .. row.meaning)
        end
        assert.same(expected, shown, c.name)
      end
    end)

    it("of list, get, trigger... never speaks of runs passing or being cancelled", function()
      for _, name in ipairs { "trigger", "rerun", "get", "cancel", "list", "report", "fake" } do
        local section = help_of(name):gsub("%s+", " ")
        assert.is_nil(section:find("every run passed", 1, true), name)
        assert.is_nil(section:find("the runs it started", 1, true), name)
        assert.is_nil(section:find("\n  1 ", 1, true), name)
        -- a signal ends each (130/143) but fake, which a signal stops with 0
        if name == "fake" then assert.is_nil(section:find(" 130 ", 1, true), name)
        else assert.truthy(section:find(" 130 interrupted by SIGINT (Ctrl+C); ", 1, true), name) end
      end
      local list = help_of("list"):gsub("%s+", " ")
      assert.truthy(list:find("0 the runs were listed (none matching is not an error)", 1, true), list)
      -- wait judges runs but starts none: its signals leave them running
      local wait = help_of("wait"):gsub("%s+", " ")
      assert.truthy(wait:find("130 interrupted by SIGINT (Ctrl+C); the runs go on", 1, true), wait)
      -- the gate's is the whole table
      local whole = help_of("gate")
      for _, row in ipairs(commands.EXIT) do assert.truthy(whole:gsub("%s+", " "):find(row.meaning, 1, true)) end
    end)

    it("shows only the flags a command takes: no --json for the fake, no --dashboard-url without links", function()
      local _, out = run { "fake", "--help" }
      assert.is_nil(out:find("--json", 1, true), out)
      local code, _, err = run { "fake", "--json" }
      assert.equal(3, code)
      assert.matches("unknown flag --json", err, 1, true)
      for _, name in ipairs { "cancel", "list", "report" } do
        _, out = run { name, "--help" }
        assert.is_nil(out:find("--dashboard-url", 1, true), name)
        assert.truthy(out:find("--json", 1, true), name)
      end
      for _, name in ipairs { "gate", "trigger", "rerun", "get", "wait" } do
        _, out = run { name, "--help" }
        assert.truthy(out:find("--dashboard-url", 1, true), name)
      end
    end)
  end)

  describe("the list table", function()
    local function created_columns(lines)
      local at = {}
      for _, line in ipairs(lines) do
        local col = line:find("CREATED", 1, true) or line:find("%d%d%d%d%-%d%d%-%d%d")
        at[#at + 1] = col and select(2, line:sub(1, col):gsub("[^\128-\191]", "")) or false
      end
      return at
    end

    it("aligns each column to its content, and cuts to the terminal's width", function()
      local runs = {}
      for i = 1, 3 do
        runs[i] = { id = i * 500, state = i == 1 and "cancelling" or "ended", environment_slug = "staging",
                    test_run_branch = i == 2 and "feature/a-very-long-branch-name" or "main",
                    total_count = 1200, success_count = 1100, failed_count = 90, flaky_count = 5, skipped_count = 5,
                    created_at = "2026-11-30T09:00:54.890Z" }
      end
      runs[4] = { id = 9, state = "queued", created_at = "2026-11-30T09:00:55.000Z" }   -- counts still null
      local lines = render.runs_table(runs)
      assert.equal(5, #lines)
      local at = created_columns(lines)
      for i = 2, #at do assert.equal(at[1], at[i], lines[i]) end
      assert.matches("^ID +STATE +ENVIRONMENT +BRANCH +TESTS +CREATED$", lines[1])
      assert.truthy(lines[2]:find("1100 passed, 90 failed, 5 flaky, 5 skipped of 1200  2026", 1, true), lines[2])
      for _, width in ipairs { 80, 100 } do
        local cut = render.runs_table(runs, width)
        at = created_columns(cut)
        for i, line in ipairs(cut) do
          assert.is_true(select(2, line:gsub("[^\128-\191]", "")) <= width, line)
          assert.equal(at[1], at[i], line)
          assert.matches("^%d+ ", i > 1 and line or "1 ")   -- ids never cut
        end
      end
      assert.truthy(table.concat(render.runs_table(runs, 80), "\n"):find("…", 1, true))
      -- nothing to cut on a wide terminal
      assert.same(render.runs_table(runs), render.runs_table(runs, 200))
    end)

    it("fits every line to a narrow width: columns cut to their least, then left out; id and state never", function()
      local runs = {}
      for i = 1, 3 do
        runs[i] = { id = 1000 + i, state = "cancelling", environment_slug = "staging-eu-west",
                    test_run_branch = "feature/a-very-long-branch-name", total_count = 1200, success_count = 1100,
                    failed_count = 90, flaky_count = 5, skipped_count = 5, created_at = "2026-11-30T09:00:54.890Z" }
      end
      local function width_of(line) return select(2, line:gsub("[^\128-\191]", "")) end
      for _, width in ipairs { 70, 60, 50, 40, 30, 24 } do
        local lines = render.runs_table(runs, width)
        for i, line in ipairs(lines) do
          assert.is_true(width_of(line) <= width, width .. ": " .. line)
          assert.matches(i == 1 and "^ID +STATE" or "^100%d +cancelling", line)
        end
      end
      -- what goes first: the creation time, then the branch...
      assert.matches("^ID +STATE +ENVIRONMENT +BRANCH +TESTS$", render.runs_table(runs, 60)[1])
      assert.matches("^ID +STATE +ENVIRONMENT +TESTS$", render.runs_table(runs, 50)[1])
      assert.matches("^ID +STATE +TESTS$", render.runs_table(runs, 40)[1])
      assert.matches("^ID +STATE$", render.runs_table(runs, 24)[1])
      -- narrower than the id and state: those are shown whole, and nothing else
      assert.same({ "ID    STATE", "1001  cancelling", "1002  cancelling", "1003  cancelling" },
                  render.runs_table(runs, 5))
    end)

    it("from `empirical list` on a 60-column terminal, against the fake", function()
      fake:clock { speed = 0 }
      local client = helper.client(fake)
      for _ = 1, 3 do assert(client:trigger { environment = "staging" }) end
      client:close()
      local inner = table.concat({ "stty cols 60;", "env", "EMPIRICALRUN_KEY=" .. fake.token,
                                   "EMPIRICALRUN_API_URL=" .. fake.url, "LUA_PATH=" .. helper.shell_quote(package.path),
                                   "LUA_CPATH=" .. helper.shell_quote(package.cpath), helper.LUA, "bin/empirical",
                                   "list" }, " ")
      local code, out = helper.run({ "env", "-u", "CI", "script", "-qec", inner, "/dev/null" }, {})
      assert.equal(0, code, out)
      local lines = {}
      for line in out:gsub("\r", ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(4, #lines, out)
      for _, line in ipairs(lines) do
        assert.is_true(select(2, line:gsub("[^\128-\191]", "")) <= 60, line)
      end
      assert.matches("^3 +queued +staging", lines[2])
    end)

    it("from `empirical list` against the fake", function()
      fake:clock { speed = 0 }
      local client = helper.client(fake)
      for _ = 1, 3 do assert(client:trigger { environment = "staging" }) end
      client:close()
      local code, out = run { "list" }
      assert.equal(0, code)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(4, #lines)
      local at = created_columns(lines)
      for i = 2, #at do assert.equal(at[1], at[i], lines[i]) end
    end)
  end)

  describe("progress on a terminal", function()
    it("clears its live lines when it closes, so none is left below what follows", function()
      local out = {}
      local stream = { write = function(self, ...) for _, v in ipairs { ... } do out[#out + 1] = v end return self end,
                       flush = function() end }
      local p = progress.new(stream, true, 80)
      local lanes = { { label = "staging" }, { label = "production" } }
      local d = { testRun = { id = 1, state = "started", total_count = 6, success_count = 2, failed_count = 0 } }
      p.poll(lanes[1], d, { elapsed = 3 })
      p.poll(lanes[2], d, { elapsed = 3 })
      p.say("cancel run 1: cancelled")
      p.close()
      stream:write("interrupted by SIGINT; cancelled: 1 (cancelled)\n")
      assert.same({ "cancel run 1: cancelled", "interrupted by SIGINT; cancelled: 1 (cancelled)" },
                  screen(table.concat(out)))
    end)

    it("after Ctrl+C, the gate leaves the cancel lines and no stale live line on the screen", function()
      fake:scenario { pending_seconds = 1e6 }
      local dir = os.tmpname()
      local vars = { "EMPIRICALRUN_KEY=" .. fake.token, "EMPIRICALRUN_API_URL=" .. fake.url, "CI=true",
                     "LUA_PATH=" .. helper.shell_quote(package.path), "LUA_CPATH=" .. helper.shell_quote(package.cpath) }
      local command = ("set -m; env %s %s bin/empirical gate --interval 0.05 --progress tty --environment staging " ..
                       "--environment production >%s.out 2>%s.err & echo $!; wait $!; echo $? >%s.code")
                      :format(table.concat(vars, " "), helper.LUA, dir, dir, dir)
      local pipe = assert(io.popen("bash -c " .. helper.shell_quote(command) .. " 2>/dev/null"))
      local pid = pipe:read("*l")
      for _ = 1, 400 do
        local gets = 0
        for _, r in ipairs(fake:log()) do if r.method == "GET" then gets = gets + 1 end end
        if gets >= 4 then break end
        os.execute("sleep 0.05")
      end
      os.execute("kill -INT " .. pid)
      pipe:close()
      local code, err = tonumber(read(dir .. ".code")), read(dir .. ".err")
      read(dir .. ".out")
      assert.equal(130, code, err)
      assert.truthy(err:find("\27[", 1, true), "live progress was drawn")
      local shown = screen(err)
      local text = table.concat(shown, "\n")
      assert.is_nil(text:find("pending, %d+/%d+ done"), text)
      assert.matches("cancel run %d: cancelled", text)
      assert.matches("interrupted by SIGINT; cancelled: ", shown[#shown])
    end)

    -- A pseudo-terminal nobody sized (script(1) without a terminal around it) reports 0 columns.
    local function in_pty(lua_code, env)
      local vars = { "TERM=xterm", "LUA_PATH=" .. helper.shell_quote(package.path),
                     "LUA_CPATH=" .. helper.shell_quote(package.cpath) }
      for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. helper.shell_quote(v) end
      local inner = ("%s -e %s"):format(helper.LUA, helper.shell_quote(lua_code))
      local code, out = helper.run({ "env", "-u", "CI", "-u", "COLUMNS", "sh", "-c",
                                     ("env %s script -qec %s /dev/null </dev/null"):format(table.concat(vars, " "),
                                                                                   helper.shell_quote(inner)) }, {})
      return code, (out:gsub("\r", ""))
    end

    it("is live on a terminal that reports no size: COLUMNS wide, else 80", function()
      local probe = [[
        local live, width = require("empirical.cli.progress").choose("auto", io.stderr, os.getenv)
        io.write(tostring(require("empirical").terminal_width(io.stderr)), " ", tostring(live), " ", width)
      ]]
      local code, out = in_pty(probe)
      assert.equal(0, code, out)
      assert.equal("nil true 80", out)
      code, out = in_pty(probe, { COLUMNS = "60" })
      assert.equal("0 nil true 60", code .. " " .. out)
      code, out = in_pty(probe, { COLUMNS = "60", CI = "true" })
      assert.equal(0, code)
      assert.equal("nil false 60", out)
      -- explicit modes, and no terminal at all
      local live, width = progress.choose("plain", io.stderr, function() return nil end)
      assert.is_false(live)
      assert.equal(80, width)
      live = progress.choose("tty", io.stderr, function() return nil end)
      assert.is_true(live)
      assert.is_false((progress.choose("auto", { write = function() end }, function() return nil end)))
      assert.equal(80, select(2, progress.choose("auto", io.stderr, function(k) return k == "COLUMNS" and "0" end)))
    end)

    it("takes COLUMNS when the terminal says it has 0 columns", function()
      local core = require("empirical.core")
      local own, isatty = core.terminal_width, core.isatty
      local function env(k) return k == "COLUMNS" and "60" or nil end
      local ok, problem = pcall(function()
        core.isatty = function() return true end
        for _, zero in ipairs { 0, -1, false } do
          core.terminal_width = function() return zero end
          assert.same({ true, 60 }, { progress.choose("auto", io.stderr, env) })
          assert.equal(60, progress.width(io.stderr, env))
          assert.equal(80, progress.width(io.stderr, function() return nil end))
        end
        core.terminal_width = function() return 132 end
        assert.equal(132, select(2, progress.choose("auto", io.stderr, env)))   -- the terminal's own wins
        core.isatty = function() return false end
        assert.is_nil(progress.width(io.stderr, env))   -- not a terminal: nothing wraps
      end)
      core.terminal_width, core.isatty = own, isatty
      assert(ok, problem)
    end)

    it("keeps each live line within COLUMNS on a terminal that reports no size", function()
      fake:scenario { tests = { { name = "a", outcome = "passed" } } }
      local code, out = in_pty(("os.exit(require('empirical.cli').main({ 'gate', '--environment', 'staging', " ..
                                "'--environment', 'production', '--interval', '0.05', '--meta', 'x=' .. ('y'):rep(90) }))"),
                               { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, COLUMNS = "30" })
      assert.equal(0, code, out)
      local drawn = 0
      for line in out:gmatch("\27%[K([^\n]*)") do
        drawn = drawn + 1
        assert.is_true(#line <= 30, line)
      end
      assert.is_true(drawn > 0, out)
    end)

    it("the gate draws the live line there", function()
      fake:scenario { tests = { { name = "a", outcome = "passed" } } }
      local code, out = in_pty(("os.exit(require('empirical.cli').main({ 'gate', '--environment', 'staging', " ..
                                "'--interval', '0.05' }))"),
                               { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, COLUMNS = "60" })
      assert.equal(0, code, out)
      assert.truthy(out:find("\27[K", 1, true), out)
    end)
  end)

  describe("a --run lane", function()
    it("reads once: `run 1 queued`, not `run 1: run 1 queued`; its re-runs still name the lane", function()
      local client = helper.client(fake)
      local id = assert(client:trigger { environment = "staging" }).id
      client:close()
      local code, _, err = run { "gate", "--run", tostring(id), "--interval", "0.05", "--rerun-failed", "1" }
      assert.equal(0, code, err)
      assert.is_nil(err:find("run 1: run 1", 1, true), err)
      assert.matches("\nrun 1 %a+, %d/6 done", "\n" .. err)   -- queued or started: the fake's clock runs fast
      assert.matches("\nrun 1 ended: FAILED %(", err)
      assert.matches("\nrun 1: run 2 ended: PASSED %(", err)
      assert.equal("run 7 started, 2/6 done, 0 failed",
                   progress.line("run 7", { testRun = { id = 7, state = "started", total_count = 6, success_count = 2,
                                                        failed_count = 0 } }))
      assert.equal("staging: run 7 started, ?/? done, ? failed",
                   progress.line("staging", { testRun = { id = 7, state = "started" } }))
    end)
  end)

  describe("a poll that failed", function()
    it("names the environment, as the other lines do", function()
      local err = empirical.error("http", "503 Service Unavailable")
      assert.equal("staging: poll failed (2 in a row), polling on: " .. render.error_text(err),
                   render.poll_failed({ label = "staging" }, 2, err))
    end)

    it("in the gate's lines", function()
      fake:script { method = "GET", status = 503, body = "", times = 8 }
      local code, _, err = run { "gate", "--environment", "staging", "--interval", "0.05" }
      assert.equal(1, code, err)
      assert.matches("\nstaging: poll failed (2 in a row), polling on: ", err, 1, true)
    end)
  end)
end)
