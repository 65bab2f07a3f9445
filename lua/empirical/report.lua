--- empirical.report: judge a run and report it, for people and for CI.
--
-- verdict(detail) -> "passed" | "failed" | "error" | "cancelled" | "running"
-- summary(detail [, info]) -> the text a CI log wants
-- junit(detail [, reruns]) -> JUnit XML for a CI's test tab
-- junit_suites(suites) -> JUnit XML for runs judged with their Playwright reports
--
-- `detail` is what client:get and client:wait return: {project, testRun,
-- flattenedSummaryDetails}. The summary items are not documented by the
-- vendor: `name` and `status` are read, and for JUnit `file`, `project`
-- and `duration`, each only when it has the expected type, so an item
-- that is null, empty or odd never raises.
local type, tostring, ipairs, next = type, tostring, ipairs, next
local concat, floor, format, huge = table.concat, math.floor, string.format, math.huge

local M = {}

-- Errors are the core's error objects; the core is loaded only when one is made.
local function core_error(message)
  return require("empirical.core").error("invalid", message)
end

--- The verdicts of a run that ran no tests to judge ("no tests ran"): it
-- ended in error, was cancelled, or did not finish. One set for the gate,
-- the command's reports and JUnit.
M.NO_TESTS_RAN = { error = true, cancelled = true, running = true }

local VERDICT_OF_STATE = {
  ended = "passed",          -- or "failed", by the counts
  error = "error",
  cancelled = "cancelled",
  cancelling = "cancelled",  -- on its way; nothing will pass now
}

-- Statuses of a summary item that count as a failed test. Playwright's own
-- names are here too, in case the vendor passes them through.
local FAILED_STATUS = { failed = true, timedOut = true, interrupted = true, unexpected = true, error = true }

local function run_of(detail)
  if type(detail) ~= "table" then return nil end
  if type(detail.testRun) == "table" then return detail.testRun end
  if detail.state ~= nil then return detail end   -- a testRun passed on its own
  return nil
end

-- The summary items that are tables, with their places in the list.
local function each_item(detail)
  local list = type(detail) == "table" and detail.flattenedSummaryDetails
  if type(list) ~= "table" then list = {} end
  local i = 0
  return function()
    while true do
      i = i + 1
      local item = list[i]
      if item == nil then return nil end
      if type(item) == "table" then return i, item end
    end
  end
end

local function text(v)
  return type(v) == "string" and v or nil
end

local function number(v)
  return type(v) == "number" and v or nil
end

--- A number as a person reads it: whole ones as digits, others as they
-- are ("6.5", "1e+300"), anything else "?". Never raises, whatever the
-- vendor sent.
function M.number_text(v)
  v = number(v)
  if v == nil or v ~= v then return "?" end
  if v == floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then return format("%d", v) end
  return format("%.6g", v)
end
local int = M.number_text

--- {total, passed, failed, flaky, skipped}, each a number or nil (unknown),
-- from a run detail and, when there is one, its parsed report. passed
-- excludes flaky: when success + failed + skipped makes the total, the
-- vendor counted flaky tests inside success, and they are taken out, so the
-- four add up to the total, each test once. Missing counts come from the
-- report's stats.
function M.counts(detail, parsed)
  local r = run_of(detail) or {}
  local function num(v) return number(v) and v == v and v > -huge and v < huge and v or nil end
  local c = { total = num(r.total_count), passed = num(r.success_count), failed = num(r.failed_count),
              flaky = num(r.flaky_count), skipped = num(r.skipped_count) }
  if c.total and c.passed and c.failed and c.skipped and c.flaky and c.passed + c.failed + c.skipped == c.total then
    c.passed = c.passed - c.flaky
  end
  local s = type(parsed) == "table" and type(parsed.stats) == "table" and parsed.stats
  if s then
    c.passed = c.passed or num(s.expected)
    c.failed = c.failed or num(s.unexpected)
    c.flaky = c.flaky or num(s.flaky)
    c.skipped = c.skipped or num(s.skipped)
  end
  if not c.total and c.passed and c.failed and c.flaky and c.skipped then
    c.total = c.passed + c.failed + c.flaky + c.skipped
  end
  return c
