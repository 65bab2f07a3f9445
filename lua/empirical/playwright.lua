--- empirical.playwright: a Playwright JSON report (the `json` reporter, the
-- file a run's summary_url points to) read into what a release gate needs.
-- No I/O. Exported as empirical.parse_report.
--
-- parse(json_text) -> report, or nil, err (kind "decode"; "invalid" when
-- json_text is not a string). report:
--   stats   {expected, unexpected, flaky, skipped}: the report's own stats
--           block when it has one (Playwright >= 1.39), else `counted`. When
--           both exist and disagree, stats wins: it is Playwright's count.
--   counted the same four, always counted from the tests' `status`.
--   tests   an entry for every test, in the order the report lists them (a
--           suite's specs, then its child suites; one entry per test per
--           project), whatever its outcome.
--   passed, failed, flaky, skipped
--           the entries of `tests` (the same tables) whose outcome is
--           "expected", "unexpected", "flaky", "skipped", in the same order.
--           A test with another status (none Playwright writes) is only in
--           `tests`.
--   errors  {message, error} for the report's own top-level errors (a
--           global setup that threw), which no test carries.
-- entry: title, path (describe titles outermost first, without the file
-- suite and empty titles, then the title), file, line, column (the spec's),
-- project (projectName), outcome (the test's status: "expected",
-- "unexpected", "flaky", "skipped"), status (the last result's; nil with no
-- results), message (first non-blank line of the error, ANSI removed,
-- trimmed), error (the whole stripped error, at most ERROR_CAP bytes, cut
-- between UTF-8 characters), retries (results - 1, at least 0), duration
-- (milliseconds: the sum of its results' durations that are finite numbers
-- >= 0, at most the largest finite one; nil when none is: a duration of
-- another type is no duration, not a decode error).
--
-- The error is the last result's with a non-blank line. A result's text is its
-- `errors` list (what Playwright's own reporters print: message with code
-- frame; several joined by a blank line), else its older single `error`.
-- Of one error object: message, else value, else stack (first non-empty).
-- message and error are both nil when no result has a non-blank error.
--
-- Types are checked wherever a field is read: a present field of the wrong
-- type is a decode error naming its path (err.field, "suites[1].specs[2].title").
-- Absent and null fields count as absent; null list items are skipped.
-- A test without `status` gets the one Playwright would compute.
local cjson = require("cjson").new()   -- private: our settings touch no one else's
local core = require("empirical.core")

local type, rawget, next, error, pcall = type, rawget, next, error, pcall
local concat = table.concat
local tointeger = math.tointeger or function(v) return v end   -- 5.1, LuaJIT: all numbers are doubles

local M = {}

--- The fields of a parsed report, and of its entries, that are lists: JSON
-- arrays even when empty (`empirical report --json`).
M.LISTS = { "tests", "passed", "failed", "flaky", "skipped", "errors", "path" }

M.MAX_DEPTH = 1000   -- JSON nesting; a real report is about 15 + 2 per describe level
M.ERROR_CAP = 4096

cjson.decode_max_depth(M.MAX_DEPTH)
cjson.decode_invalid_numbers(false)   -- JSON as Playwright writes it: no NaN, Infinity, hex
local NULL = cjson.null

-- The four outcomes, in the order stats lists them: the one list counts,
-- stats and the entry lists read.
local OUTCOMES = { "expected", "unexpected", "flaky", "skipped" }
local LISTED = { expected = "passed", unexpected = "failed", flaky = "flaky", skipped = "skipped" }

-- Our own type errors travel as this table through error() to parse's pcall;
-- anything else raised is a bug and is raised again.
local Bad = {}

local function json_kind(v)
  if v == NULL then return "null" end
  local t = type(v)
  if t == "table" then return rawget(v, 1) ~= nil and "a list" or "an object" end
  if t == "number" then return tostring(tointeger(v) or v) end   -- 7, not 7.0, on 5.3+
  if t == "boolean" then return tostring(v) end
  return "a " .. t
end

local function bad(where, wanted, v)
  error({ [Bad] = true, field = where, text = "expected " .. wanted .. ", got " .. json_kind(v) }, 0)
end

-- cjson gives JSON arrays and objects as plain tables: an array has [1]
-- unless empty, an object never has integer keys. An empty one is either.
local function object(v, where)
  if type(v) ~= "table" or rawget(v, 1) ~= nil then bad(where, "an object", v) end
  return v
end

-- "suites[1].specs[2]" and "title" -> "suites[1].specs[2].title"; top-level fields have no prefix.
local function at(where, key)
  return where and (where .. "." .. key) or key
end

local EMPTY = {}
local function list(t, key, where)
  local v = t[key]
  if v == nil or v == NULL then return EMPTY end
  if type(v) ~= "table" or (rawget(v, 1) == nil and next(v) ~= nil) then bad(at(where, key), "a list", v) end
  return v
end

local function str(t, key, where)
  local v = t[key]
  if v == nil or v == NULL then return nil end
  if type(v) ~= "string" then bad(at(where, key), "a string", v) end
  return v
end

local function whole(v, where)
  if type(v) ~= "number" or v ~= v or v < 0 or v >= 2 ^ 53 or v % 1 ~= 0 then
    bad(where, "a whole number >= 0", v)
  end
  return tointeger(v)
end

local function opt_whole(t, key, where)
  local v = t[key]
  if v == nil or v == NULL then return nil end
  return whole(v, at(where, key))
end

--- Terminal escape sequences out: OSC (hyperlinks, titles) ended by BEL or
-- ST, CSI (colours, cursor), then any other ESC sequence, then a stray ESC.
-- C1 bytes are left alone: in UTF-8 they are parts of characters.
function M.strip(s)
  if not s:find("\27", 1, true) then return s end
  s = s:gsub("\27%][^\7\27]*\7", ""):gsub("\27%][^\7\27]*\27\\", "")
  s = s:gsub("\27%[[0-?]*[ -/]*[@-~]", "")
  s = s:gsub("\27[ -/]*[0-~]", ""):gsub("\27", "")
  return s
end

-- At most n bytes, never ending inside a UTF-8 character.
local function cap(s, n)
  if #s <= n then return s end
  local cut, steps = n, 0
  while steps < 3 and cut > 0 do
    local b = s:byte(cut + 1)
    if b < 0x80 or b >= 0xC0 then break end   -- the first byte dropped starts a character
    cut, steps = cut - 1, steps + 1
  end
  return s:sub(1, cut)
end

-- The first line with something on it, trimmed (found without patterns that
-- backtrack, so a long run of blanks stays linear).
local function first_line(s)
  for line in s:gmatch("[^\n]+") do
    local a = line:find("%S")
    if a then
      local b = #line
      while line:find("^%s", b) do b = b - 1 end
      return line:sub(a, b)
    end
  end
  return nil
end

local function error_text(e, where)
  e = object(e, where)
  local m, v, s = str(e, "message", where), str(e, "value", where), str(e, "stack", where)
  if m and m ~= "" then return m end
  if v and v ~= "" then return v end
  if s and s ~= "" then return s end
  return nil
end

-- A result's raw error text, or nil.
local function result_error(r, where)
  local texts, errs = {}, list(r, "errors", where)
  for k = 1, #errs do
    if errs[k] ~= NULL then
      texts[#texts + 1] = error_text(errs[k], where .. ".errors[" .. k .. "]")
    end
  end
  local single = r.error
  single = single ~= nil and single ~= NULL and error_text(single, where .. ".error") or nil
  if #texts > 0 then return concat(texts, "\n\n") end
  return single
end

-- message and error from a raw text: both, or both nil.
local function explain(raw)
  if not raw then return nil, nil end
  local text = M.strip(raw)
  local message = first_line(text)
  if not message then return nil, nil end
  return cap(message, M.ERROR_CAP), cap(text, M.ERROR_CAP)
end

-- Playwright's TestCase.outcome(), for a test written without `status`.
local function outcome(statuses, expected)
  local n, skipped, failures = 0, 0, 0
  for i = 1, #statuses do
    local s = statuses[i]
    if s ~= "interrupted" then
      n = n + 1
      if s == "skipped" then skipped = skipped + 1 end
      if s ~= expected then failures = failures + 1 end
    end
  end
  if skipped == n then return "skipped" end
  if failures == 0 then return "expected" end
  if failures == n then return "unexpected" end
  return "flaky"
end

-- A result's duration in milliseconds, when it is a finite number >= 0
-- (Playwright writes whole ones). Anything else (-1, a string, an object)
-- is no duration, never a reason to refuse the report: the tests' files,
-- lines and messages matter more than a time.
local function result_duration(r)
  local v = r.duration
  if type(v) ~= "number" or v ~= v or v < 0 or v >= math.huge then return nil end
  return v
end

-- The largest finite double: a sum of durations stops there, never inf.
local MAX_DURATION = 1.7976931348623157e308

local function read_test(test, where, spec, out)
  test = object(test, where)
  local status = str(test, "status", where)
  local project = str(test, "projectName", where)
  local expected = str(test, "expectedStatus", where) or "passed"
  local results, statuses, texts = list(test, "results", where), {}, {}
  local n, duration = 0, nil
  for k = 1, #results do
    local r = results[k]
    if r ~= NULL then
      local rw = where .. ".results[" .. k .. "]"
      r = object(r, rw)
      n = n + 1
      statuses[n] = str(r, "status", rw) or false   -- false: a result without one, kept in place
      texts[n] = result_error(r, rw) or false
      local ms = result_duration(r)
      if ms then duration = math.min((duration or 0) + ms, MAX_DURATION) end
    end
  end
  status = status or outcome(statuses, expected)
  if out.counted[status] then out.counted[status] = out.counted[status] + 1 end
  local message, err
  for k = n, 1, -1 do
    message, err = explain(texts[k] or nil)
    if message then break end
  end
  local path = {}
  for i = 1, #spec.describes do path[i] = spec.describes[i] end
  path[#path + 1] = spec.title
  local entry = {
    title = spec.title, path = path, file = spec.file, line = spec.line, column = spec.column,
    project = project, outcome = status, status = statuses[n] or nil, message = message, error = err,
    retries = n > 0 and n - 1 or 0, duration = duration and (tointeger(duration) or duration),
  }
  out.tests[#out.tests + 1] = entry
  local into = LISTED[status]
  if into then out[into][#out[into] + 1] = entry end
end

local function read_spec(spec, where, suite_file, describes, out)
  spec = object(spec, where)
  local info = {
    title = str(spec, "title", where) or "", file = str(spec, "file", where) or suite_file,
    line = opt_whole(spec, "line", where), column = opt_whole(spec, "column", where),
    describes = describes,
  }
  local tests = list(spec, "tests", where)
  for k = 1, #tests do
    if tests[k] ~= NULL then read_test(tests[k], where .. ".tests[" .. k .. "]", info, out) end
  end
end

-- depth 0 is a file suite: its title is the file name, not a describe.
local function read_suite(suite, where, depth, file, describes, out)
  suite = object(suite, where)
  local title = str(suite, "title", where)
  file = str(suite, "file", where) or file
  local pushed = depth > 0 and title ~= nil and title ~= ""
  if pushed then describes[#describes + 1] = title end
  local specs = list(suite, "specs", where)
  for k = 1, #specs do
    if specs[k] ~= NULL then read_spec(specs[k], where .. ".specs[" .. k .. "]", file, describes, out) end
  end
  local suites = list(suite, "suites", where)
  for k = 1, #suites do
    local child = suites[k]
    if child ~= NULL then read_suite(child, where .. ".suites[" .. k .. "]", depth + 1, file, describes, out) end
  end
  if pushed then describes[#describes] = nil end
end

local function read_report(doc)
  if type(doc) ~= "table" or rawget(doc, 1) ~= nil then
    error({ [Bad] = true, text = "expected the report to be a JSON object, got " .. json_kind(doc) }, 0)
  end
  local suites = doc.suites
  if suites == nil or suites == NULL then
    error({ [Bad] = true, field = "suites", text = "missing: not a Playwright JSON report" }, 0)
  end
  suites = list(doc, "suites")
  local out = { counted = {}, tests = {}, passed = {}, failed = {}, flaky = {}, skipped = {}, errors = {} }
  for _, k in ipairs(OUTCOMES) do out.counted[k] = 0 end
  for k = 1, #suites do
    if suites[k] ~= NULL then read_suite(suites[k], "suites[" .. k .. "]", 0, nil, {}, out) end
  end
  local errs = list(doc, "errors")
  for k = 1, #errs do
    if errs[k] ~= NULL then
      local message, err = explain(error_text(errs[k], "errors[" .. k .. "]"))
      if message then out.errors[#out.errors + 1] = { message = message, error = err } end
    end
  end
  local stats = doc.stats
  out.stats = {}
  if stats ~= nil and stats ~= NULL then object(stats, "stats") end
  for _, k in ipairs(OUTCOMES) do
    out.stats[k] = stats ~= nil and stats ~= NULL and opt_whole(stats, k, "stats") or out.counted[k]
  end
  return out
end

local function decode_error(field, text)
  return nil, core.error("decode", field and (field .. ": " .. text) or text, { field = field })
end

--- The report in json_text, or nil, err. Never raises on any input.
function M.parse(json_text)
  if type(json_text) ~= "string" then
    return nil, core.error("invalid", "parse_report: expected the report's JSON text (a string), got "
      .. type(json_text), { field = "json_text" })
  end
  if json_text:sub(1, 3) == "\239\187\191" then json_text = json_text:sub(4) end   -- a BOM from an editor
  local ok, doc = pcall(cjson.decode, json_text)
  if not ok then return decode_error(nil, "the report is not JSON: " .. tostring(doc)) end
  local done, report = pcall(read_report, doc)
  if done then return report end
  if type(report) == "table" and report[Bad] then return decode_error(report.field, report.text) end
  error(report, 0)
end

return M
