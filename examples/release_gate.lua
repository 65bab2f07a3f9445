#!/usr/bin/env lua5.4
-- The release gate: trigger a run (or take one), wait for it with a
-- deadline, re-run the failed tests if asked, and exit with a code a CI job
-- can act on. `lua5.4 examples/release_gate.lua --help` for the flags.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../?.so;" .. package.cpath

local empirical = require("empirical")
local core = require("empirical.core")
local cjson = require("cjson")

local EXIT = { passed = 0, failed = 1, error = 2, cancelled = 2, running = 2, timeout = 2, usage = 3, api = 3 }

local USAGE = [[
usage: release_gate.lua --environment SLUG [options]
       release_gate.lua --run ID [options]

Triggers an Empirical test run for a release, waits for it, and exits:
  0  the run passed (flaky tests pass)
  1  tests failed (after any --rerun-failed attempts)
  2  the run ended in error, was cancelled, or the --timeout passed
  3  usage, configuration or API error (bad flag, no key, 4xx, network)

The API key comes from EMPIRICALRUN_KEY; EMPIRICALRUN_API_URL overrides
the API's address.

  --environment SLUG    environment to test (required unless --run)
  --run ID              wait on an existing run instead of triggering one
  --build-url URL       build.url: the deployed build under test
  --commit SHA          build.commit
  --branch NAME         build.branch
  --version V           build.version
  --test-branch NAME    branch of the test repo (not with the build flags)
  --shards N            total_shards override
  --tag TAG             only tests with this tag (repeatable)
  --meta KEY=VALUE      metadata (repeatable)
  --env NAME=VALUE      environment variable override (repeatable)
  --project-slug SLUG   the project, when the key spans several
  --timeout DURATION    deadline for the whole gate: 90, 90s, 30m, 1h30m (default 1h)
  --interval SECONDS    first delay between polls (default 5; grows to 30)
  --rerun-failed N      re-run only the failed tests, up to N times
  --junit FILE          write a JUnit XML report
  --json                print the result as JSON on stdout (progress stays on stderr)
  --progress MODE       auto (default), tty (one live line) or plain (a line per change)
  --help                this text
]]

local FLAGS = {   -- flag -> "value" | "list" | "switch"
  environment = "value", run = "value", ["build-url"] = "value", commit = "value", branch = "value",
  version = "value", ["test-branch"] = "value", shards = "value", tag = "list", meta = "list", env = "list",
  ["project-slug"] = "value", timeout = "value", interval = "value", ["rerun-failed"] = "value",
  junit = "value", json = "switch", progress = "value", help = "switch",
}

-- "90", "90s", "30m", "1h30m", "2.5m" -> seconds, or nil.
local function parse_duration(text)
  if text:match("^%d+%.?%d*$") then return tonumber(text) end
  local total, rest = 0, text
  local UNIT = { s = 1, m = 60, h = 3600 }
  while rest ~= "" do
    local n, unit, tail = rest:match("^(%d+%.?%d*)([smh])(.*)$")
    if not n then return nil end
    total, rest = total + tonumber(n) * UNIT[unit], tail
  end
  return total > 0 and total or nil
end

