-- empirical.poll: the schedule alone, fed synthetic run details and times.
-- Simulated runs (bench/runs.lua: steady or bursty test completion) check
-- what a release pipeline cares about: how late the verdict comes after the
-- run's end, and that no more requests are made than a fixed 5 s poll makes.
package.path = "./bench/?.lua;" .. package.path
local poll = require("empirical.poll")
local runs = require("runs")

local WALL0 = 1800000000   -- Unix time at the simulated trigger

local function median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

-- Poll a simulated run from `start` until it ends: the delay from its end
-- to the poll that saw it, and the times of every poll.
local function simulate(run, start, opts)
  local t = start
  opts = opts or {}
  opts.wall = function() return WALL0 + t end
  local s = assert(poll.new(opts))
  local times = {}
  while true do
    local detail = run:detail(t)
    times[#times + 1] = t
    s:observe(detail, t)
    if detail.testRun.state == "ended" then return t - run.ends_at, times end
    local wait = s:next(t)
    assert(wait >= 0 and wait < math.huge)
    t = t + wait
  end
end

local function fixed_poll(run, start)
  local k = math.ceil((run.ends_at - start) / 5)
  return start + 5 * k - run.ends_at, k + 1
end

describe("empirical.poll", function()
  describe("new", function()
    it("refuses options it cannot use, naming them", function()
      for _, case in ipairs {
        { { interval = 0 }, "opts.interval" }, { { interval = "5" }, "opts.interval" },
        { { interval = 0 / 0 }, "opts.interval" }, { { max_interval = math.huge }, "opts.max_interval" },
        { { interval = 5, min_interval = 6 }, "opts.min_interval" },
        { { interval = 5, max_interval = 4 }, "opts.max_interval" },
        { { history = { 60, -1 } }, "opts.history[2]" }, { { history = "60" }, "opts.history" },
        { { wall = 12 }, "opts.wall" }, { { margin = -0.1 }, "opts.margin" },
      } do
        local s, err = poll.new(case[1])
        assert.is_nil(s)
        assert.are.equal("invalid", err.kind)
        assert.are.equal(case[2], err.field)
        assert.truthy(tostring(err):find(case[2], 1, true))
      end
      local s, err = poll.new("fast")
      assert.is_nil(s)
      assert.are.equal("opts", err.field)
    end)

    it("takes defaults, and an interval beyond the default bounds moves them", function()
      assert.truthy(poll.new())
      local s = assert(poll.new { interval = 60 })
      assert.are.equal(60, s.max_interval)
      s = assert(poll.new { interval = 0.5 })
      assert.are.equal(0.5, s.min_interval)
    end)
  end)

  describe("parse_time", function()
    it("reads the API's timestamps and offsets", function()
      assert.are.equal(0, poll.parse_time("1970-01-01T00:00:00Z"))
      assert.are.equal(1795514401.25, poll.parse_time("2026-11-24T10:00:01.250Z"))
      assert.are.equal(1795514401, poll.parse_time("2026-11-24T12:00:01+02:00"))
      assert.are.equal(951782400, poll.parse_time("2000-02-29T00:00:00Z"))
    end)

    it("answers nil for what is not a timestamp", function()
      for _, v in ipairs { "yesterday", "2026-11-24", "2026-11-24T10:00:01Q", 12, false } do
        assert.is_nil(poll.parse_time(v))
      end
      assert.is_nil(poll.parse_time(nil))
    end)
  end)

  describe("next", function()
    local function detail(fields)
      local run = { id = 1, state = "started", total_count = 100, success_count = 0, failed_count = 0,
                    skipped_count = 0, run_started_at = "2027-01-15T08:00:00Z" }
      for k, v in pairs(fields or {}) do run[k] = v end
      return { testRun = run }
    end
    local START = poll.parse_time("2027-01-15T08:00:00Z")

    it("polls at once before the first poll, and at once after a final state", function()
      local s = assert(poll.new())
      assert.are.equal(0, s:next(0))
      for _, state in ipairs { "ended", "error", "cancelled" } do
        s:observe(detail { state = state }, 1)
        assert.are.equal(0, s:next(1))
      end
    end)

    it("polls every interval while the run shows no progress", function()
      for _, fields in ipairs {
        { state = "queued", run_started_at = nil }, { state = "pending", run_started_at = nil }, {},
        { success_count = nil, failed_count = nil, skipped_count = nil }, { total_count = nil },
        { total_count = 0 }, { run_started_at = nil },
      } do
        local s = assert(poll.new { interval = 5, wall = function() return START + 30 end })
        s:observe(detail(fields), 100)
        assert.are.equal(5, s:next(100))
        s:observe(detail(fields), 105)
        assert.are.equal(5, s:next(105))
      end
    end)

    it("waits longer while the end is far, up to max_interval, and never longer", function()
      local t = 0
      local s = assert(poll.new { interval = 5, max_interval = 30, wall = function() return START + t end })
      for i = 1, 5 do      -- a steady run: 1 test every 6 s, 100 tests
        t = i * 12
        s:observe(detail { success_count = 2 * i }, t)
      end
      local wait = s:next(t)
      assert.is_true(wait > 5)
      assert.is_true(wait <= 30)
    end)

    it("polls often once every test is done", function()
      local s = assert(poll.new { interval = 5, min_interval = 1, wall = function() return START + 300 end })
      for i = 1, 20 do s:observe(detail { success_count = 90 }, 100 + i * 5) end   -- polls banked? none: every 5 s
      s = assert(poll.new { interval = 5, min_interval = 1, wall = function() return START + 300 end })
      s:observe(detail { success_count = 10 }, 0)
      s:observe(detail { success_count = 97, failed_count = 2, skipped_count = 1 }, 300)
      assert.are.equal(1, s:next(300))
    end)

    it("uses the project's recent durations while no test is done yet", function()
      local t = 10
      local s = assert(poll.new { interval = 5, history = { 600, 660 }, wall = function() return START + t end })
      s:observe(detail(), t)
      assert.is_true(s:next(t) > 5)
      local plain = assert(poll.new { interval = 5, wall = function() return START + t end })
      plain:observe(detail(), t)
      assert.are.equal(5, plain:next(t))
    end)

    it("falls back to the interval when a wall clock far off the server's makes the counts disagree", function()
      for _, offset in ipairs { -3600, 3600 * 24 * 365 } do
        local t = 0
        local s = assert(poll.new { wall = function() return START + offset + t end })
        for i = 1, 10 do
          t = i * 5
          s:observe(detail { success_count = i * 3 }, t)
          local wait = s:next(t)
          assert.is_true(wait >= 1 and wait <= 30)
          if i >= 5 then assert.are.equal(5, wait) end
        end
      end
    end)
  end)

  describe("failures", function()
    it("honours Retry-After, even beyond max_interval", function()
      local s = assert(poll.new { interval = 5, max_interval = 30 })
      s:observe({ testRun = { state = "started" } }, 0)
      s:failed({ kind = "http", status = 429, retry_after = 120 }, 5)
      assert.are.equal(120, s:next(5))
      assert.are.equal(60, s:next(65))
      s:failed({ kind = "http", status = 503, retry_after = 2 }, 125)
      assert.is_true(s:next(125) >= 2)
    end)

    it("backs off exponentially on errors, up to max_interval, and recovers after a success", function()
      local s = assert(poll.new { interval = 5, max_interval = 30 })
      local t, waits = 0, {}
      for i = 1, 6 do
        s:failed({ kind = "transport", message = "connection refused" }, t)
        waits[i] = s:next(t)
        t = t + waits[i]
      end
      assert.are.same({ 5, 10, 20, 30, 30, 30 }, waits)
      s:observe({ testRun = { state = "queued" } }, t)
      assert.are.equal(5, s:next(t))
    end)

    it("takes an error object without retry_after, or none at all", function()
      local s = assert(poll.new())
      s:failed(nil, 0)
      assert.are.equal(5, s:next(0))
      s:failed({ retry_after = "soon" }, 5)
      assert.are.equal(10, s:next(5))
    end)
  end)

  describe("on simulated runs", function()
    for _, minutes in ipairs { 1, 5, 20 } do
      for _, pattern in ipairs(runs.PATTERNS) do
        it(("of %d min with %s test completion: median delay <= 3 s, worst <= 6 s, no more requests than a fixed 5 s poll")
             :format(minutes, pattern), function()
          local delays, ours, fixed = {}, 0, 0
          for seed = 1, 40 do
            local rng = runs.rng(seed * 7919 + minutes)
            local duration = minutes * 60
            local run = runs.run(runs.completions(pattern, math.floor(duration / 2), duration, rng), 1 + 10 * rng(), WALL0)
            local start = rng() * 5
            local delay, times = simulate(run, start)
            local fixed_delay, fixed_polls = fixed_poll(run, start)
            delays[seed] = delay
            ours, fixed = ours + #times, fixed + fixed_polls
            assert.is_true(delay >= 0)
            assert.is_true(delay <= 6, ("seed %d: %.1f s late (a fixed poll: %.1f s)"):format(seed, delay, fixed_delay))
            assert.is_true(#times <= fixed_polls + 1, ("seed %d: %d polls against %d"):format(seed, #times, fixed_polls))
            for i = 2, #times do
              assert.is_true(times[i] - times[i - 1] >= 1 - 1e-9)                   -- min_interval
              assert.is_true(times[i] - times[i - 1] <= 30 + 1e-9)                  -- max_interval
              assert.is_true(i <= 1 + math.floor((times[i] - times[1]) / 5 + 1e-9)) -- the budget, at every poll
            end
          end
          assert.is_true(median(delays) <= 3, ("median %.2f s"):format(median(delays)))
          assert.is_true(ours <= fixed, ("%d requests against %d"):format(ours, fixed))
          if pattern == "steady" then   -- where progress says when the end comes, it pays
            assert.is_true(median(delays) < 2, ("median %.2f s"):format(median(delays)))
            assert.is_true(ours < fixed * 0.95, ("%d requests against %d"):format(ours, fixed))
          end
        end)
      end
    end

    it("notices a run that ends long after the counts said it would", function()
      -- Steady for 100 tests, then the last one hangs for 10 minutes.
      local completions = runs.completions("steady", 100, 200, runs.rng(1))
      completions[100] = 800
      local run = runs.run(completions, 2, WALL0)
      local delay, times = simulate(run, 0)
      assert.is_true(delay <= 6)
      assert.is_true(#times <= select(2, fixed_poll(run, 0)))
    end)

    it("notices a run that ends long before the counts said it would", function()
      -- Steady for 20 of 100 tests, then the other 80 finish at once.
      local completions = runs.completions("steady", 100, 500, runs.rng(1))
      for i = 21, 100 do completions[i] = 110 end
      local run = runs.run(completions, 2, WALL0)
      local delay = simulate(run, 0)
      assert.is_true(delay <= 30)   -- max_interval bounds the surprise
    end)
  end)
end)
