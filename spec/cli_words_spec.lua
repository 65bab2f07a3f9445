-- The command speaks its own words: an error names the flag or variable the
-- user set and advises only what a command user can do; an EMPIRICAL*
-- variable the command does not read gets a warning. The real command, run
-- as a process against the bundled fake over loopback; exact text and exit
-- codes.
local helper = require("helper")
local cjson = require("cjson")
local cli = require("empirical.cli")
local words = require("empirical.cli.words")

local PLAIN = "is plain http to a host that is not loopback, so the API key would cross the network in clear: " ..
              "use https (plain http is accepted only to a loopback address, like the bundled fake's)"
local NO_KEY = "EMPIRICALRUN_KEY is not set: export the API key in it (the command takes the key from there only, " ..
               "so it stays out of ps and shell history)"
local LIBRARY_WORDS = { "allow_plain_http", "base_url", "project_slug", "max_poll_failures", "opts.", "client:",
                        "the wait's timeout", "token:" }

local function speaks_no_library(text)
  for _, w in ipairs(LIBRARY_WORDS) do assert.is_nil(text:find(w, 1, true), ("'%s' in:\n%s"):format(w, text)) end
end

local function warning(name, meant)
  return meant and ("empirical: warning: %s is set, but the command reads no such variable; did you mean %s?\n")
                   :format(name, meant)
               or ("empirical: warning: %s is set, but the command reads no such variable " ..
                   "(empirical --help lists the ones it reads)\n"):format(name)
end

