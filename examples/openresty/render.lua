--- Write the release service's nginx.conf from nginx.conf.in and the
-- environment. From the repository root, with any Lua (5.1 to 5.4, LuaJIT):
--
--   luajit examples/openresty/render.lua "$EMPIRICAL_RELEASE_DIR/nginx.conf"
--
-- EMPIRICALRUN_API_URL       the API (default https://api.empirical.run): https,
--                            or plain http to loopback only, as the client allows
-- EMPIRICAL_RELEASE_LISTEN   nginx's listen address (default 127.0.0.1:8080)
-- EMPIRICAL_RELEASE_CA_FILE  the CAs nginx trusts for the API (default: the system's)
-- EMPIRICAL_RELEASE_TIMEOUT  seconds nginx waits on the API while sending or reading (default 30)
--
-- The secrets are not written anywhere: nginx reads EMPIRICALRUN_KEY and
-- EMPIRICAL_RELEASE_TOKEN from its environment when it starts. The file is
-- replaced only when everything checks out, so a typo never leaves an empty config.

local DEFAULTS = {
  EMPIRICALRUN_API_URL = "https://api.empirical.run",
  EMPIRICAL_RELEASE_LISTEN = "127.0.0.1:8080",
  EMPIRICAL_RELEASE_CA_FILE = "/etc/ssl/certs/ca-certificates.crt",
  EMPIRICAL_RELEASE_TIMEOUT = "30",
}

-- Characters nginx's config or a Lua path template would read as syntax.
local UNSAFE = "[%s;{}\"'$\\#?]"

local function fail(message)
  io.stderr:write("render.lua: ", message, "\n")
  os.exit(1)
end

local function setting(name)
  local value = os.getenv(name)
  if value == nil or value == "" then value = DEFAULTS[name] end   -- empty counts as unset
  if value:find(UNSAFE) then fail(name .. " must not contain spaces, quotes or any of ; { } $ \\ # ?") end
  return value
end

local function is_loopback(host)
  return host == "localhost" or host:match("^127%.") ~= nil or host == "::1"
end

-- The API's URL as nginx needs it, or exit with what is wrong. Only
-- scheme://host[:port][/path] is accepted: anything else is refused, not guessed.
local function api(url)
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then fail("EMPIRICALRUN_API_URL must start with https:// (got " .. url .. ")") end
  local host, port, path = rest:match("^%[([%x:]+)%]:?(%d*)(.*)$")
  local ipv6 = host ~= nil
  if not host then host, port, path = rest:match("^([%w.-]+):?(%d*)(.*)$") end
  if not host or (path ~= "" and not path:match("^/[%w%-._~/]*$")) then
    fail("EMPIRICALRUN_API_URL must be scheme://host[:port][/path], without a user, query or fragment (got "
         .. url .. ")")
  end
  if port == "" then port = scheme == "https" and "443" or "80" end
  if tonumber(port) < 1 or tonumber(port) > 65535 then fail("EMPIRICALRUN_API_URL: bad port " .. port) end
  if scheme == "http" and not is_loopback(host) then
    fail("EMPIRICALRUN_API_URL is plain http to a host that is not loopback: the API key would cross the network "
         .. "in clear; use https")
  end
  if scheme == "https" and (ipv6 or host:match("^[%d.]+$")) then
    fail("EMPIRICALRUN_API_URL: nginx checks the API's certificate against a host name, not an IP address; "
         .. "use the name the certificate holds")
  end
  local bracketed = ipv6 and "[" .. host .. "]" or host
  local default_port = (scheme == "https" and port == "443") or (scheme == "http" and port == "80")
  return {
    API_SCHEME = scheme,
    API_SERVER = bracketed .. ":" .. port,                              -- the upstream's server line
    API_NAME = host,                                                    -- SNI and the certificate check
    API_AUTHORITY = default_port and bracketed or bracketed .. ":" .. port,   -- the Host header
    API_PATH = path:gsub("/+$", ""),
  }
end

-- a/b/../c -> a/c, for a readable root in the config.
local function normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then parts[#parts] = nil elseif part ~= "." then parts[#parts + 1] = part end
  end
  return "/" .. table.concat(parts, "/")
end

local function readable(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local output = arg[1]
if not output or arg[2] then fail('usage: render.lua OUTPUT (e.g. "$EMPIRICAL_RELEASE_DIR/nginx.conf")') end

local here = arg[0]:match("^(.*)/[^/]*$") or "."
if here:sub(1, 1) ~= "/" then
  here = (os.getenv("PWD") or fail("PWD is not set: run it from a shell")) .. "/" .. here
end
here = normalize(here)

local values = api(setting("EMPIRICALRUN_API_URL"))
values.LISTEN = setting("EMPIRICAL_RELEASE_LISTEN")
values.CA_FILE = setting("EMPIRICAL_RELEASE_CA_FILE")
values.TIMEOUT = setting("EMPIRICAL_RELEASE_TIMEOUT")
if not values.TIMEOUT:match("^%d+$") or tonumber(values.TIMEOUT) < 1 or tonumber(values.TIMEOUT) > 3600 then
  fail("EMPIRICAL_RELEASE_TIMEOUT must be whole seconds from 1 to 3600 (got " .. values.TIMEOUT .. ")")
end
values.ROOT = normalize(here .. "/../..")
if values.ROOT:find(UNSAFE) then
  fail("the checkout's path " .. values.ROOT .. " holds a space, a quote or one of ; { } $ \\ # ?")
end
if not readable(values.CA_FILE) then fail("EMPIRICAL_RELEASE_CA_FILE: cannot read " .. values.CA_FILE) end
if not readable(values.ROOT .. "/build/jit/empirical/core.so") then
  fail("no module for nginx's LuaJIT in " .. values.ROOT .. "/build/jit: run make LUA_VERSION=jit first")
end

local template = assert(io.open(here .. "/nginx.conf.in", "rb"))
local text = template:read("*a")
template:close()
-- Only ${UPPER_CASE} names are ours; nginx's own $variables are lower case and stay as they are.
text = text:gsub("%${([%u_]+)}", function(name)
  return values[name] or fail("nginx.conf.in names ${" .. name .. "}, which render.lua does not know")
end)

local temporary = output .. ".tmp"
local f, err = io.open(temporary, "wb")
if not f then fail("cannot write " .. temporary .. ": " .. tostring(err)) end
f:write("# Written by examples/openresty/render.lua from nginx.conf.in: change the template or the\n",
        "# environment and render again rather than editing this file.\n", text)
f:close()
local ok, rename_err = os.rename(temporary, output)
if not ok then os.remove(temporary) fail("cannot replace " .. output .. ": " .. tostring(rename_err)) end
io.stderr:write(("render.lua: wrote %s (API %s://%s%s, listening on %s)\n")
  :format(output, values.API_SCHEME, values.API_AUTHORITY, values.API_PATH, values.LISTEN))
