---@meta empirical
-- LuaLS (lua-language-server) definitions for the public API: completion and
-- type checks in Neovim and other editors. Never loaded at run time.

---@alias empirical.ErrorKind "invalid"|"config"|"transport"|"http"|"decode"|"timeout"|"interrupted"
---@alias empirical.Verdict "passed"|"failed"|"error"|"cancelled"|"running"
---@alias empirical.State "pending"|"queued"|"started"|"ended"|"error"|"cancelled"|"cancelling"
---@alias empirical.Operation "trigger"|"rerun"|"get"|"cancel"|"list"

---@class empirical.Error
---@field kind empirical.ErrorKind
---@field message string
---@field field? string the input's path: "build.commit", "environment_variables_overrides[2].value"
---@field status? integer the HTTP status
---@field retryable? boolean safe to try again
---@field attempts? integer
---@field request? string "GET /api/test-runs/9"
---@field body? string the first KiB of a bad response
---@field run_may_exist? boolean a trigger or re-run that may have created its run: look before triggering again
---@field advice? string with run_may_exist: the message's closing advice, for a caller with its own words
---@field reason? string why base_url was refused: "plain_http", "not_a_url", "api_path", ... (README: Errors)
---@field variable? string the environment variable a bad option came from
---@field signal? "SIGINT"|"SIGTERM" kind "interrupted": the signal that ended the wait
---@field detail? empirical.Detail the last detail seen (wait's timeout and failures)
---@field polls? integer

---@class empirical.Options
---@field token? string default: os.getenv("EMPIRICALRUN_KEY")
---@field base_url? string default: EMPIRICALRUN_API_URL or https://api.empirical.run
---@field allow_plain_http? boolean allow http:// to a host that is not loopback
---@field project_id? integer
---@field project_slug? string
---@field timeout? number seconds per attempt (30)
---@field connect_timeout? number seconds (10)
---@field deadline? number seconds for a whole call with its retries
---@field low_speed_limit? integer bytes per second (1)...
---@field low_speed_time? number ...for this many seconds (20)
---@field retries? integer extra attempts the policy allows (3, at most 10)
---@field max_retry_after? number seconds (60)
---@field max_response_bytes? integer (64 MiB)
---@field ca_file? string
---@field proxy? string
---@field user_agent? string
---@field strict? boolean false lets unknown top-level request fields through
---@field verbose? boolean libcurl's trace on stderr, credentials redacted
---@field on_event? fun(ev: empirical.Event)

---@class empirical.Event
---@field method string
---@field path string
---@field attempt integer
---@field elapsed_ms integer
---@field status? integer
---@field kind? empirical.ErrorKind absent on success
---@field retry_in_ms? integer when another attempt follows

---@class empirical.Build
---@field url? string
---@field branch? string
---@field commit? string
---@field commit_url? string
---@field version? string

---@class empirical.EnvOverride
---@field name string
---@field value string

---@class empirical.TriggerParams
---@field environment string
---@field build? empirical.Build
---@field branch? string not with build
---@field metadata? table<string, string|number>
---@field environment_variables_overrides? empirical.EnvOverride[]|table<string, string>
---@field tags? string[]
---@field project_id? integer
---@field send_notifications? boolean
---@field total_shards? integer
---@field rerun_source_id? integer
---@field rerun_only_failed? boolean
---@field github_actor? string

---@class empirical.RerunOptions
---@field only_failed? boolean
---@field send_notifications? boolean

---@class empirical.Run
---@field id integer
---@field state empirical.State
---@field test_run_branch string
---@field created_at string

---@class empirical.TestRun
---@field id integer
---@field state empirical.State
---@field total_count integer
---@field success_count integer
---@field failed_count integer
---@field skipped_count? integer
---@field flaky_count? integer
---@field duration? number milliseconds
---@field test_run_branch? string
---@field environment_slug? string
---@field environment_name? string
---@field build_url? string
---@field build_branch? string
---@field commit? string
---@field created_at string
---@field test_run_head_sha? string
---@field run_started_at? string
---@field run_ended_at? string
---@field summary_url? string

---@class empirical.CancelOptions
---@field reason? string kept by the vendor for audit

---@class empirical.ListFilter
---@field id? integer
---@field branch? string
---@field state? empirical.State
---@field result? "passed"|"failed"
---@field environment_ids? integer[] sent comma-separated
---@field interval_in_days? integer
---@field page? integer from 1
---@field per_page? integer 1 to 100 (20)

---@class empirical.ListItem
---@field id? integer
---@field state? any older pages only, and not in the vendor's schema: passed through as it comes
---@field total_count? number
---@field success_count? number
---@field failed_count? number
---@field skipped_count? number
---@field flaky_count? number
---@field duration? number milliseconds
---@field test_run_branch? string
---@field environment_slug? string
---@field environment_name? string
---@field build_url? string
---@field build_branch? string
---@field commit? string
---@field created_at? string

---@class empirical.List
---@field project? {id?: integer, name?: string, slug?: string, repo_name?: string}
---@field test_runs? {items?: empirical.ListItem[]}
---@field pagination? {page?: integer, per_page?: integer, total?: integer, total_pages?: integer}

---@class empirical.OperationRow
---@field name empirical.Operation
---@field method string
---@field path string
---@field idempotent boolean
---@field body boolean
---@field path_params string[]
---@field query string[]

---@class empirical.SummaryItem
---@field name? string "describe > ... > title"
---@field status? string
---@field file? string the spec's file, as the report names it: JUnit's classname when there is no report
---@field project? string the Playwright project: a test is one case per project, report or not
---@field duration? number milliseconds

---@class empirical.Detail
---@field project {id: integer, name: string, repo_name: string}
---@field testRun empirical.TestRun
---@field flattenedSummaryDetails empirical.SummaryItem[]

---@class empirical.ReportCounts
---@field expected integer
---@field unexpected integer
---@field flaky integer
---@field skipped integer

---@class empirical.ReportEntry
---@field title string
---@field path string[] describe titles outermost first, then the title
---@field file? string
---@field line? integer
---@field column? integer
---@field project? string projectName
---@field outcome string the test's status: expected|unexpected|flaky|skipped
---@field status? string the last result's: passed|failed|timedOut|interrupted|skipped
---@field message? string the first non-blank line of the error, ANSI removed
---@field error? string the whole stripped error, at most 4096 bytes
---@field retries integer
---@field duration? number milliseconds, the sum of its results' finite durations (never inf; a non-number is none)

---@class empirical.Report
---@field stats empirical.ReportCounts the report's own, or counted
---@field counted empirical.ReportCounts counted from the tests
---@field tests empirical.ReportEntry[] every test, one per test and project, in report order
---@field passed empirical.ReportEntry[] the entries of `tests` whose outcome is "expected"
---@field failed empirical.ReportEntry[] "unexpected"
---@field flaky empirical.ReportEntry[] "flaky"
---@field skipped empirical.ReportEntry[] "skipped"
---@field errors {message: string, error: string}[] the report's own top-level errors

---@class empirical.WaitOptions
---@field interval? number the budget: one poll per interval on average (5)
---@field min_interval? number never two polls closer (1)
---@field max_interval? number nor further apart (30)
---@field history? number[] durations in seconds of the project's recent runs
---@field clock? fun(): number the clock sleep is measured by (empirical.now)
---@field timeout? number the whole wait (3600)
---@field max_poll_failures? integer failed polls in a row tolerated (default: any, until the timeout)
---@field on_poll? fun(detail: empirical.Detail, info: empirical.WaitInfo)
---@field on_poll_error? fun(err: empirical.Error, consecutive: integer, info: empirical.WaitInfo)
---@field sleep? fun(seconds: number)

---@class empirical.WaitInfo
---@field id integer
---@field index integer
---@field polls integer
---@field elapsed number seconds
---@field states empirical.State[]
---@field superseded boolean cancelled while pending: a newer trigger replaced it

---@class empirical.Request
local Request = {}

--- Advance without blocking.
---@return boolean done
---@return any|nil result
---@return empirical.Error|nil err
function Request:poll() end

--- Block until done. A signal caught with empirical.catch_signals() ends it: kind "interrupted".
---@return any|nil result
---@return empirical.Error|nil err
function Request:wait() end

--- End it now if still in flight (kind "interrupted"); a done request keeps its outcome.
---@return true
function Request:abort() end

---@class empirical.Client
local Client = {}

---@param params empirical.TriggerParams
---@return empirical.Run|nil run
---@return empirical.Error|nil err
function Client:trigger(params) end

---@param id integer
---@param opts? empirical.RerunOptions
---@return empirical.Run|nil run
---@return empirical.Error|nil err
function Client:rerun(id, opts) end

---@param id integer
---@return empirical.Detail|nil detail
---@return empirical.Error|nil err
function Client:get(id) end

--- Cancel a run: POST /api/test-runs/{id}/cancel. A run that already ended: kind "http", status 412.
---@param id integer
---@param opts? empirical.CancelOptions
---@return {message?: string}|nil answer
---@return empirical.Error|nil err
function Client:cancel(id, opts) end

--- One page of the project's runs: GET /api/test-runs.
---@param filter? empirical.ListFilter
---@return empirical.List|nil page
---@return empirical.Error|nil err
function Client:list(filter) end

--- Every run the filter matches, across pages, at most limit; a failed page gives `false, err` once.
---@param filter? empirical.ListFilter
---@param limit? integer
---@return fun(): (empirical.ListItem|false|nil), empirical.Error|nil
function Client:runs(filter, limit) end

--- A run's Playwright report, parsed: its summary_url downloaded (the token only to the API's origin).
---@param detail_or_id empirical.Detail|empirical.TestRun|integer
---@return empirical.Report|nil report
---@return empirical.Error|nil err
function Client:report(detail_or_id) end