describe("the command's words", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 50 } end)
  teardown(function() fake:stop() end)
  before_each(function() fake:reset() end)

  local function run(argv, env) return helper.run_command(fake, argv, env) end

  describe("a refused setting names the flag or the variable, exit 3, nothing sent", function()
    local cases = {
      { "plain http to another host, by flag", { "get", "1", "--api-url", "http://example.com" }, nil,
        "empirical get: --api-url " .. PLAIN },
      { "plain http to another host, by variable", { "get", "1" }, { EMPIRICALRUN_API_URL = "http://example.com" },
        "empirical get: EMPIRICALRUN_API_URL " .. PLAIN },
      { "the flag winning over the variable", { "rerun", "1", "--api-url", "http://example.com:8080" },
        { EMPIRICALRUN_API_URL = "https://api.empirical.run" }, "empirical rerun: --api-url " .. PLAIN },
      { "an address ending in /api", { "cancel", "1", "--api-url", "https://example.com/api" }, nil,
        "empirical cancel: --api-url ends in /api: give the API's address without it, like https://api.empirical.run" },
      { "not a URL", { "list" }, { EMPIRICALRUN_API_URL = "api.example.com:443x" },
        "empirical list: EMPIRICALRUN_API_URL is not a URL: write it whole, like https://api.empirical.run" },
      { "a user name in the address", { "report", "1", "--api-url", "https://me:secret@example.com" }, nil,
        "empirical report: --api-url must not carry a user name or password (the API key goes in EMPIRICALRUN_KEY)" },
      { "another scheme", { "trigger", "--environment", "staging", "--api-url", "ftp://example.com" }, nil,
        "empirical trigger: --api-url must be an https:// URL" },
      { "no key", { "wait", "1" }, { EMPIRICALRUN_KEY = false }, "empirical wait: " .. NO_KEY },
      { "an empty key", { "rerun", "1" }, { EMPIRICALRUN_KEY = "" }, "empirical rerun: " .. NO_KEY },
      { "a key with a line break", { "get", "1" }, { EMPIRICALRUN_KEY = "ab\ncd" },
        "empirical get: EMPIRICALRUN_KEY contains CR or LF, which would break the HTTP header it is sent in" },
      { "a project with a line break, by variable", { "get", "1" }, { EMPIRICALRUN_PROJECT = "acme\r\nX-Evil: 1" },
        "empirical get: EMPIRICALRUN_PROJECT contains CR or LF, which would break the HTTP header it is sent in" },
      { "an empty project, by flag", { "get", "1", "--project-slug=" }, nil,
        "empirical get: --project-slug must not be empty" },
    }
    for _, case in ipairs(cases) do
      it("on " .. case[1], function()
        local code, out, err = run(case[2], case[3])
        assert.equal(3, code)
        assert.equal("", out)
        assert.equal(case[4] .. "\n", err)
        assert.is_nil(err:find("secret", 1, true), err)
        speaks_no_library(err)
        assert.equal(0, #fake:log())
      end)
    end
  end)

  it("the gate: the same line, no runs and no JUnit file, --json's error naming the variable, exit 3", function()
    local junit = os.tmpname()
    os.remove(junit)
    local code, out, err = run({ "gate", "--environment", "staging", "--run", "4", "--json", "--junit", junit },
                               { EMPIRICALRUN_API_URL = "http://example.com", EMPIRICALRUN_PROJECT = "acme" })
    assert.equal(3, code)
    assert.equal("empirical gate: EMPIRICALRUN_API_URL " .. PLAIN .. "\n", err)
    assert.same({ verdict = "invalid", exit_code = 3, runs = {}, cancelled = {},
                  error = { kind = "config", message = "EMPIRICALRUN_API_URL " .. PLAIN,
                            variable = "EMPIRICALRUN_API_URL" } }, cjson.decode(out))
    assert.is_nil(io.open(junit))
    speaks_no_library(out .. err)
    code, out, err = run({ "gate", "--environment", "staging" }, { EMPIRICALRUN_KEY = false,
                                                                  EMPIRICALRUN_PROJECT = "acme" })
    assert.equal(3, code)
    assert.equal("empirical gate: " .. NO_KEY .. "\n", err)
    assert.equal("", out)
    assert.equal(0, #fake:log())
  end)

  it("plain http to loopback (the fake) is accepted", function()
    local code, out, err = run { "list", "--json", "--api-url", (fake.url:gsub("127%.0%.0%.1", "localhost")) }
    assert.equal(0, code, err)
    assert.equal("[]\n", out)
    assert.equal("", err)
  end)

  describe("a wait", function()
    it("at its deadline names --timeout, exit 2", function()
      fake:scenario { pending_seconds = 1e6 }
      assert(helper.client(fake):trigger { environment = "staging" })
      local code, out, err = run { "wait", "1", "--interval", "0.05", "--timeout", "1s" }
      assert.equal(2, code)
      assert.equal("run 1: timeout, 0 passed, 0 failed, 0 flaky, 0 skipped of 6\n", out)
      assert.equal("run 1 pending, 0/6 done, 0 failed (0:00)\n" ..
                   "empirical wait: run 1: timeout: still pending at the deadline (--timeout 1s)\n", err)
    end)

    it("giving up after --max-poll-failures names the flag, exit 2", function()
      fake:script { method = "GET", status = 503, body = "", times = 100000 }
      local code, out, err = run { "wait", "1", "--interval", "0.05", "--max-poll-failures", "2" }
      assert.equal(2, code)
      assert.equal("run 1: unavailable, ? passed, ? failed, ? flaky, ? skipped of ?\n", out)
      assert.equal("empirical wait: run 1: http 503: 3 polls in a row failed (--max-poll-failures 2); the last: " ..
                   "GET /api/test-runs/1: HTTP 503 with an empty body (after 4 attempts)\n", err)
    end)

    it("in the gate: its lines and --json name --timeout", function()
      fake:scenario { pending_seconds = 1e6 }
      assert(helper.client(fake):trigger { environment = "staging" })
      local code, out, err = run { "gate", "--run", "1", "--interval", "0.05", "--timeout", "1s",
                                   "--on-timeout", "leave", "--json" }
      assert.equal(2, code)
      assert.truthy(err:find("\nrun 1: timeout: still pending at the deadline (--timeout 1s)\n", 1, true), err)
      local result = cjson.decode(out)
      assert.equal("still pending at the deadline (--timeout 1s)", result.runs[1].error.message)
      speaks_no_library(out .. err)
    end)

    it("with an --interval the schedule refuses is a usage error, not a traceback", function()
      local code, out, err = run { "wait", "1", "--interval", "0.0001" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal("empirical wait: --interval: '0.0001' is below the 0.001 s minimum\n" ..
                   "Run 'empirical wait --help' for usage.\n", err)
    end)
  end)

  it("rerun and cancel of an unknown run: the API's answer, exit 3", function()
    local code, out, err = run { "rerun", "99" }
    assert.equal(3, code)
    assert.equal("", out)
    assert.equal("empirical rerun: http 404: POST /api/test-runs/99/re-run: Test run 99 not found\n", err)
    code, out, err = run { "cancel", "99" }
    assert.equal(3, code)
    assert.equal("", out)
    assert.equal("empirical cancel 99: http 404: POST /api/test-runs/99/cancel: Test run 99 not found\n", err)
  end)

  it("a trigger whose request may have reached the server advises what the command can do", function()
    local advice = "so the run may have been created: find it with `empirical list --state queued` (or --state " ..
                   "pending, --state started) before triggering again\n"
    fake:script { method = "PUT", status = 503, body = "", times = 5 }
    local code, _, err = run { "trigger", "--environment", "staging" }
    assert.equal(2, code)
    assert.truthy(err:find("the server answered HTTP 503, " .. advice, 1, true), err)
    assert.is_nil(err:find("list endpoint", 1, true), err)
    speaks_no_library(err)
    fake:script { method = "PUT", status = 503, body = "", times = 5 }
    code, _, err = run { "gate", "--environment", "staging" }
    assert.equal(2, code)
    assert.truthy(err:find("staging: .*the server answered HTTP 503, " .. advice:gsub("%p", "%%%0")), err)
    assert.is_nil(err:find("list endpoint", 1, true), err)
  end)

  describe("EMPIRICAL* variables the command does not read", function()
    it("get a warning line each, with did-you-mean, never the value; the exit code and stdout unchanged",
       function()
      local id = assert(helper.client(fake):trigger { environment = "staging" }).id
      local code, out, err = run({ "get", tostring(id), "--json" }, {
        EMPIRICAL_API_URL = "http://wrong.example", EMPIRICALRUN_APIURL = "s3cr3t-1", EMPIRICALRUN_TOKEN = "s3cr3t-2",
        EMPIRICAL_KEY = "s3cr3t-3", EMPIRICAL_FROB = "s3cr3t-4", empiricalrun_project = "s3cr3t-5",
        EMPIRICAL_RELEASE_TOKEN = "not-warned", EMPIRICAL_DEBUG = "0" })
      assert.equal(0, code)
      assert.equal(1, cjson.decode(out).testRun.id)   -- stdout is the JSON alone
      assert.equal(warning("EMPIRICALRUN_APIURL", "EMPIRICALRUN_API_URL") ..
                   warning("EMPIRICALRUN_TOKEN", "EMPIRICALRUN_KEY") ..
                   warning("EMPIRICAL_API_URL", "EMPIRICALRUN_API_URL") ..
                   warning("EMPIRICAL_FROB") ..
                   warning("EMPIRICAL_KEY", "EMPIRICALRUN_KEY") ..
                   warning("empiricalrun_project", "EMPIRICALRUN_PROJECT"), err)
      assert.is_nil(err:find("s3cr3t", 1, true))
      assert.is_nil(err:find("wrong.example", 1, true))
    end)

    it("come before the command's own error, and the misspelt variable is not read", function()
      local code, out, err = run({ "get", "1" }, { EMPIRICALRUN_API_URL = false, EMPIRICAL_API_URL = fake.url,
                                                    EMPIRICALRUN_KEY = false })
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal(warning("EMPIRICAL_API_URL", "EMPIRICALRUN_API_URL") .. "empirical get: " .. NO_KEY .. "\n", err)
    end)

    it("warn on a failing command too, which keeps its exit code", function()
      local code, out, err = run({ "get", "99" }, { EMPIRICALRUN_KEYS = "x" })
      assert.equal(3, code)
      assert.equal("", out)
      assert.equal(warning("EMPIRICALRUN_KEYS", "EMPIRICALRUN_KEY") ..
                   "empirical get: http 404: GET /api/test-runs/99: Test run 99 not found\n", err)
    end)

    it("warn on --help and --version without loading libcurl", function()
      for _, argv in ipairs { { "--help" }, { "--version" }, { "gate", "--help" } } do
        local quoted = {}
        for i, a in ipairs(argv) do quoted[i] = ("%q"):format(a) end
        local script = ([[
          local cli = require("empirical.cli")
          local null = { write = function(self) return self end }
          local err = { text = "", write = function(self, ...) self.text = self.text .. table.concat({ ... }) return self end }
          local code = cli.main({ %s }, { stdout = null, stderr = err })
          local maps = io.open("/proc/self/maps"):read("a")
          io.write(code, " ", tostring(package.loaded["empirical.core"] ~= nil), " ",
                   tostring(maps:find("libcurl") ~= nil), " ", err.text)
        ]]):format(table.concat(quoted, ", "))
        local _, out = helper.run({ helper.LUA, "-e", script }, { EMPIRICAL_APIURL = "x" })
        assert.equal("0 false false " .. warning("EMPIRICAL_APIURL", "EMPIRICALRUN_API_URL"), out)
      end
    end)

    it("in-process, from the names main is given", function()
      local parts = {}
      local sink = { write = function(self, ...) for _, v in ipairs { ... } do parts[#parts + 1] = v end return self end }
      local code = cli.main({ "--version" }, { stdout = { write = function(self) return self end }, stderr = sink,
                                               getenv = function() return nil end,
                                               environ = function() return { "PATH", "EMPIRICAL_DEBUG", "EMPIRICALRUN_URL",
                                                                             "EMPIRICAL_SEED", "EMPIRICAL_RELEASE_DIR" } end })
      assert.equal(0, code)
      assert.equal(warning("EMPIRICALRUN_URL", "EMPIRICALRUN_API_URL"), table.concat(parts))
    end)

    it("did you mean: the examples, and nothing for a name close to none", function()
      for typo, meant in pairs { EMPIRICAL_API_URL = "EMPIRICALRUN_API_URL", EMPIRICALRUN_APIURL = "EMPIRICALRUN_API_URL",
                                 EMPIRICALRUN_TOKEN = "EMPIRICALRUN_KEY", EMPIRICAL_KEY = "EMPIRICALRUN_KEY",
                                 EMPIRICALRUN_API_ULR = "EMPIRICALRUN_API_URL", EMPIRICAL_PROJECT = "EMPIRICALRUN_PROJECT",
                                 EMPIRICALRUN_DASHBOARD = "EMPIRICALRUN_DASHBOARD_URL", EMPIRICALRUN_DEBUG = "EMPIRICAL_DEBUG",
                                 empirical_debug = "EMPIRICAL_DEBUG", EMPIRICAL_RUN_KEY = "EMPIRICALRUN_KEY",
                                 EMPIRICAL_RUN_API_URL = "EMPIRICALRUN_API_URL", EMPIRICAL_RUNKEY = "EMPIRICALRUN_KEY",
                                 EMPIRICAL_RUN_PROJECT = "EMPIRICALRUN_PROJECT" } do
        assert.equal(meant, words.meant(typo), typo)
      end
      assert.is_nil(words.meant("EMPIRICAL_FROBNICATE"))
      assert.same({}, words.unknown_variables { "EMPIRICALRUN_KEY", "EMPIRICAL_DEBUG", "HOME", "EMPIRICAL_RELEASE_LISTEN" })
    end)
  end)

  it("the library keeps its own words for Lua programs, and gives the reason as a field", function()
    local empirical = require("empirical")
    local client, err = empirical.new { token = "t", base_url = "http://example.com" }
    assert.is_nil(client)
    assert.equal("config", err.kind)
    assert.equal("base_url", err.field)
    assert.equal("plain_http", err.reason)
    assert.truthy(err.message:find("allow_plain_http", 1, true))
    err = select(2, empirical.new { token = "t", base_url = "https://example.com/api/" })
    assert.equal("api_path", err.reason)
    client = assert(empirical.new { token = "t", base_url = "http://example.com", allow_plain_http = true })
    client:close()
  end)
end)
