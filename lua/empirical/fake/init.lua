--- empirical.fake: a local stand-in for the Empirical API, for tests, demos
-- and dry runs of your own release scripts. Installed by its own rock,
-- empirical-fake (needs luasocket; lua-sec for https).
--
--   local fake = assert(require("empirical.fake").spawn { speed = 10 })   -- its own process
--   local client = require("empirical").new { token = fake.token, base_url = fake.url }
--   ...
--   fake:stop()
--
-- It speaks HTTP/1.1 with keep-alive, checks the bearer token (401), checks
-- every request with empirical.encode (400 {"data":null,"error":{"message":
-- encode's message}}), answers unknown runs 404, and serves all five
-- endpoints: trigger, re-run, get, cancel (running -> cancelling ->
-- cancelled, counts frozen; pending or queued -> cancelled at once; ended,
-- error or cancelled -> 412) and list (newest first, every filter, page and
-- per_page). Every ended run has a summary_url serving its Playwright JSON
-- report. Runs move (pending ->) queued -> started -> ended on a fake clock.
--
-- EVERY KNOB, in one place.
--
-- Options of spawn{} and new{} (launcher flags: --name-with-dashes VALUE;
-- tables as JSON, environments also as a,b):
--   host, port          127.0.0.1, 0 (any free port)
--   token               "fake-token": the bearer token it accepts
--   environments        {"staging", "production"}: valid slugs; the i-th has
--                       id i (the list's environment_ids filter)
--   project             {id=1, name=, slug=, repo_name=}: data.project
--   speed               1: clock rate (10 makes a 5 s run take 0.5 s)
--   queue_seconds       1: a new run waits this long in "queued"
--   test_seconds        0.5: how long a test takes, unless it says `seconds`
--   cancel_seconds      2: a started run stays "cancelling" this long
--   first_id            1: the first run's id
--   strict              false: unknown top-level request fields pass (the
--                       client's strict = false sends them); true refuses
--                       them like encode's default, to catch typos
--   report_origin       the fake's own URL: summary_url is
--                       <report_origin>/reports/<id>.json ("{port}" is
--                       replaced by the fake's port, e.g.
--                       "http://localhost:{port}" for another origin)
--   tls_cert, tls_key   PEM files: with both, https through lua-sec
--   max_idle            600: exit after this long with no request
--   exit_with_pipe      false; spawn sets it: exit once the process that
--                       started the fake closes its end of the pipe (exits,
--                       crashes), so a fake never outlives its script
--   scenario            what new runs do (below); reset() restores it
--   lua                 spawn only: the interpreter (default lua5.4)
--
-- Scenario (spawn{scenario=}, handle:scenario{}, POST /_fake/scenario):
--   tests               the tests of every run (default: M.DEFAULT_TESTS,
--                       six tests: one fails and a re-run fixes it, one
--                       flaky, one skipped)
--   pending_seconds     0: a new run waits this long in "pending"; a newer
--                       trigger for its environment cancels it meanwhile
--   end_state           "ended" | "error" | "cancelled"
--   error_code          an error run's code (merge_conflict, dispatch_failed,
--                       report_not_generated, run_failed_with_error,
--                       worker_interrupted, merge_reports_failed), shown as
--                       testRun.error_code (the vendor's field is undocumented)
--   report              "json" (default) | "none" (summary_url null) |
--                       "malformed" (cut in half) | "oversized" (report_bytes
--                       long) | an HTTP status 400-599 (e.g. 403, 404: the
--                       storage's XML error)
--   report_bytes        64 MiB + 1 (over the client's default cap): the
--                       size of an oversized report
--   running_counts      "numbers" | "null" | "missing": the counts while a
--                       run is pending, queued or started
-- A test: name, outcome (passed | failed | flaky | skipped), and optionally
--   fixed_on_rerun (a re-run of the failed tests passes it), describe (list
--   of titles; default: the name's "a > b > title" parts), file (default
--   tests/<first describe>.spec.ts), line, column, project ("chromium"),
--   message (the failure's first line; default an ANSI-coloured expect
--   message), seconds (how long it takes: steady or bursty runs).
--   flattenedSummaryDetails names a test "describe > ... > title", with its
--   file and project (as the vendor's items do).
--
-- Handle methods (the control API, no token, under /_fake/):
--   url, token                        where it listens, what it accepts
--   stop()                            POST shutdown, and wait for the process
--   log()                             GET log: every non-control request
--                                     {method, path, body, headers, conn}
--   script{...}, script(a, b)         POST script: answer the next matching
--                                     requests {method=, path= (exact), status=,
--                                     body= (string or JSON value), content_type=,
--                                     headers=, delay=, drop= ("before_response"
--                                     | "mid_body"), trickle= (seconds per body
--                                     byte), times=}; only a delay: held, then
--                                     answered as usual
--   scenario{...}                     POST scenario: what new runs do
--   clock{advance=, speed=}           POST clock: move or speed fake time
--   set_state(id, state)              POST runs {id, state}: force a state,
--                                     counts frozen; nil: back to its timeline
--   reset()                           POST reset: no runs, log or scripts; the
--                                     spawn's scenario and speed (a request
--                                     held by a delay is answered 409)
local M = {}

-- Every option: its default and type. One list for new, spawn and the flags.
M.OPTIONS = {
  host = { "127.0.0.1", "string" },
  port = { 0, "number" },
  token = { "fake-token", "string" },
  environments = { { "staging", "production" }, "list" },
  project = { { id = 1, name = "Fake project", slug = "fake-project", repo_name = "acme/e2e-tests" }, "table" },
  speed = { 1, "number" },
  queue_seconds = { 1, "number" },
  test_seconds = { 0.5, "number" },
  cancel_seconds = { 2, "number" },
  first_id = { 1, "number" },
  strict = { false, "boolean" },
  report_origin = { nil, "string" },
  tls_cert = { nil, "string" },
  tls_key = { nil, "string" },
  max_idle = { 600, "number" },
  exit_with_pipe = { false, "boolean" },
  scenario = { nil, "table" },
}

M.DEFAULTS = {}
for name, o in pairs(M.OPTIONS) do M.DEFAULTS[name] = o[1] end

local function control() return require("empirical.fake.control") end

-- The options with defaults filled in, or nil and what is wrong.
local function check_options(options, extra)
  if type(options) ~= "table" then return nil, "options must be a table" end
  local out = {}
  for name, o in pairs(M.OPTIONS) do out[name] = o[1] end
  for name, value in pairs(options) do
    local o = M.OPTIONS[name]
    if not o and not (extra and extra[name]) then return nil, ("unknown option '%s'"):format(tostring(name)) end
    local kind = o and (o[2] == "list" and "table" or o[2])
    if o and type(value) ~= kind then return nil, ("%s: expected a %s, got %s"):format(name, kind, type(value)) end
    out[name] = value
  end
  local envs = out.environments
  if #envs == 0 then return nil, "environments: expected a non-empty list of slugs" end
  for _, slug in ipairs(envs) do
    if type(slug) ~= "string" or slug == "" then return nil, "environments: expected a list of slugs" end
  end
  return out
end

--- A fake in this process (serve it with fake:serve(on_ready)), or nil, err.
function M.new(options)
  local opts, problem = check_options(options or {})
  if not opts then return nil, problem end
  return control().new(opts)
end

--- The tests of every run unless a scenario names others.
M.DEFAULT_TESTS = {
  { name = "login > signs in with email", outcome = "passed" },
  { name = "cart > adds an item", outcome = "passed" },
  { name = "checkout > pays with card", outcome = "failed", fixed_on_rerun = true },
  { name = "search > finds by name", outcome = "flaky" },
  { name = "profile > uploads an avatar", outcome = "skipped" },
  { name = "orders > lists past orders", outcome = "passed" },
}

local USAGE = "usage: %s [--port N] [--token T] [--speed X] [--environments a,b] [--scenario JSON] ...\n"
  .. "flags (tables as JSON; what each does: the README's \"The fake API\"):\n"
do
  local flags = {}
  for name, o in pairs(M.OPTIONS) do flags[#flags + 1] = ("--%s %s"):format(name:gsub("_", "-"), o[2]) end
  table.sort(flags)
  local line = " "
  for _, flag in ipairs(flags) do
    if #line + #flag > 76 then USAGE, line = USAGE .. line .. "\n", " " end
    line = line .. " " .. flag
  end
  USAGE = USAGE .. line .. "\n"
end

local function from_flag(name, value)
  local o = M.OPTIONS[name]
  if not o then return nil, ("unknown flag --%s"):format(name:gsub("_", "-")) end
  if o[2] == "number" then return tonumber(value) or nil, ("--%s: expected a number"):format(name) end
  if o[2] == "boolean" then
    if value == "true" or value == "false" then return value == "true" end
    return nil, ("--%s: expected true or false"):format(name)
  end
  if o[2] == "string" then return value end
  if name == "environments" and not value:find("^%s*%[") then
    local list = {}
    for slug in value:gmatch("[^,]+") do list[#list + 1] = slug end
    return list
  end
  local decoded = require("empirical.fake.json").decode(value)
  if type(decoded) ~= "table" then return nil, ("--%s: expected JSON"):format(name) end
  return decoded
end

--- The launcher's entry: --name value for every option (see the header).
-- Prints the URL as its first line once it listens; exits 3 on bad flags.
function M.main(argv)
  local options, i = {}, 1
  local function usage(problem)
    local name = (argv[0] or "empirical.fake"):match("[^/]*$")
    io.stderr:write(problem and (name .. ": " .. problem .. "\n") or "", USAGE:format(name))
    os.exit(problem and 3 or 0)
  end
  while i <= #argv do
    local flag, value = argv[i], argv[i + 1]
    if flag == "--help" or flag == "-h" then usage() end
    local name = flag:match("^%-%-([%w-]+)$")
    if not name or value == nil then usage(name and ("--" .. name .. " needs a value") or ("unexpected " .. flag)) end
    name = name:gsub("-", "_")
    local v, problem = from_flag(name, value)
    if v == nil then usage(problem) end
    options[name] = v
    i = i + 2
  end
  local fake, problem = M.new(options)
  if not fake then usage(problem) end
  local served, failed = fake:serve(function(url)
    io.stdout:write(url, "\n")
    io.stdout:flush()
  end)
  if served == nil and failed then
    if options.exit_with_pipe then io.stdout:write("error: ", failed, "\n") end   -- spawn's first line: why
    io.stderr:write((argv[0] or "empirical.fake"):match("[^/]*$"), ": ", failed, "\n")
    os.exit(2)
  end
end

-- A running fake in its own process --------------------------------------------

local Handle = {}
Handle.__index = Handle

-- package.searchpath, which 5.1 lacks.
local function find_file(name, path)
  for template in path:gmatch("[^;]+") do
    local file = template:gsub("%?", (name:gsub("%.", "/")))
    local f = io.open(file)
    if f then f:close() return file end
  end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Start the fake as its own process: a handle with url, token and the
-- control methods, or nil, err. options: see the header, plus lua.
function M.spawn(options)
  local opts, problem = check_options(options or {}, { lua = true })
  if not opts then return nil, problem end
  local scenario_ok, scenario_problem = control().check_scenario(opts.scenario or {})
  if not scenario_ok then return nil, scenario_problem end
  local json = require("empirical.fake.json")
  local args = {}
  for name, value in pairs(options or {}) do
    if name ~= "lua" then
      value = type(value) == "table" and json.encode(value) or tostring(value)
      args[#args + 1] = ("%q,%q"):format("--" .. name:gsub("_", "-"), value)
    end
  end
  if opts.exit_with_pipe == false and (options or {}).exit_with_pipe == nil then
    args[#args + 1] = '"--exit-with-pipe","true"'
  end
  local code = ("require('empirical.fake').main{%s}"):format(table.concat(args, ","))
  -- The fake runs on Lua 5.4 (or options.lua). It gets this process's module
  -- paths only when this process is that Lua too: a 5.1 or LuaJIT cpath
  -- would hand it C modules built for another Lua. Otherwise it gets the
  -- directory this file was loaded from, the 5.4 module built beside it in
  -- a checkout, and the system's defaults.
  local lua = options and options.lua or "lua5.4"
  local same_lua = (options and options.lua) ~= nil or (_VERSION == "Lua 5.4" and not rawget(_G, "jit"))
  local env
  if same_lua then
    env = ("LUA_PATH=%s LUA_CPATH=%s"):format(shell_quote(package.path), shell_quote(package.cpath))
  else
    local root = (find_file("empirical.fake", package.path) or ""):gsub("empirical/fake[%w/]*%.lua$", "")
    local checkout = root:gsub("lua/$", "")
    local cpath = find_file("empirical.core", checkout .. "?.so") and checkout .. "?.so;;" or ";;"
    local path = root .. "?.lua;" .. root .. "?/init.lua;;"
    env = ("LUA_CPATH=%s LUA_PATH=%s"):format(shell_quote(cpath), shell_quote(path))
  end
  local command = ("exec env %s %s -e %s"):format(env, lua, shell_quote(code))
  local pipe = assert(io.popen(command, "r"))
  local url = pipe:read("*l")
  if not url or not url:match("^https?://") then
    pipe:close()
    return nil, "the fake did not start: " .. (url and url:gsub("^error: ", "") or "it exited without a word")
  end
  return setmetatable({ url = url, token = opts.token, pipe = pipe }, Handle)
end

-- Control requests go through luasocket's client (lua-sec's over TLS), not
-- the module under test. The control channel is loopback to a fake whose
-- certificate the caller may not hold, so it is not verified.
function Handle:request(method, action, value)
  local json = require("empirical.fake.json")
  local ltn12 = require("ltn12")
  local https = self.url:match("^https:")
  local http = https and require("ssl.https") or require("socket.http")
  local chunks, body = {}, value ~= nil and json.encode(value) or ""
  local _, status = http.request {
    url = self.url .. "/_fake/" .. action, method = method,
    source = ltn12.source.string(body), sink = ltn12.sink.table(chunks),
    headers = { ["content-length"] = #body, ["content-type"] = "application/json" },
    verify = https and "none" or nil, protocol = https and "any" or nil,
  }
  local answer = json.decode(table.concat(chunks))
  if status ~= 200 then
    local message = type(answer) == "table" and type(answer.error) == "table" and answer.error.message
    error(("empirical.fake: %s %s answered %s%s"):format(method, action, tostring(status),
                                                        message and (": " .. message) or ""), 2)
  end
  return answer
end

function Handle:log() return self:request("GET", "log") end
function Handle:script(...) return self:request("POST", "script", { ... }) end
function Handle:reset() return self:request("POST", "reset") end
function Handle:clock(change) return self:request("POST", "clock", change) end
function Handle:set_state(id, state) return self:request("POST", "runs", { id = id, state = state }) end
function Handle:scenario(scenario) return self:request("POST", "scenario", scenario) end

function Handle:stop()
  if self.pipe then
    pcall(self.request, self, "POST", "shutdown")
    self.pipe:close()
    self.pipe = nil
  end
end

return M
