-- nginx-light on loopback for the benchmark, with a config and a
-- certificate written at run time: fixed JSON for the endpoints over HTTP
-- and HTTPS, keep-alive, TLS 1.2 and 1.3 (nginx 1.22 offers neither 1.3 nor
-- a protocol every client negotiates well unless told), a large run detail
-- served from a file (run 99), and a location answering after 50 ms.
local util = require("util")
local free_port = require("helper").free_port   -- spec/helper.lua

local M = {}

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  default_type application/json;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {
    listen 127.0.0.1:{http};
    listen 127.0.0.1:{https} ssl;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /api/test-runs { return 200 '{created}'; }
    location ~ ^/api/test-runs/\d+/re-run$ { return 200 '{created}'; }
    location ~ ^/api/test-runs/\d+$ { return 200 '{detail}'; }
    location ~ ^/small/api/test-runs/\d+$ { return 200 '{small}'; }
    location ~ ^/slow/api/test-runs/\d+$ { echo_sleep 0.05; echo -n '{detail}'; }
    location = /api/test-runs/99 { root {dir}/static; }
  }
}
]]

--- Start nginx serving `detail` for gets (`big` for run 99, from a file),
-- `created` for triggers and `small` under /small/api/test-runs/N. Returns {http=, https=, ca=, dir=, stop=, pids=}.
function M.start(bodies)
  local dir = os.tmpname()
  os.remove(dir)
  util.sh("mkdir -p " .. dir .. "/static/api/test-runs")
  local http, https = free_port(), free_port()
  util.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
           .. "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1"):format(dir, dir))
  local values = { dir = dir, http = http, https = https, created = bodies.created, detail = bodies.detail,
                   small = bodies.small }
  local conf = CONF:gsub("{(%w+)}", function(k) return tostring(values[k]) end)
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  f = assert(io.open(dir .. "/static/api/test-runs/99", "w"))
  f:write(bodies.big)
  f:close()
  util.sh(("nginx -p %s -c %s/nginx.conf"):format(dir, dir))
  local self = { dir = dir, ca = dir .. "/cert.pem",
                 http = ("http://127.0.0.1:%d"):format(http), https = ("https://127.0.0.1:%d"):format(https) }
  function self.stop()
    os.execute(("nginx -p %s -c %s/nginx.conf -s stop 2>/dev/null; sleep 0.2; rm -rf %s"):format(dir, dir, dir))
  end
  --- Pin nginx's processes to the CPUs in `cpus` ("0" or "0,1").
  function self.pin(cpus)
    local master = util.read("cat " .. dir .. "/nginx.pid"):match("%d+")
    util.sh(("taskset -a -cp %s %s >/dev/null; for p in $(pgrep -P %s); do taskset -a -cp %s $p >/dev/null; done")
              :format(cpus, master, master, cpus))
  end
  return self
end

return M
