-- Shared by the specs: a fake API per file, clients for it, and a way to
-- run the example scripts as a CI job would.
local fake = require("empirical.fake")

local M = {}

-- The interpreter running the specs (lua5.4, lua5.1, luajit...), for
-- subprocesses that must load the same build of the module.
M.LUA = arg and arg[-1] or "lua5.4"

function M.start_fake(options)
  return assert(fake.spawn(options))
end

-- A client for the fake, with retries fast enough for specs.
function M.client(f, options)
  local empirical = require("empirical")
  local opts = { token = f.token, base_url = f.url }
  for k, v in pairs(options or {}) do opts[k] = v end
  return assert(empirical.new(opts))
end

-- A file's whole text (binary-safe).
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a command with extra environment variables (false unsets one), and
-- this process's module paths when it runs this interpreter; returns exit
-- code, stdout, stderr.
function M.run(argv, env)
  local err_file = os.tmpname()
  local unset, set = {}, {}
  local vars = argv[1] == M.LUA and { LUA_PATH = package.path, LUA_CPATH = package.cpath } or {}
  for name, value in pairs(env or {}) do vars[name] = value end
  for name, value in pairs(vars) do
    if value == false then unset[#unset + 1] = "-u " .. name
    else set[#set + 1] = name .. "=" .. M.shell_quote(value) end
  end
  local parts = { "env", table.concat(unset, " "), table.concat(set, " ") }
  for _, a in ipairs(argv) do parts[#parts + 1] = M.shell_quote(a) end
  local pipe = assert(io.popen(table.concat(parts, " ") .. " 2>" .. err_file, "r"))
  local out = pipe:read("*a")
  local ok, _, code = pipe:close()
  if code == nil then code = ok and 0 or 1 end   -- 5.1 reports no exit code
  local f = assert(io.open(err_file, "r"))
  local err = f:read("*a")
  f:close()
  os.remove(err_file)
  return code, out, err
end

-- bin/empirical against a fake as CI runs it: the fake's key and address,
-- CI=true, none of the caller's project, dashboard or GitHub variables,
-- then `base` (a spec file's own defaults) and `env` on top (false unsets
-- one). Returns exit code, stdout, stderr; fails the spec on a Lua
-- traceback, which the command must never print.
function M.run_command(server, argv, env, base)
  local full = { M.LUA, "bin/empirical" }
  for _, a in ipairs(argv) do full[#full + 1] = a end
  local vars = { EMPIRICALRUN_KEY = server.token, EMPIRICALRUN_API_URL = server.url, CI = "true",
                 EMPIRICALRUN_PROJECT = false, EMPIRICALRUN_DASHBOARD_URL = false, GITHUB_ACTIONS = false,
                 GITHUB_STEP_SUMMARY = false }
  for k, v in pairs(base or {}) do vars[k] = v end
  for k, v in pairs(env or {}) do vars[k] = v end
  local code, out, err = M.run(full, vars)
  assert((out .. err):find("stack traceback", 1, true) == nil, err)
  return code, out, err
end

-- bin/empirical `argv` in the background against a fake, as run_command
-- sets it up: returns its pid, and a function that waits for it and
-- returns exit code, stdout, stderr.
function M.start_command(server, argv)
  local base = os.tmpname()
  local vars = { "EMPIRICALRUN_KEY=" .. server.token, "EMPIRICALRUN_API_URL=" .. server.url, "CI=true",
                 "LUA_PATH=" .. M.shell_quote(package.path), "LUA_CPATH=" .. M.shell_quote(package.cpath) }
  local quoted = {}
  for i, a in ipairs(argv) do quoted[i] = M.shell_quote(a) end
  local command = ("set -m; env -u EMPIRICALRUN_PROJECT -u EMPIRICALRUN_DASHBOARD_URL -u GITHUB_STEP_SUMMARY " ..
                   "-u GITHUB_ACTIONS %s %s bin/empirical %s >%s.out 2>%s.err & echo $!; wait $!; echo $? >%s.code")
                  :format(table.concat(vars, " "), M.LUA, table.concat(quoted, " "), base, base, base)
  local pipe = assert(io.popen("bash -c " .. M.shell_quote(command) .. " 2>/dev/null"))
  local pid = pipe:read("*l")
  return pid, function()
    pipe:close()
    os.remove(base)
    return tonumber(M.take_file(base .. ".code")), M.take_file(base .. ".out"), M.take_file(base .. ".err")
  end
end

-- Wait (up to 8 s) until check() is true; raises naming `what` otherwise.
function M.wait_until(what, check)
  for _ = 1, 400 do
    if check() then return end
    os.execute("sleep 0.02")
  end
  error("gave up waiting for " .. what)
end

-- The README's `--json` schema: a check of a document (JSON text) against it
-- with python3-jsonschema, true or the error; and a cleanup.
function M.readme_schema_validator()
  local schema = assert(M.read_file("README.md"):match("### `%-%-json`.-```json\n(.-)```"))
  local file = os.tmpname()
  M.write_file(file, schema)
  return function(text)
    local doc = os.tmpname()
    M.write_file(doc, text)
    local code, _, err = M.run({ "/usr/bin/python3", "-c", [[
import json, sys, jsonschema
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))
]], file, doc }, {})
    os.remove(doc)
    return code == 0 or err
  end, function() os.remove(file) end
end

-- A file's text; the file is removed.
function M.take_file(path)
  local text = M.read_file(path)
  os.remove(path)
  return text
end

-- The element children of an lxp.lom node with this tag.
function M.children(node, tag)
  local out = {}
  for _, c in ipairs(node) do if type(c) == "table" and c.tag == tag then out[#out + 1] = c end end
  return out
end

-- The testsuite elements of a JUnit file (removed), parsed by expat.
function M.junit_suites(path)
  local doc = assert(require("lxp.lom").parse(M.take_file(path)))
  assert(doc.tag == "testsuites", doc.tag)
  return M.children(doc, "testsuite")
end

-- The requests in a fake's log with this method (and a path matching the
-- Lua pattern, when given).
function M.count(log, method, pattern)
  local n = 0
  for _, r in ipairs(log) do
    if r.method == method and (not pattern or r.path:match(pattern)) then n = n + 1 end
  end
  return n
end

-- A CA and two server certificates signed by it, made with the openssl
-- command in a fresh directory: "server" names 127.0.0.1 and localhost,
-- "other" names only api.example.test. Returns the paths.
function M.make_certs()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local function openssl(args)
    local ok = os.execute("openssl " .. args .. " >/dev/null 2>&1")
    assert(ok, "openssl " .. args)
  end
  openssl(("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=empirical-test-ca -keyout %s/ca.key -out %s/ca.pem")
    :format(dir, dir))
  for name, san in pairs { server = "IP:127.0.0.1,DNS:localhost", other = "DNS:api.example.test" } do
    local p = dir .. "/" .. name
    openssl(("req -newkey rsa:2048 -nodes -subj /CN=%s -keyout %s.key -out %s.csr"):format(name, p, p))
    local ext = io.open(p .. ".ext", "w")
    ext:write("subjectAltName=", san, "\n")
    ext:close()
    openssl(("x509 -req -in %s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 2 -extfile %s.ext -out %s.pem")
      :format(p, dir, dir, p, p))
  end
  return { dir = dir, ca = dir .. "/ca.pem", server_cert = dir .. "/server.pem", server_key = dir .. "/server.key",
           other_cert = dir .. "/other.pem", other_key = dir .. "/other.key" }
end

-- A port nothing listens on now (bound, read, released).
function M.free_port()
  local socket = require("socket")
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- This process's id (/proc/self, read by this process).
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*n")
  f:close()
  return ("%d"):format(pid)
end

function M.remove_dir(dir)
  os.execute("rm -rf " .. M.shell_quote(dir))
end

return M