local function parse_args(argv)
  local o = { tag = {}, meta = {}, env = {} }
  local i = 1
  while i <= #argv do
    local name, inline = argv[i]:match("^%-%-([%w-]+)=(.*)$")
    name = name or argv[i]:match("^%-%-([%w-]+)$")
    local kind = name and FLAGS[name]
    if not kind then return nil, ("unknown argument '%s'"):format(argv[i]) end
    local value
    if kind == "switch" then
      value = true
    else
      value = inline or argv[i + 1]
      if value == nil then return nil, ("--%s needs a value"):format(name) end
      if not inline then i = i + 1 end
    end
    if kind == "list" then table.insert(o[name], value) else o[name] = value end
    i = i + 1
  end
  if o.help then return o end
  if not o.environment and not o.run then return nil, "give --environment SLUG, or --run ID" end
  if o.environment and o.run then return nil, "give --environment or --run, not both" end
  if o.run and not o.run:match("^%d+$") then return nil, "--run expects a run id (digits)" end
  o.timeout_s = parse_duration(o.timeout or "1h")
  if not o.timeout_s then
    return nil, ("--timeout: '%s' is not a duration like 90, 90s, 30m or 1h30m"):format(o.timeout)
  end
  o.interval_s = tonumber(o.interval or "5")
  if not o.interval_s or o.interval_s <= 0 then return nil, "--interval expects a positive number of seconds" end
  o.reruns = tonumber(o["rerun-failed"] or "0")
  if not o.reruns or o.reruns < 0 or o.reruns % 1 ~= 0 then return nil, "--rerun-failed expects a whole number" end
  o.progress = o.progress or "auto"
  if o.progress ~= "auto" and o.progress ~= "tty" and o.progress ~= "plain" then
    return nil, "--progress expects auto, tty or plain"
  end
  for _, pair in ipairs(o.meta) do
    if not pair:match("^[^=]+=") then return nil, ("--meta expects KEY=VALUE, got '%s'"):format(pair) end
  end
  for _, pair in ipairs(o.env) do
    if not pair:match("^[^=]+=") then return nil, ("--env expects NAME=VALUE, got '%s'"):format(pair) end
  end
  return o
end

