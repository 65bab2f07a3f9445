--- empirical.cli.commands: the command line as data. The parser, the help
-- text and the README's tables all read these tables, so a flag or an exit
-- code is written down once. Loading this file loads nothing else.
local M = {}

--- The command's version: the module's (a spec checks they agree), kept
-- here so that --version loads no C.
M.VERSION = "0.1.0"

--- Exit codes, in the order the help lists them. `name` is what --json and
-- the library call the outcome class; `meaning` is what the code says of a
-- gate (the README's table). Each command lists the codes it can return
-- (COMMANDS' `exits`), in its own words where the gate's do not fit it;
-- exits_of gives a command's view.
M.EXIT = {
  { code = 0, name = "passed", meaning = "every run passed (flaky tests pass)" },
  { code = 1, name = "failed", meaning = "tests failed, after any re-runs; or a run had no tests (see --allow-empty)" },
  { code = 2, name = "no_verdict", meaning = "no verdict for reasons outside the tests: a run errored or was " ..
                                           "cancelled, ended without saying what its tests did, the deadline " ..
                                           "passed, or the API kept failing (transport errors, 5xx) until " ..
                                           "the deadline" },
  { code = 3, name = "usage", meaning = "your side: a bad flag, a missing or rejected key, a 4xx answer, an " ..
                                      "unknown environment, or an unexpected error" },
  { code = 130, name = "sigint", meaning = "interrupted by SIGINT (Ctrl+C); the runs it started were cancelled" },
  { code = 143, name = "sigterm", meaning = "stopped by SIGTERM; the runs it started were cancelled" },
}
M.CODE = {}
for _, row in ipairs(M.EXIT) do M.CODE[row.name] = row.code end

--- The gate's outcome of one run (lane), and the exit code it stands for;
-- the gate exits with the highest of its lanes'.
M.OUTCOMES = {
  { name = "passed", code = 0, meaning = "the run (or its last re-run) passed" },
  { name = "failed", code = 1, meaning = "tests failed after any re-runs" },
  { name = "empty", code = 1, meaning = "the run ended with no tests, and --allow-empty was not given" },
  { name = "uncounted", code = 2,
    meaning = "the run ended without saying how many tests ran or failed (no counts, no items, no report)" },
  { name = "error", code = 2, meaning = "the run ended in state error" },
  { name = "cancelled", code = 2, meaning = "the run was cancelled (by someone else, or replaced while pending)" },
  { name = "timeout", code = 2, meaning = "the deadline passed before the run ended" },
  { name = "unavailable", code = 2, meaning = "the API kept failing (transport errors, 5xx)" },
  { name = "aborted", code = 2, meaning = "not followed: another environment was refused" },
  { name = "rejected", code = 3, meaning = "the API refused a request (4xx: key, environment, run id)" },
  { name = "invalid", code = 3, meaning = "a value was refused before sending, or the configuration is incomplete" },
  { name = "SIGINT", code = 130, meaning = "interrupted by SIGINT" },
  { name = "SIGTERM", code = 143, meaning = "stopped by SIGTERM" },
}
M.OUTCOME_CODE = {}
for _, row in ipairs(M.OUTCOMES) do M.OUTCOME_CODE[row.name] = row.code end

--- Settings read from the environment: the one list of the variables the
-- command reads (any other EMPIRICAL* variable set gets a warning). `flag`
-- names the flag that wins over it; `also`, names a user may write for it
-- (with or without the EMPIRICAL/EMPIRICALRUN prefix), for "did you mean".
M.ENVIRONMENT = {
  { name = "EMPIRICALRUN_KEY", meaning = "the API key (required; never taken as a flag, so it stays out of ps)",
    also = { "TOKEN", "API_KEY", "API_TOKEN", "SECRET" } },
  { name = "EMPIRICALRUN_API_URL", flag = "api-url",
    meaning = "the API's address (default https://api.empirical.run)", also = { "URL", "API", "BASE_URL", "HOST" } },
  { name = "EMPIRICALRUN_PROJECT", flag = "project-slug",
    meaning = "the project's slug: sent as x-project-slug, and used for dashboard links",
    also = { "PROJECT_SLUG", "SLUG" } },
  { name = "EMPIRICALRUN_DASHBOARD_URL", flag = "dashboard-url",
    meaning = "a run's link, {project} and {id} filled in " ..
              "(default https://dash.empirical.run/{project}/test-runs/{id})", also = { "DASHBOARD", "DASH_URL" } },
  { name = "GITHUB_STEP_SUMMARY", meaning = "gate: a Markdown summary is appended to this file" },
  { name = "GITHUB_ACTIONS", meaning = "gate: when true, one ::error annotation per failed test" },
  { name = "CI, TERM=dumb", meaning = "progress as a plain line per change instead of a live line" },
  { name = "EMPIRICAL_DEBUG", meaning = "when 1, an unexpected error also prints the Lua call stack it came from" },
}

--- EMPIRICAL* variables of the project's other parts, which the command
-- knows it does not read, so it does not warn about them: the OpenResty
-- release service's (a prefix, ending in _) and the specs' knobs.
M.OTHER_VARIABLES = { "EMPIRICAL_RELEASE_", "EMPIRICAL_SANITIZER", "EMPIRICAL_SEED" }

--- Every flag, once. kind: switch | value | list (repeatable). check: how a
-- value is read (args.lua: duration, seconds, count, positive, id, pair,
-- choice, text). env: the variable used when the flag is not given.
M.FLAGS = {
  environment = { kind = "list", arg = "SLUG", check = "text", help = "environment to test; repeatable" },
  run = { kind = "list", arg = "ID", check = "id", help = "also wait on this existing run; repeatable" },
  ["build-url"] = { kind = "value", arg = "URL", check = "text", help = "build.url: the deployment under test" },
  commit = { kind = "value", arg = "SHA", check = "text", help = "build.commit" },
  branch = { kind = "value", arg = "NAME", check = "text", help = "build.branch" },
  ["build-version"] = { kind = "value", arg = "V", check = "text", help = "build.version" },
  ["test-branch"] = { kind = "value", arg = "NAME", check = "text",
                      help = "branch of the test repository (not with the build flags)" },
  shards = { kind = "value", arg = "N", check = "positive", help = "total_shards override" },
  tag = { kind = "list", arg = "TAG", check = "text", help = "only tests with this tag; repeatable" },
  meta = { kind = "list", arg = "KEY=VALUE", check = "pair", help = "metadata; repeatable" },
  env = { kind = "list", arg = "NAME=VALUE", check = "pair", help = "environment variable override; repeatable" },
  timeout = { kind = "value", arg = "DURATION", check = "duration", default = "1h",
              help = "deadline for everything: 90, 90s, 30m, 1h30m" },
  interval = { kind = "value", arg = "SECONDS", check = "seconds", min = 0.001, default = "5",
               help = "polls a run about this often on average: rarely while its end is far, often near it" },
  ["max-poll-failures"] = { kind = "value", arg = "N", check = "count", default = "0",
                            help = "failed polls in a row to tolerate; 0: keep polling until the deadline" },
  ["rerun-failed"] = { kind = "value", arg = "N", check = "count", default = "0",
                       help = "re-run only the failed tests, up to N times" },
  ["allow-empty"] = { kind = "switch", help = "a run of zero tests passes (it fails otherwise)" },
  ["on-timeout"] = { kind = "value", arg = "cancel|leave", check = "choice", choices = { "cancel", "leave" },
                     default = "cancel",
                     help = "at the deadline, or when polling is given up, cancel the runs this gate started, " ..
                            "or leave them" },
  ["on-reject"] = { kind = "value", arg = "cancel|leave|wait", check = "choice",
                    choices = { "cancel", "leave", "wait" }, default = "cancel",
                    help = "when an environment's trigger is refused: cancel the runs already triggered, " ..
                           "leave them running, or wait for them and judge them too" },
  ["cancel-given"] = { kind = "switch", help = "on a signal or the deadline, also cancel the --run runs" },
  junit = { kind = "value", arg = "FILE", check = "text", help = "write a JUnit XML report" },
  progress = { kind = "value", arg = "auto|tty|plain", check = "choice", choices = { "auto", "tty", "plain" },
               default = "auto", help = "a live line (tty), a line per change (plain), or by the terminal (auto)" },
  ["project-slug"] = { kind = "value", arg = "SLUG", check = "text", env = "EMPIRICALRUN_PROJECT",
                       help = "the project, when the key spans several; also names dashboard links" },
  ["api-url"] = { kind = "value", arg = "URL", check = "text", env = "EMPIRICALRUN_API_URL",
                  help = "the API's address" },
  ["dashboard-url"] = { kind = "value", arg = "TEMPLATE", check = "template", env = "EMPIRICALRUN_DASHBOARD_URL",
                        help = "a run's link, with {project} and {id}" },
  ["only-failed"] = { kind = "switch", help = "re-run only the tests that failed" },
  notify = { kind = "switch", help = "send the project's notifications for the re-run" },
  reason = { kind = "value", arg = "TEXT", check = "text", help = "why, kept by the API for audit" },
  state = { kind = "value", arg = "STATE", check = "choice",
            choices = { "pending", "queued", "started", "ended", "error", "cancelled", "cancelling" },
            help = "only runs in this state" },
  result = { kind = "value", arg = "passed|failed", check = "choice", choices = { "passed", "failed" },
             help = "only runs with this result" },
  ["environment-id"] = { kind = "list", arg = "ID", check = "id",
                         help = "only runs on this environment id; repeatable" },
  days = { kind = "value", arg = "N", check = "positive", help = "only runs of the last N days" },
  limit = { kind = "value", arg = "N", check = "positive", default = "20", help = "list at most N runs" },
  port = { kind = "value", arg = "N", check = "count", default = "0", help = "port to listen on; 0: any free port" },
  speed = { kind = "value", arg = "X", check = "rate", default = "1",
            help = "clock rate: 10 runs ten times faster" },
  token = { kind = "value", arg = "TOKEN", check = "text", default = "fake-token", help = "the key the fake accepts" },
  json = { kind = "switch", help = "print the result as JSON on stdout (progress and messages stay on stderr)" },
  help = { kind = "switch", help = "show help for the command" },
}

local TRIGGER = { "build-url", "commit", "branch", "build-version", "test-branch", "shards", "tag", "meta", "env" }
-- The flags of a command that calls the API; LINKED: of one that prints run links.
local API = { "project-slug", "api-url", "json", "help" }
local LINKED = { "project-slug", "api-url", "dashboard-url", "json", "help" }
local WAIT = { "timeout", "interval", "max-poll-failures", "allow-empty", "progress" }

local function join(...)
  local out = {}
  for _, list in ipairs { ... } do for _, v in ipairs(list) do out[#out + 1] = v end end
  return out
end

-- Exit 3 of a command that makes calls: refused, 4xx being what it names.
local function refused(what_4xx)
  return { "usage", meaning = "your side: a bad flag, a missing or rejected key, a 4xx answer" ..
                              (what_4xx and (" (" .. what_4xx .. ")") or "") .. ", or an unexpected error" }
end

-- Exit codes of the commands that make a few calls and judge no run: 0 is
-- each one's own (`ok`), then the API's failure and the caller's, then a
-- signal (each ends the command within about 100 ms, or after the grace a
-- trigger or re-run in flight gets); after_signal: what became of the work.
local function call_exits(ok, what_4xx, after_signal)
  after_signal = after_signal or "nothing more is sent"
  return { { "passed", meaning = ok },
           { "no_verdict", meaning = "the API could not be reached or kept failing (network errors, 5xx, 429)" },
           refused(what_4xx),
           { "sigint", meaning = "interrupted by SIGINT (Ctrl+C); " .. after_signal },
           { "sigterm", meaning = "stopped by SIGTERM; " .. after_signal } }
end
-- A trigger or re-run a signal cuts.
local CREATED = "a run created meanwhile is cancelled, one that may have been created is named with how to find it"
local NO_RUN = "a run that does not exist"

--- The subcommands, in the order help lists them. args: the positionals
-- ({arg, check, min, max}); needs: a rule the parser checks after the flags.
-- A flag is its name, or {name, help = ...} where this command means it otherwise.
-- exits: the exit codes it can return, by name (M.EXIT), or {name, meaning
-- = ...} where the gate's words do not fit it.
M.COMMANDS = {
  { name = "gate", summary = "Trigger runs, wait, re-run failures, and exit with a code CI can act on",
    usage = { "--environment SLUG [--environment SLUG...] [flags]", "--run ID [--run ID...] [flags]" },
    flags = join({ "environment", "run" }, TRIGGER, WAIT,
                 { "rerun-failed", "on-timeout", "on-reject", "cancel-given", "junit" }, LINKED),
    needs = "environment_or_run", exits = { "passed", "failed", "no_verdict", "usage", "sigint", "sigterm" },
    description = "Triggers one run per --environment (all before waiting on any), follows them and any --run " ..
                  "together, re-runs failed tests if asked, explains each failure from the run's Playwright " ..
                  "report, and exits with the worst outcome. On SIGINT, SIGTERM or the deadline it cancels " ..
                  "the runs it started.",
    examples = { "empirical gate --environment staging --commit \"$SHA\" --rerun-failed 1 --junit e2e.xml" } },
  { name = "trigger", summary = "Start a test run per environment and print its id and link",
    usage = { "--environment SLUG [--environment SLUG...] [flags]" },
    flags = join({ "environment" }, TRIGGER, LINKED), needs = "environment",
    exits = call_exits("every environment's run was triggered", "an unknown environment", CREATED),
    examples = { "empirical trigger --environment staging --tag @smoke" } },
  { name = "rerun", summary = "Re-run a run, or only its failed tests", usage = { "ID [flags]" },
    args = { arg = "ID", check = "id", min = 1, max = 1 }, flags = join({ "only-failed", "notify" }, LINKED),
    exits = call_exits("the re-run was started", NO_RUN, CREATED),
    examples = { "empirical rerun 456 --only-failed" } },
  { name = "get", summary = "Show a run: state, counts, link, failed tests", usage = { "ID [flags]" },
    args = { arg = "ID", check = "id", min = 1, max = 1 }, flags = LINKED,
    exits = call_exits("the run was shown, whatever its state or verdict", NO_RUN),
    examples = { "empirical get 456", "empirical get 456 --json" } },
  { name = "wait", summary = "Wait for runs to end and exit with their verdict", usage = { "ID... [flags]" },
    args = { arg = "ID", check = "id", min = 1 }, flags = join(WAIT, LINKED),
    exits = { "passed", { "failed", meaning = "a run's tests failed, or a run had no tests (see --allow-empty)" },
              "no_verdict", refused(NO_RUN),
              { "sigint", meaning = "interrupted by SIGINT (Ctrl+C); the runs go on" },
              { "sigterm", meaning = "stopped by SIGTERM; the runs go on" } },
    examples = { "empirical wait 456 457 --timeout 30m" } },
  { name = "cancel", summary = "Cancel runs (one that already ended is not an error)",
    usage = { "ID... [--reason TEXT] [flags]" }, args = { arg = "ID", check = "id", min = 1 },
    flags = join({ "reason" }, API), exits = call_exits("each run was cancelled, or had already ended", NO_RUN,
                                                  "the runs not confirmed cancelled are named"),
    examples = { "empirical cancel 456 --reason \"rolled back\"" } },
  { name = "list", summary = "List the project's runs, newest first", usage = { "[filters] [flags]" },
    flags = join({ "state", "result", { "branch", help = "only runs on this test branch" }, "environment-id", "days",
                   "limit" }, API),
    exits = call_exits("the runs were listed (none matching is not an error)"),
    examples = { "empirical list --state ended --result failed --days 7" } },
  { name = "report", summary = "Show a run's failed and flaky tests with their messages, file and line",
    usage = { "ID [flags]" }, args = { arg = "ID", check = "id", min = 1, max = 1 }, flags = API,
    exits = call_exits("the report was shown, whatever the run's verdict", NO_RUN),
    examples = { "empirical report 456" } },
  { name = "fake", summary = "Start the bundled fake API and print its URL (needs the empirical-fake rock)",
    usage = { "[flags]" }, flags = { "port", "speed", "token", "help" },
    exits = { { "passed", meaning = "stopped by Ctrl+C or SIGTERM" },
              { "no_verdict", meaning = "the fake could not start (the port is taken, say)" },
              { "usage", meaning = "a bad flag, or the fake is not installed" } },
    examples = { "empirical fake --speed 10" } },
}
M.COMMAND = {}
for _, c in ipairs(M.COMMANDS) do M.COMMAND[c.name] = c end

--- The exit codes a command can return, in M.EXIT's order: {code, name,
-- meaning}, the meaning in the command's words.
function M.exits_of(command)
  local own = {}
  for _, entry in ipairs(command.exits or {}) do
    local name = type(entry) == "table" and entry[1] or entry
    assert(M.CODE[name], name)
    own[name] = type(entry) == "table" and entry.meaning or true
  end
  local out = {}
  for _, row in ipairs(M.EXIT) do
    local meaning = own[row.name]
    if meaning then out[#out + 1] = { code = row.code, name = row.name, meaning = meaning == true and row.meaning
                                                                                       or meaning } end
  end
  return out
end

return M
