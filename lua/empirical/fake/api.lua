--- empirical.fake.api: what the vendor's API does, on the fake's state.
--
-- Routes come from the core's table of operations; every request is checked
-- with empirical.encode, the client's own validation (one schema): a bad one
-- is answered 400 with encode's message, which names the field. Runs move
-- (pending ->) queued -> started -> ended | error | cancelled on the fake's
-- clock; a cancel moves a running run to cancelling, then cancelled.
local empirical = require("empirical")
local core = require("empirical.core")
local json = require("empirical.fake.json")

local null = json.null
local M = {}

-- The endpoints: the core's own table (name, method, path template, query).
local OPERATIONS = core.OPERATIONS

-- How a query string's values become the Lua values encode checks: numbers
-- where the vendor reads numbers, a list where it reads comma-separated ids.
local QUERY_NUMBERS = { id = true, page = true, per_page = true, interval_in_days = true }
local QUERY_LISTS = { environment_ids = true }
local LIST_DEFAULTS = { page = 1, per_page = 20 }

local TERMINAL = { ended = true, error = true, cancelled = true }
local RUNNING = { pending = true, queued = true, started = true }

-- Each path template as a pattern whose captures are its {names}, in order.
local ROUTES = {}
for _, op in ipairs(OPERATIONS) do
  local names = {}
  local pattern = op.path:gsub("%p", "%%%0"):gsub("%%{(%w+)%%}", function(name)
    names[#names + 1] = name
    return "([^/]+)"
  end)
  ROUTES[#ROUTES + 1] = { op = op, pattern = "^" .. pattern .. "$", names = names }
end

local function fail(status, message)
  return status, { data = null, error = { message = message } }
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. (".%03dZ"):format(math.floor((t % 1) * 1000))
end
M.iso = iso

-- Runs ------------------------------------------------------------------------

--- State and number of finished tests of a run at the current fake time.
function M.progress(fake, run)
  if run.forced then return run.forced, run.forced == "ended" and #run.tests or run.frozen end
  local now = fake:clock()
  if run.cancelled_at then return now < run.cancelled_at and "cancelling" or "cancelled", run.frozen end
  if now < run.queued_at then return "pending", 0 end
  local running = now - run.start
  if running < 0 then return "queued", 0 end
  local done = 0
  while done < #run.tests and run.finish[done + 1] <= running do done = done + 1 end
  if done < #run.tests or running < run.duration then return "started", done end
  return run.end_state, #run.tests
end

--- Stop a run where it stands, its counts frozen: in `state` (set_state),
-- or cancelled (at once, or after cancel_seconds in `cancelling`).
function M.stop(fake, run, state, reason, at_once)
  local _, done = M.progress(fake, run)
  run.forced, run.frozen, run.stopped_at = nil, done, fake:clock()
  if state == "cancelled" and reason then
    run.cancel_reason = reason
    run.cancelled_at = run.stopped_at + (at_once and 0 or fake.cancel_seconds)
  else
    run.forced = state
  end
end
local stop = M.stop

local function create_run(fake, fields, tests)
  local s = fake.scenario
  local created = fake:clock()
  local run = { id = fake.next_id, created = created, tests = tests, finish = {},
                queued_at = created + s.pending_seconds, end_state = s.end_state,
                error_code = s.error_code, report = s.report, report_bytes = s.report_bytes,
                running_counts = s.running_counts }
  local t = 0
  for i, test in ipairs(tests) do
    t = t + (test.seconds or fake.test_seconds)
    run.finish[i] = t
  end
  run.duration, run.start = t, run.queued_at + fake.queue_seconds
  for k, v in pairs(fields) do run[k] = v end
  for _, older in pairs(fake.runs) do   -- a newer trigger replaces a pending run
    if older.environment == run.environment and M.progress(fake, older) == "pending" then
      stop(fake, older, "cancelled", ("superseded by run %d"):format(run.id), true)
    end
  end
  fake.next_id = fake.next_id + 1
  fake.runs[run.id] = run
  return run
end

local function created_response(fake, run)
  return 200, { data = {
    trigger = { success = true },
    test_run = { id = run.id, state = (M.progress(fake, run)), test_run_branch = run.branch or "main",
                 created_at = iso(fake.wall0 + run.created) },
  } }
end

-- The counts of a run as its detail and list item show them.
local function counts(run, state, done)
  local c = { passed = 0, failed = 0, flaky = 0, skipped = 0 }
  for i = 1, done do c[run.tests[i].outcome] = c[run.tests[i].outcome] + 1 end
  local shown = { total_count = #run.tests, success_count = c.passed + c.flaky, failed_count = c.failed,
                  skipped_count = c.skipped, flaky_count = c.flaky }
  if RUNNING[state] and run.running_counts ~= "numbers" then
    for k in pairs(shown) do shown[k] = run.running_counts == "null" and null or nil end
  end
  return shown
end

-- The fields a run shows in a detail and in a list, at the current fake time.
local function summary(fake, run)
  local state, done = M.progress(fake, run)
  local ended = state == "ended"
  local build = run.build or {}
  local s = counts(run, state, done)
  s.id, s.state = run.id, state
  s.duration = ended and math.floor(run.duration * 1000) or null
  s.test_run_branch = run.branch or "main"
  s.environment_slug = run.environment
  s.environment_name = (run.environment:gsub("^%l", string.upper))
  s.build_url, s.build_branch, s.commit = build.url or null, build.branch or null, build.commit or null
  s.created_at = iso(fake.wall0 + run.created)
  return s, state, done
end

--- The `testRun` of a get, and the tests finished so far.
function M.detail(fake, run)
  local t, state, done = summary(fake, run)
  local ended = state == "ended"
  t.test_run_head_sha = t.commit
  local started = state ~= "pending" and state ~= "queued" and (run.stopped_at or fake:clock()) >= run.start
  t.run_started_at = started and iso(fake.wall0 + run.start) or null
  local ended_at = ended and run.start + run.duration or (state == "cancelled" and run.cancelled_at)
  t.run_ended_at = ended_at and iso(fake.wall0 + ended_at) or null
  t.summary_url = (ended and run.report ~= "none") and M.report_url(fake, run) or null
  t.rerun_source_id = run.rerun_source_id
  if state == "error" then t.error_code = run.error_code end   -- undocumented: the vendor's field is unknown
  if run.cancel_reason ~= "" then t.cancel_reason = run.cancel_reason end   -- the fake's own field
  local items = {}
  for i = 1, done do
    local test = run.tests[i]
    items[#items + 1] = { name = test.name, status = test.outcome, pw_test_id = ("t%d"):format(i),
                          slug = test.name:gsub("%W+", "-"):lower(), file = test.file, project = test.project }
  end
  return { project = { id = fake.project.id, name = fake.project.name, repo_name = fake.project.repo_name },
           testRun = t, flattenedSummaryDetails = json.list(items) }
end

function M.report_url(fake, run)
  return ("%s/reports/%d.json"):format(fake.report_origin, run.id)
end

-- Requests --------------------------------------------------------------------

-- A decimal number as a Lua number; anything else ("abc", "0x10", "") stays a
-- string, for encode to refuse by name.
local function number_or_string(text)
  return text:match("^%-?%d+%.?%d*[eE]?[-+]?%d*$") and tonumber(text) or text
end

-- The operation a request is for, and its path's values by name.
local function route(req)
  for _, r in ipairs(ROUTES) do
    if r.op.method == req.method then
      local values = { req.route:match(r.pattern) }
      if values[1] then
        local named = {}
        for i, name in ipairs(r.names) do named[name] = values[i] end
        return r.op, named
      end
    end
  end
end

-- What encode is given: the body or the query, and the path's values.
local function params_of(op, req, path_values)
  local params = {}
  if op.query and op.query[1] then
    local unescape = require("socket.url").unescape
    for pair in req.query:gmatch("[^&]+") do
      local name, value = pair:match("^([^=]*)=?(.*)$")
      name, value = unescape(name), unescape(value)
      if QUERY_NUMBERS[name] then
        value = number_or_string(value)
      elseif QUERY_LISTS[name] then
        local list = {}
        for item in (value .. ","):gmatch("([^,]*),") do list[#list + 1] = number_or_string(item) end
        value = list
      end
      params[name] = value
    end
  elseif op.body and req.body ~= "" then
    local body, err = json.decode(req.body)
    if body == nil then return nil, "Request body is not valid JSON: " .. err end
    if type(body) ~= "table" then return body end   -- for encode to refuse by name
    for name in pairs(path_values) do
      if body[name] ~= nil then return nil, name .. ": unknown field (the run's id is in the path)" end
    end
    params = body
  end
  for name, value in pairs(path_values) do params[name] = number_or_string(value) end
  return params
end

-- encode's verdict on a request: true, or nil and its message.
local function validate(fake, name, params)
  local request, err = empirical.encode(name, params, { strict = fake.strict })
  if not request then return nil, err.message end
  return true
end

local HANDLERS = {}

function HANDLERS.trigger(fake, p)
  local known = false
  for _, slug in ipairs(fake.environments) do known = known or slug == p.environment end
  if not known then
    return fail(400, ("Unknown environment '%s'. Valid environments: %s")
      :format(p.environment, table.concat(fake.environments, ", ")))
  end
  local fields = { environment = p.environment, branch = p.branch, build = p.build, metadata = p.metadata,
                  tags = p.tags, total_shards = p.total_shards }
  local run = create_run(fake, fields, fake.scenario.tests)
  return created_response(fake, run)
end

local function find(fake, id)
  local run = fake.runs[id]
  if run then return run end
  return nil, fail(404, ("Test run %s not found"):format(tostring(id)))
end

function HANDLERS.rerun(fake, p)
  local source, status, answer = find(fake, p.id)
  if not source then return status, answer end
  local tests = source.tests
  if p.only_failed == true then
    if M.progress(fake, source) ~= "ended" then
      return fail(400, "The source run must be completed to re-run only failed tests")
    end
    tests = {}
    for _, t in ipairs(source.tests) do
      if t.outcome == "failed" then
        local copy = {}
        for k, v in pairs(t) do copy[k] = v end
        copy.outcome = t.fixed_on_rerun and "passed" or "failed"
        tests[#tests + 1] = copy
      end
    end
  end
  local run = create_run(fake, { environment = source.environment, branch = source.branch, build = source.build,
                                 rerun_source_id = source.id }, tests)
  return created_response(fake, run)
end

function HANDLERS.get(fake, p)
  local run, status, answer = find(fake, p.id)
  if not run then return status, answer end
  return 200, { data = { test_run = M.detail(fake, run) } }
end

function HANDLERS.cancel(fake, p)
  local run, status, answer = find(fake, p.id)
  if not run then return status, answer end
  local state = M.progress(fake, run)
  if TERMINAL[state] then
    return fail(412, ("Test run %d is already in a terminal state (%s)"):format(run.id, state))
  end
  if state ~= "cancelling" then
    stop(fake, run, "cancelled", p.reason or "", state ~= "started")
  end
  return 200, { message = "Test run cancelled successfully" }
end

-- Does a run pass the list's filters (already checked by encode)?
local function matches(fake, run, item, p)
  if p.id and run.id ~= p.id then return false end
  if p.branch and item.test_run_branch ~= p.branch then return false end
  if p.state and item.state ~= p.state then return false end
  if p.result then   -- failed: an error, or an end with failed tests; passed: an end without
    local _, done = M.progress(fake, run)
    local failures = item.state == "ended" and counts(run, "ended", done).failed_count > 0
    local result = (item.state == "error" or failures) and "failed" or item.state == "ended" and "passed"
    if result ~= p.result then return false end
  end
  if p.environment_ids then
    local ok = false
    for _, eid in ipairs(p.environment_ids) do ok = ok or fake.environments[eid] == run.environment end
    if not ok then return false end
  end
  if p.interval_in_days and run.created < fake:clock() - p.interval_in_days * 86400 then return false end
  return true
end

function HANDLERS.list(fake, p)
  for k, v in pairs(LIST_DEFAULTS) do if p[k] == nil then p[k] = v end end
  local ids = {}
  for id in pairs(fake.runs) do ids[#ids + 1] = id end
  table.sort(ids, function(a, b) return a > b end)   -- newest first
  local items, first = {}, (p.page - 1) * p.per_page
  local total = 0
  for _, id in ipairs(ids) do
    local item = summary(fake, fake.runs[id])
    if matches(fake, fake.runs[id], item, p) then
      total = total + 1
      if total > first and total <= first + p.per_page then items[#items + 1] = item end
    end
  end
  local project = fake.project
  return 200, {
    data = { project = { id = project.id, name = project.name, slug = project.slug, repo_name = project.repo_name },
             test_runs = { items = json.list(items) } },
    pagination = { page = p.page, per_page = p.per_page, total = total, total_pages = math.ceil(total / p.per_page) },
  }
end

--- Answer an /api request: status and a value to send as JSON.
function M.handle(fake, req)
  if req.headers.authorization ~= "Bearer " .. fake.token then
    return fail(401, "Unauthorized: invalid or missing API key")
  end
  local op, path_values = route(req)
  if not op then return fail(404, "Not found") end
  local params, problem = params_of(op, req, path_values)
  if params == nil then return fail(400, problem) end
  local ok, message = validate(fake, op.name, params)
  if not ok then return fail(400, message) end
  return HANDLERS[op.name](fake, params)
end

return M
