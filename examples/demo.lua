-- `make demo`: start the bundled fake API and run the installed `empirical
-- gate` against it as a CI job would (key and URL in the environment). In
-- the fake's default scenario one test fails and a re-run of the failed
-- tests fixes it, so the demo shows the whole path: the run's link, progress,
-- the failure with its file, line and message, the re-run, the exit code;
-- then how to go on by hand with what it installed.
--   lua5.4 examples/demo.lua build/demo/bin/empirical
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath

local command_path = arg[1] or "build/demo/bin/empirical"
local fake = assert(require("empirical.fake").spawn { speed = 4 })
print("fake Empirical API at " .. fake.url)
os.execute("mkdir -p build")
local command = table.concat({
  ("EMPIRICALRUN_KEY=%s EMPIRICALRUN_API_URL=%s EMPIRICALRUN_PROJECT=acme"):format(fake.token, fake.url),
  command_path, "gate --environment staging",
  "--build-url https://staging.example.com --commit 4f2c9e1d --branch main",
  "--shards 2 --meta pipeline=4127 --env FEATURE_FLAGS=new-checkout",
  "--timeout 2m --interval 0.5 --rerun-failed 1 --junit build/demo-junit.xml",
}, " ")
print("$ " .. command:gsub("EMPIRICALRUN_KEY=%S+", "EMPIRICALRUN_KEY=***"))
local _, _, code = os.execute(command)
local log = fake:log()
local methods = {}
for _, r in ipairs(log) do methods[#methods + 1] = r.method end
print(("the fake saw %d requests (%s)"):format(#log, table.concat(methods, " ")))
fake:stop()
print(("demo: `empirical gate` exited with %d; JUnit report in build/demo-junit.xml"):format(code))
print([[
try it yourself: the command and the fake are installed under build/demo
  export PATH="$PWD/build/demo/bin:$PATH"
  empirical fake --speed 10 &     # prints the two variables to export
  empirical gate --environment staging --rerun-failed 1]])
os.exit(code == 0 and 0 or 1)
