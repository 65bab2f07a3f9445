--- empirical.fake: a local stand-in for the Empirical API, for tests, demos
-- and dry runs of your own release scripts.
--
-- It speaks HTTP/1.1 with keep-alive on 127.0.0.1, checks the bearer token,
-- validates request bodies like the vendor's schema, and moves runs through
-- (pending ->) queued -> started -> ended on a clock that can be sped up,
-- filling the counts as tests finish. A scenario says which tests fail, which
-- are flaky, whether a re-run fixes them and how runs end. A control API
-- under /_fake/ scripts responses (status, body, delay, dropped connection),
-- sets the scenario and returns the log of every /api request.
--
--   local fake = require("empirical.fake").spawn { speed = 10 }
--   local client = require("empirical").new { token = fake.token, base_url = fake.url }
--   ...
--   fake:stop()
--
-- Debian's lua-copas and lua-http do not support Lua 5.4, so the server is a
-- few coroutines over luasocket's select.
local socket = require("socket")
local cjson = require("cjson").new()

local M = {}

M.DEFAULTS = {
  host = "127.0.0.1",
  port = 0,
  token = "fake-token",
  environments = { "staging", "production" },
  speed = 1,            -- clock rate: 10 makes a 5 s run take 0.5 s
  queue_seconds = 1,    -- a new run waits this long in "queued"
  test_seconds = 0.5,   -- each test takes this long once the run started
  max_idle = 600,       -- exit after this long with no request (orphaned fakes end)
  first_id = 1,
  scenario = nil,       -- see M.DEFAULT_SCENARIO
  tls_cert = nil,       -- PEM files: with both, the fake serves https (lua-sec)
  tls_key = nil,
}

--- The tests every run holds, unless a scenario names others. outcome:
-- passed, failed, flaky (passed on retry) or skipped; fixed_on_rerun: a
-- re-run of the failed tests passes this one.
M.DEFAULT_TESTS = {
  { name = "login > signs in with email", outcome = "passed" },
  { name = "cart > adds an item", outcome = "passed" },
  { name = "checkout > pays with card", outcome = "failed", fixed_on_rerun = true },
  { name = "search > finds by name", outcome = "flaky" },
  { name = "profile > uploads an avatar", outcome = "skipped" },
  { name = "orders > lists past orders", outcome = "passed" },
}

--- What a run does. tests: as DEFAULT_TESTS; pending_seconds: a new run
-- waits this long in "pending" first, and a newer trigger for the same
-- environment cancels it meanwhile (as the vendor does); end_state: "ended",
-- or "error" / "cancelled" to end runs that way.
M.DEFAULT_SCENARIO = { tests = M.DEFAULT_TESTS, pending_seconds = 0, end_state = "ended" }

local OUTCOMES = { passed = true, failed = true, flaky = true, skipped = true }
local END_STATES = { ended = true, error = true, cancelled = true }

-- The scenario with defaults filled in, or nil and what is wrong with it.
local function check_scenario(scenario)
  if type(scenario) ~= "table" then return nil, "scenario must be an object" end
  local s = {}
  for k, v in pairs(M.DEFAULT_SCENARIO) do s[k] = scenario[k] == nil and v or scenario[k] end
  if type(s.tests) ~= "table" then return nil, "scenario.tests must be a list" end
  for i, t in ipairs(s.tests) do
    if type(t) ~= "table" or type(t.name) ~= "string" or not OUTCOMES[t.outcome] then
      return nil, ("scenario.tests[%d] needs a name and an outcome (passed, failed, flaky, skipped)"):format(i)
    end
  end
  if type(s.pending_seconds) ~= "number" or s.pending_seconds < 0 then
    return nil, "scenario.pending_seconds must be >= 0"
  end
  if not END_STATES[s.end_state] then return nil, "scenario.end_state must be ended, error or cancelled" end
  return s
end

local null = cjson.null
local MAX_HEADER_BYTES = 64 * 1024

-- Scheduler ------------------------------------------------------------------
-- A coroutine yields ("read", sock), ("write", sock) or ("sleep", until).

-- What a non-blocking socket (plain or lua-sec) is waiting for, from its error.
local WAIT_FOR = { timeout = "read", wantread = "read", wantwrite = "write" }

local function recv(sock, pattern)
  local buffer = ""
  while true do
    local data, err, partial = sock:receive(pattern, buffer)
    if data then return data end
    if not WAIT_FOR[err] then return nil, err end
    buffer = partial
    coroutine.yield(WAIT_FOR[err], sock)
  end