end

--- "passed" (ended, no failed tests: flaky ones pass, and are counted),
-- "failed", "error", "cancelled", or "running" (not finished, or a state
-- this version does not know).
function M.verdict(detail)
  local run = run_of(detail)
  if not run then return "error" end
  local verdict = VERDICT_OF_STATE[run.state]
  if verdict ~= "passed" then return verdict or "running" end
  if (number(run.failed_count) or 0) > 0 then return "failed" end
  for _, item in each_item(detail) do
    if FAILED_STATUS[item.status] then return "failed" end
  end
  return "passed"
end

--- The names of the failed tests, in the order the run lists them.
function M.failed_tests(detail)
  local names = {}
  for i, item in each_item(detail) do
    if FAILED_STATUS[item.status] then names[#names + 1] = text(item.name) or ("(unnamed test " .. i .. ")") end
  end
  return names
end

local function duration(ms)
  ms = number(ms)
  if not ms or ms ~= ms or ms < 0 or ms == huge then return nil end
  local s = ms / 1000
  if s < 60 then return format("%.1f s", s) end
  return format("%dm%02ds", floor(s / 60), floor(s % 60))
end

--- The run's error code (testRun.error_code: the vendor does not document
-- it, but sends it for a run that ended in error, as `merge_conflict`), or
-- nil when it is absent or not a non-empty string. Control characters are
-- dropped and it is cut to 200 bytes: it goes on one line of a log, a table
-- cell or an XML attribute.
function M.error_code(detail)
  local code = text((run_of(detail) or {}).error_code)
  if not code then return nil end
  code = code:gsub("[%z\1-\31\127]", "")
  if #code > 200 then code = code:sub(1, 200):gsub("[\192-\255][\128-\191]*$", "") end
  return code ~= "" and code or nil
end

--- A run's state as a person reads it: "error (merge_conflict)" when the
-- run gave an error code, else the state ("?" when it has none).
function M.state_text(detail)
  local run = run_of(detail) or {}
  local state = text(run.state) or "?"
  local code = M.error_code(detail)
  return code and format("%s (%s)", state, code) or state
end

