--- empirical in Neovim: the :Empirical command, runs followed without ever
-- blocking the editor, the quickfix list from a run's report, a status line.
-- The user's manual is doc/empirical.txt (:help empirical).
--
-- Every request is started with client:start and polled from a timer
-- (requests.lua); results come back on the main loop. A followed run is read
-- every `interval` seconds until it ends, `timeout` passes, a failure that
-- is not transient happens, or :Empirical stop.
local config = require("empirical.nvim.config")
local requests = require("empirical.nvim.requests")
local text = require("empirical.nvim.text")

local M = {}

local INFO, WARN, ERROR = vim.log.levels.INFO, vim.log.levels.WARN, vim.log.levels.ERROR
local unpack = unpack or table.unpack
local TERMINAL = { ended = true, error = true, cancelled = true }

local given = nil      -- setup's table
local client, client_options = nil, nil
local follows, order = {}, {}   -- followed runs by id; their ids, oldest first
local last = nil       -- {id, detail, verdict} of the last run that ended
local last_id = nil    -- the run the id-taking subcommands use by default
local seen_ids, seen_envs = {}, {}

local function notify(message, level)
  vim.notify("empirical: " .. message, level or INFO)
end

local function now()
  return (vim.uv or vim.loop).now() / 1000
end

local function redraw()
  pcall(vim.cmd, "redrawstatus")
end

