-- The program of spec/fuzz/fuzz_callbacks.c: run(input, port, dead_port)
-- reads the input's bytes as actions on clients of the Lua layer, and the
-- callbacks those clients are given (on_event; wait's on_poll,
-- on_poll_error and sleep) read further bytes and act too: start, call,
-- poll, wait on and abort requests of every operation (their own included),
-- close and make clients, wait on runs, fan out, page through runs, fetch
-- reports, raise, yield, resume what yielded, drop requests, collect
-- garbage. Each top-level action runs in a coroutine, so a callback that
-- yields suspends the wait it was called from; later actions may resume it.
--
-- It raises, listing what broke, when:
-- - a public call answered other than a result or nil, err (a poll other
--   than false | true, result | true, nil, err), or raised; inside a callback
--   only a refusal as "busy" (a callback polling the request it observes)
--   and a yield that cannot cross C are expected raises;
-- - an error object shows the token;
-- - a success on_event reported was not matched by a result some call
--   returned (per method and path): a busy refusal, a closed client or an
--   abort must never lose a result the server gave.
local empirical = require("empirical")
local core = require("empirical.core")

local OPS, ROWS = core.OPERATIONS, {}
for _, row in ipairs(OPS) do ROWS[row.name] = row end
local TOKEN = "fuzz-token-5ecret"
local MAX_ACTIONS = 48
local MAX_DEPTH = 3
-- FUZZ_CALLBACKS_TRACE=1: each action and event on stderr, to read what an input does.
local TRACE = os.getenv("FUZZ_CALLBACKS_TRACE") ~= nil
local NAMES = { "start", "call", "poll", "wait", "abort", "close", "new client", "raise", "yield", "gc",
                "wait on a run", "fan out", "runs", "report", "resume", "drop" }

local EXPECTED_RAISES = {
  "is busy: a callback of its own cannot poll or wait on it",
  "attempt to yield",
}

local function expected_raise(e)
  for _, text in ipairs(EXPECTED_RAISES) do
    if type(e) == "string" and e:find(text, 1, true) then return true end
  end
  return false
end

