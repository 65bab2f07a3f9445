rockspec_format = "3.0"
package = "empirical-fake"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/empirical-lua.git",
  tag = "v0.1.0",
}
description = {
  summary = "A local fake of the Empirical API, to test release scripts against",
  detailed = [[
    An HTTP/1.1 server (luasocket, keep-alive; https through luasec) that
    behaves like the vendor's API: all five test-run endpoints, the run
    state machine on a clock that can be sped up, Playwright JSON reports
    behind summary_url, scripted faults, and a request log. It validates
    requests with the empirical rock's own schema.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "empirical = 0.1.0",
  "lua-cjson >= 2.1.0",
  "luasocket >= 3.0",
  -- luasec: only for https (the tls_cert and tls_key options); install it to use them.
}
-- Pure Lua, so no build step. Not "builtin": that backend also copies the
-- whole lua/ directory, which would ship the empirical rock's files twice.
build = {
  type = "none",
  install = {
    lua = {
      ["empirical.fake"] = "lua/empirical/fake/init.lua",
      ["empirical.fake.api"] = "lua/empirical/fake/api.lua",
      ["empirical.fake.control"] = "lua/empirical/fake/control.lua",
      ["empirical.fake.json"] = "lua/empirical/fake/json.lua",
      ["empirical.fake.report"] = "lua/empirical/fake/report.lua",
      ["empirical.fake.server"] = "lua/empirical/fake/server.lua",
    },
    bin = { ["empirical-fake"] = "examples/fake_api.lua" },
  },
}
