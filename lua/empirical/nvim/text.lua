--- What the plugin shows: status line parts, notifications, quickfix items.
-- No editor calls here; every value read may be missing (null in the API's
-- answer) and shows as `?`.
local report = require("empirical.report")

local M = {}

local format, concat = string.format, table.concat

--- A count, or "?" when the API gave none.
function M.count(v)
  if type(v) ~= "number" or v ~= v then return "?" end
  return format("%d", math.floor(v))
end

--- An error as one line without the module's own "empirical: " prefix (the
-- plugin adds it once).
function M.error(err)
  local s = tostring(type(err) == "table" and err or (err or "unknown error"))
  return (s:gsub("^empirical: ", ""))
end

local function sum(...)
  local total = 0
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "number" then return nil end
    total = total + v
  end
  return total
end

--- One run for the status line: "empirical #12 started 3/6, 1 failed";
-- verdict (upper case) instead of the state once it ended.
function M.status(id, detail, verdict)
  local run = type(detail) == "table" and detail.testRun
  if type(run) ~= "table" then return format("empirical #%s", M.count(id)) end
  local s = format("empirical #%s %s %s/%s", M.count(id), verdict and verdict:upper() or tostring(run.state),
                   M.count(sum(run.success_count, run.failed_count, run.skipped_count)), M.count(run.total_count))
  if run.failed_count ~= 0 then s = s .. format(", %s failed", M.count(run.failed_count)) end
  return s
end

--- One line for a run that ended: "run 12 ended: FAILED; 4 passed, 1 failed, ...".
function M.ended(detail)
  local first, second = report.summary(detail):match("^([^\n]*)\n?%s*([^\n]*)")
  if second == "" then return first end
  return first .. "; " .. second
end

--- A test of the report: "describe › title [project]". (The gate's report
-- prints the same after "file:line › ".)
function M.test_name(e)
  local path = {}
  for _, p in ipairs(type(e.path) == "table" and e.path or {}) do
    if type(p) == "string" and p ~= "" then path[#path + 1] = p end
  end
  if #path == 0 then path[1] = type(e.title) == "string" and e.title ~= "" and e.title or "(unnamed test)" end
  local name = concat(path, " › ")
  if type(e.project) == "string" and e.project ~= "" then name = name .. " [" .. e.project .. "]" end
  return name
end

--- A report's path under root, unless it is absolute.
function M.resolve(root, file)
  if file:match("^/") or file:match("^%a:[/\\]") then return file end
  file = file:gsub("^%./", "")
  return (root:gsub("/+$", "")) .. "/" .. file
end

--- Quickfix items for a parsed report: each failed test (type E) and, with
-- flaky, each flaky one (type W), at its file and line under root.
function M.quickfix_items(parsed, root, flaky)
  local items = {}
  local function add(list, kind, suffix)
    for _, e in ipairs(type(list) == "table" and list or {}) do
      local text = M.test_name(e) .. suffix
      if type(e.message) == "string" and e.message ~= "" then text = text .. ": " .. e.message end
      items[#items + 1] = {
        filename = type(e.file) == "string" and e.file ~= "" and M.resolve(root, e.file) or nil,
        lnum = type(e.line) == "number" and e.line or 0,
        col = type(e.column) == "number" and e.column or 0,
        text = text,
        type = kind,
      }
    end
  end
  add(parsed.failed, "E", "")
  if flaky then add(parsed.flaky, "W", " (flaky)") end
  return items
end

--- "6 tests: 3 passed, 1 failed, 1 flaky, 1 skipped" from a report's stats.
function M.report_counts(parsed)
  local s = type(parsed.stats) == "table" and parsed.stats or {}
  return format("%s passed, %s failed, %s flaky, %s skipped", M.count(s.expected), M.count(s.unexpected),
                M.count(s.flaky), M.count(s.skipped))
end

--- Lines for :Empirical list: one run each, newest first.
function M.list(page)
  local items = type(page.test_runs) == "table" and type(page.test_runs.items) == "table" and page.test_runs.items or {}
  local project = type(page.project) == "table" and page.project.name
  local p = type(page.pagination) == "table" and page.pagination or {}
  local lines = { format("runs of %s (%d of %s):", type(project) == "string" and project or "the project", #items,
                         M.count(p.total or #items)) }
  for _, r in ipairs(items) do
    local parts = { format("  #%s", M.count(r.id)) }
    if type(r.state) == "string" then parts[#parts + 1] = r.state end
    parts[#parts + 1] = type(r.environment_slug) == "string" and r.environment_slug or "?"
    if type(r.test_run_branch) == "string" then parts[#parts + 1] = r.test_run_branch end
    local result = format("%s/%s passed", M.count(r.success_count), M.count(r.total_count))
    if r.failed_count ~= 0 then result = result .. format(", %s failed", M.count(r.failed_count)) end
    parts[#parts + 1] = result
    if type(r.created_at) == "string" then parts[#parts + 1] = r.created_at end
    lines[#lines + 1] = concat(parts, "  ")
  end
  if #items == 0 then lines[#lines + 1] = "  (none)" end
  return lines
end

return M
