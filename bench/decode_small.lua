-- N plain cjson.decode of the body a get returns, for callgrind's share of
-- JSON in a get: `lua5.4 bench/decode_small.lua N`
package.path = "./bench/?.lua;" .. package.path
local body = require("bodies").detail(6)
local decode = require("cjson").decode
for _ = 1, tonumber(arg[1]) do decode(body) end
