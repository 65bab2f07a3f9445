-- client:report: a run's summary_url downloaded through the client's own
-- transport and parsed. Two fakes on two ports are two origins: the one the
-- client talks to (the API) and another (storage), each logging what it got.
local empirical = require("empirical")
local helper = require("helper")

local REPORT = helper.read_file("spec/fixtures/playwright/v1.59-flaky.json")

local function detail_with(url, id)
  return { testRun = { id = id or 7, state = "ended", summary_url = url } }
end

describe("client:report", function()
  local api, storage, client

  setup(function()
    api = helper.start_fake {}
    storage = helper.start_fake { token = "storage-token" }
  end)
  teardown(function()
    api:stop()
    storage:stop()
  end)
  before_each(function()
    api:reset()
    storage:reset()
    client = helper.client(api, { retries = 1 })
  end)
  after_each(function() client:close() end)

  local function serve(fake, path, status, body, headers)
    fake:script { method = "GET", path = path, status = status, body = body, content_type = "application/json",
                  headers = headers }
  end

  it("downloads and parses a report on the API's own origin, with the token", function()
    serve(api, "/reports/7.json", 200, REPORT)
    local report = assert(client:report(detail_with(api.url .. "/reports/7.json")))
    local expected = assert(empirical.parse_report(REPORT))
    assert.same(expected, report)
    local log = api:log()
    assert.equal(1, #log)
    assert.equal("Bearer " .. api.token, log[1].headers.authorization)
  end)

  it("never sends the token to another origin", function()
    serve(storage, "/bucket/7.json?X-Signature=abc", 200, REPORT)
    assert(client:report(detail_with(storage.url .. "/bucket/7.json?X-Signature=abc")))
    local log = storage:log()
    assert.equal(1, #log)
    assert.equal("/bucket/7.json?X-Signature=abc", log[1].path)
    assert.is_nil(log[1].headers.authorization)
    assert.is_nil(log[1].headers["x-project-slug"])
    assert.equal(0, #api:log())
  end)

  it("follows a redirect, and never with the token, even back to the API's origin", function()
    serve(api, "/reports/7.json", 302, "", { Location = storage.url .. "/bucket/7.json" })
    serve(storage, "/bucket/7.json", 307, "", { Location = api.url .. "/reports/7-final.json" })
    serve(api, "/reports/7-final.json", 200, REPORT)
    assert(client:report(detail_with(api.url .. "/reports/7.json")))
    local first, last = api:log()[1], api:log()[2]
    assert.equal("Bearer " .. api.token, first.headers.authorization)   -- the API's own URL
    assert.is_nil(storage:log()[1].headers.authorization)
    assert.equal("/reports/7-final.json", last.path)
    assert.is_nil(last.headers.authorization)                           -- after a redirect: never
  end)

  it("stops after five redirects", function()
    for _ = 1, 6 do serve(storage, "/loop", 302, "", { Location = storage.url .. "/loop" }) end
    local report, err = client:report(detail_with(storage.url .. "/loop"))
    assert.is_nil(report)
    assert.equal("http", err.kind)
    assert.truthy(err.message:find("more than 5 redirects", 1, true), err.message)
    assert.equal(6, #storage:log())
  end)

  it("refuses a redirect to plain http off loopback, sending nothing there", function()
    serve(api, "/reports/7.json", 301, "", { Location = "http://127.0.0.1.example.net/7.json" })
    local _, err = client:report(detail_with(api.url .. "/reports/7.json"))
    assert.equal("http", err.kind)
    assert.truthy(err.message:find("plain http", 1, true), err.message)
    assert.equal(1, #api:log())
  end)

  it("refuses a summary_url that is plain http off loopback before sending anything", function()
    for _, url in ipairs { "http://127.0.0.1.nip.io:8080/r.json", "http://127.evil.example/r.json", "ftp://x/r.json",
                           "not a url" } do
      local _, err = client:report(detail_with(url))
      assert.equal("invalid", err.kind, url)
      assert.equal("summary_url", err.field, url)
    end
  end)

  it("says so when a run has no report, and reads a run by id first", function()
    local _, err = client:report(detail_with(nil))
    assert.same({ "invalid", "summary_url" }, { err.kind, err.field })
    assert.truthy(err.message:find("has no report yet", 1, true))
    _, err = client:report("seven")
    assert.equal("invalid", err.kind)
    assert.equal(0, #api:log())

    local run = assert(client:trigger { environment = "staging" })
    _, err = client:report(run.id)           -- the fake's runs have no report URL
    assert.equal("summary_url", err.field)
    assert.equal("GET", api:log()[2].method)
  end)

  it("turns a 403, a 404, a 500 storm and a malformed report into errors, never a raise", function()
    serve(storage, "/a.json", 403, "<Error>AccessDenied</Error>")
    local _, err = client:report(detail_with(storage.url .. "/a.json"))
    assert.same({ "http", 403 }, { err.kind, err.status })
    assert.truthy(err.message:find("refused access", 1, true), err.message)
    assert.falsy(err.message:find("EMPIRICALRUN_KEY", 1, true))   -- the token was not what it refused

    serve(storage, "/b.json", 404, "")
    _, err = client:report(detail_with(storage.url .. "/b.json"))
    assert.same({ "http", 404 }, { err.kind, err.status })

    for _ = 1, 2 do serve(storage, "/c.json", 503, "") end
    _, err = client:report(detail_with(storage.url .. "/c.json"))
    assert.same({ "http", 503, 2 }, { err.kind, err.status, err.attempts })

    serve(storage, "/d.json", 200, '{"suites": 3}')
    _, err = client:report(detail_with(storage.url .. "/d.json"))
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("the run's report", 1, true), err.message)
  end)

  it("refuses a report over max_response_bytes", function()
    local small = helper.client(api, { max_response_bytes = 1000 })
    serve(storage, "/big.json", 200, REPORT)
    local _, err = small:report(detail_with(storage.url .. "/big.json"))
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("max_response_bytes", 1, true))
    small:close()
  end)

  it("runs without blocking through start and poll", function()
    api:script { method = "GET", path = "/reports/9.json", status = 200, body = REPORT, delay = 0.3 }
    local req = assert(client:start("report", detail_with(api.url .. "/reports/9.json", 9)))
    local polls, done, report, err = 0, false, nil, nil
    while not done do
      done, report, err = req:poll()
      polls = polls + 1
      if not done then client._core:wait_io(0.01) end
    end
    assert.is_nil(err)
    assert.same(empirical.parse_report(REPORT), report)
    assert.is_true(polls > 1)
  end)
end)
