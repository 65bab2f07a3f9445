-- make deps: installs what is missing as root, otherwise prints the command;
-- each target asks only for what it needs.
local MODULE = { "gcc", "libcurl4-openssl-dev", "liblua5.4-dev", "lua-cjson", "lua5.4", "make", "pkg-config" }
local TEST_ONLY = { "lua-busted", "lua-socket", "lua-sec", "lua-expat", "luarocks", "neovim", "nginx-light",
                    "libnginx-mod-http-lua", "luajit2" }

-- Run make as nobody on a copy of the Makefile; `nothing_installed` puts a
-- dpkg-query first on PATH that knows no package. Returns the output.
local function make_as_nobody(args, nothing_installed)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("mkdir -m 755 %s && cp Makefile %s/"):format(dir, dir)))
  local path = "$PATH"
  if nothing_installed then
    assert(os.execute(("mkdir -m 755 %s/bin && printf '#!/bin/sh\\nexit 1\\n' > %s/bin/dpkg-query && chmod 755 %s/bin/dpkg-query")
      :format(dir, dir, dir)))
    path = dir .. "/bin:$PATH"
  end
  local p = io.popen(("cd %s && PATH=%s setpriv --reuid=65534 --regid=65534 --clear-groups make -s %s 2>&1; echo \"exit=$?\"")
    :format(dir, path, args))
  local out = p:read("*a")
  p:close()
  os.execute("rm -rf " .. dir)
  return out
end

-- The packages of the printed `sudo apt-get install -y ...` line, as a set.
local function asked_for(out)
  local line = out:match("sudo apt%-get install %-y ([^\n]*)")
  local set = {}
  for p in (line or ""):gmatch("%S+") do set[p] = true end
  return set, line
end

describe("make deps", function()
  local can_switch_user = os.execute("command -v setpriv >/dev/null 2>&1")

  it("prints the exact apt-get command when it cannot install", function()
    if not can_switch_user then return end
    local out = make_as_nobody("deps DEB_PACKAGES='lua5.4 no-such-package-empirical'")
    assert.truthy(out:find("sudo apt-get install -y no-such-package-empirical", 1, true), out)
    assert.falsy(out:find("-y lua5.4", 1, true), out)   -- only what is missing
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("is quiet when everything is installed", function()
    local p = io.popen("make -s deps 2>&1")
    local out = p:read("*a")
    p:close()
    assert.equal("", out)
  end)

  it("asks, for plain make, only for what the module needs to build", function()
    if not can_switch_user then return end
    local out = make_as_nobody("", true)
    local set, line = asked_for(out)
    for _, p in ipairs(MODULE) do assert.truthy(set[p], p .. " missing from: " .. tostring(line)) end
    for _, p in ipairs(TEST_ONLY) do assert.falsy(set[p], p .. " asked for by plain make: " .. line) end
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("asks, for make test, for the specs' packages too, in one line", function()
    if not can_switch_user then return end
    local out = make_as_nobody("test", true)
    local set, line = asked_for(out)
    for _, p in ipairs(MODULE) do assert.truthy(set[p], p .. " missing from: " .. tostring(line)) end
    for _, p in ipairs(TEST_ONLY) do assert.truthy(set[p], p .. " missing from: " .. tostring(line)) end
    local _, lines = out:gsub("sudo apt%-get", "")
    assert.equal(1, lines, out)
  end)

  it("asks, for make demo, for the module's packages and the fake's luasocket, not the test tools", function()
    if not can_switch_user then return end
    local set, line = asked_for(make_as_nobody("demo", true))
    assert.truthy(set["lua-socket"] and set["lua-cjson"], line)
    assert.falsy(set["neovim"] or set["lua-busted"] or set["nginx-light"], line)
  end)
end)
