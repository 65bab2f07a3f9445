-- A TCP proxy on loopback that holds every chunk DELAY_MS before passing it
-- on, each way: an emulated network (the kernel's netem is not available
-- here). Loopback completes the TCP handshake at once, so the first chunk a
-- client sends on a new connection is held two delays more: the SYN, SYN-ACK
-- round trip a real network would cost before it.
--
--   lua5.4 bench/delay_proxy.lua UPSTREAM_PORT DELAY_MS
--
-- Prints "<proxy port> <control port>" once listening. A line "stats\n" on
-- the control port answers "<connections> <flights>\n" and zeroes both: a
-- flight is the TCP handshake, or a run of client-to-server chunks after the
-- server last spoke, so flights per connection are its round trips.
-- "quit\n" ends the proxy.
local socket = require("socket")

local upstream_port, delay = tonumber(arg[1]), tonumber(arg[2]) / 1000
local listener = assert(socket.bind("127.0.0.1", 0))
local control = assert(socket.bind("127.0.0.1", 0))
listener:settimeout(0)
control:settimeout(0)
io.stdout:write(select(2, listener:getsockname()), " ", select(2, control:getsockname()), "\n")
io.stdout:flush()

local connections, flights = 0, 0
local pairs_of = {}      -- socket -> its pair {client=, server=, fresh=, server_spoke=}
local queue = {}         -- pending deliveries {at=, to=, data=} (nil data: close), in order of `at`

local function push(at, to, data)
  queue[#queue + 1] = { at = at, to = to, data = data }
  table.sort(queue, function(a, b) return a.at < b.at end)   -- short: a few entries at a time
end

local function accept()
  local client = listener:accept()
  if not client then return end
  local server = assert(socket.connect("127.0.0.1", upstream_port))
  client:setoption("tcp-nodelay", true)
  server:setoption("tcp-nodelay", true)
  local pair = { client = client, server = server, fresh = true, server_spoke = true }
  pairs_of[client], pairs_of[server] = pair, pair
  connections, flights = connections + 1, flights + 1
end

local function read(sock)
  local pair = pairs_of[sock]
  sock:settimeout(0)
  local data, err, partial = sock:receive(65536)
  data = data or partial
  local now = socket.gettime()
  local from_client = sock == pair.client
  local to = from_client and pair.server or pair.client
  if data and #data > 0 then
    local extra = 0
    if from_client then
      if pair.fresh then extra, pair.fresh = 2 * delay, false end
      if pair.server_spoke then flights, pair.server_spoke = flights + 1, false end
    else
      pair.server_spoke = true
    end
    push(now + delay + extra, to, data)
  end
  if err == "closed" then
    pairs_of[sock] = nil
    sock:close()
    push(now + delay, to, nil)
  end
end

local function serve_control()
  local c = control:accept()
  if not c then return end
  c:settimeout(1)
  local line = c:receive("*l")
  if line == "stats" then
    c:send(("%d %d\n"):format(connections, flights))
    connections, flights = 0, 0
  elseif line == "quit" then
    c:close()
    os.exit(0)
  end
  c:close()
end

while true do
  local readers = { listener, control }
  for sock in pairs(pairs_of) do readers[#readers + 1] = sock end
  local timeout = 1
  if queue[1] then timeout = math.max(0, queue[1].at - socket.gettime()) end
  local ready = socket.select(readers, nil, timeout)
  for _, sock in ipairs(ready) do
    if sock == listener then accept()
    elseif sock == control then serve_control()
    elseif pairs_of[sock] then read(sock) end
  end
  local now = socket.gettime()
  while queue[1] and queue[1].at <= now do
    local item = table.remove(queue, 1)
    if item.data then
      item.to:settimeout(5)
      item.to:send(item.data)
    else
      pairs_of[item.to] = nil
      item.to:close()
    end
  end
end
