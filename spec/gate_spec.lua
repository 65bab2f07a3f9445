-- examples/release_gate.lua as a CI job runs it: a subprocess against the
-- fake, judged by its exit code, its output and the fake's log.
local helper = require("helper")
local cjson = require("cjson")
local lxp = require("lxp.lom")

local GATE = "examples/release_gate.lua"

-- The testsuite element of a JUnit file, parsed by expat.
local function junit_suite(path)
  local f = assert(io.open(path))
  local doc = assert(lxp.parse(f:read("*a")))
  f:close()
  os.remove(path)
  assert.equal("testsuites", doc.tag)
  for _, node in ipairs(doc) do
    if type(node) == "table" and node.tag == "testsuite" then return node end
  end
  error("no testsuite in " .. path)
end

describe("the release gate", function()
  local fake

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function gate(args, env)
    local argv = { "lua5.4", GATE, "--interval", "0.05" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local vars = { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url }
    for k, v in pairs(env or {}) do vars[k] = v end
    return helper.run(argv, vars)
  end

  local function bodies(method)
    local out = {}
    for _, r in ipairs(fake:log()) do if r.method == method then out[#out + 1] = cjson.decode(r.body) end end
    return out
  end

  describe("exits 0", function()
    it("when the run passes", function()
      fake:scenario { tests = { { name = "a", outcome = "passed" }, { name = "b", outcome = "flaky" } } }
      local code, out = gate { "--environment", "staging" }
      assert.equal(0, code, out)
      assert.matches("run 1 ended: PASSED", out, 1, true)
      assert.matches("release gate: passed (exit 0)", out, 1, true)
    end)

    it("when a re-run of the failed tests passes, after re-running only those, once", function()
      local code, out = gate { "--environment", "staging", "--rerun-failed", "2" }
      assert.equal(0, code, out)
      assert.matches("re-run 1 of the failed tests:\nrun 2 ended: PASSED", out, 1, true)
      assert.equal(1, helper.count(fake:log(), "PUT"))
      assert.same({ { only_failed = true } }, bodies("POST"))
    end)

    it("and prints --help with every exit code", function()
      local code, out = gate { "--help" }
      assert.equal(0, code)
      for _, line in ipairs { "0  the run passed", "1  tests failed", "2  the run ended in error", "3  usage" } do
        assert.matches(line, out, 1, true)
      end
    end)
  end)

  describe("exits 1", function()
    it("when tests failed and no re-run was asked for, naming them", function()
      local code, out = gate { "--environment", "staging" }
      assert.equal(1, code, out)
      assert.matches("- checkout > pays with card", out, 1, true)
      assert.equal(0, helper.count(fake:log(), "POST"))
    end)

    it("when the re-runs do not fix them, after exactly N re-runs", function()
      fake:scenario { tests = { { name = "broken", outcome = "failed" } } }
      local code, out = gate { "--environment", "staging", "--rerun-failed", "2" }
      assert.equal(1, code, out)
      assert.equal(2, helper.count(fake:log(), "POST"))
      assert.matches("release gate: failed (exit 1)", out, 1, true)
    end)
  end)

  describe("exits 2", function()
    it("when the run ends in error", function()
      fake:scenario { end_state = "error" }
      local code, out = gate { "--environment", "staging" }
      assert.equal(2, code, out)
      assert.matches("run 1 error: ERROR", out, 1, true)
    end)

    it("when the run is cancelled", function()
      fake:scenario { end_state = "cancelled" }
      local code, out = gate { "--environment", "staging", "--rerun-failed", "1" }
      assert.equal(2, code, out)
      assert.equal(0, helper.count(fake:log(), "POST"))
    end)

    it("when the timeout passes, and still writes the report", function()
      fake:scenario { pending_seconds = 1e6 }
      local report = os.tmpname()
      local code, out = gate { "--environment", "staging", "--timeout", "1s", "--junit", report }
      assert.equal(2, code, out)
      assert.matches("still pending after", out, 1, true)
      assert.matches("release gate: timeout (exit 2)", out, 1, true)
      assert.equal("1", junit_suite(report).attr.errors)
    end)
  end)

  describe("exits 3", function()
    it("without EMPIRICALRUN_KEY, saying so, sending nothing", function()
      local code, out = gate({ "--environment", "staging" }, { EMPIRICALRUN_KEY = false })
      assert.equal(3, code)
      assert.matches("EMPIRICALRUN_KEY", out, 1, true)
      assert.equal(0, #fake:log())
    end)

    it("on a wrong key, without printing it", function()
      local code, out, err = gate({ "--environment", "staging" }, { EMPIRICALRUN_KEY = "sk-wrong-key-1234" })
      assert.equal(3, code)
      assert.matches("401", out, 1, true)
      assert.is_nil((out .. err):find("sk-wrong-key-1234", 1, true))
    end)

    local usage = {
      { "an unknown flag", { "--environment", "staging", "--shard", "4" }, "unknown argument '--shard'" },
      { "no environment", {}, "give --environment SLUG, or --run ID" },
      { "a flag without its value", { "--environment" }, "--environment needs a value" },
      { "a bad duration", { "--environment", "staging", "--timeout", "soon" }, "--timeout: 'soon' is not a duration" },
      { "a bad --meta", { "--environment", "staging", "--meta", "novalue" }, "--meta expects KEY=VALUE" },
      { "a bad --run", { "--run", "latest" }, "--run expects a run id" },
    }
    for _, case in ipairs(usage) do
      it("on " .. case[1], function()
        local code, _, err = gate(case[2])
        assert.equal(3, code)
        assert.matches(case[3], err, 1, true)
        assert.equal(0, #fake:log())
      end)
    end

    local invalid = {
      { "shards of zero", { "--shards", "0" }, "total_shards" },
      { "shards as words", { "--shards", "four" }, "total_shards" },
      { "an env override with a bad name", { "--env", "1BAD=x" }, "environment_variables_overrides" },
      { "a test branch with build flags", { "--test-branch", "feature", "--commit", "abc" }, "branch" },
    }
    for _, case in ipairs(invalid) do
      it("on " .. case[1] .. ", naming the field and sending nothing", function()
        local args = { "--environment", "staging" }
        for _, a in ipairs(case[2]) do args[#args + 1] = a end
        local code, out = gate(args)
        assert.equal(3, code, out)
        assert.matches("empirical: invalid: " .. case[3], out, 1, true)
        assert.equal(0, #fake:log())
      end)
    end

    it("on an environment the API does not know, with its message", function()
      local code, out = gate { "--environment", "moon" }
      assert.equal(3, code)
      assert.matches("Unknown environment 'moon'", out, 1, true)
    end)

    it("on a 5xx to the trigger, sent once, saying the run may exist", function()
      fake:script { method = "PUT", status = 503, body = "", times = 5 }
      local code, out = gate { "--environment", "staging", "--rerun-failed", "1" }
      assert.equal(3, code)
      assert.matches("may have been created", out, 1, true)
      assert.equal(1, #fake:log())
    end)
  end)

  describe("sends", function()
    it("the trigger the flags describe", function()
      local code = gate { "--environment", "staging", "--build-url", "https://s.example.com", "--commit", "abc123",
                          "--branch", "main", "--shards", "4", "--tag", "@smoke", "--tag", "@cart",
                          "--meta", "pipeline=4127", "--meta", "team=web", "--env", "FLAGS=a=b", "--rerun-failed", "1" }
      assert.equal(0, code)
      assert.same({ {
        environment = "staging", total_shards = 4, tags = { "@smoke", "@cart" },
        build = { url = "https://s.example.com", commit = "abc123", branch = "main" },
        metadata = { pipeline = "4127", team = "web" },
        environment_variables_overrides = { { name = "FLAGS", value = "a=b" } },
      } }, bodies("PUT"))
    end)

    it("nothing but polls with --run ID", function()
      local client = helper.client(fake)
      local run = assert(client:trigger { environment = "staging" })
      client:close()
      local code = gate { "--run", ("%d"):format(run.id), "--rerun-failed", "1" }
      assert.equal(0, code)
      assert.equal(1, helper.count(fake:log(), "PUT"))   -- the spec's own
    end)
  end)

  describe("reports", function()
    it("as JSON on stdout with --json, progress on stderr", function()
      local code, out, err = gate { "--environment", "staging", "--json" }
      assert.equal(1, code)
      local result = cjson.decode(out)
      assert.equal("failed", result.verdict)
      assert.equal(1, result.exit_code)
      assert.equal(1, result.run_id)
      assert.equal("ended", result.state)
      assert.same({ "checkout > pays with card" }, result.failed_tests)
      assert.same({ total = 6, passed = 4, failed = 1, flaky = 1, skipped = 1 }, result.counts)
      assert.matches("run 1 ended", err, 1, true)
    end)

    it("as JUnit with --junit, the re-run deciding the tests it ran", function()
      local report = os.tmpname()
      assert.equal(0, (gate { "--environment", "staging", "--rerun-failed", "1", "--junit", report }))
      local suite = junit_suite(report)
      assert.equal("6", suite.attr.tests)
      assert.equal("0", suite.attr.failures)
      assert.equal("1", suite.attr.skipped)
    end)

    it("progress in a log as one plain line per change", function()
      local _, out = gate { "--environment", "staging", "--progress", "plain" }
      assert.is_nil(out:find("\r", 1, true))
      local previous
      for line in out:gmatch("[^\n]+") do
        local progress = line:match("^(run 1 %a+ +%d+/%d+ done, %d+ failed)")
        if progress then
          assert.are_not.equal(previous, progress)
          previous = progress
        end
      end
      assert.equal("run 1 ended     6/6 done, 1 failed", previous)
    end)

    it("progress on a terminal as one line rewritten", function()
      local _, out = gate { "--environment", "staging", "--progress", "tty" }
      assert.matches("\r\27[K", out, 1, true)
      assert.matches("run 1 ended     6/6 done, 1 failed  0:0%d\n", out)
    end)
  end)

  describe("with several environments", function()
    it("triggers one run each, waits for all together, re-runs each one's failures, exits 0", function()
      local report = os.tmpname()
      local code, out = gate { "--environment", "staging", "--environment", "production", "--rerun-failed", "1",
                               "--json", "--junit", report }
      assert.equal(0, code, out)
      local result = cjson.decode(out)
      assert.equal("passed", result.verdict)
      assert.equal(2, #result.runs)
      assert.same({ "staging", "production" }, { result.runs[1].environment, result.runs[2].environment })
      assert.same({ "passed", "passed" }, { result.runs[1].verdict, result.runs[2].verdict })
      assert.equal(2, helper.count(fake:log(), "PUT"))
      assert.equal(2, helper.count(fake:log(), "POST"))
      local f = assert(io.open(report))
      local _, suites = f:read("*a"):gsub("<testsuite ", "")
      f:close()
      os.remove(report)
      assert.equal(2, suites)
    end)

    it("exits with the worst outcome: a cancelled run beside a passing one is 2", function()
      local client = helper.client(fake)
      local cancelled = assert(client:trigger { environment = "production" }).id
      client:close()
      fake:set_state(cancelled, "cancelled")
      local code, out = gate { "--environment", "staging", "--run", ("%d"):format(cancelled), "--rerun-failed", "1" }
      assert.equal(2, code, out)
      assert.matches("staging: passed (exit 0)", out, 1, true)
      assert.matches(("run %d: cancelled (exit 2)"):format(cancelled), out, 1, true)
    end)

    it("still judges the others when one environment is refused, and exits 3", function()
      local code, out = gate { "--environment", "staging", "--environment", "moon" }
      assert.equal(3, code)
      assert.matches("Unknown environment 'moon'", out, 1, true)
      assert.matches("staging: failed (exit 1)", out, 1, true)
    end)
  end)

  describe("examples/release.lua, the library in a script,", function()
    it("triggers, waits, re-runs the failed tests and exits 0", function()
      local code, out = helper.run({ "lua5.4", "examples/release.lua", "staging" },
                                   { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, POLL_INTERVAL = "0.05" })
      assert.equal(0, code, out)
      assert.matches("run 2 ended: PASSED", out, 1, true)
      local trigger = cjson.decode(fake:log()[1].body)
      assert.equal(4, trigger.total_shards)
      assert.same({ "@smoke" }, trigger.tags)
      assert.same({ { name = "REGION", value = "eu" }, { name = "FEATURE_FLAGS", value = "new-checkout" } },
                  trigger.environment_variables_overrides)
    end)
  end)
end)
