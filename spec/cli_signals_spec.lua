-- The commands other than the gate on SIGINT and SIGTERM, run for real
-- against the fake: each exits 130 or 143 soon with one line (a trigger or
-- re-run in flight gets the gate's grace, and a run created meanwhile is
-- cancelled); with --json, one document. Also: the gate's words for a
-- cancel that did not answer, the gate giving up polling, the document of
-- an unexpected error, and the report's and list's output.
local helper = require("helper")
local cjson = require("cjson")
local empirical = require("empirical")

local it_signals = empirical.catch_signals and it or pending

local function no_lua_error(text)
  assert.is_nil(text:find("stack traceback", 1, true), text)
  assert.is_nil(text:find("interrupted!", 1, true), text)
  assert.is_nil(text:find("%.lua:%d+:"), text)
end

describe("a command on a signal", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  -- The command in the background: its pid, and a function that waits for
  -- it and returns exit code, stdout, stderr (never a Lua error in them).
  local function start(argv)
    local pid, finish = helper.start_command(fake, argv)
    return pid, function()
      local code, out, err = finish()
      no_lua_error(out .. err)
      return code, out, err
    end
  end

  local function requests(method, pattern) return helper.count(fake:log(), method, pattern) end

  local until_ = helper.wait_until

  -- Run argv, send `signal` once a request `method` (path matching) reached
  -- the fake; returns code, out, err and the seconds from the signal to the end.
  local function interrupt(argv, method, pattern, signal)
    local before = requests(method, pattern)
    local pid, finish = start(argv)
    until_("the request", function() return requests(method, pattern) > before end)
    local sent = empirical.now()
    os.execute("kill -" .. (signal or "INT") .. " " .. pid)
    local code, out, err = finish()
    return code, out, err, empirical.now() - sent
  end

  local function lines(text)
    local out = {}
    for line in text:gmatch("[^\n]+") do
      if not line:match("^EMPIRICAL") then out[#out + 1] = line end
    end
    return out
  end

  describe("trigger", function()
    it_signals("a trigger that answers within the grace: its run is cancelled, exit 130", function()
      fake:scenario { pending_seconds = 1e6 }
      fake:script { method = "PUT", delay = 1 }
      fake:script { method = "PUT", delay = 1 }
      local code, out, err = interrupt({ "trigger", "--environment", "staging", "--environment", "production" },
                                       "PUT")
      assert.equal(130, code, err)
      assert.equal("", out)
      assert.equal(2, requests("POST", "/cancel$"))
      -- Both triggers are held alike: which one is run 1 is the fake's call.
      assert.truthy(err:find("empirical trigger staging: cancel run [12]: cancelled\n"), err)
      assert.truthy(err:find("empirical trigger production: cancel run [12]: cancelled\n"), err)
      assert.truthy(err:find("empirical trigger: interrupted by SIGINT; cancelled: 1 (cancelled), 2 (cancelled)\n",
                             1, true), err)
    end)

    it_signals("one still unanswered after the grace: named with how to find it; --json: one document", function()
      fake:scenario { pending_seconds = 1e6 }
      fake:script { method = "PUT", delay = 4 }
      fake:script { method = "PUT", delay = 4 }
      local code, out, err, took = interrupt({ "trigger", "--environment", "staging", "--environment", "production",
                                               "--json" }, "PUT")
      assert.equal(130, code, err)
      assert.is_true(took < 2.5, took)
      local said = "interrupted before the API answered the trigger: a run may have been created, and it was not " ..
                   "cancelled; find it with `empirical list --state queued` (or --state pending, --state started) " ..
                   "and cancel it with `empirical cancel ID`"
      assert.truthy(err:find("empirical trigger staging: " .. said .. "\n", 1, true), err)
      assert.truthy(err:find("empirical trigger production: " .. said .. "\n", 1, true), err)
      assert.truthy(err:find("empirical trigger: interrupted by SIGINT; cancelled: none; not cancelled, a run may " ..
                             "exist: staging, production\n", 1, true), err)
      local doc = cjson.decode(out)   -- one document: decode fails on two
      assert.equal(130, doc.exit_code)
      assert.equal("interrupted", doc.error.kind)
      assert.same({ { environment = "staging", status = "may exist" }, { environment = "production", status = "may exist" } },
                  doc.runs)
      assert.equal(0, requests("POST", "/cancel$"))
    end)

    it_signals("SIGTERM: exit 143, with its line", function()
      fake:scenario { pending_seconds = 1e6 }
      fake:script { method = "PUT", delay = 1 }
      local code, _, err = interrupt({ "trigger", "--environment", "staging" }, "PUT", nil, "TERM")
      assert.equal(143, code, err)
      assert.truthy(err:find("empirical trigger: interrupted by SIGTERM; cancelled: 1 (cancelled)\n", 1, true), err)
    end)
  end)

  it_signals("rerun: a re-run that answers within the grace is cancelled, exit 130", function()
    local client = helper.client(fake)
    local run = assert(client:trigger { environment = "staging" })
    client:close()
    fake:scenario { pending_seconds = 1e6 }
    fake:script { method = "POST", path = "/api/test-runs/1/re-run", delay = 1 }
    local code, out, err = interrupt({ "rerun", tostring(run.id), "--json" }, "POST", "/re%-run$")
    assert.equal(130, code, err)
    assert.truthy(err:find("empirical rerun: cancel run 2: cancelled\n", 1, true), err)
    local doc = cjson.decode(out)
    assert.equal(130, doc.exit_code)
    assert.same({ { id = 2, status = "cancelled" } }, doc.runs)
  end)

  it_signals("rerun: one unanswered after the grace is named with how to find it", function()
    fake:script { method = "POST", path = "/api/test-runs/1/re-run", delay = 4 }
    local client = helper.client(fake)
    assert(client:trigger { environment = "staging" })
    client:close()
    local code, _, err = interrupt({ "rerun", "1" }, "POST", "/re%-run$", "TERM")
    assert.equal(143, code, err)
    assert.truthy(err:find("empirical rerun: interrupted before the API answered the re-run: a run may have been " ..
                           "created", 1, true), err)
    assert.truthy(err:find("`empirical cancel ID`", 1, true), err)
  end)

  -- The commands that only read (and cancel): the call in flight is cut at once.
  local READERS = {
    { "get", { "get", "1" }, "GET", "/api/test%-runs/1$" },
    { "list", { "list" }, "GET", "^/api/test%-runs" },
    { "report", { "report", "1" }, "GET", "/api/test%-runs/1$" },
  }
  for _, case in ipairs(READERS) do
    local name, argv, method, pattern = case[1], case[2], case[3], case[4]
    it_signals(name .. ": SIGINT ends it within about 100 ms with one line, exit 130; --json one document", function()
      local client = helper.client(fake)
      assert(client:trigger { environment = "staging" })
      client:close()
      fake:script { method = method, delay = 4 }
      local code, out, err, took = interrupt(argv, method, pattern)
      assert.equal(130, code, err)
      assert.is_true(took < 1, took)
      assert.equal("", out)
      assert.same({ ("empirical %s: interrupted by SIGINT before the API answered"):format(name) }, lines(err))

      fake:script { method = method, delay = 4 }
      local json_argv = { table.unpack(argv) }
      json_argv[#json_argv + 1] = "--json"
      code, out, err = interrupt(json_argv, method, pattern, "TERM")
      assert.equal(143, code, err)
      local doc = cjson.decode(out)
      assert.same({ exit_code = 143, error = { kind = "interrupted",
                                               message = "interrupted by SIGTERM before the API answered" } }, doc)
    end)
  end

  it_signals("cancel: the runs not confirmed cancelled are named with the command, exit 130", function()
    fake:scenario { pending_seconds = 1e6 }
    local client = helper.client(fake)
    assert(client:trigger { environment = "staging" })
    assert(client:trigger { environment = "production" })
    client:close()
    fake:script { method = "POST", path = "/api/test-runs/1/cancel", delay = 4 }
    local code, out, err, took = interrupt({ "cancel", "1", "2" }, "POST", "/cancel$")
    assert.equal(130, code, err)
    assert.is_true(took < 1, took)
    assert.equal("", out)
    assert.same({ "empirical cancel: interrupted by SIGINT before the API answered: not confirmed cancelled, may " ..
                  "still be running: 1, 2 (cancel with `empirical cancel 1 2`)" }, lines(err))
    assert.equal(1, requests("POST", "/cancel$"))   -- run 2's was never sent
  end)

  it("each command's help lists 130 and 143", function()
    for _, name in ipairs { "trigger", "rerun", "get", "wait", "cancel", "list", "report" } do
      local code, out = helper.run_command(fake, { "help", name })
      assert.equal(0, code)
      assert.truthy(out:find("\n%s*130%s"), name .. "\n" .. out)
      assert.truthy(out:find("\n%s*143%s"), name .. "\n" .. out)
    end
  end)
end)

describe("the gate", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function gate(args)
    local argv = { "gate", "--interval", "0.05", "--timeout", "30s" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local code, out, err = helper.run_command(fake, argv)
    no_lua_error(out .. err)
    return code, out, err
  end

  local function cancels()
    local ids = {}
    for _, r in ipairs(fake:log()) do
      if r.method == "POST" then ids[#ids + 1] = tonumber(r.path:match("^/api/test%-runs/(%d+)/cancel$")) end
    end
    return ids
  end

  describe("giving up polling cancels the runs it started, as the deadline does", function()
    local CASES = {
      { "a poll answered with HTML", { method = "GET", path = "/api/test-runs/1", content_type = "text/html",
                                       body = "<html>maintenance</html>" }, {}, 2 },
      { "a poll answered 404", { method = "GET", path = "/api/test-runs/1", status = 404,
                                 body = { error = "not found" } }, {}, 3 },
      { "--max-poll-failures 1 and a 503", { method = "GET", path = "/api/test-runs/1", status = 503, body = "",
                                                times = 20 },
        { "--max-poll-failures", "1" }, 2 },
    }
    for _, case in ipairs(CASES) do
      it(case[1], function()
        fake:scenario { pending_seconds = 1e6 }
        fake:script(case[2])
        local args = { "--environment", "staging", "--json" }
        for _, a in ipairs(case[3]) do args[#args + 1] = a end
        local code, out, err = gate(args)
        assert.equal(case[4], code, err)
        assert.same({ 1 }, cancels())
        assert.truthy(err:find("gave up polling: cancelling the runs this gate started (--on-timeout leave leaves " ..
                               "them): 1\n", 1, true), err)
        assert.truthy(err:find("cancel run 1: cancelled\n", 1, true), err)
        assert.same({ { id = 1, status = "cancelled" } }, cjson.decode(out).cancelled)
      end)
    end

    it("--on-timeout leave leaves them", function()
      fake:scenario { pending_seconds = 1e6 }
      fake:script { method = "GET", path = "/api/test-runs/1", content_type = "text/html", body = "<html></html>" }
      local code, _, err = gate { "--environment", "staging", "--on-timeout", "leave" }
      assert.equal(2, code, err)
      assert.same({}, cancels())
      assert.is_nil(err:find("gave up polling", 1, true), err)
    end)
  end)

  it_signals("a cancel with no answer in time is not called cancelled: may still be running, and how to cancel it",
             function()
    fake:scenario { pending_seconds = 1e6 }
    fake:script { method = "POST", path = "/api/test-runs/1/cancel", delay = 4 }
    local pid, finish = helper.start_command(fake, { "gate", "--interval", "0.05", "--environment", "staging",
                                                     "--environment", "production", "--json" })
    helper.wait_until("the polls", function()
      local n = 0
      for _, r in ipairs(fake:log()) do if r.method == "GET" then n = n + 1 end end
      return n >= 2
    end)
    os.execute("kill -INT " .. pid)
    local code, out, err = finish()
    no_lua_error(out .. err)
    assert.equal(130, code, err)
    assert.truthy(err:find("cancel run 1: no answer in time: it may still be running; cancel it with " ..
                           "`empirical cancel 1`\n", 1, true), err)
    assert.truthy(err:find("cancel run 2: cancelled\n", 1, true), err)
    assert.truthy(err:find("\ninterrupted by SIGINT; cancelled: 2 (cancelled); not confirmed, may still be running: 1 " ..
                           "(cancel with `empirical cancel 1`)\n", 1, true), err)
    local rows = cjson.decode(out).cancelled
    table.sort(rows, function(a, b) return a.id < b.id end)
    assert.same({ { id = 1, status = "unknown" }, { id = 2, status = "cancelled" } }, rows)
  end)

  it("its closing line at a signal (empirical.gate.signal_line) lists only confirmed cancels as cancelled", function()
    local gate_lib = require("empirical.gate")
    assert.equal("interrupted by SIGINT; cancelled: 2 (cancelled); not confirmed, may still be running: 1 " ..
                 "(cancel with `empirical cancel 1`)",
                 gate_lib.signal_line("SIGINT", { { id = 2, status = "cancelled" }, { id = 1, status = "unknown" } }))
    assert.equal("interrupted by SIGTERM; cancelled: none; not cancelled, a run may exist: staging",
                 gate_lib.signal_line("SIGTERM", {}, { "staging" }))
  end)
end)

describe("the command's output", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("an unexpected Lua error with --json still prints one document", function()
    local preload = "package.preload['empirical.cli.render'] = function() error('boom') end"
    local code, out, err = helper.run({ helper.LUA, "-e", preload, "bin/empirical", "get", "1", "--json" },
                                      { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url })
    assert.equal(3, code, err)
    assert.truthy(err:find("empirical: unexpected error: ", 1, true), err)
    local doc = cjson.decode(out)
    assert.equal(3, doc.exit_code)
    assert.equal("error", doc.error.kind)
    assert.truthy(doc.error.message:find("boom", 1, true), doc.error.message)
  end)

  it("report --json writes every empty list of the report as []", function()
    fake:scenario { tests = { { name = "a", outcome = "failed" } } }
    local client = helper.client(fake)
    local run = assert(client:trigger { environment = "staging" })
    assert(client:wait(run.id, { interval = 0.05, timeout = 30 }))
    client:close()
    local code, out, err = helper.run_command(fake, { "report", tostring(run.id), "--json" })
    assert.equal(0, code, err)
    for _, key in ipairs { "skipped", "passed", "flaky", "errors" } do
      assert.truthy(out:find('"' .. key .. '":[]', 1, true), key .. ": " .. out)
    end
    assert.is_nil(out:find("{}", 1, true), out)
  end)

  it("list with no run matching: nothing on stdout, the line on stderr", function()
    local code, out, err = helper.run_command(fake, { "list" })
    assert.equal(0, code, err)
    assert.equal("", out)
    assert.truthy(err:find("no runs match", 1, true), err)
  end)
end)
