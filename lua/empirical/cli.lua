--- empirical.cli: the `empirical` command. bin/empirical is
-- `os.exit(require("empirical.cli").main(arg))`.
--
-- main(argv [, sys]) -> exit code; sys (all optional): stdout, stderr
-- (objects with :write), getenv. Help, --version and usage errors load
-- nothing but the command tables: the client (and libcurl) is loaded by the
-- command that needs it. Any unexpected Lua error ends as exit 3 with one
-- line (and, with --json, the error document); EMPIRICAL_DEBUG=1 adds the
-- traceback.
local commands = require("empirical.cli.commands")
local args = require("empirical.cli.args")
local help = require("empirical.cli.help")

local M = {}

M.VERSION = commands.VERSION

local CODE = commands.CODE

-- What every command gets: where to write, the environment, and helpers.
local Context = {}
Context.__index = Context

function Context:say(text) self.err:write(text, "\n") end
function Context:print(text) self.out:write(text, "\n") end

--- A client from the flags (the key from EMPIRICALRUN_KEY), or nil, err. A
-- refused setting is told in the command's words (empirical.cli.words): the
-- flag or variable it came from, and what the user can do; err.message is
-- that line, err.flag or err.variable what the user set.
function Context:client(o)
  local client, err = require("empirical").new(self:client_options(o))
  if not client and err.kind == "config" then
    local words = require("empirical.cli.words")
    err.message = words.config(err, o, self:key() ~= nil)
    err.flag, err.variable = words.source_of(err.field, o)
    err.worded = true
  end
  return client, err
end

--- EMPIRICALRUN_KEY, or nil when unset or empty.
function Context:key()
  local key = self.getenv("EMPIRICALRUN_KEY")
  if key == "" then return nil end
  return key
end

function Context:client_options(o)
  return { base_url = o.api_url, project_slug = o.project_slug, token = self:key(),
           user_agent = "empirical-cli/" .. M.VERSION }
end

--- The exit code a failed call stands for, after saying what failed. A
-- call that got no answer while the API has answered none (answered) names
-- where the API's address came from (empirical.cli.words.unreachable).
function Context:failed(err, what, answered)
  local words = require("empirical.cli.words")
  if not answered and self.o then words.reword_unreachable({ err }, self.o) end
  words.reword_may_exist(err)
  if err.kind == "interrupted" and not err.worded then   -- a caught signal cut the call: nothing more to say
    err.message, err.worded = ("interrupted by %s before the API answered"):format(err.signal or "a signal"), true
  end
  local text = err.worded and err.message or require("empirical.cli.render").error_text(err)
  self:say(("empirical %s: %s"):format(what, text))
  local outcome = require("empirical.gate").outcome_of_error(err)
  self.error = { kind = tostring(err.kind), message = text, status = err.status, flag = err.flag,
                 variable = err.variable }
  return commands.OUTCOME_CODE[outcome]
end

--- --json's document (one per run of the command).
function Context:document(text)
  self.documented = true
  self:print(text)
end

--- With --json, once the flags parse or not: an error that ends the command
-- before its own document is one. The gate's is its result (the README's
-- schema) with no runs and the error; the other commands' {exit_code, error}.
function Context:error_document(command, err, code)
  if self.documented then return end
  local e = { kind = err.kind, message = err.message, status = err.status, flag = err.flag, variable = err.variable }
  if command.name == "gate" then
    self:document(require("empirical.cli.publish").json {
      verdict = "invalid", exit_code = code, runs = {}, cancelled = {}, error = e })
  else
    self:document(require("cjson").encode { exit_code = code, error = e })
  end
end

--- An input the command found wrong before sending anything (a trigger
-- field, a file it could not write): one line naming the flag or variable,
-- exit 3. problem: {message, flag or variable, usage: add the help line}.
function Context:input_error(command, problem)
  self:say(("empirical %s: %s"):format(command.name, problem.message))
  if problem.usage then self:say(("Run 'empirical %s --help' for usage."):format(command.name)) end
  if self.json then
    self:error_document(command, { kind = "usage", message = problem.message, flag = problem.flag,
                                   variable = problem.variable }, CODE.usage)
  end
  return CODE.usage
end

--- On a terminal and not in CI: a live progress line; and the width to fit.
function Context:live(mode, stream)
  return require("empirical.cli.progress").choose(mode, stream, self.getenv)
end

local RUNNERS = setmetatable({ gate = function(o, ctx) return require("empirical.cli.gate_command").run(o, ctx) end },
                             { __index = function(_, name)
                                 return function(o, ctx) return require("empirical.cli.calls")[name](o, ctx) end
                               end })