local function remember(id)
  if type(id) ~= "number" then return end
  last_id = id
  for i, v in ipairs(seen_ids) do if v == id then table.remove(seen_ids, i) break end end
  seen_ids[#seen_ids + 1] = id
end

--- Change the settings (`:help empirical-config`); true, or nil and what
-- is wrong (also notified).
function M.setup(options)
  local ok, problem = config.check(options, "setup")
  if not ok then
    notify(problem, ERROR)
    return nil, problem
  end
  given = vim.deepcopy(options)
  return true
end

--- The settings in force, or nil, err.
function M.config()
  return config.resolve(given)
end

--- The shared client for the settings in force (made again when they
-- change), and the settings; or nil, err.
function M.client()
  local cfg, problem = M.config()
  if not cfg then return nil, problem end
  local opts
  opts, problem = config.client_options(cfg)
  if not opts then return nil, problem end
  if client and vim.deep_equal(opts, client_options) then return client, cfg end
  local empirical = require("empirical")
  local c, err = empirical.new(opts)
  if not c then return nil, text.error(err) end
  client, client_options = c, opts
  return c, cfg
end

-- Start op; on_done(result, err, cfg, client) runs on the main loop.
-- Returns the request, or nil (then the problem was notified).
local function call(op, a, b, on_done)
  local c, cfg = M.client()
  if not c then return notify(cfg, ERROR) end
  return requests.start(c, cfg.poll_ms, op, a, b, function(result, err) on_done(result, err, cfg, c) end)
end

-- the quickfix list ------------------------------------------------------------

-- A new quickfix list of the report's failed (and flaky) tests. The note
-- repeats the counts only when asked: a followed run's end already said them.
local function fill_quickfix(id, parsed, cfg, with_counts)
  local root = vim.fn.fnamemodify(cfg.test_root or vim.fn.getcwd(), ":p")
  local items = text.quickfix_items(parsed, root, cfg.flaky)
  local counts = text.report_counts(parsed)
  local head = with_counts and ("run %s: %s; "):format(id, counts) or ("run %s: "):format(id)
  if #items == 0 then return notify(head .. "no failed tests for the quickfix list") end
  vim.fn.setqflist({}, " ", { title = ("empirical run %s: %s"):format(id, counts), items = items })
  if cfg.open_quickfix then vim.cmd("copen") end
  notify(("%s%d %s in the quickfix list (:copen)"):format(head, #items, #items == 1 and "test" or "tests"), WARN)
end

-- following a run ----------------------------------------------------------------

local function unfollow(f)
  f.stopped = true
  if f.cancel_timer then f.cancel_timer() end
  requests.abort(f.req)
  follows[f.id] = nil
  for i, id in ipairs(order) do if id == f.id then table.remove(order, i) break end end
  redraw()
end

local poll

local function next_poll(f)
  local left = f.deadline - now()
  if left <= 0 then
    unfollow(f)
    return notify(("run %s is still %s after %g s (the timeout option); no longer following it (:Empirical status %s)")
                  :format(f.id, tostring(f.state), f.cfg.timeout, f.id), ERROR)
  end
  f.cancel_timer = requests.after(math.min(f.cfg.interval, left), function() poll(f) end)
end

local function finish(f, detail)
  unfollow(f)
  local verdict = require("empirical.report").verdict(detail)
  last = { id = f.id, detail = detail, verdict = verdict }
  redraw()
  notify(text.ended(detail), verdict == "passed" and INFO or WARN)
  local run = detail.testRun
  if verdict ~= "failed" and not (f.cfg.flaky and type(run.flaky_count) == "number" and run.flaky_count > 0) then
    return
  end
  requests.start(f.client, f.cfg.poll_ms, "report", detail, nil, function(parsed, err)
    if not parsed then
      return notify(("run %s: no report: %s"):format(f.id, text.error(err)), WARN)
    end
    fill_quickfix(f.id, parsed, f.cfg, false)
  end)
end

local function observed(f, detail)
  if f.failures > 0 then
    notify(("run %s: read again after %d failed tries"):format(f.id, f.failures))
    f.failures = 0
  end
  f.detail = detail
  local state = detail.testRun.state
  if state ~= f.state then
    f.state = state
    if not TERMINAL[state] then notify(("run %s %s"):format(f.id, tostring(state))) end
  end
  redraw()
  if TERMINAL[state] then return finish(f, detail) end
  next_poll(f)
end

local function failed(f, err)
  if err.retryable ~= true then
    unfollow(f)
    return notify(("run %s: %s; no longer following it"):format(f.id, text.error(err)), ERROR)
  end
  f.failures = f.failures + 1
  if f.failures == 1 then
    notify(("run %s: could not read it (%s); trying again every %g s until %s"):format(f.id, text.error(err),
           f.cfg.interval, os.date("%H:%M:%S", os.time() + math.floor(f.deadline - now()))), WARN)
  end
  next_poll(f)
end

poll = function(f)
  f.cancel_timer = nil
  if f.stopped then return end
  f.req = requests.start(f.client, f.cfg.poll_ms, "get", f.id, nil, function(detail, err)
    f.req = nil
    if f.stopped then return end
    if detail then return observed(f, detail) end
    failed(f, err)
  end)
end

-- Follow run id (its state as the trigger answered) with client c.
local function follow(id, state, c, cfg)
  if follows[id] then return end
  local f = { id = id, state = state, client = c, cfg = cfg, failures = 0, deadline = now() + cfg.timeout }
  follows[id], order[#order + 1] = f, id
  remember(id)
  redraw()
  poll(f)
end

-- subcommands ----------------------------------------------------------------------

-- A run id argument, or the last run; nil, problem.
local function run_id(word, usage)
  if word == nil then
    if last_id then return last_id end
    return nil, ("no run yet: give its id (:Empirical %s)"):format(usage)
  end
  local id = tonumber(word)
  if not id or id < 1 or id % 1 ~= 0 or not word:match("^%d+$") then
    return nil, ("a run id is a whole number, got %q (:Empirical %s)"):format(word, usage)
  end
  return id
end

--- :Empirical run [environment] [tags...]
function M.run(environment, tags)
  local cfg, problem = M.config()
  if not cfg then return notify(problem, ERROR) end
  environment = environment or cfg.environment
  if not environment then
    return notify("which environment? :Empirical run {environment} [tags...], or set the environment option", ERROR)
  end
  local empirical = require("empirical")
  local params, err = empirical.compose(cfg.trigger, { environment = environment },
                                        tags and #tags > 0 and { tags = tags })
  if not params then return notify(text.error(err), ERROR) end
  call("trigger", params, nil, function(run, trigger_err, used, c)
    if not run then return notify(text.error(trigger_err), ERROR) end
    seen_envs[environment] = true
    notify(("triggered run %s on %s"):format(text.count(run.id), environment))
    follow(run.id, run.state, c, used)
  end)
end

--- :Empirical rerun [id] [all]: the failed tests of a run again (all: every test).
function M.rerun(id, all)
  call("rerun", id, { only_failed = not all }, function(run, err, cfg, c)
    if not run then return notify(text.error(err), ERROR) end
    notify(("re-running %s of run %s as run %s"):format(all and "every test" or "the failed tests", id,
                                                         text.count(run.id)))
    follow(run.id, run.state, c, cfg)
  end)
end

--- :Empirical status [id]
function M.status(id)
  remember(id)
  call("get", id, nil, function(detail, err)
    if not detail then return notify(text.error(err), ERROR) end
    notify(require("empirical.report").summary(detail))
  end)
end

--- :Empirical cancel [id]
function M.cancel(id)
  call("cancel", id, nil, function(result, err)
    if not result then return notify(text.error(err), ERROR) end
    notify(("run %s: %s"):format(id, type(result.message) == "string" and result.message or "cancel requested"))
  end)
end

--- :Empirical list: the newest runs.
function M.list()
  call("list", { per_page = 10 }, nil, function(page, err)
    if not page then return notify(text.error(err), ERROR) end
    notify(table.concat(text.list(page), "\n"))
  end)
end

--- :Empirical report [id]: the run's Playwright report into the quickfix list.
function M.report(id)
  remember(id)
  call("report", id, nil, function(parsed, err, cfg)
    if not parsed then return notify(text.error(err), ERROR) end
    fill_quickfix(id, parsed, cfg, true)
  end)
end

--- :Empirical stop [id]: stop following a run (default: every followed run).
-- The run itself goes on.
function M.stop(id)
  local list = {}
  if id then list[1] = follows[id] else for _, i in ipairs(order) do list[#list + 1] = follows[i] end end
  if #list == 0 then return notify(id and ("not following run %s"):format(id) or "not following any run") end
  local ids = {}
  for _, f in ipairs(list) do
    unfollow(f)
    ids[#ids + 1] = tostring(f.id)
  end
  notify(("stopped following run %s (it goes on: :Empirical cancel ends it)"):format(table.concat(ids, ", ")))
end

--- The ids of the runs being followed, oldest first.
function M.following()
  return vim.deepcopy(order)
end

--- For 'statusline': the followed runs, or the last one that ended; "" before any.
function M.statusline()
  local parts = {}
  for _, id in ipairs(order) do parts[#parts + 1] = text.status(id, follows[id].detail) end
  if #parts == 0 and last then parts[1] = text.status(last.id, last.detail, last.verdict) end
  return table.concat(parts, "  ")
end

-- the command ------------------------------------------------------------------------

local function with_id(fn, usage)
  return function(args)
    local id, problem = run_id(args[1], usage)
    if not id then return notify(problem, ERROR) end
    fn(id, args)
  end
end

-- The subcommands, in the order :Empirical's completion and usage list them.
-- max: the most words after the name; complete: what its first word is.
M.SUBCOMMANDS = {
  { name = "run", usage = "run {environment} [tags...]", complete = "environment",
    fn = function(args) M.run(args[1], { unpack(args, 2) }) end },
  { name = "rerun", usage = "rerun [id] [all]", max = 2, complete = "id",
    fn = function(args)
      local all = args[#args] == "all"
      if all then args[#args] = nil end
      if #args > 1 then return notify("too many arguments: :Empirical rerun [id] [all]", ERROR) end
      with_id(function(id) M.rerun(id, all) end, "rerun [id] [all]")(args)
    end },
  { name = "status", usage = "status [id]", max = 1, complete = "id", fn = with_id(M.status, "status [id]") },
  { name = "cancel", usage = "cancel [id]", max = 1, complete = "id", fn = with_id(M.cancel, "cancel [id]") },
  { name = "list", usage = "list", max = 0, fn = function() M.list() end },
  { name = "report", usage = "report [id]", max = 1, complete = "id", fn = with_id(M.report, "report [id]") },
  { name = "stop", usage = "stop [id]", max = 1, complete = "following",
    fn = function(args)
      if args[1] == nil then return M.stop() end
      with_id(M.stop, "stop [id]")(args)
    end },
}

local BY_NAME = {}
for _, sub in ipairs(M.SUBCOMMANDS) do BY_NAME[sub.name] = sub end

local function usage()
  local list = {}
  for _, sub in ipairs(M.SUBCOMMANDS) do list[#list + 1] = ":Empirical " .. sub.usage end
  return table.concat(list, "\n")
end

--- :Empirical {subcommand} [args...], the words as a list.
function M.command(words)
  local sub = BY_NAME[words[1] or ""]
  if not sub then
    local head = words[1] and ("unknown subcommand %q; "):format(words[1]) or ""
    return notify(head .. "one of:\n" .. usage(), ERROR)
  end
  local args = { unpack(words, 2) }
  if sub.max and #args > sub.max then
    return notify(("too many arguments: :Empirical %s"):format(sub.usage), ERROR)
  end
  sub.fn(args)
end

local function candidates(kind)
  local out = {}
  if kind == "environment" then
    local cfg = M.config() or {}
    local seen = {}
    local function add(e) if type(e) == "string" and not seen[e] then seen[e], out[#out + 1] = true, e end end
    add(cfg.environment)
    for _, e in ipairs(type(cfg.environments) == "table" and cfg.environments or {}) do add(e) end
    local more = {}
    for e in pairs(seen_envs) do more[#more + 1] = e end
    table.sort(more)
    for _, e in ipairs(more) do add(e) end
  elseif kind == "id" or kind == "following" then
    local ids = kind == "id" and seen_ids or order
    for i = #ids, 1, -1 do out[#out + 1] = ("%d"):format(ids[i]) end
  end
  return out
end

--- Completion of :Empirical (a 'complete' function of nvim_create_user_command).
function M.complete(lead, line, pos)
  local words = {}
  for w in line:sub(1, pos):gmatch("%S+") do words[#words + 1] = w end
  local n = #words - (lead == "" and 0 or 1)   -- words before the one being completed, the command's included
  local list
  if n <= 1 then
    list = {}
    for _, sub in ipairs(M.SUBCOMMANDS) do list[#list + 1] = sub.name end
  else
    local sub = BY_NAME[words[2]]
    if not sub then return {} end
    if n == 2 then list = candidates(sub.complete)
    elseif sub.name == "rerun" and n == 3 then list = { "all" }
    else return {} end
  end
  local out = {}
  for _, item in ipairs(list) do
    if item:sub(1, #lead) == lead then out[#out + 1] = item end
  end
  return out
end

return M
