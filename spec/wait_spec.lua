-- client:wait against the fake: every way a run ends, the deadline, the
-- poll schedule, and which failed polls are tolerated.
local empirical = require("empirical")
local core = require("empirical.core")
local helper = require("helper")

local ALL_PASS = { tests = { { name = "a", outcome = "passed" }, { name = "b", outcome = "flaky" } } }

describe("client:wait", function()
  local fake, client

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    client = helper.client(fake, { retries = 0 })
  end)
  after_each(function() client:close() end)

  local function trigger(params)
    return assert(client:trigger(params or { environment = "staging" })).id
  end

  describe("returns the final detail", function()
    it("of a run that passes, with flaky tests counted", function()
      fake:scenario(ALL_PASS)
      local detail, info = assert(client:wait(trigger(), { interval = 0.02 }))
      assert.equal("ended", detail.testRun.state)
      assert.equal("passed", empirical.verdict(detail))
      assert.equal(1, detail.testRun.flaky_count)
      assert.equal("ended", info.states[#info.states])
      assert.equal(helper.count(fake:log(), "GET"), info.polls)
      assert.is_false(info.superseded)
    end)

    it("of a run with failed tests", function()
      local detail = assert(client:wait(trigger(), { interval = 0.02 }))
      assert.equal("failed", empirical.verdict(detail))
      assert.same({ "checkout > pays with card" }, empirical.failed_tests(detail))
    end)

    it("of a run that ends in error", function()
      fake:scenario { end_state = "error" }
      local detail = assert(client:wait(trigger(), { interval = 0.02 }))
      assert.equal("error", detail.testRun.state)
      assert.equal("error", empirical.verdict(detail))
    end)

    it("of a run cancelled while it ran", function()
      fake:clock { speed = 5 }                   -- slow enough to be seen running, even under valgrind
      local id = trigger()
      local detail, info = assert(client:wait(id, { interval = 0.02, on_poll = function(d)
        local state = d.testRun.state
        if state == "queued" or state == "started" then fake:set_state(id, "cancelled") end
      end }))
      assert.equal("cancelled", empirical.verdict(detail))
      assert.is_false(info.superseded)
    end)

    it("and says so when a newer trigger cancelled the run while it was pending", function()
      fake:scenario { pending_seconds = 60 }
      local id, newer = trigger(), nil
      local detail, info = assert(client:wait(id, { interval = 0.02, on_poll = function(d)
        if d.testRun.state == "pending" and not newer then newer = trigger() end
      end }))
      assert.equal("cancelled", detail.testRun.state)
      assert.same({ "pending", "cancelled" }, info.states)
      assert.is_true(info.superseded)
      assert.matches("newer trigger", empirical.summary(detail, info))
    end)
  end)

  describe("polls", function()
    it("every 5 s while the run shows no progress, with the sleep and clock it is given, and sees the end soon", function()
      fake:clock { speed = 0 }
      fake:scenario { pending_seconds = 120 }        -- ends at 124 s of fake time
      local id, sleeps, t = trigger(), {}, 0
      local detail = assert(client:wait(id, {
        clock = function() return t end,
        sleep = function(s)
          sleeps[#sleeps + 1] = s
          t = t + s
          fake:clock { advance = s }
        end,
      }))
      assert.equal("ended", detail.testRun.state)
      for i = 1, 24 do assert.equal(5, sleeps[i]) end   -- pending: nothing to go on but the interval
      assert.is_true(t >= 124 and t - 124 <= 6, ("the end at 124 s was seen at %.1f s"):format(t))
      local gets = helper.count(fake:log(), "GET")
      assert.equal(#sleeps + 1, gets)
      assert.is_true(gets <= math.floor(t / 5) + 1, ("%d polls in %.1f s"):format(gets, t))
    end)

    it("leaves the options table as it was, so it can be used again", function()
      local opts = { interval = 0.02 }
      assert(client:wait(trigger(), opts))
      assert.same({ interval = 0.02 }, opts)
      assert(client:wait(trigger { environment = "production" }, opts))
    end)

    it("calls on_poll after every poll with the detail and what wait knows", function()
      local seen = {}
      local _, info = assert(client:wait(trigger(), { interval = 0.02, on_poll = function(d, i)
        seen[#seen + 1] = d.testRun.state
        assert.equal(#seen, i.polls)
      end }))
      assert.equal(info.polls, #seen)
      assert.equal("ended", seen[#seen])
    end)

    it("sleeps in the core by default instead of spinning", function()
      fake:clock { speed = 4 }
      local cpu = os.clock()
      assert(client:wait(trigger(), { interval = 0.2 }))   -- about 1 s of run
      assert.is_true(os.clock() - cpu < 0.3, "CPU seconds spent waiting: " .. (os.clock() - cpu))
    end)
  end)

  describe("with a deadline", function()
    it("gives up with kind timeout and the last detail", function()
      fake:scenario { pending_seconds = 1e6 }
      local id = trigger()
      local t0 = core.now()
      local detail, err = client:wait(id, { interval = 0.05, timeout = 0.4 })
      local took = core.now() - t0
      assert.is_nil(detail)
      assert.equal("timeout", err.kind)
      assert.equal("pending", err.detail.testRun.state)
      assert.matches("still pending after", err.message)
      assert.is_true(took >= 0.4 and took < 2, "took " .. took)
    end)

    it("bounds a poll the server never answers", function()
      local id = trigger()
      fake:script { method = "GET", delay = 10 }
      local t0 = core.now()
      local _, err = client:wait(id, { interval = 0.05, timeout = 0.3 })
      assert.equal("timeout", err.kind)
      assert.is_true(core.now() - t0 < 3, "took " .. (core.now() - t0))
    end)
  end)

  describe("poll failures", function()
    it("tolerates failed polls in a row up to max_poll_failures", function()
      local id = trigger()
      fake:script({ method = "GET", status = 503, body = "", times = 2 }, { method = "GET", drop = "mid_body", body = { data = "partial answer" } })
      local failures = {}
      local detail = assert(client:wait(id, { interval = 0.02, max_poll_failures = 3,
                                              on_poll_error = function(err, n) failures[#failures + 1] = n .. err.kind end }))
      assert.equal("ended", detail.testRun.state)
      assert.same({ "1http", "2http", "3transport" }, failures)
    end)

    it("fails after max_poll_failures + 1 failed polls in a row, with the last detail", function()
      local id = trigger()
      assert(client:get(id))
      fake:script { method = "GET", status = 502, body = "", times = 10 }
      local detail, err = client:wait(id, { interval = 0.02, max_poll_failures = 2 })
      assert.is_nil(detail)
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.matches("3 polls in a row failed %(max_poll_failures = 2%)", err.message)
      assert.equal(1 + 3, helper.count(fake:log(), "GET"))
    end)

    it("fails at once on an unknown run", function()
      local _, err = client:wait(424242, { interval = 0.02 })
      assert.equal("http", err.kind)
      assert.equal(404, err.status)
      assert.equal(1, err.polls)
      assert.equal(1, #fake:log())
    end)

    it("fails at once on a wrong key", function()
      local other = helper.client(fake, { token = "wrong" })
      local _, err = other:wait(1, { interval = 0.02 })
      assert.equal(401, err.status)
      assert.equal(1, #fake:log())
      other:close()
    end)
  end)

  describe("refuses bad arguments before sending anything", function()
    local cases = {
      { "interval zero", 1, { interval = 0 }, "opts.interval" },
      { "interval as text", 1, { interval = "5" }, "opts.interval" },
      { "negative timeout", 1, { timeout = -1 }, "opts.timeout" },
      { "infinite max_interval", 1, { max_interval = math.huge }, "opts.max_interval" },
      { "NaN timeout", 1, { timeout = 0 / 0 }, "opts.timeout" },
      { "backoff below 1", 1, { backoff = 0.5 }, "opts.backoff" },
      { "on_poll not a function", 1, { on_poll = true }, "opts.on_poll" },
      { "sleep not a function", 1, { sleep = 1 }, "opts.sleep" },
      { "unknown option", 1, { intervall = 1 }, "opts.intervall" },
      { "opts not a table", 1, "fast", "opts" },
      { "id as words", "latest", nil, "id" },
      { "id zero", 0, nil, "id" },
      { "id missing", nil, nil, "id" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local detail, err = client:wait(case[2], case[3])
        assert.is_nil(detail)
        assert.equal("invalid", err.kind)
        assert.equal(case[4], err.field)
        assert.equal(0, #fake:log())
      end)
    end

    it("raises when called without the colon", function()
      assert.has_error(function() client.wait(1) end, "empirical: call client:wait(...) with a colon")
    end)
  end)
end)
