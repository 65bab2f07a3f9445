--- empirical.gate: the release gate as a library (the `empirical gate`
-- command is this plus flags and files). No os.exit, no globals; it talks
-- through the hooks it is given.
--
--   local result = require("empirical.gate").run({ environments = { "staging" }, reruns = 1 },
--                                                 { say = print })
--   os.exit(result.exit_code)
--
-- opts: environments (slugs to trigger), runs (ids to follow), trigger (the
-- fields every trigger shares: build, tags, ...), timeout (seconds, > 0),
-- interval, max_poll_failures (nil: until the deadline), reruns, allow_empty,
-- on_timeout ("cancel"|"leave"), on_reject ("cancel"|"leave"|"wait"),
-- cancel_given, project_slug, dashboard_url, client (a client to use) or
-- client_options (for empirical.new).
-- hooks: say(line) for what a person should read, poll(lane, detail, info)
-- after each poll, reword(err, answered) to put a failed call's error in
-- the caller's words before it is said or kept (in place; answered: whether
-- the API answered any call yet). Returns the result (see README: the JSON
-- schema). Every environment's trigger is checked before any is sent: a bad
-- one ends the gate with nothing sent.
local empirical = require("empirical")
local report = require("empirical.report")
local commands = require("empirical.cli.commands")
local render = require("empirical.cli.render")

local M = {}

-- empirical.sleep returns nil, err when a caught signal interrupts it.
local now, sleep = empirical.now, empirical.sleep

--- Each lane outcome and its exit code (the table is empirical.cli.commands').
M.OUTCOME_CODE = commands.OUTCOME_CODE

--- The outcome a failed call stands for: the API's fault or the network's
-- (2), or the caller's (3), or a signal.
function M.outcome_of_error(err)
  local kind, status = err.kind, err.status or 0
  if kind == "interrupted" then return err.signal == "SIGTERM" and "SIGTERM" or "SIGINT" end
  if kind == "timeout" then return "timeout" end
  if kind == "transport" or kind == "decode" then return "unavailable" end
  if kind == "http" and (status >= 500 or status == 408 or status == 429) then return "unavailable" end
  if kind == "http" then return "rejected" end
  return "invalid"
end

--- The trigger params a gate's flags describe, for one environment.
function M.trigger_params(shared, environment)
  return empirical.compose(shared or {}, { environment = environment })
end

--- Check every environment's trigger params (empirical.encode, nothing
-- sent): nil when all are valid, else the first bad one's position in
-- environments, its error and its params.
function M.check_triggers(shared, environments)
  for i, env in ipairs(environments or {}) do
    local params = M.trigger_params(shared, env)
    local ok, err = empirical.encode("trigger", params)
    if not ok then return i, err, params end
  end
end

--- How long, after a signal, a trigger or re-run in flight may still answer
-- (so that its run can be cancelled): part of the 2 s within which the runs
-- the gate started are cancelled.
M.TRIGGER_GRACE = 1.5

--- "passed", "failed", "empty", "uncounted", "error", "cancelled" or "running".
-- A run that ended but says nothing of its tests (no counts, no items, no
-- report) is no verdict: a gate must not pass what it cannot count. Counts
-- the run leaves out come from its report (parsed); a test its report says
-- failed fails it, whatever the run's own counts say.
function M.judge(detail, allow_empty, parsed)
  local verdict = report.verdict(detail)
  if verdict ~= "passed" then return verdict end
  local c = render.counts(detail, parsed)
  if (c.failed or 0) > 0 then return "failed" end
  if type(parsed) == "table" and type(parsed.failed) == "table" and #parsed.failed > 0 then return "failed" end
  if c.total == 0 and not allow_empty then return "empty" end
  if c.total == nil and c.passed == nil and c.failed == nil then
    local items = type(detail) == "table" and type(detail.flattenedSummaryDetails) == "table"
                  and #detail.flattenedSummaryDetails or 0
    if items == 0 then return "uncounted" end
  end
  return "passed"
end

