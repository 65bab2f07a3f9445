-- What holds for every answer of empirical.core.encode(op, params, strict),
-- whatever the params: the oracle of spec/fuzz/fuzz_encode.c, also run by
-- spec/fuzz_findings_spec.lua. check(op, params, req, err) raises, saying
-- what broke.
--
-- A request is checked against the params it came from: the method is the
-- row's; each path or query field reached the target (ids as their exact
-- digits, query values percent-encoded to plain ASCII, in schema order);
-- every other field reached the body, with every number read back as the
-- same value: integers exactly (beyond 2^53 and at the integer edges too),
-- floats as the same double. The body is read with number tokens kept as
-- text, so the check does not depend on what cjson's decoder rounds.
-- Params are read raw (next, rawget): the encoder never calls metamethods.
local cjson = require("cjson")
local core = require("empirical.core")

local ROWS = {}
-- The schema's list fields, which an empty table leaves out of the body.
local EMPTY_LEFT_OUT = { ["trigger.tags"] = true, ["trigger.environment_variables_overrides"] = true }
for _, row in ipairs(core.OPERATIONS) do ROWS[row.name] = row end

-- The JSON text with each number token outside strings turned into the
-- string "\0" .. token, so that cjson keeps every digit; then decoded.
-- Encoded strings never hold a NUL (validation refuses it), so no string of
-- the body can pass for a number.
local function decode_exact(text)
  local out, i, n = {}, 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local j = i + 1
      while true do
        local k = assert(text:find('["\\]', j), "an unterminated string in the body")
        if text:sub(k, k) == '"' then j = k break end
        j = k + 2
      end
      out[#out + 1] = text:sub(i, j)
      i = j + 1
    elseif c:find("[-%d]") then
      local token = assert(text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i), "a malformed number in the body")
      out[#out + 1] = '"\\u0000' .. token .. '"'
      i = i + #token
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return cjson.decode(table.concat(out))
end

-- Numbers back from the "\0" strings; a NUL anywhere else is a bug (what a
-- number placeholder of json.c that escaped its splice would look like).
local function numbers_back(v)
  if type(v) == "string" then
    if v:sub(1, 1) == "\0" then return assert(tonumber(v:sub(2)), "a number token that is no number") end
    assert(not v:find("\0", 1, true), "a NUL in a string of the body")
    return v
  end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do
      assert(type(k) ~= "string" or not k:find("\0", 1, true), "a NUL in a key of the body")
      t[k] = numbers_back(x)
    end
    return t
  end
  return v
end

-- ipairs without __index: the params may carry metatables.
local function ipairs_raw(t)
  return function(_, i)
    local v = rawget(t, i + 1)
    if v ~= nil then return i + 1, v end
  end, t, 0
end

local function show(v)
  if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
  if type(v) == "number" then return ("%.17g"):format(v) end
  return tostring(v)
end

-- The value sent must read back as the value given. Numbers compare
-- exactly: on 5.4 an integer and a float are equal only when they are the
-- same number, so 9007199254740993 never matches 9007199254740992.0.
local function same(given, sent, where)
  if type(given) == "number" then
    assert(type(sent) == "number" and sent == given,
           ("%s: %s went out as %s"):format(where, show(given), show(sent)))
  elseif type(given) == "table" then
    assert(type(sent) == "table", where .. ": a table went out as " .. type(sent))
    for k, x in next, given do same(x, sent[k], where .. "." .. tostring(k)) end
    for k in next, sent do assert(rawget(given, k) ~= nil, where .. ": an extra key " .. tostring(k)) end
  else
    assert(sent == given, ("%s: %s went out as %s"):format(where, tostring(given), tostring(sent)))
  end
end

-- environment_variables_overrides goes out as a list of {name, value},
-- whichever form was given (a map is sent sorted by name).
local function same_overrides(given, sent)
  assert(type(sent) == "table", "environment_variables_overrides went out as " .. type(sent))
  local want = {}
  if rawget(given, 1) ~= nil then
    for i, item in ipairs_raw(given) do want[i] = { name = rawget(item, "name"), value = rawget(item, "value") } end
  else
    for name, value in next, given do want[#want + 1] = { name = name, value = value } end
    table.sort(want, function(a, b) return a.name < b.name end)
  end
  same(want, sent, "environment_variables_overrides")
end

local function digits(v)
  return ("%d"):format(math.tointeger and math.tointeger(v) or v)
end

-- What a query field's value must read as after percent-decoding.
local function query_text(v)
  if type(v) == "number" then return digits(v) end
  if type(v) == "table" then
    local parts = {}
    for i, id in ipairs_raw(v) do parts[i] = digits(id) end
    return table.concat(parts, ",")
  end
  return v
end

local function check_target(row, params, path)
  local want = row.path:gsub("{(%w+)}", function(name) return digits(rawget(params, name)) end)
  local query
  if path:sub(1, #want) == want then query = path:sub(#want + 1) end
  assert(query, ("path %q does not start with %q"):format(path, want))
  assert(query == "" or (query:sub(1, 1) == "?" and not query:find("[^%w%-%._~%%&=]", 2)),
         "a character of the query is not escaped: " .. query)
  assert(not query:gsub("%%%x%x", ""):find("%%"), "a stray % in the query: " .. query)
  local expected = {}
  for _, name in ipairs(row.query) do
    local v = rawget(params, name)
    if v ~= nil then expected[#expected + 1] = { name, query_text(v) } end
  end
  local i = 0
  for pair in query:gmatch("[?&]([^&]*)") do
    i = i + 1
    local name, value = pair:match("^([^=]*)=(.*)$")
    local e = assert(expected[i], "an extra query parameter: " .. pair)
    assert(name == e[1], ("query parameter %d is %s, expected %s"):format(i, tostring(name), e[1]))
    value = value:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    assert(value == e[2], ("%s went out as %q, expected %q"):format(name, value, e[2]))
  end
  assert(i == #expected, ("%d query parameters went out, expected %d"):format(i, #expected))
end

return function(op, params, req, err)
  local row = assert(ROWS[op], "no such operation")
  if req == nil then
    assert(type(err) == "table" and err.kind == "invalid" and type(err.message) == "string",
           "a refusal carries an invalid error")
    return
  end
  assert(type(req) == "table" and err == nil, "a request alone")
  assert(req.method == row.method, "the method is the row's")
  assert(type(req.path) == "string", "a path")
  check_target(row, params, req.path)
  local outside = {}
  for _, name in ipairs(row.path_params) do outside[name] = true end
  for _, name in ipairs(row.query) do outside[name] = true end
  local expected = {}
  for k, v in next, params do
    -- trigger's lists: an empty one is left out, never sent as {}
    if not outside[k] and not (EMPTY_LEFT_OUT[op .. "." .. k] and next(v) == nil) then expected[k] = v end
  end
  if req.body == nil then
    assert(next(expected) == nil, "no body, yet there were fields to send")
    return
  end
  assert(row.body, op .. " has no body")
  local body = numbers_back(decode_exact(req.body))
  local overrides = op == "trigger" and expected.environment_variables_overrides   -- elsewhere it passes through
  if overrides then
    same_overrides(overrides, body.environment_variables_overrides)
    expected.environment_variables_overrides, body.environment_variables_overrides = nil, nil
  end
  same(expected, body, "body")
end
