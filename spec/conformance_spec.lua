-- Conformance with the vendor's OpenAPI file (issue 13's first bar). An
-- independent mock, spec/tools/openapi_mock.py, reads spec/fixtures/openapi.yaml
-- itself: it generates schema-valid answers for all five endpoints, which must
-- decode (through empirical.decode and through the client over the fake), and
-- it judges with jsonschema every request the client sends.
-- CONFORMANCE_SEED=s CONFORMANCE_COUNT=n explore other and more bodies; the default is fixed.
local empirical = require("empirical")
local cjson = require("cjson")
local helper = require("helper")

local PYTHON = "/usr/bin/python3"   -- Debian's, with Debian's packages (not a pyenv or venv one)
local TOOL = "spec/tools/openapi_mock.py"
local APT = "apt-get install -y python3-yaml python3-jsonschema"
local SEED = os.getenv("CONFORMANCE_SEED") or "13"
local COUNT = tonumber(os.getenv("CONFORMANCE_COUNT")) or 30   -- random bodies per answer, beside the examples
local JSON = "application/json"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- The tool's stdout for args, stdin from a file holding `input`; raises with
-- its stderr when it fails, so a broken tool never reads as a finding.
local function tool(args, input)
  local stdin, stderr = os.tmpname(), os.tmpname()
  local f = assert(io.open(stdin, "wb"))
  f:write(input or "")
  f:close()
  local pipe = assert(io.popen(("%s %s %s <%s 2>%s"):format(PYTHON, TOOL, args, stdin, stderr)))
  local out = pipe:read("*a")
  local ok = pipe:close()
  local err = read_file(stderr)
  os.remove(stdin)
  os.remove(stderr)
  if not ok then error(("%s %s failed:\n%s"):format(TOOL, args, err), 2) end
  return out
end

