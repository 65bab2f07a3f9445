--- empirical.cli.calls: the commands that are one or a few API calls:
-- trigger, rerun, get, wait, cancel, list, report, fake. Each takes the
-- parsed flags and the context (empirical.cli) and returns an exit code.
local commands = require("empirical.cli.commands")
local render = require("empirical.cli.render")

local number_text = require("empirical.report").number_text

local M = {}

local format = string.format
local CODE, OUTCOME_CODE = commands.CODE, commands.OUTCOME_CODE

-- JSON with the given keys' empty tables as [].
local function json(value, arrays) return require("empirical.cli.publish").encode(value, arrays) end

-- Every command that calls the API catches SIGINT and SIGTERM: a call in
-- flight ends within about 100 ms with an "interrupted" error, which
-- ctx:failed turns into one line and exit 130 or 143.
local function with_client(o, ctx, what, body)
  require("empirical").catch_signals()
  local client, err = ctx:client(o)
  if not client then return ctx:failed(err, what) end
  local ok, code = pcall(body, client)
  client:close()
  if not ok then error(code, 0) end
  return code
end

-- Start one call per item (start(item) -> request or nil, err) and wait for
-- them with the gate's grace on a signal (empirical.gate.await): results,
-- errs by position, the signal, whether the API answered any.
local function started(items, start)
  local requests, early = {}, {}
  for i, item in ipairs(items) do
    local req, err = start(item)
    requests[i], early[i] = req or false, err
  end
  local results, errs, signal, answered = require("empirical.gate").await(requests)
  for i in ipairs(items) do errs[i] = errs[i] or (not results[i] and early[i]) or nil end
  return results, errs, signal, answered
end

