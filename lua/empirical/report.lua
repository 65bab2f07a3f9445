--- empirical.report: judge a run and report it, for people and for CI.
--
-- verdict(detail) -> "passed" | "failed" | "error" | "cancelled" | "running"
-- summary(detail [, info]) -> the text a CI log wants
-- junit(detail [, reruns]) -> JUnit XML for a CI's test tab
--
-- `detail` is what client:get and client:wait return: {project, testRun,
-- flattenedSummaryDetails}. The summary items are not documented by the
-- vendor: only `name` and `status` are read, each only when it has the
-- expected type, so an item that is null, empty or odd never raises.
local type, tostring, ipairs, next = type, tostring, ipairs, next
local concat, floor, format = table.concat, math.floor, string.format

local M = {}

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

local function int(v)
  v = number(v)
  return v and format("%d", floor(v)) or "?"
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
  if not ms then return nil end
  local s = ms / 1000
  if s < 60 then return format("%.1f s", s) end
  return format("%dm%02ds", floor(s / 60), floor(s % 60))
end

--- A few lines for a CI log: verdict and state, counts, duration, where it
-- ran, the failed tests by name. info is wait's second result, if any.
function M.summary(detail, info)
  local run = run_of(detail)
  if not run then return "no run detail" end
  local verdict = M.verdict(detail)
  local lines = {
    format("run %s %s: %s", int(run.id), tostring(run.state), verdict:upper()),
    format("  %s passed, %s failed, %s flaky, %s skipped of %s tests%s", int(run.success_count),
           int(run.failed_count), int(run.flaky_count or 0), int(run.skipped_count or 0), int(run.total_count),
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

local function attrs(list)
  local out = {}
  for i = 1, #list, 2 do
    if list[i + 1] ~= nil then out[#out + 1] = format(' %s="%s"', list[i], xml(list[i + 1])) end
  end
  return concat(out)
end

local function seconds(ms)
  ms = number(ms)
  return ms and format("%.3f", ms / 1000) or nil
end

-- One testcase per item; the latest re-run that ran a test decides it.
local function testcases(detail, reruns, classname)
  local latest, order = {}, {}
  for i, item in each_item(detail) do
    local name = text(item.name) or ("(unnamed test " .. i .. ")")
    if not latest[name] then order[#order + 1] = name end
    latest[name] = { item = item, history = {} }
  end
  local first_id = int(run_of(detail).id)
  for _, rerun in ipairs(reruns) do
    local rerun_id = int((run_of(rerun) or {}).id)
    for _, item in each_item(rerun) do
      local name = text(item.name)
      local case = name and latest[name]
      if case then
        case.history[#case.history + 1] = format("%s in run %s", tostring(case.item.status), case.run or first_id)
        case.item, case.run = item, rerun_id
      end
    end
  end
  local cases, counts = {}, { tests = 0, failures = 0, skipped = 0 }
  for _, name in ipairs(order) do
    local case = latest[name]
    local status = text(case.item.status) or "unknown"
    local body = {}
    counts.tests = counts.tests + 1
    if FAILED_STATUS[status] then
      counts.failures = counts.failures + 1
      body[#body + 1] = format("<failure%s/>", attrs { "message", "test " .. status, "type", status })
    elseif status == "skipped" then
      counts.skipped = counts.skipped + 1
      body[#body + 1] = "<skipped/>"
    end
    local notes = {}
    if status ~= "passed" and status ~= "skipped" and not FAILED_STATUS[status] then
      notes[#notes + 1] = "status: " .. status
    end
    if #case.history > 0 then
      notes[#notes + 1] = format("%s; then %s in re-run %s", concat(case.history, "; "), status, case.run)
    end
    if #notes > 0 then body[#body + 1] = "<system-out>" .. xml(concat(notes, "\n")) .. "</system-out>" end
    cases[#cases + 1] = format("    <testcase%s%s", attrs { "name", name, "classname", classname,
                                                            "time", seconds(case.item.duration) },
                               #body > 0 and (">" .. concat(body) .. "</testcase>") or "/>")
  end
  return cases, counts
end

-- One <testsuite> element and its counts {tests, failures, errors, skipped}.
local function testsuite(detail, reruns)
  local run = run_of(detail)
  local last = run_of(reruns[#reruns]) and reruns[#reruns] or detail
  local env = text(run.environment_slug) or "empirical"
  local cases, counts = testcases(detail, reruns, env)
  counts.errors = 0
  local verdict = M.verdict(last)
  if verdict == "error" or verdict == "cancelled" or verdict == "running" then
    counts.errors = 1
    counts.tests = counts.tests + 1
    cases[#cases + 1] = format("    <testcase%s><error%s/></testcase>",
                               attrs { "name", "run " .. int(run_of(last).id), "classname", env },
                               attrs { "message", "the run " .. (verdict == "running" and "did not finish" or
                                                                  "ended in state " .. tostring(run_of(last).state)),
                                       "type", verdict })
  end
  local properties = { format('      <property name="run_id" value="%s"/>', int(run.id)) }
  for i, rerun in ipairs(reruns) do
    local rerun_id = int((run_of(rerun) or {}).id)
    properties[#properties + 1] = format('      <property name="rerun_%d_id" value="%s"/>', i, rerun_id)
  end
  for _, key in ipairs { "environment_slug", "build_url", "build_branch", "commit" } do
    if text(run[key]) then
      properties[#properties + 1] = format("      <property%s/>", attrs { "name", key, "value", run[key] })
    end
  end
  local suite = attrs { "name", format("empirical run %s (%s)", int(run.id), env), "tests", counts.tests,
                        "failures", counts.failures, "errors", counts.errors, "skipped", counts.skipped,
                        "time", seconds(run.duration), "timestamp", text(run.run_started_at) }
  return concat({
    format("  <testsuite%s>", suite),
    "    <properties>", concat(properties, "\n"), "    </properties>",
    concat(cases, "\n"),
    "  </testsuite>",
  }, "\n"), counts
end

--- JUnit XML for several runs, one <testsuite> each: runs is a list of
-- {detail, reruns} (reruns may be nil), as junit takes them.
function M.junit_all(runs)
  if type(runs) ~= "table" then return nil, "junit: expected a list of {detail, reruns}" end
  local suites, total = {}, { tests = 0, failures = 0, errors = 0, skipped = 0 }
  for i, entry in ipairs(runs) do
    local detail, reruns = type(entry) == "table" and entry[1], type(entry) == "table" and entry[2] or {}
    if not run_of(detail) then return nil, ("junit: entry %d has no run detail (client:get's result)"):format(i) end
    if type(reruns) ~= "table" then return nil, ("junit: entry %d: reruns must be a list of run details"):format(i) end
    local suite, counts = testsuite(detail, reruns)
    suites[#suites + 1] = suite
    for k in next, total do total[k] = total[k] + counts[k] end
  end
  return concat({
    '<?xml version="1.0" encoding="UTF-8"?>',
    format("<testsuites%s>", attrs { "name", "empirical", "tests", total.tests, "failures", total.failures,
                                     "errors", total.errors, "skipped", total.skipped }),
    concat(suites, "\n"),
    "</testsuites>",
    "",
  }, "\n")
end

--- JUnit XML: one testsuite for the run, one testcase per summary item.
-- failed -> <failure>, skipped -> <skipped>, flaky passes. A run that
-- ended in error or was cancelled adds one <error> testcase, so the CI's
-- test tab shows it. reruns (optional) is a list of re-run details: a test
-- they ran takes its latest result, and its history goes in <system-out>.
function M.junit(detail, reruns)
  if not run_of(detail) then return nil, "junit: expected a run detail (client:get's result)" end
  if reruns ~= nil and type(reruns) ~= "table" then return nil, "junit: reruns must be a list of run details" end
  return M.junit_all { { detail, reruns } }
end

return M
