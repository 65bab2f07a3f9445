--- empirical.fake.report: the Playwright JSON report behind a run's
-- summary_url, written the way Playwright's json reporter writes it (the
-- fixtures in ../shared/fixtures/playwright show the shape): config with
-- projects, suites per file holding nested describe suites and specs, one
-- test per spec and project, results per attempt, a stats block.
--
-- It holds the run's tests: failed ones fail twice (retries = 1) with an
-- error carrying ANSI colour codes, a location and a code frame; flaky ones
-- fail, then pass; skipped ones have a skip annotation.
local api = require("empirical.fake.api")
local json = require("empirical.fake.json")

local null = json.null
local M = {}

local ROOT = "/home/runner/work/app/e2e"   -- rootDir: spec files are relative to it
local VERSION = "1.59.1"
local RETRIES, WORKERS, TIMEOUT = 1, 2, 30000

-- The first line carries colour codes, as Playwright's expect messages do.
M.DEFAULT_MESSAGE = "Error: \27[2mexpect(\27[22m\27[31mreceived\27[39m\27[2m).\27[22mtoBe\27[2m(\27[22m"
  .. "\27[32mexpected\27[39m\27[2m) // Object.is equality\27[22m\n\nExpected: \27[32m200\27[39m\n"
  .. "Received: \27[31m500\27[39m"
local CALL_LOG = "\nCall log:\n\27[2m  - waiting for getByRole('button', { name: 'Submit' })\27[22m\n"

-- What the storage behind summary_url answers for a missing or refused report.
local STORAGE_ERRORS = {
  [403] = { "AccessDenied", "Request has expired" },
  [404] = { "NoSuchKey", "The specified key does not exist." },
}

-- A stable id like Playwright's (two hex hashes), from the spec's place.
local function spec_id(...)
  local text, a, b = table.concat({ ... }, "\0"), 5381, 52711
  for i = 1, #text do
    local c = text:byte(i)
    a, b = (a * 33 + c) % 4294967296, (b * 31 + c) % 4294967296
  end
  return ("%08x%08x%04x-%08x%08x%04x"):format(a, b, a % 65536, b, a, b % 65536)
end

-- The error of a failed attempt: message, stack, location, code frame.
local function failure(t)
  local line, column = t.line + 1, t.column + 4
  local location = { file = ROOT .. "/" .. t.file, line = line, column = column }
  local message = (t.message or M.DEFAULT_MESSAGE) .. CALL_LOG
  local at = ("    at %s:%d:%d"):format(location.file, line, column)
  local snippet = ("\27[0m \27[90m %3d |\27[39m   test(\27[32m'%s'\27[39m\27[33m,\27[39m \27[36masync\27[39m "
    .. "({ page }) \27[33m=>\27[39m {\n\27[31m\27[1m>\27[22m\27[39m\27[90m %3d |\27[39m     \27[36mawait\27[39m "
    .. "expect(page)\27[33m.\27[39mtoHaveURL(\27[32m'/done'\27[39m)\27[33m;\27[39m\n \27[90m     |\27[39m"
    .. "%s\27[31m\27[1m^\27[22m\27[39m\27[0m"):format(t.line, t.title, line, (" "):rep(column))
  return { message = message, stack = message .. "\n" .. at, location = location, snippet = snippet },
         { { location = location, message = message .. "\n\n" .. snippet .. "\n\27[2m" .. at .. "\27[22m" } }
end

local function result(t, status, retry, start, seconds, index)
  local r = { workerIndex = (index - 1) % WORKERS, parallelIndex = (index - 1) % WORKERS, status = status,
              duration = math.floor(seconds * 1000), errors = json.list({}), stdout = json.list({}),
              stderr = json.list({}), retry = retry, startTime = api.iso(start), annotations = json.list({}),
              attachments = json.list({}) }
  if status == "failed" then
    r.stdout = { { text = ("navigating to /%s\n"):format((t.title:lower():gsub("%W+", "-"))) } }
    r.stderr = { { text = "[WebServer] GET /api/session 500\n" } }
    r.error, r.errors = failure(t)
    r.errorLocation = r.error.location
    local dir = ("%s/test-results/%s-%s"):format(ROOT, spec_id(t.file, t.title):sub(1, 10), t.project)
    r.attachments = { { name = "screenshot", contentType = "image/png",
                        path = ("%s/test-failed-%d.png"):format(dir, retry + 1) } }
  end
  return r
end

-- One test entry (a spec in a project) with its attempts.
local function test_entry(t, start, seconds, index)
  local attempts = ({ passed = { "passed" }, skipped = { "skipped" }, flaky = { "failed", "passed" },
                      failed = { "failed", "failed" } })[t.outcome]
  local results = {}
  for retry, status in ipairs(attempts) do
    local each = status == "skipped" and 0 or seconds / #attempts
    results[retry] = result(t, status, retry - 1, start + each * (retry - 1), each, index)
  end
  return {
    timeout = TIMEOUT, annotations = t.outcome == "skipped" and { { type = "skip" } } or json.list({}),
    expectedStatus = t.outcome == "skipped" and "skipped" or "passed",
    projectId = t.project, projectName = t.project, results = results,
    status = ({ passed = "expected", skipped = "skipped", flaky = "flaky", failed = "unexpected" })[t.outcome],
  }
