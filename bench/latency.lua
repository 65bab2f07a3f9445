-- Verdict latency: empirical.poll's schedule against a fixed 5 s poll, both
-- polling the same runs on the real fake (lua/empirical/fake) over loopback.
--
-- Time is the fake's: it is spawned with its clock stopped (speed 0) and
-- this harness moves it, so a sleep of the schedule is a jump of the fake's
-- clock, and 20 minutes of a run take a few seconds of real time with no
-- jitter in them. Steady runs are the fake's own (one test every
-- test_seconds). Bursty runs (bench/runs.lua: 3 to 10 bursts at irregular
-- gaps) are made with the same clock: while no burst comes the fake's clock
-- stands still within the run, and at a burst it jumps over the tests the
-- burst finishes; before the run starts and after it ends the clocks agree.
--
--   lua5.4 bench/latency.lua [--quick]     prints a markdown table
package.path = "./bench/?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local empirical = require("empirical")
local fake = require("empirical.fake")
local poll = require("empirical.poll")
local runs = require("runs")
local util = require("util")

local QUICK = arg[1] == "--quick"
local RUNS = QUICK and 2 or 24          -- runs per cell
local MINUTES = QUICK and { 1, 5 } or { 1, 5, 20 }
local TESTS, QUEUE_SECONDS, FIXED = 60, 1, 5   -- tests a run (the fake answers slowly past ~90 done)

local f, client    -- a fake for each run length: test_seconds is the fake's

-- Move the fake's clock. The handle's own control call goes through
-- socket.http, which writes a request in pieces and with Nagle on waits for
-- a delayed ACK (40 ms) on each; a socket made with its descriptor at once
-- (tcp4) takes TCP_NODELAY before it connects.
local http, ltn12, socket, cjson = require("socket.http"), require("ltn12"), require("socket"), require("cjson")
local function create()
  local sock = socket.tcp4()
  assert(sock:setoption("tcp-nodelay", true))
  return sock
end
local function advance(seconds)
  local body = cjson.encode { advance = seconds }
  local _, status = http.request { url = f.url .. "/_fake/clock", method = "POST", create = create,
                                   source = ltn12.source.string(body), sink = ltn12.sink.null(),
                                   headers = { ["content-length"] = #body, ["content-type"] = "application/json" } }
  assert(status == 200, "the fake's clock: " .. tostring(status))
end

-- One run, polled by both from `start` on: {ours = {delay, polls}, fixed = {delay, polls}}.
local function one_run(pattern, minutes, seed)
  local rng = runs.rng(seed)
  local duration = minutes * 60
  local n, test_seconds = TESTS, minutes * 60 / TESTS
  local tests = {}
  for i = 1, n do tests[i] = { name = "suite > test " .. i, outcome = "passed" } end
  f:reset()
  f:scenario { tests = tests }
  local created = assert(client:trigger { environment = "staging" })
  local wall0 = poll.parse_time(created.created_at)
  local done_at = runs.completions(pattern, n, duration, rng)   -- after the start
  local ends_at = QUEUE_SECONDS + duration
  -- The fake's clock at harness time T.
  local function fake_time(T)
    if pattern == "steady" or T < QUEUE_SECONDS or T >= ends_at then return T end
    local k = 0
    while k < n and QUEUE_SECONDS + done_at[k + 1] <= T do k = k + 1 end
    return QUEUE_SECONDS + k * test_seconds + 1e-6
  end
  local clock = 0
  local T = 0
  local function poll_at(at)
    T = at
    local target = fake_time(T)
    if target > clock then
      advance(target - clock)
      clock = target
    end
    return client:get(created.id)
  end
  local schedule = assert(poll.new { interval = FIXED, wall = function() return wall0 + T end })
  local start = rng() * FIXED
  local pollers = {
    ours = { next = start, polls = 0 },
    fixed = { next = start, polls = 0 },
  }
  while not (pollers.ours.verdict and pollers.fixed.verdict) do
    local name = (not pollers.ours.verdict and (pollers.fixed.verdict or pollers.ours.next <= pollers.fixed.next))
                 and "ours" or "fixed"
    local p = pollers[name]
    local detail = assert(poll_at(p.next))
    p.polls = p.polls + 1
    local state = detail.testRun.state
    if state == "ended" then
      p.verdict = T - ends_at
    elseif name == "ours" then
      schedule:observe(detail, T)
      p.next = T + schedule:next(T)
    else
      p.next = T + FIXED
    end
    assert(T < ends_at + 60, "no verdict a minute after the end")
  end
  return pollers
end

local rows = {}
for _, minutes in ipairs(MINUTES) do
  f = assert(fake.spawn { speed = 0, test_seconds = minutes * 60 / TESTS, queue_seconds = QUEUE_SECONDS })
  client = assert(empirical.new { token = f.token, base_url = f.url })
  for _, pattern in ipairs(runs.PATTERNS) do
    io.stderr:write(("  latency: %d min, %s\n"):format(minutes, pattern))
    local d = { ours = {}, fixed = {} }
    local polls = { ours = 0, fixed = 0 }
    for r = 1, RUNS do
      local result = one_run(pattern, minutes, r * 104729 + minutes)
      for _, name in ipairs { "ours", "fixed" } do
        d[name][r] = result[name].verdict
        polls[name] = polls[name] + result[name].polls
      end
    end
    rows[#rows + 1] = ("| %d min | %s | %d | **%.1f s** | **%.1f s** | %d | %.1f s | %.1f s | %d | %.2f |"):format(
      minutes, pattern, RUNS, util.median(d.ours), util.max(d.ours), polls.ours,
      util.median(d.fixed), util.max(d.fixed), polls.fixed, polls.ours / polls.fixed)
  end
  client:close()
  f:stop()
end

print(("The fake's clock, moved by the harness; %d runs a row, each polled from a random moment in the first %d s"
       .. " by both; %d tests a run, %d s queued. Delay: from the run's end to the poll that saw it ended.\n")
        :format(RUNS, FIXED, TESTS, QUEUE_SECONDS))
print("| run | tests finish | runs | ours: median delay | ours: worst | ours: requests | fixed 5 s: median"
      .. " | fixed 5 s: worst | fixed 5 s: requests | requests, ours / fixed |")
print("|---|---|---|---|---|---|---|---|---|---|")
for _, r in ipairs(rows) do print(r) end
