--- empirical.poll: when to poll a run next, from what the run says about
-- itself. Pure: no I/O, the caller passes the time.
--
--   local s = assert(require("empirical.poll").new { interval = 5 })
--   -- after each poll:  s:observe(detail, now)   or   s:failed(err, now)
--   sleep(s:next(now))
--
-- A fixed poll every `interval` seconds notices a run's end interval/2 late
-- on average. This schedule makes no more requests than that fixed poll
-- would have made by the same time (a budget of one poll per interval since
-- the first), but spends them where the end can be: it estimates the end
-- from the tests done of the total and the time since the run started, polls
-- rarely (up to max_interval) while the earliest plausible end is far, and
-- spends the saved polls densely (down to min_interval) around it. With no
-- progress to go on (queued, no test done yet, no counts) it polls every
-- interval, as the fixed poll does. Retry-After is always honoured; failed
-- polls back off exponentially.
local M = {}

local floor, max, min, huge = math.floor, math.max, math.min, math.huge

M.DEFAULTS = {
  interval = 5,        -- the budget: at most one poll per interval on average
  min_interval = 1,    -- never two polls closer than this
  max_interval = 30,   -- never further apart than this while the run goes on (Retry-After may ask more)
  margin = 0.2,        -- the end is looked for this fraction of the run early or late beyond the
                       -- bounds the counts give, for tests that finish in bursts
}

-- Counts that changed fewer times than this are too few to trust.
M.MIN_CHANGES = 3
-- A far wait covers this share of the time to the earliest plausible end.
M.FAR_SHARE = 0.5

local TERMINAL = { ended = true, error = true, cancelled = true }
local NOT_STARTED = { pending = true, queued = true }

local function invalid(field, message)
  local ok, core = pcall(require, "empirical.core")
  message = field .. ": " .. message
  if ok and type(core) == "table" and core.error then return nil, core.error("invalid", message, { field = field }) end
  return nil, setmetatable({ kind = "invalid", message = message, field = field },
                           { __tostring = function(e) return "invalid: " .. e.message end })
end

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Unix seconds of an ISO 8601 timestamp ("2026-11-24T10:00:01.250Z",
-- "+02:00" offsets too), or nil.
function M.parse_time(text)
  if type(text) ~= "string" then return nil end
  local y, mo, d, h, mi, s, rest = text:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d%.?%d*)(.*)$")
  if not y then return nil end
  local offset = 0
  if rest ~= "Z" and rest ~= "z" and rest ~= "" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 + tonumber(h) * 3600
         + tonumber(mi) * 60 + tonumber(s) - offset
end

local Schedule = {}
Schedule.__index = Schedule

local function check_number(opts, name, lowest)
  local v = opts[name]
  if v == nil then return M.DEFAULTS[name] end
  if type(v) ~= "number" or v ~= v or v < lowest or v == huge then
    return nil, ("must be a finite number >= %s"):format(tostring(lowest))
  end
  return v
end

--- A schedule for one run. opts: interval, min_interval, max_interval,
-- margin (see DEFAULTS); history: durations in seconds of the project's
-- recent runs, used while the run shows no progress; wall: a function
-- returning Unix seconds (default os.time), to place run_started_at.
function M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return invalid("opts", "expected a table, got " .. type(opts)) end
  local s = setmetatable({}, Schedule)
  for _, name in ipairs { "interval", "min_interval", "max_interval", "margin" } do
    local v, problem = check_number(opts, name, name == "margin" and 0 or 0.001)
    if not v then return invalid("opts." .. name, problem) end
    s[name] = v
  end
  if opts.min_interval == nil then s.min_interval = min(s.min_interval, s.interval) end
  if opts.max_interval == nil then s.max_interval = max(s.max_interval, s.interval) end
  if s.min_interval > s.interval then return invalid("opts.min_interval", "must not exceed interval") end
  if s.max_interval < s.interval then return invalid("opts.max_interval", "must not be below interval") end
  if opts.wall ~= nil and type(opts.wall) ~= "function" then
    return invalid("opts.wall", "expected a function, got " .. type(opts.wall))
  end
  s.wall = opts.wall or os.time
  if opts.history ~= nil then
    if type(opts.history) ~= "table" then return invalid("opts.history", "expected a list of seconds") end
    local shortest, longest = huge, 0
    for i, d in ipairs(opts.history) do
      if type(d) ~= "number" or d ~= d or d <= 0 or d == huge then
        return invalid(("opts.history[%d]"):format(i), "must be a positive number of seconds")
      end
      shortest, longest = min(shortest, d), max(longest, d)
    end
    if longest > 0 then s.history = { shortest = shortest, longest = longest } end
  end
  s.polls, s.failures, s.samples = 0, 0, {}
  return s
end

-- Count a poll made at `now`: the budget starts at the first.
local function count_poll(s, now)
  if s.first == nil then s.first = now end
  s.polls, s.last = s.polls + 1, now
