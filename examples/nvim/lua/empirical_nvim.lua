--- empirical in Neovim, without ever blocking the editor.
--
-- Each call is started with client:start, and a vim.loop timer drives it
-- with req:poll(), which returns at once; the result reaches the UI through
-- vim.schedule, and progress through vim.notify. Needs the module built for
-- LuaJIT (make LUA_VERSION=jit) on package.cpath, and EMPIRICALRUN_KEY.
local M = {}

local uv = vim.loop

--- Defaults, changed with setup{}.
M.config = {
  poll_ms = 50,      -- how often a timer polls a request in flight
  interval = 5,      -- seconds between reads of a running run
  client = nil,      -- options for empirical.new (token, base_url...); nil: from the environment
}

--- The last run followed: {id, state, verdict} once it ended.
M.last = nil

function M.setup(config)
  for k, v in pairs(config or {}) do M.config[k] = v end
  if M._client then M._client:close() M._client = nil end
end

local function notify(text, level)
  vim.notify("empirical: " .. text, level or vim.log.levels.INFO)
end

local function client()
  if M._client then return M._client end
  local empirical = require("empirical")
  local options = { user_agent = "nvim" }
  for k, v in pairs(M.config.client or {}) do options[k] = v end
  local c, err = empirical.new(options)
  if not c then return nil, err end
  M._client = c
  return c
end

-- Poll req from a timer until it is done; then on_done(result, err) runs
-- on the main loop, where the editor's API may be called.
local function drive(req, on_done)
  local timer = uv.new_timer()
  timer:start(0, M.config.poll_ms, function()
    local done, result, err = req:poll()
    if done then
      timer:stop()
      timer:close()
      vim.schedule(function() on_done(result, err) end)
    end
  end)
end

-- Start op on the shared client and call on_done(result, err) when it ends.
local function call(op, arg, on_done)
  local c, err = client()
  if not c then return notify(tostring(err), vim.log.levels.ERROR) end
  local req
  req, err = c:start(op, arg)
  if not req then return on_done(nil, err) end
  drive(req, on_done)
end

local function progress_line(detail)
  local r = detail.testRun
  local done = (r.success_count or 0) + (r.failed_count or 0) + (r.skipped_count or 0)
  return ("run %d %s: %d/%d done, %d failed"):format(r.id, r.state, done, r.total_count, r.failed_count)
end

local TERMINAL = { ended = true, error = true, cancelled = true }

-- Read the run every config.interval seconds until it ends.
local function follow(id, last_line)
  call("get", id, function(detail, err)
    if not detail then return notify(tostring(err), vim.log.levels.ERROR) end
    local line = progress_line(detail)
    if line ~= last_line then notify(line) end
    if TERMINAL[detail.testRun.state] then
      local empirical = require("empirical")
      local verdict = empirical.verdict(detail)
      M.last = { id = detail.testRun.id, state = detail.testRun.state, verdict = verdict }
      return notify(empirical.summary(detail), verdict == "passed" and vim.log.levels.INFO or vim.log.levels.WARN)
    end
    vim.defer_fn(function() follow(id, line) end, math.floor(M.config.interval * 1000))
  end)
end

--- :EmpiricalRun {environment}
function M.run(environment)
  M.last = nil
  call("trigger", { environment = environment }, function(run, err)
    if not run then return notify(tostring(err), vim.log.levels.ERROR) end
    notify(("triggered run %d on %s"):format(run.id, environment))
    follow(run.id)
  end)
end

--- :EmpiricalStatus {id}
function M.status(id)
  call("get", tonumber(id) or id, function(detail, err)
    if not detail then return notify(tostring(err), vim.log.levels.ERROR) end
    notify(require("empirical").summary(detail))
  end)
end

return M