end

local function send(sock, data)
  local i = 1
  while i <= #data do
    local last, err, partial = sock:send(data, i)
    if last then
      i = last + 1
    elseif WAIT_FOR[err] then
      i = partial + 1
      coroutine.yield(err == "wantread" and "read" or "write", sock)
    else
      return nil, err
    end
  end
  return true
end

local function handshake(sock)
  while true do
    local ok, err = sock:dohandshake()
    if ok then return true end
    if not WAIT_FOR[err] then return nil, err end
    coroutine.yield(WAIT_FOR[err], sock)
  end
end

local function sleep(seconds)
  if seconds > 0 then coroutine.yield("sleep", socket.gettime() + seconds) end
end

local function new_scheduler()
  local waiting = {}   -- coroutine -> { mode, arg }
  local S = {}

  function S.spawn(fn, ...)
    S.resume(coroutine.create(fn), ...)
  end

  function S.resume(co, ...)
    local ok, mode, arg = coroutine.resume(co, ...)
    if not ok then
      io.stderr:write("empirical.fake: ", tostring(mode), "\n")
      waiting[co] = nil
    elseif coroutine.status(co) == "dead" then
      waiting[co] = nil
    else
      waiting[co] = { mode = mode, arg = arg }
    end
  end

  -- Wait up to max_wait for sockets and timers; resume what is ready.
  function S.step(server, on_accept, max_wait)
    local readers, writers, owner = { server }, {}, {}
    local now, timeout = socket.gettime(), max_wait
    for co, w in pairs(waiting) do
      if w.mode == "read" then
        readers[#readers + 1], owner[w.arg] = w.arg, co
      elseif w.mode == "write" then
        writers[#writers + 1], owner[w.arg] = w.arg, co
      elseif w.mode == "sleep" then
        timeout = math.min(timeout, math.max(0, w.arg - now))
      end
    end
    local readable, writable = socket.select(readers, writers, timeout)
    local ready = {}
    for _, s in ipairs(readable) do
      if s == server then on_accept() else ready[#ready + 1] = owner[s] end
    end
    for _, s in ipairs(writable) do ready[#ready + 1] = owner[s] end
    now = socket.gettime()
    for co, w in pairs(waiting) do
      if w.mode == "sleep" and w.arg <= now then ready[#ready + 1] = co end
    end
    for _, co in ipairs(ready) do
      if waiting[co] then S.resume(co) end
    end
  end

  return S
end

-- HTTP -----------------------------------------------------------------------

local REASONS = {
  [200] = "OK", [301] = "Moved Permanently", [302] = "Found", [400] = "Bad Request",
  [401] = "Unauthorized", [404] = "Not Found", [408] = "Request Timeout",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local function head(status, content_type, length, headers)
  local lines = { ("HTTP/1.1 %d %s"):format(status, REASONS[status] or "Status"),
                  "Content-Type: " .. content_type, "Content-Length: " .. length }
  for name, value in pairs(headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

local function read_request(sock)
  local line, err = recv(sock, "*l")
  while line == "" do line, err = recv(sock, "*l") end  -- stray CRLF between requests
  if not line then return nil, err end
  local method, target = line:match("^(%u+) (%S+) HTTP/1%.[01]$")
  if not method then return nil, "bad request line" end
  local headers, size = {}, 0
  while true do
    local h = recv(sock, "*l")
    if not h then return nil, "closed in headers" end
    if h == "" then break end
    size = size + #h
    if size > MAX_HEADER_BYTES then return nil, "headers too large" end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local body = ""
  local length = tonumber(headers["content-length"] or "0")
  if length and length > 0 then
    body = recv(sock, length)
    if not body then return nil, "closed in body" end
  end
  return { method = method, path = target, headers = headers, body = body }
end

-- The API --------------------------------------------------------------------

local function envelope_error(status, message)
  return status, { data = null, error = { message = message } }
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. (".%03dZ"):format(math.floor((t % 1) * 1000))
end

local Fake = {}
Fake.__index = Fake

function M.new(options)
  local self = setmetatable({}, Fake)
  for k, v in pairs(M.DEFAULTS) do self[k] = v end
  for k, v in pairs(options or {}) do self[k] = v end
  self.initial_scenario = assert(check_scenario(self.scenario or {}))
  self.initial_speed = self.speed
  self:reset()
  return self
end

-- Back to how the fake started: no runs, no log, no scripts, its scenario and speed.
function Fake:reset()
  self.scenario, self.speed = self.initial_scenario, self.initial_speed
  self.runs, self.log, self.scripts = {}, {}, {}
  self.next_id = self.first_id
  self.wall0, self.mono0, self.offset = os.time(), socket.gettime(), 0
end

-- Seconds of fake time since start: sped up by `speed`, moved on by `advance`.
function Fake:clock()
  return (socket.gettime() - self.mono0) * self.speed + self.offset
end

local function is_whole(v)
  return type(v) == "number" and v == math.floor(v) and v >= 1 and v <= 2 ^ 53
end

-- Validate a trigger body like the vendor's schema; a message or nil.
function Fake:check_trigger(body)
  if type(body) ~= "table" then return "Request body must be a JSON object" end
  if type(body.environment) ~= "string" or body.environment == "" then return "environment is required" end
  local known = false
  for _, slug in ipairs(self.environments) do known = known or slug == body.environment end
  if not known then
    return ("Unknown environment '%s'. Valid environments: %s")
      :format(body.environment, table.concat(self.environments, ", "))
  end
  if body.branch ~= nil and body.build ~= nil then return "branch cannot be used together with build" end
  if body.build ~= nil then
    if type(body.build) ~= "table" then return "build must be an object" end
    for k, v in pairs(body.build) do
      if type(v) ~= "string" then return "build." .. tostring(k) .. " must be a string" end
    end
  end
  for _, k in ipairs { "project_id", "total_shards", "rerun_source_id" } do
    if body[k] ~= nil and not (is_whole(body[k]) and body[k] >= 1) then return k .. " must be an integer >= 1" end
  end
  for _, k in ipairs { "send_notifications", "rerun_only_failed" } do
    if body[k] ~= nil and type(body[k]) ~= "boolean" then return k .. " must be a boolean" end
  end
  if body.metadata ~= nil then
    if type(body.metadata) ~= "table" then return "metadata must be an object" end
    for k, v in pairs(body.metadata) do
      if type(v) ~= "string" and type(v) ~= "number" then
        return "metadata." .. tostring(k) .. " must be a string or number"
      end
    end
  end
  if body.environment_variables_overrides ~= nil then
    if type(body.environment_variables_overrides) ~= "table" then
      return "environment_variables_overrides must be an array"
    end
    for i, o in ipairs(body.environment_variables_overrides) do
      if type(o) ~= "table" or type(o.name) ~= "string" or type(o.value) ~= "string" then
        return ("environment_variables_overrides[%d] needs string name and value"):format(i - 1)
      end
    end
  end
  if body.tags ~= nil then
    if type(body.tags) ~= "table" then return "tags must be an array" end
    for _, t in ipairs(body.tags) do if type(t) ~= "string" then return "tags must be strings" end end
  end
  return nil
end

function Fake:create_run(fields, tests)
  local run = { id = self.next_id, created = self:clock(), tests = tests,
                pending_seconds = self.scenario.pending_seconds, end_state = self.scenario.end_state }
  for k, v in pairs(fields) do run[k] = v end
  for _, older in pairs(self.runs) do   -- a newer trigger replaces a pending run
    if older.environment == run.environment and self:progress(older) == "pending" then older.state = "cancelled" end
  end
  self.next_id = self.next_id + 1
  self.runs[run.id] = run
  return run
end

-- State, finished tests and counts of a run at the current fake time.
function Fake:progress(run)
  local elapsed = self:clock() - run.created - run.pending_seconds
  local n = #run.tests
  local running = elapsed - self.queue_seconds
  local done = running < 0 and 0 or math.min(n, math.floor(running / self.test_seconds))
  local state
  if run.state then state = run.state
  elseif elapsed < 0 then state = "pending"
  elseif running < 0 then state = "queued"
  elseif done < n or running < n * self.test_seconds then state = "started"
  else state = run.end_state end
  if state == "ended" then done = n end
  return state, done
end

function Fake:created_response(run)
  return 200, { data = {
    trigger = { success = true },
    test_run = { id = run.id, state = "queued", test_run_branch = run.branch or "main",
                 created_at = iso(self.wall0 + run.created) },
  } }
end

function Fake:detail(run)
  local state, done = self:progress(run)
  local counts = { passed = 0, failed = 0, flaky = 0, skipped = 0 }
  local items = {}
  for i = 1, done do
    local t = run.tests[i]
    counts[t.outcome] = counts[t.outcome] + 1
    items[#items + 1] = { name = t.name, status = t.outcome, pw_test_id = ("t%d"):format(i),
                          slug = t.name:gsub("%W+", "-"):lower() }
  end
  local started = self.wall0 + run.created + run.pending_seconds + self.queue_seconds
  local ended = state == "ended"
  local build = run.build or {}
  return {
    project = { id = 1, name = "Fake project", repo_name = "acme/e2e-tests" },
    testRun = {
      id = run.id, state = state,
      total_count = #run.tests,
      success_count = counts.passed + counts.flaky,
      failed_count = counts.failed,
      skipped_count = counts.skipped,
      flaky_count = counts.flaky,
      duration = ended and math.floor(#run.tests * self.test_seconds * 1000) or null,
      test_run_branch = run.branch or "main",
      environment_slug = run.environment,
      environment_name = run.environment:gsub("^%l", string.upper),
      build_url = build.url or null,
      build_branch = build.branch or null,
      commit = build.commit or null,
      created_at = iso(self.wall0 + run.created),
      test_run_head_sha = build.commit or null,
      run_started_at = (state ~= "pending" and state ~= "queued") and iso(started) or null,
      run_ended_at = ended and iso(started + #run.tests * self.test_seconds) or null,
      summary_url = null,
      rerun_source_id = run.rerun_source_id,
    },
    flattenedSummaryDetails = items,
  }
end

function Fake:api(req, body)
  local method, path = req.method, req.path:gsub("%?.*$", "")
  if method == "PUT" and path == "/api/test-runs" then
    local problem = self:check_trigger(body)
    if problem then return envelope_error(400, problem) end
    local run = self:create_run({ environment = body.environment, branch = body.branch, build = body.build,
                                  metadata = body.metadata, tags = body.tags, total_shards = body.total_shards },
                                self.scenario.tests)
    return self:created_response(run)
  end
  local id, rest = path:match("^/api/test%-runs/(%d+)(.*)$")
  local source = id and self.runs[tonumber(id)]
  if id and not source and (rest == "" or rest == "/re-run") then
    return envelope_error(404, ("Test run %s not found"):format(id))
  end
  if method == "POST" and rest == "/re-run" then
    body = body or {}
    if type(body) ~= "table" then return envelope_error(400, "Request body must be a JSON object") end
    local tests = source.tests
    if body.only_failed then
      if self:progress(source) ~= "ended" then
        return envelope_error(400, "The source run must be completed to re-run only failed tests")
      end
      tests = {}
      for _, t in ipairs(source.tests) do
        if t.outcome == "failed" then
          tests[#tests + 1] = { name = t.name, outcome = t.fixed_on_rerun and "passed" or "failed" }
        end
      end
    end
    local run = self:create_run({ environment = source.environment, branch = source.branch, build = source.build,
                                  rerun_source_id = source.id }, tests)
    return self:created_response(run)
  end
  if method == "GET" and rest == "" then
    return 200, { data = { test_run = self:detail(source) } }
  end
  return envelope_error(404, "Not found")
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

function Fake:control(req, body)
  local action = req.path:match("^/_fake/(%w+)")
  if action == "log" then return 200, self.log end
  if action == "reset" then self:reset() return 200, { ok = true } end
  if action == "script" and type(body) == "table" then
    for _, s in ipairs(body[1] and body or { body }) do self.scripts[#self.scripts + 1] = s end
    return 200, { ok = true, pending = #self.scripts }
  end
  if action == "scenario" then
    local scenario, problem = check_scenario(body)
    if not scenario then return 400, { error = { message = problem } } end
    self.scenario = scenario
    return 200, { ok = true }
  end
  if action == "clock" and type(body) == "table" then
    if body.advance then self.offset = self.offset + body.advance end
    if body.speed then
      self.offset, self.mono0, self.speed = self:clock(), socket.gettime(), body.speed
    end
    return 200, { now = self:clock() }
  end
  if action == "runs" and type(body) == "table" and body.id and self.runs[body.id] then
    self.runs[body.id].state = body.state    -- force a state, e.g. "cancelled"
    return 200, { ok = true }
  end
  if action == "shutdown" then self.stopping = true return 200, { ok = true } end
  return 404, { error = { message = "unknown control action" } }
end

local function encode(value)
  if type(value) == "table" and next(value) == nil then return "[]" end
  return cjson.encode(value)
end

-- Write one scripted response; false when the connection must close.
local function play(sock, s)
  sleep(s.delay or 0)
  if s.drop == "before_response" then return false end
  local body = type(s.body) == "string" and s.body or (s.body ~= nil and cjson.encode(s.body) or "")
  local h = head(s.status or 200, s.content_type or "application/json", #body, s.headers)
  if s.drop == "mid_body" then
    send(sock, h .. body:sub(1, math.floor(#body / 2)))
    return false
  end
  if s.trickle then
    send(sock, h)
    for i = 1, #body do
      send(sock, body:sub(i, i))
      sleep(s.trickle)
    end
    return true
  end
  send(sock, h .. body)
  return true
end

function Fake:serve_connection(sock, conn)
  sock:settimeout(0)
  if self.tls_context then
    sock = require("ssl").wrap(sock, self.tls_context)
    sock:settimeout(0)
    if not handshake(sock) then sock:close() return end   -- e.g. a client that refused the certificate
  end
  while true do
    local req = read_request(sock)
    if not req then break end
    self.last_activity = socket.gettime()
    local ok, body = true, nil
    if req.body ~= "" then ok, body = pcall(cjson.decode, req.body) end
    local status, payload, script
    if req.path:sub(1, 7) == "/_fake/" then
      status, payload = self:control(req, ok and body or nil)
    else
      self.log[#self.log + 1] = { method = req.method, path = req.path, body = req.body,
                                  headers = req.headers, conn = conn }
      script = self:take_script(req)
      if script and script.status == nil and script.body == nil and not script.drop and not script.trickle then
        sleep(script.delay or 0)          -- only a delay: then the API answers as usual
        script = nil
      end
      if script then
        if not play(sock, script) then break end
      elseif req.headers.authorization ~= "Bearer " .. self.token then
        status, payload = envelope_error(401, "Unauthorized: invalid or missing API key")
      elseif not ok then
        status, payload = envelope_error(400, "Request body is not valid JSON")
      else
        status, payload = self:api(req, body)
      end
    end
    if not script then
      local text = encode(payload)
      if not send(sock, head(status, "application/json", #text) .. text) then break end
      if (req.headers.connection or ""):lower() == "close" then break end
    end
  end
  sock:close()
end

--- Serve until /_fake/shutdown, or max_idle seconds without a request.
-- on_ready(url) is called once the port is bound.
function Fake:serve(on_ready)
  local server = assert(socket.bind(self.host, self.port, 1024))   -- a fan-out connects all at once
  server:settimeout(0)
  local _, port = server:getsockname()
  local scheme = "http"
  if self.tls_cert and self.tls_key then
    self.tls_context = assert(require("ssl").newcontext {
      mode = "server", protocol = "any", certificate = self.tls_cert, key = self.tls_key,
      options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
    })
    scheme = "https"
  end
  self.url = ("%s://%s:%d"):format(scheme, self.host, port)
  if on_ready then on_ready(self.url) end
  local scheduler, conns = new_scheduler(), 0
  self.last_activity = socket.gettime()
  local function accept()
    local sock = server:accept()
    if sock then
      conns = conns + 1
      scheduler.spawn(self.serve_connection, self, sock, conns)
    end
  end
  while not self.stopping and socket.gettime() - self.last_activity < self.max_idle do
    scheduler.step(server, accept, 0.5)
  end
  server:close()
end

--- The launcher's entry: --port N --host H --token T --speed X --max-idle S
-- --environments a,b --scenario JSON (and any other DEFAULTS key)
function M.main(argv)
  local options = {}
  local i = 1
  while i <= #argv do
    local flag, value = argv[i], argv[i + 1]
    local key = flag:match("^%-%-([%w-]+)$")
    if not key or value == nil then
      io.stderr:write("usage: fake_api.lua [--port N] [--host H] [--token T] [--speed X] [--max-idle S]"
                      .. " [--environments a,b] [--scenario JSON]\n")
      os.exit(3)
    end
    key = key:gsub("-", "_")
    if key == "environments" then
      local list = {}
      for slug in value:gmatch("[^,]+") do list[#list + 1] = slug end
      options.environments = list
    elseif key == "scenario" then
      local ok, scenario = pcall(cjson.decode, value)
      if not ok then io.stderr:write("fake_api.lua: --scenario is not JSON\n") os.exit(3) end
      options.scenario = scenario
    else
      options[key] = tonumber(value) or value
    end
    i = i + 2
  end
  local fake = M.new(options)
  fake:serve(function(url)
    io.stdout:write(url, "\n")
    io.stdout:flush()
  end)
end

-- A running fake in its own process -------------------------------------------

local Handle = {}
Handle.__index = Handle

-- package.searchpath, which 5.1 lacks.
local function find_source(name)
  for template in package.path:gmatch("[^;]+") do
    local path = template:gsub("%?", (name:gsub("%.", "/")))
    local f = io.open(path)
    if f then f:close() return path end
  end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Start the fake as its own process; returns a handle with url, token and
-- control methods. options: as M.DEFAULTS, plus lua (the interpreter).
function M.spawn(options)
  options = options or {}
  local args = {}
  for k, v in pairs(options) do
    if k ~= "lua" then
      if k == "scenario" then v = cjson.encode(v)
      elseif type(v) == "table" then v = table.concat(v, ",") end
      args[#args + 1] = ("%q,%q"):format("--" .. k:gsub("_", "-"), tostring(v))
    end
  end
  local code = ("require('empirical.fake').main{%s}"):format(table.concat(args, ","))
  -- The fake runs on Lua 5.4 (or options.lua). It gets this process's module
  -- paths only when this process is that Lua too: a 5.1 or LuaJIT cpath
  -- would hand it C modules built for another Lua. Otherwise it gets the
  -- directory this file was loaded from, and the system's defaults.
  local lua = options.lua or "lua5.4"
  local same_lua = options.lua ~= nil or (_VERSION == "Lua 5.4" and not rawget(_G, "jit"))
  local env
  if same_lua then
    env = ("LUA_PATH=%s LUA_CPATH=%s"):format(shell_quote(package.path), shell_quote(package.cpath))
  else
    local root = (find_source("empirical.fake") or ""):gsub("empirical/fake%.lua$", "")
    env = ("-u LUA_CPATH LUA_PATH=%s"):format(shell_quote(root .. "?.lua;" .. root .. "?/init.lua;;"))
  end
  local command = ("exec env %s %s -e %s"):format(env, lua, shell_quote(code))
  local pipe = assert(io.popen(command, "r"))
  local url = pipe:read("*l")
  if not url or not url:match("^https?://") then
    pipe:close()
    return nil, "the fake did not start: " .. tostring(url)
  end
  return setmetatable({ url = url, token = options.token or M.DEFAULTS.token, pipe = pipe }, Handle)
end

-- Control requests go through luasocket's client (lua-sec's over TLS), not
-- the module under test. The control channel is loopback to a fake whose
-- certificate the caller may not hold, so it is not verified.
function Handle:request(method, action, value)
  local ltn12 = require("ltn12")
  local https = self.url:match("^https:")
  local http = https and require("ssl.https") or require("socket.http")
  local chunks, body = {}, value ~= nil and cjson.encode(value) or ""
  local _, status = http.request {
    url = self.url .. "/_fake/" .. action, method = method,
    source = ltn12.source.string(body), sink = ltn12.sink.table(chunks),
    headers = { ["content-length"] = #body, ["content-type"] = "application/json" },
    verify = https and "none" or nil, protocol = https and "any" or nil,
  }
  if status ~= 200 then error(("empirical.fake: %s %s answered %s"):format(method, action, tostring(status)), 2) end
  return cjson.decode(table.concat(chunks))
end

--- The /api requests the fake has seen: {method, path, body, headers, conn}.
function Handle:log() return self:request("GET", "log") end
--- Queue scripted responses: {method=, path=, status=, body=, content_type=,
-- headers=, delay=, drop=, trickle=, times=}. A script with only a delay
-- holds the request that long, then the API answers it as usual.
function Handle:script(...) return self:request("POST", "script", { ... }) end
function Handle:reset() return self:request("POST", "reset") end
--- Move fake time: {advance = seconds} and/or {speed = rate}.
function Handle:clock(change) return self:request("POST", "clock", change) end
function Handle:set_state(id, state) return self:request("POST", "runs", { id = id, state = state }) end
--- Set what new runs do: {tests=, pending_seconds=, end_state=}; reset() restores the spawn's.
function Handle:scenario(scenario) return self:request("POST", "scenario", scenario) end

function Handle:stop()
  if self.pipe then
    pcall(self.request, self, "POST", "shutdown")
    self.pipe:close()
    self.pipe = nil
  end
end

return M
