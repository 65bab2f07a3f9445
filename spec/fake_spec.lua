-- The fake API itself, spoken to over plain HTTP (luasocket), as a user's own
-- script or another client would: its one schema (empirical.encode), its
-- errors, runs over time, its log, its control API and its launcher.
local helper = require("helper")
local wire = require("fake_wire")
local empirical = require("empirical")
local cjson = require("cjson")

local call = wire.call

-- True when a value survives JSON unchanged (raw access: no metamethods).
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in next, a do if not same(v, rawget(b, k)) then return false end end
  for k in next, b do if rawget(a, k) == nil then return false end end
  return true
end

local function json_of(value)
  local ok, text = pcall(cjson.encode, value)
  if ok and same(cjson.decode(text), value) then return text end
end

local function path_id(id)
  if math.type and math.type(id) == "integer" then return ("%d"):format(id) end
  return ("%.17g"):format(id)
end

-- A row of spec/bad_inputs.lua as a request on the wire: method, path, body;
-- nil when the wire cannot carry that exact table.
local function on_the_wire(op, params)
  if op == "trigger" then
    local body = json_of(params)
    return body and "PUT", "/api/test-runs", body
  end
  if type(params) ~= "table" or type(rawget(params, "id")) ~= "number" then return nil end
  local rest = {}
  for k, v in next, params do if k ~= "id" then rest[k] = v end end
  local path = "/api/test-runs/" .. path_id(params.id)
  if op == "get" then return next(rest) == nil and "GET" or nil, path end
  local body = next(rest) == nil and "" or json_of(rest)
  return body and "POST", path .. "/re-run", body ~= "" and body or nil
end