---@param id integer
---@param opts? empirical.WaitOptions
---@return empirical.Detail|nil detail
---@return empirical.WaitInfo|empirical.Error info_or_err
function Client:wait(id, opts) end

---@param ids integer[]
---@param opts? empirical.WaitOptions
---@return (empirical.Detail|nil)[] details
---@return (empirical.Error|nil)[] errs
---@return empirical.WaitInfo[] infos
function Client:wait_all(ids, opts) end

---@param op empirical.Operation|"report"
---@param ... any the method's arguments: params; id, opts; or id (report: a detail or an id)
---@return empirical.Request|nil req
---@return empirical.Error|nil err
function Client:start(op, ...) end

---@param list empirical.TriggerParams[]
---@return (empirical.Run|nil)[] runs
---@return (empirical.Error|nil)[] errs
function Client:trigger_all(list) end

---@param ids integer[]
---@return (empirical.Detail|nil)[] details
---@return (empirical.Error|nil)[] errs
function Client:get_all(ids) end

function Client:close() end

---@class empirical
---@field VERSION string
---@field DEFAULT_BASE_URL string
---@field WAIT_DEFAULTS empirical.WaitOptions
---@field OPERATIONS empirical.OperationRow[] the endpoints, one row each
---@field ENVIRONMENT table<string, string> options read from environment variables (token = "EMPIRICALRUN_KEY", ...)
local empirical = {}

