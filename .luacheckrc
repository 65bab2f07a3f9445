-- luacheck (Debian lua-check): `make lint`, run by .ci/run.
std = "max"                -- the module runs on Lua 5.1 to 5.4 and LuaJIT
max_line_length = 120
exclude_files = { "build/**" }

files["spec/**"] = {
  std = "+busted",
  max_line_length = 150,   -- table-driven rows read best on one line
}
files["spec/bad_inputs.lua"] = { max_line_length = false }   -- one invalid input per line
files["plugin/**"] = { globals = { "vim" } }                 -- the Neovim plugin: Neovim's API table
files["lua/empirical/nvim/**"] = { globals = { "vim" } }
files["lua/empirical/health/**"] = { globals = { "vim" } }
files["examples/openresty/**"] = { std = "max+ngx_lua" }     -- lua-nginx-module's ngx
files["lua/empirical/_meta.lua"] = { ignore = { "212", "241" } }  -- LuaLS stubs: bodies are empty on purpose
files["bench/**"] = { max_line_length = 130 }  -- shell commands and result rows read best on one line
