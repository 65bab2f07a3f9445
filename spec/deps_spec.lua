-- make deps: installs what is missing as root, otherwise prints the command.
describe("make deps", function()
  it("prints the exact apt-get command when it cannot install", function()
    if not os.execute("command -v setpriv >/dev/null 2>&1") then return end
    -- the checkout may be private to root: give nobody a readable copy of the Makefile
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute(("mkdir -m 755 %s && cp Makefile %s/"):format(dir, dir)))
    local p = io.popen(("cd %s && setpriv --reuid=65534 --regid=65534 --clear-groups make -s deps " ..
                        "DEB_PACKAGES='lua5.4 no-such-package-empirical' 2>&1; echo \"exit=$?\""):format(dir))
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
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
end)