describe("the fake API", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 0.001, environments = { "staging", "qa" } } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  it("answers 401 with the error envelope without the right token", function()
    local status, body = call(fake, "GET", "/api/test-runs/1", { token = "nope" })
    assert.equal(401, status)
    assert.equal(cjson.null, body.data)
    assert.matches("API key", body.error.message)
    assert.equal(401, (call(fake, "GET", "/api/test-runs/1", { token = false })))
    assert.equal(401, (call(fake, "GET", "/api/test-runs", { token = false })))
  end)

  it("refuses an unknown environment as the vendor does, listing the valid slugs", function()
    local status, answer = call(fake, "PUT", "/api/test-runs", { body = '{"environment":"prod"}' })
    assert.equal(400, status)
    assert.equal("Unknown environment 'prod'. Valid environments: staging, qa", answer.error.message)
  end)

  it("answers JSON that does not parse with 400, and unknown runs and paths with 404", function()
    local status, answer = call(fake, "PUT", "/api/test-runs", { body = "{nope" })
    assert.equal(400, status)
    assert.matches("^Request body is not valid JSON", answer.error.message)
    for _, r in ipairs { { "GET", "/api/test-runs/77" }, { "POST", "/api/test-runs/77/re-run" },
                         { "POST", "/api/test-runs/77/cancel" } } do
      status, answer = call(fake, r[1], r[2])
      assert.equal(404, status, r[2])
      assert.equal("Test run 77 not found", answer.error.message)
    end
    assert.equal(404, (call(fake, "DELETE", "/api/test-runs/1")))
    assert.equal(404, (call(fake, "GET", "/api/projects")))
  end)

  it("lets unknown top-level fields through by default, as the client's strict = false sends them", function()
    assert.equal(200, (call(fake, "PUT", "/api/test-runs", { body = '{"environment":"qa","priority":1}' })))
    local status, answer = call(fake, "PUT", "/api/test-runs", { body = '{"environment":"qa","build":{"comit":"a"}}' })
    assert.equal(400, status)
    local _, err = empirical.encode("trigger", { environment = "qa", build = { comit = "a" } })
    assert.equal(err.message, answer.error.message)
  end)

  it("moves a run queued -> started -> ended on its clock, counting tests as they finish", function()
    local id = wire.trigger(fake, { environment = "qa", branch = "feature/x" })
    local run = wire.run(fake, id)
    assert.same({ "queued", 6, 0, cjson.null, cjson.null }, { run.state, run.total_count, run.success_count,
                                                             run.run_started_at, run.summary_url })
    fake:clock { advance = 1 + 0.5 * 3 }                     -- queued 1 s, then three tests of 0.5 s
    run = wire.run(fake, id)
    assert.same({ "started", 2, 1, 0 }, { run.state, run.success_count, run.failed_count, run.flaky_count })
    assert.equal("string", type(run.run_started_at))
    fake:clock { advance = 60 }
    local detail
    run, detail = wire.run(fake, id)
    assert.same({ "ended", 6, 4, 1, 1, 1, 3000 }, { run.state, run.total_count, run.success_count, run.failed_count,
                                                   run.flaky_count, run.skipped_count, run.duration })
    assert.equal("feature/x", run.test_run_branch)
    assert.equal(run.total_count, #detail.flattenedSummaryDetails)
    assert.equal("checkout > pays with card", detail.flattenedSummaryDetails[3].name)
    assert.equal("failed", detail.flattenedSummaryDetails[3].status)
    assert.same({ id = 1, name = "Fake project", repo_name = "acme/e2e-tests" }, detail.project)
  end)

  it("takes each test's own seconds, so a run can finish steadily or in a burst", function()
    fake:scenario { tests = { { name = "a", outcome = "passed", seconds = 0 }, { name = "b", outcome = "passed", seconds = 0 },
                              { name = "c", outcome = "failed", seconds = 0 }, { name = "d", outcome = "passed", seconds = 10 } } }
    local id = wire.trigger(fake)
    fake:clock { advance = 1.5 }
    local run = wire.run(fake, id)
    assert.same({ "started", 2, 1 }, { run.state, run.success_count, run.failed_count })
    fake:clock { advance = 9.6 }
    run = wire.run(fake, id)
    assert.same({ "ended", 3, 10000 }, { run.state, run.success_count, run.duration })
  end)

  it("cancels a pending run when a newer one is triggered for its environment, and says so", function()
    fake:scenario { pending_seconds = 60 }
    local older = wire.trigger(fake)
    local other_env = wire.trigger(fake, { environment = "qa" })
    assert.equal("pending", wire.run(fake, older).state)
    local newer = wire.trigger(fake)
    local run = wire.run(fake, older)
    assert.equal("cancelled", run.state)
    assert.equal(("superseded by run %s"):format(newer), run.cancel_reason)
    assert.equal("pending", wire.run(fake, newer).state)
    assert.equal("pending", wire.run(fake, other_env).state)
  end)

  it("re-runs only the failed tests of an ended run, and refuses to before it ended", function()
    local id = wire.trigger(fake)
    local status, answer = call(fake, "POST", "/api/test-runs/" .. id .. "/re-run", { body = '{"only_failed":true}' })
    assert.equal(400, status)
    assert.matches("must be completed", answer.error.message)
    fake:clock { advance = 60 }
    status, answer = call(fake, "POST", "/api/test-runs/" .. id .. "/re-run", { body = '{"only_failed":true}' })
    assert.equal(200, status)
    local rerun = wire.id(answer.data.test_run.id)
    fake:clock { advance = 60 }
    local run, detail = wire.run(fake, rerun)
    assert.same({ "ended", 1, 1, 0, tonumber(id) }, { run.state, run.total_count, run.success_count, run.failed_count,
                                                     run.rerun_source_id })
    assert.equal("checkout > pays with card", detail.flattenedSummaryDetails[1].name)
    -- a whole re-run (no body) runs every test again
    status, answer = call(fake, "POST", "/api/test-runs/" .. id .. "/re-run")
    assert.equal(200, status)
    fake:clock { advance = 60 }
    assert.equal(6, wire.run(fake, wire.id(answer.data.test_run.id)).total_count)
  end)

  it("ends runs in error with the scenario's error code, which no ended run carries", function()
    fake:scenario { end_state = "error", error_code = "dispatch_failed" }
    local id = wire.trigger(fake)
    assert.is_nil(wire.run(fake, id).error_code)              -- not while it runs
    fake:clock { advance = 60 }
    local run = wire.run(fake, id)
    assert.same({ "error", "dispatch_failed", cjson.null }, { run.state, run.error_code, run.summary_url })
    fake:scenario {}
    id = wire.trigger(fake)
    fake:clock { advance = 60 }
    assert.is_nil(wire.run(fake, id).error_code)
  end)

  it("forces a state with set_state, counts frozen, and lets go of it", function()
    local id = wire.trigger(fake)
    fake:clock { advance = 1 + 0.5 * 2 }
    fake:set_state(tonumber(id), "cancelled")
    fake:clock { advance = 60 }
    local run = wire.run(fake, id)
    assert.same({ "cancelled", 2 }, { run.state, run.success_count })
    fake:set_state(tonumber(id), nil)
    assert.equal("ended", wire.run(fake, id).state)
  end)

  it("logs every request but the control calls, reports included", function()
    call(fake, "GET", "/api/test-runs/1")
    call(fake, "GET", "/reports/1.json", { token = false })
    fake:clock { advance = 1 }
    local log = fake:log()
    assert.same({ "/api/test-runs/1", "/reports/1.json" }, { log[1].path, log[2].path })
    assert.equal("Bearer " .. fake.token, log[1].headers.authorization)
    assert.is_nil(log[2].headers.authorization)
  end)

  it("refuses a bad scenario, a bad clock change and a bad forced state with what is wrong", function()
    for _, case in ipairs {
      { { tests = { { name = "x", outcome = "maybe" } } }, "scenario.tests[1].outcome must be one of failed, flaky, passed, skipped" },
      { { tests = { { name = "x", outcome = "passed", line = 0 } } }, "scenario.tests[1].line must be a whole number >= 1" },
      { { tests = { { name = "x", outcome = "passed", describe = "a" } } }, "scenario.tests[1].describe must be a list" },
      { { tests = { { outcome = "passed" } } }, "scenario.tests[1] needs a name and an outcome" },
      { { end_sate = "error" }, "scenario.end_sate: unknown field" },
      { { error_code = "oops" }, "scenario.error_code must be one of dispatch_failed" },
      { { report = 302 }, "scenario.report must be json, none, malformed, oversized or an HTTP status" },
      { { running_counts = "zero" }, "scenario.running_counts must be numbers, null or missing" },
    } do
      local ok, err = pcall(fake.scenario, fake, case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
    end
    assert.is_false((pcall(fake.clock, fake, { speed = -1 })))
    local id = wire.trigger(fake)
    local ok, err = pcall(fake.set_state, fake, tonumber(id), "finished")
    assert.is_false(ok)
    assert.matches("state must be one of", tostring(err))
    assert.equal("queued", wire.run(fake, id).state)
  end)

  it("answers a request held across a reset with 409 (not retried), leaving the runs made since alone", function()
    local client = helper.client(fake)
    assert(client:trigger { environment = "staging" })
    fake:script { method = "POST", path = "/api/test-runs/1/cancel", delay = 1 }
    local held = assert(client:start("cancel", 1))
    helper.wait_until("the held cancel", function()
      held:poll()
      for _, r in ipairs(fake:log()) do if r.method == "POST" then return true end end
      return false
    end)
    fake:reset()
    local fresh = assert(client:trigger { environment = "staging" })
    assert.equal(1, fresh.id)
    local result, err = held:wait()
    assert.is_nil(result)
    assert.equal(409, err.status, tostring(err))
    assert.matches("the fake was reset while this request was held", err.message, 1, true)
    assert.equal("queued", assert(client:get(1)).testRun.state)
    client:close()
  end)

  describe("with strict = true", function()
    local strict
    setup(function() strict = helper.start_fake { strict = true, environments = { "s", "staging" } } end)
    teardown(function() strict:stop() end)

    -- The lead's table of invalid inputs, each as the client would have sent
    -- it had it not refused: the fake's 400 carries encode's own message.
    it("answers each bad request with encode's own message for the same table", function()
      local checked = 0
      for _, row in ipairs(require("bad_inputs")) do
        local op, params = row[1], row[2]
        local method, path, body = on_the_wire(op, params)
        if method then
          local status, answer, raw = call(strict, method, path, { body = body })
          local _, err = empirical.encode(op, params)
          assert.equal(400, status, raw)
          assert.equal(cjson.null, answer.data)
          assert.equal(err.message, answer.error.message, path .. " " .. tostring(body))
          checked = checked + 1
        end
      end
      assert.is_true(checked >= 50, checked .. " rows went over the wire")
      assert.equal(0, #strict:log() - checked)
    end)
  end)

  it("checks list queries and cancel bodies with encode, converting the query's numbers and lists", function()
    for _, case in ipairs {
      { "page=abc", { page = "abc" } }, { "page=0", { page = 0 } }, { "page=0x10", { page = "0x10" } },
      { "per_page=101", { per_page = 101 } }, { "per_page=2.5", { per_page = 2.5 } }, { "result=maybe", { result = "maybe" } },
      { "state=nope", { state = "nope" } }, { "environment_ids=1,x", { environment_ids = { 1, "x" } } },
      { "environment_ids=1,,2", { environment_ids = { 1, "", 2 } } }, { "interval_in_days=0", { interval_in_days = 0 } },
      { "id=-4", { id = -4 } }, { "branch=a&limit=5", { branch = "a", limit = 5 } },
    } do
      local status, answer = call(fake, "GET", "/api/test-runs?" .. case[1])
      local _, err = empirical.encode("list", case[2])
      assert.equal(400, status, case[1])
      assert.equal(err.message, answer.error.message, case[1])
    end
    for _, case in ipairs {
      { '{"reason":5}', { id = 3, reason = 5 } }, { '{"reason":""}', { id = 3, reason = "" } },
      { '{"reason":["a"]}', { id = 3, reason = { "a" } } }, { '"stop"', "stop" },
    } do
      local status, answer = call(fake, "POST", "/api/test-runs/3/cancel", { body = case[1] })
      local _, err = empirical.encode("cancel", case[2])
      assert.equal(400, status, case[1])
      assert.equal(err.message, answer.error.message, case[1])
    end
    local status, answer = call(fake, "POST", "/api/test-runs/abc/cancel")
    assert.equal(400, status)
    assert.equal(select(2, empirical.encode("cancel", { id = "abc" })).message, answer.error.message)
  end)
end)

describe("spawning the fake", function()
  it("refuses unknown options and bad scenarios before starting anything", function()
    local fake, err = require("empirical.fake").spawn { sped = 10 }
    assert.is_nil(fake)
    assert.equal("unknown option 'sped'", err)
    fake, err = require("empirical.fake").spawn { speed = "fast" }
    assert.is_nil(fake)
    assert.equal("speed: expected a number, got string", err)
    fake, err = require("empirical.fake").spawn { scenario = { end_state = "done" } }
    assert.is_nil(fake)
    assert.matches("scenario.end_state must be", err)
  end)

  -- The launcher's exit code and what it printed (every Lua's popen: 5.1 gives no exit code).
  local function launch(args)
    local p = assert(io.popen("lua5.4 examples/fake_api.lua " .. args .. " 2>&1; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("exit=(%d+)%s*$")), out
  end

  it("starts from the launcher with flags, and refuses a bad one with exit 3", function()
    local code, out = launch("--sped 10")
    assert.equal(3, code)
    assert.matches("unknown flag %-%-sped", out)
    code, out = launch("--speed")
    assert.equal(3, code)
    assert.matches("%-%-speed needs a value", out)
    code, out = launch("--scenario '{nope'")
    assert.equal(3, code)
    assert.matches("%-%-scenario: expected JSON", out)
    code, out = launch("--scenario '{\"end_state\":\"done\"}'")
    assert.equal(3, code)
    assert.matches("scenario.end_state must be ended, error or cancelled", out)
    code, out = launch("--help")
    assert.equal(0, code)
    assert.matches("usage: fake_api.lua", out)
  end)

  it("ends a spawned fake with the script that started it, even one that dies", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local fake = assert(require("empirical.fake").spawn { max_idle = 120 })
      print(fake.url)
      io.stdout:flush()
      os.exit(1)   -- no stop(), no garbage collection: as if killed
    ]])
    f:close()
    local p = assert(io.popen(("LUA_PATH=%s LUA_CPATH=%s %s %s"):format(helper.shell_quote(package.path),
      helper.shell_quote(package.cpath), helper.LUA, script)))
    local url = p:read("*l")
    p:close()
    os.remove(script)
    assert.matches("^http://", url)
    local socket = require("socket")
    local gone = false
    for _ = 1, 100 do                                          -- without it, the fake would stay 120 s
      local c = socket.connect("127.0.0.1", tonumber(url:match(":(%d+)$")))
      if not c then gone = true break end
      c:close()
      socket.sleep(0.1)
    end
    assert.is_true(gone, "the fake outlived its script")
  end)

  it("serves with the launcher's flags: port, token, environments, project", function()
    local port = helper.free_port()
    local pipe = assert(io.popen(("lua5.4 examples/fake_api.lua --port %d --token t0k --environments a,b --max-idle 30"
      .. " --project '{\"id\":9,\"name\":\"Shop\",\"slug\":\"shop\",\"repo_name\":\"acme/shop\"}'"):format(port)))
    local url = pipe:read("*l")
    local fake = { url = url, token = "t0k" }
    assert.equal(("http://127.0.0.1:%d"):format(port), url)
    local status, answer = call(fake, "PUT", "/api/test-runs", { body = '{"environment":"c"}' })
    assert.equal(400, status)
    assert.matches("Valid environments: a, b", answer.error.message)
    status, answer = call(fake, "GET", "/api/test-runs")
    assert.equal(200, status)
    assert.same({ id = 9, name = "Shop", slug = "shop", repo_name = "acme/shop" }, answer.data.project)
    call(fake, "POST", "/_fake/shutdown")
    pipe:close()
  end)
end)
