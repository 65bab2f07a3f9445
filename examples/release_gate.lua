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
usage: release_gate.lua --environment SLUG [--environment SLUG ...] [options]
       release_gate.lua --run ID [--run ID ...] [options]

Triggers an Empirical test run per environment, waits for them together,
and exits with the worst outcome:
  0  the run passed (flaky tests pass)
  1  tests failed (after any --rerun-failed attempts)
  2  the run ended in error, was cancelled, or the --timeout passed
  3  usage, configuration or API error (bad flag, no key, 4xx, network)

The API key comes from EMPIRICALRUN_KEY; EMPIRICALRUN_API_URL overrides
the API's address.

  --environment SLUG    environment to test (repeatable; required unless --run)
  --run ID              wait on an existing run too (repeatable)
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
  environment = "list", run = "list", ["build-url"] = "value", commit = "value", branch = "value",
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
  local o = { tag = {}, meta = {}, env = {}, environment = {}, run = {} }
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
  if #o.environment == 0 and #o.run == 0 then return nil, "give --environment SLUG, or --run ID" end
  for _, id in ipairs(o.run) do
    if not id:match("^%d+$") then return nil, "--run expects a run id (digits)" end
  end
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
local function trigger_params(o, environment)
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
  return empirical.compose({ environment = environment }, {
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
  return ("%d:%02d"):format(math.floor(seconds / 60), seconds % 60)
end

-- On a terminal: one line for all runs, rewritten. In a log: a line each
-- time a run's state or counts change.
local function progress_printer(mode, out)
  local live = mode == "tty" or (mode == "auto" and core.isatty(out))
  local lines, order, open = {}, {}, false
  local printer = {}
  function printer.poll(detail, info)
    local r = detail.testRun
    local done = (r.success_count or 0) + (r.failed_count or 0) + (r.skipped_count or 0)
    local line = ("run %d %-9s %d/%d done, %d failed"):format(r.id, r.state, done, r.total_count, r.failed_count)
    if not lines[r.id] then order[#order + 1] = r.id end
    local changed = lines[r.id] ~= line
    lines[r.id] = line
    if live then
      local all = {}
      for _, id in ipairs(order) do all[#all + 1] = lines[id] end
      out:write("\r\27[K", table.concat(all, "  |  "), "  ", clock(info.elapsed))
      open = true
    elseif changed then
      out:write(line, " (", clock(info.elapsed), ")\n")
    end
    out:flush()
  end
  function printer.say(text)
    if open then out:write("\n") open = false end
    out:write(text, "\n")
    out:flush()
  end
  return printer
end

-- The gate -------------------------------------------------------------------------
-- One lane per environment (or per --run): its run, its re-runs, its outcome.

local function worst(lanes)
  local outcome, code = "passed", 0
  for _, lane in ipairs(lanes) do
    local c = EXIT[lane.outcome or "api"]
    if c > code then outcome, code = lane.outcome, c end
  end
  return outcome, code
end

local function lane_report(lane)
  local last = lane.reruns[#lane.reruns] or lane.detail
  local r = last and last.testRun or {}
  return {
    environment = lane.environment or r.environment_slug, verdict = lane.outcome, exit_code = EXIT[lane.outcome],
    run_id = lane.id0, rerun_ids = lane.rerun_ids, state = r.state,
    counts = last and { total = r.total_count, passed = r.success_count, failed = r.failed_count,
                        flaky = r.flaky_count, skipped = r.skipped_count } or nil,
    failed_tests = last and empirical.failed_tests(last) or nil,
    duration_ms = r.duration,
    superseded = lane.info and lane.info.superseded or nil,
    error = lane.err and { kind = lane.err.kind, message = lane.err.message, status = lane.err.status } or nil,
  }
end

-- Write the reports, log the summaries, and return the exit code.
local function finish(o, lanes, log)
  local outcome, code = worst(lanes)
  if o.junit then
    local runs = {}
    for _, lane in ipairs(lanes) do
      if lane.detail then runs[#runs + 1] = { lane.detail, lane.reruns } end
    end
    local f, err = io.open(o.junit, "w")
    if not f then
      log("cannot write the JUnit report: " .. err)
      if code == 0 then outcome, code = "api", EXIT.api end
    else
      f:write((assert(empirical.junit_all(runs))))
      f:close()
    end
  end
  for _, lane in ipairs(lanes) do
    if lane.detail then log(empirical.summary(lane.detail, #lane.reruns == 0 and lane.info or nil)) end
    for i, rerun in ipairs(lane.reruns) do
      log(("re-run %d of the failed tests:"):format(i))
      log(empirical.summary(rerun, i == #lane.reruns and lane.info or nil))
    end
    if lane.err then log(tostring(lane.err)) end
    if #lanes > 1 then log(("%s: %s (exit %d)"):format(lane.label, lane.outcome, EXIT[lane.outcome])) end
  end
  log(("release gate: %s (exit %d)"):format(outcome, code))
  if o.json then
    local reports = {}
    for i, lane in ipairs(lanes) do reports[i] = lane_report(lane) end
    local result = {}   -- one lane: its fields at the top too
    if #lanes == 1 then for k, v in pairs(reports[1]) do result[k] = v end end
    result.verdict, result.exit_code, result.runs = outcome, code, reports
    io.stdout:write(cjson.encode(result), "\n")
  end
  return code
end

-- Trigger what needs triggering, then wait for every lane together,
-- re-running failed tests lane by lane, until each has an outcome.
local function gate(o, log, printer)
  local lanes = {}
  for _, env in ipairs(o.environment) do lanes[#lanes + 1] = { label = env, environment = env } end
  for _, id in ipairs(o.run) do lanes[#lanes + 1] = { label = "run " .. id, id = tonumber(id) } end
  for _, lane in ipairs(lanes) do lane.reruns, lane.rerun_ids = {}, {} end

  local client, err = empirical.new { user_agent = "release-gate" }
  if not client then
    for _, lane in ipairs(lanes) do lane.outcome, lane.err = "usage", err end
    return lanes
  end
  local started = core.now()

  local to_trigger, params = {}, {}
  for _, lane in ipairs(lanes) do
    if lane.environment then
      to_trigger[#to_trigger + 1], params[#params + 1] = lane, trigger_params(o, lane.environment)
    end
  end
  local runs, errs = client:trigger_all(params)
  for i, lane in ipairs(to_trigger) do
    if runs[i] then
      lane.id = runs[i].id
      log(("triggered run %d on %s"):format(lane.id, lane.environment))
    else
      lane.outcome, lane.err = "api", errs[i]
    end
  end
  for _, lane in ipairs(lanes) do lane.id0 = lane.id end

  for attempt = 0, o.reruns do
    local active, ids = {}, {}
    for _, lane in ipairs(lanes) do
      if not lane.outcome then active[#active + 1], ids[#ids + 1] = lane, lane.id end
    end
    if #active == 0 then break end
    local left = o.timeout_s - (core.now() - started)
    local details, failures, infos = {}, {}, {}
    if left > 0 then
      details, failures, infos = client:wait_all(ids, {
        interval = o.interval_s, timeout = left, on_poll = printer.poll,
        on_poll_error = function(e, n) printer.say(("poll %d failed: %s"):format(n, tostring(e))) end,
      })
    else
      for i = 1, #active do
        failures[i] = empirical.error("timeout", "the gate's timeout passed before the re-run could be followed")
      end
    end
    for i, lane in ipairs(active) do
      local seen = details[i] or failures[i].detail
      if seen and attempt == 0 then lane.detail = seen elseif seen then lane.reruns[#lane.reruns + 1] = seen end
      if details[i] then
        lane.info = infos[i]
        local verdict = empirical.verdict(details[i])
        if verdict ~= "failed" or attempt == o.reruns then lane.outcome = verdict end
      else
        lane.err = failures[i]
        lane.outcome = failures[i].kind == "timeout" and "timeout" or "api"
      end
    end
    for _, lane in ipairs(active) do
      if not lane.outcome then
        local detail = lane.reruns[#lane.reruns] or lane.detail
        local failed = math.max(#empirical.failed_tests(detail), detail.testRun.failed_count)
        printer.say(("%s: %d test(s) failed; re-running them (%d of %d)")
          :format(lane.label, failed, attempt + 1, o.reruns))
        local again
        again, err = client:rerun(lane.id, { only_failed = true })
        if again then
          lane.id = again.id
          lane.rerun_ids[#lane.rerun_ids + 1] = again.id
          printer.say(("%s: re-run is run %d"):format(lane.label, again.id))
        else
          lane.outcome, lane.err = "api", err
        end
      end
    end
  end
  client:close()
  return lanes
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
