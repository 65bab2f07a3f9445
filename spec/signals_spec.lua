-- Signals: opt-in catching, and blocking waits that end within 200 ms of a
-- SIGINT or SIGTERM with kind "interrupted", leaving the client usable and
-- nothing behind. The latency is measured by the parent of a child process
-- that waits, from the moment it sends the signal to the child's answer.
local empirical = require("empirical")
local helper = require("helper")

-- The signals this process catches, from /proc (SigCgt, a hex mask).
local function caught_mask()
  local f = assert(io.open("/proc/self/status"))
  local mask = f:read("*a"):match("SigCgt:%s*(%x+)")
  f:close()
  return mask
end

local function open_fds()
  local n = 0
  local list = assert(io.popen("ls /proc/" .. helper.pid() .. "/fd"))
  for _ in list:lines() do n = n + 1 end
  list:close()
  return n - 1
end

-- Run `command` in the background after `seconds`: the signal arrives while
-- this process is blocked in a wait.
local function later(seconds, command)
  os.execute(("(sleep %s; %s) >/dev/null 2>&1 &"):format(seconds, command))
end

describe("signals", function()
  local fake, run_id

  setup(function() fake = helper.start_fake { speed = 100 } end)
  teardown(function()
    empirical.release_signals()
    fake:stop()
  end)
  before_each(function()
    fake:reset()
    local c = helper.client(fake)
    run_id = assert(c:trigger { environment = "staging" }).id
    c:close()
  end)

  it("are left alone by loading the module, and caught only when asked", function()
    local probe = [[
      local function mask() local f = io.open("/proc/self/status") local m = f:read("*a"):match("SigCgt:%s*(%x+)") f:close() return m end
      local before = mask()
      local e = require("empirical")
      local loaded = mask()
      e.catch_signals()
      local catching = mask()
      e.release_signals()
      print(before == loaded, catching ~= loaded, mask() == loaded)
    ]]
    local code, out, err = helper.run({ helper.LUA, "-e", probe })
    assert.equal(0, code, err)
    assert.equal("true\ttrue\ttrue\n", out)
    assert.truthy(caught_mask())
  end)

  it("end a blocking call in this process, leaving the client working and no descriptor behind", function()
    local client = helper.client(fake)
    assert(client:get(run_id))                         -- a connection to reuse
    local fds = open_fds()
    empirical.catch_signals()
    fake:script { method = "GET", delay = 5 }
    later(0.3, "kill -INT " .. helper.pid())
    local t0 = empirical.now()
    local detail, err = client:get(run_id)
    local took = empirical.now() - t0
    assert.is_nil(detail)
    assert.same({ "interrupted", "SIGINT", "GET /api/test-runs/" .. run_id, 1 },
                { err.kind, err.signal, err.request, err.attempts })
    assert.is_true(took < 3, ("the call took %.2f s"):format(took))
    assert.is_nil(empirical.pending_signal())         -- consumed by the wait that reported it
    assert(client:get(run_id))                         -- the client goes on
    assert.is_true(open_fds() <= fds + 1, ("descriptors: %d, then %d"):format(fds, open_fds()))
    client:close()
    empirical.release_signals()
  end)

  it("end a sleep and a wait, and a signal that came between waits ends the next one", function()
    empirical.catch_signals()
    later(0.2, "kill -TERM " .. helper.pid())
    local ok, err = empirical.sleep(5)
    assert.is_nil(ok)
    assert.same({ "interrupted", "SIGTERM" }, { err.kind, err.signal })

    local client = helper.client(fake)
    fake:scenario { tests = { { name = "slow", outcome = "passed" } }, pending_seconds = 1e6 }
    local pending_run = assert(client:trigger { environment = "staging" }).id
    later(0.3, "kill -INT " .. helper.pid())
    local detail
    detail, err = client:wait(pending_run, { interval = 0.05, timeout = 30 })
    assert.is_nil(detail)
    assert.same({ "interrupted", "SIGINT" }, { err.kind, err.signal })
    assert.equal("pending", err.detail.testRun.state)

    -- (SIGTERM: os.execute's system() ignores SIGINT in the caller while it runs)
    os.execute("kill -TERM " .. helper.pid())          -- arrives while nothing waits...
    assert.equal("SIGTERM", empirical.pending_signal())
    local _, early = client:wait(pending_run, { interval = 0.05, timeout = 30 })
    assert.equal("interrupted", early.kind)            -- ...and ends the next wait at once
    client:close()
    empirical.release_signals()
  end)

  it("say a trigger cut in flight may have created its run", function()
    local client = helper.client(fake)
    empirical.catch_signals()
    fake:script { method = "PUT", delay = 5 }
    later(0.3, "kill -INT " .. helper.pid())
    local run, err = client:trigger { environment = "staging" }
    assert.is_nil(run)
    assert.equal("interrupted", err.kind)
    assert.is_true(err.run_may_exist)
    assert.truthy(err.message:find("may have been created", 1, true), err.message)
    client:close()
    empirical.release_signals()
  end)

  describe("in a child process", function()
    -- The child catches signals, says "ready <pid>", and blocks in what it
    -- is given; then prints the error's kind and signal.
    local CHILD = [[
      local e = require("empirical")
      e.catch_signals()
      local c = assert(e.new { token = %q, base_url = %q })
      local f = io.open("/proc/self/stat") local pid = f:read("*n") f:close()
      io.write("ready ", ("%%d"):format(pid), "\n") io.flush()
      local _, err = %s
      io.write(err.kind, " ", err.signal, "\n") io.flush()
    ]]

    local function latency(what, signal)
      fake:script { method = "GET", delay = 10 }
      local pipe = assert(io.popen(("env LUA_PATH=%s LUA_CPATH=%s %s -e %s"):format(
        helper.shell_quote(package.path), helper.shell_quote(package.cpath), helper.LUA,
        helper.shell_quote(CHILD:format(fake.token, fake.url, what)))))
      local pid = assert(pipe:read("*l"):match("^ready (%d+)$"))
      os.execute("sleep 0.3")                           -- well inside the blocking call
      local t0 = empirical.now()
      os.execute("kill -" .. signal .. " " .. pid)
      local line = pipe:read("*l")
      local took = empirical.now() - t0
      pipe:close()
      return line, took
    end

    for _, case in ipairs {
      { "a blocking get", "c:get(1)", "INT" },
      { "a wait between polls", "c:wait(1, { interval = 30 })", "TERM" },
      { "a sleep", "e.sleep(30)", "INT" },
    } do
      it("ends " .. case[1] .. " within 200 ms of SIG" .. case[3], function()
        local line, took = latency(case[2], case[3])
        assert.equal("interrupted SIG" .. case[3], line)
        assert.is_true(took < 0.2, ("%.0f ms from the signal to the answer"):format(took * 1000))
      end)
    end
  end)
end)
