-- The two ways to install: the rockspec with Debian's luarocks, and make install.
local function run(command)
  local ok = os.execute(command .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

local read = require("helper").read_file

local function loads_from(lpath, cpath)
  local probe = [[local e = require("empirical"); assert(e.VERSION == "0.1.0");
    assert(package.searchpath("empirical.core", package.cpath):find("%s", 1, true));
    assert(e.encode("get", {id = 3}).path == "/api/test-runs/3")]]
  return run(("LUA_PATH='%s;;' LUA_CPATH='%s;;' lua5.4 -e '%s'"):format(lpath, cpath, probe:format(cpath:match("^(.-)%?"))))
end

describe("installation", function()
  local tmp
  before_each(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(run("mkdir -p " .. tmp))
  end)
  after_each(function()
    run("rm -rf " .. tmp)
  end)

  it("lists every C source and Lua module in the rockspec, and nothing of the fake", function()
    local rockspec = read("empirical-0.1.0-1.rockspec")
    local listing = assert(io.popen("ls csrc/*.c lua/empirical/*.lua"))
    for file in listing:lines() do
      assert.truthy(rockspec:find('"' .. file .. '"', 1, true), file .. " is missing from the rockspec")
    end
    listing:close()
    assert.falsy(rockspec:find("empirical.fake", 1, true))
    assert.falsy(rockspec:find("luasocket", 1, true))
    assert.falsy(rockspec:find("luasec", 1, true))
  end)

  it("lists every module of the fake in its own rockspec, which depends on empirical and luasocket", function()
    local rockspec = read("empirical-fake-0.1.0-1.rockspec")
    local listing = assert(io.popen("ls lua/empirical/fake/*.lua"))
    local n = 0
    for file in listing:lines() do
      local module = "empirical.fake" .. (file:match("/(%w+)%.lua$") == "init" and "" or "." .. file:match("/(%w+)%.lua$"))
      assert.truthy(rockspec:find(('["%s"] = "%s"'):format(module, file), 1, true), file .. " is missing from the rockspec")
      n = n + 1
    end
    listing:close()
    assert.is_true(n >= 5)
    assert.truthy(rockspec:find('"empirical = 0.1.0"', 1, true))
    assert.truthy(rockspec:find('"luasocket >= 3.0"', 1, true))
  end)

  it("ships LuaLS definitions for every public function and client method", function()
    local f = assert(io.open("lua/empirical/_meta.lua"))
    local meta = f:read("*a")
    f:close()
    local empirical = require("empirical")
    for name, value in pairs(empirical) do
      if type(value) == "function" then
        assert.truthy(meta:find("function empirical." .. name .. "(", 1, true), "empirical." .. name)
      end
    end
    local client = assert(empirical.new { token = "t", base_url = "http://127.0.0.1:9" })
    for name, value in pairs(getmetatable(client).__index) do
      if type(value) == "function" and not name:match("^_") and name ~= "__close" and name ~= "__tostring" then
        assert.truthy(meta:find("function Client:" .. name .. "(", 1, true), "client:" .. name)
      end
    end
    client:close()
  end)

  it("builds and installs from the rockspec with luarocks make --deps-mode=none", function()
    -- In a copy: luarocks make builds in place, and must not touch this tree's module.
    assert.is_true(run(("mkdir %s/src && cp -r csrc lua bin empirical-0.1.0-1.rockspec %s/src"):format(tmp, tmp)))
    assert.is_true(run(("cd %s/src && luarocks --lua-version 5.4 make --deps-mode=none --tree %s empirical-0.1.0-1.rockspec")
      :format(tmp, tmp)))
    assert.is_true(loads_from(tmp .. "/share/lua/5.4/?.lua;" .. tmp .. "/share/lua/5.4/?/init.lua",
                              tmp .. "/lib/lua/5.4/?.so"))
  end)

  it("installs the standard layout with make install PREFIX= DESTDIR=", function()
    assert.is_true(run(("make install PREFIX=/usr DESTDIR=%s"):format(tmp)))
    local root = tmp .. "/usr"
    assert.is_true(run("test -f " .. root .. "/lib/lua/5.4/empirical/core.so"))
    assert.is_true(run("test -f " .. root .. "/share/lua/5.4/empirical/init.lua"))
    assert.is_true(loads_from(root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua",
                              root .. "/lib/lua/5.4/?.so"))
  end)
end)

-- Both rocks in one tree, built from a copy of this checkout.
describe("the rocks", function()
  local helper = require("helper")
  local tree, fake

  -- Run Lua code in lua5.4 with only these module paths; exit code and output.
  local function lua_with(lpath, cpath, code, env)
    local vars = { LUA_PATH = lpath, LUA_CPATH = cpath }
    for k, v in pairs(env or {}) do vars[k] = v end
    return helper.run({ "lua5.4", "-e", code }, vars)
  end

  setup(function()
    tree = os.tmpname()
    os.remove(tree)
    assert(run(("mkdir -p %s/src && cp -r csrc lua bin examples *.rockspec %s/src"):format(tree, tree)))
    for _, rockspec in ipairs { "empirical-0.1.0-1.rockspec", "empirical-fake-0.1.0-1.rockspec" } do
      assert(run(("cd %s/src && luarocks --lua-version 5.4 make --deps-mode=none --tree %s %s")
        :format(tree, tree, rockspec)), rockspec)
    end
    fake = helper.start_fake {}
  end)
  teardown(function()
    fake:stop()
    run("rm -rf " .. tree)
  end)

  it("give a tree where require('empirical') loads and works with no luasocket on the path", function()
    -- The tree's own paths and lua-cjson, nothing else: no system directory.
    local cjson_dir = tree .. "/cjson"
    assert(run(("mkdir %s && ln -s %s %s/cjson.so"):format(cjson_dir, package.searchpath("cjson", package.cpath), cjson_dir)))
    local lpath = ("%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua"):format(tree, tree)
    local cpath = ("%s/lib/lua/5.4/?.so;%s/?.so"):format(tree, cjson_dir)
    local code, out, err = lua_with(lpath, cpath, [[
      assert(not pcall(require, "socket"), "luasocket is on this path")
      local empirical = require("empirical")
      local client = assert(empirical.new {})
      local run = assert(client:trigger { environment = "staging" })
      assert(client:get(run.id).testRun.id == run.id)
      assert(empirical.encode("list", { page = 2 }).path == "/api/test-runs?page=2")
      for name in pairs(package.loaded) do assert(not name:find("^socket") and not name:find("^ssl"), name) end
      print("client ok without luasocket")
    ]], { EMPIRICALRUN_KEY = fake.token, EMPIRICALRUN_API_URL = fake.url })
    assert.equal(0, code, err)
    assert.equal("client ok without luasocket\n", out)
    assert.equal(1, helper.count(fake:log(), "PUT"))
  end)

  it("install the fake on its own: its modules, and the empirical-fake command", function()
    local manifest = read(tree .. "/lib/luarocks/rocks-5.4/empirical-fake/0.1.0-1/rock_manifest")
    for _, file in ipairs { "api.lua", "control.lua", "json.lua", "report.lua", "server.lua" } do
      assert.truthy(manifest:find(file, 1, true), file)
    end
    assert.falsy(manifest:find('["init.lua"]', 1, true))       -- not the client's files again
    local lpath = ("%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;"):format(tree, tree)
    local cpath = ("%s/lib/lua/5.4/?.so;;"):format(tree)
    local code, out, err = lua_with(lpath, cpath, ([[
      assert(package.searchpath("empirical.fake", package.path):find(%q, 1, true))
      local fake = assert(require("empirical.fake").spawn { speed = 100 })
      local client = assert(require("empirical").new { token = fake.token, base_url = fake.url })
      local run = assert(client:trigger { environment = "staging" })
      assert(assert(client:wait(run.id, { interval = 0.05, timeout = 30 })).testRun.summary_url)
      fake:stop()
      print("fake ok")
    ]]):format(tree))
    assert.equal(0, code, err)
    assert.equal("fake ok\n", out)
    -- the command, as luarocks wrapped it (the tree's paths, as a configured tree gives them)
    local pipe = assert(io.popen(("env LUA_PATH=%s LUA_CPATH=%s %s/bin/empirical-fake --port 0 --max-idle 30")
      :format(helper.shell_quote(lpath), helper.shell_quote(cpath), tree)))
    local url = pipe:read("*l")
    assert.matches("^http://127%.0%.0%.1:%d+$", url)
    assert.equal(0, (helper.run { "lua5.4", "-e", ("require('socket.http').request{url=%q, method='POST'}"):format(url .. "/_fake/shutdown") }))
    pipe:close()
  end)
end)
