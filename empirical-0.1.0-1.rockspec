rockspec_format = "3.0"
package = "empirical"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/empirical-lua.git",
  tag = "v0.1.0",
}
description = {
  summary = "Trigger, re-run and read Empirical end-to-end test runs from Lua",
  detailed = [[
    A C core (libcurl, lua-cjson) that validates every input against the
    vendor's schema before sending, with a thin Lua layer for release scripts,
    Neovim and OpenResty. The fake of the API to test scripts against is its
    own rock, empirical-fake.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1.0",
}
-- libcurl's headers: Debian puts curl/curl.h under the multiarch include
-- directory, which the compiler searches but luarocks' header probe does not,
-- so no external_dependencies probe here (Debian: libcurl4-openssl-dev).
build = {
  type = "builtin",
  modules = {
    ["empirical.core"] = {
      sources = {
        "csrc/client.c", "csrc/compat.c", "csrc/decode.c", "csrc/empirical.c", "csrc/errors.c",
        "csrc/events.c", "csrc/json.c", "csrc/marshal.c", "csrc/overrides.c", "csrc/request.c", "csrc/retry.c", "csrc/signals.c", "csrc/url.c",
        "csrc/schema.c", "csrc/text.c", "csrc/validate.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "m" },
    },
    ["empirical"] = "lua/empirical/init.lua",
    ["empirical.report"] = "lua/empirical/report.lua",
    ["empirical.gate"] = "lua/empirical/gate.lua",
    ["empirical.cli"] = "lua/empirical/cli.lua",
    ["empirical.cli.args"] = "lua/empirical/cli/args.lua",
    ["empirical.cli.calls"] = "lua/empirical/cli/calls.lua",
    ["empirical.cli.commands"] = "lua/empirical/cli/commands.lua",
    ["empirical.cli.gate_command"] = "lua/empirical/cli/gate_command.lua",
    ["empirical.cli.help"] = "lua/empirical/cli/help.lua",
    ["empirical.cli.progress"] = "lua/empirical/cli/progress.lua",
    ["empirical.cli.publish"] = "lua/empirical/cli/publish.lua",
    ["empirical.cli.render"] = "lua/empirical/cli/render.lua",
    ["empirical.playwright"] = "lua/empirical/playwright.lua",
    ["empirical.poll"] = "lua/empirical/poll.lua",
    ["empirical._meta"] = "lua/empirical/_meta.lua",   -- LuaLS definitions, never required
  },
  install = {
    bin = { empirical = "bin/empirical" },   -- luarocks wraps it to run on the tree's Lua
  },
}
test = {
  type = "busted",
}