-- source: {flag=} or {variable=}, what the refused value came from (args.parse).
local function usage_error(ctx, command, problem, source)
  ctx:say(("empirical%s: %s"):format(command and (" " .. command.name) or "", problem))
  ctx:say(("Run 'empirical %s--help' for usage."):format(command and (command.name .. " ") or ""))
  if command and ctx.json then
    ctx:error_document(command, { kind = "usage", message = problem, flag = source and source.flag,
                                  variable = source and source.variable }, CODE.usage)
  end
  return CODE.usage
end

-- Whether --json is on the command's line (before any `--`), as the
-- parser would read it: then even a line it refuses gets its document.
local function wants_json(command, argv)
  local flags = args.flags_of(command)
  if not flags.json then return false end
  for i = 2, #argv do
    if argv[i] == "--" then return false end
    if argv[i] == "--json" then return true end
  end
  return false
end

local function unknown_command(ctx, word)
  local names = {}
  for _, c in ipairs(commands.COMMANDS) do names[#names + 1] = c.name end
  local near = args.closest(word, names)
  local hint = near and ("; did you mean '" .. near .. "'?") or ""
  return usage_error(ctx, nil, ("unknown command '%s'%s"):format(word, hint))
end

local function dispatch(argv, ctx)
  local first = argv[1]
  if first == nil then ctx.err:write(help.main()) return CODE.usage end
  if first == "--help" or first == "-h" or (first == "help" and argv[2] == nil) then
    ctx.out:write(help.main())
    return 0
  end
  if first == "--version" then
    ctx:print("empirical " .. M.VERSION .. " (" .. _VERSION .. ")")
    return 0
  end
  if first == "help" then
    local command = commands.COMMAND[argv[2]]
    if not command then return unknown_command(ctx, argv[2]) end
    ctx.out:write(help.command(command))
    return 0
  end
  local command = commands.COMMAND[first]
  if not command then
    if first:match("^%-") then return usage_error(ctx, nil, ("unknown flag %s before the command"):format(first)) end
    return unknown_command(ctx, first)
  end
  ctx.command, ctx.json = command, wants_json(command, argv)
  local o, problem, source = args.parse(command, argv, 2, ctx.getenv)
  if not o then return usage_error(ctx, command, problem, source) end
  if o.help then ctx.out:write(help.command(command)) return 0 end
  ctx.o, ctx.json = o, o.json
  local code = RUNNERS[command.name](o, ctx)
  if o.json and not ctx.documented then
    ctx:error_document(command, ctx.error or { kind = "error", message = "the command ended without a result" }, code)
  end
  return code
end

--- The names of the process's environment variables: /proc/self/environ
-- (NUL-separated, so a value cannot pass for a name), or none where there
-- is no /proc.
local function environ_names()
  local f = io.open("/proc/self/environ", "rb")
  if not f then return {} end
  local text = f:read("*a") or ""
  f:close()
  local names = {}
  for entry in text:gmatch("[^%z]+") do names[#names + 1] = entry:match("^([^=]+)=") end
  return names
end

function M.main(argv, sys)
  sys = sys or {}
  local ctx = setmetatable({ out = sys.stdout or io.stdout, err = sys.stderr or io.stderr,
                             getenv = sys.getenv or os.getenv }, Context)
  -- A misspelt variable would be ignored without a word: one line each,
  -- never its value. An injected getenv is the environment: this process's
  -- own is then none of the command's.
  local names = sys.environ and sys.environ() or sys.getenv and {} or environ_names()
  for _, line in ipairs(require("empirical.cli.words").unknown_variables(names)) do ctx:say(line) end
  local trace
  local ok, code = xpcall(dispatch, function(e)
    trace = debug.traceback(tostring(e), 2)
    return e
  end, argv or {}, ctx)
  if ok then return code end
  local line = tostring(code):match("[^\n]*")
  ctx:say(("empirical: unexpected error: %s"):format(line))
  if ctx.getenv("EMPIRICAL_DEBUG") == "1" then ctx:say(trace)
  else ctx:say("(EMPIRICAL_DEBUG=1 shows the traceback; please report it)") end
  -- --json promises one document once the command is known, this end too.
  if ctx.json and ctx.command then
    pcall(ctx.error_document, ctx, ctx.command, { kind = "error", message = "unexpected error: " .. line }, CODE.usage)
  end
  return CODE.usage
end

return M
