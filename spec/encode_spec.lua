-- Validation and marshalling, without I/O: empirical.encode.
local empirical = require("empirical")
local cjson = require("cjson")

local function body_of(params, opts)
  local req, err = empirical.encode("trigger", params, opts)
  assert(req, err and tostring(err))
  return cjson.decode(req.body), req.body
end

describe("encode", function()
  describe("trigger", function()
    it("builds PUT /api/test-runs with a JSON body", function()
      local req = assert(empirical.encode("trigger", { environment = "staging" }))
      assert.same({ method = "PUT", path = "/api/test-runs", body = '{"environment":"staging"}' }, req)
    end)

    it("carries every schema field", function()
      local body = body_of {
        environment = "staging",
        build = { url = "https://s.example.com", branch = "main", commit = "abc123",
                  commit_url = "https://github.com/o/r/commit/abc123", version = "1.2.3" },
        metadata = { deployed_by = "alice", pipeline = 42 },
        environment_variables_overrides = { { name = "BASE_URL", value = "https://x" } },
        tags = { "@smoke", "@critical" },
        project_id = 7, send_notifications = false, total_shards = 4,
        rerun_source_id = 9, rerun_only_failed = true, github_actor = "octocat",
      }
      assert.same("abc123", body.build.commit)
      assert.same({ "@smoke", "@critical" }, body.tags)
      assert.same(42, body.metadata.pipeline)
      assert.same({ { name = "BASE_URL", value = "https://x" } }, body.environment_variables_overrides)
      assert.is_false(body.send_notifications)
      assert.same(4, body.total_shards)
    end)

    it("sends whole numbers as integers, never 4.0, and exactly up to 2^53", function()
      local _, text = body_of { environment = "s", total_shards = 4.0, project_id = 2 ^ 53 }
      assert.matches('"total_shards":4[,}]', text)
      assert.matches('"project_id":9007199254740992[,}]', text)
    end)

    it("keeps fractional metadata numbers exact", function()
      local _, text = body_of { environment = "s", metadata = { pi = math.pi, half = 0.5 } }
      assert.matches('"pi":3.141592653589793[,}]', text)
      assert.matches('"half":0.5[,}]', text)
    end)

    it("sends a NAME = value map of overrides as a list sorted by name", function()
      local body = body_of { environment = "s", environment_variables_overrides = { ZED = "1", ALPHA = "2", MID = "" } }
      assert.same({ { name = "ALPHA", value = "2" }, { name = "MID", value = "" }, { name = "ZED", value = "1" } },
                  body.environment_variables_overrides)
    end)

    it("leaves empty lists out rather than sending {}", function()
      local _, text = body_of { environment = "s", tags = {}, environment_variables_overrides = {} }
      assert.equal('{"environment":"s"}', text)
    end)

    it("reads tables raw: metamethods are never called", function()
      local params = setmetatable({ environment = "s" }, { __index = function() error("must not be called") end,
                                                          __pairs = function() error("must not be called") end })
      assert.truthy(empirical.encode("trigger", params))
    end)

    it("lets unknown top-level fields through with strict = false, still checked", function()
      local body = body_of({ environment = "s", future_field = { 1, 2 } }, { strict = false })
      assert.same({ 1, 2 }, body.future_field)
      local _, err = empirical.encode("trigger", { environment = "s", future = 0 / 0 }, { strict = false })
      assert.equal("future", err.field)
    end)
  end)

  describe("rerun and get", function()
    it("puts the id in the path and the options in the body", function()
      assert.same({ method = "POST", path = "/api/test-runs/5/re-run", body = '{"only_failed":true}' },
                  empirical.encode("rerun", { id = 5, only_failed = true }))
      local bare = empirical.encode("rerun", { id = 5 })
      assert.is_true(bare.body == "" or bare.body == "{}")
      assert.same({ method = "GET", path = "/api/test-runs/9007199254740992" },
                  empirical.encode("get", { id = 2 ^ 53 }))
    end)
  end)

  -- Each row: the call, its params, the field the error must name, and a
  -- piece of its message. Every one must fail as "invalid".
  local NUL, BAD_UTF8 = "a\0b", "caf\xe9"
  local cyclic = {}
  cyclic.self = cyclic
  local invalid = {
    { "trigger", nil, "params", "expected a table" },
    { "trigger", "staging", "params", "expected a table" },
    { "trigger", {}, "environment", "is required" },
    { "trigger", { environment = "" }, "environment", "must not be empty" },
    { "trigger", { environment = 5 }, "environment", "expected a string" },
    { "trigger", { environment = NUL }, "environment", "NUL" },
    { "trigger", { environment = BAD_UTF8 }, "environment", "UTF-8" },
    { "trigger", { environment = ("x"):rep(64 * 1024 + 1) }, "environment", "too long" },
    { "trigger", { enviroment = "s" }, "enviroment", "did you mean environment?" },
    { "trigger", { environment = "s", shards = 2 }, "shards", "unknown field" },
    { "trigger", { environment = "s", [1] = "x" }, nil, "expected named fields" },
    { "trigger", { environment = "s", branch = "m", build = { commit = "a" } }, "branch", "cannot be used together with build" },
    { "trigger", { environment = "s", build = "abc" }, "build", "expected a table" },
    { "trigger", { environment = "s", build = { comit = "a" } }, "build.comit", "did you mean commit?" },
    { "trigger", { environment = "s", build = { commit = 123 } }, "build.commit", "expected a string" },
    { "trigger", { environment = "s", build = { url = "" } }, "build.url", "must not be empty" },
    { "trigger", { environment = "s", total_shards = 2.5 }, "total_shards", "whole number" },
    { "trigger", { environment = "s", total_shards = "4" }, "total_shards", "got a string" },
    { "trigger", { environment = "s", total_shards = 0 }, "total_shards", "from 1 to 2^53" },
    { "trigger", { environment = "s", total_shards = -3 }, "total_shards", "from 1 to 2^53" },
    { "trigger", { environment = "s", total_shards = 0 / 0 }, "total_shards", "NaN" },
    { "trigger", { environment = "s", total_shards = math.huge }, "total_shards", "whole number" },
    { "trigger", { environment = "s", project_id = 2 ^ 60 }, "project_id", "whole number" },
    { "trigger", { environment = "s", project_id = 2 ^ 53 + 2 }, "project_id", "whole number" },
    { "trigger", { environment = "s", rerun_source_id = true }, "rerun_source_id", "whole number" },
    { "trigger", { environment = "s", send_notifications = "yes" }, "send_notifications", "expected a boolean" },
    { "trigger", { environment = "s", rerun_only_failed = 1 }, "rerun_only_failed", "expected a boolean" },
    { "trigger", { environment = "s", github_actor = {} }, "github_actor", "expected a string" },
    { "trigger", { environment = "s", tags = "@smoke" }, "tags", "expected a list of strings" },
    { "trigger", { environment = "s", tags = { "@a", 5 } }, "tags[2]", "expected a string" },
    { "trigger", { environment = "s", tags = { "@a", "" } }, "tags[2]", "must not be empty" },
    { "trigger", { environment = "s", tags = { [1] = "a", [3] = "c" } }, "tags", "holes" },
    { "trigger", { environment = "s", tags = { x = "a" } }, "tags", "expected a list" },
    { "trigger", { environment = "s", metadata = "k=v" }, "metadata", "expected a table" },
    { "trigger", { environment = "s", metadata = { k = true } }, "metadata.k", "string or a number" },
    { "trigger", { environment = "s", metadata = { k = 0 / 0 } }, "metadata.k", "finite" },
    { "trigger", { environment = "s", metadata = { k = math.huge } }, "metadata.k", "finite" },
    { "trigger", { environment = "s", metadata = { k = { 1 } } }, "metadata.k", "string or a number" },
    { "trigger", { environment = "s", metadata = { [1] = "v" } }, "metadata", "keys must be strings" },
    { "trigger", { environment = "s", metadata = { k = BAD_UTF8 } }, "metadata.k", "UTF-8" },
    { "trigger", { environment = "s", environment_variables_overrides = "A=1" }, "environment_variables_overrides", "expected a list" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A" } } }, "environment_variables_overrides[1].value", "is required" },
    { "trigger", { environment = "s", environment_variables_overrides = { { value = "1" } } }, "environment_variables_overrides[1].name", "is required" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A", value = "1" }, { name = "B", value = 2 } } }, "environment_variables_overrides[2].value", "expected a string" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A", value = "1", vlaue = "x" } } }, "environment_variables_overrides[1].vlaue", "did you mean value?" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A", value = "1" }, { name = "A", value = "2" } } }, "environment_variables_overrides[2].name", "set twice" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "1A", value = "1" } } }, "environment_variables_overrides[1].name", "not an environment variable name" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A B", value = "1" } } }, "environment_variables_overrides[1].name", "not an environment variable name" },
    { "trigger", { environment = "s", environment_variables_overrides = { "A=1" } }, "environment_variables_overrides[1]", "expected {name" },
    { "trigger", { environment = "s", environment_variables_overrides = { A = 1 } }, "environment_variables_overrides.A", "expected a string" },
    { "trigger", { environment = "s", environment_variables_overrides = { ["BAD-NAME"] = "1" } }, "environment_variables_overrides.BAD-NAME", "not an environment variable name" },
    { "trigger", { environment = "s", environment_variables_overrides = { { name = "A", value = "1" }, B = "2" } }, "environment_variables_overrides", "mixes" },
    { "trigger", { environment = "s", environment_variables_overrides = { A = NUL } }, "environment_variables_overrides.A", "NUL" },
    { "trigger", { environment = "s", future = print }, "future", "unknown field" },
    { "rerun", {}, "id", "is required" },
    { "rerun", { id = "5" }, "id", "got a string" },
    { "rerun", { id = 5.5 }, "id", "whole number" },
    { "rerun", { id = 0 }, "id", "from 1 to 2^53" },
    { "rerun", { id = 5, only_failed = "true" }, "only_failed", "expected a boolean" },
    { "rerun", { id = 5, onlyfailed = true }, "onlyfailed", "did you mean only_failed?" },
    { "get", { id = "../admin" }, "id", "got a string" },
    { "get", { id = -1 }, "id", "from 1 to 2^53" },
    { "get", { id = 2 ^ 63 }, "id", "whole number" },
    { "get", { id = 1, extra = 1 }, "extra", "unknown field" },
  }

  for i, row in ipairs(invalid) do
    local op, params, field, text = row[1], row[2], row[3], row[4]
    it(("refuses bad input #%d: %s %s"):format(i, op, field or text), function()
      local req, err = empirical.encode(op, params)
      assert.is_nil(req)
      assert.equal("invalid", err.kind)
      assert.equal(field, err.field)
      assert.truthy(err.message:find(text, 1, true), err.message)
      assert.truthy(tostring(err):find("empirical: invalid: ", 1, true))
    end)
  end

  it("refuses a table that contains itself when passed through, without looping", function()
    local _, err = empirical.encode("trigger", { environment = "s", loop = cyclic }, { strict = false })
    assert.equal("invalid", err.kind)
    assert.truthy(err.message:find("deeper than", 1, true))
  end)

  it("names the same unknown field whatever the table's order", function()
    for _ = 1, 20 do
      local _, err = empirical.encode("trigger", { environment = "s", zzz = 1, aaa = 2, mmm = 3 })
      assert.equal("aaa", err.field)
    end
  end)

  it("raises on misuse: an unknown operation", function()
    assert.has_error(function() empirical.encode("delete", { id = 1 }) end)
  end)
end)