--- A few lines for a CI log: verdict and state, counts, duration, where it
-- ran, the failed tests by name. info is wait's second result, if any.
function M.summary(detail, info)
  local run = run_of(detail)
  if not run then return "no run detail" end
  local verdict, c = M.verdict(detail), M.counts(detail)
  local lines = {
    format("run %s %s: %s", int(run.id), M.state_text(detail), verdict:upper()),
    format("  %s passed, %s failed, %s flaky, %s skipped of %s tests%s", int(c.passed), int(c.failed),
           int(c.flaky), int(c.skipped), int(c.total),
           duration(run.duration) and (" in " .. duration(run.duration)) or ""),
  }
  local where = {}
  local env = text(run.environment_slug) or text(run.environment_name)
  if env then where[#where + 1] = "environment " .. env end
  local branch = text(run.build_branch) or text(run.test_run_branch)
  if branch then where[#where + 1] = "branch " .. branch end
  local commit = text(run.commit) or text(run.test_run_head_sha)
  if commit then where[#where + 1] = "commit " .. commit:sub(1, 12) end
  if #where > 0 then lines[#lines + 1] = "  " .. concat(where, ", ") end
  if text(run.build_url) then lines[#lines + 1] = "  build " .. run.build_url end
  if type(info) == "table" and info.superseded then
    lines[#lines + 1] = "  cancelled while pending: a newer trigger for this environment replaced it"
  end
  local failed = M.failed_tests(detail)
  if #failed > 0 then
    lines[#lines + 1] = "  failed tests:"
    for _, name in ipairs(failed) do lines[#lines + 1] = "    - " .. name end
  end
  return concat(lines, "\n")
end

-- XML ------------------------------------------------------------------------

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

-- Escape for text and attribute values. Control characters XML 1.0 cannot
-- hold become U+FFFD; tabs and newlines in attributes become references.
local function xml(s)
  s = tostring(s):gsub("[&<>\"']", ESCAPES)
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", "\239\191\189")
  return (s:gsub("\t", "&#9;"):gsub("\n", "&#10;"):gsub("\r", "&#13;"))
end

-- Element text keeps its newlines.
local function xml_text(s)
  s = tostring(s):gsub("[&<>\"']", ESCAPES)
  return (s:gsub("[%z\1-\8\11\12\14-\31\127]", "\239\191\189"))
end

-- name, value, name, value...: a value that is nil leaves its attribute
-- out (varargs, since a table's length with nil holes is not defined).
local function attrs(...)
  local out = {}
  for i = 1, select("#", ...), 2 do
    local name, value = select(i, ...)
    if value ~= nil then out[#out + 1] = format(' %s="%s"', name, xml(value)) end
  end
  return concat(out)
end

-- JUnit's time: seconds, always a finite number >= 0, or nil (left out).
local function seconds(ms)
  ms = number(ms)
  if not ms or ms ~= ms or ms < 0 or ms >= huge then return nil end
  return format("%.3f", ms / 1000)
end

-- Tests, by name ---------------------------------------------------------------
-- A test is named by its describe path and title (" > "-joined, as the run's
-- summary items name them); a report entry is one test in one project. Each
-- attempt (the run, then each re-run) decides the tests it ran.

local function entry_name(e)
  local path = {}
  for _, p in ipairs(type(e.path) == "table" and e.path or {}) do
    if type(p) == "string" and p ~= "" then path[#path + 1] = p end
  end
  if #path == 0 then path[1] = text(e.title) or "(unnamed test)" end
  return concat(path, " > "), path
end

-- The JUnit status of a report entry, by its outcome: "passed", "failed" (or
-- the failing result's own status: "timedOut", "interrupted"...), "flaky",
-- "skipped". An entry without an outcome (a report parsed before they had
-- one, or built by hand) is taken from the list it came in.
local function entry_status(e, which)
  local outcome = text(e.outcome) or (which == "flaky" and "flaky") or (which == "failed" and "unexpected") or nil
  if outcome == "expected" then return "passed" end
  if outcome == "flaky" or outcome == "skipped" then return outcome end
  if outcome == "unexpected" then
    local status = text(e.status)
    return FAILED_STATUS[status] and status or "failed"   -- test.fail() that passed is a failure too
  end
  return outcome or "unknown"
end

-- A summary item's own identity, when it carries one. The vendor's items
-- name a test's spec file and Playwright project (`file`, `project`) as its
-- report does: a case from an item with a project is named as the report
-- would name it (the describe path " › "-joined, the project after it, the
-- file as its classname), so a test keeps its identity in a CI's history
-- whether or not its report could be had; only its line needs the report.
-- An item without a project keeps the run's name for it.
local function item_case(item, i)
  local name = text(item.name) or ("(unnamed test " .. i .. ")")
  local file, project = text(item.file), text(item.project)
  if file == "" then file = nil end
  if project == "" then project = nil end
  local case = { name = name, status = text(item.status) or "unknown", time = seconds(item.duration),
                 summary = true }
  if project then
    local path = {}
    for part in (name .. " > "):gmatch("(.-) > ") do path[#path + 1] = part end
    case.name, case.file, case.project = concat(path, " › "), file, project
  end
  return name, case
end

-- The cases an attempt shows, by name. A report that lists every test
-- (parse_report's `tests`) gives all of them, one case per test and project,
-- each with its file, line and project. Otherwise: the report's failed and
-- flaky entries, then the summary items the report did not cover (a summary
-- item named like an entry, its title, or its " › " path, is covered when
-- it names no project or the entry's).
local function attempt_cases(attempt)
  local view, order, alias = {}, {}, {}
  local function add(name, case)
    if not view[name] then view[name], order[#order + 1] = {}, name end
    table.insert(view[name], case)
  end
  local function add_entry(e, which)
    local name, path = entry_name(e)
    local case = { name = concat(path, " › "), file = text(e.file), line = number(e.line), project = text(e.project),
                   status = entry_status(e, which), message = text(e.message), error = text(e.error),
                   retries = number(e.retries), time = seconds(e.duration) }
    add(name, case)
    for _, key in ipairs { name, case.name, path[#path] } do
      local projects = alias[key] or {}
      projects[case.project or true] = true
      alias[key] = projects
    end
  end
  local parsed = type(attempt.report) == "table" and attempt.report or {}
  local every = type(parsed.tests) == "table" and #parsed.tests > 0 and parsed.tests
  for _, which in ipairs(every and { "tests" } or { "failed", "flaky" }) do
    for _, e in ipairs(type(parsed[which]) == "table" and parsed[which] or {}) do
      if type(e) == "table" then add_entry(e, which) end
    end
  end
  if every then return view, order end   -- the report names every test: the summary's names would repeat them
  for i, item in each_item(attempt.detail) do
    local name, case = item_case(item, i)
    local covered = alias[name]
    if not (covered and (not case.project or covered[case.project] or covered[true])) then add(name, case) end
  end
  return view, order
end

-- A case names the test in one project when it has a project, or (from a
-- report) a file; a case from a summary item without a project names only
-- the test, in whichever projects ran it.
local function identified(case)
  return case.project ~= nil or (case.file ~= nil and not case.summary)
end

-- Whether two identified cases are the same test in the same project: the
-- same project, and the same file unless one does not say.
local function same_identity(a, b)
  return a.project == b.project and (a.file == nil or b.file == nil or a.file == b.file)
end

-- The history of a case that follows `before` (the cases of the same test in
-- the attempt before): theirs, then what they were.
local function follow(before)
  if #before == 0 then return {} end
  local history, statuses = {}, {}
  for i, line in ipairs(before[1].history) do history[i] = line end
  for i, c in ipairs(before) do statuses[i] = c.status end
  history[#history + 1] = format("%s in %s %s", concat(statuses, ", "), before[1].attempt == 1 and "run" or "re-run",
                                 before[1].id)
  return history
end

-- A test a re-run names only by its summary item (its report could not be
-- had) keeps the identity an earlier report gave it (file, line, project,
-- " › " name), so a CI's test history sees one test, not two.
local function carry_identity(prev, now)
  return { name = prev.name, file = prev.file, line = prev.line, project = prev.project, status = now.status,
           time = now.time, attempt = now.attempt, id = now.id, history = follow { prev },
           failed_before = FAILED_STATUS[prev.status] or prev.failed_before }
end

-- Whether any of the cases failed, in its attempt or an earlier one.
local function failed_once(cases)
  for _, c in ipairs(cases) do if FAILED_STATUS[c.status] or c.failed_before then return true end end
  return false
end

-- The cases of one test name after an attempt that ran it. Each case of
-- the attempt takes the place of one earlier case, which it follows:
--   * one with a project (from the report, or from a summary item that
--     names it) the earlier case of the same project and file, else one
--     that named no project (a failed one first, as a re-run runs those),
--     else it is a new case;
--   * summary items that name no project: when earlier cases name their
--     projects, the worst of their statuses goes to those of them that
--     failed (every one when none failed: a re-run of all tests); else
--     each takes the place of one earlier case without a project, a failed
--     one first.
-- So a re-run of one project leaves the other projects' results standing,
-- and no test is counted twice. A case from a summary item that takes the
-- place of one from a report keeps the report's name, file and line.
local function merge(before, now, k, id)
  for _, c in ipairs(now) do c.attempt, c.id, c.history = k, id, {} end
  if not before then return now end
  local out, taken, loose = {}, {}, {}
  for i, prev in ipairs(before) do out[i] = prev end
  local function free(fits, failed_first)
    local pick
    for i, prev in ipairs(before) do
      if not taken[i] and fits(prev) then
        if not failed_first or FAILED_STATUS[prev.status] then return i end
        pick = pick or i
      end
    end
    return pick
  end
  local function take(i, c)
    local prev = before[i]
    if c.summary and not prev.summary and identified(prev) then
      c = carry_identity(prev, c)
    else
      c.history, c.failed_before = follow { prev }, failed_once { prev }
    end
    out[i], taken[i] = c, true
  end
  local function unnamed(prev) return not identified(prev) end
  for _, c in ipairs(now) do
    if identified(c) then
      local i = free(function(prev) return identified(prev) and same_identity(prev, c) end) or free(unnamed, true)
      if i then take(i, c) else out[#out + 1] = c end
    else
      loose[#loose + 1] = c
    end
  end
  if #loose > 0 and free(identified) then
    local worst = loose[1]
    for _, c in ipairs(loose) do if FAILED_STATUS[c.status] then worst = c break end end
    local any_failed = free(function(prev) return identified(prev) and FAILED_STATUS[prev.status] end)
    for i, prev in ipairs(before) do
      if not taken[i] and identified(prev) and (not any_failed or FAILED_STATUS[prev.status]) then
        local case = {}
        for key, v in pairs(worst) do case[key] = v end
        take(i, case)
      end
    end
  else
    for _, c in ipairs(loose) do
      local i = free(unnamed, true)
      if i then take(i, c) else out[#out + 1] = c end
    end
  end
  return out
end

local function tests_of(attempts)
  local groups, order = {}, {}
  for k, attempt in ipairs(attempts) do
    local id = int(run_of(attempt.detail).id)
    local view, names = attempt_cases(attempt)
    for _, name in ipairs(names) do
      if not groups[name] then order[#order + 1] = name end
      groups[name] = merge(groups[name], view[name], k, id)
    end
  end
  return groups, order
end

-- Whether a case counts as flaky: flaky in its attempt, or passed in a
-- re-run after failing in an earlier attempt (a re-run fixed it).
local function flaky(case)
  return case.status == "flaky" or (case.status == "passed" and case.failed_before == true)
end

--- The counts of a run judged with its re-runs (attempts: {detail=,
-- report=} the run first), as JUnit counts its testcases: every test once,
-- at its latest result, and a test a re-run fixed counted as flaky. A run
-- without re-runs, or whose tests no attempt names, has its own counts
-- (counts above). {total, passed, failed, flaky, skipped}, as counts.
function M.judged_counts(attempts)
  local list = {}
  for _, a in ipairs(type(attempts) == "table" and attempts or {}) do
    if type(a) == "table" and run_of(a.detail) then list[#list + 1] = a end
  end
  local last = list[#list]
  if not last then return {} end
  if #list == 1 then return M.counts(last.detail, last.report) end
  local groups, order = tests_of(list)
  if #order == 0 then return M.counts(last.detail, last.report) end
  local c = { total = 0, passed = 0, failed = 0, flaky = 0, skipped = 0 }
  for _, name in ipairs(order) do
    for _, case in ipairs(groups[name]) do
      c.total = c.total + 1
      if FAILED_STATUS[case.status] then c.failed = c.failed + 1
      elseif case.status == "skipped" then c.skipped = c.skipped + 1
      elseif flaky(case) then c.flaky = c.flaky + 1
      elseif case.status == "passed" then c.passed = c.passed + 1 end
    end
  end
  return c
end

local function testcase(case, classname, counts)
  local body = {}
  counts.tests = counts.tests + 1
  local status = case.status
  if FAILED_STATUS[status] then
    counts.failures = counts.failures + 1
    local message = case.message or ("test " .. status)
    body[#body + 1] = format("<failure%s>%s</failure>", attrs("message", message, "type", status ),
                             xml_text(case.error or message))
  elseif status == "skipped" then
    counts.skipped = counts.skipped + 1
    body[#body + 1] = "<skipped/>"
  end
  local notes = {}
  if status == "flaky" then notes[#notes + 1] = "flaky: passed on retry" end
  if status ~= "passed" and status ~= "skipped" and status ~= "flaky" and not FAILED_STATUS[status] then
    notes[#notes + 1] = "status: " .. status
  end
  if #case.history > 0 then
    notes[#notes + 1] = format("%s; then %s in %s %s", concat(case.history, "; "), status,
                               case.attempt == 1 and "run" or "re-run", case.id)
  end
  if #notes > 0 then body[#body + 1] = "<system-out>" .. xml_text(concat(notes, "\n")) .. "</system-out>" end
  local name = case.name .. (case.project and (" [" .. case.project .. "]") or "")
  return format("    <testcase%s%s", attrs("name", name, "classname", case.file or classname, "file", case.file,
                                            "line", case.line and int(case.line), "time", case.time ),
                #body > 0 and (">" .. concat(body) .. "</testcase>") or "/>")
end

-- The name of the failure testcase of a suite the gate failed, by its outcome.
local FAILURE_CASE = { empty = "no tests" }

-- One <testsuite> and its counts.
local function testsuite(suite)
  local attempts, counts, cases = {}, { tests = 0, failures = 0, errors = 0, skipped = 0 }, {}
  for _, a in ipairs(suite.attempts or {}) do if run_of(a.detail) then attempts[#attempts + 1] = a end end
  local first = attempts[1] and run_of(attempts[1].detail) or {}
  local last = attempts[#attempts]
  local classname = text(suite.name) or text(first.environment_slug) or "empirical"
  local groups, order = tests_of(attempts)
  for _, name in ipairs(order) do
    for _, case in ipairs(groups[name]) do cases[#cases + 1] = testcase(case, classname, counts) end
  end
  local problem = text(suite.error)
  local verdict = last and M.verdict(last.detail)
  if not problem and (not last or M.NO_TESTS_RAN[verdict]) then
    local r = last and run_of(last.detail)
    problem = not last and "no run detail" or format("run %s %s", int(r.id), verdict == "running" and
                                                       "did not finish" or ("ended in state " ..
                                                                            M.state_text(last.detail)))
  end
  local outcome = text(suite.outcome)
  if problem then
    counts.errors, counts.tests = counts.errors + 1, counts.tests + 1
    cases[#cases + 1] = format("    <testcase%s><error%s/></testcase>", attrs("name", classname .. ": no verdict",
                               "classname", classname ), attrs("message", problem, "type", outcome or verdict or
                                                               "error" ))
  elseif text(suite.failure) and counts.failures == 0 then
    -- The run's tests did not fail, but the gate failed it (it ran no test).
    counts.failures, counts.tests = counts.failures + 1, counts.tests + 1
    cases[#cases + 1] = format("    <testcase%s><failure%s/></testcase>", attrs("name", classname .. ": " ..
      (FAILURE_CASE[outcome] or "failed"), "classname", classname), attrs("message", suite.failure, "type",
                                                                          outcome or "failed"))
  elseif verdict == "failed" and counts.failures == 0 then
    -- The run failed but named no test (no items, no report): the test tab
    -- must still show red, never an empty green suite.
    local r = run_of(last.detail)
    counts.failures, counts.tests = 1, counts.tests + 1
    cases[#cases + 1] = format("    <testcase%s><failure%s/></testcase>", attrs("name", classname .. ": failed tests",
      "classname", classname), attrs("message", format("run %s: %s tests failed; which ones, neither the run nor "
      .. "its report said", int(r.id), int(r.failed_count)), "type", "failed"))
  end
  local properties = {}
  for i, a in ipairs(suite.attempts or {}) do
    local id = run_of(a.detail) and int(run_of(a.detail).id) or (number(a.id) and int(a.id))
    local key = i == 1 and "run" or ("rerun_" .. (i - 1))
    if id then
      properties[#properties + 1] = format("      <property%s/>", attrs("name", key .. "_id", "value", id ))
    end
    if text(a.url) then
      properties[#properties + 1] = format("      <property%s/>", attrs("name", key .. "_url", "value", a.url ))
    end
  end
  for _, key in ipairs { "environment_slug", "build_url", "build_branch", "commit" } do
    if text(first[key]) then
      properties[#properties + 1] = format("      <property%s/>", attrs("name", key, "value", first[key] ))
    end
  end
  local head = attrs("name", format("empirical %s", classname), "tests", counts.tests, "failures", counts.failures,
                       "errors", counts.errors, "skipped", counts.skipped, "time", seconds(first.duration),
                       "timestamp", text(first.run_started_at) )
  return concat({ format("  <testsuite%s>", head), "    <properties>", concat(properties, "\n"), "    </properties>",
                  concat(cases, "\n"), "  </testsuite>" }, "\n"), counts
end

local function document(suites)
  local parts, total = {}, { tests = 0, failures = 0, errors = 0, skipped = 0 }
  for i, suite in ipairs(suites) do
    local xml_suite, counts = testsuite(suite)
    parts[i] = xml_suite
    for k in next, total do total[k] = total[k] + counts[k] end
  end
  return concat({
    '<?xml version="1.0" encoding="UTF-8"?>',
    format("<testsuites%s>", attrs("name", "empirical", "tests", total.tests, "failures", total.failures,
                                     "errors", total.errors, "skipped", total.skipped )),
    concat(parts, "\n"),
    "</testsuites>",
    "",
  }, "\n")
end

--- JUnit XML for judged runs, one <testsuite> per entry of suites:
-- {name=, attempts = {{detail=, report=, id=, url=}, ...}, error=}. attempts
-- are the run then its re-runs; report is the attempt's parsed Playwright
-- report (empirical.parse_report), when there is one: every test it lists
-- becomes one testcase per test and project, named and placed the same
-- whatever its outcome (classname and file the spec's file, line, name the
-- describe path and title with the project), failed ones with the message
-- and the stripped error, skipped ones <skipped/>, the time its results
-- took. Without a report (or with one of no tests) the run's summary items
-- name the tests. A test a re-run ran takes its latest result, in the
-- testcase of the same file and project, so a test a re-run fixed keeps its
-- identity (also when the re-run's report could not be had). A suite with
-- no detail, or whose run did not end with a verdict, or with an error, gets
-- an <error> testcase: never an empty green report. outcome (optional) is
-- what the suite's run was judged (the gate's outcome: "timeout", "empty"...),
-- the type of that testcase; failure (optional) a message for a suite whose
-- tests did not fail but which was failed (a run of no tests): a <failure>
-- testcase when no test failed.
function M.junit_suites(suites)
  if type(suites) ~= "table" then return nil, core_error("junit: expected a list of suites") end
  return document(suites)
end

--- JUnit XML for several runs, one <testsuite> each: runs is a list of
-- {detail, reruns} (reruns may be nil), as junit takes them.
function M.junit_all(runs)
  if type(runs) ~= "table" then return nil, core_error("junit: expected a list of {detail, reruns}") end
  local suites = {}
  for i, entry in ipairs(runs) do
    local detail, reruns = type(entry) == "table" and entry[1], type(entry) == "table" and entry[2] or {}
    if not run_of(detail) then
      return nil, core_error(("junit: entry %d has no run detail (client:get's result)"):format(i))
    end
    if type(reruns) ~= "table" then
      return nil, core_error(("junit: entry %d: reruns must be a list of run details"):format(i))
    end
    local attempts = { { detail = detail } }
    for _, r in ipairs(reruns) do if run_of(r) then attempts[#attempts + 1] = { detail = r } end end
    suites[i] = { attempts = attempts }
  end
  return document(suites)
end

--- JUnit XML: one testsuite for the run, one testcase per summary item.
-- failed -> <failure>, skipped -> <skipped>, flaky passes. A run that
-- ended in error or was cancelled adds one <error> testcase, so the CI's
-- test tab shows it. reruns (optional) is a list of re-run details: a test
-- they ran takes its latest result, and its history goes in <system-out>.
function M.junit(detail, reruns)
  if not run_of(detail) then return nil, core_error("junit: expected a run detail (client:get's result)") end
  if reruns ~= nil and type(reruns) ~= "table" then
    return nil, core_error("junit: reruns must be a list of run details")
  end
  return M.junit_all { { detail, reruns } }
end

return M
