-- What the gate (and trigger) check before sending anything, and what they
-- say when an input, a file, the API's address or a signal gets in the way:
-- the real command, as a process, against the bundled fake; exact text and
-- exit codes.
local helper = require("helper")
local cjson = require("cjson")
local empirical = require("empirical")
local args = require("empirical.cli.args")
local commands = require("empirical.cli.commands")

local USAGE = "Run 'empirical gate --help' for usage.\n"
local LIBRARY_FIELDS = { "environment_variables_overrides", "tags[", "total_shards", "build.", "metadata",
                         "the list endpoint", ": branch: " }

local function speaks_no_library(text)
  for _, w in ipairs(LIBRARY_FIELDS) do assert.is_nil(text:find(w, 1, true), ("'%s' in:\n%s"):format(w, text)) end
end

local function exists(path)
  local _, _, errno = os.rename(path, path)
  return errno ~= 2
end

local schema_validator = helper.readme_schema_validator

describe("the gate's inputs", function()
  local fake, validate, drop_schema
  setup(function()
    fake = helper.start_fake { speed = 50 }
    validate, drop_schema = schema_validator()
  end)
  teardown(function()
    fake:stop()
    drop_schema()
  end)
  before_each(function() fake:reset() end)

  local function run(argv, env) return helper.run_command(fake, argv, env) end

  describe("a trigger field is checked for every environment before any is sent", function()
    local cases = {
      { "an empty second environment", { "--environment", "staging", "--environment", "" },
        "--environment '': must not be empty" },
      { "an override with a bad name", { "--environment", "staging", "--env", "1BAD=x" },
        "--env 1BAD=x: \"1BAD\" is not an environment variable name (letters, digits and _, not starting with a digit)" },
      { "an empty tag", { "--environment", "staging", "--tag", "@smoke", "--tag", "" }, "--tag '': must not be empty" },
      { "an override set twice", { "--environment", "staging", "--env", "A=1", "--env", "A=2" },
        "--env A=2: A is set twice" },
      { "a test branch with a build flag", { "--environment", "staging", "--test-branch", "dev", "--commit", "abc" },
        "--test-branch cannot be used together with --commit; pick one (--test-branch picks the test repository's " ..
        "branch, --commit describes the deployment under test)" },
      { "a test branch with two build flags",
        { "--environment", "staging", "--test-branch", "dev", "--build-url", "https://s.example", "--branch", "main" },
        "--test-branch cannot be used together with --build-url, --branch; pick one (--test-branch picks the test " ..
        "repository's branch, those flags describe the deployment under test)" },
      { "an empty commit", { "--environment", "staging", "--commit", "" }, "--commit '': must not be empty" },
    }
    for _, command in ipairs { "gate", "trigger" } do
      for _, case in ipairs(cases) do
        it(command .. ": " .. case[1] .. ": exit 3, naming the flag, no result line, nothing sent", function()
          local argv = { command }
          for _, a in ipairs(case[2]) do argv[#argv + 1] = a end
          local code, out, err = run(argv)
          assert.equal(3, code)
          assert.equal("", out)
          assert.equal(("empirical %s: %s\nRun 'empirical %s --help' for usage.\n"):format(command, case[3], command),
                       err)
          speaks_no_library(err)
          assert.equal(0, #fake:log())
        end)
      end
    end

    it("with --json: one document, with the error and the flag, valid by the README's schema", function()
      local code, out, err = run { "gate", "--environment", "staging", "--tag", "", "--json" }
      assert.equal(3, code)
      assert.equal("empirical gate: --tag '': must not be empty\n" .. USAGE, err)
      assert.same({ verdict = "invalid", exit_code = 3, runs = {}, cancelled = {},
                    error = { kind = "usage", message = "--tag '': must not be empty", flag = "tag" } },
                  cjson.decode(out))
      assert.is_true(validate(out))
      assert.equal(0, #fake:log())
    end)

    it("the library's gate too: nothing sent, the bad lane invalid, the others not followed", function()
      local result = require("empirical.gate").run({
        environments = { "staging", "" }, timeout = 5, interval = 0.05,
        client_options = { token = fake.token, base_url = fake.url } }, {})
      assert.equal(3, result.exit_code)
      assert.same({ "aborted", "invalid" }, { result.runs[1].outcome, result.runs[2].outcome })
      assert.equal("environment: must not be empty", result.runs[2].error.message)
      assert.equal(0, #fake:log())
    end)
  end)

  describe("--junit and GITHUB_STEP_SUMMARY are checked before anything is sent", function()
    local dir
    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
    end)
    after_each(function() helper.remove_dir(dir) end)

    it("a --junit in a missing directory, a directory, or empty: exit 3, one line naming it", function()
      for _, case in ipairs {
        { dir .. "/no/e2e.xml", dir .. "/no/e2e.xml: cannot be written (No such file or directory)" },
        { dir, dir .. ": cannot be written (Is a directory)" },
        { "", "'': needs a file name" },
      } do
        local code, out, err = run { "gate", "--environment", "staging", "--junit", case[1] }
        assert.equal(3, code)
        assert.equal("", out)
        assert.equal("empirical gate: --junit " .. case[2] .. "\n", err)
        assert.equal(0, #fake:log())
      end
    end)

    it("a GITHUB_STEP_SUMMARY that cannot be written: exit 3, naming it; the --junit file checked is not left",
       function()
      local junit = dir .. "/e2e.xml"
      local code, out, err = run({ "gate", "--environment", "staging", "--junit", junit, "--json" },
                                 { GITHUB_STEP_SUMMARY = dir .. "/gone/summary.md" })
      assert.equal(3, code)
      assert.equal("empirical gate: GITHUB_STEP_SUMMARY=" .. dir .. "/gone/summary.md: cannot be written " ..
                   "(No such file or directory)\n", err)
      local doc = cjson.decode(out)
      assert.equal("GITHUB_STEP_SUMMARY", doc.error.variable)
      assert.is_true(validate(out))
      assert.is_false(exists(junit))
      assert.equal(0, #fake:log())
    end)

    it("an existing --junit is left as it was by the check, and written at the end", function()
      local junit = dir .. "/e2e.xml"
      helper.write_file(junit, "old")
      local code = run { "gate", "--environment", "staging", "--tag", "" , "--junit", junit }
      assert.equal(3, code)
      assert.equal("old", helper.read_file(junit))
      fake:scenario { tests = { { name = "a", outcome = "passed" } } }
      code = run { "gate", "--environment", "staging", "--junit", junit, "--interval", "0.05" }
      assert.equal(0, code)
      assert.truthy(helper.read_file(junit):find("<testsuites", 1, true))
    end)

    it("a write that fails at the end (a full disk) turns a pass into exit 3, saying so", function()
      fake:scenario { tests = { { name = "a", outcome = "passed" } } }
      local code, out, err = run { "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05",
                                   "--json" }
      assert.equal(3, code, err)
      assert.truthy(err:find("empirical gate: could not write the JUnit report (--junit /dev/full): " ..
                             "No space left on device\n", 1, true), err)
      local doc = cjson.decode(out)
      assert.equal("passed", doc.verdict)
      assert.equal(3, doc.exit_code)
      code, out, err = run({ "gate", "--environment", "staging", "--interval", "0.05" },
                           { GITHUB_STEP_SUMMARY = "/dev/full" })
      assert.equal(3, code, err)
      assert.truthy(err:find("could not write the step summary (GITHUB_STEP_SUMMARY=/dev/full): " ..
                             "No space left on device\n", 1, true), err)
      assert.truthy(out:find("release gate: passed, but the step summary could not be written (exit 3)\n", 1, true),
                    out)
    end)

    it("a failing gate keeps its exit code when a write fails at the end", function()
      local code = run { "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05" }
      assert.equal(1, code)
    end)
  end)

  describe("--interval and --dashboard-url", function()
    it("--interval reads what tonumber reads as a decimal, and states the real limit", function()
      local gate = commands.COMMAND.gate
      assert.equal(100, assert(args.parse(gate, { "--environment", "s", "--interval", "1e2" })).interval)
      assert.equal(0.5, assert(args.parse(gate, { "--environment", "s", "--interval", ".5" })).interval)
      local code, out, err = run { "gate", "--environment", "staging", "--interval", "1e9" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal("empirical gate: --interval: '1e9' is longer than the deadline (--timeout 1h, 3600 s): " ..
                   "at most 3600\n" .. USAGE, err)
      local _
      code, _, err = run { "wait", "1", "--interval", "2m", "--timeout", "90" }
      assert.equal(3, code)
      assert.equal("empirical wait: --interval: '2m' is not a number of seconds, at least 0.001\n" ..
                   "Run 'empirical wait --help' for usage.\n", err)
      code, _, err = run { "wait", "1", "--interval", "100", "--timeout", "90" }
      assert.equal(3, code)
      assert.equal("empirical wait: --interval: '100' is longer than the deadline (--timeout 90, 90 s): " ..
                   "at most 90\nRun 'empirical wait --help' for usage.\n", err)
      assert.equal(0, #fake:log())
    end)

    local TEMPLATE = "is not an http(s) link template with {id} (and {project} if you like), " ..
                     "like https://dash.empirical.run/{project}/test-runs/{id}"
    it("--dashboard-url and its variable must be http(s) with {id}: exit 3 naming which", function()
      local code, out, err = run { "gate", "--environment", "staging", "--dashboard-url", "https://x/{oops}" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal("empirical gate: --dashboard-url: 'https://x/{oops}' " .. TEMPLATE .. "\n" .. USAGE, err)
      code, out, err = run({ "get", "1" }, { EMPIRICALRUN_DASHBOARD_URL = "ftp://x/{id}" })
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal("empirical get: EMPIRICALRUN_DASHBOARD_URL: 'ftp://x/{id}' " .. TEMPLATE ..
                   "\nRun 'empirical get --help' for usage.\n", err)
      -- the flag wins over a bad variable, and a good template links
      local id = assert(helper.client(fake):trigger { environment = "staging" }).id
      code, out = run({ "get", tostring(id), "--dashboard-url", "http://ci.example/{project}/{id}",
                        "--project-slug", "acme" }, { EMPIRICALRUN_DASHBOARD_URL = "ftp://x/{id}" })
      assert.equal(0, code)
      assert.truthy(out:find("  http://ci.example/acme/1\n", 1, true), out)
    end)
  end)

  describe("--json: once the command is known, one document on stdout", function()
    it("for a line the parser refuses (gate: the README's schema)", function()
      local code, out, err = run { "gate", "--environment", "staging", "--shards", "0", "--json" }
      assert.equal(3, code)
      assert.equal("empirical gate: --shards: '0' is not a whole number from 1\n" .. USAGE, err)
      assert.same({ verdict = "invalid", exit_code = 3, runs = {}, cancelled = {},
                    error = { kind = "usage", message = "--shards: '0' is not a whole number from 1", flag = "shards" } },
                  cjson.decode(out))
      assert.is_true(validate(out))
      code, out = run { "gate", "--environment", "--json" }
      assert.equal(3, code)
      assert.is_true(validate(out))
    end)

    it("for a failed call of another command: {exit_code, error}", function()
      local code, out, err = run { "get", "99999", "--json" }
      assert.equal(3, code)
      assert.equal("empirical get: http 404: GET /api/test-runs/99999: Test run 99999 not found\n", err)
      assert.same({ exit_code = 3, error = { kind = "http", status = 404,
                                             message = "http 404: GET /api/test-runs/99999: Test run 99999 not found" } },
                  cjson.decode(out))
      code, out = run({ "list", "--json" }, { EMPIRICALRUN_KEY = false })
      assert.equal(3, code)
      assert.equal("config", cjson.decode(out).error.kind)
      code, out = run { "cancel", "--json" }
      assert.equal(3, code)
      assert.same({ exit_code = 3, error = { kind = "usage", message = "give ID" } }, cjson.decode(out))
    end)

    it("but none for --help, nor without --json", function()
      local code, out = run { "get", "--json", "--help" }
      assert.equal(0, code)
      assert.truthy(out:find("USAGE", 1, true))
      code, out = run { "get", "99999" }
      assert.equal(3, code)
      assert.equal("", out)
    end)
  end)

  describe("an address that gets no answer", function()
    local function refused_url() return ("http://127.0.0.1:%d"):format(helper.free_port()) end

    it("by --api-url: exit 2, naming the flag and what to check", function()
      local url = refused_url()
      local code, out, err = run { "gate", "--environment", "staging", "--api-url", url }
      assert.equal(2, code)
      assert.equal("staging: unavailable (exit 2)\nrelease gate: unavailable (exit 2)\n", out)
      local line = err:match("staging: [^\n]*")
      assert.truthy(line:find(("staging: transport: could not reach the API at %s (--api-url): Failed to connect"):format(url),
                              1, true), line)
      assert.truthy(line:find("(PUT /api/test-runs, 4 attempts); check that --api-url is the API's address " ..
                              "(like https://api.empirical.run), and that this machine can resolve and reach its host",
                              1, true), line)
    end)

    it("by EMPIRICALRUN_API_URL, for trigger and get: naming the variable", function()
      local url = refused_url()
      local code, out, err = run({ "trigger", "--environment", "staging" }, { EMPIRICALRUN_API_URL = url })
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches(("^empirical trigger staging: could not reach the API at %s %%(EMPIRICALRUN_API_URL%%): "):format(
                       (url:gsub("%p", "%%%0"))), err)
      assert.truthy(err:find("check that EMPIRICALRUN_API_URL is the API's address", 1, true), err)
      code, out = run({ "get", "1", "--json" }, { EMPIRICALRUN_API_URL = url })
      assert.equal(2, code)
      local doc = cjson.decode(out)
      assert.equal("transport", doc.error.kind)
      assert.truthy(doc.error.message:find("(EMPIRICALRUN_API_URL)", 1, true), doc.error.message)
    end)

    it("an API that answers keeps its own words", function()
      fake:script { method = "PUT", status = 503, body = "", times = 5 }
      local _, _, err = run { "trigger", "--environment", "staging" }
      assert.is_nil(err:find("could not reach", 1, true), err)
    end)
  end)
end)

describe("the gate on a signal while a trigger is in flight", function()
  local fake
  local it_signals = empirical.catch_signals and it or pending
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  -- The gate in the background: its pid, and a function that waits for it.
  local function start(argv)
    local full = { "gate", "--interval", "0.05" }
    for _, a in ipairs(argv) do full[#full + 1] = a end
    return helper.start_command(fake, full)
  end

  local function requests(method, pattern) return helper.count(fake:log(), method, pattern) end

  local until_ = helper.wait_until

  it_signals("a trigger that answers within the grace: its run is cancelled within 2 s, exit 130", function()
    fake:scenario { pending_seconds = 1e6 }
    fake:script { method = "PUT", delay = 1 }
    local pid, finish = start { "--environment", "staging", "--json" }
    until_("the trigger", function() return requests("PUT") > 0 end)
    local sent = empirical.now()
    os.execute("kill -INT " .. pid)
    until_("the cancel", function() return requests("POST", "/cancel$") > 0 end)
    assert.is_true(empirical.now() - sent < 2)
    local code, out, err = finish()
    assert.equal(130, code, err)
    assert.truthy(err:find("interrupted by SIGINT; cancelled: 1 (cancelled)\n", 1, true), err)
    local result = cjson.decode(out)
    assert.same({ { id = 1, status = "cancelled" } }, result.cancelled)
    assert.equal(1, result.runs[1].attempts[1].id)
  end)

  it_signals("a re-run that answers within the grace: it is cancelled too, exit 130", function()
    fake:script { method = "POST", path = "/api/test-runs/1/re-run", delay = 1 }
    local pid, finish = start { "--environment", "staging", "--rerun-failed", "1", "--json" }
    until_("the re-run", function() return requests("POST", "/re%-run$") > 0 end)
    fake:scenario { pending_seconds = 1e6 }   -- the re-run, created when the delay ends, stays pending
    local sent = empirical.now()
    os.execute("kill -INT " .. pid)
    until_("the cancel", function() return requests("POST", "/cancel$") > 0 end)
    assert.is_true(empirical.now() - sent < 2)
    local code, out, err = finish()
    assert.equal(130, code, err)
    assert.truthy(err:find("interrupted by SIGINT; cancelled: 2 (cancelled)\n", 1, true), err)
    local result = cjson.decode(out)
    assert.same({ { id = 2, status = "cancelled" } }, result.cancelled)
    assert.same({ 1, 2 }, { result.runs[1].attempts[1].id, result.runs[1].attempts[2].id })
  end)

  it_signals("a re-run still unanswered after the grace: named, with the command to find it", function()
    fake:script { method = "POST", path = "/api/test-runs/1/re-run", delay = 4 }
    local pid, finish = start { "--environment", "staging", "--rerun-failed", "1", "--json" }
    until_("the re-run", function() return requests("POST", "/re%-run$") > 0 end)
    os.execute("kill -INT " .. pid)
    local code, out, err = finish()
    assert.equal(130, code, err)
    local said = "interrupted before the API answered the re-run: a run may have been created, and it was not " ..
                 "cancelled; find it with `empirical list --state queued` (or --state pending, --state started) " ..
                 "and cancel it with `empirical cancel ID`"
    assert.truthy(err:find("\nstaging: " .. said .. "\n", 1, true), err)
    assert.truthy(err:find("not cancelled, a run may exist: staging\n", 1, true), err)
    local result = cjson.decode(out)
    assert.equal(said, result.runs[1].note)
    assert.equal(0, requests("POST", "/cancel$"))   -- run 1 had ended: nothing of ours to cancel
  end)

  it_signals("a trigger still unanswered after the grace: named per environment, with the command to find it",
             function()
    fake:scenario { pending_seconds = 1e6 }
    fake:script { method = "PUT", delay = 4 }
    local pid, finish = start { "--environment", "staging", "--json" }
    until_("the trigger", function() return requests("PUT") > 0 end)
    local sent = empirical.now()
    os.execute("kill -TERM " .. pid)
    local code, out, err = finish()
    assert.is_true(empirical.now() - sent < 2.5)
    assert.equal(143, code, err)
    local said = "interrupted before the API answered the trigger: a run may have been created, and it was not " ..
                 "cancelled; find it with `empirical list --state queued` (or --state pending, --state started) " ..
                 "and cancel it with `empirical cancel ID`"
    assert.truthy(err:find("\nstaging: " .. said .. "\n", 1, true), err)
    assert.truthy(err:find("\ninterrupted by SIGTERM; cancelled: none; not cancelled, a run may exist: staging\n", 1,
                           true), err)
    speaks_no_library(err)
    local result = cjson.decode(out)
    assert.equal("SIGTERM", result.runs[1].outcome)
    assert.equal(said, result.runs[1].note)
    assert.equal(said, result.runs[1].error.message)
    assert.same({}, result.cancelled)
    assert.equal(0, requests("POST", "/cancel$"))
  end)
end)
