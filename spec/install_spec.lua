-- The two ways to install: the rockspec with Debian's luarocks, and make install.
local function run(command)
  local ok = os.execute(command .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

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

  it("lists every C source and Lua module in the rockspec", function()
    local f = assert(io.open("empirical-0.1.0-1.rockspec"))
    local rockspec = f:read("*a")
    f:close()
    local listing = assert(io.popen("ls csrc/*.c lua/empirical/*.lua"))
    for file in listing:lines() do
      assert.truthy(rockspec:find('"' .. file .. '"', 1, true), file .. " is missing from the rockspec")
    end
    listing:close()
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
