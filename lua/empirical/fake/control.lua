--- empirical.fake.control: the fake's state and how a test steers it:
-- scenarios (what new runs do), scripted responses, the clock, the request
-- log, and the /_fake/ control API. Each request comes here first and goes
-- on to a script, the report store or the API. The knobs are documented
-- once, in empirical.fake (init.lua).
local api = require("empirical.fake.api")
local json = require("empirical.fake.json")
local report = require("empirical.fake.report")
local server = require("empirical.fake.server")

local M = {}

local DEFAULT_TESTS = require("empirical.fake").DEFAULT_TESTS

local OUTCOMES = { passed = true, failed = true, flaky = true, skipped = true }
local STATES = { pending = true, queued = true, started = true, ended = true, error = true,
                 cancelled = true, cancelling = true }
-- The vendor's error codes of a failed run (../shared/README.md).
local ERROR_CODES = { merge_conflict = true, dispatch_failed = true, report_not_generated = true,
                      run_failed_with_error = true, worker_interrupted = true, merge_reports_failed = true }

local function one_of(set)
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function is_count(v, min)
  return type(v) == "number" and v >= min and v == math.floor(v) and v < 2 ^ 53
end

local function string_list(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _, s in pairs(v) do
    if type(s) ~= "string" or s == "" then return false end
    n = n + 1
  end
  return n == #v
end

-- What a scenario test may say, each with its check and the complaint.
local TEST_FIELDS = {
  name = { function(v) return type(v) == "string" and v ~= "" end, "a non-empty string" },
  outcome = { function(v) return OUTCOMES[v] end, "one of " .. one_of(OUTCOMES) },
  fixed_on_rerun = { function(v) return type(v) == "boolean" end, "a boolean" },
  describe = { string_list, "a list of describe titles" },
  file = { function(v) return type(v) == "string" and v ~= "" end, "a non-empty string" },
  line = { function(v) return is_count(v, 1) end, "a whole number >= 1" },
  column = { function(v) return is_count(v, 1) end, "a whole number >= 1" },
  project = { function(v) return type(v) == "string" and v ~= "" end, "a non-empty string" },
  message = { function(v) return type(v) == "string" end, "a string" },
  seconds = { function(v) return type(v) == "number" and v >= 0 and v < math.huge end, "a number >= 0" },
}

-- A test with every field the report needs: `describe` from the name's
-- "a > b > title" unless given, a file per first describe, lines in order.
local function normalize_test(t, i, lines)
  local where = ("scenario.tests[%d]"):format(i)
  if type(t) ~= "table" then return nil, where .. " must be an object" end
  for k, v in pairs(t) do
    local field = TEST_FIELDS[k]
    if not field then return nil, ("%s.%s: unknown field"):format(where, tostring(k)) end
    if not field[1](v) then return nil, ("%s.%s must be %s"):format(where, k, field[2]) end
  end
  if t.name == nil or t.outcome == nil then
    return nil, ("%s needs a name and an outcome (%s)"):format(where, one_of(OUTCOMES))
  end
  local n = {}
  for k, v in pairs(t) do n[k] = v end
  if t.describe then
    n.describe, n.title = {}, t.name
    for j, title in ipairs(t.describe) do n.describe[j] = title end
    if #t.describe > 0 then n.name = table.concat(t.describe, " > ") .. " > " .. t.name end
  else
    n.describe = {}
    for part in (t.name .. " > "):gmatch("(.-) > ") do n.describe[#n.describe + 1] = part end
    n.title = table.remove(n.describe)
  end
  local stem = (n.describe[1] or n.title):lower():gsub("[^%w\128-\255]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  n.file = t.file or ("tests/%s.spec.ts"):format(stem == "" and "test" or stem)
  lines[n.file] = (lines[n.file] or 0) + 1
  n.line = t.line or 5 * lines[n.file] + #n.describe
  n.column = t.column or 2 * #n.describe + 3
  n.project = t.project or "chromium"
  return n
end

local function check_tests(tests)
  if type(tests) ~= "table" then return nil, "scenario.tests must be a list" end
  local out, lines = {}, {}
  for i = 1, #tests do
    local t, problem = normalize_test(tests[i], i, lines)
    if not t then return nil, problem end
    out[i] = t
  end
  return out
end

-- What a scenario may say: default, and a check that returns the value to
-- keep or nil and a complaint.
local SCENARIO = {
  tests = { DEFAULT_TESTS, check_tests },
  pending_seconds = { 0, function(v) return type(v) == "number" and v >= 0 and v, "must be a number >= 0" end },
  end_state = { "ended", function(v)
    return (v == "ended" or v == "error" or v == "cancelled") and v, "must be ended, error or cancelled" end },
  error_code = { false, function(v) return ERROR_CODES[v] and v, "must be one of " .. one_of(ERROR_CODES) end },
  report = { "json", function(v)
    local ok = v == "json" or v == "none" or v == "malformed" or v == "oversized"
      or (is_count(v, 400) and v <= 599)
    return ok and v, "must be json, none, malformed, oversized or an HTTP status from 400 to 599" end },
  report_bytes = { 64 * 1024 * 1024 + 1,   -- over the client's default max_response_bytes
    function(v) return is_count(v, 1) and v, "must be a whole number of bytes" end },
  running_counts = { "numbers", function(v)
    return (v == "numbers" or v == "null" or v == "missing") and v, "must be numbers, null or missing" end },
}

--- The scenario with defaults filled in and its tests normalized, or nil
-- and what is wrong with it.
function M.check_scenario(scenario)
  if type(scenario) ~= "table" then return nil, "scenario must be an object" end
  for k in pairs(scenario) do
    if not SCENARIO[k] then return nil, ("scenario.%s: unknown field"):format(tostring(k)) end
  end
  local s = {}
  for k, field in pairs(SCENARIO) do
    local v = scenario[k]
    if v == nil then v = field[1] end
    if v ~= false then
      local kept, problem = field[2](v)
      if not kept then return nil, problem:find("^scenario") and problem or ("scenario.%s %s"):format(k, problem) end
      s[k] = kept
    end
  end
  return s
end

-- The fake ----------------------------------------------------------------------

local Fake = {}
Fake.__index = Fake

--- A fake with these options (every key of empirical.fake's DEFAULTS).
function M.new(options)
  local self = setmetatable({}, Fake)
  for k, v in pairs(options) do self[k] = v end
  local scenario, problem = M.check_scenario(options.scenario or {})
  if not scenario then return nil, problem end
  self.initial_scenario, self.initial_speed = scenario, self.speed
  self:reset()
  return self
end

-- Back to how the fake started: no runs, no log, no scripts, its scenario and speed.
function Fake:reset()
  self.scenario, self.speed = self.initial_scenario, self.initial_speed
  self.runs, self.log, self.scripts = {}, {}, {}
  self.generation = (self.generation or 0) + 1   -- what requests held across a reset belong to
  self.next_id = self.first_id
  self.wall0, self.mono0, self.offset = os.time(), server.now(), 0
end

-- Seconds of fake time since start: sped up by `speed`, moved on by `advance`.
function Fake:clock()
  return (server.now() - self.mono0) * self.speed + self.offset
end

-- The first script that matches the request, used up once per match.
function Fake:take_script(req)
  for i, s in ipairs(self.scripts) do
    if (s.method == nil or s.method == req.method) and (s.path == nil or s.path == req.path) then
      s.times = (s.times or 1) - 1
      if s.times <= 0 then table.remove(self.scripts, i) end
      return s
    end
  end
end

local ACTIONS = {}

function ACTIONS.log(self) return 200, json.list(self.log) end
function ACTIONS.reset(self) self:reset() return 200, { ok = true } end
function ACTIONS.shutdown(self) self.stopping = true return 200, { ok = true } end

function ACTIONS.script(self, body)
  if type(body) ~= "table" then return 400, { error = { message = "script: expected an object or a list" } } end
  for _, s in ipairs(body[1] and body or { body }) do self.scripts[#self.scripts + 1] = s end
  return 200, { ok = true, pending = #self.scripts }
end

function ACTIONS.scenario(self, body)
  local scenario, problem = M.check_scenario(body)
  if not scenario then return 400, { error = { message = problem } } end
  self.scenario = scenario
  return 200, { ok = true }
end

function ACTIONS.clock(self, body)
  if type(body) ~= "table" then return 400, { error = { message = "clock: expected {advance=, speed=}" } } end
  if body.advance ~= nil and type(body.advance) ~= "number" or body.speed ~= nil
     and not (type(body.speed) == "number" and body.speed >= 0) then
    return 400, { error = { message = "clock: advance must be a number, speed a number >= 0" } }
  end
  if body.advance then self.offset = self.offset + body.advance end
  if body.speed then self.offset, self.mono0, self.speed = self:clock(), server.now(), body.speed end
  return 200, { now = self:clock() }
end

-- Force a run's state ({id=, state=}), its counts frozen; no state: back to its timeline.
function ACTIONS.runs(self, body)
  local run = type(body) == "table" and self.runs[body.id]
  if not run then return 404, { error = { message = "runs: no run with that id" } } end
  if body.state == nil or body.state == json.null then
    run.forced, run.stopped_at = nil, nil
  elseif STATES[body.state] then
    api.stop(self, run, body.state)
  else
    return 400, { error = { message = "runs: state must be one of " .. one_of(STATES) } }
  end
  return 200, { ok = true }
end

-- A scripted answer: its body as given (a string) or as JSON.
local function scripted(s)
  local body = s.body
  if type(body) ~= "string" then body = json.encode(body) end
  return { status = s.status or 200, body = body, content_type = s.content_type, headers = s.headers,
           delay = s.delay, drop = s.drop, trickle = s.trickle }
end

--- The answer to one request (see empirical.fake.server).
function Fake:handle(req, conn)
  if req.route:sub(1, 7) == "/_fake/" then
    local action = ACTIONS[req.route:sub(8)]
    local status, payload = 404, { error = { message = "unknown control action" } }
    if action then
      local body, problem = nil, nil
      if req.body ~= "" then body, problem = json.decode(req.body) end
      if problem then status, payload = 400, { error = { message = "not JSON: " .. problem } }
      else status, payload = action(self, body) end
    end
    return { status = status, body = json.encode(payload) }
  end
  self.log[#self.log + 1] = { method = req.method, path = req.path, body = req.body, headers = req.headers,
                              conn = conn }
  local script = self:take_script(req)
  if script and script.status == nil and script.body == nil and not script.drop and not script.trickle then
    local generation = self.generation
    server.sleep(script.delay or 0)          -- only a delay: then the fake answers as usual
    if self.generation ~= generation then
      -- Reset meanwhile: it must not touch the runs made since. 409, which
      -- clients do not retry: a retry would act on them.
      local message = "the fake was reset while this request was held"
      return { status = 409, body = json.encode { data = json.null, error = { message = message } } }
    end
    script = nil
  end
  if script then return scripted(script) end
  local id = req.method == "GET" and req.route:match("^/reports/(%d+)%.json$")
  -- A bug of the fake's own is a 500 the test sees, not a dropped connection.
  local ok, status, payload = pcall(function()
    if id then return report.answer(self, id) end
    if req.route:sub(1, 5) ~= "/api/" then return 404, { data = json.null, error = { message = "Not found" } } end
    return api.handle(self, req)
  end)
  if not ok then
    io.stderr:write("empirical.fake: ", tostring(status), "\n")
    status, payload = 500, { data = json.null, error = { message = "fake: internal error: " .. tostring(status) } }
  end
  if type(status) == "table" then return status end   -- the report store's answer
  return { status = status, body = json.encode(payload) }
end

--- Serve until /_fake/shutdown or max_idle seconds without a request;
-- on_ready(url) once the port is bound. true, or nil and why it could not
-- listen.
function Fake:serve(on_ready)
  return server.serve {
    host = self.host, port = self.port, tls_cert = self.tls_cert, tls_key = self.tls_key, max_idle = self.max_idle,
    exit_with_pipe = self.exit_with_pipe,
    handle = function(req, conn) return self:handle(req, conn) end,
    stopped = function() return self.stopping end,
    on_ready = function(url)
      self.url = url
      self.report_origin = (self.report_origin or url):gsub("{port}", url:match(":(%d+)$")):gsub("/+$", "")
      if on_ready then on_ready(url) end
    end,
  }
end

return M
