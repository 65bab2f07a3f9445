--- empirical.cli.render: what the gate and the commands show, from run
-- details (client:get) and parsed Playwright reports (empirical.parse_report):
-- counts that add up, test lines, links, the result table --json prints, the
-- GitHub step summary and annotations. Pure functions; nothing here raises
-- on a null, a missing count or an odd item: unknown values show as "?".
local report = require("empirical.report")
local OUTCOME_CODE = require("empirical.cli.commands").OUTCOME_CODE

local M = {}

local type, format, concat, huge = type, string.format, table.concat, math.huge

local function num(v) return type(v) == "number" and v == v and v > -huge and v < huge and v or nil end
local function str(v) return type(v) == "string" and v ~= "" and v or nil end

local function run_of(detail)
  return type(detail) == "table" and type(detail.testRun) == "table" and detail.testRun or {}
end

--- {total, passed, failed, flaky, skipped}: empirical.report's counts.
M.counts = report.counts

local n = report.number_text

--- An error as a line, without the "empirical: " every error starts with.
function M.error_text(err)
  return (tostring(err):gsub("^empirical: ", ""))
end

--- "3 passed, 1 failed, 1 flaky, 1 skipped of 6"
function M.counts_text(c)
  return format("%s passed, %s failed, %s flaky, %s skipped of %s", n(c.passed), n(c.failed), n(c.flaky),
                n(c.skipped), n(c.total))
end

--- How a command user finds a run that may have been created.
M.FIND_RUN = "find it with `empirical list --state queued` (or --state pending, --state started)"

M.DEFAULT_DASHBOARD = "https://dash.empirical.run/{project}/test-runs/{id}"

--- A run's link from the template (opts.dashboard_url or the default), or
-- nil when it needs a project slug that is not known.
function M.link(opts, id)
  local template = str(opts.dashboard_url) or M.DEFAULT_DASHBOARD
  local slug = str(opts.project_slug)
  if template:find("{project}", 1, true) and not (slug and slug:match("^[%w._~-]+$")) then return nil end
  local out = template:gsub("{(%a+)}", { project = slug, id = num(id) and n(id) or tostring(id) })
  return out
end

