-- The Neovim plugin as a user gets it: a copy of the repository as a fresh
-- clone has it (tracked and new files, no build output), built with
-- `make nvim` as the README says, is the only plugin of Debian's nvim,
-- started headless with --clean against the fake. Nothing of this checkout's
-- paths reaches Neovim: it finds the plugin, its Lua modules and the C
-- module on 'runtimepath' alone.
--
-- Each case runs a Lua script in nvim; the script's `R` table (notes shown
-- with vim.notify, and whatever it records) comes back as JSON. The runner
-- always ends with :qa!, so a failure is a failed spec, never a hung editor.
local helper = require("helper")
local cjson = require("cjson")

local ROOT = assert(io.popen("pwd")):read("*l")
local q = helper.shell_quote

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  return dir
end

local write, slurp = helper.write_file, helper.read_file

-- The working tree as a clone would have it.
local function clean_copy()
  local dir = tmpdir()
  assert(os.execute(("cd %s && git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - "
                     .. "| tar -xf - -C %s"):format(q(ROOT), q(dir))))
  return dir
end

-- The environment a user's shell would give nvim and make: nothing of this
-- checkout's module paths, of the make running the specs, or of a sanitizer run.
local CLEAN_ENV = { LUA_PATH = false, LUA_CPATH = false, LUA_PATH_5_1 = false, LUA_CPATH_5_1 = false,
                    MAKEFLAGS = false, MAKELEVEL = false, MFLAGS = false, LD_PRELOAD = false,
                    EMPIRICALRUN_KEY = false, EMPIRICALRUN_API_URL = false }

