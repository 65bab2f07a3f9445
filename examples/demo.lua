-- `make demo`: start the fake API, run examples/release.lua against it as a
-- CI job would (key and URL in the environment), stop the fake.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath

local fake = assert(require("empirical.fake").spawn { speed = 4 })
print("fake Empirical API at " .. fake.url)
local ok, _, code = os.execute(("EMPIRICALRUN_KEY=%s EMPIRICALRUN_API_URL=%s lua5.4 examples/release.lua staging")
  :format(fake.token, fake.url))
local log = fake:log()
print(("the fake saw %d requests on %d connection(s)"):format(#log, (function()
  local seen, n = {}, 0
  for _, r in ipairs(log) do if not seen[r.conn] then seen[r.conn], n = true, n + 1 end end
  return n
end)()))
fake:stop()
print(ok and "demo: release script passed" or ("demo: release script exited with " .. tostring(code)))
os.exit(ok and 0 or 1)
