-- `make demo`: start the fake API and run the release gate against it as a
-- CI job would (key and URL in the environment). The fake's default
-- scenario fails one test that a re-run fixes, so the gate shows the whole
-- path: trigger, progress, failures, a re-run of the failed tests, exit 0.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath

local fake = assert(require("empirical.fake").spawn { speed = 2 })
print("fake Empirical API at " .. fake.url)
os.execute("mkdir -p build")
local command = table.concat({
  ("EMPIRICALRUN_KEY=%s EMPIRICALRUN_API_URL=%s"):format(fake.token, fake.url),
  "lua5.4 examples/release_gate.lua --environment staging",
  "--build-url https://staging.example.com --commit 4f2c9e1d --branch main",
  "--shards 2 --meta pipeline=4127 --env FEATURE_FLAGS=new-checkout",
  "--timeout 2m --interval 0.5 --rerun-failed 1 --junit build/demo-junit.xml",
}, " ")
print("$ " .. command:gsub("EMPIRICALRUN_KEY=%S+", "EMPIRICALRUN_KEY=***"))
local ok, _, code = os.execute(command)
local log = fake:log()
local methods = {}
for _, r in ipairs(log) do methods[#methods + 1] = r.method end
print(("the fake saw %d requests (%s)"):format(#log, table.concat(methods, " ")))
fake:stop()
print(ok and "demo: the release gate passed (exit 0); JUnit report in build/demo-junit.xml"
         or ("demo: the release gate exited with " .. tostring(code)))
os.exit(ok and 0 or 1)
