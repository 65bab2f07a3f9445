--- empirical.cli.gate_command: `empirical gate`: flags -> empirical.gate,
-- then the files and lines CI reads (JUnit, JSON, step summary, annotations).
local commands = require("empirical.cli.commands")

local M = {}

local format = string.format

--- The trigger fields the flags describe (shared by gate and trigger). Values
-- go to the core as given: it checks every field and names the wrong one.
function M.trigger_fields(o)
  local build
  if o.build_url or o.commit or o.branch or o.build_version then
    build = { url = o.build_url, commit = o.commit, branch = o.branch, version = o.build_version }
  end
  local metadata, overrides
  for _, pair in ipairs(o.meta or {}) do
    metadata = metadata or {}
    metadata[pair[1]] = pair[2]
  end
  for _, pair in ipairs(o.env or {}) do
    overrides = overrides or {}
    overrides[#overrides + 1] = { name = pair[1], value = pair[2] }
  end
  return { build = build, branch = o.test_branch, total_shards = o.shards, tags = #(o.tag or {}) > 0 and o.tag or nil,
           metadata = metadata, environment_variables_overrides = overrides }
end

-- io's "path: reason" as the reason alone.
local function reason(path, err)
  err = tostring(err)
  if err:sub(1, #path + 2) == path .. ": " then return err:sub(#path + 3) end
  return err
end

-- A write is done when the file is closed: a full disk may say so only then.
local function write_file(path, text, mode)
  local f, err = io.open(path, mode or "w")
  if not f then return nil, reason(path, err) end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok then return nil, reason(path, werr) end
  if not closed then return nil, reason(path, cerr) end
  return true
end

--- Whether the gate will be able to write path at its end (create it, or
-- append to it): nil, or why not. A file made to find out is removed
-- again; an existing one is opened for appending and left as it was.
function M.writable(path)
  if path == "" then return "needs a file name" end
  local _, _, errno = os.rename(path, path)   -- renaming onto itself: whether it exists (2: ENOENT)
  local existed = errno ~= 2
  local f, err = io.open(path, "a")
  if not f then return "cannot be written (" .. reason(path, err) .. ")" end
  f:close()
  if not existed then os.remove(path) end
end

--- Every --environment's trigger checked before any is sent (gate and
-- trigger): nil, or the problem ({message, flag, usage}) in the flags' words.
function M.check_triggers(o, fields)
  local bad, err, params = require("empirical.gate").check_triggers(fields, o.environment)
  if not bad then return nil end
  local text, flag = require("empirical.cli.words").trigger_error(err, params, o)
  return { message = text or require("empirical.cli.render").error_text(err), flag = flag, usage = true }
end

--- The inputs the gate takes from flags and the environment, checked before
-- anything is sent: nil, or the problem ({message, flag or variable,
-- usage: whether help on the flags helps}).
function M.preflight(o, ctx, fields)
  local problem = M.check_triggers(o, fields)
  if problem then return problem end
  if o.junit then
    problem = M.writable(o.junit)
    if problem then
      return { message = format("--junit %s: %s", require("empirical.cli.words").shown(o.junit), problem),
               flag = "junit" }
    end
  end
  local summary = ctx.getenv("GITHUB_STEP_SUMMARY")
  if summary and summary ~= "" then
    problem = M.writable(summary)
    if problem then
      return { message = format("GITHUB_STEP_SUMMARY=%s: %s", require("empirical.cli.words").shown(summary),
                                problem), variable = "GITHUB_STEP_SUMMARY" }
    end
  end
end

-- The closing lines: one per lane, then the verdict. unwritten: the
-- reports that could not be written, when that alone makes the exit 3.
local function closing(result, unwritten)
  local render = require("empirical.cli.render")
  local lines = {}
  for _, run in ipairs(result.runs) do
    local last = run.attempts[#run.attempts]
    local ids = {}
    for _, a in ipairs(run.attempts) do ids[#ids + 1] = format("%s", a.id) end
    lines[#lines + 1] = format("%s: %s%s (exit %d)%s%s%s", run.label, run.outcome,
                               last and last.error_code and (" (" .. last.error_code .. ")") or "", run.exit_code,
                               run.counts and #ids > 0 and (": " .. render.counts_text(run.counts)) or "",
                               #ids > 0 and (", run " .. table.concat(ids, " then re-run ")) or "",
                               last and last.url and ("  " .. last.url) or "")
  end
  lines[#lines + 1] = format("release gate: %s%s (exit %d)", result.verdict,
                             unwritten and (", but " .. unwritten .. " could not be written") or "", result.exit_code)
  return table.concat(lines, "\n")
end

-- The client the gate drives, its waits' errors in the command's words
-- (--timeout, --max-poll-failures instead of the library's options).
local function worded(client, o)
  local words = require("empirical.cli.words")
  return setmetatable({}, { __index = function(proxy, name)
    local method = client[name]
    if type(method) ~= "function" then return method end
    local f = function(_, ...) return method(client, ...) end
    if name == "wait_all" then
      f = function(_, ids, opts)
        local details, errs, infos = method(client, ids, opts)
        if details then words.reword_wait(errs, o) end
        return details, errs, infos
      end
    end
    rawset(proxy, name, f)
    return f
  end })
end

function M.run(o, ctx)
  local empirical = require("empirical")
  local gate = require("empirical.gate")
  local publish = require("empirical.cli.publish")
  local progress = require("empirical.cli.progress")
  local problem = M.preflight(o, ctx, M.trigger_fields(o))
  if problem then return ctx:input_error(commands.COMMAND.gate, problem) end
  -- A setting the client refuses (no key, a bad --api-url) is an input
  -- error like the others: one line naming it, no runs, no reports, and in
  -- --json the error with its flag or variable (what the other commands do).
  local client, refusal = ctx:client(o)
  if not client then return ctx:failed(refusal, "gate") end
  empirical.catch_signals()
  local live, width = ctx:live(o.progress, ctx.err)
  local p = progress.new(ctx.err, live, width)
  local opts = {
    environments = o.environment, runs = o.run, trigger = M.trigger_fields(o),
    timeout = o.timeout, interval = o.interval, reruns = o.rerun_failed,
    max_poll_failures = o.max_poll_failures > 0 and o.max_poll_failures or nil,
    allow_empty = o.allow_empty, on_timeout = o.on_timeout, on_reject = o.on_reject, cancel_given = o.cancel_given,
    project_slug = o.project_slug, dashboard_url = o.dashboard_url,
  }
  if not (o.project_slug or (o.dashboard_url and not o.dashboard_url:find("{project}", 1, true))) then
    p.say("(no dashboard links: set EMPIRICALRUN_PROJECT or --project-slug)")
  end
  opts.client = worded(client, o)
  local words = require("empirical.cli.words")
  local reword = function(err, answered)
    if not answered then words.reword_unreachable({ err }, o) end
    words.reword_may_exist(err)
  end
  local result, lanes = gate.run(opts, { say = p.say, poll = p.poll, reword = reword })
  client:close()
  -- The gate's own deadline (not a wait's) in the same words, in what is published.
  for i, lane in ipairs(lanes) do
    if lane.err and not lane.err.worded and words.reword_wait({ lane.err }, o) and lane.err.worded then
      result.runs[i].error.message = lane.err.message
    end
  end
  opts.client = nil
  p.close()
  -- A report CI reads that could not be written (a full disk: the paths
  -- were checked before the start) fails a gate that passed: exit 3, set
  -- in the result at once, so that what is written after (the step
  -- summary, JSON, the closing line) says the exit the command returns.
  local passed, failures, names = result.exit_code == 0, {}, {}
  local function unwritten(what, where, err, source)
    local line = format("could not write %s (%s): %s", what, where, tostring(err))
    ctx:say("empirical gate: " .. line)
    if not passed then return end
    result.exit_code = commands.CODE.usage
    failures[#failures + 1], names[#names + 1] = line, what
    result.error = result.error or { kind = "io" }
    result.error.message = table.concat(failures, "; ")
    for k, v in pairs(source) do result.error[k] = v end
  end
  if o.junit then
    local ok, err = write_file(o.junit, publish.junit(result, lanes, opts))
    if not ok then unwritten("the JUnit report", "--junit " .. words.shown(o.junit), err, { flag = "junit" }) end
  end
  local summary = ctx.getenv("GITHUB_STEP_SUMMARY")
  if summary and summary ~= "" then
    local text = publish.markdown(result)
    if #failures > 0 then text = text .. format("\n%s, so the gate exits %d.\n", failures[1], result.exit_code) end
    local ok, err = write_file(summary, text, "a")
    if not ok then
      unwritten("the step summary", "GITHUB_STEP_SUMMARY=" .. words.shown(summary), err,
                { variable = "GITHUB_STEP_SUMMARY" })
    end
  end
  local stream = o.json and ctx.err or ctx.out
  if ctx.getenv("GITHUB_ACTIONS") == "true" then
    for _, line in ipairs(publish.annotations(result)) do stream:write(line, "\n") end
  end
  if result.signal then
    local maybe = {}
    for _, lane in ipairs(lanes) do if lane.maybe_created then maybe[#maybe + 1] = lane.label end end
    ctx:say(require("empirical.gate").signal_line(result.signal, result.cancelled, maybe))
  end
  if o.json then
    ctx:document(publish.json(result))
  else
    ctx.out:write(closing(result, #names > 0 and table.concat(names, " and ") or nil), "\n")
  end
  return result.exit_code
end

return M
