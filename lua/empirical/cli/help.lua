--- empirical.cli.help: help text and the README's tables, from the data in
-- empirical.cli.commands. Loads nothing else (help never loads libcurl).
local commands = require("empirical.cli.commands")
local args = require("empirical.cli.args")

local M = {}

local WIDTH = 80

-- Words of text on lines of at most WIDTH, the first after `lead`, the
-- rest indented by `indent` spaces.
local function wrap(lead, text, indent)
  local lines, line = {}, lead
  for word in text:gmatch("%S+") do
    if #line + 1 + #word > WIDTH and #line > indent then
      lines[#lines + 1] = line
      line = (" "):rep(indent) .. word
    elseif line:match("^%s*$") and #line <= indent then
      line = line .. (" "):rep(math.max(0, indent - #line)) .. word
    else
      line = line .. (line:match("%S$") and " " or "") .. word
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function flag_label(name, flag)
  return "--" .. name .. (flag.kind ~= "switch" and (" " .. flag.arg) or "")
end

local function flag_help(flag)
  local text = flag.help
  if flag.default then text = text .. " (default " .. flag.default .. ")" end
  if flag.env then text = text .. " [$" .. flag.env .. "]" end
  return text
end

-- The exit codes: the gate's (commands.EXIT), or a command's own view.
local function exit_lines(out, rows, title)
  out[#out + 1] = title or "EXIT CODES"
  for _, row in ipairs(rows) do
    out[#out + 1] = wrap(("  %-4d"):format(row.code), row.meaning, 6)
  end
end

local function env_lines(out)
  out[#out + 1] = "ENVIRONMENT"
  for _, row in ipairs(commands.ENVIRONMENT) do
    out[#out + 1] = wrap(("  %-28s"):format(row.name), row.meaning, 30)
  end
end

--- `empirical --help`: every command, the environment, the exit codes.
function M.main()
  local out = { "Work with Empirical test runs from the command line and gate a release on them.", "",
                "USAGE", "  empirical <command> [flags]", "", "COMMANDS" }
  for _, c in ipairs(commands.COMMANDS) do out[#out + 1] = wrap(("  %-10s"):format(c.name), c.summary, 12) end
  out[#out + 1] = ""
  out[#out + 1] = "FLAGS"
  out[#out + 1] = "  --help      show help for empirical or a command"
  out[#out + 1] = "  --version   print the version"
  out[#out + 1] = ""
  env_lines(out)
  out[#out + 1] = ""
  exit_lines(out, commands.EXIT, "EXIT CODES (of gate; each command's --help lists its own)")
  out[#out + 1] = ""
  out[#out + 1] = "LEARN MORE"
  out[#out + 1] = "  empirical help <command>, or empirical <command> --help"
  return table.concat(out, "\n") .. "\n"
end

--- `empirical help COMMAND`, `empirical COMMAND --help`.
function M.command(command)
  local out = { command.summary .. ".", "" }
  if command.description then out[#out + 1] = wrap("", command.description, 0) out[#out + 1] = "" end
  out[#out + 1] = "USAGE"
  for _, u in ipairs(command.usage) do out[#out + 1] = ("  empirical %s %s"):format(command.name, u) end
  out[#out + 1] = ""
  out[#out + 1] = "FLAGS"
  local flags, order = args.flags_of(command)
  local widest = 0
  for _, name in ipairs(order) do widest = math.max(widest, #flag_label(name, flags[name])) end
  widest = math.min(widest, 28)
  for _, name in ipairs(order) do
    local label = flag_label(name, flags[name])
    local lead = ("  %-" .. widest .. "s  "):format(label)
    if #label > widest then out[#out + 1] = "  " .. label lead = "" end
    out[#out + 1] = wrap(lead, flag_help(flags[name]), widest + 4)
  end
  out[#out + 1] = ""
  exit_lines(out, commands.exits_of(command))
  out[#out + 1] = ""
  out[#out + 1] = "EXAMPLES"
  for _, e in ipairs(command.examples or {}) do out[#out + 1] = "  $ " .. e end
  return table.concat(out, "\n") .. "\n"
end

-- Markdown ---------------------------------------------------------------------
-- The README holds these tables verbatim; spec/readme_spec.lua checks that.

local function cell(text) return (text:gsub("|", "\\|")) end

function M.markdown_exit_codes()
  local out = { "| exit | meaning |", "|---|---|" }
  for _, row in ipairs(commands.EXIT) do out[#out + 1] = ("| %d | %s |"):format(row.code, cell(row.meaning)) end
  return table.concat(out, "\n")
end

function M.markdown_environment()
  local out = { "| variable | flag | meaning |", "|---|---|---|" }
  for _, row in ipairs(commands.ENVIRONMENT) do
    out[#out + 1] = ("| `%s` | %s | %s |"):format(row.name, row.flag and ("`--" .. row.flag .. "`") or "",
                                                  cell(row.meaning))
  end
  return table.concat(out, "\n")
end

function M.markdown_flags(name)
  local flags, order = args.flags_of(commands.COMMAND[name])
  local out = { "| flag | meaning |", "|---|---|" }
  for _, flag_name in ipairs(order) do
    local flag = flags[flag_name]
    out[#out + 1] = ("| `%s` | %s |"):format(cell(flag_label(flag_name, flag)), cell(flag_help(flag)))
  end
  return table.concat(out, "\n")
end

return M
