-- The JSON the benchmark's nginx serves, and the decode figure reads.
local cjson = require("cjson")

local M = {}

M.CREATED = cjson.encode { data = { trigger = { success = true },
  test_run = { id = 2, state = "queued", test_run_branch = "main", created_at = "2026-11-24T10:00:00.000Z" } } }

--- A run detail with `items` summary items (10,000 make about 2 MB).
function M.detail(items)
  local list = {}
  for i = 1, items do
    list[i] = { name = ("suite %d > test number %d does something useful"):format(i % 50, i),
                status = i % 97 == 0 and "failed" or (i % 31 == 0 and "flaky" or "passed"),
                pw_test_id = ("pw-%08d"):format(i), slug = ("suite-%d-test-%d"):format(i % 50, i),
                duration = 1200 + i % 300, retries = cjson.null, tags = { "@smoke", "@e2e" },
                error = i % 97 == 0 and "expect(locator).toBeVisible() failed after 5000 ms" or cjson.null,
                file = ("tests/suite-%d.spec.ts"):format(i % 50), project = "chromium" }
  end
  return cjson.encode { data = { test_run = {
    project = { id = 1, name = "Bench project", repo_name = "acme/e2e" },
    testRun = { id = 1, state = "ended", total_count = items, success_count = items, failed_count = 0,
                skipped_count = 0, flaky_count = 0, duration = 61000, test_run_branch = "main",
                environment_slug = "staging", environment_name = "Staging", build_url = "https://staging.example.com",
                build_branch = "main", commit = "4f2c9e1d", created_at = "2026-11-24T10:00:00.000Z",
                test_run_head_sha = "4f2c9e1d", run_started_at = "2026-11-24T10:00:01.000Z",
                run_ended_at = "2026-11-24T10:01:02.000Z", summary_url = cjson.null },
    flattenedSummaryDetails = list,
  } } }
end

--- This process's resident set and its peak, in KiB (/proc/self/status).
function M.rss()
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("*a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+)")), tonumber(status:match("VmHWM:%s*(%d+)"))
end

return M
