--- empirical.cli.progress: what a person watching the gate sees, on stderr.
-- live: one line per run, rewritten in place below the messages, each cut to
-- the terminal's width so nothing wraps. plain (CI logs): a line each time a
-- run's state or counts change.
local render = require("empirical.cli.render")

local M = {}

local format = string.format

local function clock(seconds)
  seconds = math.floor(seconds or 0)
  return format("%d:%02d", math.floor(seconds / 60), seconds % 60)
end

-- Cut to at most `width` bytes without splitting a UTF-8 sequence.
local function fit(text, width)
  if #text <= width then return text end
  local cut = text:sub(1, width)
  return (cut:gsub("[\192-\255][\128-\191]*$", ""))
end

--- The progress of one run, without the clock: it changes when the state or
-- a count does.
function M.line(label, detail)
  local r = type(detail) == "table" and type(detail.testRun) == "table" and detail.testRun or {}
  local c = render.counts(detail)
  local done = (c.passed or 0) + (c.failed or 0) + (c.skipped or 0) + (c.flaky or 0)
  if c.total and done > c.total then done = c.total end
  local n = require("empirical.report").number_text
  local state = type(r.state) == "string" and r.state or "?"
  return format("%s %s, %s/%s done, %s failed", render.run_lead(label, r.id), state,
                (c.passed or c.failed) and n(done) or "?", n(c.total), n(c.failed))
end

local function env_columns(getenv)
  local columns = tonumber(getenv("COLUMNS") or "")
  return columns and columns >= 1 and columns < math.huge and math.floor(columns) or nil
end

--- The columns a terminal `stream` has, for lines that must not wrap: the
-- terminal's own width; for a terminal that reports none (0 columns: a
-- pseudo-terminal nobody sized, as `script` makes) COLUMNS, else 80. nil
-- when stream is not a terminal (a pipe, a file: nothing wraps there).
-- getenv: os.getenv or the command's.
function M.width(stream, getenv)
  local core = require("empirical.core")
  if io.type(stream) ~= "file" or core.isatty(stream) ~= true then return nil end
  local own = core.terminal_width(stream)
  own = type(own) == "number" and own >= 1 and math.floor(own) or nil
  return own or env_columns(getenv or os.getenv) or 80
end

--- Whether progress on `stream` is live, and the columns it may use:
-- mode "tty" or "plain" as given; "auto": plain in CI (CI set, not
-- "false") or with TERM=dumb, else live on a terminal. The width is
-- M.width's on a terminal; elsewhere COLUMNS, else 80. getenv: os.getenv
-- or the command's.
function M.choose(mode, stream, getenv)
  getenv = getenv or os.getenv
  local core = require("empirical.core")
  local file = io.type(stream) == "file"
  local width = M.width(stream, getenv) or env_columns(getenv) or 80
  if mode ~= "auto" then return mode == "tty", width end
  local ci, term = getenv("CI"), getenv("TERM")
  if (ci and ci ~= "" and ci ~= "false") or term == "dumb" then return false, width end
  return file and core.isatty(stream) == true, width
end

--- stream: a file (io.stderr); live: rewrite in place; width: columns.
function M.new(stream, live, width)
  local p = { stream = stream, live = live, width = math.max(20, (width or 80) - 1), lines = {}, order = {},
              drawn = 0, seen = {} }

  -- Move up over the live block and clear it.
  local function erase()
    if p.drawn > 0 then stream:write(format("\27[%dA\r\27[J", p.drawn)) end
    p.drawn = 0
  end

  local function draw()
    for _, key in ipairs(p.order) do stream:write("\r\27[K", fit(p.lines[key], p.width), "\n") end
    p.drawn = #p.order
    stream:flush()
  end

  function p.poll(lane, detail, info)
    local text = M.line(lane.label, detail)
    if not p.lines[lane] then p.order[#p.order + 1] = lane end
    if live then
      p.lines[lane] = text .. "  " .. clock(info and info.elapsed)
      erase()
      draw()
    elseif p.seen[lane] ~= text then
      p.seen[lane], p.lines[lane] = text, text
      stream:write(text, " (", clock(info and info.elapsed), ")\n")
      stream:flush()
    end
  end

  function p.say(text)
    if live then erase() end
    stream:write(text, "\n")
    if live then draw() else stream:flush() end
  end

  -- Clear the live lines and stop drawing them: what follows (the cancels
  -- after a signal, the closing lines) starts where they were, and no stale
  -- line is left on the screen. Each run's end has had its own message.
  function p.close()
    if live then erase() stream:flush() end
    p.order, p.lines, p.drawn = {}, {}, 0
  end

  return p
end

return M
