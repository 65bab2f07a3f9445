-- make deps: installs what is missing as root, otherwise prints the command.
describe("make deps", function()
  it("prints the exact apt-get command when it cannot install", function()
    if not os.execute("command -v setpriv >/dev/null 2>&1") then return end
    local p = io.popen("setpriv --reuid=65534 --regid=65534 --clear-groups make -s deps " ..
                       "DEB_PACKAGES='lua5.4 no-such-package-empirical' 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("sudo apt-get install -y no-such-package-empirical", 1, true), out)
    assert.falsy(out:find("-y lua5.4", 1, true), out)   -- only what is missing
    assert.truthy(out:find("exit=2", 1, true), out)
  end)

  it("is quiet when everything is installed", function()
    local p = io.popen("make -s deps 2>&1")
    local out = p:read("a")
    p:close()
    assert.equal("", out)
  end)
end)
