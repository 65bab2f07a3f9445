-- Inputs the command refuses before sending anything, as the user wrote
-- them: which flag or variable (also in --json's document), a value given
-- twice, the default --interval against a short --timeout, secrets in a
-- link echoed back, a key the gate's client refuses, and a report the gate
-- could not write at its end. The real command against the bundled fake
-- (helper.run_command); exact text, exit codes, and the fake's log.
local helper = require("helper")
local cjson = require("cjson")
local args = require("empirical.cli.args")
local words = require("empirical.cli.words")
local commands = require("empirical.cli.commands")

local function usage(command) return ("Run 'empirical %s --help' for usage.\n"):format(command) end

local TEMPLATE = "is not an http(s) link template with {id} (and {project} if you like), " ..
                 "like https://dash.empirical.run/{project}/test-runs/{id}"
local PLAIN = "is plain http to a host that is not loopback, so the API key would cross the network in clear: " ..
              "use https (plain http is accepted only to a loopback address, like the bundled fake's)"
local NO_KEY = "EMPIRICALRUN_KEY is not set: export the API key in it (the command takes the key from there only, " ..
               "so it stays out of ps and shell history)"
local NOT_A_URL = "is not a URL: write it whole, like https://api.empirical.run"

local function exists(path)
  local _, _, errno = os.rename(path, path)
  return errno ~= 2
end

local schema_validator = helper.readme_schema_validator

describe("args.parse names what it refuses", function()
  local gate = commands.COMMAND.gate
  local function env(vars) return function(name) return vars[name] end end
  local cases = {
    { { "--environment", "s", "--shards", "0" }, "--shards: '0' is not a whole number from 1", { flag = "shards" } },
    { { "--environment", "s", "--timeout", "soon" },
      "--timeout: 'soon' is not a positive duration like 90, 90s, 30m or 1h30m", { flag = "timeout" } },
    { { "--environment", "s", "--interval", "2m" }, "--interval: '2m' is not a number of seconds, at least 0.001",
      { flag = "interval" } },
    { { "--environment", "s", "--interval", "1e-4" }, "--interval: '1e-4' is below the 0.001 s minimum",
      { flag = "interval" } },
    { { "--environment", "s", "--interval", "0" }, "--interval: '0' is below the 0.001 s minimum",
      { flag = "interval" } },
    { { "--environment", "s", "--interval", "9", "--timeout", "5" },
      "--interval: '9' is longer than the deadline (--timeout 5, 5 s): at most 5", { flag = "interval" } },
    { { "--environment", "s", "--bogus" }, "unknown flag --bogus", { flag = "bogus" } },
    { { "--environment", "s", "--junit" }, "--junit needs a value (FILE)", { flag = "junit" } },
    { { "--environment", "s", "--json=yes" }, "--json takes no value", { flag = "json" } },
    { { "--environment", "s", "--json", "--json" }, "--json given twice", { flag = "json" } },
    { { "--environment", "s", "--timeout", "1m", "--timeout", "2m" }, "--timeout given twice", { flag = "timeout" } },
    { { "--environment", "s", "--dashboard-url", "https://x/{oops}" }, "--dashboard-url: 'https://x/{oops}' " .. TEMPLATE,
      { flag = "dashboard-url" } },
    { { "--environment", "s" }, "EMPIRICALRUN_DASHBOARD_URL: 'ftp://x/{id}' " .. TEMPLATE,
      { variable = "EMPIRICALRUN_DASHBOARD_URL" }, { EMPIRICALRUN_DASHBOARD_URL = "ftp://x/{id}" } },
    { { "--environment", "staging", "--environment", "staging" }, "--environment staging given twice",
      { flag = "environment" } },
    { { "--environment", "my env", "--environment", "my env" }, "--environment 'my env' given twice",
      { flag = "environment" } },
    { { "--run", "1", "--run", "01" }, "--run 01 given twice", { flag = "run" } },
    { {}, "give --environment SLUG, or --run ID", {} },
  }
  for _, case in ipairs(cases) do
    it(case[2], function()
      local o, message, source = args.parse(gate, case[1], 1, env(case[4] or {}))
      assert.is_nil(o)
      assert.equal(case[2], message)
      assert.same(case[3], source)
    end)
  end

  it("a positional: no flag, and an id given twice is refused", function()
    local o, message, source = args.parse(commands.COMMAND.wait, { "1", "1" })
    assert.is_nil(o)
    assert.equal("ID 1 given twice", message)
    assert.same({}, source)
    assert.same({ nil, "give ID", {} }, { args.parse(commands.COMMAND.cancel, {}) })
  end)

  it("the default --interval is lowered to a shorter --timeout; a given one is kept", function()
    assert.equal(3, assert(args.parse(gate, { "--environment", "s", "--timeout", "3" })).interval)
    assert.equal(5, assert(args.parse(gate, { "--environment", "s", "--timeout", "30" })).interval)
    assert.equal(2, assert(args.parse(gate, { "--environment", "s", "--timeout", "3", "--interval", "2" })).interval)
    assert.equal(4, assert(args.parse(commands.COMMAND.wait, { "5", "--timeout", "4s" })).interval)
  end)

  it("fake's --speed is a rate", function()
    local fake = commands.COMMAND.fake
    assert.equal(10, assert(args.parse(fake, { "--speed", "10" })).speed)
    assert.equal(0.5, assert(args.parse(fake, { "--speed", ".5" })).speed)
    assert.same({ nil, "--speed: '0' is not a positive rate, like 10 (ten times faster)", { flag = "speed" } },
                { args.parse(fake, { "--speed", "0" }) })
  end)

  it("a link's user information is masked where it is echoed", function()
    assert.equal("https://me:***@x.example/{id}", args.masked_url("https://me:secret@x.example/{id}"))
    assert.equal("https://***@x.example/", args.masked_url("https://token@x.example/"))
    assert.equal("https://x.example/a@b", args.masked_url("https://x.example/a@b"))
    assert.equal("not a link", args.masked_url("not a link"))
    local text = words.trigger_error({ field = "build.url", message = "build.url: is too long" },
                                     { build = { url = "https://me:secret@deploy.example/" } }, {})
    assert.equal("--build-url 'https://me:***@deploy.example/': is too long", text)
  end)
end)

describe("the command refuses, naming the flag or variable, nothing sent", function()
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

  local function refused(command, argv, env, line)
    local code, out, err = run(argv, env)
    assert.equal(3, code)
    assert.equal("", out)
    assert.equal(("empirical %s: %s\n%s"):format(command, line, usage(command)), err)
    assert.equal(0, #fake:log())
    return err
  end

  it("an --environment or --run given twice", function()
    refused("gate", { "gate", "--environment", "staging", "--environment", "staging" }, nil,
            "--environment staging given twice")
    refused("gate", { "gate", "--run", "1", "--run", "1" }, nil, "--run 1 given twice")
    refused("trigger", { "trigger", "--environment", "staging", "--environment=staging" }, nil,
            "--environment staging given twice")
    refused("wait", { "wait", "1", "1" }, nil, "ID 1 given twice")
  end)

  it("the default --interval against a short --timeout is no error; a given one is", function()
    -- the parse passes: the next check (a trigger field) is the one that speaks
    refused("gate", { "gate", "--environment", "staging", "--timeout", "3", "--tag", "" }, nil,
            "--tag '': must not be empty")
    refused("gate", { "gate", "--environment", "staging", "--timeout", "3", "--interval", "5" }, nil,
            "--interval: '5' is longer than the deadline (--timeout 3, 3 s): at most 3")
    local code, out, err = run { "wait", "99", "--timeout", "4s" }
    assert.equal(3, code)
    assert.equal("run 99: rejected, ? passed, ? failed, ? flaky, ? skipped of ?\n", out)
    assert.equal("empirical wait: run 99: http 404: GET /api/test-runs/99: Test run 99 not found\n", err)
  end)

  it("a dashboard link's user name and password are not echoed", function()
    local err = refused("gate", { "gate", "--environment", "staging", "--dashboard-url", "https://me:secret@x/{oops}" },
                        nil, "--dashboard-url: 'https://me:***@x/{oops}' " .. TEMPLATE)
    assert.is_nil(err:find("secret", 1, true))
    err = refused("get", { "get", "1" }, { EMPIRICALRUN_DASHBOARD_URL = "https://s3cr3t@x/{nope}" },
                  "EMPIRICALRUN_DASHBOARD_URL: 'https://***@x/{nope}' " .. TEMPLATE)
    assert.is_nil(err:find("s3cr3t", 1, true))
  end)

  it("an --interval below the minimum, and fake's --speed, say what is wrong", function()
    refused("wait", { "wait", "1", "--interval", "1e-4" }, nil, "--interval: '1e-4' is below the 0.001 s minimum")
    refused("fake", { "fake", "--speed", "0" }, nil, "--speed: '0' is not a positive rate, like 10 (ten times faster)")
  end)

  it("EMPIRICAL_RUN_KEY, after the vendor's domain, gets a did-you-mean", function()
    local code, _, err = run({ "--version" }, { EMPIRICAL_RUN_KEY = "k" })
    assert.equal(0, code)
    assert.equal("empirical: warning: EMPIRICAL_RUN_KEY is set, but the command reads no such variable; " ..
                 "did you mean EMPIRICALRUN_KEY?\n", err)
  end)

  -- cli.lua's usage_error puts args.parse's third value (the flag or the
  -- variable) in the document; until it does, the document has the message only.
  local once_cli_passes_the_source = it
  once_cli_passes_the_source("--json: a line the parser refuses names the flag or the variable", function()
    for _, case in ipairs {
      { { "--shards", "0" }, nil, { flag = "shards" } },
      { { "--timeout", "soon" }, nil, { flag = "timeout" } },
      { { "--interval", "x" }, nil, { flag = "interval" } },
      { { "--bogus" }, nil, { flag = "bogus" } },
      { { "--dashboard-url", "x" }, nil, { flag = "dashboard-url" } },
      { {}, { EMPIRICALRUN_DASHBOARD_URL = "x" }, { variable = "EMPIRICALRUN_DASHBOARD_URL" } },
    } do
      local argv = { "gate", "--environment", "staging", "--json" }
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      local code, out = run(argv, case[2])
      assert.equal(3, code)
      local doc = cjson.decode(out)
      assert.equal(case[3].flag, doc.error.flag)
      assert.equal(case[3].variable, doc.error.variable)
      assert.is_true(validate(out))
    end
    assert.equal(0, #fake:log())
  end)

  describe("a setting the gate's client refuses is an input error", function()
    local dir
    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
    end)
    after_each(function() helper.remove_dir(dir) end)

    local cases = {
      { "no key", {}, { EMPIRICALRUN_KEY = false }, NO_KEY, { variable = "EMPIRICALRUN_KEY" } },
      { "plain http elsewhere", { "--api-url", "http://example.com" }, {}, "--api-url " .. PLAIN,
        { flag = "api-url" } },
      { "not a URL, by flag", { "--api-url", "notaurl" }, {}, "--api-url " .. NOT_A_URL, { flag = "api-url" } },
      { "not a URL, by variable", {}, { EMPIRICALRUN_API_URL = "notaurl" }, "EMPIRICALRUN_API_URL " .. NOT_A_URL,
        { variable = "EMPIRICALRUN_API_URL" } },
    }
    for _, case in ipairs(cases) do
      it(case[1] .. ": one line, no result lines, no JUnit or summary, exit 3; --json: the error and no runs",
         function()
        local junit, summary = dir .. "/e2e.xml", dir .. "/summary.md"
        local env = { GITHUB_STEP_SUMMARY = summary, EMPIRICALRUN_PROJECT = "acme" }
        for k, v in pairs(case[3]) do env[k] = v end
        for _, json in ipairs { false, true } do
          local argv = { "gate", "--environment", "staging", "--run", "5", "--junit", junit }
          for _, a in ipairs(case[2]) do argv[#argv + 1] = a end
          if json then argv[#argv + 1] = "--json" end
          local code, out, err = run(argv, env)
          assert.equal(3, code)
          assert.equal("empirical gate: " .. case[4] .. "\n", err)
          if json then
            local want = { kind = "config", message = case[4] }
            for k, v in pairs(case[5]) do want[k] = v end
            assert.same({ verdict = "invalid", exit_code = 3, runs = {}, cancelled = {}, error = want },
                        cjson.decode(out))
            assert.is_true(validate(out))
          else
            assert.equal("", out)
          end
          assert.is_false(exists(junit))
          assert.is_false(exists(summary))
        end
        assert.equal(0, #fake:log())
      end)
    end
  end)

  describe("a report the gate could not write at its end", function()
    local summary
    before_each(function()
      summary = os.tmpname()
      fake:scenario { tests = { { name = "a", outcome = "passed" } } }
    end)
    after_each(function() os.remove(summary) end)

    it("the closing line, the step summary and --json say the same: passed, but exit 3, and why", function()
      local code, out, err = run({ "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05" },
                                 { GITHUB_STEP_SUMMARY = summary })
      assert.equal(3, code, err)
      local line = "could not write the JUnit report (--junit /dev/full): No space left on device"
      assert.truthy(err:find("\nempirical gate: " .. line .. "\n", 1, true), err)
      assert.equal("\nrelease gate: passed, but the JUnit report could not be written (exit 3)\n",
                   out:match("\n[^\n]*\n$"))
      local md = helper.read_file(summary)
      assert.equal("## Empirical release gate: passed (exit 3)\n", md:match("^[^\n]*\n"))
      assert.truthy(md:find("\n" .. line .. ", so the gate exits 3.\n", 1, true), md)
      code, out = run({ "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05", "--json" })
      assert.equal(3, code)
      local doc = cjson.decode(out)
      assert.equal("passed", doc.verdict)
      assert.equal(3, doc.exit_code)
      assert.same({ kind = "io", message = line, flag = "junit" }, doc.error)
      assert.equal(1, #doc.runs)
      assert.is_true(validate(out))
    end)

    it("both: the closing line names both, --json's error both", function()
      local code, out = run({ "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05" },
                            { GITHUB_STEP_SUMMARY = "/dev/full" })
      assert.equal(3, code)
      assert.equal("\nrelease gate: passed, but the JUnit report and the step summary could not be written " ..
                   "(exit 3)\n", out:match("\n[^\n]*\n$"))
      code, out = run({ "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05", "--json" },
                      { GITHUB_STEP_SUMMARY = "/dev/full" })
      assert.equal(3, code)
      local doc = cjson.decode(out)
      assert.same({ kind = "io", flag = "junit", variable = "GITHUB_STEP_SUMMARY",
                    message = "could not write the JUnit report (--junit /dev/full): No space left on device; " ..
                              "could not write the step summary (GITHUB_STEP_SUMMARY=/dev/full): " ..
                              "No space left on device" }, doc.error)
    end)

    it("a failing gate keeps its exit code and its closing line", function()
      fake:scenario { tests = { { name = "a", outcome = "failed" } } }
      local code, out = run { "gate", "--environment", "staging", "--junit", "/dev/full", "--interval", "0.05",
                              "--json" }
      assert.equal(1, code)
      local doc = cjson.decode(out)
      assert.equal(1, doc.exit_code)
      assert.is_nil(doc.error)
    end)
  end)
end)
