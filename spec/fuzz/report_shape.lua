-- What holds for every answer of empirical.playwright.parse, whatever the
-- input: the oracle of spec/fuzz/fuzz_report.c and of the mutation spec in
-- spec/playwright_spec.lua. check(r, err) raises, saying what broke.
local KEYS = { "expected", "unexpected", "flaky", "skipped" }
local CAP = require("empirical.playwright").ERROR_CAP

local function whole(v)
  if math.type then return math.type(v) == "integer" and v >= 0 end
  return type(v) == "number" and v >= 0 and v % 1 == 0
end

local function entry(e)
  assert(type(e.title) == "string", "title is a string")
  assert(type(e.path) == "table" and e.path[#e.path] == e.title, "path ends with the title")
  for i = 1, #e.path - 1 do assert(type(e.path[i]) == "string" and e.path[i] ~= "", "describe titles are non-empty strings") end
  assert(whole(e.retries), "retries is a whole number")
  for _, k in ipairs({ "line", "column" }) do assert(e[k] == nil or whole(e[k]), k .. " is a whole number") end
  assert(type(e.outcome) == "string", "outcome is a string")
  assert(e.duration == nil or (type(e.duration) == "number" and e.duration >= 0), "duration is a number >= 0")
  for _, k in ipairs({ "file", "project", "status" }) do assert(e[k] == nil or type(e[k]) == "string", k .. " is a string") end
  assert((e.message == nil) == (e.error == nil), "message and error come together")
  if e.message then
    assert(#e.message <= CAP and #e.error <= CAP, "message and error are capped")
    assert(e.message ~= "" and not e.message:find("[\27\n]"), "message is one stripped, non-empty line")
    assert(not e.error:find("\27", 1, true), "error is stripped")
  end
end

return function(r, err)
  if r == nil then
    assert(type(err) == "table" and (err.kind == "decode" or err.kind == "invalid") and type(err.message) == "string",
           "a failure carries a decode error")
    return
  end
  for _, k in ipairs(KEYS) do assert(whole(r.stats[k]) and whole(r.counted[k]), "count " .. k) end
  assert(#r.failed == r.counted.unexpected, "one failed entry per unexpected test")
  assert(#r.flaky == r.counted.flaky, "one flaky entry per flaky test")
  assert(#r.passed == r.counted.expected, "one passed entry per expected test")
  assert(#r.skipped == r.counted.skipped, "one skipped entry per skipped test")
  local listed, by_outcome = {}, { expected = r.passed, unexpected = r.failed, flaky = r.flaky, skipped = r.skipped }
  for _, e in ipairs(r.tests) do
    entry(e)
    local into = by_outcome[e.outcome]
    if into then
      listed[e.outcome] = (listed[e.outcome] or 0) + 1
      assert(rawequal(into[listed[e.outcome]], e), "the outcome lists hold the entries of tests, in order")
    end
  end
  assert(#r.tests >= #r.passed + #r.failed + #r.flaky + #r.skipped, "every listed entry is a test")
  for _, e in ipairs(r.errors) do assert(type(e.message) == "string" and type(e.error) == "string", "report errors") end
end
