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

local function prepare(value, key)
  if type(value) ~= "table" then return value end
  if ARRAYS[key] and next(value) == nil then return EMPTY end
  local out = {}
  for k, v in pairs(value) do out[k] = prepare(v, k) end
  return out
end

-- Fields the schema says are present but may be null.
local NULLABLE = { counts = { "total", "passed", "failed", "flaky", "skipped" } }

local function fill_nulls(result, null)
  for _, run in ipairs(result.runs or {}) do
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
  local copy = prepare(result)
  fill_nulls(copy, cjson.null)
  local text = cjson.encode(copy)
  return (text:gsub('"\\u0001empirical:empty%-array\\u0001"', "[]"))
end

--- JUnit XML: one testsuite per lane (environment or --run).
function M.junit(result, lanes, opts)
  local suites = {}
  for i, lane in ipairs(lanes) do
    local attempts = {}
    for k, a in ipairs(lane.attempts) do
      attempts[k] = { detail = a.detail, report = a.report, id = a.id, url = render.link(opts, a.id) }
    end
    local run = result.runs[i]
    local problem
    if run.outcome ~= "passed" and run.outcome ~= "failed" then
      problem = run.error and run.error.message or ("no verdict: " .. run.outcome)
    end
    suites[i] = { name = lane.label, attempts = attempts, error = problem }
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

--- A Markdown summary: per lane its outcome, counts, links, and the failed
-- and flaky tests with their messages.
function M.markdown(result)
  local out = { format("## Empirical release gate: %s (exit %d)", result.verdict, result.exit_code), "",
                "| run | outcome | passed | failed | flaky | skipped | total | links |",
                "|---|---|---|---|---|---|---|---|" }
  local details = {}
  for _, run in ipairs(result.runs) do
    local last = run.attempts[#run.attempts]
    local c = last and last.counts or {}
    local links = {}
    for _, a in ipairs(run.attempts) do
      local label = format("%s %s", a.kind == "rerun" and "re-run" or "run", a.id)
      links[#links + 1] = a.url and format("[%s](%s)", label, a.url) or label
    end
    local n = require("empirical.report").number_text
    out[#out + 1] = format("| %s | %s %s | %s | %s | %s | %s | %s | %s |", md(run.label), ICON[run.outcome] or "⚠️",
                           run.outcome, n(c.passed), n(c.failed), n(c.flaky), n(c.skipped), n(c.total),
                           concat(links, " → "))
    if run.error then details[#details + 1] = format("**%s**: %s", md(run.label), md(run.error.message)) end
    for _, which in ipairs { "failed_tests", "flaky_tests" } do
      local tests = last and last[which] or {}
      if #tests > 0 then
        local kind = which == "failed_tests" and "failed" or "flaky"
        details[#details + 1] = format("**%s**: %s tests", md(run.label), kind)
        details[#details + 1] = ""
        for _, t in ipairs(tests) do
          details[#details + 1] = format("- %s%s", md(render.test_line(t)), t.message and (": `" ..
                                         t.message:gsub("`", "'") .. "`") or "")
        end
        details[#details + 1] = ""
      end
    end
    if last and last.report_error then
      details[#details + 1] = format("**%s**: the Playwright report could not be fetched: %s", md(run.label),
                                     md(last.report_error))
    end
  end
  if #details > 0 then out[#out + 1] = "" for _, d in ipairs(details) do out[#out + 1] = d end end
  if #result.cancelled > 0 then
    local ids = {}
    for _, row in ipairs(result.cancelled) do ids[#ids + 1] = format("%s (%s)", row.id, row.status) end
    out[#out + 1] = ""
    out[#out + 1] = "Cancelled: " .. concat(ids, ", ")
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
