-- The `empirical` command's front: the parser, help, --version and usage
-- errors, called in-process through empirical.cli.main and as a process.
local cli = require("empirical.cli")
local commands = require("empirical.cli.commands")
local args = require("empirical.cli.args")
local helper = require("helper")

-- A writer that keeps what it is given.
local function sink()
  local s = { parts = {} }
  function s:write(...) for _, v in ipairs { ... } do self.parts[#self.parts + 1] = tostring(v) end return self end
  function s:text() return table.concat(self.parts) end
  return s
end

-- main with a clean environment (plus env) and captured output.
local function main(argv, env)
  local out, err = sink(), sink()
  local code = cli.main(argv, { stdout = out, stderr = err, getenv = function(name) return (env or {})[name] end })
  return code, out:text(), err:text()
end

describe("empirical (the command's front)", function()
  describe("usage errors exit 3, on stderr, with nothing on stdout", function()
    local cases = {
      { "an unknown flag, with a suggestion", { "gate", "--environment", "s", "--shard", "4" },
        "unknown flag --shard; did you mean --shards?" },
      { "a flag's missing value, never taking the next flag", { "gate", "--environment", "--allow-empty" },
        "--environment needs a value (SLUG) and '--allow-empty' is a flag; write --environment=--allow-empty" },
      { "a value at the end", { "gate", "--environment" }, "--environment needs a value (SLUG)" },
      { "a switch given a value", { "gate", "--environment", "s", "--json=yes" }, "--json takes no value" },
      { "a value flag given twice", { "gate", "--environment", "s", "--timeout", "1m", "--timeout", "2m" },
        "--timeout given twice" },
      { "no environment and no run", { "gate" }, "give --environment SLUG, or --run ID" },
      { "a zero timeout", { "gate", "--environment", "s", "--timeout", "0" }, "--timeout: '0' is not a positive duration" },
      { "a zero timeout in units", { "gate", "--environment", "s", "--timeout", "0s" }, "is not a positive duration" },
      { "a word for a timeout", { "gate", "--environment", "s", "--timeout", "soon" }, "--timeout: 'soon' is not" },
      { "a negative interval", { "gate", "--environment", "s", "--interval", "-1" },
        "--interval: '-1' is not a number of seconds, at least 0.001" },
      { "a bad --meta", { "gate", "--environment", "s", "--meta", "novalue" }, "--meta: 'novalue' is not KEY=VALUE" },
      { "a bad --run", { "gate", "--run", "latest" }, "--run: 'latest' is not a run id" },
      { "a choice misspelt", { "gate", "--environment", "s", "--on-timeout", "leav" }, "did you mean leave?" },
      { "a missing id", { "get" }, "give ID" },
      { "two ids to get", { "get", "1", "2" }, "unexpected argument '2'" },
      { "a negative id", { "cancel", "-5" }, "ID: '-5' is not a run id" },
      { "an unknown command", { "gat" }, "unknown command 'gat'; did you mean 'gate'?" },
      { "help on an unknown command", { "help", "trigerr" }, "did you mean 'trigger'?" },
      { "a single-dash flag", { "list", "-x" }, "unknown flag -x" },
    }
    for _, case in ipairs(cases) do
      it("on " .. case[1], function()
        local code, out, err = main(case[2])
        assert.equal(3, code)
        assert.equal("", out)
        assert.truthy(err:find(case[3], 1, true), err)
        assert.truthy(err:find("--help' for usage", 1, true), err)
      end)
    end
  end)

  describe("parses", function()
    local gate = commands.COMMAND.gate
    it("--flag=--value as a value, and `--` ends the flags", function()
      local o = assert(args.parse(gate, { "--environment=--odd", "--tag", "-x" }))
      assert.same({ "--odd" }, o.environment)
      assert.same({ "-x" }, o.tag)
      o = assert(args.parse(commands.COMMAND.cancel, { "--reason", "why", "--", "7", "8" }))
      assert.same({ 7, 8 }, o.args)
    end)

    it("durations, counts, pairs and defaults into values", function()
      local o = assert(args.parse(gate, { "--environment", "s", "--timeout", "1h30m", "--meta", "a=b=c",
                                          "--rerun-failed", "2", "--interval", "0.5" }))
      assert.equal(5400, o.timeout)
      assert.same({ { "a", "b=c" } }, o.meta)
      assert.equal(2, o.rerun_failed)
      assert.equal(0.5, o.interval)
      assert.equal("cancel", o.on_timeout)
      assert.equal(0, o.max_poll_failures)
      assert.is_false(o.allow_empty)
      for text, seconds in pairs { ["90"] = 90, ["90s"] = 90, ["2.5m"] = 150, ["1h"] = 3600 } do
        assert.equal(seconds, args.duration(text), text)
      end
    end)

    it("settings from the environment, the flag winning, an empty variable unset", function()
      local env = { EMPIRICALRUN_PROJECT = "acme", EMPIRICALRUN_API_URL = "" }
      local getenv = function(name) return env[name] end
      local o = assert(args.parse(gate, { "--environment", "s" }, 1, getenv))
      assert.equal("acme", o.project_slug)
      assert.is_nil(o.api_url)
      o = assert(args.parse(gate, { "--environment", "s", "--project-slug", "other" }, 1, getenv))
      assert.equal("other", o.project_slug)
    end)

    it("-h as --help, before any other check", function()
      local code, out = main { "gate", "-h" }
      assert.equal(0, code)
      assert.truthy(out:find("USAGE", 1, true))
    end)
  end)

  describe("help", function()
    it("lists every command, the environment and every exit code", function()
      local code, out = main { "--help" }
      assert.equal(0, code)
      for _, c in ipairs(commands.COMMANDS) do assert.truthy(out:find("\n  " .. c.name .. " ", 1, true), c.name) end
      for _, v in ipairs(commands.ENVIRONMENT) do assert.truthy(out:find(v.name, 1, true), v.name) end
      for _, e in ipairs(commands.EXIT) do assert.truthy(out:find(("\n  %-4d"):format(e.code), 1, true), e.code) end
    end)

    it("per command lists each of its flags, the same from `help X` and `X --help`, within 80 columns", function()
      for _, c in ipairs(commands.COMMANDS) do
        local code, out = main { c.name, "--help" }
        assert.equal(0, code)
        local _, same = main { "help", c.name }
        assert.equal(out, same)
        local _, order = args.flags_of(c)
        for _, name in ipairs(order) do assert.truthy(out:find("--" .. name, 1, true), c.name .. " --" .. name) end
        for line in out:gmatch("[^\n]+") do
          if not line:match("^  %$ ") then assert.is_true(#line <= 80, line) end
        end
      end
    end)

    it("without a command goes to stderr and exits 3", function()
      local code, out, err = main {}
      assert.equal(3, code)
      assert.equal("", out)
      assert.truthy(err:find("COMMANDS", 1, true))
    end)
  end)

  it("--version is the module's and the rockspec's", function()
    local code, out = main { "--version" }
    assert.equal(0, code)
    assert.equal("empirical " .. require("empirical").VERSION .. " (" .. _VERSION .. ")\n", out)
    local f = assert(io.open("empirical-0.1.0-1.rockspec"))
    local version = f:read("*a"):match('\nversion = "([^"-]+)')
    f:close()
    assert.equal(version, commands.VERSION)
  end)

  it("turns an unexpected error into exit 3 and one line, the traceback only with EMPIRICAL_DEBUG=1", function()
    local calls = require("empirical.cli.calls")
    local real = calls.get
    calls.get = function() local t = nil return t.field end
    local code, _, err = main { "get", "5" }
    local code2, _, err2 = main({ "get", "5" }, { EMPIRICAL_DEBUG = "1" })
    calls.get = real
    assert.equal(3, code)
    assert.matches("^empirical: unexpected error: [^\n]*attempt to index a nil value", err)
    assert.is_nil(err:find("stack traceback", 1, true))
    assert.equal(3, code2)
    assert.truthy(err2:find("stack traceback", 1, true))
  end)

  describe("as a process", function()
    -- Runs bin/empirical, then reports whether empirical.core was loaded and libcurl mapped.
    local function probe(argv)
      local script = ([[
        arg = { %s }
        local cli = require("empirical.cli")
        local null = { write = function(self) return self end }
        local code = cli.main(arg, { stdout = null, stderr = null })
        local maps = io.open("/proc/self/maps"):read("a")
        io.write(code, " ", tostring(package.loaded["empirical.core"] ~= nil), " ", tostring(maps:find("libcurl") ~= nil))
      ]]):format(table.concat((function()
        local q = {}
        for i, a in ipairs(argv) do q[i] = ("%q"):format(a) end
        return q
      end)(), ","))
      local _, out = helper.run({ helper.LUA, "-e", script }, {})
      return out
    end

    it("answers --help, --version, help and usage errors without loading libcurl", function()
      for _, argv in ipairs { { "--help" }, { "--version" }, { "help", "gate" }, { "gate", "--help" },
                              { "gate", "--bogus" }, { "wait", "--timeout", "0", "5" }, { "nope" } } do
        local out = probe(argv)
        assert.matches("^%d+ false false$", out, nil, table.concat(argv, " "))
      end
      -- and the probe can tell: a command that calls the API loads both
      assert.matches("^%d+ true true$", probe { "get", "--api-url", "http://127.0.0.1:9", "1" })
    end)

    it("is installed by make install PREFIX= for the Lua it was built for, and runs from anywhere", function()
      local prefix = os.tmpname()
      os.remove(prefix)
      local code, out, err = helper.run({ "make", "-s", "install", "PREFIX=" .. prefix }, { LUA_PATH = false, LUA_CPATH = false })
      assert.equal(0, code, out .. err)
      local f = assert(io.open(prefix .. "/bin/empirical"))
      local first = f:read("*l")
      f:close()
      assert.equal("#!/usr/bin/lua5.4", first)
      code, out, err = helper.run({ "sh", "-c", "cd / && " .. helper.shell_quote(prefix .. "/bin/empirical") .. " --version" },
                                  { LUA_PATH = false, LUA_CPATH = false })
      assert.equal(0, code, err)
      assert.equal("empirical " .. commands.VERSION .. " (Lua 5.4)\n", out)
      code, out, err = helper.run({ prefix .. "/bin/empirical", "get", "1" },
                                { LUA_PATH = false, LUA_CPATH = false, EMPIRICALRUN_KEY = false })
      assert.equal(3, code)
      assert.equal("", out)
      assert.matches("EMPIRICALRUN_KEY", err, 1, true)   -- the installed core loaded, and answered
      helper.remove_dir(prefix)
    end)

    it("is installed into the tree's bin/ by the rockspec (luarocks make), and runs there", function()
      local tree = os.tmpname()
      os.remove(tree)
      local build = ("mkdir -p %s/src && cp -r csrc lua bin empirical-0.1.0-1.rockspec %s/src && cd %s/src && " ..
                     "luarocks --lua-version 5.4 make --deps-mode=none --tree %s empirical-0.1.0-1.rockspec")
                    :format(tree, tree, tree, tree)
      local code, out, err = helper.run({ "sh", "-c", build }, { LUA_PATH = false, LUA_CPATH = false })
      assert.equal(0, code, out .. err)
      code, out, err = helper.run({ "sh", "-c", ('cd / && eval "$(luarocks --lua-version 5.4 path --tree %s)" && ' ..
                                              '%s/bin/empirical --version'):format(tree, tree) },
                                  { LUA_PATH = false, LUA_CPATH = false })
      assert.equal(0, code, err)
      assert.equal("empirical " .. commands.VERSION .. " (Lua 5.4)\n", out)
      helper.remove_dir(tree)
    end)

    it("runs from bin/empirical and exits with main's code", function()
      local code, out = helper.run({ helper.LUA, "bin/empirical", "--version" }, {})
      assert.equal(0, code)
      assert.matches("^empirical %d+%.%d+%.%d+", out)
      code = helper.run({ helper.LUA, "bin/empirical", "gate", "--nope" }, {})
      assert.equal(3, code)
    end)
  end)
end)

describe("empirical's commands against the fake", function()
  local empirical = require("empirical")
  local cjson = require("cjson")
  local probe = assert(empirical.new { token = "t", base_url = "http://127.0.0.1:9" })
  -- The rewritten fake (a directory of modules) serves cancel, list and reports.
  local fake_v2 = package.searchpath("empirical.fake.api", package.path) ~= nil
  local it_list = (probe.runs and fake_v2) and it or pending
  local it_cancel = (probe.cancel and fake_v2) and it or pending
  local it_report = (probe.report and empirical.parse_report and fake_v2) and it or pending
  local it_signals = empirical.catch_signals and it or pending
  probe:close()
  local fake

  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function run(argv, env) return helper.run_command(fake, argv, env, { EMPIRICALRUN_PROJECT = "acme" }) end

  it("trigger prints each run with its link, and --json a list", function()
    local code, out = run { "trigger", "--environment", "staging", "--environment", "production", "--tag", "@smoke" }
    assert.equal(0, code)
    -- both are sent together: which the fake numbers first is up to the network
    local a, a2, b, b2 = out:match("^staging: run (%d) queued  https://dash%.empirical%.run/acme/test%-runs/(%d)\n" ..
                                   "production: run (%d) queued  https://dash%.empirical%.run/acme/test%-runs/(%d)\n$")
    assert.truthy(a, out)
    assert.same({ a, b }, { a2, b2 })
    assert.same({ "1", "2" }, a < b and { a, b } or { b, a })
    code, out = run { "trigger", "--environment", "staging", "--json" }
    assert.equal(0, code)
    assert.same({ { environment = "staging", id = 3, state = "queued",
                    url = "https://dash.empirical.run/acme/test-runs/3" } }, cjson.decode(out))
  end)

  it("trigger exits 3 on an environment the API refuses, with its message", function()
    local code, out, err = run { "trigger", "--environment", "moon" }
    assert.equal(3, code)
    assert.equal("", out)
    assert.matches("empirical trigger moon: http 400: .*Unknown environment 'moon'", err)
  end)

  it("get shows a readable summary, --json the detail, 404 exits 3", function()
    local client = helper.client(fake)
    local id = assert(client:trigger { environment = "staging" }).id
    assert(client:wait(id, { interval = 0.05 }))
    client:close()
    local code, out = run { "get", tostring(id) }
    assert.equal(0, code)
    assert.matches("^run 1 ended: FAILED %(3 passed, 1 failed, 1 flaky, 1 skipped of 6%)\n", out)
    assert.matches("https://dash.empirical.run/acme/test-runs/1", out, 1, true)
    code, out = run { "get", tostring(id), "--json" }
    assert.equal(0, code)
    assert.equal(6, #cjson.decode(out).flattenedSummaryDetails)
    local err
    code, out, err = run { "get", "99" }
    assert.equal(3, code)
    assert.equal("", out)
    assert.matches("404", err, 1, true)
  end)

  it("rerun --only-failed re-runs the failed tests, and wait exits with the verdict", function()
    local client = helper.client(fake)
    local id = assert(client:trigger { environment = "staging" }).id
    client:close()
    local code, out = run { "wait", tostring(id), "--interval", "0.05" }
    assert.equal(1, code)
    assert.matches("run 1: failed, 3 passed, 1 failed, 1 flaky, 1 skipped of 6", out, 1, true)
    code, out = run { "rerun", tostring(id), "--only-failed" }
    assert.equal(0, code)
    assert.matches("^run 2 re%-runs the failed tests of run 1: queued", out)
    code, out = run { "wait", "2", "--interval", "0.05", "--json" }
    assert.equal(0, code)
    assert.equal("passed", cjson.decode(out)[1].outcome)
  end)

  it("wait exits 2 at its deadline, and 3 for a run that does not exist", function()
    fake:scenario { pending_seconds = 1e6 }
    assert(helper.client(fake):trigger { environment = "staging" })
    assert.equal(2, (run { "wait", "1", "--interval", "0.05", "--timeout", "1s" }))
    assert.equal(3, (run { "wait", "77", "--interval", "0.05" }))
  end)

  it_cancel("cancel requests a cancel with the reason, and a run that already ended is not an error", function()
    fake:scenario { pending_seconds = 1e6 }
    local client = helper.client(fake)
    local id = assert(client:trigger { environment = "staging" }).id
    client:close()
    local code, out = run { "cancel", tostring(id), "--reason", "rolled back" }
    assert.equal(0, code)
    assert.equal("run 1: cancel requested\n", out)
    code, out = run { "cancel", tostring(id), "--json" }
    assert.equal(0, code)
    assert.equal("already ended", cjson.decode(out)[1].status)
  end)

  it_list("list shows the runs newest first, filtered, at most --limit", function()
    fake:clock { speed = 0 }   -- the runs stay queued however slowly this runs (under ASan, say)
    local client = helper.client(fake)
    for _ = 1, 3 do assert(client:trigger { environment = "staging" }) end
    client:close()
    local code, out = run { "list", "--limit", "2", "--json" }
    assert.equal(0, code)
    local rows = cjson.decode(out)
    assert.same({ 3, 2 }, { rows[1].id, rows[2].id })
    code, out = run { "list", "--state", "ended", "--json" }
    assert.equal(0, code)
    assert.equal("[]\n", out)
  end)

  it_report("report shows the failed tests with file, line and message", function()
    fake:scenario { tests = { { name = "pays", outcome = "failed", file = "checkout.spec.ts", line = 7,
                                message = "Error: boom", describe = { "checkout" } } } }
    local client = helper.client(fake)
    local id = assert(client:trigger { environment = "staging" }).id
    assert(client:wait(id, { interval = 0.05 }))
    client:close()
    local code, out = run { "report", tostring(id) }
    assert.equal(0, code)
    assert.matches("checkout.spec.ts:7 › checkout › pays [chromium]\n        Error: boom", out, 1, true)
  end)

  it_signals("fake prints its URL, serves the API, and stops on SIGTERM", function()
    local pipe = assert(io.popen(("echo $$; exec env LUA_PATH=%s LUA_CPATH=%s %s bin/empirical fake --speed 5 2>/dev/null")
                                   :format(helper.shell_quote(package.path), helper.shell_quote(package.cpath),
                                           helper.LUA)))
    local pid = pipe:read("*l")
    local url = pipe:read("*l")
    assert.matches("^http://127%.0%.0%.1:%d+$", url)
    local client = assert(empirical.new { token = "fake-token", base_url = url })
    assert(client:trigger { environment = "staging" })
    client:close()
    os.execute("kill -TERM " .. pid)
    assert.is_true(pipe:close())
  end)
end)
