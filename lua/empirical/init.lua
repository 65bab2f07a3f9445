--- empirical: trigger, re-run and read Empirical end-to-end test runs.
--
-- The C core (empirical.core) validates, marshals and sends; this layer
-- fills defaults from the environment and gives the client its methods:
-- the three calls, start and the *_all fan-outs, wait, and compose.
-- Judging and reporting (verdict, summary, JUnit) live in empirical.report.
-- Every failure is `nil, err`; err.kind is one of "invalid", "config",
-- "transport", "http", "decode", "timeout". lua/empirical/_meta.lua has the
-- types.
local core = require("empirical.core")
local report = require("empirical.report")
local playwright = require("empirical.playwright")
local poll = require("empirical.poll")

local getmetatable, setmetatable, type, next, error, tostring = getmetatable, setmetatable, type, next, error, tostring
local ipairs, rawget, select, min, max, format = ipairs, rawget, select, math.min, math.max, string.format
local getenv = os.getenv

local M = {}

M.VERSION = core.VERSION
M.DEFAULT_BASE_URL = "https://api.empirical.run"

local Client = {}
Client.__index = Client
Client.__name = "empirical.client"

local function check_self(self, method)
  if getmetatable(self) ~= Client then
    error(("empirical: call client:%s(...) with a colon"):format(method), 3)
  end
end

local function fail(kind, field, text)
  return nil, core.error(kind, field .. ": " .. text, { field = field })
end

-- An environment variable's value; an empty one counts as unset, as shells
-- leave them (`EMPIRICALRUN_API_URL= empirical ...`).
local function env(name)
  local value = getenv(name)
  if value == "" then return nil end
  return value
end

--- Options of empirical.new read from the environment when not given.
M.ENVIRONMENT = {
  token = "EMPIRICALRUN_KEY",
  base_url = "EMPIRICALRUN_API_URL",
}

--- Create a client. See the README for the options and their defaults.
function M.new(options)
  if options == nil then options = {} end
  if type(options) ~= "table" then
    return fail("config", "options", "expected a table, got " .. type(options))
  end
  local opts, from = {}, {}
  for k, v in next, options do opts[k] = v end
  for option, variable in next, M.ENVIRONMENT do
    if opts[option] == nil then opts[option], from[option] = env(variable), variable end
  end
  if opts.token == nil then
    return fail("config", "token", "no token given and EMPIRICALRUN_KEY is not set")
  end
  if opts.base_url == nil then opts.base_url, from.base_url = M.DEFAULT_BASE_URL, nil end
  local on_event = opts.on_event     -- a function: the core keeps it, the schema holds only data
  if on_event ~= nil and type(on_event) ~= "function" then
    return fail("config", "on_event", "expected a function, got " .. type(on_event))
  end
  opts.on_event = nil
  local handle, err = core.client(opts, on_event)
  if not handle then
    local variable = err.field and from[err.field]
    if variable then   -- say where the bad value came from: the user never wrote it here
      err.message = err.message:gsub("^" .. err.field .. ":", err.field .. " (from " .. variable .. "):", 1)
      err.variable = variable
    end
    return nil, err
  end
  return setmetatable({ _core = handle }, Client)
end

-- The params of an operation, from the arguments its method takes: an op
-- whose path holds the run id takes (id [, opts]), the others (params).
local function params_of(op, a, b)
  if #op.path_params == 0 then
    if a == nil and not op.body then return {} end   -- list() lists everything
    return a
  end
  local params = { id = a }
  if b ~= nil then
    if type(b) ~= "table" then return fail("invalid", "opts", "expected a table, got " .. type(b)) end
    for k, v in next, b do
      if k == "id" then return fail("invalid", "opts.id", "pass the run id as the first argument") end
      params[k] = v
    end
  end
  return params
end

