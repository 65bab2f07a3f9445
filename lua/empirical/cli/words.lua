--- empirical.cli.words: the library's errors in the command's words. A
-- library error names library options (base_url, max_poll_failures, ...)
-- and advises library remedies (allow_plain_http); a command user set a flag
-- or a variable instead, and can act only on those. Everything here reads
-- the error's structured fields (kind, field, reason, variable, retryable,
-- poll_failures), never its message. Loads nothing: the client and its
-- errors are the caller's.
local commands = require("empirical.cli.commands")
local args = require("empirical.cli.args")

local M = {}

local format, floor = string.format, math.floor

--- Seconds as a duration the flags accept: 3600 -> "1h", 90 -> "1m30s", 0.5 -> "0.5s".
function M.duration_text(seconds)
  if seconds % 1 ~= 0 or seconds < 60 then return (format("%.3f", seconds):gsub("%.?0+$", "")) .. "s" end
  local h, m, s = floor(seconds / 3600), floor(seconds % 3600 / 60), seconds % 60
  return (h > 0 and (h .. "h") or "") .. (m > 0 and (m .. "m") or "") .. (s > 0 and (format("%d", s) .. "s") or "")
end

-- The library option a flag sets, and the flag's name.
local FLAG_OF = { base_url = "api-url", project_slug = "project-slug" }
local KEY_VARIABLE = "EMPIRICALRUN_KEY"

--- Where a client option's value came from, as the user knows it: the flag
-- (flag, nil), its variable (nil, variable), or nothing (a default).
function M.source_of(field, o)
  if field == "token" then return nil, KEY_VARIABLE end
  local flag = FLAG_OF[field]
  if not flag then return nil, nil end
  if o.given and o.given[flag] then return flag, nil end
  return nil, o.from_env and o.from_env[(flag:gsub("-", "_"))] or commands.FLAGS[flag].env
end

local function source(field, o)
  local flag, variable = M.source_of(field, o)
  return flag and ("--" .. flag) or variable
end

-- What is wrong with the API's address, by the reason the core gives
-- (csrc/url.c), in words that fit a flag or a variable.
local URL_PROBLEM = {
  plain_http = "is plain http to a host that is not loopback, so the API key would cross the network in clear: " ..
               "use https (plain http is accepted only to a loopback address, like the bundled fake's)",
  not_a_url = "is not a URL: write it whole, like https://api.empirical.run",
  no_host = "has no host: write it whole, like https://api.empirical.run",
  scheme = "must be an https:// URL",
  userinfo = "must not carry a user name or password (the API key goes in " .. KEY_VARIABLE .. ")",
  query = "must not have a query string",
  fragment = "must not have a fragment",
  api_path = "ends in /api: give the API's address without it, like https://api.empirical.run",
}

