-- The README as a user reads it: its tables are the command's data, its
-- `--json` schema is what the gate prints, and every `lua` and `sh` sample
-- runs against the fake. A sample whose info string's second word is
-- `norun` is shown only (the README says why, in the same line).
local helper = require("helper")
local help = require("empirical.cli.help")
local cjson = require("cjson")
local empirical = require("empirical")

local slurp = helper.read_file

local README = slurp("README.md")

-- Fenced blocks: {info = "lua", words = {...}, code = "...", line = n}.
local function blocks(text)
  local out, current, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if current then
      if line == "```" then out[#out + 1], current = current, nil
      else current.code = current.code .. line .. "\n" end
    else
      local info = line:match("^```(.*)$")
      if info then
        local words = {}
        for w in info:gmatch("%S+") do words[#words + 1] = w end
        current = { info = info, words = words, code = "", line = n }
      end
    end
  end
  return out
end

local probe = assert(empirical.new { token = "t", base_url = "http://127.0.0.1:9" })
-- What a sample may need that has not landed yet in the core or the fake
-- (the rewritten fake, a directory of modules, serves cancel, list and reports).
local FAKE_V2 = package.searchpath("empirical.fake.api", package.path) ~= nil
local NEEDS = {
  ["empirical list"] = probe.runs ~= nil and FAKE_V2, ["empirical cancel"] = probe.cancel ~= nil and FAKE_V2,
  ["empirical report"] = probe.report ~= nil and FAKE_V2,
  ["client:runs("] = FAKE_V2, ["client:list("] = FAKE_V2, ["client:cancel("] = FAKE_V2, ["client:report("] = FAKE_V2,
}
probe:close()

local ROOT = io.popen("pwd"):read("*l")
local LUA_PATH = ("%s/lua/?.lua;%s/lua/?/init.lua;;"):format(ROOT, ROOT)
local LUA_CPATH = ("%s/?.so;;"):format(ROOT)

local PRELUDE = [[
local empirical = require("empirical")
local client = assert(empirical.new())
local run = assert(client:trigger { environment = "staging" })
local id = run.id
]]

describe("the README", function()
  it("holds the command's exit codes, environment and gate flags exactly as the command's data", function()
    for name, table_text in pairs { exit_codes = help.markdown_exit_codes(), environment = help.markdown_environment(),
                                    gate_flags = help.markdown_flags("gate") } do
      assert.truthy(README:find(table_text, 1, true), name .. " table differs from the data:\n" .. table_text)
    end
  end)

  describe("samples", function()
    local fake, dir
    setup(function()
      fake = helper.start_fake { speed = 50 }
      dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
    end)
    teardown(function()
      fake:stop()
      helper.remove_dir(dir)
    end)

    local env = function()
      return { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url, LUA_PATH = LUA_PATH,
               LUA_CPATH = LUA_CPATH, PATH = ROOT .. "/bin:" .. os.getenv("PATH"), CI = "true",
               GITHUB_STEP_SUMMARY = false, GITHUB_ACTIONS = false, EMPIRICALRUN_PROJECT = false }
    end

    for _, b in ipairs(blocks(README)) do
      local lang, mark = b.words[1], b.words[2]
      if (lang == "lua" or lang == "sh") and not (mark or ""):match("^norun") then
        local landed = true
        for needle, ok in pairs(NEEDS) do if b.code:find(needle, 1, true) and not ok then landed = false end end
        local test = landed and it or pending
        test(("line %d (%s) runs against the fake and exits 0"):format(b.line, lang), function()
          fake:reset()
          fake:scenario { tests = { { name = "login", outcome = "passed" }, { name = "search", outcome = "flaky" } } }
          local file = dir .. "/sample." .. lang
          local f = assert(io.open(file, "w"))
          if lang == "lua" then
            f:write(PRELUDE, b.code)
          else
            f:write("set -e\ncd ", helper.shell_quote(dir), "\n")
            f:write(helper.shell_quote(helper.LUA), " -e 'local c = assert(require(\"empirical\").new());",
                    " assert(c:trigger { environment = \"staging\" })'\n", b.code)
          end
          f:close()
          local code, out, err = helper.run({ lang == "lua" and helper.LUA or "bash", file }, env())
          assert.equal(0, code, ("sample at README line %d:\n%s\nstdout:\n%s\nstderr:\n%s"):format(b.line, b.code, out, err))
          assert.is_nil(err:find("stack traceback", 1, true), err)
        end)
      end
    end
  end)

  describe("`--json` schema", function()
    local fake, schema_file
    setup(function()
      fake = helper.start_fake { speed = 50 }
      local schema = README:match("### `%-%-json`.-```json\n(.-)```")
      assert(schema, "no ```json block under ### `--json`")
      assert(cjson.decode(schema))
      schema_file = os.tmpname()
      local f = assert(io.open(schema_file, "w"))
      f:write(schema)
      f:close()
    end)
    teardown(function()
      fake:stop()
      os.remove(schema_file)
    end)

    -- Validate a document with python3-jsonschema (Debian's): nil or the error.
    local function validate(text)
      local doc = os.tmpname()
      local f = assert(io.open(doc, "w"))
      f:write(text)
      f:close()
      local code, _, err = helper.run({ "/usr/bin/python3", "-c", [[
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))
]], schema_file, doc }, {})
      os.remove(doc)
      return code == 0 or err
    end

    local cases = {
      { "a pass after a re-run", nil, { "--environment", "staging", "--rerun-failed", "1" } },
      { "failed tests", nil, { "--environment", "staging" } },
      { "two environments and a --run", nil, { "--environment", "staging", "--environment", "production",
                                              "--run", "1" } },
      { "the deadline", { pending_seconds = 1e6 }, { "--environment", "staging", "--timeout", "1s",
                                                     "--on-timeout", "leave" } },
      { "a refused environment", nil, { "--environment", "moon", "--on-reject", "wait" } },
      { "odd counts", { tests = {} }, { "--environment", "staging" } },
    }
    for _, case in ipairs(cases) do
      it("holds the gate's output on " .. case[1], function()
        fake:reset()
        if case[2] then fake:scenario(case[2]) end
        if case[1]:match("%-%-run") then assert(helper.client(fake):trigger { environment = "production" }) end
        local argv = { helper.LUA, "bin/empirical", "gate", "--json", "--interval", "0.05" }
        for _, a in ipairs(case[3]) do argv[#argv + 1] = a end
        local _, out, err = helper.run(argv, { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url,
                                               CI = "true", EMPIRICALRUN_PROJECT = "acme" })
        assert.truthy(out:match("^{.*}\n$"), err)
        assert.is_true(validate(out))
      end)
    end

    it("and the check can fail: a count as a string, an object for a list, an unknown field are refused", function()
      local good = '{"verdict":"passed","exit_code":0,"runs":[],"cancelled":[]}'
      assert.is_true(validate(good))
      assert.is_string(validate('{"verdict":"passed","exit_code":0,"runs":{},"cancelled":[]}'))
      assert.is_string(validate('{"verdict":"passed","exit_code":0,"runs":[],"cancelled":[],"extra":1}'))
      assert.is_string(validate('{"verdict":"passed","exit_code":0,"runs":[{"label":"s","given":false,' ..
        '"outcome":"passed","exit_code":0,"attempts":[{"id":1,"kind":"run","url":null,"state":"ended",' ..
        '"counts":{"total":"6","passed":6,"failed":0,"flaky":0,"skipped":0},"failed_tests":[],"flaky_tests":[]}]}],' ..
        '"cancelled":[]}'))
    end)
  end)
end)
