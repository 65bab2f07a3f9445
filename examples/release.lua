#!/usr/bin/env lua5.4
-- The library in a release script: a base trigger per environment, layered
-- with this release's build info, shard override and metadata; wait for the
-- run; re-run only the failed tests once; report and exit 0 or 1.
-- (`empirical gate`, bin/empirical, is the full command with flags and reports.)
--
--   EMPIRICALRUN_KEY=... lua5.4 examples/release.lua staging
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../?.so;" .. package.cpath

local empirical = require("empirical")

local BASE = {
  staging = { environment = "staging", tags = { "@smoke" }, environment_variables_overrides = { REGION = "eu" } },
  production = { environment = "production", tags = { "@smoke", "@critical" }, total_shards = 2 },
}

local environment = arg[1] or "staging"
local client = assert(empirical.new { user_agent = "release-script" })  -- key from EMPIRICALRUN_KEY

local params = assert(empirical.compose(BASE[environment] or { environment = environment }, {
  build = {
    url = "https://" .. environment .. ".example.com",
    branch = os.getenv("GIT_BRANCH") or "main",
    commit = os.getenv("GIT_COMMIT") or "4f2c9e1",
    version = "1.8.0",
  },
  total_shards = 4,
  metadata = { deployed_by = os.getenv("USER") or "ci", pipeline = 4127 },
  environment_variables_overrides = { FEATURE_FLAGS = "new-checkout" },
}))

local run = assert(client:trigger(params))
print(("triggered run %d on %s"):format(run.id, environment))

local wait = { interval = tonumber(os.getenv("POLL_INTERVAL")) or 5, timeout = 1800 }
local detail = assert(client:wait(run.id, wait))
print(empirical.summary(detail))

if empirical.verdict(detail) == "failed" then
  local rerun = assert(client:rerun(run.id, { only_failed = true }))
  print(("re-running the failed tests as run %d"):format(rerun.id))
  detail = assert(client:wait(rerun.id, wait))
  print(empirical.summary(detail))
end

client:close()
os.exit(empirical.verdict(detail) == "passed" and 0 or 1)