---@param options? empirical.Options
---@return empirical.Client|nil client
---@return empirical.Error|nil err
function empirical.new(options) end

--- Validate and marshal without I/O.
---@param op empirical.Operation
---@param params table
---@param opts? {strict: boolean}
---@return {method: string, path: string, body?: string}|nil request
---@return empirical.Error|nil err
function empirical.encode(op, params, opts) end

--- Read a response you fetched yourself.
---@param op empirical.Operation
---@param status integer
---@param body string
---@param headers? table<string, string|string[]>|string a headers table, or the Content-Type
---@return any|nil result
---@return empirical.Error|nil err
function empirical.decode(op, status, body, headers) end

---@param kind empirical.ErrorKind
---@param message string
---@param fields? table
---@return empirical.Error
function empirical.error(kind, message, fields) end

--- Sleep; a caught signal ends it early.
---@param seconds number
---@return true|nil ok
---@return empirical.Error|nil err kind "interrupted"
function empirical.sleep(seconds) end

--- Monotonic seconds.
---@return number
function empirical.now() end

--- From now on SIGINT and SIGTERM end the module's blocking waits (kind "interrupted") instead of the process.
---@return true
function empirical.catch_signals() end

--- Give SIGINT and SIGTERM back to the handlers they had before catch_signals.
---@return true
function empirical.release_signals() end

