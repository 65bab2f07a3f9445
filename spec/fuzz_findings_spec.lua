-- What the fuzz harnesses (spec/fuzz/) found, each as the case a user would
-- write. Each was a failure before the fix its comment names;
-- its minimised fuzz input is in spec/fuzz/corpus/ under the same name.
--
-- Also the numbers oracle of fuzz_encode (spec/fuzz/encode_oracle.lua) on
-- the odd inputs of issue 12, so the oracle itself is checked to hold on
-- what must pass and to fail on what must not.
local cjson = require("cjson")
local core = require("empirical.core")
local helper = require("helper")
local check_encode = require("fuzz.encode_oracle")

describe("fuzz findings", function()
  local api

  setup(function() api = helper.start_fake {} end)
  teardown(function() api:stop() end)
  before_each(function() api:reset() end)

  -- A run whose get answers with a summary_url on the fake, which serves a report.
  local function run_with_report(id)
    local url = api.url .. "/reports/" .. id .. ".json"
    local detail = { data = { test_run = { project = { id = 1 },
      testRun = { id = id, state = "ended", summary_url = url }, flattenedSummaryDetails = {} } } }
    api:script { method = "GET", path = "/api/test-runs/" .. id, status = 200, body = cjson.encode(detail),
                 content_type = "application/json" }
    api:script { method = "GET", path = "/reports/" .. id .. ".json", status = 200, content_type = "application/json",
                 body = '{"suites":[],"stats":{"expected":1,"unexpected":0,"flaky":0,"skipped":0}}' }
  end

  local function report_downloads()
    local n = 0
    for _, entry in ipairs(api:log()) do if entry.path:find("^/reports/") then n = n + 1 end end
    return n
  end

  -- An abort from on_event while a report request's get completes: the
  -- request must end with a result or nil, err (interrupted), and an abort
  -- that wins must not leave the download it led to running.
  local function abort_from_on_event(settle)
    run_with_report(9)
    local req
    local client = helper.client(api, { on_event = function(ev)
      if ev.kind == nil and ev.path == "/api/test-runs/9" then req:abort() end
    end })
    req = assert(client:start("report", 9))
    local result, err = settle(req, client)
    client:close()
    if result == nil then
      assert.is_table(err, "neither a result nor an error")
      assert.equal("interrupted", err.kind)
      assert.equal(0, report_downloads(), "the abort won, yet the report was downloaded")
    end
  end

  -- Found by fuzz_callbacks (spec/fuzz/corpus/callbacks/finding_report_abort_in_on_event), now fixed:
  -- Download:abort (lua/empirical/init.lua) on a request whose get has just
  -- finished (its on_event runs inside the get's poll) sets done with no
  -- result and no error; the get's result then starts the download anyway.
  -- req:wait() returns nil, nil; req:poll() returns true, nil, nil.
  it("on_event aborting a report request as its get completes: wait gives a result or nil, err", function()
    abort_from_on_event(function(req) return req:wait() end)
  end)

  -- Found by fuzz_callbacks (spec/fuzz/corpus/callbacks/finding_closed_client_keeps_request_after_gc), now fixed:
  -- request_gc (csrc/request.c) calls end_request on a request that already
  -- ended, and unlink_request, seeing prev == NULL, sets the client's list
  -- head to its next (NULL): every request still in flight drops off the
  -- list. close() then detaches none of them, and each keeps stepping a
  -- client whose multi handle is gone: poll is false forever, wait spins at
  -- full CPU forever (here: 300 polls, then the case fails).
  it("a request in flight when its client closes ends, after another request was collected", function()
    api:script { method = "GET", path = "/api/test-runs/2", delay = 2 }
    local client = helper.client(api)
    local first = assert(client:start("get", 1))
    first:wait()
    local second = assert(client:start("get", 2))
    first = nil   -- luacheck: ignore 311 (dropped on purpose: its __gc is what breaks the list)
    collectgarbage()
    collectgarbage()
    client:close()
    local done, result, err
    for _ = 1, 300 do
      done, result, err = second:poll()
      if done then break end
      client._core:wait_io(0.01)
    end
    assert.is_true(done, "the request never ended: " .. tostring(second))
    assert.is_nil(result)
    assert.equal("config", err.kind)
    assert.truthy(err.message:find("closed", 1, true))
  end)

  it("on_event aborting a report request as its get completes: poll gives a result or nil, err", function()
    abort_from_on_event(function(req, client)
      for _ = 1, 500 do
        local done, result, err = req:poll()
        if done then return result, err end
        client._core:wait_io(0.01)
      end
      error("the request never finished")
    end)
  end)
end)

-- Found by fuzz_encode (spec/fuzz/corpus/encode/finding_list_long_query and
-- finding_list_many_ids), now fixed: push_target and push_query_value (csrc/marshal.c)
-- add to a luaL_Buffer while another value sits above it on the stack (the
-- field's value, or the query text about to be escaped). Once the query
-- outgrows the buffer's first block (about 1 KiB), luaL_prepbuffsize takes
-- that value for the buffer's box: SIGSEGV (ASan: SEGV at 0x8 under
-- luaL_addstring, marshal.c:87). A branch of 700 "&" (2,100 bytes escaped)
-- or 200 environment_ids of 16 digits is enough. Run in a child process, so
-- the crash fails this case rather than the whole run.
describe("fuzz findings: list queries over 1 KiB", function()
  local function encode_in_child(code)
    local status, out, err = helper.run({ helper.LUA, "-e", "local core = require('empirical.core') " .. code })
    assert.equal(0, status, "the child died: " .. err)
    return out
  end

  it("a long branch is escaped into the query, not a crash", function()
    local out = encode_in_child([[
      local req = assert(core.encode("list", { branch = string.rep("&", 1000), page = 1 }))
      io.write(req.path)]])
    assert.equal("/api/test-runs?branch=" .. string.rep("%26", 1000) .. "&page=1", out)
  end)

  it("200 environment_ids go out comma-joined, not a crash", function()
    local out = encode_in_child([[
      local ids = {}
      for i = 1, 200 do ids[i] = 9007199254740000 + i end
      io.write(assert(core.encode("list", { environment_ids = ids })).path)]])
    local ids = {}
    for i = 1, 200 do ids[i] = tostring(9007199254740000 + i) end
    assert.equal("/api/test-runs?environment_ids=" .. table.concat(ids, "%2C"), out)
  end)
end)

describe("fuzz_encode's numbers oracle", function()
  local accepted = {
    { "trigger", { environment = "s", metadata = { a = 1e300, b = 1e39, c = math.maxinteger, d = math.mininteger,
                                                   e = 9007199254740993, f = -0.0, g = 0.1, h = 2 ^ 63, i = 5e-324 } } },
    { "trigger", { environment = "s", big = { 1e300, math.maxinteger, 9007199254740993, -0.0 } }, false },
    { "rerun", { id = 5, extra = { n = math.mininteger } }, false },
    { "cancel", { id = 5, reason = "rolled back" } },
    { "cancel", { id = 5 } },
    { "list", { page = 2, per_page = 50, state = "ended", environment_ids = { 3, 4 }, branch = "a b&c/\u{e9}" } },
  }
  for _, case in ipairs(accepted) do
    it("holds on what encode sends for " .. case[1], function()
      local req, err = core.encode(case[1], case[2], case[3])
      assert.is_table(req, err and err.message)
      check_encode(case[1], case[2], req, err)
    end)
  end

  local refused = {
    { "mixed keys", { environment = "s", x = { [1] = "a", ["1"] = "b" } } },
    { "a sparse list", { environment = "s", x = { [1000] = "b" } } },
    { "an inf key", { environment = "s", x = { [math.huge] = "b" } } },
    { "a 2^63 key", { environment = "s", x = { [2 ^ 63] = "b" } } },
    { "NaN", { environment = "s", x = 0 / 0 } },
  }
  for _, case in ipairs(refused) do
    it("holds on the refusal of " .. case[1] .. " in pass-through mode, which names the field", function()
      local req, err = core.encode("trigger", case[2], false)
      check_encode("trigger", case[2], req, err)
      assert.is_nil(req)
      assert.equal("x", err.field)
    end)
  end

  local wrong = {
    { "an integer beyond 2^53 rounded", { environment = "s", metadata = { x = 9007199254740993 } },
      '{"environment":"s","metadata":{"x":9007199254740992}}' },
    { "math.maxinteger through %.0f", { environment = "s", metadata = { x = math.maxinteger } },
      '{"environment":"s","metadata":{"x":9223372036854775808}}' },
    { "1e300 cut to 1e37", { environment = "s", metadata = { x = 1e300 } },
      '{"environment":"s","metadata":{"x":9999999999999999538762658202121142272}}' },
    { "a key sent twice", { environment = "s", x = { [1] = "a", ["1"] = "b" } }, '{"environment":"s","x":{"1":"a","1":"b"}}' },
  }
  for _, case in ipairs(wrong) do
    it("fails on " .. case[1], function()
      local sent = { method = "PUT", path = "/api/test-runs", body = case[3] }
      assert.has_error(function() check_encode("trigger", case[2], sent) end)
    end)
  end

  it("fails on a list query with a character left unescaped or out of order", function()
    assert.has_error(function() check_encode("list", { branch = "a b" }, { method = "GET", path = "/api/test-runs?branch=a b" }) end)
    assert.has_error(function()
      check_encode("list", { branch = "a", page = 2 }, { method = "GET", path = "/api/test-runs?page=2&branch=a" })
    end)
  end)
end)
