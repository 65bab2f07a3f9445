#!/usr/bin/env lua5.4
-- A release script: trigger a run for this deploy with build info, a shard
-- override and metadata, then read it until it ends and report.
--
--   EMPIRICALRUN_KEY=... lua5.4 examples/release.lua staging
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../?.so;" .. package.cpath

local empirical = require("empirical")
local core = require("empirical.core")

local environment = arg[1] or "staging"
local client = assert(empirical.new { user_agent = "release-script" })  -- token from EMPIRICALRUN_KEY

local run = assert(client:trigger {
  environment = environment,
  build = {
    url = "https://" .. environment .. ".example.com",
    branch = os.getenv("GIT_BRANCH") or "main",
    commit = os.getenv("GIT_COMMIT") or "4f2c9e1",
    version = "1.8.0",
  },
  total_shards = 2,
  metadata = { deployed_by = os.getenv("USER") or "ci", pipeline = 4127 },
  environment_variables_overrides = { FEATURE_FLAGS = "new-checkout" },
})
print(("triggered run %d on %s (%s)"):format(run.id, environment, run.state))

-- Read the run every half second until it reaches a terminal state.
local function follow(id)
  while true do
    local detail = assert(client:get(id))
    local r = detail.testRun
    print(("  run %d %-8s %d/%d done, %d failed"):format(id, r.state, #detail.flattenedSummaryDetails,
                                                    r.total_count, r.failed_count))
    if r.state == "ended" or r.state == "error" or r.state == "cancelled" then return detail end
    core.sleep(0.5)
  end
end

local detail = follow(run.id)
if detail.testRun.state == "ended" and detail.testRun.failed_count > 0 then
  for _, item in ipairs(detail.flattenedSummaryDetails) do
    if item.status == "failed" then print("  failed: " .. tostring(item.name)) end
  end
  local rerun = assert(client:rerun(run.id, { only_failed = true }))
  print(("re-running the failed tests as run %d"):format(rerun.id))
  detail = follow(rerun.id)
end

local r = detail.testRun
print(("run %d %s: %d passed, %d failed, %d flaky, %d skipped of %d"):format(
  r.id, r.state, r.success_count, r.failed_count, r.flaky_count or 0, r.skipped_count or 0, r.total_count))
client:close()
os.exit(r.state == "ended" and r.failed_count == 0 and 0 or 1)