end

local function count(v) return type(v) == "number" and v >= 0 and v or nil end

--- After a successful poll: detail is the get's result ({testRun = ...}) or
-- its testRun.
function Schedule:observe(detail, now)
  count_poll(self, now)
  self.failures, self.retry_at = 0, nil
  local run = type(detail) == "table" and (type(detail.testRun) == "table" and detail.testRun or detail) or {}
  local state = run.state
  self.state = state
  if NOT_STARTED[state] then
    self.seen_waiting = now
    return
  end
  if state == "started" and self.first_started == nil then self.first_started = now end
  -- When the run started, in this clock: from run_started_at on the wall clock,
  -- kept between the last poll that saw it waiting and the first that saw it started.
  local started = M.parse_time(run.run_started_at)
  local at
  if started then at = now - max(0, self.wall() - started) end
  if self.first_started then
    if at == nil then at = self.seen_waiting and (self.seen_waiting + self.first_started) / 2 end
    if at then
      at = min(at, self.first_started)
      if self.seen_waiting then at = max(at, self.seen_waiting) end
    end
  end
  self.started_at = at or self.started_at
  local total = count(run.total_count)
  local done
  for _, name in ipairs { "success_count", "failed_count", "skipped_count" } do
    local c = count(run[name])
    if c then done = (done or 0) + c end
  end
  if total and total > 0 and done then
    done = min(done, total)
    if total ~= self.total then self.samples = {} end
    self.total, self.done = total, done
    if state == "started" then
      local samples = self.samples
      samples[#samples + 1] = { t = now, done = done }
      if #samples > 64 then table.remove(samples, 1) end
    end
  else
    self.total, self.done = nil, nil
  end
end

--- After a failed poll. err.retry_after (seconds), when the server sent
-- Retry-After, is honoured even beyond max_interval.
function Schedule:failed(err, now)
  count_poll(self, now)
  self.failures = self.failures + 1
  local after = type(err) == "table" and tonumber(err.retry_after) or nil
  self.retry_at = after and after > 0 and now + after or nil
end

--- The earliest and latest plausible end of the run, in the caller's clock,
-- or nil when there is nothing to go on.
function Schedule:estimate(now)
  local S = self.started_at
  if self.state == nil or NOT_STARTED[self.state] or TERMINAL[self.state] or S == nil then return nil end
  local n, d, m = self.total, self.done, self.margin
  now = max(now or self.last, S)
  if n and d and d >= n then return now, now + 2 * self.interval end   -- all tests done: the end is near
  if n and d and d > 0 then
    -- With d of n done e seconds after the start, a steady run takes between
    -- n*e/(d+1) and n*e/d: the latest poll's counts bound the end so. When
    -- the polls' bounds disagree, tests finish in bursts and the counts say
    -- little; then, and until they changed a few times, poll as a fixed poll.
    local lo, hi, changes, seen = 0, huge, 0, 0
    local bound_lo, bound_hi
    for _, p in ipairs(self.samples) do
      local e = p.t - S
      if p.done > 0 and e > 0 then
        bound_lo, bound_hi = n * e / (p.done + 1) * (1 - m), n * e / p.done * (1 + m)
        lo, hi = max(lo, bound_lo), min(hi, bound_hi)
      end
      if p.done ~= seen then changes, seen = changes + 1, p.done end
    end
    if lo > hi then self.irregular = true end
    if self.irregular or changes < M.MIN_CHANGES or not bound_lo then return nil end
    return max(now, S + bound_lo), max(now, S + bound_hi)
  end
  local h = self.history
  if h then return max(now, S + h.shortest * (1 - m)), max(now, S + h.longest * (1 + m)) end
  return nil
end

--- Seconds until the next poll (0: now).
function Schedule:next(now)
  local last = self.last
  if last == nil then return 0 end
  if self.failures > 0 then
    local wait = min(self.max_interval, self.interval * 2 ^ (self.failures - 1))
    local at = last + wait
    if self.retry_at then at = max(at, self.retry_at) end
    return max(0, at - now)
  end
  if TERMINAL[self.state] then return 0 end
  local at
  local low, high = self:estimate(last)
  if low == nil then
    at = last + self.interval
  elseif (low - last) * M.FAR_SHARE >= self.interval then
    at = last + min((low - last) * M.FAR_SHARE, self.max_interval)   -- far: close in on the earliest end
  else
    -- Near: spread the spare polls and those the budget grants meanwhile
    -- over what is left of the window.
    local window = max(high - last, self.interval)
    local spare = max(0, 1 + floor((last - self.first) / self.interval) - self.polls)
    local spacing = window / (spare + window / self.interval)
    at = last + max(self.min_interval, min(self.interval, spacing))
  end
  -- The budget (the spacing above keeps to it already; this guards it) and the floor.
  at = max(at, self.first + self.polls * self.interval, last + self.min_interval)
  return max(0, at - now)
end

return M
