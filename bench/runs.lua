-- Simulated runs, for the polling schedule's spec and the latency bench:
-- when each test of a run finishes, steady or in bursts, and a run detail
-- at any moment. Deterministic for a seed on every Lua (Park-Miller).
local M = {}

M.PATTERNS = { "steady", "bursty" }

--- A random source: rng() in [0, 1).
function M.rng(seed)
  local x = seed % 2147483646 + 1
  local function rng()
    x = x * 16807 % 2147483647
    return (x - 1) / 2147483646
  end
  for _ = 1, 5 do rng() end   -- small seeds start small
  return rng
end

--- Sorted finish times in (0, duration] of n tests; the last is duration.
-- steady: evenly spaced. bursty: 3 to 10 bursts at irregular gaps (0.2x to
-- 1.8x the mean), each finishing an irregular share of the tests (0.3x to
-- 1.7x the mean), as shards reporting in batches do.
function M.completions(pattern, n, duration, rng)
  local times = {}
  if pattern == "steady" then
    for i = 1, n do times[i] = duration * i / n end
    return times
  end
  local bursts = math.min(n, 3 + math.floor(rng() * 8))
  local gaps, sizes, gap_sum, size_sum = {}, {}, 0, 0
  for j = 1, bursts do
    gaps[j], sizes[j] = 0.2 + 1.6 * rng(), 0.3 + 1.4 * rng()
    gap_sum, size_sum = gap_sum + gaps[j], size_sum + sizes[j]
  end
  local at, given = 0, 0
  for j = 1, bursts do
    at = at + duration * gaps[j] / gap_sum
    local share = math.floor(n * sizes[j] / size_sum + given + 0.5)
    local upto = j == bursts and n or math.max(given + 1, math.min(n - (bursts - j), share))
    for i = given + 1, upto do times[i] = j == bursts and duration or at end
    given = upto
  end
  return times
end

local function iso(unix)
  local whole = math.floor(unix)
  return os.date("!%Y-%m-%dT%H:%M:%S", whole) .. (".%03dZ"):format(math.floor((unix - whole) * 1000))
end

--- A run created at time 0 (Unix time wall0), queued for `queue` seconds,
-- whose tests finish at queue + completions[i], ending with the last.
-- run:detail(t) is its get's result at t; run.ends_at the end.
function M.run(completions, queue, wall0)
  local n = #completions
  local run = { ends_at = queue + completions[n] }
  function run.detail(_, t)
    local state, done = "queued", 0
    if t >= run.ends_at then state, done = "ended", n
    elseif t >= queue then
      state = "started"
      while done < n and queue + completions[done + 1] <= t do done = done + 1 end
    end
    return { testRun = { id = 1, state = state, total_count = n, success_count = done, failed_count = 0,
                         skipped_count = 0, created_at = iso(wall0),
                         run_started_at = t >= queue and iso(wall0 + queue) or nil } }
  end
  return run
end

return M