--- The caught signal no wait has reported yet, without consuming it.
---@return "SIGINT"|"SIGTERM"|nil
function empirical.pending_signal() end

--- The width of the terminal a file handle writes to, or nil when it is not a terminal.
---@param file file*
---@return integer|nil columns
function empirical.terminal_width(file) end

---@param detail empirical.Detail
---@return empirical.Verdict
function empirical.verdict(detail) end

---@param detail empirical.Detail
---@param info? empirical.WaitInfo
---@return string
function empirical.summary(detail, info) end

---@param detail empirical.Detail
---@return string[]
function empirical.failed_tests(detail) end

---@param detail empirical.Detail
---@param reruns? empirical.Detail[]
---@return string|nil xml
---@return string|nil err
function empirical.junit(detail, reruns) end

---@param runs {[1]: empirical.Detail, [2]: empirical.Detail[]|nil}[]
---@return string|nil xml
---@return string|nil err
function empirical.junit_all(runs) end

--- Read a Playwright JSON report, without I/O.
---@param json_text string
---@return empirical.Report|nil report
---@return empirical.Error|nil err kind "decode" ("invalid" for a non-string)
function empirical.parse_report(json_text) end

--- Merge trigger tables left to right into a new one.
---@param ... empirical.TriggerParams|table|false|nil
---@return empirical.TriggerParams|nil params
---@return empirical.Error|nil err
function empirical.compose(...) end

---@class empirical.GateOptions
---@field environments? string[] slugs to trigger, all before waiting on any
---@field runs? integer[] existing runs to follow too
---@field trigger? empirical.TriggerParams the fields every trigger shares (build, tags, ...)
---@field timeout number seconds for everything, > 0
---@field interval? number the polling budget (5)
---@field max_poll_failures? integer nil: keep polling through transient failures until the deadline
---@field reruns? integer re-run only the failed tests, up to this many times
---@field allow_empty? boolean a run of zero tests passes
---@field on_timeout? "cancel"|"leave"
---@field on_reject? "cancel"|"leave"|"wait"
---@field cancel_given? boolean on a signal or the deadline, cancel the `runs` too
---@field project_slug? string
---@field dashboard_url? string a run's link, {project} and {id} filled in
---@field client? empirical.Client
---@field client_options? empirical.Options

---@class empirical.GateResult
---@field verdict string
---@field exit_code integer 0, 1, 2, 3, 130 or 143 (README: exit codes)
---@field signal? "SIGINT"|"SIGTERM"
---@field runs table[] one per environment or given run (README: the --json schema)
---@field cancelled table[]

---@class empirical.gate
local gate = {}

--- The release gate as a library (require("empirical.gate")): what `empirical gate` does, without os.exit.
---@param opts empirical.GateOptions
---@param hooks? {say?: fun(line: string), poll?: fun(lane: table, detail: empirical.Detail, info: empirical.WaitInfo)}
---@return empirical.GateResult|nil result
---@return table|empirical.Error lanes_or_err
function gate.run(opts, hooks) end

return empirical