--- Cancel the runs (ids) together, waiting at most `budget` seconds for
-- the answers; a second signal stops the wait at once (rows.second_signal).
-- Returns a row per id: {id, status, error}, status "cancelled", "already
-- ended", "failed" or "unknown" (no answer in time: the run may still be
-- running). Used by the gate and by `empirical trigger` and `rerun`.
function M.cancel_all(client, ids, reason, budget)
  local rows, requests = {}, {}
  for i, id in ipairs(ids) do
    rows[i] = { id = id, status = "unknown" }
    local req, err = client:start("cancel", id, { reason = reason })
    requests[i] = req or false
    if not req then rows[i].status, rows[i].error = "failed", render.error_text(err) end
  end
  local until_ = now() + budget
  local left = #ids
  while left > 0 do
    left = 0
    for i, req in ipairs(requests) do
      if req then
        local done, _, err = req:poll()
        if done then
          requests[i] = false
          if not err then rows[i].status = "cancelled"
          elseif err.status == 412 then rows[i].status = "already ended"
          else rows[i].status, rows[i].error = "failed", render.error_text(err) end
        else
          left = left + 1
        end
      end
    end
    if left > 0 then
      if now() >= until_ then break end
      if not sleep(0.02) then rows.second_signal = true break end
    end
  end
  return rows
end

--- A cancel row in words: one that was not confirmed ("unknown": no answer
-- in time; "failed") says the run may still be running and how to cancel it.
function M.cancel_text(row, url)
  if row.status == "unknown" or row.status == "failed" then
    return ("cancel run %s: %s: it may still be running; cancel it with `empirical cancel %s`%s"):format(
      report.number_text(row.id),
      row.status == "unknown" and "no answer in time" or ("failed: " .. tostring(row.error)),
      report.number_text(row.id), url and ("  " .. url) or "")
  end
  return render.cancel_line(row, url)
end