local RUNNER = [[
local OUT = %q
R = { notes = {}, levels = {} }
vim.notify = function(msg, level)
  R.notes[#R.notes + 1] = msg
  R.levels[#R.levels + 1] = level
end
function wait_for(ms, fn) return vim.wait(ms, fn, 10) end
function sleep(ms) vim.wait(ms, function() return false end, 10) end
function noted(pattern)
  for _, n in ipairs(R.notes) do if n:find(pattern) then return n end end
end
local ok, problem = pcall(function()
%s
end)
R.ok, R.problem = ok, not ok and tostring(problem) or nil
local f = io.open(OUT, "w")
f:write(vim.json.encode(R))
f:close()
vim.cmd("qa!")
]]

-- Run script in nvim with plugin_dir as its only plugin (or with init as
-- its init.lua, which must put a plugin on 'runtimepath'); cwd is the
-- working directory. Returns R.
local function nvim(plugin_dir, script, env, cwd, init)
  local dir = tmpdir()
  local runner, out = dir .. "/runner.lua", dir .. "/out.json"
  write(runner, RUNNER:format(out, script))
  local vars = { XDG_CONFIG_HOME = dir, XDG_DATA_HOME = dir, XDG_STATE_HOME = dir, XDG_CACHE_HOME = dir }
  for k, v in pairs(CLEAN_ENV) do vars[k] = v end
  for k, v in pairs(env or {}) do vars[k] = v end
  local code, stdout, stderr = helper.run({ "env", "-C", cwd or dir, "timeout", "90", "nvim", "--headless", "--clean",
                                            init and "-u" or "--cmd", init or ("set rtp^=" .. plugin_dir),
                                            "-c", "luafile " .. runner }, vars)
  local f = io.open(out)
  local result = f and cjson.decode(f:read("*a"))
  if f then f:close() end
  helper.remove_dir(dir)
  assert(code == 0 and result, ("nvim exited %s: %s %s"):format(tostring(code), stdout, stderr))
  if not result.ok then error("the script failed: " .. tostring(result.problem) .. "\nnotes:\n" ..
                              table.concat(result.notes, "\n")) end
  return result
end

-- Every note is shown once as "empirical: ...", never with the prefix twice.
local function assert_prefixed_once(notes)
  for _, n in ipairs(notes) do
    assert.matches("^empirical: ", n)
    assert.is_nil(n:find("empirical: empirical:", 1, true), n)
  end
end

local function notes_text(r) return table.concat(r.notes, "\n") end

local function noted_in(r, plain)
  for _, n in ipairs(r.notes) do if n:find(plain, 1, true) then return n end end
end

-- A run as GET /api/test-runs/{id} answers it (what the fake does not serve
-- yet: a summary_url, null counts).
local function run_detail(id, state, counts, summary_url)
  counts = counts or {}
  local null = cjson.null
  return { data = { test_run = {
    project = { id = 1, name = "Fake project" },
    testRun = { id = id, state = state, total_count = counts.total or null, success_count = counts.passed or null,
                failed_count = counts.failed or null, skipped_count = counts.skipped or null,
                flaky_count = counts.flaky or null, environment_slug = "staging", summary_url = summary_url or null },
    flattenedSummaryDetails = { { name = "subtract > subtracts", status = "failed" } },
  } } }
end

-- vim.log.levels
local vim_warn, vim_error = 3, 4

local FIXTURES = ROOT .. "/spec/fixtures/playwright/"

-- Serve run `id` as ended with failures, its report being fixture `name`.
local function serve_failed_run(fake, id, name)
  local report_path = ("/reports/%d.json"):format(id)
  fake:script({ method = "GET", path = "/api/test-runs/" .. id, status = 200, times = 1000,
                body = run_detail(id, "ended", { total = 27, passed = 23, failed = 1, flaky = 1, skipped = 3 },
                                  fake.url .. report_path) },
              { method = "GET", path = report_path, status = 200, times = 1000, body = slurp(FIXTURES .. name) })
end

-- A test root with the files of v1.37-merged-shards.json, each a few lines long.
local function test_root()
  local dir = tmpdir()
  for _, file in ipairs { "subtract.spec.ts", "multiply.spec.ts" } do
    local lines = {}
    for i = 1, 12 do lines[i] = ("// %s line %d"):format(file, i) end
    write(dir .. "/" .. file, table.concat(lines, "\n") .. "\n")
  end
  return dir
end

describe("the Neovim plugin", function()
  local fake, plugin, env
  setup(function()
    plugin = clean_copy()
    local code, out, err = helper.run({ "make", "-C", plugin, "--no-print-directory", "nvim" }, CLEAN_ENV)
    assert(code == 0, "make nvim failed: " .. out .. err)
    fake = helper.start_fake { speed = 4 }
    env = { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url }
  end)
  teardown(function()
    fake:stop()
    helper.remove_dir(plugin)
  end)
  before_each(function() fake:reset() end)

  it("is built by `make nvim` into lua/empirical/core.so, and nvim loads it from there", function()
    local r = nvim(plugin, [[
      R.exists = vim.fn.exists(":Empirical")
      R.core = vim.api.nvim_get_runtime_file("lua/empirical/core.so", true)
      R.loaded = package.loaded["empirical.core"] ~= nil
      R.curl = require("empirical.core").curl_version()
    ]], env)
    assert.equal(2, r.exists)
    assert.same({ plugin .. "/lua/empirical/core.so" }, r.core)
    assert.is_false(r.loaded)   -- the plugin file defines the command only; the module loads on first use
    assert.matches("^libcurl/", r.curl)
  end)

  it("follows a run while every answer is held back, and the editor never stalls", function()
    fake:clock { speed = 1 }                    -- a run of 4 s: 1 s queued, 6 tests of 0.5 s
    fake:script { delay = 0.5, times = 1000 }   -- every API answer held back half a second
    local r = nvim(plugin, [[
      require("empirical.nvim").setup { interval = 0.1 }
      local plugin = require("empirical.nvim")
      R.lines = {}
      local last, max_gap = vim.loop.hrtime(), 0
      local ticker = vim.loop.new_timer()
      ticker:start(10, 10, function()
        local now = vim.loop.hrtime()
        max_gap, last = math.max(max_gap, (now - last) / 1e6), now
      end)
      local t0 = vim.loop.hrtime()
      vim.cmd("Empirical run staging")
      R.ended = wait_for(30000, function()
        local line = plugin.statusline()
        if R.lines[#R.lines] ~= line then R.lines[#R.lines + 1] = line end
        return noted("ended") ~= nil
      end)
      ticker:stop()
      R.max_gap_ms, R.elapsed_ms = max_gap, (vim.loop.hrtime() - t0) / 1e6
    ]], env)
    assert.is_true(r.ended, notes_text(r))
    assert.equal("empirical: triggered run 1 on staging", r.notes[1])
    assert.matches("empirical: run 1 started", notes_text(r), 1, true)
    assert.matches("empirical: run 1 ended: FAILED; 3 passed, 1 failed, 1 flaky, 1 skipped of 6 tests", notes_text(r), 1, true)
    -- the status line moved through the run: counts rising while started, then the verdict
    local seen = table.concat(r.lines, "\n")
    local rising = {}
    for done in seen:gmatch("empirical #1 started (%d)/6") do rising[#rising + 1] = tonumber(done) end
    assert.is_true(#rising >= 2, seen)
    for i = 2, #rising do assert.is_true(rising[i] > rising[i - 1], seen) end
    assert.equal("empirical #1 FAILED 6/6, 1 failed", r.lines[#r.lines])
    -- several requests were each held 0.5 s; the editor's timer never waited long
    assert.is_true(helper.count(fake:log(), "GET") >= 3)
    assert.is_true(r.elapsed_ms > 1500)
    assert.is_true(r.max_gap_ms < 250, ("the editor stalled for %.0f ms"):format(r.max_gap_ms))
    assert_prefixed_once(r.notes)
  end)

  it(":Empirical run staging fills the quickfix list with each failed test at its file and line", function()
    serve_failed_run(fake, 1, "v1.37-merged-shards.json")
    local root = test_root()
    local r = nvim(plugin, [[
      vim.cmd("Empirical run staging")
      R.filled = wait_for(20000, function() return #vim.fn.getqflist() > 0 end)
      R.title = vim.fn.getqflist({ title = 1 }).title
      R.items = {}
      for _, item in ipairs(vim.fn.getqflist()) do
        R.items[#R.items + 1] = { file = vim.api.nvim_buf_get_name(item.bufnr), lnum = item.lnum, col = item.col,
                                  text = item.text, type = item.type }
      end
      vim.cmd("cfirst")
      R.first = { vim.api.nvim_buf_get_name(0), vim.fn.line("."), vim.fn.getline(".") }
      vim.cmd("cnext")
      R.second = { vim.api.nvim_buf_get_name(0), vim.fn.line("."), vim.fn.getline(".") }
      vim.cmd("copen")
      R.window = vim.bo.buftype
    ]], env, root)
    assert.is_true(r.filled, notes_text(r))
    assert.same({
      { file = root .. "/subtract.spec.ts", lnum = 9, col = 2, type = "E",
        text = "subtract › subtracts [webkit]: Error: expect(received).toBe(expected) // Object.is equality" },
      { file = root .. "/multiply.spec.ts", lnum = 9, col = 2, type = "W",
        text = "multiply › multiplies [firefox] (flaky): Error: expect(received).toBe(expected) // Object.is equality" },
    }, r.items)
    assert.matches("^empirical run 1: 22 passed, 1 failed, 1 flaky, 3 skipped$", r.title)
    assert.same({ root .. "/subtract.spec.ts", 9, "// subtract.spec.ts line 9" }, r.first)
    assert.same({ root .. "/multiply.spec.ts", 9, "// multiply.spec.ts line 9" }, r.second)
    assert.equal("quickfix", r.window)
    assert.equal("empirical: run 1: 2 tests in the quickfix list (:copen)", r.notes[#r.notes])
    assert_prefixed_once(r.notes)
    helper.remove_dir(root)
  end)

  it(":Empirical report fills the list from any run, under the test_root setting, without flaky tests if asked", function()
    serve_failed_run(fake, 7, "v1.57-nested-retries.json")
    local root = tmpdir()
    local r = nvim(plugin, ([[
      require("empirical.nvim").setup { test_root = %q, flaky = false }
      vim.cmd("Empirical report 7")
      R.filled = wait_for(20000, function() return #vim.fn.getqflist() > 0 end)
      R.items = {}
      for _, item in ipairs(vim.fn.getqflist()) do
        R.items[#R.items + 1] = { vim.api.nvim_buf_get_name(item.bufnr), item.lnum, item.text }
      end
    ]]):format(root), env)
    assert.is_true(r.filled, notes_text(r))
    assert.equal(6, #r.items)
    assert.same({ "empirical: run 7: 33 passed, 6 failed, 0 flaky, 0 skipped; 6 tests in the quickfix list (:copen)" },
                r.notes)
    assert.same({ root .. "/tests/03-loan-actions.spec.ts", 129,
                  "Loan Actions › Auto-decide Loan › should auto-approve loan when amount ≤ $100,000 AND term ≤ 60 months "
                  .. "[chromium]: Error: Total approved amount should be $90,000.00" }, r.items[3])
    for _, item in ipairs(r.items) do assert.is_nil(item[3]:find("\27", 1, true), item[3]) end   -- no ANSI colour codes
    helper.remove_dir(root)
  end)

  it("says once, plainly, when a run has no report", function()
    fake:script({ method = "GET", path = "/api/test-runs/3", status = 200, times = 10,
                  body = run_detail(3, "ended", { total = 2, passed = 1, failed = 1 }) })
    local r = nvim(plugin, [[
      vim.cmd("Empirical report 3")
      wait_for(10000, function() return #R.notes > 0 end)
      sleep(200)
    ]], env)
    assert.same({ "empirical: invalid: summary_url: run 3 has no report yet (its summary_url is null; state ended)" },
                r.notes)
  end)

  it(":checkhealth empirical reports the module, libcurl and TLS, the key's source (never the key) and the API", function()
    fake:script { method = "GET", path = "/api/test-runs?per_page=1", status = 200,
                  body = { data = { project = { id = 1, name = "Fake project" }, test_runs = { items = {} } },
                           pagination = { page = 1, per_page = 1, total = 0, total_pages = 0 } } }
    local r = nvim(plugin, [[
      vim.cmd("checkhealth empirical")
      R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    ]], env)
    local out = table.concat(r.lines, "\n")
    assert.matches("OK:? empirical.core 0.1.0 loads from " .. plugin:gsub("%p", "%%%0") .. "/lua/empirical/core.so", out)
    assert.matches("OK:? libcurl %d+%.%d+%.%d+, TLS by OpenSSL/%d", out)
    assert.matches("OK:? API key set %(from %$EMPIRICALRUN_KEY%)", out)
    assert.matches("OK:? " .. fake.url:gsub("%p", "%%%0") .. " answers and accepts the key %(project Fake project%)", out)
    assert.is_nil(out:find("ERROR", 1, true), out)
    assert.is_nil(out:find(fake.token, 1, true), "the key was shown")
    local log = fake:log()
    assert.equal("Bearer " .. fake.token, log[#log].headers.authorization)
  end)

  it(":checkhealth empirical reports a missing key, a refused key and an API that does not answer", function()
    local function health(vars)
      local r = nvim(plugin, [[
        vim.cmd("checkhealth empirical")
        R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
      ]], vars)
      return table.concat(r.lines, "\n")
    end
    local out = health { EMPIRICALRUN_API_URL = fake.url }
    assert.matches("ERROR:? no API key: set %$EMPIRICALRUN_KEY", out)
    out = health { EMPIRICALRUN_API_URL = fake.url, EMPIRICALRUN_KEY = "not-the-key" }
    assert.matches("ERROR:? " .. fake.url:gsub("%p", "%%%0") .. " refused the key: http 401", out)
    assert.is_nil(out:find("not-the-key", 1, true), "the key was shown")
    local closed = ("http://127.0.0.1:%d"):format(helper.free_port())
    out = health { EMPIRICALRUN_API_URL = closed, EMPIRICALRUN_KEY = "k" }
    assert.matches("ERROR:? " .. closed:gsub("%p", "%%%0") .. ": transport", out)
  end)

  it(":checkhealth empirical says how to build the module when it is not built", function()
    local unbuilt = clean_copy()
    local r = nvim(unbuilt, [[
      vim.cmd("checkhealth empirical")
      R.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    ]], env)
    local out = table.concat(r.lines, "\n")
    assert.matches("ERROR:? the C module empirical.core does not load", out)
    assert.matches("make nvim` in " .. unbuilt:gsub("%p", "%%%0"), out)
    helper.remove_dir(unbuilt)
  end)

  it(":help empirical opens, and so does every tag of doc/empirical.txt", function()
    local r = nvim(plugin, ([[
      vim.cmd("helptags %s/doc")
      R.tags = {}
      for line in io.lines(%q) do
        local tag = line:match("^([^\t]+)\t")
        vim.cmd("help " .. vim.fn.escape(tag, " "))
        R.tags[#R.tags + 1] = { tag, vim.fn.expand("%%:t"), vim.fn.getline(".") }
        vim.cmd("helpclose")
      end
      vim.cmd("help empirical")
      R.file, R.line = vim.fn.expand("%%:t"), vim.fn.getline(".")
      R.subcommands, R.options = {}, {}
      for _, sub in ipairs(require("empirical.nvim").SUBCOMMANDS) do R.subcommands[#R.subcommands + 1] = sub.name end
      for _, row in ipairs(require("empirical.nvim.config").OPTIONS) do R.options[#R.options + 1] = row[1] end
    ]]):format(plugin, plugin .. "/doc/tags"), env)
    assert.equal("empirical.txt", r.file)
    assert.matches("*empirical*", r.line, 1, true)
    local tags = {}
    for _, t in ipairs(r.tags) do
      assert.equal("empirical.txt", t[2], t[1])
      assert.truthy(t[3]:find("*" .. t[1] .. "*", 1, true), t[1] .. " lands on " .. t[3])
      tags[t[1]] = true
    end
    for _, tag in ipairs { "empirical", ":Empirical", "empirical-config", "g:empirical", "empirical-install",
                           "empirical-quickfix", "empirical-health", "empirical.nvim.statusline()" } do
      assert.truthy(tags[tag], tag)
    end
    for _, name in ipairs(r.subcommands) do assert.truthy(tags[":Empirical-" .. name], name) end
    local doc = slurp(plugin .. "/doc/empirical.txt")
    for _, name in ipairs(r.options) do assert.truthy(doc:find("\n" .. name .. " ", 1, true), "option " .. name) end
  end)

  it("completes subcommands, environments, run ids and `all`", function()
    local r = nvim(plugin, [[
      require("empirical.nvim").setup { environment = "staging", environments = { "production", "preview" } }
      local function complete(line) return vim.fn.getcompletion(line, "cmdline") end
      R.all = complete("Empirical ")
      R.r = complete("Empirical r")
      R.envs = complete("Empirical run ")
      R.p = complete("Empirical run p")
      vim.cmd("Empirical run staging")
      wait_for(10000, function() return noted("triggered") ~= nil end)
      R.ids = complete("Empirical status ")
      R.rerun = complete("Empirical rerun 1 ")
      R.stop = complete("Empirical stop ")
      R.none = complete("Empirical list ")
      vim.cmd("Empirical stop")
    ]], env)
    assert.same({ "run", "rerun", "status", "cancel", "list", "report", "stop" }, r.all)
    assert.same({ "run", "rerun", "report" }, r.r)
    assert.same({ "staging", "production", "preview" }, r.envs)
    assert.same({ "production", "preview" }, r.p)
    assert.same({ "1" }, r.ids)
    assert.same({ "all" }, r.rerun)
    assert.same({ "1" }, r.stop)
    assert.same({}, r.none)
  end)

  it(":Empirical stop stops following: the request in flight is aborted and no other is sent", function()
    fake:script { delay = 0.5, times = 1000 }
    local r = nvim(plugin, [[
      local gets = 0
      local plugin = require("empirical.nvim")
      plugin.setup { interval = 0.1, client = { on_event = function(ev) if ev.method == "GET" then gets = gets + 1 end end } }
      local client, started = plugin.client(), {}   -- the plugin's own client: see each request it starts
      local start = client.start
      client.start = function(self, ...)
        local req = start(self, ...)
        started[#started + 1] = req
        return req
      end
      vim.cmd("Empirical run staging")
      wait_for(10000, function() return gets >= 1 end)
      sleep(150)                          -- the next read is in flight
      R.in_flight = tostring(started[#started])
      vim.cmd("Empirical stop")
      R.after_stop = tostring(started[#started])
      R.answered_at_stop = gets
      R.following = plugin.following()
      R.line = plugin.statusline()
      sleep(2000)                         -- time for three more reads, were it still following
      R.answered_after = gets
      vim.cmd("Empirical stop")
    ]], env)
    assert.equal("empirical: stopped following run 1 (it goes on: :Empirical cancel ends it)", r.notes[#r.notes - 1])
    assert.equal("empirical: not following any run", r.notes[#r.notes])
    assert.same({}, r.following)
    assert.equal("", r.line)
    assert.equal("empirical.request (GET /api/test-runs/1, sending)", r.in_flight)
    assert.equal("empirical.request (GET /api/test-runs/1, done)", r.after_stop)
    assert.equal(r.answered_at_stop, r.answered_after)
    -- the fake saw the answered reads and at most the one aborted in flight
    assert.is_true(helper.count(fake:log(), "GET") <= r.answered_at_stop + 1)
  end)

  it("keeps following through transient failures, with a message when they start and when they end", function()
    fake:script({ method = "GET", path = "/api/test-runs/1", status = 503, times = 2,
                  body = { data = cjson.null, error = { message = "upstream unavailable" } } })
    local r = nvim(plugin, [[
      require("empirical.nvim").setup { interval = 0.1, client = { retries = 0 } }
      vim.cmd("Empirical run staging")
      R.ended = wait_for(20000, function() return noted("ended") ~= nil end)
    ]], env)
    assert.is_true(r.ended, notes_text(r))
    assert.matches("^empirical: run 1: could not read it %(http 503: GET /api/test%-runs/1: upstream unavailable%); "
                   .. "trying again every 0%.1 s until %d%d:%d%d:%d%d$", r.notes[2])
    assert.equal(vim_warn, r.levels[2])
    assert.equal("empirical: run 1: read again after 2 failed tries", r.notes[3])
    assert.equal(1, select(2, notes_text(r):gsub("could not read", "")))
    assert_prefixed_once(r.notes)
  end)

  it("stops following on a failure that will not pass, or at the timeout setting, and says so once", function()
    fake:script({ method = "GET", path = "/api/test-runs/1", status = 404,
                  body = { data = cjson.null, error = { message = "Test run 1 not found" } } })
    local r = nvim(plugin, [[
      local plugin = require("empirical.nvim")
      plugin.setup { interval = 0.1 }
      vim.cmd("Empirical run staging")
      wait_for(10000, function() return noted("no longer") ~= nil end)
      R.after_404 = plugin.following()
      plugin.setup { interval = 0.1, timeout = 0.5 }
      vim.cmd("Empirical run production")
      wait_for(10000, function() return noted("timeout option") ~= nil end)
      R.after_timeout = plugin.following()
      sleep(300)
    ]], env)
    assert.equal("empirical: run 1: http 404: GET /api/test-runs/1: Test run 1 not found; no longer following it",
                 noted_in(r, "404"))
    assert.matches("^empirical: run 2 is still %a+ after 0%.5 s %(the timeout option%); no longer following it "
                   .. "%(:Empirical status 2%)$", noted_in(r, "timeout option"))
    assert.same({}, r.after_404)
    assert.same({}, r.after_timeout)
    assert.equal(2, select(2, notes_text(r):gsub("no longer following", "")))
    assert_prefixed_once(r.notes)
  end)

  it("shows counts the API leaves null as ?", function()
    fake:script({ method = "GET", path = "/api/test-runs/1", status = 200, times = 2, body = run_detail(1, "started") },
                { method = "GET", path = "/api/test-runs/1", status = 200, times = 10, body = run_detail(1, "ended") })
    local r = nvim(plugin, [[
      local plugin = require("empirical.nvim")
      plugin.setup { interval = 0.1 }
      R.lines = {}
      vim.cmd("Empirical run staging")
      wait_for(10000, function()
        local line = plugin.statusline()
        if R.lines[#R.lines] ~= line then R.lines[#R.lines + 1] = line end
        return noted("ended") ~= nil
      end)
      R.last = plugin.statusline()
      vim.cmd("Empirical status 1")
      wait_for(10000, function() return #R.notes >= 4 end)
    ]], env)
    assert.truthy(table.concat(r.lines, "\n"):find("empirical #1 started ?/?, ? failed", 1, true), table.concat(r.lines, "\n"))
    assert.equal("empirical #1 FAILED ?/?, ? failed", r.last)
    assert.truthy(noted_in(r, "run 1 ended: FAILED; ? passed, ? failed, "), notes_text(r))
    assert.truthy(noted_in(r, " of ? tests"), notes_text(r))
    assert_prefixed_once(r.notes)
  end)

  it("prints each error once as `empirical: ...`: a refused trigger, no key, bad arguments, bad settings", function()
    local r = nvim(plugin, [[
      vim.cmd("Empirical run nowhere")
      wait_for(10000, function() return #R.notes >= 1 end)
      vim.cmd("Empirical")
      vim.cmd("Empirical launch")
      vim.cmd("Empirical status twelve")
      vim.cmd("Empirical status 1 2")
      vim.cmd("Empirical rerun")
      vim.cmd("Empirical run")
      R.setup_refused = require("empirical.nvim").setup { intervall = 5 } == nil
      vim.g.empirical = { interval = "5" }
      vim.cmd("Empirical run staging")
      vim.g.empirical = nil
      vim.env.EMPIRICALRUN_KEY = nil
      vim.cmd("Empirical run staging")
    ]], env)
    assert.same({
      "empirical: http 400: PUT /api/test-runs: Unknown environment 'nowhere'. Valid environments: staging, production",
      "empirical: one of:\n:Empirical run {environment} [tags...]\n:Empirical rerun [id] [all]\n:Empirical status [id]\n"
        .. ":Empirical cancel [id]\n:Empirical list\n:Empirical report [id]\n:Empirical stop [id]",
      "empirical: unknown subcommand \"launch\"; one of:\n:Empirical run {environment} [tags...]\n:Empirical rerun [id] [all]\n"
        .. ":Empirical status [id]\n:Empirical cancel [id]\n:Empirical list\n:Empirical report [id]\n:Empirical stop [id]",
      "empirical: a run id is a whole number, got \"twelve\" (:Empirical status [id])",
      "empirical: too many arguments: :Empirical status [id]",
      "empirical: no run yet: give its id (:Empirical rerun [id] [all])",
      "empirical: which environment? :Empirical run {environment} [tags...], or set the environment option",
      "empirical: setup: unknown option intervall (did you mean interval?)",
      "empirical: vim.g.empirical.interval: expected number, got string",
      "empirical: no API key: set $EMPIRICALRUN_KEY, or the token option (:help empirical-config)",
    }, r.notes)
    assert.equal(vim_error, r.levels[1])
    assert.is_true(r.setup_refused)
    assert.equal(1, helper.count(fake:log(), "PUT"))   -- only the refused trigger was sent
  end)

  it("triggers with the settings' project, trigger fields and the tags given; re-runs the failed tests", function()
    local r = nvim(plugin, [[
      R.events = 0
      local function on_event()   -- it may call the editor's API: requests are polled on the main loop
        R.events = R.events + 1
        vim.api.nvim_set_var("empirical_events", R.events)
      end
      require("empirical.nvim").setup { interval = 0.1, project = "acme", client = { on_event = on_event },
                                        trigger = { build = { url = "https://preview.example.com", branch = "main" } } }
      vim.cmd("Empirical run staging smoke checkout")
      wait_for(20000, function() return noted("run 1 ended") ~= nil end)
      vim.cmd("Empirical rerun")
      R.ended = wait_for(20000, function() return noted("run 2 ended") ~= nil end)
      R.last = require("empirical.nvim").statusline()
      R.g_events = vim.g.empirical_events
    ]], env)
    assert.is_true(r.events > 5)
    assert.equal(r.events, r.g_events)
    assert.is_true(r.ended, notes_text(r))
    local log = fake:log()
    assert.equal("PUT", log[1].method)
    assert.same({ environment = "staging", tags = { "smoke", "checkout" },
                  build = { url = "https://preview.example.com", branch = "main" } }, cjson.decode(log[1].body))
    assert.equal("acme", log[1].headers["x-project-slug"])
    local rerun
    for _, req in ipairs(log) do if req.path == "/api/test-runs/1/re-run" then rerun = req end end
    assert.same({ only_failed = true }, cjson.decode(rerun.body))
    assert.truthy(noted_in(r, "re-running the failed tests of run 1 as run 2"))
    assert.truthy(noted_in(r, "run 2 ended: PASSED"), notes_text(r))
    assert.equal("empirical #2 PASSED 1/1", r.last)
  end)

  it(":Empirical list shows the newest runs, ? where a count is missing", function()
    fake:script { method = "GET", path = "/api/test-runs?per_page=10", status = 200,
                  body = { data = { project = { id = 1, name = "Fake project" }, test_runs = { items = {
                             { id = 14, state = "ended", environment_slug = "staging", test_run_branch = "main",
                               total_count = 6, success_count = 5, failed_count = 1, created_at = "2026-11-30T10:00:00Z" },
                             { id = 13, environment_slug = "production", total_count = cjson.null },
                           } } }, pagination = { page = 1, per_page = 10, total = 2, total_pages = 1 } } }
    local r = nvim(plugin, [[
      vim.cmd("Empirical list")
      wait_for(10000, function() return #R.notes > 0 end)
    ]], env)
    assert.same({ "empirical: runs of Fake project (2 of 2):\n"
                  .. "  #14  ended  staging  main  5/6 passed, 1 failed  2026-11-30T10:00:00Z\n"
                  .. "  #13  production  ?/? passed, ? failed" }, r.notes)
  end)

  it("works as the README's init.lua sets it up, word for word but the path", function()
    local block = slurp(ROOT .. "/README.md"):match("\n```lua norun: Neovim's init%.lua[^\n]*\n(.-)\n```\n")
    assert.truthy(block, "the README's init.lua sample")
    assert.truthy(block:find('"/path/to/empirical"', 1, true))
    local home = tmpdir()
    write(home .. "/init.lua", (block:gsub('"/path/to/empirical"', ("%q"):format(plugin))))
    local root = test_root()
    assert(os.execute(("mkdir %s/e2e && mv %s/*.spec.ts %s/e2e/"):format(q(root), q(root), q(root))))
    serve_failed_run(fake, 1, "v1.37-merged-shards.json")
    local r = nvim(plugin, [[
      vim.cmd("Empirical run")
      R.filled = wait_for(20000, function() return #vim.fn.getqflist() > 0 end)
      R.status = vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
      vim.cmd("cfirst")
      R.at = { vim.api.nvim_buf_get_name(0), vim.fn.line(".") }
    ]], env, root, home .. "/init.lua")
    assert.is_true(r.filled, notes_text(r))
    assert.equal("staging", cjson.decode(fake:log()[1].body).environment)
    assert.matches("empirical #1 FAILED 27/27, 1 failed", r.status, 1, true)
    assert.same({ root .. "/e2e/subtract.spec.ts", 9 }, r.at)
    helper.remove_dir(root)
    helper.remove_dir(home)
  end)

  it(":Empirical cancel sends the cancel of the last run, and says when the run had already ended", function()
    fake:script({ method = "POST", path = "/api/test-runs/1/cancel", status = 200, body = { message = "Test run cancelled" } },
                { method = "POST", path = "/api/test-runs/1/cancel", status = 412,
                  body = { data = cjson.null, error = { message = "Test run already completed" } } })
    local r = nvim(plugin, [[
      vim.cmd("Empirical run staging")
      wait_for(10000, function() return noted("triggered") ~= nil end)
      vim.cmd("Empirical stop")
      vim.cmd("Empirical cancel")
      wait_for(10000, function() return noted("cancelled") ~= nil end)
      vim.cmd("Empirical cancel 1")
      wait_for(10000, function() return noted("412") ~= nil end)
    ]], env)
    assert.equal("empirical: run 1: Test run cancelled", noted_in(r, "cancelled"))
    assert.matches("^empirical: http 412: POST /api/test%-runs/1/cancel: .*ended", noted_in(r, "412"))
    local cancels = {}
    for _, req in ipairs(fake:log()) do if req.path == "/api/test-runs/1/cancel" then cancels[#cancels + 1] = req end end
    assert.equal(2, #cancels)
    assert.equal("POST", cancels[1].method)
    assert.equal("", cancels[1].body)
    assert_prefixed_once(r.notes)
  end)
end)
