#!/usr/bin/env lua5.4
-- Start the bundled fake Empirical API. The first line printed is its URL.
--
--   lua5.4 examples/fake_api.lua --port 0 --speed 10 --token fake-token
--   EMPIRICALRUN_API_URL=<url> EMPIRICALRUN_KEY=fake-token lua5.4 your_script.lua
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lua/?.lua;" .. here .. "/../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../?.so;" .. package.cpath

require("empirical.fake").main(arg)
