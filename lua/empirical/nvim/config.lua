--- The plugin's settings: defaults, then the `vim.g.empirical` table, then
-- setup{}; each checked by name and type. doc/empirical.txt describes them
-- (`:help empirical-config`); the spec checks that every one is there.
local M = {}

-- name, default, accepted types, what it is.
M.OPTIONS = {
  { "token", nil, "string|function", "the API key, or a function returning it; nil: $EMPIRICALRUN_KEY" },
  { "base_url", nil, "string", "nil: $EMPIRICALRUN_API_URL, else https://api.empirical.run" },
  { "project", nil, "string|number", "project slug (x-project-slug) or id (x-project-id)" },
  { "environment", nil, "string", "the environment of :Empirical run without one" },
  { "environments", {}, "table", "more environment slugs for :Empirical run's completion" },
  { "trigger", {}, "table", "fields every trigger starts from (build, branch, metadata...)" },
  { "interval", 5, "number", "seconds between two reads of a followed run" },
  { "timeout", 3600, "number", "seconds after which a run is no longer followed" },
  { "test_root", nil, "string", "the directory report paths are relative to; nil: the working directory" },
  { "flaky", true, "boolean", "flaky tests go into the quickfix list too, as warnings" },
  { "open_quickfix", false, "boolean", ":copen when a report fills the quickfix list" },
  { "poll_ms", 50, "number", "milliseconds between two polls of a request in flight" },
  { "client", {}, "table", "more options of empirical.new (timeout, ca_file, proxy, retries...)" },
}

local ROW = {}
for _, row in ipairs(M.OPTIONS) do ROW[row[1]] = row end

local POSITIVE = { interval = true, timeout = true, poll_ms = true }

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

local function closest(name)
  local best, best_score
  for _, row in ipairs(M.OPTIONS) do
    local n, score = row[1], 0
    for i = 1, math.min(#n, #name) do if n:sub(i, i) == name:sub(i, i) then score = score + 1 end end
    if score > #n / 2 and (not best_score or score > best_score) then best, best_score = n, score end
  end
  return best
end

-- Check one source of settings; `from` names it in messages.
local function check(options, from)
  if options == nil then return true end
  if type(options) ~= "table" then return nil, ("%s: expected a table, got %s"):format(from, type(options)) end
  for name, value in pairs(options) do
    local row = ROW[name]
    if not row then
      local guess = type(name) == "string" and closest(name)
      local hint = guess and (" (did you mean %s?)"):format(guess) or ""
      return nil, ("%s: unknown option %s%s"):format(from, tostring(name), hint)
    end
    if not ("|" .. row[3] .. "|"):find("|" .. type(value) .. "|", 1, true) then
      return nil, ("%s.%s: expected %s, got %s"):format(from, name, row[3]:gsub("|", " or "), type(value))
    end
    if POSITIVE[name] and not (value > 0 and value < math.huge) then
      return nil, ("%s.%s: expected a positive number, got %s"):format(from, name, tostring(value))
    end
  end
  return true
end

M.check = check

--- The settings in force: defaults, vim.g.empirical, then `given` (setup's
-- table); or nil and what is wrong.
function M.resolve(given)
  local out = {}
  for _, row in ipairs(M.OPTIONS) do out[row[1]] = copy(row[2]) end
  for _, source in ipairs { { vim.g.empirical, "vim.g.empirical" }, { given, "setup" } } do
    local ok, problem = check(source[1], source[2])
    if not ok then return nil, problem end
    for k, v in pairs(source[1] or {}) do out[k] = copy(v) end
  end
  return out
end

local function env(name)
  local v = os.getenv(name)
  if v == "" then return nil end
  return v
end

--- The API key and where it comes from ("setup", "EMPIRICALRUN_KEY"), or
-- nil and why. Never printed.
function M.token(cfg)
  local token = cfg.token
  if type(token) == "function" then
    local ok, value = pcall(token)
    if not ok then return nil, "the token function raised: " .. tostring(value) end
    if type(value) ~= "string" or value == "" then
      return nil, "the token function returned " .. (value == "" and "an empty string" or type(value))
    end
    return value, "the token function"
  end
  if token ~= nil then return token, "the token option" end
  token = env("EMPIRICALRUN_KEY")
  if token then return token, "$EMPIRICALRUN_KEY" end
  return nil, "no API key: set $EMPIRICALRUN_KEY, or the token option (:help empirical-config)"
end

--- The API's base URL the client uses.
function M.base_url(cfg)
  return cfg.base_url or env("EMPIRICALRUN_API_URL") or "https://api.empirical.run"
end

--- Options for empirical.new, or nil, err.
function M.client_options(cfg)
  local token, where = M.token(cfg)
  if not token then return nil, where end
  local opts = { user_agent = "nvim" }
  for k, v in pairs(cfg.client or {}) do opts[k] = v end
  opts.token, opts.base_url = token, M.base_url(cfg)
  if type(cfg.project) == "number" then opts.project_id = cfg.project
  elseif cfg.project then opts.project_slug = cfg.project end
  return opts
end

return M