-- The trigger the flags describe. Values go to the core as given: it checks
-- every field and names the one that is wrong.
local function trigger_params(o)
  local build
  if o["build-url"] or o.commit or o.branch or o.version then
    build = { url = o["build-url"], commit = o.commit, branch = o.branch, version = o.version }
  end
  local metadata, overrides = nil, nil
  for _, pair in ipairs(o.meta) do
    local k, v = pair:match("^([^=]+)=(.*)$")
    metadata = metadata or {}
    metadata[k] = v
  end
  for _, pair in ipairs(o.env) do
    local k, v = pair:match("^([^=]+)=(.*)$")
    overrides = overrides or {}
    overrides[#overrides + 1] = { name = k, value = v }
  end
  return empirical.compose({ environment = o.environment }, {
    build = build,
    branch = o["test-branch"],
    total_shards = o.shards and (math.tointeger(tonumber(o.shards)) or tonumber(o.shards) or o.shards),
    tags = #o.tag > 0 and o.tag or nil,
    metadata = metadata,
    environment_variables_overrides = overrides,
  })
end

-- Progress ---------------------------------------------------------------------

local function clock(seconds)
  seconds = math.floor(seconds)
  return ("%d:%02d"):format(seconds // 60, seconds % 60)
end

-- On a terminal: one line, rewritten. In a log: a line when something changed.
local function progress_printer(mode, out)
  local live = mode == "tty" or (mode == "auto" and core.isatty(out))
  local last, open = nil, false
  local printer = {}
  function printer.poll(detail, info)
    local r = detail.testRun
    local done = (r.success_count or 0) + (r.failed_count or 0) + (r.skipped_count or 0)
    local line = ("run %d %-9s %d/%d done, %d failed"):format(r.id, r.state, done, r.total_count, r.failed_count)
    if live then
      out:write("\r\27[K", line, "  ", clock(info.elapsed))
      open = true
    elseif line ~= last then
      out:write(line, " (", clock(info.elapsed), ")\n")
    end
    out:flush()
    last = line
  end
  function printer.say(text)
    if open then out:write("\n") open = false end
    out:write(text, "\n")
    out:flush()
  end
  return printer
end

-- The gate -------------------------------------------------------------------------

-- Judge, write the reports, and return the exit code.
local function finish(o, result, log)
  if o.junit and result.detail then
    local xml = assert(empirical.junit(result.detail, result.reruns))
    local f, err = io.open(o.junit, "w")
    if not f then
      log("cannot write the JUnit report: " .. err)
      result.outcome = result.outcome == "passed" and "api" or result.outcome
    else
      f:write(xml)
      f:close()
    end
  end
  local last = result.reruns[#result.reruns] or result.detail
  if result.detail then log(empirical.summary(result.detail, #result.reruns == 0 and result.info or nil)) end
  for i, rerun in ipairs(result.reruns) do
    log(("re-run %d of the failed tests:"):format(i))
    log(empirical.summary(rerun, i == #result.reruns and result.info or nil))
  end
  if result.err then log(tostring(result.err)) end
  local code = EXIT[result.outcome]
  log(("release gate: %s (exit %d)"):format(result.outcome, code))
  if o.json then
    local r = last and last.testRun or {}
    io.stdout:write(cjson.encode {
      verdict = result.outcome, exit_code = code,
      run_id = result.run_id, rerun_ids = result.rerun_ids,
      state = r.state, environment = r.environment_slug,
      counts = last and { total = r.total_count, passed = r.success_count, failed = r.failed_count,
                          flaky = r.flaky_count, skipped = r.skipped_count } or nil,
      failed_tests = last and empirical.failed_tests(last) or nil,
      duration_ms = r.duration,
      superseded = result.info and result.info.superseded or nil,
      error = result.err and { kind = result.err.kind, message = result.err.message,
                               status = result.err.status } or nil,
    }, "\n")
  end
  return code
end

local function gate(o, log, printer)
  local client, err = empirical.new { user_agent = "release-gate" }
  if not client then return { outcome = "usage", err = err, reruns = {} } end
  local started = core.now()
  local result = { reruns = {}, rerun_ids = {} }

  local id = tonumber(o.run)
  if not id then
    local run
    run, err = client:trigger(trigger_params(o))
    if not run then result.outcome, result.err = "api", err return result end
    id = run.id
    log(("triggered run %d on %s"):format(id, o.environment))
  end
  result.run_id = id

  for attempt = 0, o.reruns do
    local left = o.timeout_s - (core.now() - started)
    local detail, info
    if left > 0 then
      detail, info = client:wait(id, {
        interval = o.interval_s, timeout = left, on_poll = printer.poll,
        on_poll_error = function(e, n) printer.say(("poll %d failed: %s"):format(n, tostring(e))) end,
      })
    else
      info = empirical.error("timeout", "the gate's timeout passed before the re-run could be followed")
    end
    local seen = detail or info.detail   -- on failure, info is the error
    if seen and attempt == 0 then result.detail = seen elseif seen then result.reruns[#result.reruns + 1] = seen end
    if not detail then
      result.err = info
      result.outcome = info.kind == "timeout" and "timeout" or "api"
      break
    end
    result.info = info
    result.outcome = empirical.verdict(detail)
    if result.outcome ~= "failed" or attempt == o.reruns then break end
    local failed = empirical.failed_tests(detail)
    printer.say(("%d test(s) failed; re-running them (%d of %d)"):format(math.max(#failed, detail.testRun.failed_count),
                                                                        attempt + 1, o.reruns))
    local again
    again, err = client:rerun(id, { only_failed = true })
    if not again then result.outcome, result.err = "api", err break end
    id = again.id
    result.rerun_ids[#result.rerun_ids + 1] = id
    printer.say(("re-run is run %d"):format(id))
  end
  client:close()
  return result
end

local function main(argv)
  local o, problem = parse_args(argv)
  if not o then
    io.stderr:write("release_gate: ", problem, "\n(--help lists the flags)\n")
    return EXIT.usage
  end
  if o.help then io.stdout:write(USAGE) return 0 end
  local out = o.json and io.stderr or io.stdout
  local printer = progress_printer(o.progress, out)
  return finish(o, gate(o, printer.say, printer), printer.say)
end

os.exit(main(arg))