-- A signal ended a trigger or a re-run (what): the runs the API created
-- meanwhile (made: {label, id} rows) are cancelled; one whose request was
-- cut is named with the command to find it (cut: {label, err} rows).
-- Says a line each, then the closing one; with --json the document
-- {exit_code, error, runs}. Returns the exit code.
local function interrupted(o, ctx, client, what, signal, made, cut)
  local gate = require("empirical.gate")
  local code = OUTCOME_CODE[signal]
  local ids = {}
  for i, m in ipairs(made) do ids[i] = m.id end
  local rows = gate.cancel_all(client, ids, format("empirical %s: interrupted by %s", what, signal), 1.5)
  local runs, maybe = {}, {}
  for i, m in ipairs(made) do
    local row = rows[i]
    ctx:say(format("empirical %s%s: %s", what, m.label and (" " .. m.label) or "",
                   gate.cancel_text(row, render.link(o, m.id))))
    runs[#runs + 1] = { environment = m.environment, id = m.id, status = row.status, error = row.error }
  end
  for _, c in ipairs(cut) do
    local text = gate.cut_text(what == "rerun" and "re-run" or what, c.err)
    ctx:say(format("empirical %s%s: %s", what, c.label and (" " .. c.label) or "", text))
    if c.err.run_may_exist then maybe[#maybe + 1] = c.label or what end
    runs[#runs + 1] = { environment = c.environment, status = c.err.run_may_exist and "may exist" or "not created" }
  end
  if rows.second_signal then ctx:say("second signal: not waiting for the cancels to be confirmed") end
  local line = gate.signal_line(signal, rows, maybe)
  ctx:say(format("empirical %s: %s", what, line))
  if o.json then
    ctx:document(json({ exit_code = code, error = { kind = "interrupted", message = line }, runs = runs },
                      { runs = true }))
  end
  return code
end

function M.trigger(o, ctx)
  local gate, gate_command = require("empirical.gate"), require("empirical.cli.gate_command")
  local fields = gate_command.trigger_fields(o)
  local problem = gate_command.check_triggers(o, fields)   -- every environment's, before any is sent
  if problem then return ctx:input_error(commands.COMMAND.trigger, problem) end
  return with_client(o, ctx, "trigger", function(client)
    local rows, code = {}, 0
    local runs, errs, signal, answered = started(o.environment, function(env)
      return client:start("trigger", gate.trigger_params(fields, env))
    end)
    if signal then
      local made, cut = {}, {}
      for i, env in ipairs(o.environment) do
        if runs[i] then made[#made + 1] = { label = env, environment = env, id = runs[i].id }
        elseif errs[i].kind == "interrupted" then cut[#cut + 1] = { label = env, environment = env, err = errs[i] }
        else ctx:failed(errs[i], "trigger " .. env, answered) end
      end
      return interrupted(o, ctx, client, "trigger", signal, made, cut)
    end
    for i, env in ipairs(o.environment) do
      local run = runs[i]
      if run then
        local url = render.link(o, run.id)
        rows[i] = { environment = env, id = run.id, state = run.state, url = url }
        if not o.json then
          ctx:print(format("%s: run %s %s%s", env, number_text(run.id), tostring(run.state),
                           url and ("  " .. url) or ""))
        end
      else
        code = math.max(code, ctx:failed(errs[i], "trigger " .. env, answered))
        rows[i] = { environment = env, error = tostring(errs[i]) }
      end
    end
    if o.json then ctx:document(json(rows, { ["(top)"] = true })) end
    return code
  end)
end

function M.rerun(o, ctx)
  local id = o.args[1]
  return with_client(o, ctx, "rerun", function(client)
    local results, errs, signal = started({ id }, function()
      return client:start("rerun", id, { only_failed = o.only_failed or nil, send_notifications = o.notify or nil })
    end)
    local run, err = results[1], errs[1]
    if signal and (run or err.kind == "interrupted") then
      return interrupted(o, ctx, client, "rerun", signal, run and { { id = run.id } } or {},
                         run and {} or { { err = err } })
    end
    if not run then return ctx:failed(err, "rerun") end
    local url = render.link(o, run.id)
    if o.json then
      ctx:document(json({ id = run.id, state = run.state, source_id = id, only_failed = o.only_failed, url = url }, {}))
    else
      ctx:print(format("run %s re-runs %s of run %d: %s%s", number_text(run.id),
                       o.only_failed and "the failed tests" or "all tests",
                       id, tostring(run.state), url and ("  " .. url) or ""))
    end
    return 0
  end)
end

function M.get(o, ctx)
  return with_client(o, ctx, "get", function(client)
    local detail, err = client:get(o.args[1])
    if not detail then return ctx:failed(err, "get") end
    if o.json then ctx:document(json(detail, { flattenedSummaryDetails = true })) return 0 end
    local report = require("empirical.report")
    local attempt = { id = o.args[1], detail = detail, verdict = report.verdict(detail) }
    ctx:print(render.attempt_text({ label = "get" }, attempt):gsub("^get: ", ""))
    local url = render.link(o, o.args[1])
    if url then ctx:print("  " .. url) end
    return 0
  end)
end

function M.wait(o, ctx)
  local empirical = require("empirical")
  local gate = require("empirical.gate")
  empirical.catch_signals()
  return with_client(o, ctx, "wait", function(client)
    local live, width = ctx:live(o.progress, ctx.err)
    local p = require("empirical.cli.progress").new(ctx.err, live, width)
    local lanes = {}
    for i in ipairs(o.args) do lanes[i] = { label = "" } end   -- the line names the run
    local details, errs = client:wait_all(o.args, {
      interval = o.interval, timeout = o.timeout,
      max_poll_failures = o.max_poll_failures > 0 and o.max_poll_failures or 2 ^ 53,   -- 0: until the deadline
      on_poll = function(detail, info) p.poll(lanes[info.index], detail, info) end,
    })
    p.close()
    if not details then return ctx:failed(errs, "wait") end
    require("empirical.cli.words").reword_wait(errs, o)
    local code, rows = 0, {}
    for i, id in ipairs(o.args) do
      local outcome
      local detail = details[i] or (errs[i] and errs[i].detail)
      if details[i] then outcome = gate.judge(details[i], o.allow_empty)
      else
        outcome = gate.outcome_of_error(errs[i])
        ctx:say(format("empirical wait: run %d: %s", id, render.error_text(errs[i])))
      end
      code = math.max(code, OUTCOME_CODE[outcome] or CODE.no_verdict)
      local r = detail and detail.testRun or {}
      rows[i] = { id = id, outcome = outcome, state = r.state, counts = render.counts(detail),
                  url = render.link(o, id) }
      local code_text = detail and require("empirical.report").error_code(detail)
      rows[i].error_code = code_text
      if not o.json then
        ctx:print(format("run %d: %s%s, %s%s", id, outcome, code_text and (" (" .. code_text .. ")") or "",
                         render.counts_text(rows[i].counts), rows[i].url and ("  " .. rows[i].url) or ""))
      end
    end
    if o.json then ctx:document(json(rows, { ["(top)"] = true })) end
    return code
  end)
end

function M.cancel(o, ctx)
  return with_client(o, ctx, "cancel", function(client)
    local code, rows = 0, {}
    for i, id in ipairs(o.args) do
      local res, err = client:cancel(id, o.reason and { reason = o.reason } or nil)
      if not res and err.kind == "interrupted" then
        -- The one in flight may or may not be cancelled; the rest were not sent.
        local open = {}
        for k = i, #o.args do open[#open + 1] = number_text(o.args[k]) end
        err.message = format("interrupted by %s before the API answered: not confirmed cancelled, may still " ..
                             "be running: %s (cancel with `empirical cancel %s`)", err.signal or "a signal",
                             table.concat(open, ", "), table.concat(open, " "))
        err.worded = true
        return ctx:failed(err, "cancel")
      end
      if res then
        rows[i] = { id = id, status = "cancelled", message = res.message }
      elseif err.status == 412 then
        rows[i] = { id = id, status = "already ended", message = err.message }
      else
        rows[i] = { id = id, status = "failed", message = tostring(err) }
        code = math.max(code, ctx:failed(err, format("cancel %d", id)))
      end
      if not o.json and rows[i].status ~= "failed" then
        ctx:print(format("run %d: %s", id, rows[i].status == "cancelled" and "cancel requested" or "had already ended"))
      end
    end
    if o.json then ctx:document(json(rows, { ["(top)"] = true })) end
    return code
  end)
end

function M.list(o, ctx)
  return with_client(o, ctx, "list", function(client)
    local filter = { state = o.state, result = o.result, branch = o.branch, interval_in_days = o.days,
                     environment_ids = #o.environment_id > 0 and o.environment_id or nil,
                     per_page = math.min(o.limit, 100) }
    local rows = {}
    for run, err in client:runs(filter, o.limit) do
      if not run then return ctx:failed(err, "list", #rows > 0) end
      rows[#rows + 1] = run
    end
    if o.json then ctx:document(json(rows, { ["(top)"] = true })) return 0 end
    if #rows == 0 then ctx:say("no runs match") return 0 end   -- stdout stays empty: no header without rows
    local width = require("empirical.cli.progress").width(ctx.out, ctx.getenv)
    for _, line in ipairs(render.runs_table(rows, width)) do ctx:print(line) end
    return 0
  end)
end

function M.report(o, ctx)
  return with_client(o, ctx, "report", function(client)
    local detail, err = client:get(o.args[1])
    if not detail then return ctx:failed(err, "report") end
    local parsed
    parsed, err = client:report(detail)
    if not parsed then return ctx:failed(err, "report", true) end
    if o.json then
      local lists = {}
      for _, key in ipairs(require("empirical.playwright").LISTS) do lists[key] = true end
      ctx:document(json(parsed, lists))
      return 0
    end
    local attempt = { id = o.args[1], detail = detail, report = parsed,
                      verdict = require("empirical.report").verdict(detail) }
    ctx:print((render.attempt_text({ label = "report" }, attempt):gsub("^report: ", "")))
    return 0
  end)
end

function M.fake(o, ctx)
  local ok, fake = pcall(require, "empirical.fake")
  if not ok then
    ctx:say("empirical fake: the fake API is not installed "
            .. "(luarocks install empirical-fake, or make install-fake from a checkout)")
    return CODE.usage
  end
  local empirical = require("empirical")
  local handle, err = fake.spawn { port = o.port, speed = o.speed, token = o.token }
  if not handle then ctx:say("empirical fake: " .. tostring(err)) return CODE.no_verdict end
  ctx:print(handle.url)
  if ctx.out.flush then ctx.out:flush() end
  ctx:say(format("fake API at %s; use it with\n  export EMPIRICALRUN_API_URL=%s EMPIRICALRUN_KEY=%s\n" ..
                 "Ctrl+C stops it.", handle.url, handle.url, handle.token))
  empirical.catch_signals()
  while empirical.sleep(3600) do end   -- until a signal ends the sleep
  handle:stop()
  return 0
end

return M