end

local function child(list, key, make)
  for _, item in ipairs(list) do if item.title == key then return item end end
  list[#list + 1] = make()
  return list[#list]
end

--- The report of an ended run, as a Lua table.
function M.build(fake, run)
  local files, projects, seen = {}, {}, {}
  local stats = { expected = 0, skipped = 0, unexpected = 0, flaky = 0 }
  for i, t in ipairs(run.tests) do
    local suite = child(files, t.file, function()
      return { title = t.file, file = t.file, line = 0, column = 0, specs = {}, suites = {} }
    end)
    for depth, title in ipairs(t.describe) do
      suite = child(suite.suites, title, function()
        return { title = title, file = t.file, line = math.max(1, t.line - depth), column = 2 * depth + 4,
                 specs = {}, suites = {} }
      end)
    end
    local spec = child(suite.specs, t.title, function()
      return { title = t.title, ok = true, tags = json.list({}), tests = {}, file = t.file, line = t.line,
               column = t.column, id = spec_id(t.file, table.concat(t.describe, "\0"), t.title) }
    end)
    local start = run.start + (run.finish[i - 1] or 0)
    local entry = test_entry(t, fake.wall0 + start, run.finish[i] - (run.finish[i - 1] or 0), i)
    spec.tests[#spec.tests + 1] = entry
    spec.ok = spec.ok and entry.status ~= "unexpected"
    stats[entry.status] = stats[entry.status] + 1
    if not seen[t.project] then
      seen[t.project] = true
      projects[#projects + 1] = { outputDir = ROOT .. "/test-results", repeatEach = 1, retries = RETRIES,
                                  metadata = { actualWorkers = WORKERS }, id = t.project, name = t.project,
                                  testDir = ROOT,
                                  testIgnore = json.list({}), testMatch = { "**/*.@(spec|test).?(c|m)[jt]s?(x)" },
                                  timeout = TIMEOUT }
    end
  end
  -- Playwright leaves out `suites` where there are none, and always writes `specs`.
  local function finish(suite)
    for _, s in ipairs(suite.suites) do finish(s) end
    suite.suites = next(suite.suites) and suite.suites or nil
    suite.specs = json.list(suite.specs)
  end
  for _, f in ipairs(files) do finish(f) end
  stats.startTime, stats.duration = api.iso(fake.wall0 + run.start), run.duration * 1000
  return {
    config = {
      configFile = ROOT .. "/playwright.config.ts", rootDir = ROOT, forbidOnly = false, fullyParallel = true,
      globalSetup = null, globalTeardown = null, globalTimeout = 0, grep = {}, grepInvert = null, maxFailures = 0,
      metadata = { actualWorkers = WORKERS }, preserveOutput = "always", projects = json.list(projects), quiet = false,
      reporter = { { "html", { outputFolder = "playwright-report", open = "never" } },
                   { "json", { outputFile = "results.json" } }, { "list", null } },
      reportSlowTests = { max = 5, threshold = 300000 },
      shard = null, tags = json.list({}), updateSnapshots = "missing", updateSourceMethod = "patch",
      version = VERSION, workers = WORKERS, webServer = null,
    },
    suites = json.list(files),
    errors = json.list({}),
    stats = stats,
  }
end

local function storage_error(status)
  local e = STORAGE_ERRORS[status]
  if not e then return { status = status, content_type = "text/plain", body = "report unavailable\n" } end
  return { status = status, content_type = "application/xml",
           body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>\n')
             :format(e[1], e[2]) }
end

--- The answer to GET /reports/<id>.json: the report, or what the run's
-- scenario asks for (an HTTP error, malformed JSON, an oversized body).
function M.answer(fake, id)
  local run = fake.runs[tonumber(id)]
  if not run or run.report == "none" or api.progress(fake, run) ~= "ended" then return storage_error(404) end
  if type(run.report) == "number" then return storage_error(run.report) end
  local report = M.build(fake, run)
  if run.report == "oversized" then
    -- Padding in config.metadata, sent as chunks of one shared string.
    report.config.metadata.padding = "\1"
    local text = json.encode(report)
    local at = text:find('"\\u0001"', 1, true)
    local chunk = ("x"):rep(1024 * 1024)
    local body = { text:sub(1, at) }
    local size = #text
    while size < run.report_bytes do
      body[#body + 1] = chunk
      size = size + #chunk
    end
    body[#body + 1] = text:sub(at + 7)
    return { status = 200, body = body }
  end
  local text = json.encode(report)
  if run.report == "malformed" then text = text:sub(1, math.floor(#text / 2)) end
  return { status = 200, body = text }
end

return M
