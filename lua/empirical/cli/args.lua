--- empirical.cli.args: argv -> options, by the tables of empirical.cli.commands.
--
-- parse(command, argv, first, getenv) -> opts, or nil, message, source:
-- source names what the message is about as the user set it ({flag =
-- "shards"} or {variable = "EMPIRICALRUN_DASHBOARD_URL"}; {} when neither,
-- like a missing positional), for --json's error document. opts holds
-- each flag of the command under its name with "-" as "_" (lists as arrays,
-- switches as booleans, values as checked), opts.args the positionals, and
-- opts.given[name] for the flags given on the line. Rules: `--flag value` or
-- `--flag=value`; a value never starts with "--" unless written
-- `--flag=--value`; `--` ends the flags; an unknown flag gets "did you mean";
-- --environment and --run refuse a value given twice (one run each).
local commands = require("empirical.cli.commands")

local M = {}

local floor, huge = math.floor, math.huge

--- Edit distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The closest of names to word, if it is close enough to be a likely typo.
function M.closest(word, names)
  local best, best_d
  for _, name in ipairs(names) do
    local d = distance(word, name)
    if name:sub(1, #word) == word and #word >= 3 then d = math.min(d, 1) end
    if not best_d or d < best_d then best, best_d = name, d end
  end
  if best and best_d <= math.max(1, math.min(3, floor(#word / 3))) then return best end
end

--- A URL as it may be echoed in an error: its user information masked
-- (https://me:secret@host -> https://me:***@host, https://token@host ->
-- https://***@host), anything else as is.
function M.masked_url(text)
  text = tostring(text)
  local head, userinfo, tail = text:match("^(%a[%w+.-]*://)([^/?#]*)@(.*)$")
  if not head then return text end
  local user = userinfo:match("^([^:]*):")
  return head .. (user and (user .. ":***") or "***") .. "@" .. tail
end

local UNIT = { s = 1, m = 60, h = 3600 }

--- "90", "90s", "30m", "1h30m", "2.5m" -> seconds (> 0), or nil.
function M.duration(text)
  if text:match("^%d+%.?%d*$") then
    local n = tonumber(text)
    return n and n > 0 and n < huge and n or nil
  end
  local total, rest = 0, text
  while rest ~= "" do
    local n, unit, tail = rest:match("^(%d+%.?%d*)([smh])(.*)$")
    if not n then return nil end
    total, rest = total + tonumber(n) * UNIT[unit], tail
  end
  return total > 0 and total < huge and total or nil
end

local function whole(text, min)
  if not text:match("^%d+$") then return nil end
  local n = math.tointeger and math.tointeger(tonumber(text)) or tonumber(text)
  if not n or n < min or n > 2 ^ 53 then return nil end
  return n
end

-- What tonumber reads as a decimal: 5, .5, 1e2 (not hex, inf, nan or a
-- sign), or nil.
local function decimal(v)
  return v:match("^[%d.]+[eE]?[+-]?%d*$") and v:match("%d") and tonumber(v) or nil
end

-- Each check: value text -> value, or nil and what was expected (or nil,
-- nil and the whole problem, when "is not ..." does not say it).
local CHECKS = {
  text = function(v) return v end,
  duration = function(v)
    return M.duration(v), "a positive duration like 90, 90s, 30m or 1h30m"
  end,
  seconds = function(v, flag)
    local n = decimal(v)
    local min = flag.min or 0
    if n and n >= min and n > 0 and n < huge then return n end
    if n and flag.min and n < min then return nil, nil, ("is below the %s s minimum"):format(flag.min) end
    return nil, flag.min and ("a number of seconds, at least " .. flag.min) or "a positive number of seconds"
  end,
  -- A rate (fake --speed): how many times faster than real time.
  rate = function(v)
    local n = decimal(v)
    if n and n > 0 and n < huge then return n end
    return nil, "a positive rate, like 10 (ten times faster)"
  end,
  template = function(v)
    local ok = v:lower():match("^https?://[^/?#]") and v:find("{id}", 1, true)
    for word in v:gmatch("{([^}]*)}") do if word ~= "id" and word ~= "project" then ok = false end end
    return ok and v or nil, "an http(s) link template with {id} (and {project} if you like), " ..
                            "like https://dash.empirical.run/{project}/test-runs/{id}"
  end,
  count = function(v) return whole(v, 0), "a whole number (0 or more)" end,
  positive = function(v) return whole(v, 1), "a whole number from 1" end,
  id = function(v) return whole(v, 1), "a run id (digits)" end,
  pair = function(v, flag)
    local key, value = v:match("^([^=]+)=(.*)$")
    return key and { key, value } or nil, flag.arg
  end,
  choice = function(v, flag)
    for _, c in ipairs(flag.choices) do if c == v then return v end end
    local near = M.closest(v, flag.choices)
    return nil, table.concat(flag.choices, ", ") .. (near and ("; did you mean " .. near .. "?") or "")
  end,
}

-- A value as echoed in an error: a link's user information masked.
local ECHO = { template = M.masked_url }

-- where: what the value came from, variable or nil (the flag --name).
-- Returns the value, or nil, the problem and its source.
local function check(flag, name, text, variable)
  local how = flag.check or "text"
  local value, expected, problem = CHECKS[how](text, flag)
  if value ~= nil then return value end
  local shown = (ECHO[how] or tostring)(text)
  return nil, ("%s: '%s' %s"):format(variable or ("--" .. name), shown, problem or ("is not " .. expected)),
         variable and { variable = variable } or { flag = name }
end

-- The poll interval is spent within the deadline: a longer one would poll
-- once, at the end. Only an interval that was given is refused; the
-- default is lowered to the deadline. texts: the values as written, by flag name.
local function check_interval(o, texts)
  if not (o.interval and o.timeout and o.interval > o.timeout) then return end
  if not o.given.interval then
    o.interval = o.timeout
    return
  end
  return ("--interval: '%s' is longer than the deadline (--timeout %s, %s s): at most %s"):format(
    texts.interval, texts.timeout, ("%.15g"):format(o.timeout), ("%.15g"):format(o.timeout))
end

-- The list flags whose values name one run each: a value given twice would
-- trigger or follow the same thing twice.
local UNIQUE = { environment = true, run = true }

--- The flags of a command: name -> flag row (with this command's help).
function M.flags_of(command)
  local out, order = {}, {}
  for _, entry in ipairs(command.flags) do
    local name = type(entry) == "table" and entry[1] or entry
    local row = assert(commands.FLAGS[name], name)
    if type(entry) == "table" then
      local copy = {}
      for k, v in pairs(row) do copy[k] = v end
      for k, v in pairs(entry) do if type(k) == "string" then copy[k] = v end end
      row = copy
    end
    out[name], order[#order + 1] = row, name
  end
  return out, order
end

local function key(name) return (name:gsub("-", "_")) end

local NEEDS = {
  environment = function(o) return #o.environment > 0 or "give --environment SLUG" end,
  environment_or_run = function(o)
    return (#o.environment > 0 or #o.run > 0) or "give --environment SLUG, or --run ID"
  end,
}

function M.parse(command, argv, first, getenv)
  getenv = getenv or os.getenv
  local flags, order = M.flags_of(command)
  local o = { args = {}, given = {}, from_env = {} }   -- from_env: option key -> the variable it came from
  local texts = {}
  for _, name in ipairs(order) do if flags[name].kind == "list" then o[key(name)] = {} end end
  local i, only_args = first or 1, false
  while i <= #argv do
    local word = argv[i]
    if word == "-h" and not only_args then word = "--help" end
    if only_args or word == "-" or word:sub(1, 1) ~= "-" or word:match("^%-%d") and command.args then
      o.args[#o.args + 1] = word
    elseif word == "--" then
      only_args = true
    else
      local name, inline = word:match("^%-%-([^=]+)=(.*)$")
      name = name or word:match("^%-%-(.+)$") or word:match("^%-(.+)$")
      local flag = flags[name]
      if not flag or not word:match("^%-%-") then
        local near = M.closest(name, order)
        local hint = near and ("; did you mean --" .. near .. "?") or ""
        return nil, ("unknown flag %s%s"):format(word:match("^[^=]*"), hint), { flag = name }
      end
      local source = { flag = name }
      if flag.kind == "switch" then
        if inline then return nil, ("--%s takes no value"):format(name), source end
        if o.given[name] then return nil, ("--%s given twice"):format(name), source end
        o[key(name)] = true
      else
        local text = inline
        if not text then
          text = argv[i + 1]
          if text == nil or text:match("^%-%-") then
            return nil, ("--%s needs a value (%s)%s"):format(name, flag.arg,
              text and (" and '%s' is a flag; write --%s=%s if that is the value"):format(text, name, text) or ""),
              source
          end
          i = i + 1
        end
        local value, problem, from = check(flag, name, text)
        if value == nil then return nil, problem, from end
        texts[name] = text
        if flag.kind == "list" then
          local list = o[key(name)]
          if UNIQUE[name] then
            for _, seen in ipairs(list) do
              if seen == value then
                return nil, ("--%s %s given twice"):format(name, require("empirical.cli.words").shown(text)),
                       source
              end
            end
          end
          list[#list + 1] = value
        elseif o.given[name] then
          return nil, ("--%s given twice"):format(name), source
        else
          o[key(name)] = value
        end
      end
      o.given[name] = true
    end
    i = i + 1
  end
  if o.help then return o end
  -- Unset flags: their variable (an empty one counts as unset), then their default.
  for _, name in ipairs(order) do
    local flag = flags[name]
    if not o.given[name] and flag.kind == "value" then
      local from_env = flag.env and getenv(flag.env)
      if from_env == "" then from_env = nil end
      local text = from_env or flag.default
      if text then
        local value, problem, from = check(flag, name, text, from_env and flag.env)
        if value == nil then return nil, problem, from end
        texts[name] = text
        o[key(name)] = value
        if from_env then o.from_env[key(name)] = flag.env end
      end
    elseif not o.given[name] and flag.kind == "switch" then
      o[key(name)] = false
    end
  end
  local too_long = check_interval(o, texts)
  if too_long then return nil, too_long, { flag = "interval" } end
  local spec = command.args
  if not spec and #o.args > 0 then return nil, ("unexpected argument '%s'"):format(o.args[1]), {} end
  if spec then
    if #o.args < (spec.min or 0) then return nil, ("give %s"):format(spec.arg), {} end
    if spec.max and #o.args > spec.max then
      return nil, ("unexpected argument '%s'"):format(o.args[spec.max + 1]), {}
    end
    local seen = {}
    for n, text in ipairs(o.args) do
      local value, expected = CHECKS[spec.check](text, spec)
      if value == nil then return nil, ("%s: '%s' is not %s"):format(spec.arg, text, expected), {} end
      if seen[value] then return nil, ("%s %s given twice"):format(spec.arg, text), {} end
      seen[value], o.args[n] = true, value
    end
  end
  if command.needs then
    local ok = NEEDS[command.needs](o)
    if ok ~= true then return nil, ok, command.needs == "environment" and { flag = "environment" } or {} end
  end
  return o
end

return M
