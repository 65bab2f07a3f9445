--- empirical.cli.publish: the gate's result for CI: JSON (the README's
-- schema), JUnit, a GitHub step summary in Markdown, GitHub annotations.
local report = require("empirical.report")
local render = require("empirical.cli.render")

local M = {}

local format, concat = string.format, table.concat

-- lua-cjson 2.1 writes an empty table as {}: lists that must stay arrays are
-- marked, and their empty ones become a placeholder string, swapped for []
-- after encoding.
local EMPTY = "\1empirical:empty-array\1"
local ARRAYS = { runs = true, attempts = true, cancelled = true, failed_tests = true, flaky_tests = true, path = true }

local function prepare(value, arrays, key)
  if type(value) ~= "table" then return value end
  if arrays[key] and next(value) == nil then return EMPTY end
  local out = {}
  for k, v in pairs(value) do out[k] = prepare(v, arrays, k) end
  return out
end

local function encode(cjson, prepared)
  return (cjson.encode(prepared):gsub('"\\u0001empirical:empty%-array\\u0001"', "[]"))
end

--- value as one line of JSON, its empty tables under the keys in `arrays`
-- (the top level under "(top)") written [], nil as null.
function M.encode(value, arrays)
  local cjson = require("cjson").new()
  if value == nil then return "null" end
  return encode(cjson, prepare(value, arrays, "(top)"))
end

-- Fields the schema says are present but may be null.
local NULLABLE = { counts = { "total", "passed", "failed", "flaky", "skipped" } }

local function fill_nulls(result, null)
  for _, run in ipairs(result.runs or {}) do
    if run.counts then
      for _, k in ipairs(NULLABLE.counts) do if run.counts[k] == nil then run.counts[k] = null end end
    end
    for _, a in ipairs(run.attempts or {}) do
      for _, k in ipairs(NULLABLE.counts) do if a.counts[k] == nil then a.counts[k] = null end end
      if a.state == nil then a.state = null end
      if a.url == nil then a.url = null end
    end
  end
end

--- The result as one line of JSON.
function M.json(result)
  local cjson = require("cjson").new()
  local copy = prepare(result, ARRAYS)
  fill_nulls(copy, cjson.null)
  return encode(cjson, copy)
end

-- What each outcome means (empirical.cli.commands), for a suite's <error>.
local MEANING = {}
for _, row in ipairs(require("empirical.cli.commands").OUTCOMES) do MEANING[row.name] = row.meaning end