-- The library's own text of a field's problem: its message is "field: text"
-- (csrc/errors.h), or "field (from VARIABLE): text" (empirical.new).
local function problem_text(err)
  local message = tostring(err.message or "")
  local field = err.field and tostring(err.field)
  if field and message:sub(1, #field) == field then
    return (message:sub(#field + 1):gsub("^ %(from [%w_]+%)", ""):gsub("^: ", ""))
  end
  return message
end

--- A config error of empirical.new, for a client made from the flags `o`:
-- the line to print (without "empirical CMD: "), naming the flag or variable
-- the bad value came from. token_given: whether EMPIRICALRUN_KEY was set.
function M.config(err, o, token_given)
  local field = err.field
  if field == "token" and not token_given then
    return format("%s is not set: export the API key in it (the command takes the key from there only, " ..
                  "so it stays out of ps and shell history)", KEY_VARIABLE)
  end
  local where = source(field, o)
  if not where then
    return "the client could not be set up: " .. problem_text(err)
  end
  local problem = field == "base_url" and URL_PROBLEM[err.reason] or problem_text(err)
  return format("%s %s", where, problem)
end

--- Whether err is the end of a wait at its deadline (not one poll's own
-- timeout, which the core marks retryable).
local function deadline(err)
  return err.kind == "timeout" and err.retryable ~= true
end

--- The words for an error that ended the wait on a run (client:wait_all),
-- or nil when the library's own line is already the user's (an API answer,
-- a network failure): the deadline names --timeout, a cap on failed polls
-- --max-poll-failures. o: the flags.
function M.wait_error(err, o)
  if deadline(err) then
    local detail = err.detail
    local state = type(detail) == "table" and type(detail.testRun) == "table" and detail.testRun.state
    local limit = "--timeout " .. M.duration_text(o.timeout)
    if type(state) == "string" then return format("still %s at the deadline (%s)", state, limit) end
    return format("not ended by the deadline (%s)", limit)
  end
  if err.poll_failures and err.poll_error then
    local attempts = tonumber(err.attempts) or 1
    return format("%d polls in a row failed (--max-poll-failures %d); the last: %s%s%s", err.poll_failures,
                  o.max_poll_failures, err.request and (err.request .. ": ") or "", err.poll_error,
                  attempts > 1 and format(" (after %d attempts)", attempts) or "")
  end
end

--- Reword the errors of a wait_all in place, so that what prints them
-- (the wait command, the gate's lines, JSON, JUnit and summary) says the
-- command's words. Returns errs.
function M.reword_wait(errs, o)
  for _, err in pairs(errs or {}) do
    local text = type(err) == "table" and not err.worded and M.wait_error(err, o)
    if text then err.message, err.request, err.attempts, err.worded = text, nil, nil, true end
  end
  return errs
end

-- Unknown variables ------------------------------------------------------------

-- A name without its EMPIRICAL / EMPIRICALRUN prefix and its underscores:
-- EMPIRICAL_API_URL and EMPIRICALRUN_APIURL are both "APIURL".
local function stem(name)
  local upper = name:upper()
  local rest = upper:match("^EMPIRICALRUN(.*)$") or upper:match("^EMPIRICAL(.*)$") or upper
  return (rest:gsub("_", ""))
end

--- The variables the command reads, by name (from commands.ENVIRONMENT).
function M.known_variables()
  local known = {}
  for _, row in ipairs(commands.ENVIRONMENT) do
    for name in row.name:gmatch("[%u_][%u%d_]*") do known[#known + 1] = { name = name, also = row.also or {} } end
  end
  return known
end

--- The command's variable that `name` was probably meant to be, or nil.
function M.meant(name)
  local word = stem(name)
  local stems, by_stem = {}, {}
  for _, v in ipairs(M.known_variables()) do
    if v.name:match("^EMPIRICAL") then
      local names = { v.name }
      for _, also in ipairs(v.also) do names[#names + 1] = also end
      for _, n in ipairs(names) do
        local s = stem(n)
        if by_stem[s] == nil then stems[#stems + 1], by_stem[s] = s, v.name end
      end
    end
  end
  if by_stem[word] then return by_stem[word] end
  local near = #word >= 3 and args.closest(word, stems)
  return near and by_stem[near] or nil
end

local function not_warned(name)
  local upper = name:upper()
  for _, v in ipairs(M.known_variables()) do if v.name == name then return true end end
  for _, other in ipairs(commands.OTHER_VARIABLES) do
    if upper == other or (other:sub(-1) == "_" and upper:sub(1, #other) == other) then return true end
  end
  return false
end

--- One warning line per variable of `names` that starts with EMPIRICAL
-- (any case) and that the command does not read, sorted; never its value.
function M.unknown_variables(names)
  local lines, seen = {}, {}
  for _, name in ipairs(names) do
    if name:upper():match("^EMPIRICAL") and not seen[name] and not not_warned(name) then
      seen[name] = true
      local meant = M.meant(name)
      lines[#lines + 1] = meant
        and format("empirical: warning: %s is set, but the command reads no such variable; did you mean %s?",
                   name, meant)
        or format("empirical: warning: %s is set, but the command reads no such variable " ..
                  "(empirical --help lists the ones it reads)", name)
    end
  end
  table.sort(lines)
  return lines
end

return M