--- `file:line › describe › title [project]`, from a report entry (or a
-- summary item's name, when the report could not be had).
function M.test_line(t)
  local parts = {}
  if str(t.file) then parts[1] = t.file .. (num(t.line) and (":" .. n(t.line)) or "") end
  local path = type(t.path) == "table" and t.path or { t.title }
  for _, p in ipairs(path) do if str(p) then parts[#parts + 1] = p end end
  if #parts == 0 then parts[1] = "(unnamed test)" end
  local line = concat(parts, " › ")
  if str(t.project) then line = line .. " [" .. t.project .. "]" end
  return line
end

-- The failed (or flaky) tests of an attempt: the report's entries, or the
-- summary items' names.
function M.tests(attempt, which)
  local parsed = attempt.report
  if type(parsed) == "table" and type(parsed[which]) == "table" then return parsed[which] end
  local out = {}
  if which == "failed" then
    for _, name in ipairs(report.failed_tests(attempt.detail)) do out[#out + 1] = { title = name, path = { name } } end
  end
  return out
end

local function test_lines(lines, tests, indent)
  for _, t in ipairs(tests) do
    lines[#lines + 1] = indent .. M.test_line(t)
    if str(t.message) then lines[#lines + 1] = indent .. "    " .. t.message end
  end
end

function M.triggered(lane, id, url)
  return format("%s: triggered run %s%s", lane.label, n(num(id)), url and ("  " .. url) or "")
end

function M.rerunning(lane, last, id, k, of, url)
  return format("%s: re-running the failed tests of run %s (re-run %d of %d) as run %s%s", lane.label,
                n(num(last.id)), k, of, n(num(id)), url and ("  " .. url) or "")
end

--- What a line about run `id` of a lane starts with: "staging: run 7", but
-- "run 7" alone for a --run lane (labelled "run 7") while it is that run,
-- so the lane reads once ("run 7 queued", not "run 7: run 7 queued").
function M.run_lead(label, id)
  local run = "run " .. n(num(id))
  if label == nil or label == "" or label == run then return run end
  return label .. ": " .. run
end

--- The lines about one finished attempt: verdict, counts, failed and flaky tests.
function M.attempt_text(lane, attempt)
  local lines = { format("%s %s: %s (%s)", M.run_lead(lane.label, attempt.id), report.state_text(attempt.detail),
                         (attempt.verdict or "?"):upper(), M.counts_text(M.counts(attempt.detail, attempt.report))) }
  if attempt.verdict == "empty" then lines[#lines + 1] = "  the run had no tests (--allow-empty lets that pass)" end
  if attempt.verdict == "uncounted" then
    lines[#lines + 1] = "  the run ended without saying what its tests did (no counts, no test list, no report): "
                        .. "no verdict"
  end
  local failed, flaky = M.tests(attempt, "failed"), M.tests(attempt, "flaky")
  if #failed > 0 then lines[#lines + 1] = "  failed:" test_lines(lines, failed, "    ") end
  if #flaky > 0 then lines[#lines + 1] = "  flaky (passed on retry):" test_lines(lines, flaky, "    ") end
  return concat(lines, "\n")
end

--- A poll of the lane's run that failed and will be tried again: the line
-- names the lane, as the other lines do.
function M.poll_failed(lane, n_in_row, err)
  return format("%s: poll failed (%s in a row), polling on: %s", lane.label, n(num(n_in_row)), M.error_text(err))
end

function M.cancel_line(row, url)
  return format("cancel run %s: %s%s%s", n(num(row.id)), row.status, row.error and (": " .. row.error) or "",
                url and ("  " .. url) or "")
end

-- Tables ---------------------------------------------------------------------

-- Columns a text takes on a terminal: its UTF-8 characters.
local function columns(text)
  local _, count = text:gsub("[^\128-\191]", "")
  return count
end

-- text cut to `width` columns, "…" marking the cut.
local function cut(text, width)
  if columns(text) <= width then return text end
  if width <= 0 then return "" end
  local out, used = {}, 0
  for char in text:gmatch("[^\128-\191][\128-\191]*") do
    if used == width - 1 then break end
    out[#out + 1], used = char, used + 1
  end
  return concat(out) .. "…"
end

--- Lines of a table: each column as wide as its widest cell, two spaces
-- between columns, the last one not padded. heads: the column titles, or
-- {title, min = columns, cut = n} for a column that may be cut; rows: lists
-- of strings. When width (the terminal's columns) is given and the table is
-- wider, the columns that may be cut give way in the order of their `cut`:
-- first each is cut down to its min (its cells end in "…"), one before the
-- next; when all of them at their min are still too wide, the first of them
-- is left out altogether (the room it leaves goes back to the others), then
-- the next, until every line fits. Columns without a min are never cut: a
-- width narrower than those alone is exceeded.
function M.table(heads, rows, width)
  local titles, mins, natural, order = {}, {}, {}, {}
  for i, h in ipairs(heads) do
    titles[i] = type(h) == "table" and h[1] or h
    mins[i] = type(h) == "table" and h.min or nil
    natural[i] = columns(titles[i])
    if mins[i] then order[#order + 1] = i end
  end
  table.sort(order, function(a, b) return (heads[a].cut or 0) < (heads[b].cut or 0) end)
  for _, row in ipairs(rows) do
    for i = 1, #heads do natural[i] = math.max(natural[i], columns(row[i] or "")) end
  end
  local shown, widths = {}, {}
  for i = 1, #heads do shown[i], widths[i] = true, natural[i] end
  if num(width) then
    for dropped = 0, #order do
      if dropped > 0 then shown[order[dropped]] = false end
      local total = -2
      for i = 1, #heads do
        widths[i] = natural[i]
        if shown[i] then total = total + 2 + widths[i] end
      end
      for _, i in ipairs(order) do
        if shown[i] then
          local spare = math.min(total - width, widths[i] - math.max(mins[i], columns(titles[i])))
          if spare > 0 then widths[i], total = widths[i] - spare, total - spare end
        end
      end
      if total <= width then break end
    end
  end
  local last = 0
  for i = 1, #heads do if shown[i] then last = i end end
  local lines = {}
  local function line(cells)
    local parts = {}
    for i = 1, #heads do
      if shown[i] then
        local text = cut(cells[i] or "", widths[i])
        parts[#parts + 1] = i < last and (text .. (" "):rep(widths[i] - columns(text))) or text
      end
    end
    lines[#lines + 1] = (concat(parts, "  "):gsub("%s+$", ""))
  end
  line(titles)
  for _, row in ipairs(rows) do line(row) end
  return lines
end

local function cell(v)
  return num(v) and n(v) or str(v) or "?"
end

--- `empirical list`'s table of runs (as client:runs gives them): id, state,
-- environment, branch, the counts, when it was created; cut to width
-- columns (the terminal's) when given, so that no line wraps. What is cut
-- first: the creation time (down to its date), then the branch (to 8
-- columns), the environment (to 11), the counts last (to 18, "3 passed, 1
-- fail…"); when that is still too wide, the columns are left out in the
-- same order: CREATED, BRANCH, ENVIRONMENT, then TESTS. The id and state
-- are never cut.
function M.runs_table(runs, width)
  local rows = {}
  for i, r in ipairs(runs) do
    r = type(r) == "table" and r or {}
    rows[i] = { cell(r.id), cell(r.state), cell(r.environment_slug), cell(r.test_run_branch),
                M.counts_text(M.counts { testRun = r }), cell(r.created_at) }
  end
  return M.table({ "ID", "STATE", { "ENVIRONMENT", min = 11, cut = 3 }, { "BRANCH", min = 8, cut = 2 },
                   { "TESTS", min = 18, cut = 4 }, { "CREATED", min = 11, cut = 1 } }, rows, width)
end

-- The result -----------------------------------------------------------------

local function test_json(t)
  local path = {}
  for _, p in ipairs(type(t.path) == "table" and t.path or {}) do
    if type(p) == "string" then path[#path + 1] = p end
  end
  return { title = str(t.title) or path[#path] or "", path = path, file = str(t.file), line = num(t.line),
           column = num(t.column), project = str(t.project), status = str(t.status), message = str(t.message),
           error = str(t.error), retries = num(t.retries) }
end

local function attempt_json(opts, attempt)
  local r = run_of(attempt.detail)
  local failed, flaky = {}, {}
  for i, t in ipairs(M.tests(attempt, "failed")) do failed[i] = test_json(t) end
  for i, t in ipairs(M.tests(attempt, "flaky")) do flaky[i] = test_json(t) end
  return { id = attempt.id, kind = attempt.kind, url = M.link(opts, attempt.id), state = str(r.state),
           verdict = attempt.verdict, counts = M.counts(attempt.detail, attempt.report),
           duration_ms = num(r.duration), failed_tests = failed, flaky_tests = flaky,
           report_error = attempt.report_error, error_code = report.error_code(attempt.detail) }
end

--- The gate's result (the --json document) from its lanes.
function M.result(g, lanes)
  local CODE = OUTCOME_CODE
  local runs, worst, worst_code = {}, "passed", 0
  for i, lane in ipairs(lanes) do
    local outcome = lane.outcome or g.signal or "aborted"
    local code = CODE[outcome]
    if code > worst_code then worst, worst_code = outcome, code end
    local attempts = {}
    for k, a in ipairs(lane.attempts) do attempts[k] = attempt_json(g.opts, a) end
    local err = lane.err
    runs[i] = { label = lane.label, environment = lane.environment, given = lane.given or false,
                outcome = outcome, exit_code = code, note = lane.note, attempts = attempts,
                counts = report.judged_counts(lane.attempts),
                error = err and { kind = tostring(err.kind), message = tostring(err.message or err),
                                  status = num(err.status) } or nil }
  end
  if #lanes == 0 then worst, worst_code = "invalid", CODE.invalid end
  if g.signal then worst, worst_code = g.signal, CODE[g.signal] end   -- a signal ends the gate, whatever it saw
  local cancelled = {}
  for i, row in ipairs(g.cancelled or {}) do cancelled[i] = { id = row.id, status = row.status, error = row.error } end
  return { verdict = worst, exit_code = worst_code, signal = g.signal, runs = runs, cancelled = cancelled }, lanes
end

return M
