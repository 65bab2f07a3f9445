--- empirical.fake.server: the fake's HTTP/1.1 server. Each connection is a
-- coroutine over luasocket's select (keep-alive, pipelining-safe), TLS goes
-- through lua-sec. It knows nothing of the API: every request goes to
-- handle(req, conn), and the answer it returns is written, or played as a
-- fault (held back, dropped, trickled).
--
-- An answer: {status=, body= (string, or a list of strings sent in turn),
-- content_type=, headers=, delay= (seconds before answering), drop=
-- ("before_response" | "mid_body"), trickle= (seconds between body bytes)}.
--
-- Debian's lua-copas and lua-http do not support Lua 5.4, hence this.
local found, socket = pcall(require, "socket")
if not found then   -- the empirical rock's tree holds these files too; luasocket comes with empirical-fake
  error("empirical.fake needs luasocket: luarocks install empirical-fake, or apt-get install lua-socket ("
        .. tostring(socket) .. ")", 0)
end

local M = {}

local MAX_HEADER_BYTES = 64 * 1024

-- What a non-blocking socket (plain or lua-sec) is waiting for, from its error.
local WAIT_FOR = { timeout = "read", wantread = "read", wantwrite = "write" }

-- A coroutine yields ("read", sock), ("write", sock) or ("sleep", until).
local function recv(sock, pattern)
  local buffer = ""
  while true do
    local data, err, partial = sock:receive(pattern, buffer)
    if data then return data end
    if not WAIT_FOR[err] then return nil, err end
    buffer = partial
    coroutine.yield(WAIT_FOR[err], sock)
  end
end

local function send(sock, data)
  local i = 1
  while i <= #data do
    local last, err, partial = sock:send(data, i)
    if last then
      i = last + 1
    elseif WAIT_FOR[err] then
      i = partial + 1
      coroutine.yield(err == "wantread" and "read" or "write", sock)
    else
      return nil, err
    end
  end
  return true
end

local function handshake(sock)
  while true do
    local ok, err = sock:dohandshake()
    if ok then return true end
    if not WAIT_FOR[err] then return nil, err end
    coroutine.yield(WAIT_FOR[err], sock)
  end
end

local function sleep(seconds)
  if seconds > 0 then coroutine.yield("sleep", socket.gettime() + seconds) end
end