-- A run that ran no tests (report.NO_TESTS_RAN) is one report.junit_suites
-- itself explains ("run 15 ended in state error (merge_conflict)", "run 15
-- did not finish").

--- JUnit XML: one testsuite per lane (environment or --run). A lane that
-- passed or failed is its tests; one the gate failed for running no test a
-- <failure> testcase saying so; any other (no verdict) an <error> testcase
-- whose type is the lane's outcome and whose message says why.
function M.junit(result, lanes, opts)
  local suites = {}
  for i, lane in ipairs(lanes) do
    local attempts = {}
    for k, a in ipairs(lane.attempts) do
      attempts[k] = { detail = a.detail, report = a.report, id = a.id, url = render.link(opts, a.id) }
    end
    local run = result.runs[i]
    local last = lane.attempts[#lane.attempts]
    local problem, failure
    if run.outcome == "empty" then
      failure = format("run %s ran no tests; a run of no tests fails the gate (--allow-empty lets it pass)",
                       report.number_text(last and last.id))
    elseif run.outcome ~= "passed" and run.outcome ~= "failed" then
      if run.error then
        problem = run.error.message
      elseif not (last and last.detail and report.NO_TESTS_RAN[report.verdict(last.detail)]) then
        problem = "no verdict: " .. (MEANING[run.outcome] or run.outcome)
      end
    end
    suites[i] = { name = lane.label, attempts = attempts, error = problem, failure = failure, outcome = run.outcome }
  end
  if #suites == 0 then suites[1] = { name = "empirical", attempts = {}, error = "the gate ended before any run" } end
  return assert(report.junit_suites(suites))
end

-- Markdown --------------------------------------------------------------------

local function md(text)
  return (tostring(text):gsub("[\r\n]+", " "):gsub("[|\\`*_<%[%]]", function(c)
    return c == "<" and "&lt;" or ("\\" .. c)
  end))
end

local ICON = { passed = "✅", failed = "❌", empty = "❌", SIGINT = "⛔", SIGTERM = "⛔" }

-- A code span holding text as it is, backticks included (CommonMark): its
-- fence one backtick longer than the longest run of them inside, and a
-- space inside each end when the text starts or ends with one (a space
-- there that CommonMark strips). Line breaks become spaces: one line.
local function code_span(text)
  text = tostring(text):gsub("[\r\n]+", " ")
  local longest = 0
  for run in text:gmatch("`+") do longest = math.max(longest, #run) end
  local fence = ("`"):rep(longest + 1)
  local pad = (text:find("^`") or text:find("`$") or text:find("^ .* $")) and " " or ""
  return fence .. pad .. text .. pad .. fence
end

local function test_item(t, note)
  return format("- %s%s%s", md(render.test_line(t)), t.message and (": " .. code_span(t.message)) or "",
                note and (" (" .. note .. ")") or "")
end

-- A test's name across attempts, whatever the attempt knew of it (its
-- report's path, or only the summary's name).
local function test_key(t)
  return concat(type(t.path) == "table" and t.path or { tostring(t.title) }, " > ")
end

-- The flaky tests of a lane as judged: each attempt's flaky ones, then
-- those an earlier attempt failed and a re-run passed, each once. A test
-- still fails when the last attempt failed it in its project (or named no
-- project: then in any).
local function flaky_tests(run)
  local last = run.attempts[#run.attempts]
  local failing, seen, out = {}, {}, {}
  for _, t in ipairs(last and last.failed_tests or {}) do
    failing[test_key(t) .. "\0" .. (t.project or "")] = true
    if not t.project then failing[test_key(t)] = true end
  end
  local function still_failing(t)
    if failing[test_key(t)] or failing[test_key(t) .. "\0" .. (t.project or "")] then return true end
    if t.project then return false end
    for key in pairs(failing) do
      if key:sub(1, #test_key(t) + 1) == test_key(t) .. "\0" then return true end
    end
    return false
  end
  local function add(t, note)
    local key = render.test_line(t)
    if not seen[key] then seen[key], out[#out + 1] = true, { test = t, note = note } end
  end
  for _, a in ipairs(run.attempts) do for _, t in ipairs(a.flaky_tests or {}) do add(t) end end
  for k, a in ipairs(run.attempts) do
    if k < #run.attempts then
      for _, t in ipairs(a.failed_tests or {}) do
        if not still_failing(t) then add(t, "failed in run " .. tostring(a.id) .. ", passed on a re-run") end
      end
    end
  end
  return out
end

--- A Markdown summary: per lane its outcome (with the run's error code when
-- it gave one) and its counts as judged (every test once, a test a re-run
-- fixed counted flaky: report.judged_counts), links, then the failed and
-- flaky tests with their messages. Each note is its own paragraph.
function M.markdown(result)
  local out = { format("## Empirical release gate: %s (exit %d)", result.verdict, result.exit_code), "",
                "| run | outcome | passed | failed | flaky | skipped | total | links |",
                "|---|---|---|---|---|---|---|---|" }
  local blocks = {}
  local n = report.number_text
  for _, run in ipairs(result.runs) do
    local last = run.attempts[#run.attempts]
    local c = run.counts
    local links = {}
    for _, a in ipairs(run.attempts) do
      local label = format("%s %s", a.kind == "rerun" and "re-run" or "run", a.id)
      links[#links + 1] = a.url and format("[%s](%s)", label, a.url) or label
    end
    local outcome = run.outcome .. (last and last.error_code and (" (" .. md(last.error_code) .. ")") or "")
    out[#out + 1] = format("| %s | %s %s | %s | %s | %s | %s | %s | %s |", md(run.label), ICON[run.outcome] or "⚠️",
                           outcome, n(c.passed), n(c.failed), n(c.flaky), n(c.skipped), n(c.total),
                           concat(links, " → "))
    if run.error then blocks[#blocks + 1] = { format("**%s**: %s", md(run.label), md(run.error.message)) } end
    if last and #(last.failed_tests or {}) > 0 then
      local block = { format("**%s**: failed tests", md(run.label)), "" }
      for _, t in ipairs(last.failed_tests) do block[#block + 1] = test_item(t) end
      blocks[#blocks + 1] = block
    end
    local flaky = flaky_tests(run)
    if #flaky > 0 then
      local block = { format("**%s**: flaky tests", md(run.label)), "" }
      for _, f in ipairs(flaky) do block[#block + 1] = test_item(f.test, f.note) end
      blocks[#blocks + 1] = block
    end
    if last and last.report_error then
      blocks[#blocks + 1] = { format("**%s**: the Playwright report could not be fetched: %s", md(run.label),
                                     md(last.report_error)) }
    end
  end
  if #result.cancelled > 0 then
    local done, open = require("empirical.gate").cancel_groups(result.cancelled)
    local block = {}
    if #done > 0 then block[#block + 1] = "Cancelled: " .. concat(done, ", ") end
    if #open > 0 then
      block[#block + 1] = ("Not confirmed, may still be running: %s (cancel with `empirical cancel %s`)")
                            :format(concat(open, ", "), concat(open, " "))
    end
    blocks[#blocks + 1] = block
  end
  for _, block in ipairs(blocks) do
    out[#out + 1] = ""
    for _, line in ipairs(block) do out[#out + 1] = line end
  end
  return concat(out, "\n") .. "\n"
end

-- GitHub annotations ------------------------------------------------------------
-- Workflow commands: the message escapes %, CR and LF; property values also
-- escape : and ,.

local function data(s) return (tostring(s):gsub("%%", "%%25"):gsub("\r", "%%0D"):gsub("\n", "%%0A")) end
local function property(s) return (data(s):gsub(":", "%%3A"):gsub(",", "%%2C")) end

--- One `::error file=...,line=...,title=...::message` line per failed test
-- of each lane's last attempt.
function M.annotations(result)
  local lines = {}
  for _, run in ipairs(result.runs) do
    local last = run.attempts[#run.attempts]
    for _, t in ipairs(last and last.failed_tests or {}) do
      local props = {}
      if t.file then props[#props + 1] = "file=" .. property(t.file) end
      if t.line then props[#props + 1] = format("line=%d", t.line) end
      props[#props + 1] = "title=" .. property(format("%s: %s", run.label, concat(t.path, " › ") ..
                                                     (t.project and (" [" .. t.project .. "]") or "")))
      lines[#lines + 1] = format("::error %s::%s", concat(props, ","), data(t.message or t.error or "test failed"))
    end
    if #(last and last.failed_tests or {}) == 0 and run.exit_code ~= 0 then
      local message = run.error and run.error.message or run.note or run.outcome
      lines[#lines + 1] = format("::error title=%s::%s", property("empirical gate: " .. run.label), data(message))
    end
  end
  return lines
end

return M