-- The endpoints, by name, as the core lists them: one row each.
local OPERATIONS = {}
local NAMES = {}
for _, op in ipairs(core.OPERATIONS) do OPERATIONS[op.name], NAMES[#NAMES + 1] = op, op.name end
NAMES = table.concat(NAMES, ", ")
M.OPERATIONS = core.OPERATIONS

-- One method per endpoint (client:trigger(params), client:rerun(id, opts),
-- client:get(id), client:cancel(id, opts), client:list(filter)); the README's
-- table and lua/empirical/_meta.lua say what each takes and returns.
for name, op in next, OPERATIONS do
  Client[name] = function(self, a, b)
    check_self(self, name)
    local params, err = params_of(op, a, b)
    if not params then return nil, err end
    return self._core:call(name, params)
  end
end

--- Every run the list endpoint returns for filter, across pages, lazily:
-- `for run, err in client:runs(filter, limit) do ... end`. At most limit
-- runs (default: all). A page that fails ends the loop after giving the body
-- `false, err` once, so an error is never mistaken for the end of the list.
function Client:runs(filter, limit)
  check_self(self, "runs")
  local problem
  if filter ~= nil and type(filter) ~= "table" then
    problem = select(2, fail("invalid", "filter", "expected a table, got " .. type(filter)))
  elseif limit ~= nil and not (type(limit) == "number" and limit >= 1 and limit % 1 == 0) then
    problem = select(2, fail("invalid", "limit", "expected a whole number >= 1, got " .. tostring(limit)))
  end
  local query = {}
  if type(filter) == "table" then for k, v in next, filter do query[k] = v end end
  query.page = query.page or 1
  local items, i, given, last_page = {}, 0, 0, false
  return function()
    if problem then
      local err = problem
      problem, last_page, items, i = nil, true, {}, 0
      return false, err
    end
    if limit and given >= limit then return nil end
    while i >= #items do
      if last_page then return nil end
      local page, err = self:list(query)
      if not page then
        last_page = true
        return false, err
      end
      items, i = page.test_runs and page.test_runs.items or {}, 0
      local p = page.pagination
      local per_page = query.per_page or 20
      if p and type(p.total_pages) == "number" then last_page = query.page >= p.total_pages
      else last_page = #items < per_page end        -- older pages: no pagination object
      if #items == 0 then last_page = true end
      query.page = query.page + 1
    end
    i, given = i + 1, given + 1
    return items[i]
  end
end

-- the report ------------------------------------------------------------------

-- The report URL of a run detail (get's result, or its testRun), or nil, err.
local function summary_url_of(detail)
  local run = type(detail) == "table" and (type(detail.testRun) == "table" and detail.testRun or detail) or nil
  if type(run) ~= "table" or run.id == nil then
    return fail("invalid", "detail",
                "expected a run id or a run detail (client:get's result), got " .. type(detail))
  end
  local url = run.summary_url
  if type(url) ~= "string" or url == "" then
    return fail("invalid", "summary_url", format("run %s has no report yet (its summary_url is %s; state %s)",
      tostring(run.id), url == nil and "null" or "empty", tostring(run.state)))
  end
  return url
end

-- client:start("report", detail_or_id): a request made of steps: a get
-- (when given an id), the download of summary_url, then parse_report. It
-- answers poll, wait and abort like the core's requests.
local Download = {}
Download.__index = Download
Download.__name = "empirical.request"

-- Take the step the finished request's outcome leads to.
local function advance(self, result, err)
  if self.done then return true, self.result, self.err end   -- aborted meanwhile (by a callback)
  if result ~= nil and self.stage == "get" then
    local url
    url, err = summary_url_of(result)
    if url then
      self.stage = "download"
      self.req, err = self.core:start("report", url, self.ends and max(self.ends - core.now(), 0) or nil)
      if self.req then return false end
    end
    result = nil
  elseif result ~= nil then
    result, err = playwright.parse(result)
    if not result then err.message = "the run's report: " .. err.message end
  end
  self.done, self.result, self.err = true, result, err
  return true, result, err
end

function Download:poll()
  if self.done then return true, self.result, self.err end
  local done, result, err = self.req:poll()
  if not done then return false end
  local finished = advance(self, result, err)
  return finished, self.result, self.err
end

function Download:wait()
  while not self.done do advance(self, self.req:wait()) end
  if self.result ~= nil then return self.result end
  return nil, self.err
end

function Download:abort()
  if not self.done then
    self.req:abort()
    self.done, self.result = true, nil
    self.err = core.error("interrupted", "aborted by the caller (req:abort())")
  end
  return true
end

-- limit: seconds for all the steps together (the client's deadline still
-- bounds each), or nil.
local function start_download(self, x, limit)
  if limit ~= nil and (type(limit) ~= "number" or limit ~= limit) then
    return fail("invalid", "limit", "expected a number of seconds, got " .. type(limit))
  end
  local first, url, err = { core = self._core, done = false, ends = limit and core.now() + limit or nil }
  if type(x) == "number" then
    first.stage = "get"
    first.req, err = self._core:start("get", { id = x }, limit)
  else
    url, err = summary_url_of(x)
    if url then
      first.stage = "download"
      first.req, err = self._core:start("report", url, limit)
    end
  end
  if not first.req then return nil, err end
  return setmetatable(first, Download)
end

--- The Playwright report of a run, parsed (empirical.parse_report's
-- result): downloads summary_url through the client (the token only to the
-- API's own origin; redirects followed without it). x: a run detail, or a
-- run id (then the run is read first). limit: at most this many seconds
-- for it all (a gate's deadline), or nil.
function Client:report(x, limit)
  check_self(self, "report")
  local req, err = start_download(self, x, limit)
  if not req then return nil, err end
  return req:wait()
end

-- many at once ---------------------------------------------------------------

--- Start a call without waiting for it: client:start("trigger", params),
-- ("rerun", id, opts) or ("get", id). Returns a request, or nil, err for bad
-- input (nothing sent). req:poll() never blocks and returns done, result,
-- err; req:wait() blocks and returns result or nil, err. Requests on one
-- client share its connections and run together.
function Client:start(op, a, b)
  check_self(self, "start")
  if op == "report" then return start_download(self, a, b) end
  local row = OPERATIONS[op]
  if not row then
    return fail("invalid", "op", format("unknown operation %s (%s)", tostring(op), NAMES))
  end
  local params, err = params_of(row, a, b)
  if not params then return nil, err end
  return self._core:start(op, params)
end

-- Poll started requests (false: none) until all are done; fill results and
-- errs by position.
local function settle(handle, requests, results, errs)
  local left = 0
  for i = 1, #requests do if requests[i] then left = left + 1 end end
  while left > 0 do
    for i = 1, #requests do
      local req = requests[i]
      if req then
        local done, result, err = req:poll()
        if done then
          results[i], errs[i], requests[i], left = result, err, false, left - 1
        end
      end
    end
    if left > 0 then
      local _, interrupted = handle:wait_io(0.05)
      if interrupted then   -- a caught signal: cut what is in flight; each says how it ended
        for i = 1, #requests do
          local req = requests[i]
          if req then
            req:abort(interrupted.message)   -- one whose answer came keeps it (a created run)
            local _, result, err = req:poll()
            if err then err.signal = interrupted.signal end
            results[i], errs[i], requests[i] = result, err, false
          end
        end
        return interrupted
      end
    end
  end
end

local function check_list(list, name)
  if type(list) ~= "table" then return fail("invalid", name, "expected a list, got " .. type(list)) end
  return true
end

-- Start one operation per item of list, settle them, return results, errs.
local function run_all(self, op, list, name)
  local ok, problem = check_list(list, name)
  if not ok then return nil, problem end
  local requests, results, errs = {}, {}, {}
  for i = 1, #list do
    local params, err = params_of(OPERATIONS[op], list[i])
    local req = false
    if params then req, err = self._core:start(op, params) end
    requests[i], errs[i] = req or false, err
  end
  settle(self._core, requests, results, errs)
  return results, errs
end

--- Trigger several runs together: results and errs by position
-- (results[i] or errs[i] is set for each i).
function Client:trigger_all(list)
  check_self(self, "trigger_all")
  return run_all(self, "trigger", list, "params list")
end

--- Read several runs together: details and errs by position.
function Client:get_all(ids)
  check_self(self, "get_all")
  return run_all(self, "get", ids, "ids")
end

-- wait ---------------------------------------------------------------------

--- Named defaults of client:wait, in seconds. When to poll is
-- empirical.poll's schedule: on average no more often than every interval,
-- rarely while the run's end is far, often near it.
M.WAIT_DEFAULTS = {
  interval = poll.DEFAULTS.interval,         -- the budget: one poll per interval, on average
  min_interval = poll.DEFAULTS.min_interval, -- never two polls of a run closer than this...
  max_interval = poll.DEFAULTS.max_interval, -- ...nor further apart than this (Retry-After may ask more)
  timeout = 3600,          -- the whole wait
  max_poll_failures = nil, -- failed polls in a row tolerated; nil: any number, until the timeout
  last_poll_seconds = 1,   -- the poll at the deadline gets at least this long
}

local TERMINAL = { ended = true, error = true, cancelled = true }

local WAIT_OPTIONS = {
  interval = "number", min_interval = "number", max_interval = "number", timeout = "number",
  max_poll_failures = "number", history = "table", on_poll = "function", on_poll_error = "function",
  sleep = "function", clock = "function",
}

local function check_wait_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then return fail("invalid", "opts", "expected a table, got " .. type(opts)) end
  for k, v in next, opts do
    local want = WAIT_OPTIONS[k]
    if not want then return fail("invalid", "opts." .. tostring(k), "unknown option") end
    if type(v) ~= want then return fail("invalid", "opts." .. k, format("expected a %s, got %s", want, type(v))) end
    if want == "number" and not (v > 0 and v < math.huge) then
      return fail("invalid", "opts." .. k, "must be a positive finite number, got " .. tostring(v))
    end
  end
  if opts.max_poll_failures and opts.max_poll_failures % 1 ~= 0 then
    return fail("invalid", "opts.max_poll_failures", "must be a whole number")
  end
  return opts
end

-- Callbacks observe; they never decide the outcome. An error one raises is
-- caught, reported once per wait on stderr, and the wait goes on.
local function observe(w, name, fn, ...)
  local ok, problem = pcall(fn, ...)
  if not ok and not w.reported then
    w.reported = true
    io.stderr:write(format("empirical: %s raised an error (ignored, and later ones not reported): %s\n",
                           name, tostring(problem)))
  end
end

-- One run being waited for: what wait knows of it after each poll. A failed
-- poll is tried again when the core calls it retryable (the network, a
-- deadline, 408, 429, 5xx), until the timeout or max_poll_failures in a
-- row; anything else (a 401, a 404, a garbled answer) ends the wait.
local function poll_outcome(w, detail, err, o, now)
  local info = w.info
  info.polls, info.elapsed = info.polls + 1, now - w.started
  if detail then
    w.failures, w.last = 0, detail
    local state = detail.testRun.state
    local states = info.states
    if states[#states] ~= state then states[#states + 1] = state end
    info.superseded = state == "cancelled" and states[#states - 1] == "pending"
    if o.on_poll then observe(w, "on_poll", o.on_poll, detail, info) end
    if TERMINAL[state] then w.detail = detail end
    return
  end
  w.failures = w.failures + 1
  err.detail, err.polls = w.last, info.polls
  if err.retryable ~= true then w.err = err return end
  if o.max_poll_failures and w.failures > o.max_poll_failures then
    err.poll_failures, err.poll_error = w.failures, err.message   -- for callers with their own words (the command)
    err.message = format("%d polls in a row failed (max_poll_failures = %d); the last: %s",
                         w.failures, o.max_poll_failures, err.message)
    w.err = err
    return
  end
  if o.on_poll_error then observe(w, "on_poll_error", o.on_poll_error, err, w.failures, info) end
end

-- A copy of err for one of the runs a stopped wait gives up on, with what
-- is known of that run.
local function own_error(err, w)
  local copy = core.error(err.kind, err.message)
  for k, v in next, err do copy[k] = v end
  copy.detail, copy.polls = w.last, w.info.polls
  return copy
end

-- The wait's sleep: the core's (which a caught signal ends), or the
-- caller's, for event loops. A sleep that raises or returns nil, err ends
-- the wait with that error.
local function pause(sleep, seconds)
  local ok, done, err = pcall(sleep, seconds)
  if not ok then return core.error("interrupted", "opts.sleep raised: " .. tostring(done)) end
  if done == nil and err ~= nil then return err end
  return nil
end

--- Poll several runs together until each is ended, error or cancelled.
-- Returns details, errs and infos by position: details[i] (with infos[i] =
-- {id, index, polls, elapsed, states, superseded}) or errs[i]. On the
-- deadline a run's err.kind is "timeout" and err.detail the last detail seen.
-- opts as for wait; on_poll(detail, info) sees each run after each poll.
function Client:wait_all(ids, opts)
  check_self(self, "wait_all")
  local ok, problem = check_list(ids, "ids")
  if not ok then return nil, problem end
  local given
  given, problem = check_wait_options(opts)
  if not given then return nil, problem end
  local d, o = M.WAIT_DEFAULTS, {}          -- the caller's table is never written to
  for k, v in next, d do o[k] = v end
  for k, v in next, given do o[k] = v end
  local now, sleep = o.clock or core.now, o.sleep or core.sleep
  local started = now()
  local deadline = started + o.timeout
  local waits, details, errs, infos = {}, {}, {}, {}
  for i = 1, #ids do
    local schedule, bad = poll.new { interval = o.interval, min_interval = given.min_interval,
                                     max_interval = given.max_interval, history = o.history }
    if not schedule then return nil, bad end
    waits[i] = { id = ids[i], started = started, failures = 0, schedule = schedule,
                 info = { id = ids[i], index = i, polls = 0, elapsed = 0, states = {}, superseded = false } }
  end
  local pending = #ids
  while pending > 0 do
    -- Poll, together, every run whose schedule says it is due.
    local requests, results, failures, polled, t = {}, {}, {}, {}, now()
    for i, w in ipairs(waits) do
      local req, err = false, nil
      if not (w.detail or w.err) and w.schedule:next(t) <= 0 then
        req, err = self._core:start("get", { id = w.id }, max(deadline - t, d.last_poll_seconds))
        polled[i] = true
      end
      requests[i], failures[i] = req or false, err
    end
    local stopped = settle(self._core, requests, results, failures)
    for i, w in ipairs(waits) do
      if not (w.detail or w.err) and polled[i] and (results[i] or not stopped) then
        local at = now()
        poll_outcome(w, results[i], failures[i], o, at)
        if results[i] then w.schedule:observe(results[i], at) else w.schedule:failed(failures[i], at) end
        if w.detail or w.err then pending = pending - 1 end
      end
    end
    if stopped then   -- a caught signal: what answered counts, the rest is interrupted
      for _, w in ipairs(waits) do
        if not (w.detail or w.err) then w.err = own_error(stopped, w) end
      end
      break
    end
    local left = deadline - now()
    if pending > 0 and left <= 0 then
      for _, w in ipairs(waits) do
        if not (w.detail or w.err) then
          w.err = core.error("timeout", format("run %s is still %s after %.0f s (the wait's timeout)", tostring(w.id),
                                               w.last and w.last.testRun.state or "unknown", now() - started),
                             { detail = w.last, polls = w.info.polls })
        end
      end
      break
    end
    if pending > 0 then
      local t2, due = now(), left
      for _, w in ipairs(waits) do
        if not (w.detail or w.err) then due = min(due, w.schedule:next(t2)) end
      end
      if due > 0 then
        stopped = pause(sleep, due)
        if stopped then
          for _, w in ipairs(waits) do
            if not (w.detail or w.err) then w.err = own_error(stopped, w) end
          end
          break
        end
      end
    end
  end
  for i, w in ipairs(waits) do details[i], errs[i], infos[i] = w.detail, w.err, w.info end
  return details, errs, infos
end

--- Poll a run until it is ended, error or cancelled: the final detail and
-- info {polls, elapsed, states, superseded}, or nil, err. On the deadline,
-- err.kind is "timeout" and err.detail is the last detail seen. See
-- WAIT_DEFAULTS for opts; also on_poll(detail, info) after each poll,
-- on_poll_error(err, consecutive) after each tolerated failure, and
-- sleep(seconds) and clock() for event loops (default: the core's, which
-- blocks, and which a signal caught with empirical.catch_signals() ends:
-- then err.kind is "interrupted"; and its monotonic clock).
function Client:wait(id, opts)
  check_self(self, "wait")
  if id == nil then return fail("invalid", "id", "is required") end
  local details, errs, infos = self:wait_all({ id }, opts)
  if not details then return nil, errs end
  if details[1] then return details[1], infos[1] end
  return nil, errs[1]
end

--- Release the connection. Also done by the garbage collector, and by `local c <close>` on 5.4.
function Client:close()
  check_self(self, "close")
  self._core:close()
end

Client.__close = Client.close

function Client:__tostring()
  return tostring(self._core)
end

--- Validate and marshal without I/O: {method=, path=, body=?} or nil, err.
-- opts.strict = false lets unknown top-level fields through.
function M.encode(op, params, opts)
  return core.encode(op, params, not (type(opts) == "table" and opts.strict == false))
end

local function header(headers, name)
  if type(headers) ~= "table" then return nil end
  local value = headers[name]
  if value == nil then
    for k, v in next, headers do
      if type(k) == "string" and k:lower() == name then value = v break end
    end
  end
  if type(value) == "table" then value = value[1] end
  return value
end

--- Decode a response you fetched yourself: the same result or nil, err as
-- the client's methods. headers (optional) is a table of response headers,
-- or the Content-Type string.
function M.decode(op, status, body, headers)
  local content_type, location
  if type(headers) == "string" then
    content_type = headers
  else
    content_type, location = header(headers, "content-type"), header(headers, "location")
  end
  return core.decode(op, status, body, content_type, location)
end

-- compose --------------------------------------------------------------------

local function deep_copy(value, seen)
  if type(value) ~= "table" then return value end
  if seen[value] then return seen[value] end   -- cycles stay cycles, for the validator to name
  local out = {}
  seen[value] = out
  for k, v in next, value do out[k] = deep_copy(v, seen) end
  return out
end

local function copy(value) return deep_copy(value, {}) end

-- Overrides as an ordered list of {name, value}, from either form.
local function overrides_of(value)
  if type(value) ~= "table" then return nil end
  local list = {}
  if rawget(value, 1) ~= nil then
    for _, o in ipairs(value) do list[#list + 1] = o end
  else
    local names = {}
    for name in next, value do names[#names + 1] = name end
    table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, name in ipairs(names) do list[#list + 1] = { name = name, value = value[name] } end
  end
  return list
end

local MERGE = {
  build = function(into, from)
    if type(into) ~= "table" or type(from) ~= "table" then return copy(from) end
    for k, v in next, from do into[k] = copy(v) end
    return into
  end,
  environment_variables_overrides = function(into, from)
    local list, incoming = overrides_of(into), overrides_of(from)
    if not list or not incoming then return copy(from) end
    local at = {}
    for i, o in ipairs(list) do if type(o) == "table" and o.name ~= nil then at[o.name] = i end end
    for _, o in ipairs(incoming) do
      local i = type(o) == "table" and o.name ~= nil and at[o.name]
      if i then list[i] = copy(o)
      else
        list[#list + 1] = copy(o)
        if type(o) == "table" and o.name ~= nil then at[o.name] = #list end
      end
    end
    return list
  end,
  tags = function(into, from)
    if type(into) ~= "table" or type(from) ~= "table" then return copy(from) end
    local have = {}
    for _, t in ipairs(into) do have[t] = true end
    for _, t in ipairs(from) do
      if not have[t] then into[#into + 1], have[t] = t, true end
    end
    return into
  end,
}
MERGE.metadata = MERGE.build

--- Merge trigger tables left to right into a new one; the inputs are not
-- touched. Scalars: the last wins. build, metadata: merged by key.
-- environment_variables_overrides: merged by name, either form in, a list
-- out. tags: union, in order. nil and false arguments are skipped, so
-- `compose(base, release and {...})` works. Validation happens at send time.
function M.compose(...)
  local out = {}
  for i = 1, select("#", ...) do
    local layer = select(i, ...)
    if layer then
      if type(layer) ~= "table" then
        return fail("invalid", format("compose argument %d", i), "expected a table, got " .. type(layer))
      end
      for k, v in next, layer do
        local merge = MERGE[k]
        if merge and out[k] ~= nil then out[k] = merge(out[k], v) else out[k] = copy(v) end
      end
    end
  end
  return out
end

M.verdict = report.verdict
M.summary = report.summary
M.junit = report.junit
M.junit_all = report.junit_all
M.failed_tests = report.failed_tests

--- Read a Playwright JSON report (a run's summary_url) without I/O: counts,
-- failed and flaky tests with file, line and first message line.
M.parse_report = playwright.parse

--- Make an error object like the module's own: core.error(kind, message, fields).
M.error = core.error

-- Waiting and signals (see the README's "Interrupting a wait").
M.sleep = core.sleep
M.now = core.now
M.catch_signals = core.catch_signals
M.release_signals = core.release_signals
M.pending_signal = core.pending_signal
M.terminal_width = core.terminal_width

return M