local function new_scheduler()
  local waiting = {}   -- coroutine -> { mode, arg }
  local S = {}

  function S.spawn(fn, ...)
    S.resume(coroutine.create(fn), ...)
  end

  function S.resume(co, ...)
    local ok, mode, arg = coroutine.resume(co, ...)
    if not ok then
      io.stderr:write("empirical.fake: ", tostring(mode), "\n")
      waiting[co] = nil
    elseif coroutine.status(co) == "dead" then
      waiting[co] = nil
    else
      waiting[co] = { mode = mode, arg = arg }
    end
  end

  -- Wait up to max_wait for sockets and timers; resume what is ready.
  -- False when `watched` (a descriptor, see M.serve) says to stop.
  function S.step(server, on_accept, max_wait, watched)
    local readers, writers, owner = { server, watched }, {}, {}
    local now, timeout = socket.gettime(), max_wait
    for co, w in pairs(waiting) do
      if w.mode == "read" then
        readers[#readers + 1], owner[w.arg] = w.arg, co
      elseif w.mode == "write" then
        writers[#writers + 1], owner[w.arg] = w.arg, co
      elseif w.mode == "sleep" then
        timeout = math.min(timeout, math.max(0, w.arg - now))
      end
    end
    local readable, writable = socket.select(readers, writers, timeout)
    local ready = {}
    for _, s in ipairs(readable) do
      if s == watched then return false end
      if s == server then on_accept() else ready[#ready + 1] = owner[s] end
    end
    for _, s in ipairs(writable) do ready[#ready + 1] = owner[s] end
    now = socket.gettime()
    for co, w in pairs(waiting) do
      if w.mode == "sleep" and w.arg <= now then ready[#ready + 1] = co end
    end
    for _, co in ipairs(ready) do
      if waiting[co] then S.resume(co) end
    end
    return true
  end

  return S
end

local REASONS = {
  [200] = "OK", [301] = "Moved Permanently", [302] = "Found", [307] = "Temporary Redirect",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [408] = "Request Timeout", [412] = "Precondition Failed", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

local function head(status, content_type, length, headers)
  local lines = { ("HTTP/1.1 %d %s"):format(status, REASONS[status] or "Status"),
                  "Content-Type: " .. content_type, "Content-Length: " .. length }
  for name, value in pairs(headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- One request: {method, path (the target as sent), route (without the
-- query), query (after "?", or ""), headers (lower-case names), body}.
local function read_request(sock)
  local line, err = recv(sock, "*l")
  while line == "" do line, err = recv(sock, "*l") end  -- stray CRLF between requests
  if not line then return nil, err end
  local method, target = line:match("^(%u+) (%S+) HTTP/1%.[01]$")
  if not method then return nil, "bad request line" end
  local headers, size = {}, 0
  while true do
    local h = recv(sock, "*l")
    if not h then return nil, "closed in headers" end
    if h == "" then break end
    size = size + #h
    if size > MAX_HEADER_BYTES then return nil, "headers too large" end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local body = ""
  local length = tonumber(headers["content-length"] or "0")
  if length and length > 0 then
    body = recv(sock, length)
    if not body then return nil, "closed in body" end
  end
  local route, query = target:match("^([^?]*)%??(.*)$")
  return { method = method, path = target, route = route, query = query, headers = headers, body = body }
end

-- Write an answer; false when the connection must close.
local function play(sock, a)
  sleep(a.delay or 0)
  if a.drop == "before_response" then return false end
  local chunks = type(a.body) == "table" and a.body or { a.body or "" }
  local length = 0
  for _, c in ipairs(chunks) do length = length + #c end
  local h = head(a.status or 200, a.content_type or "application/json", length, a.headers)
  if a.drop == "mid_body" then
    local body = table.concat(chunks)
    send(sock, h .. body:sub(1, math.floor(#body / 2)))
    return false
  end
  if a.trickle then
    send(sock, h)
    local body = table.concat(chunks)
    for i = 1, #body do
      if not send(sock, body:sub(i, i)) then return false end
      sleep(a.trickle)
    end
    return true
  end
  if #chunks == 1 then return send(sock, h .. chunks[1]) ~= nil end
  if not send(sock, h) then return false end
  for _, c in ipairs(chunks) do
    if not send(sock, c) then return false end
  end
  return true
end

local function serve_connection(opts, sock, conn)
  sock:settimeout(0)
  if opts.tls_context then
    sock = require("ssl").wrap(sock, opts.tls_context)
    sock:settimeout(0)
    if not handshake(sock) then sock:close() return end   -- e.g. a client that refused the certificate
  end
  while true do
    local req = read_request(sock)
    if not req then break end
    local answer = opts.handle(req, conn)
    if not play(sock, answer) then break end
    if (req.headers.connection or ""):lower() == "close" then break end
  end
  sock:close()
end

-- Standard output as select sees it: on Linux a pipe's write end reads as
-- ready (an error) once nobody holds its read end.
local STDOUT = { getfd = function() return 1 end, dirty = function() return false end }

--- Serve until opts.stopped() is true, or opts.max_idle seconds pass with no
-- request. opts: host, port, tls_cert, tls_key (PEM files: both for https),
-- max_idle, handle(req, conn) -> answer, on_ready(url) once the port is bound,
-- exit_with_pipe (stop when standard output, a pipe, loses its reader).
-- Returns true when done, or nil and why it could not listen.
function M.serve(opts)
  local server, problem = socket.bind(opts.host, opts.port, 1024)   -- a fan-out connects all at once
  if not server then return nil, ("cannot listen on %s:%s: %s"):format(opts.host, opts.port, tostring(problem)) end
  server:settimeout(0)
  local _, port = server:getsockname()
  local scheme = "http"
  if opts.tls_cert and opts.tls_key then
    opts.tls_context = assert(require("ssl").newcontext {
      mode = "server", protocol = "any", certificate = opts.tls_cert, key = opts.tls_key,
      options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
    })
    scheme = "https"
  end
  local scheduler, conns = new_scheduler(), 0
  local last_activity = socket.gettime()
  local handle = opts.handle
  opts.handle = function(req, conn)
    last_activity = socket.gettime()
    return handle(req, conn)
  end
  local function accept()
    local sock = server:accept()
    if sock then
      conns = conns + 1
      scheduler.spawn(serve_connection, opts, sock, conns)
    end
  end
  if opts.on_ready then opts.on_ready(("%s://%s:%d"):format(scheme, opts.host, port)) end
  local watched = opts.exit_with_pipe and STDOUT or nil
  while not opts.stopped() and socket.gettime() - last_activity < opts.max_idle do
    if not scheduler.step(server, accept, 0.5, watched) then break end
  end
  server:close()
  return true
end

M.now = socket.gettime
-- For a handler that must hold a request: it runs inside the connection's coroutine.
M.sleep = sleep

return M
