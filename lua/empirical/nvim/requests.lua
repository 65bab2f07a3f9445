--- Requests in flight, polled from one libuv timer: req:poll() never
-- blocks, so the editor never waits on the network. The polls run on the
-- main loop (vim.schedule), where a client's on_event callback may call the
-- editor's API; each outcome is handed on in its own scheduled call.
local M = {}

local uv = vim.uv or vim.loop

local inflight = {}   -- req -> on_done(result, err)
local timer

local function tick()
  for req, on_done in pairs(inflight) do
    local ok, done, result, err = pcall(req.poll, req)
    if not ok then   -- a bug, not the network: say so rather than lose the callback
      done, result, err = true, nil, require("empirical").error("transport", "req:poll() raised: " .. tostring(done))
    end
    if done then
      inflight[req] = nil
      vim.schedule(function() on_done(result, err) end)
    end
  end
  if next(inflight) == nil then timer:stop() end
end

--- Start client:start(op, a, b); on_done(result, err) runs on the main loop
-- when it ends (also for a request refused before sending). Returns the
-- request, or nil.
function M.start(client, poll_ms, op, a, b, on_done)
  local req, err = client:start(op, a, b)
  if not req then
    vim.schedule(function() on_done(nil, err) end)
    return nil
  end
  inflight[req] = on_done
  if not timer then timer = uv.new_timer() end
  if not timer:is_active() then timer:start(0, poll_ms, vim.schedule_wrap(tick)) end
  return req
end

--- End a request in flight; its on_done is not called.
function M.abort(req)
  if req and inflight[req] then
    inflight[req] = nil
    pcall(req.abort, req)
  end
end

--- How many requests are in flight.
function M.count()
  local n = 0
  for _ in pairs(inflight) do n = n + 1 end
  return n
end

--- Run fn on the main loop after `seconds`; returns a function that cancels it.
function M.after(seconds, fn)
  local t, cancelled = uv.new_timer(), false
  t:start(math.floor(seconds * 1000 + 0.5), 0, function()
    t:close()
    vim.schedule(function() if not cancelled then fn() end end)
  end)
  return function()
    if cancelled then return end
    cancelled = true
    if not t:is_closing() then
      t:stop()
      t:close()
    end
  end
end

return M
