-- What holds for every answer of empirical.core.decode(op, status, body, ...),
-- whatever the body: the oracle of spec/fuzz/fuzz_decode.c. check(op, result,
-- err) raises, saying what broke.
--
-- A failure is an error object of a documented kind. A result has no JSON
-- null left in it (null becomes nil), no whole number below 2^53 left as a
-- float (whole numbers become integers), and the run ids callers rely on
-- are numbers below 2^53 (an id a double cannot hold exactly is refused;
-- any other number is one the vendor's schema allows).
local KINDS = { http = true, decode = true }
local EXACT = 2 ^ 53

local function walk(v, where)
  if type(v) == "userdata" then error(where .. ": a JSON null was left in the result") end
  if math.type and math.type(v) == "float" then
    assert(not (v == math.floor(v) and math.abs(v) <= EXACT), where .. ": a whole number left as a float")
  end
  if type(v) == "table" then
    for k, x in pairs(v) do walk(x, where .. "." .. tostring(k)) end
  end
end

local function id(v, where)
  assert(type(v) == "number" and v > -EXACT and v < EXACT, where .. " is a number below 2^53")
end

local IDS = {
  trigger = function(r) id(r.id, "id") end,
  rerun = function(r) id(r.id, "id") end,
  get = function(r) id(r.testRun.id, "testRun.id") end,
  cancel = function() end,
  list = function(r)
    local items = r.test_runs and r.test_runs.items or {}
    for i, item in ipairs(items) do if item.id ~= nil then id(item.id, "items[" .. i .. "].id") end end
  end,
}

return function(op, result, err)
  if result == nil then
    assert(type(err) == "table" and KINDS[err.kind] and type(err.message) == "string",
           "a failure carries an http or decode error")
    return
  end
  assert(err == nil, "a result alone")
  assert(type(result) == "table", "a result is a table")
  walk(result, op)
  assert(IDS[op], "an operation the oracle does not know: " .. op)(result)
end
