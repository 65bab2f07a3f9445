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

    -- A valid table that needs no rewriting goes to cjson as the caller built
    -- it; one that does (a map of overrides, an empty list, a number 14
    -- digits cannot carry, -0) is copied first. Either way, the same body.
    it("sends the same body whether the table is sent as it is or rewritten first", function()
      local as_is = body_of { environment = "s", metadata = { n = 3 },
                              environment_variables_overrides = { { name = "A", value = "1" }, { name = "B", value = "2" } } }
      local rewritten = body_of { environment = "s", metadata = { n = 3.0 }, tags = {},
                                  environment_variables_overrides = { B = "2", A = "1" } }
      assert.same(as_is, rewritten)
      local _, text = body_of { environment = "s", metadata = { zero = -0.0, big = 2 ^ 53 } }
      assert.matches('"zero":0[,}]', text)
      assert.matches('"big":9007199254740992[,}]', text)
    end)

    it("never changes the caller's table", function()
      local function deep_copy(t)
        if type(t) ~= "table" then return t end
        local out = {}
        for k, v in pairs(t) do out[k] = deep_copy(v) end
        return out
      end
      local inputs = {
        { "trigger", { environment = "s", tags = { "@a" }, environment_variables_overrides = { { name = "A", value = "1" } } } },
        { "trigger", { environment = "s", tags = {}, environment_variables_overrides = { B = "2", A = "1" } } },
        { "trigger", { environment = "s", future = { x = 2 ^ 60 } }, { strict = false } },
        { "rerun", { id = 5, only_failed = true } },
        { "get", { id = 7 } },
      }
      for _, row in ipairs(inputs) do
        local before = deep_copy(row[2])
        assert.truthy(empirical.encode(row[1], row[2], row[3]))
        assert.same(before, row[2])
      end
    end)

    it("takes a key with a NUL byte in it for no field at all", function()
      local req, err = empirical.encode("trigger", { environment = "s", ["environment\0x"] = "y" })
      assert.is_nil(req)
      assert.equal("invalid", err.kind)
      assert.matches("unknown field", err.message)
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
      -- no options, no body: the method stays POST (the row says so), with nothing to send
      assert.same({ method = "POST", path = "/api/test-runs/5/re-run" }, empirical.encode("rerun", { id = 5 }))
      assert.same({ method = "GET", path = "/api/test-runs/9007199254740992" },
                  empirical.encode("get", { id = 2 ^ 53 }))
    end)
  end)

  -- The shared table of invalid inputs (spec/bad_inputs.lua).
  local invalid = require("bad_inputs")
  local cyclic = {}
  cyclic.self = cyclic

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

  it("checks the keys of pass-through values like strings (found by fuzzing)", function()
    local rows = {
      { { environment = "s", future = { { ["\0name"] = "A" } } }, "future[1]", "NUL" },
      { { environment = "s", future = { ["\0" .. "1234"] = 1 } }, "future", "NUL" },
      { { environment = "s", ["fut\0ure"] = 1 }, nil, "NUL" },
      { { environment = "s", future = { ["caf\233"] = 1 } }, "future", "UTF%-8" },
    }
    for _, row in ipairs(rows) do
      local req, err = empirical.encode("trigger", row[1], { strict = false })
      assert.is_nil(req)
      assert.equal("invalid", err.kind)
      assert.equal(row[2], err.field)
      assert.matches("has a key that .*" .. row[3], err.message)
    end
  end)

  it("names the same unknown field whatever the table's order", function()
    for _ = 1, 20 do
      local _, err = empirical.encode("trigger", { environment = "s", zzz = 1, aaa = 2, mmm = 3 })
      assert.equal("aaa", err.field)
    end
  end)

  it("refuses an unknown operation, naming the five it knows", function()
    local req, err = empirical.encode("delete", { id = 1 })
    assert.is_nil(req)
    assert.same({ "invalid", "op" }, { err.kind, err.field })
    assert.truthy(err.message:find("trigger, rerun, get, cancel or list", 1, true), err.message)
  end)
end)
