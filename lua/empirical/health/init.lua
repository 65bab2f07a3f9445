--- :checkhealth empirical: the C module loads (which libcurl, which TLS),
-- the settings are valid, an API key is set (never shown), and the API
-- answers with that key. Works with Neovim 0.7's require("health") and
-- with vim.health of later releases.
local M = {}

M.API_WAIT_MS = 15000   -- the check's one request; the editor keeps running meanwhile (vim.wait)

local function reporter()
  local h = vim.health
  if h and h.start then return h end
  h = (h and h.report_start) and h or require("health")
  return { start = h.report_start, ok = h.report_ok, warn = h.report_warn, error = h.report_error,
           info = h.report_info }
end

-- The repository this file belongs to (lua/empirical/health/init.lua).
local function root()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  return vim.fn.fnamemodify(source, ":p:h:h:h:h")
end

local function check_module(h)
  local where = vim.api.nvim_get_runtime_file("lua/empirical/core.so", false)[1]
  local ok, core = pcall(require, "empirical.core")
  if not ok then
    h.error("the C module empirical.core does not load: " .. tostring(core), {
      where and ("rebuild " .. where .. " for Neovim's LuaJIT: run `make nvim` in " .. root())
            or ("build it: run `make nvim` in " .. root() .. " (lazy.nvim: build = \"make nvim\")"),
      "it needs libcurl and lua-cjson for Lua 5.1 (Debian: libcurl4 lua-cjson)",
    })
    return nil
  end
  h.ok(("empirical.core %s loads from %s"):format(tostring(core.VERSION), where or "package.cpath"))
  local version = core.curl_version()
  local curl, tls = version:match("^libcurl/(%S+)%s+(%S+)")
  h.ok(("libcurl %s, TLS by %s"):format(curl or "?", tls or "?"))
  h.info(version)
  return core
end

-- The API answers the settings' key: one list request of one run.
local function check_api(h, config, cfg)
  local opts, problem = config.client_options(cfg)
  if not opts then return h.error(problem) end
  opts.retries, opts.timeout = 0, math.floor(M.API_WAIT_MS / 1000) - 1
  local url = opts.base_url
  local client, err = require("empirical").new(opts)
  if not client then return h.error(require("empirical.nvim.text").error(err)) end
  local req
  req, err = client:start("list", { per_page = 1 })
  if not req then return h.error(tostring(err)) end
  local done, page
  vim.wait(M.API_WAIT_MS, function()
    done, page, err = req:poll()
    return done
  end, 20)
  if not done then
    req:abort()
    client:close()
    return h.error(("%s did not answer within %d s"):format(url, M.API_WAIT_MS / 1000))
  end
  client:close()
  local text = require("empirical.nvim.text")
  if page then
    local project = type(page.project) == "table" and type(page.project.name) == "string" and page.project.name
    return h.ok(("%s answers and accepts the key%s"):format(url, project and (" (project " .. project .. ")") or ""))
  end
  if err.status == 401 or err.status == 403 then
    return h.error(("%s refused the key: %s"):format(url, text.error(err)),
                   { "check $EMPIRICALRUN_KEY (https://dash.empirical.run/settings/api-keys)" })
  end
  h.error(("%s: %s"):format(url, text.error(err)))
end

function M.check()
  local h = reporter()
  h.start("empirical")
  if vim.fn.has("nvim-0.7") == 0 then h.error("needs Neovim 0.7 or later") end
  local core = check_module(h)
  local config = require("empirical.nvim.config")
  local cfg, problem = require("empirical.nvim").config()
  if not cfg then return h.error("settings: " .. problem, { ":help empirical-config" }) end
  local token, where = config.token(cfg)
  if token then h.ok("API key set (from " .. where .. ")")
  else h.error(where, { "export EMPIRICALRUN_KEY before starting Neovim" }) end
  h.info(("API %s%s; test root %s"):format(config.base_url(cfg),
         cfg.project and (", project " .. tostring(cfg.project)) or "",
         vim.fn.fnamemodify(cfg.test_root or vim.fn.getcwd(), ":p")))
  if core and token then check_api(h, config, cfg) end
end

return M