local function json_lines(text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do rows[#rows + 1] = cjson.decode(line) end
  return rows
end

-- Calls each method the way a user would: ops with {id} in the path take
-- (id, opts), the others (params).
local ROWS = {}
for _, row in ipairs(empirical.OPERATIONS) do ROWS[row.name] = row end

local function call(client, op, params)
  if #ROWS[op].path_params == 0 then return client[op](client, params) end
  local opts = {}
  for k, v in pairs(params) do if k ~= "id" then opts[k] = v end end
  return client[op](client, params.id, next(opts) and opts or nil)
end

-- What each generated answer is served to, and how: a trigger needs a valid body.
local CALLED_WITH = { trigger = { environment = "staging" }, rerun = { id = 7 }, get = { id = 7 },
                      cancel = { id = 7 }, list = {} }

-- The first bytes of text a user would see, up to a NUL (C strings end there).
local function prefix(text, bytes)
  local out = ""
  for _, c in utf8.codes((text:match("^[^%z]*"))) do
    local ch = utf8.char(c)
    if #out + #ch > bytes then break end
    out = out .. ch
  end
  return out
end

-- Refusals of schema-valid answers that the README documents (its Errors
-- table, kind "http"): a 2xx whose top level carries an error message, and a
-- trigger or re-run answering trigger.success = false. Ids at or beyond 2^53,
-- the third, are never generated; their own case is below.
local function documented_refusal(op, doc)
  local e = doc.error
  if type(e) == "string" or (type(e) == "table" and type(e.message) == "string") then
    return "a 2xx with an error message"
  end
  if (op == "trigger" or op == "rerun") and doc.data.trigger.success == false then
    return "trigger.success = false"
  end
end

-- nil when decode's answer to one generated body is right, else what is wrong.
local function judge(op, status, body, result, err)
  local doc = cjson.decode(body)
  if status >= 400 then
    if result ~= nil then return "an error answer decoded as a result" end
    local said = prefix(doc.error.message, 40)
    if err.kind ~= "http" or err.status ~= status or not err.message:find(said, 1, true) then
      return ("expected kind http, status %d, a message with %q; got %s"):format(status, said, tostring(err))
    end
    return nil
  end
  local refusal = documented_refusal(op, doc)
  if refusal then
    if result == nil and err.kind == "http" then return nil end
    return ("%s must be refused with kind http; got %s"):format(refusal, result and "a result" or tostring(err))
  end
  if result == nil then return "refused: " .. tostring(err) end
  -- A few values a user reads, checked against the body (JSON null is nil), so nothing is lost on the way.
  local function lua(v) if v ~= cjson.null then return v end end
  local same = ({
    trigger = function() return result.id == doc.data.test_run.id end,
    get = function() return result.testRun.id == doc.data.test_run.testRun.id end,
    cancel = function() return result.message == lua(doc.message) end,
    list = function()
      local runs = lua(doc.data.test_runs)
      local items = runs and lua(runs.items) or {}
      return #((result.test_runs or {}).items or {}) == #items
        and (result.pagination or {}).total == lua(doc.pagination.total)
    end,
  })[op == "rerun" and "trigger" or op]
  if not same() then return "decoded, but a value differs from the body's" end
end

-- The failures, each body cut to its first 300 characters, and how to get it whole.
local function report(failures)
  local lines = {}
  for i, f in ipairs(failures) do
    if i > 8 then lines[#lines + 1] = ("... and %d more"):format(#failures - 8) break end
    local cut = utf8.offset(f.body, 301)
    lines[#lines + 1] = ("%s: %s\n    body: %s%s"):format(f.name, f.problem, cut and f.body:sub(1, cut - 1) or f.body,
                                                       cut and " ..." or "")
  end
  lines[#lines + 1] = ("whole bodies: %s %s generate --count %d --seed %s | grep '\"name\": \"<name>\"'")
    :format(PYTHON, TOOL, COUNT, SEED)
  return table.concat(lines, "\n")
end

describe("conformance with the vendor's OpenAPI file", function()
  local answers, by_op = {}, {}

  setup(function()
    if not os.execute(PYTHON .. " -c 'import yaml, jsonschema' 2>/dev/null") then
      error(("the conformance spec needs %s with PyYAML and jsonschema from Debian: run `%s` "
             .. "(make test installs them)"):format(PYTHON, APT), 0)
    end
    local ops = {}
    for _, row in ipairs(empirical.OPERATIONS) do ops[row.method .. " " .. row.path] = row.name end
    for _, a in ipairs(json_lines(tool(("generate --count %d --seed %s"):format(COUNT, SEED)))) do
      a.op = ops[a.method .. " " .. a.path]
      if not a.op then error(("the file has %s %s (%s), which no operation serves"):format(a.method, a.path, a.operation)) end
      answers[#answers + 1] = a
      by_op[a.op] = by_op[a.op] or {}
      table.insert(by_op[a.op], a)
    end
  end)

  it("reads a copy of ../shared/api/openapi.yaml that is still current", function()
    local shared = read_file("../shared/api/openapi.yaml")
    if not shared then return pending("../shared/api/openapi.yaml is not beside this checkout") end
    local copy = assert(read_file("spec/fixtures/openapi.yaml"))
    assert.equal(shared, (copy:gsub("^#[^\n]*\n#[^\n]*\n#[^\n]*\n", "")),
                 "refresh spec/fixtures/openapi.yaml from ../shared/api/openapi.yaml (keep its three header lines)")
  end)

  it("has answers for all five operations, the file's examples among them", function()
    for _, row in ipairs(empirical.OPERATIONS) do
      assert.is_truthy(by_op[row.name], row.name .. " has no generated answers")
    end
    local examples = 0
    for _, a in ipairs(answers) do if a.name:find(" example ", 1, true) then examples = examples + 1 end end
    assert.equal(3, examples)   -- list's two (newest and older pages), cancel's one
  end)

  describe("every schema-valid answer decodes", function()
    for _, row in ipairs(empirical.OPERATIONS) do
      it("through empirical.decode: " .. row.name, function()
        local failures = {}
        for _, a in ipairs(by_op[row.name]) do
          local problem = judge(row.name, a.status, a.body, empirical.decode(row.name, a.status, a.body, JSON))
          if problem then failures[#failures + 1] = { name = a.name, problem = problem, body = a.body } end
        end
        assert(#failures == 0, "schema-valid answers refused:\n" .. report(failures))
      end)
    end

    -- The same bodies as the fake's scripted answers, through the client: the
    -- transport must hand decode the same bytes, so the outcome is the same.
    describe("through the client and the fake", function()
      local fake, client
      setup(function() fake = helper.start_fake() end)
      teardown(function() fake:stop() end)
      before_each(function()
        fake:reset()
        client = helper.client(fake, { retries = 0 })
      end)
      after_each(function() client:close() end)

      for _, row in ipairs(empirical.OPERATIONS) do
        it(row.name, function()
          local request = assert(empirical.encode(row.name, CALLED_WITH[row.name]))
          local scripts = {}
          for i, a in ipairs(by_op[row.name]) do
            scripts[i] = { method = request.method, path = request.path, status = a.status, body = a.body }
          end
          fake:script(table.unpack(scripts))
          local failures = {}
          for _, a in ipairs(by_op[row.name]) do
            local want, want_err = empirical.decode(row.name, a.status, a.body, JSON)
            local got, err = call(client, row.name, CALLED_WITH[row.name])
            local problem
            if want ~= nil and not (got ~= nil and require("luassert.util").deepcompare(want, got, true)) then
              problem = "the client's result differs from decode's: " .. tostring(err)
            elseif want == nil and not (got == nil and err.kind == want_err.kind and err.message == want_err.message) then
              problem = ("decode said %s; the client said %s"):format(tostring(want_err), tostring(got and "a result" or err))
            end
            if problem then failures[#failures + 1] = { name = a.name, problem = problem, body = a.body } end
          end
          assert(#failures == 0, report(failures))
          assert.equal(#scripts, #fake:log())
        end)
      end
    end)
  end)

  it("refuses an id at or beyond 2^53, by design (README), naming the field", function()
    local bodies = {
      trigger = '{"data":{"trigger":{"success":true},"test_run":{"id":%s,"state":"queued","test_run_branch":"main",'
                .. '"created_at":"2024-01-15T10:30:00.000Z"}}}',
      get = '{"data":{"test_run":{"project":{"id":1,"name":"a","repo_name":"b"},"testRun":{"id":%s,"state":"ended"},'
            .. '"flattenedSummaryDetails":[]}}}',
      list = '{"data":{"test_runs":{"items":[{"id":%s}]}},"pagination":{"page":1}}',
    }
    local fields = { trigger = "data.test_run.id", get = "data.test_run.testRun.id", list = "data.test_runs.items[1].id" }
    for op, body in pairs(bodies) do
      for _, id in ipairs { "9007199254740992", "9007199254740993", "-9007199254740992", "1e300" } do
        local result, err = empirical.decode(op, 200, body:format(id), JSON)
        assert.is_nil(result, op .. " " .. id)
        assert.equal("decode", err.kind)
        assert.equal(fields[op], err.field)
        assert.matches("2^53", err.message, 1, true)
      end
      -- Just below, it is a result, and a Lua integer.
      local result = assert(empirical.decode(op, 200, body:format("9007199254740991"), JSON))
      local run = op == "get" and result.testRun or op == "list" and result.test_runs.items[1] or result
      assert.equal(9007199254740991, run.id)
      assert.equal("integer", math.type(run.id))
    end
  end)

  -- Found by this spec: the vendor's TestRunListItem requires nothing, so a
  -- listed run without an id is schema-valid (decode once refused it).
  it("decodes a listed run without an id (TestRunListItem has no required fields)", function()
    local body = '{"data":{"test_runs":{"items":[{"state":"ended","duration":1}]}},"pagination":{"page":1}}'
    local result, err = empirical.decode("list", 200, body, JSON)
    assert(result, "the schema allows it, decode said: " .. tostring(err))
    assert.equal(1, #result.test_runs.items)
  end)

  -- Found by this spec: TestRunListItem has no `state` (the newest page shows
  -- none), so `state` is an extra property and any value is schema-valid
  -- (decode once wanted a string or null).
  it("decodes a listed run whose undocumented state is not a string", function()
    for _, state in ipairs { "true", "3", '{"name":"ended"}', "[]" } do
      local body = ('{"data":{"test_runs":{"items":[{"id":1,"state":%s}]}},"pagination":{"page":1}}'):format(state)
      local result, err = empirical.decode("list", 200, body, JSON)
      assert(result, body .. ": the schema allows it, decode said: " .. tostring(err))
    end
  end)

  describe("every request the client sends validates", function()
    local fake, client
    setup(function() fake = helper.start_fake() end)
    teardown(function() fake:stop() end)
    before_each(function()
      fake:reset()
      client = helper.client(fake, { retries = 0 })
    end)
    after_each(function() client:close() end)

    local STATES = { "pending", "queued", "started", "ended", "error", "cancelled", "cancelling" }
    local BUILD = { url = "https://staging.example.com/?a=1&b=2", branch = "feature/\195\169t\195\169", commit = "abc123",
                    commit_url = "https://github.com/acme/app/commit/abc123", version = "1.2.3-rc.1+build.5" }
    local VALID = {
      { "list", {} },
      { "list", { id = 1 } }, { "list", { id = 9007199254740992 } }, { "list", { id = 5.0 } },
      { "list", { branch = "main" } }, { "list", { branch = "feature/a b&c=d#e?f+g%h \195\164 \240\159\152\128" } },
      { "list", { result = "passed" } }, { "list", { result = "failed" } },
      { "list", { environment_ids = { 3 } } }, { "list", { environment_ids = { 3, 4, 9007199254740992 } } },
      { "list", { interval_in_days = 1 } }, { "list", { interval_in_days = 365 } },
      { "list", { page = 1 } }, { "list", { page = 2 } }, { "list", { per_page = 1 } }, { "list", { per_page = 100 } },
      { "list", { id = 7, branch = "main", state = "ended", result = "failed", environment_ids = { 1, 2 },
                  interval_in_days = 30, page = 3, per_page = 50 } },
      { "get", { id = 1 } }, { "get", { id = 9007199254740992 } }, { "get", { id = 42.0 } },
      { "cancel", { id = 5 } }, { "cancel", { id = 5, reason = "Deployment rolled back" } },
      { "cancel", { id = 5, reason = 'quote " backslash \\ newline \n \195\169\240\159\152\128 ' .. ("x"):rep(2000) } },
      { "rerun", { id = 5 } }, { "rerun", { id = 5, only_failed = true } }, { "rerun", { id = 5, only_failed = false } },
      { "rerun", { id = 5, send_notifications = false } }, { "rerun", { id = 5, only_failed = true, send_notifications = true } },
      { "trigger", { environment = "staging" } },
      { "trigger", { environment = "staging", build = BUILD, metadata = { pipeline = 4127, ratio = 0.5, by = "ci", empty = "" },
                     environment_variables_overrides = { { name = "FLAGS", value = "a,b" }, { name = "EMPTY", value = "" } },
                     tags = { "@smoke", "@critical" }, project_id = 7, send_notifications = false, total_shards = 4,
                     rerun_source_id = 9007199254740992, rerun_only_failed = true, github_actor = "octocat" } },
      { "trigger", { environment = "production", branch = "feature/x", environment_variables_overrides = { FEATURE = "on" },
                     tags = {}, metadata = {} } },
    }
    for _, state in ipairs(STATES) do table.insert(VALID, 2, { "list", { state = state } }) end

    it("for every method, every list filter and every trigger field", function()
      for _, input in ipairs(VALID) do
        local _, err = call(client, input[1], input[2])
        assert(not (err and err.kind == "invalid"), tostring(err))   -- refused before sending: nothing to check
      end
      local log, lines = fake:log(), {}
      assert.equal(#VALID, #log)
      for i, r in ipairs(log) do lines[i] = cjson.encode { method = r.method, path = r.path, body = r.body } end
      local verdicts = json_lines(tool("validate-request -", table.concat(lines, "\n")))
      assert.equal(#log, #verdicts)
      for i, v in ipairs(verdicts) do
        assert(v.valid, ("%s %s %s\n  %s"):format(log[i].method, log[i].path, log[i].body, table.concat(v.errors, "\n  ")))
      end
    end)

    -- The reverse, on a sample: what encode refuses, the schema refuses too,
    -- judged on what would have gone out (the raw JSON of the bad table).
    local REFUSED = {
      { "list", { page = 0 }, "page", "GET /api/test-runs?page=0" },
      { "list", { per_page = 101 }, "per_page", "GET /api/test-runs?per_page=101" },
      { "list", { result = "skipped" }, "result", "GET /api/test-runs?result=skipped" },
      { "list", { id = 2.5 }, "id", "GET /api/test-runs?id=2.5" },
      { "list", { interval_in_days = 0 }, "interval_in_days", "GET /api/test-runs?interval_in_days=0" },
      { "list", { environment_ids = { 0 } }, "environment_ids[1]", "GET /api/test-runs?environment_ids=0" },
      { "get", { id = 0 }, "id", "GET /api/test-runs/0" },
      { "get", { id = -3 }, "id", "GET /api/test-runs/-3" },
      { "trigger", {}, "environment", "PUT /api/test-runs" },
      { "trigger", { environment = 42 }, "environment", "PUT /api/test-runs" },
      { "trigger", { environment = "staging", total_shards = 0 }, "total_shards", "PUT /api/test-runs" },
      { "trigger", { environment = "staging", tags = { 1, 2 } }, "tags[1]", "PUT /api/test-runs" },
      { "trigger", { environment = "staging", metadata = { ok = true } }, "metadata.ok", "PUT /api/test-runs" },
      { "trigger", { environment = "staging", send_notifications = "yes" }, "send_notifications", "PUT /api/test-runs" },
      { "rerun", { id = 5, only_failed = "yes" }, "only_failed", "POST /api/test-runs/5/re-run" },
      { "cancel", { id = 5, reason = 42 }, "reason", "POST /api/test-runs/5/cancel" },
    }

    it("and what encode refuses, the schema refuses too; nothing is sent", function()
      local lines = {}
      for i, row in ipairs(REFUSED) do
        local op, params, field, target = row[1], row[2], row[3], row[4]
        local request, err = empirical.encode(op, params)
        assert.is_nil(request, op .. " " .. cjson.encode(params))
        assert.equal("invalid", err.kind)
        assert.equal(field, err.field)
        local _, sent_err = call(client, op, params)
        assert.equal("invalid", sent_err.kind)
        local method, path = target:match("^(%S+) (%S+)$")
        local body
        if method ~= "GET" then
          local fields = {}
          for k, v in pairs(params) do if k ~= "id" then fields[k] = v end end
          body = next(fields) and cjson.encode(fields) or "{}"
        end
        lines[i] = cjson.encode { method = method, path = path, body = body }
      end
      assert.equal(0, #fake:log())
      local verdicts = json_lines(tool("validate-request -", table.concat(lines, "\n")))
      for i, v in ipairs(verdicts) do
        assert(not v.valid, "the schema accepts what encode refused: " .. lines[i])
      end
      assert.equal(#REFUSED, #verdicts)
    end)
  end)
end)
