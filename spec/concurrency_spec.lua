-- Many requests at once on one client: start/poll/wait, trigger_all,
-- get_all and wait_all, against the fake over loopback.
local empirical = require("empirical")
local core = require("empirical.core")
local helper = require("helper")

local function distinct(log, field)
  local seen, n = {}, 0
  for _, r in ipairs(log) do
    if not seen[r[field]] then seen[r[field]], n = true, n + 1 end
  end
  return n
end

describe("concurrency", function()
  local fake, client

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function()
    fake:reset()
    client = helper.client(fake, { retries = 1 })
  end)
  after_each(function() client:close() end)

  local function runs(n)
    local ids = {}
    for i = 1, n do ids[i] = assert(client:trigger { environment = "staging" }).id end
    return ids
  end

  describe("a request", function()
    it("starts without blocking, polls without blocking, and waits", function()
      local id = runs(1)[1]
      fake:script { method = "GET", delay = 0.5 }
      local t0 = core.now()
      local req = assert(client:start("get", id))
      local done = req:poll()
      assert.is_false(done)
      assert.is_true(core.now() - t0 < 0.2, "start and poll took " .. (core.now() - t0))
      local detail = assert(req:wait())
      assert.equal(id, detail.testRun.id)
      assert.is_true(core.now() - t0 >= 0.5)
      local again, same = req:poll()
      assert.is_true(again)
      assert.equal(detail, same)
    end)

    it("polls to done with the result, or with nil and the error", function()
      local ok_req = assert(client:start("get", runs(1)[1]))
      local bad_req = assert(client:start("get", 4242))
      local outcomes = {}
      while #outcomes < 2 do
        for _, req in ipairs { ok_req, bad_req } do
          local done, result, err = req:poll()
          if done and not outcomes[req] then
            outcomes[req] = { result, err }
            outcomes[#outcomes + 1] = true
          end
        end
        client._core:wait_io(0.05)
      end
      assert.truthy(outcomes[ok_req][1])
      assert.is_nil(outcomes[ok_req][2])
      assert.is_nil(outcomes[bad_req][1])
      assert.equal(404, outcomes[bad_req][2].status)
    end)

    it("refuses bad input at start, sending nothing", function()
      local req, err = client:start("trigger", { environment = "staging", total_shards = 0 })
      assert.is_nil(req)
      assert.equal("total_shards", err.field)
      local _, err2 = client:start("rerun", 5, { only_failed = "yes" })
      assert.equal("only_failed", err2.field)
      local none, err3 = client:start("delete", 5)
      assert.is_nil(none)
      assert.equal("invalid", err3.kind)
      assert.truthy(err3.message:find("trigger, rerun, get, cancel, list", 1, true), err3.message)
      assert.equal(0, #fake:log())
    end)

    it("in flight when its client closes ends with a config error, not a crash", function()
      local id = runs(1)[1]
      fake:script { method = "GET", delay = 2 }
      local req = assert(client:start("get", id))
      req:poll()
      client:close()
      local result, err = req:wait()
      assert.is_nil(result)
      assert.equal("config", err.kind)
      assert.matches("closed while GET /api/test%-runs/%d+ was in flight", err.message)
    end)

    it("dropped in flight is cleaned up by the collector", function()
      local id = runs(1)[1]
      fake:script { method = "GET", delay = 1, times = 20 }
      for _ = 1, 20 do assert(client:start("get", id)):poll() end
      collectgarbage()
      collectgarbage()
      assert(client:get(id))   -- the client still works
    end)
  end)

  describe("together", function()
    it("100 gets, each answered after 200 ms, finish in about the time of one", function()
      local id = runs(1)[1]
      fake:script { method = "GET", delay = 0.2, times = 100 }
      local ids = {}
      for i = 1, 100 do ids[i] = id end
      local t0 = core.now()
      local details, errs = client:get_all(ids)
      local took = core.now() - t0
      for i = 1, 100 do assert.truthy(details[i], tostring(errs[i])) end
      assert.is_true(took < 1, ("100 concurrent gets took %.2f s (one after another: 20 s)"):format(took))
    end)

    it("trigger_all returns results in input order, each with its own error", function()
      local results, errs = client:trigger_all {
        { environment = "staging" },
        { environment = "staging", total_shards = -1 },
        { environment = "moon" },
        { environment = "production" },
      }
      assert.truthy(results[1])
      assert.equal("total_shards", errs[2].field)
      assert.equal(400, errs[3].status)
      assert.truthy(results[4])
      assert.is_nil(results[2])
      assert.is_nil(errs[1])
      assert.are_not.equal(results[1].id, results[4].id)
      assert.equal(3, helper.count(fake:log(), "PUT"))   -- the invalid one never left
    end)

    it("get_all shares the client's connections across rounds", function()
      local ids = runs(8)
      local before = #fake:log()
      for _ = 1, 3 do
        local details, errs = client:get_all(ids)
        for i = 1, #ids do assert.equal(ids[i], details[i] and details[i].testRun.id, tostring(errs[i])) end
      end
      local log, rounds = fake:log(), {}
      for i = before + 1, #log do rounds[#rounds + 1] = log[i] end
      assert.equal(24, #rounds)
      assert.is_true(distinct(rounds, "conn") <= 8, "connections for 24 gets: " .. distinct(rounds, "conn"))
    end)

    it("wait_all waits for every run together, and on_poll sees each", function()
      local ids = runs(3)
      fake:set_state(ids[2], "cancelled")
      local seen = {}
      local details, errs, infos = client:wait_all({ ids[1], ids[2], ids[3], 4242 }, {
        interval = 0.02,
        on_poll = function(detail, info)
          seen[info.index] = (seen[info.index] or 0) + 1
          assert.equal(detail.testRun.id, info.id)
        end,
      })
      assert.equal("failed", empirical.verdict(details[1]))
      assert.equal("cancelled", empirical.verdict(details[2]))
      assert.equal("failed", empirical.verdict(details[3]))
      assert.equal(404, errs[4].status)
      assert.is_nil(details[4])
      for i = 1, 3 do
        assert.equal(infos[i].polls, seen[i])
        assert.equal(ids[i], infos[i].id)
      end
    end)

    it("wait_all gives each unfinished run its own timeout error", function()
      fake:scenario { pending_seconds = 1e6 }
      local ids = { assert(client:trigger { environment = "staging" }).id,      -- two environments:
                    assert(client:trigger { environment = "production" }).id }  -- no run replaces the other
      local details, errs = client:wait_all(ids, { interval = 0.05, timeout = 0.3 })
      for i = 1, 2 do
        assert.is_nil(details[i])
        assert.equal("timeout", errs[i].kind)
        assert.equal(ids[i], errs[i].detail.testRun.id)
      end
    end)

    it("refuses what is not a list", function()
      for _, call in ipairs { "trigger_all", "get_all", "wait_all" } do
        local result, err = client[call](client, "1,2")
        assert.is_nil(result, call)
        assert.equal("invalid", err.kind, call)
      end
    end)
  end)
end)
