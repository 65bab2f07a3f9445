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
local DEFAULT_API_URL = "https://api.empirical.run"   -- empirical.DEFAULT_BASE_URL: this file loads no C

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

-- Trigger fields ---------------------------------------------------------------

--- A flag's value as a person would type it back: as is when it is plain,
-- else in single quotes (control bytes shown as ?), cut when long.
function M.shown(value)
  local text = tostring(value)
  if #text > 60 then text = text:sub(1, 57):gsub("[\192-\255][\128-\191]*$", "") .. "..." end
  text = text:gsub("%c", "?")
  if text ~= "" and text:match("^[%w@%%+=:,./_-]+$") then return text end
  return "'" .. text:gsub("'", "'\\''") .. "'"
end

-- The build flags, by the build field they set.
local BUILD_FLAG = { url = "build-url", commit = "commit", branch = "branch", version = "build-version" }
local BUILD_ORDER = { "build-url", "commit", "branch", "build-version" }

-- A trigger field (the start of err.field) and the flag that sets it: the
-- flag with the value at fault, from the params that were checked.
local FIELD_FLAG = {
  environment = function(params) return "--environment " .. M.shown(params.environment) end,
  total_shards = function(params) return "--shards " .. M.shown(params.total_shards) end,
  branch = function(params) return "--test-branch " .. M.shown(params.branch) end,
  tags = function(params, index)
    local tag = index and type(params.tags) == "table" and params.tags[index]
    return tag and ("--tag " .. M.shown(tag)) or "--tag"
  end,
  environment_variables_overrides = function(params, index)
    local list = params.environment_variables_overrides
    local pair = index and type(list) == "table" and list[index]
    if type(pair) ~= "table" then return "--env" end
    return "--env " .. M.shown(tostring(pair.name) .. "=" .. tostring(pair.value))
  end,
  metadata = function(params, _, key)
    local value = key and type(params.metadata) == "table" and params.metadata[key]
    return value and ("--meta " .. M.shown(key .. "=" .. tostring(value))) or "--meta"
  end,
  build = function(params, _, key)
    local flag = key and BUILD_FLAG[key]
    local value = flag and type(params.build) == "table" and params.build[key]
    if value and key == "url" then value = args.masked_url(value) end
    return flag and ("--" .. flag .. (value and (" " .. M.shown(value)) or "")) or
           "--build-url/--commit/--branch/--build-version"
  end,
}

--- An invalid trigger (empirical.encode("trigger", params)'s err, params
-- from the flags `o`) in the command's words: the line to print (without
-- "empirical CMD: ") and the flag at fault, read from err.field, never from
-- the message. nil when the field is none the flags set.
function M.trigger_error(err, params, o)
  local field = type(err) == "table" and err.field and tostring(err.field)
  if not field then return nil end
  local head, index, key = field:match("^([%a_]+)%[(%d+)%]"), nil, nil
  if head then index = tonumber(field:match("^[%a_]+%[(%d+)%]"))
  else head, key = field:match("^([%a_]+)%.?(.*)$") end
  if key == "" then key = nil end
  local flag_of = head and FIELD_FLAG[head]
  if not flag_of then return nil end
  if head == "branch" and type(params.build) == "table" and o.test_branch and o.test_branch ~= "" then
    local given = {}
    for _, name in ipairs(BUILD_ORDER) do
      if o[(name:gsub("-", "_"))] ~= nil then given[#given + 1] = "--" .. name end
    end
    return format("--test-branch cannot be used together with %s; pick one (--test-branch picks the test " ..
                  "repository's branch, %s the deployment under test)", table.concat(given, ", "),
                  #given > 1 and "those flags describe" or (given[1] or "the build flag") .. " describes"),
           "test-branch"
  end
  local flag = flag_of(params, index, key)
  return format("%s: %s", flag, problem_text(err)), flag:match("^%-%-([%w-]+)")
end

-- Unreachable ------------------------------------------------------------------

--- The words for a call that got no answer at all (a transport error: the
-- host did not resolve, the port refused, ...) while the API has not
-- answered any call of this command yet: where the address came from, and
-- what to check. nil for any other error (an answer, a run that may exist).
function M.unreachable(err, o)
  if type(err) ~= "table" or err.kind ~= "transport" or err.status ~= nil or err.run_may_exist or err.worded then
    return nil
  end
  local url, where = o.api_url, o.given and o.given["api-url"] and "--api-url" or (o.from_env or {}).api_url
  local check = "check this machine's network and DNS"
  if where then
    check = format("check that %s is the API's address (like https://api.empirical.run), and that this machine " ..
                   "can resolve and reach its host", where)
  else
    url, where = DEFAULT_API_URL, "the default; --api-url or EMPIRICALRUN_API_URL sets another"
  end
  local attempts = tonumber(err.attempts) or 1
  return format("could not reach the API at %s (%s): %s (%s%s); %s", tostring(url), where, tostring(err.message),
                err.request and (err.request .. ", ") or "",
                attempts > 1 and format("%d attempts", attempts) or "1 attempt", check)
end

--- Reword, in place, the errors of calls none of which the API answered
-- (see M.unreachable). Returns errs.
function M.reword_unreachable(errs, o)
  for _, err in pairs(errs or {}) do
    local text = M.unreachable(err, o)
    if text then err.message, err.request, err.attempts, err.worded = text, nil, nil, true end
  end
  return errs
end

--- A call that may have created a run (err.run_may_exist): its closing
-- advice (err.advice, the core's words for any caller) in the command's:
-- `empirical list`. In place; returns err.
function M.reword_may_exist(err)
  if type(err) ~= "table" or not err.run_may_exist or type(err.advice) ~= "string" then return err end
  local message, advice = tostring(err.message), err.advice
  if message:sub(-#advice) == advice then
    err.advice = require("empirical.cli.render").FIND_RUN .. " before triggering again"
    err.message = message:sub(1, -#advice - 1) .. err.advice
  end
  return err
end

-- Unknown variables ------------------------------------------------------------

-- A name without its EMPIRICAL / EMPIRICALRUN prefix (also written
-- EMPIRICAL_RUN, after the vendor's domain empirical.run) and its
-- underscores: EMPIRICAL_API_URL, EMPIRICALRUN_APIURL and
-- EMPIRICAL_RUN_API_URL are all "APIURL".
local function stem(name)
  local upper = name:upper()
  local rest = upper:match("^EMPIRICAL_?RUN_?(.*)$") or upper:match("^EMPIRICAL(.*)$") or upper
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
