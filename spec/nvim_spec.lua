-- Neovim: Debian's nvim, headless, loads examples/nvim and the module built
-- for LuaJIT, runs :EmpiricalRun against the fake while every answer is held
-- back, and a 10 ms timer records the longest gap between its ticks: a
-- blocking call would stall the editor's loop for the whole delay.
local helper = require("helper")
local cjson = require("cjson")

-- The runner always ends with :qa!, and writes what went wrong if anything
-- raised, so a failure is a failed spec, never a hung editor.
local RUNNER = [[
local root, out, url, token = %q, %q, %q, %q
local ok, problem = pcall(function()
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/jit/?.so;" .. package.cpath
vim.opt.runtimepath:append(root .. "/examples/nvim")
vim.cmd("runtime plugin/empirical.lua")
local notes = {}
vim.notify = function(msg) notes[#notes + 1] = msg end
local plugin = require("empirical_nvim")
plugin.setup { interval = 0.1, poll_ms = 20, client = { token = token, base_url = url } }
local last, max_gap, ticks = vim.loop.hrtime(), 0, 0
local ticker = vim.loop.new_timer()
ticker:start(10, 10, function()
  local now = vim.loop.hrtime()
  max_gap, last, ticks = math.max(max_gap, (now - last) / 1e6), now, ticks + 1
end)
local t0 = vim.loop.hrtime()
vim.cmd("EmpiricalRun staging")
local ok = vim.wait(20000, function() return plugin.last ~= nil end, 10)
vim.cmd("EmpiricalStatus " .. (plugin.last and plugin.last.id or 1))
vim.wait(5000, function() return #notes > 0 and notes[#notes]:find("^empirical: run %%d+ ended") ~= nil end, 10)
ticker:stop()
local f = io.open(out, "w")
f:write(vim.json.encode { ok = ok, last = plugin.last, notes = notes, max_gap_ms = max_gap, ticks = ticks,
                          elapsed_ms = (vim.loop.hrtime() - t0) / 1e6 })
f:close()
end)
if not ok then
  local f = io.open(out, "w")
  f:write(vim.json.encode { ok = false, problem = tostring(problem) })
  f:close()
end
vim.cmd("qa!")
]]

describe("Neovim", function()
  local fake
  setup(function() fake = helper.start_fake { speed = 2 } end)
  teardown(function() fake:stop() end)

  it("runs :EmpiricalRun to the end while the editor keeps responding", function()
    fake:script { delay = 0.5, times = 1000 }   -- every API answer held back half a second
    local dir = os.tmpname()
    local runner, out = dir .. ".lua", dir .. ".json"
    local root = assert(io.popen("pwd")):read("*l")
    local f = assert(io.open(runner, "w"))
    f:write(RUNNER:format(root, out, fake.url, fake.token))
    f:close()
    local code, _, err = helper.run({ "timeout", "60", "nvim", "--headless", "-u", "NONE", "-i", "NONE",
                                      "-c", "luafile " .. runner })
    assert.equal(0, code, err)
    f = assert(io.open(out))
    local result = cjson.decode(f:read("*a"))
    f:close()
    os.remove(runner)
    os.remove(out)
    os.remove(dir)

    if not result.ok then error("nvim did not see the run end: " .. cjson.encode(result)) end
    assert.equal("failed", result.last.verdict)
    assert.matches("^empirical: triggered run %d+ on staging$", result.notes[1])
    assert.matches("run %d+ ended: FAILED", table.concat(result.notes, "\n"))
    assert.matches("checkout > pays with card", result.notes[#result.notes], 1, true)
    -- several requests were each held 0.5 s; the editor's timer never waited long
    assert.is_true(helper.count(fake:log(), "GET") >= 3)
    assert.is_true(result.elapsed_ms > 1500)
    assert.is_true(result.max_gap_ms < 250, ("the editor stalled for %.0f ms"):format(result.max_gap_ms))
  end)
end)
