--- empirical.fake.json: lua-cjson for the fake, with what cjson 2.1.0
-- lacks: a way to write an empty array (it writes every empty table as {}).
-- json.list(t) marks a list that may be empty; encode writes it as [].
local cjson = require("cjson").new()
cjson.decode_invalid_numbers(false)   -- NaN, Infinity and hex are not JSON

local M = { null = cjson.null }

-- An empty list goes through cjson as this string and comes out as [].
local EMPTY = "\1empty-list-" .. tostring(os.time()) .. tostring({}):gsub("%W", "")
local EMPTY_JSON = cjson.encode(EMPTY):gsub("%p", "%%%0")

function M.list(t)
  if next(t) == nil then return EMPTY end
  return t
end

function M.encode(value)
  if value == nil then return "" end
  return (cjson.encode(value):gsub(EMPTY_JSON, "[]"))
end

--- The value, or nil and cjson's message.
function M.decode(text)
  local ok, value = pcall(cjson.decode, text)
  if ok then return value end
  return nil, tostring(value)
end

return M