return function(input, port, dead_port)
  local pos, budget = 0, MAX_ACTIONS
  local problems, stats = {}, { busy = 0, results = 0, successes = 0 }
  local clients, records, tasks = {}, {}, {}
  local tracked, successes, results, dropped = {}, {}, {}, {}
  local depth = setmetatable({}, { __mode = "k" })   -- callback nesting, per coroutine
  local act, on_event, on_poll, on_poll_error, sleep

  local function byte()
    pos = pos + 1
    return input:byte(pos) or 0
  end
  local function more() return pos < #input and budget > 0 end
  local function problem(text) problems[#problems + 1] = text end

  local function is_error(err, where)
    if type(err) ~= "table" or type(err.kind) ~= "string" or type(err.message) ~= "string" then
      problem(where .. ": a failure without an error object: " .. tostring(err))
      return false
    end
    if err.message:find(TOKEN, 1, true) then problem(where .. ": the token in an error: " .. err.message) end
    return true
  end

  -- result | nil, err: checked, and a result counted once for its label.
  local function outcome(where, rec, n, result, err)
    if result ~= nil then
      if err ~= nil or n > 1 then problem(where .. ": a result and more") end
      if rec and not rec.counted then
        rec.counted = true
        if rec.label then results[rec.label] = (results[rec.label] or 0) + 1 end
      end
      stats.results = stats.results + 1
    elseif n == 2 then
      is_error(err, where)
    else
      problem(("%s: %d values, the first nil"):format(where, n))
    end
  end
  local function check_call(where, rec, ...) outcome(where, rec, select("#", ...), ...) end

  local function check_poll(where, rec, ...)
    local n, done, result, err = select("#", ...), ...
    if done == false and result == nil and err == nil then return end   -- not yet (a report's poll adds nils)
    if done ~= true or n ~= 3 then problem(("%s: poll gave %d values, %s first"):format(where, n, tostring(done))) return end
    outcome(where, rec, result ~= nil and 1 or 2, result, err)
  end

  -- The label of a call, as its on_event reports it.
  local function label_of(row, a, b)
    local params = type(a) == "table" and a or { id = a }
    for k, v in pairs(b or {}) do params[k] = v end
    local req = assert(core.encode(row.name, params))
    return row.method .. " " .. req.path
  end

  -- A call's arguments: tracked runs have ids 1 to 8 (wait's are 100+,
  -- report's 200+, so their gets are told apart).
  local function args_for(row, b)
    local id = b % 8 + 1
    if row.name == "trigger" then return { environment = "staging", tags = { "@fuzz" } } end
    if row.name == "list" then return { page = 1, per_page = b % 3 + 1 } end
    if row.name == "cancel" and b % 2 == 0 then return id, { reason = "fuzz" } end
    if row.name == "rerun" and b % 2 == 0 then return id, { only_failed = true } end
    if #row.path_params == 0 then return {} end
    return id
  end

  -- A client: on the server or the refusing port, with 0 to 2 retries, and
  -- a deadline that cuts the backoff short (0.02 s: almost never a retry;
  -- 0.3 s: most first retries fit; at most 0.1 s on the refusing port,
  -- where every attempt fails), so nothing waits long.
  local DEADLINES = { 0.02, 0.1, 0.3 }
  local function new_client(i)
    local b = byte()
    local refused = b % 4 == 3
    local c, err = empirical.new {
      token = TOKEN, base_url = "http://127.0.0.1:" .. (refused and dead_port or port),
      retries = (b // 4) % 3, deadline = DEADLINES[(b // 12) % (refused and 2 or 3) + 1], timeout = 2,
      connect_timeout = 2, on_event = on_event,
    }
    if c then clients[i] = c else is_error(err, "new") end
  end

  local function pick_client() return clients[byte() % 3 + 1] end
  local function pick_record() if #records > 0 then return records[byte() % #records + 1] end end

  local function run_task(co)
    local ok, e = coroutine.resume(co)
    if not ok then problem("a raise at the top: " .. tostring(e)) end
    if coroutine.status(co) == "suspended" then tasks[#tasks + 1] = co end
  end

  -- Actions: the same at the top and in callbacks (in_callback: raising and
  -- yielding are the callback's, done at its end).
  local ACTIONS = {
    function()   -- start
      local row, c = OPS[byte() % #OPS + 1], pick_client()
      if not c then return end
      local a, b = args_for(row, byte())
      local label = label_of(row, a, b)
      local req, err = c:start(row.name, a, b)
      if req then
        tracked[label] = true
        records[#records + 1] = { req = req, label = label }
      else
        is_error(err, "start " .. row.name)
      end
    end,
    function()   -- a blocking call
      local row, c = OPS[byte() % #OPS + 1], pick_client()
      if not c then return end
      local a, b = args_for(row, byte())
      local rec = { label = label_of(row, a, b) }
      tracked[rec.label] = true
      check_call(row.name, rec, c[row.name](c, a, b))
    end,
    function()   -- poll
      local rec = pick_record()
      if rec then check_poll("poll", rec, rec.req:poll()) end
    end,
    function()   -- wait
      local rec = pick_record()
      if rec then check_call("wait", rec, rec.req:wait()) end
    end,
    function()   -- abort
      local rec = pick_record()
      if rec and rec.req:abort() ~= true then problem("abort did not return true") end
    end,
    function()   -- close
      local c = pick_client()
      if c then c:close() end
    end,
    function() new_client(byte() % 3 + 1) end,
    function(cb) if cb then cb.finish = "raise" end end,
    function(cb)
      if cb and byte() % 2 == 0 then cb.finish = "yield" else coroutine.yield() end
    end,
    function() collectgarbage() end,
    function()   -- wait on a run, with callbacks
      local c, b = pick_client(), byte()
      if not c then return end
      local opts = { timeout = 0.02, interval = 0.001, max_interval = 0.002, max_poll_failures = b % 3 + 1 }
      if b & 8 == 0 then opts.on_poll = on_poll end
      if b & 16 == 0 then opts.on_poll_error = on_poll_error end
      if b & 32 == 0 then opts.sleep = sleep end
      local detail, info = c:wait(100 + b % 4, opts)
      if detail == nil then is_error(info, "wait")
      elseif type(info) ~= "table" or type(detail.testRun) ~= "table" then problem("wait: a detail without its info") end
    end,
    function()   -- fan out
      local c, b = pick_client(), byte()
      if not c then return end
      local op, list = "get", { b % 8 + 1, (b // 8) % 8 + 1 }
      if b & 64 ~= 0 then op, list = "trigger", { { environment = "a" }, { environment = "b" } } end
      local got, errs = c[op .. "_all"](c, list)
      if not got then is_error(errs, op .. "_all") return end
      for i = 1, #list do
        local rec = { label = label_of(ROWS[op], list[i]) }
        tracked[rec.label] = true
        outcome(op .. "_all", rec, got[i] ~= nil and 1 or 2, got[i], errs[i])
      end
    end,
    function()   -- page through runs
      local c = pick_client()
      if not c then return end
      for run, err in c:runs({ state = "ended" }, byte() % 4 + 1) do
        if not run then is_error(err, "runs") end
      end
    end,
    function()   -- a report: blocking, or started
      local c, b = pick_client(), byte()
      if not c then return end
      if b % 2 == 0 then check_call("report", nil, c:report(200 + b % 4)) return end
      local req, err = c:start("report", 200 + b % 4)
      if req then records[#records + 1] = { req = req } else is_error(err, "start report") end
    end,
    function()   -- resume what a callback suspended
      if #tasks > 0 then run_task(table.remove(tasks, byte() % #tasks + 1)) end
    end,
    function()   -- drop a request: the collector may take it while in flight
      if #records == 0 then return end
      local rec = table.remove(records, byte() % #records + 1)
      if rec.label then dropped[rec.label] = true end
    end,
  }

  function act(b, cb)
    budget = budget - 1
    if TRACE then io.stderr:write(("%s%s\n"):format(cb and "  callback: " or "", NAMES[b % #ACTIONS + 1])) end
    ACTIONS[b % #ACTIONS + 1](cb)
  end

  -- A callback: a few actions, each in its own pcall (a raise there is a
  -- public call's, and only "busy" or a refused yield is expected), then
  -- what the callback itself was asked to do: return, raise or yield.
  local function callback(name)
    return function()
      local co = coroutine.running()
      local d = depth[co] or 0
      if d >= MAX_DEPTH or not more() then return true end
      depth[co] = d + 1
      local cb = {}
      for _ = 1, byte() % 3 do
        if not more() then break end
        local ok, e = pcall(act, byte(), cb)
        if not ok then
          if not expected_raise(e) then problem(name .. ": a raise inside: " .. tostring(e)) end
          if type(e) == "string" and e:find("is busy", 1, true) then stats.busy = stats.busy + 1 end
        end
      end
      depth[co] = d
      if cb.finish == "raise" then error("fuzz: " .. name .. " raised") end
      if cb.finish == "yield" then coroutine.yield() end
      return true
    end
  end

  local observe = callback("on_event")
  function on_event(ev)
    if type(ev) ~= "table" or type(ev.method) ~= "string" or type(ev.path) ~= "string" then
      problem("on_event: an event without method and path")
      return
    end
    if TRACE then
      io.stderr:write(("event %s %s attempt %s kind %s retry_in_ms %s\n"):format(ev.method, ev.path,
        tostring(ev.attempt), tostring(ev.kind), tostring(ev.retry_in_ms)))
    end
    if ev.kind == nil then
      local label = ev.method .. " " .. ev.path
      successes[label] = (successes[label] or 0) + 1
      stats.successes = stats.successes + 1
    end
    observe()
  end
  local poll_cb, poll_error_cb, sleep_cb = callback("on_poll"), callback("on_poll_error"), callback("sleep")
  function on_poll(detail, info)
    if type(detail) ~= "table" or type(info) ~= "table" then problem("on_poll: no detail or info") end
    poll_cb()
  end
  function on_poll_error(err, consecutive)
    is_error(err, "on_poll_error")
    if math.type(consecutive) ~= "integer" then problem("on_poll_error: no count") end
    poll_error_cb()
  end
  -- wait's sleep: returns at once, sleeps a moment, or ends the wait with an
  -- error; its callback part may also raise or yield.
  function sleep()
    local b = byte() % 4
    sleep_cb()
    if b == 1 then return empirical.sleep(0.0005) end
    if b == 2 then return nil, empirical.error("interrupted", "fuzz: the sleep was cut") end
    return true
  end

  for i = 1, 3 do new_client(i) end
  while more() do
    local b = byte()
    run_task(coroutine.create(function() act(b) end))
  end

  -- The end: callbacks only record from here on; what yielded is resumed
  -- (a wait goes on to its timeout), every request settled, clients closed.
  budget = 0
  for _ = 1, 3 do
    local waiting = tasks
    tasks = {}
    for _, co in ipairs(waiting) do run_task(co) end
  end
  local settle = coroutine.wrap(function()
    for _, rec in ipairs(records) do check_call("final wait", rec, rec.req:wait()) end
  end)
  settle()
  for _, c in pairs(clients) do c:close() end

  for label, n in pairs(successes) do
    if tracked[label] and not dropped[label] and n > (results[label] or 0) then
      problem(("%s: %d successes reported by on_event, %d results returned"):format(label, n, results[label] or 0))
    end
  end
  if #problems > 0 then error(table.concat(problems, "\n"), 0) end
  return stats
end