--- The cancel rows in two lists, by id: confirmed ("2 (cancelled)", "3 (already
-- ended)") and not confirmed (ids whose cancel got no answer in time or
-- failed: those runs may still be running).
function M.cancel_groups(rows)
  local done, open, sorted = {}, {}, {}
  for i, row in ipairs(rows or {}) do sorted[i] = row end
  table.sort(sorted, function(a, b) return (tonumber(a.id) or 0) < (tonumber(b.id) or 0) end)
  for _, row in ipairs(sorted) do
    local id = report.number_text(row.id)
    if row.status == "cancelled" or row.status == "already ended" then
      done[#done + 1] = ("%s (%s)"):format(id, row.status)
    else open[#open + 1] = id end
  end
  return done, open
end

--- The line that closes a gate (or a command) a signal ended: the runs
-- whose cancel was confirmed, those that may still be running (with the
-- command that cancels them), and the lanes whose trigger or re-run was cut
-- before its answer (maybe: their labels). cancelled: the cancel rows.
function M.signal_line(signal, cancelled, maybe)
  local done, open = M.cancel_groups(cancelled)
  local parts = { ("interrupted by %s; cancelled: %s"):format(signal,
                                                              #done > 0 and table.concat(done, ", ") or "none") }
  if #open > 0 then
    parts[#parts + 1] = ("not confirmed, may still be running: %s (cancel with `empirical cancel %s`)"):format(
      table.concat(open, ", "), table.concat(open, " "))
  end
  if maybe and #maybe > 0 then parts[#parts + 1] = "not cancelled, a run may exist: " .. table.concat(maybe, ", ") end
  return table.concat(parts, "; ")
end

--- Wait for started requests (false: none) to be done. A signal while any
-- is in flight gives them TRIGGER_GRACE seconds more to answer, so that a
-- run the API created is known and can be cancelled; a second signal stops
-- waiting. What is still in flight then is cut (an answer that came
-- meanwhile is kept). Returns the results and the errors by position, the
-- signal ("SIGINT" or "SIGTERM", or nil) and whether the API answered any.
function M.await(requests)
  local results, errs, left, grace_until, signal = {}, {}, #requests, nil, nil
  while left > 0 do
    left = 0
    for i, req in ipairs(requests) do
      if req then
        local done, result, err = req:poll()
        if done then results[i], errs[i], requests[i] = result, err, false else left = left + 1 end
      end
    end
    if left == 0 or (grace_until and now() >= grace_until) then break end
    local slept, stop = sleep(0.01)
    if not slept then
      if grace_until then break end   -- a second signal: no more waiting
      signal = stop.signal == "SIGTERM" and "SIGTERM" or "SIGINT"
      grace_until = now() + M.TRIGGER_GRACE
    end
  end
  for i, req in ipairs(requests) do
    if req then
      req:abort("interrupted by " .. tostring(signal))
      local _, result, err = req:poll()
      results[i], errs[i] = result, err
      if err and err.kind == "interrupted" then err.signal = signal end
    end
  end
  local answered = false
  for i = 1, #requests do
    if results[i] or (errs[i] and errs[i].status) then answered = true end
  end
  return results, errs, signal, answered
end

--- What to say of a trigger or re-run (what) a signal cut before its answer
-- came (err: its error): whether a run may exist, and how to find it.
function M.cut_text(what, err)
  return err.run_may_exist
    and ("interrupted before the API answered the %s: a run may have been created, and it was not cancelled; " ..
         "%s and cancel it with `empirical cancel ID`"):format(what, render.FIND_RUN)
    or ("interrupted before the %s was sent: no run was created"):format(what)
end

local Gate = {}
Gate.__index = Gate

function Gate:link(id) return render.link(self.opts, id) end

function Gate:say(line) if self.hooks.say then self.hooks.say(line) end end

-- Record an error that ends a lane; a signal ends the whole gate.
function Gate:fail(lane, err)
  lane.err = err
  lane.outcome = M.outcome_of_error(err)
  if err.kind == "interrupted" then self.signal = lane.outcome end
end

-- Let the command put an error in its own words (hooks.reword), before it
-- is said or kept. answered: whether the API has answered any call yet.
function Gate:reword(err)
  if self.hooks.reword and type(err) == "table" then self.hooks.reword(err, self.answered) end
  return err
end

-- Wait for started requests (M.await); a signal meanwhile ends the gate.
function Gate:await(requests)
  local results, errs, signal, answered = M.await(requests)
  if signal and not self.signal then self.signal = signal end
  if answered then self.answered = true end
  return results, errs
end

-- A lane whose trigger or re-run (what) a signal cut before its answer
-- came: say whether a run may exist, and how to find it with the command.
function Gate:cut(lane, what, err)
  local text = M.cut_text(what, err)
  err.message, err.request, err.attempts, err.worded = text, nil, nil, true
  lane.note = text
  lane.maybe_created = err.run_may_exist or nil
  self:fail(lane, err)
  self:say(("%s: %s"):format(lane.label, text))
end

-- Trigger every environment together (see Gate:await for a signal meanwhile).
function Gate:trigger(lanes)
  local to, requests = {}, {}
  for _, lane in ipairs(lanes) do
    if lane.environment then
      local req, err = self.client:start("trigger", M.trigger_params(self.opts.trigger, lane.environment))
      if req then to[#to + 1], requests[#requests + 1] = lane, req
      else
        self:fail(lane, err)
        self:say(("%s: %s"):format(lane.label, render.error_text(err)))
      end
    end
  end
  local runs, errs = self:await(requests)
  for i, lane in ipairs(to) do
    local run, err = runs[i], errs[i]
    if run then
      lane.started = true
      lane.attempts[1] = { id = run.id, kind = "run" }
      self:say(render.triggered(lane, run.id, self:link(run.id)))
    elseif err.kind == "interrupted" then
      self:cut(lane, "trigger", err)
    else
      self:fail(lane, self:reword(err))
      self:say(("%s: %s"):format(lane.label, render.error_text(err)))
    end
  end
end

-- The report of an attempt that ended (a verdict of its tests, whatever it
-- is): it names the failed and flaky tests with their messages, and gives
-- every test the identity (file, line, project) JUnit writes, passing ones
-- too. A failure to fetch it costs a line, never the verdict.
local NO_TESTS_RAN = report.NO_TESTS_RAN

function Gate:fetch_report(lane, attempt)
  if NO_TESTS_RAN[attempt.verdict] then return end
  local parsed, err = self.client:report(attempt.detail, math.max(self.deadline - now(), 0))
  if parsed then attempt.report = parsed return end
  if err.kind == "interrupted" then self:fail(lane, err) return end
  attempt.report_error = render.error_text(err)
  self:say(("%s: the Playwright report could not be fetched: %s"):format(render.run_lead(lane.label, attempt.id),
                                                                         attempt.report_error))
end

-- A re-run of the failed tests, if asked for and the deadline leaves time to follow it.
function Gate:rerun(lane)
  local done = #lane.attempts - 1
  if done >= (self.opts.reruns or 0) then return false end
  local left = self.deadline - now()
  local needs = 3 * (self.opts.interval or 5)
  if left < needs then
    lane.note = ("no re-run: %.0f s left before the deadline, a re-run needs %.0f s to follow"):format(left, needs)
    self:say(lane.label .. ": " .. lane.note)
    return false
  end
  local last = lane.attempts[#lane.attempts]
  local again, err = self.client:start("rerun", last.id, { only_failed = true })
  if again then
    local results, errs = self:await({ again })
    again, err = results[1], errs[1]
  end
  if not again and err.kind == "interrupted" then
    self:cut(lane, "re-run", err)
    return true
  elseif not again then
    self:fail(lane, self:reword(err))
    self:say(("%s: re-run refused: %s"):format(lane.label, render.error_text(err)))
    return true
  end
  lane.started = true
  lane.attempts[#lane.attempts + 1] = { id = again.id, kind = "rerun" }
  self:say(render.rerunning(lane, last, again.id, done + 1, self.opts.reruns, self:link(again.id)))
  return true
end

function Gate:settle(lane, detail, err)
  local attempt = lane.attempts[#lane.attempts]
  if not detail then
    attempt.detail = err.detail or attempt.detail
    self:reword(err)
    if err.kind ~= "interrupted" then self:say(("%s: %s"):format(lane.label, render.error_text(err))) end
    self:fail(lane, err)
    -- Polling given up (the API kept failing, answered what cannot be read,
    -- or refused the run): the run goes on unless cleanup cancels it.
    if err.kind ~= "interrupted" and lane.outcome ~= "timeout" then self.gave_up = true end
    return
  end
  attempt.detail = detail
  attempt.verdict = M.judge(detail, self.opts.allow_empty)
  self:fetch_report(lane, attempt)
  if lane.outcome then return end
  attempt.verdict = M.judge(detail, self.opts.allow_empty, attempt.report)
  self:say(render.attempt_text(lane, attempt))
  if attempt.verdict == "failed" and self:rerun(lane) then return end
  local verdict = attempt.verdict == "running" and "error" or attempt.verdict
  -- A re-run that passed passes the lane only if every test that failed
  -- before was seen passing since (a re-run's report may leave one out).
  if verdict == "passed" and #lane.attempts > 1 and (report.judged_counts(lane.attempts).failed or 0) > 0 then
    verdict = "failed"
    lane.note = "a test that failed earlier was not seen passing in a re-run"
    self:say(lane.label .. ": " .. lane.note)
  end
  lane.outcome = lane.outcome or verdict
end

-- A signal that arrived between blocking calls (they report the ones that
-- arrive during them).
function Gate:check_signal()
  local pending = empirical.pending_signal()
  if pending and not self.signal then self.signal = pending == "SIGTERM" and "SIGTERM" or "SIGINT" end
end

function Gate:follow(lanes)
  self:check_signal()
  while not self.signal do
    local active, ids = {}, {}
    for _, lane in ipairs(lanes) do
      if not lane.outcome then active[#active + 1], ids[#ids + 1] = lane, lane.attempts[#lane.attempts].id end
    end
    if #active == 0 then return end
    local left = self.deadline - now()
    if left <= 0 then
      for _, lane in ipairs(active) do
        self:fail(lane, empirical.error("timeout", "the gate's deadline passed before the run ended"))
      end
      return
    end
    local hooks = self.hooks
    local details, errs = self.client:wait_all(ids, {
      -- No cap given: failed polls are tolerated until the deadline, whatever wait's default.
      interval = self.opts.interval, timeout = left, max_poll_failures = self.opts.max_poll_failures or 2 ^ 53,
      on_poll = function(detail, info)
        self.answered = true
        active[info.index].last = detail
        if hooks.poll then hooks.poll(active[info.index], detail, info) end
      end,
      on_poll_error = function(e, n, info)
        if e.status then self.answered = true end
        self:reword(e)
        self:say(render.poll_failed(active[info.index], n, e))
      end,
    })
    if not details then error(tostring(errs)) end
    for i, lane in ipairs(active) do
      local attempt = lane.attempts[#lane.attempts]
      if not self.signal then self:settle(lane, details[i], errs[i])
      elseif details[i] then
        -- Ended before the signal (met while settling another lane): its
        -- verdict stands, without a report or a re-run; nothing to cancel.
        attempt.detail = details[i]
        attempt.verdict = M.judge(details[i], self.opts.allow_empty)
        self:say(render.attempt_text(lane, attempt))
        lane.outcome = attempt.verdict == "running" and "error" or attempt.verdict
      elseif errs[i] and errs[i].kind == "interrupted" then
        attempt.detail = errs[i].detail or attempt.detail   -- what is known, for the reports
        self:fail(lane, errs[i])
      end
    end
    self:check_signal()
  end
end

-- Cancel what the gate is responsible for, after a signal, the deadline,
-- polling given up (as the deadline: unless --on-timeout leave) or a
-- refused environment.
function Gate:cleanup(lanes)
  local why
  if self.signal then why = "interrupted by " .. self.signal
  elseif self.rejected and self.opts.on_reject ~= "leave" and self.opts.on_reject ~= "wait" then
    why = "another environment was refused"
  elseif self.timed_out and self.opts.on_timeout ~= "leave" then why = "the gate's deadline passed"
  elseif self.gave_up and self.opts.on_timeout ~= "leave" then why = "the gate gave up polling" end
  if not why then return end
  local ids = {}
  for _, lane in ipairs(lanes) do
    local attempt = lane.attempts[#lane.attempts]
    local mine = lane.started or (self.opts.cancel_given and not self.rejected)
    local unfinished = attempt and not (attempt.verdict and attempt.verdict ~= "running")
    if mine and unfinished then ids[#ids + 1] = attempt.id end
  end
  if #ids == 0 then return end
  if why == "the gate gave up polling" then
    self:say(("gave up polling: cancelling the runs this gate started (--on-timeout leave leaves them): %s")
             :format(table.concat(ids, ", ")))
  end
  self.cancelled = M.cancel_all(self.client, ids, "empirical gate: " .. why, 1.5)
  for _, row in ipairs(self.cancelled) do self:say(M.cancel_text(row, self:link(row.id))) end
  if self.cancelled.second_signal then self:say("second signal: not waiting for the cancels to be confirmed") end
end

function M.run(opts, hooks)
  if type(opts) ~= "table" then return nil, empirical.error("invalid", "opts: expected a table", { field = "opts" }) end
  if not (type(opts.timeout) == "number" and opts.timeout > 0 and opts.timeout < math.huge) then
    return nil, empirical.error("invalid", "opts.timeout: expected a positive number of seconds",
                                { field = "opts.timeout" })
  end
  local g = setmetatable({ opts = opts, hooks = hooks or {}, cancelled = {} }, Gate)
  g.deadline = now() + opts.timeout
  local lanes = {}
  for _, env in ipairs(opts.environments or {}) do lanes[#lanes + 1] = { label = env, environment = env } end
  for _, id in ipairs(opts.runs or {}) do
    lanes[#lanes + 1] = { label = ("run %d"):format(id), given = true, attempts = { { id = id, kind = "given" } } }
  end
  for _, lane in ipairs(lanes) do lane.attempts = lane.attempts or {} end
  local client, err = opts.client, nil
  if not client then client, err = empirical.new(opts.client_options) end
  if not client then
    for _, lane in ipairs(lanes) do g:fail(lane, err) end
    g:say(render.error_text(err))
    return render.result(g, lanes)
  end
  g.client = client
  local bad, invalid = M.check_triggers(opts.trigger, opts.environments)
  if bad then   -- nothing is sent: every lane ends here
    for _, lane in ipairs(lanes) do
      if lane.environment == opts.environments[bad] and not lane.outcome then g:fail(lane, invalid)
      else lane.outcome, lane.note = "aborted", "not followed: an environment's trigger is invalid" end
    end
    g:say(("%s: %s"):format(opts.environments[bad], render.error_text(invalid)))
    if not opts.client then client:close() end
    return render.result(g, lanes)
  end
  g:trigger(lanes)
  for _, lane in ipairs(lanes) do   -- a trigger refused; one a signal cut is no refusal
    if lane.outcome and lane.environment and not g.signal then g.rejected = true end
  end
  if g.rejected and opts.on_reject ~= "wait" then
    for _, lane in ipairs(lanes) do if not lane.outcome then lane.outcome = "aborted" end end
  end
  g:follow(lanes)
  for _, lane in ipairs(lanes) do if lane.outcome == "timeout" then g.timed_out = true end end
  g:cleanup(lanes)
  if not opts.client then client:close() end
  return render.result(g, lanes)
end

return M
