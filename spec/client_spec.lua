-- The client against the fake API over loopback: a real server, real sockets.
local empirical = require("empirical")
local helper = require("helper")

describe("client", function()
  local fake, client

  setup(function()
    fake = helper.start_fake { speed = 50 }
  end)

  teardown(function()
    fake:stop()
  end)

  before_each(function()
    fake:reset()
    client = helper.client(fake, { retries = 2 })
  end)

  after_each(function()
    client:close()
  end)

  describe("against the API", function()
    it("triggers a run, reads it and re-runs it", function()
      local run = assert(client:trigger { environment = "staging", build = { commit = "abc", url = "https://s" },
                                          total_shards = 2, metadata = { pipeline = 7 } })
      assert.equal("queued", run.state)
      assert.equal(tostring(math.tointeger and math.tointeger(run.id) or run.id), tostring(run.id))

      local detail = assert(client:get(run.id))
      assert.equal(run.id, detail.testRun.id)
      assert.equal("staging", detail.testRun.environment_slug)
      assert.equal("abc", detail.testRun.commit)

      local again = assert(client:rerun(run.id, { send_notifications = false }))
      assert.is_true(again.id > run.id)

      local log = fake:log()
      assert.equal(3, #log)
      assert.equal("PUT", log[1].method)
      assert.equal("/api/test-runs", log[1].path)
      assert.equal("application/json", log[1].headers["content-type"])
      assert.equal("application/json", log[1].headers.accept)
      assert.matches("^empirical%-lua/0%.1%.0", log[1].headers["user-agent"])
      assert.equal("GET", log[2].method)
      assert.equal("/api/test-runs/" .. run.id, log[2].path)
      assert.equal("POST", log[3].method)
      assert.equal('{"send_notifications":false}', log[3].body)
    end)

    it("sends the body it validated, byte for byte", function()
      local params = { environment = "production", tags = { "@smoke" }, environment_variables_overrides = { B = "2", A = "1" } }
      assert(client:trigger(params))
      assert.equal(empirical.encode("trigger", params).body, fake:log()[1].body)
    end)

    it("sends the project header and the user agent suffix", function()
      local c = helper.client(fake, { project_slug = "acme", user_agent = "release/2.0" })
      assert(c:trigger { environment = "staging" })
      local h = fake:log()[1].headers
      assert.equal("acme", h["x-project-slug"])
      assert.equal("empirical-lua/0.1.0 release/2.0", h["user-agent"])
      c:close()
      local c2 = helper.client(fake, { project_id = 7 })
      assert(c2:trigger { environment = "staging" })
      assert.equal("7", fake:log()[2].headers["x-project-id"])
      c2:close()
    end)

    it("keeps one connection for many calls", function()
      local run = assert(client:trigger { environment = "staging" })
      for _ = 1, 5 do assert(client:get(run.id)) end
      local log = fake:log()
      assert.equal(6, #log)
      for _, r in ipairs(log) do assert.equal(log[1].conn, r.conn) end
    end)

    it("refuses bad input before sending anything", function()
      local _, err = client:trigger { environment = "staging", total_shards = 2.5 }
      assert.equal("invalid", err.kind)
      assert.equal("total_shards", err.field)
      local _, err2 = client:get("12; DROP")
      assert.equal("invalid", err2.kind)
      local _, err3 = client:rerun(5, { only_failed = "yes" })
      assert.equal("only_failed", err3.field)
      local _, err4 = client:rerun(5, "only_failed")
      assert.equal("opts", err4.field)
      assert.equal(0, #fake:log())
    end)

    it("refuses every input of the bad-input table, naming the field, with nothing sent", function()
      local calls = {
        trigger = function(p) return client:trigger(p) end,
        get = function(p) return client:get(type(p) == "table" and rawget(p, "id") or nil) end,
        rerun = function(p)
          if type(p) ~= "table" then return client:rerun(nil, p) end
          local id, opts = rawget(p, "id"), {}
          for k, v in next, p do if k ~= "id" then opts[k] = v end end
          return client:rerun(id, opts)
        end,
      }
      local checked = 0
      for i, row in ipairs(require("bad_inputs")) do
        local op, params, field = row[1], row[2], row[3]
        -- get takes only the id; rows about its other fields belong to encode
        if not (op == "get" and field ~= "id") and field ~= "params" then
          local result, err = calls[op](params)
          assert.is_nil(result, "row " .. i)
          assert.equal("invalid", err.kind, "row " .. i)
          assert.equal(field, err.field, "row " .. i)
          checked = checked + 1
        end
      end
      assert.is_true(checked >= 60, "rows checked: " .. checked)
      assert.equal(0, #fake:log())
    end)

    it("reports the server's 400 for an unknown environment", function()
      local _, err = client:trigger { environment = "qa" }
      assert.equal("http", err.kind)
      assert.equal(400, err.status)
      assert.equal("PUT /api/test-runs", err.request)
      assert.truthy(err.message:find("Valid environments: staging, production", 1, true))
      assert.equal(1, #fake:log())
    end)

    it("reports a 404 with a readable line, as assert() shows it", function()
      local ok, message = pcall(function() return assert(client:get(9)) end)
      assert.is_false(ok)
      assert.equal("empirical: http 404: GET /api/test-runs/9: Test run 9 not found", tostring(message))
    end)

    it("refuses a re-run of only the failed tests before the source ended", function()
      local run = assert(client:trigger { environment = "staging" })
      local _, err = client:rerun(run.id, { only_failed = true })
      assert.equal(400, err.status)
      assert.truthy(err.message:find("must be completed", 1, true))
    end)

    it("reports a wrong token as a 401 without echoing it", function()
      local c = helper.client(fake, { token = "wrong-secret-token" })
      local _, err = c:get(1)
      assert.equal(401, err.status)
      assert.falsy(tostring(err):find("wrong-secret-token", 1, true))
      for _, v in pairs(err) do assert.falsy(tostring(v):find("wrong-secret-token", 1, true)) end
      c:close()
    end)
  end)

  describe("retry policy", function()
    it("retries a get on 503 and succeeds", function()
      local run = assert(client:trigger { environment = "staging" })
      fake:script { method = "GET", status = 503, body = "", times = 2 }
      assert(client:get(run.id))
      assert.equal(4, #fake:log())
    end)

    it("gives up on a get after its retries and counts the attempts", function()
      fake:script { method = "GET", status = 502, body = "", times = 10 }
      local _, err = client:get(1)
      assert.equal(502, err.status)
      assert.equal(3, err.attempts)
      assert.is_true(err.retryable)
      assert.equal(3, #fake:log())
      assert.truthy(tostring(err):find("(after 3 attempts)", 1, true))
    end)

    it("never retries a trigger on a 5xx: the run may exist", function()
      fake:script { method = "PUT", status = 500, body = "", times = 5 }
      local _, err = client:trigger { environment = "staging" }
      assert.equal(500, err.status)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("may have been created", 1, true))
      assert.equal(1, #fake:log())
    end)

    it("retries a trigger on 429, honouring Retry-After", function()
      fake:script { method = "PUT", status = 429, body = "", headers = { ["Retry-After"] = "1" } }
      local t0 = require("empirical.core").now()
      local run = assert(client:trigger { environment = "staging" })
      assert.is_true(require("empirical.core").now() - t0 >= 0.9)
      assert.equal(2, #fake:log())
      assert.truthy(run.id)
    end)

    it("honours Retry-After given as an HTTP date", function()
      local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
      fake:script { method = "PUT", status = 429, body = "", headers = { ["Retry-After"] = when } }
      local t0 = require("empirical.core").now()
      assert(client:trigger { environment = "staging" })
      assert.is_true(require("empirical.core").now() - t0 >= 0.9)
      assert.equal(2, #fake:log())
    end)

    it("gives up when Retry-After asks for more than max_retry_after, and says why", function()
      local c = helper.client(fake, { max_retry_after = 2 })
      fake:script { method = "PUT", status = 429, body = "", headers = { ["Retry-After"] = "3600" } }
      local _, err = c:trigger { environment = "staging" }
      assert.equal(429, err.status)
      assert.truthy(err.message:find("max_retry_after", 1, true))
      assert.equal(1, #fake:log())
      c:close()
    end)

    it("never retries a trigger whose connection dropped before the answer", function()
      fake:script { method = "PUT", drop = "before_response", times = 5 }
      local _, err = client:trigger { environment = "staging" }
      assert.equal("transport", err.kind)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("may have been created", 1, true))
      assert.equal(1, #fake:log())
    end)

    it("retries a get whose connection dropped mid-body", function()
      local run = assert(client:trigger { environment = "staging" })
      fake:script { method = "GET", drop = "mid_body", body = ('{"data":{"test_run":' .. (" "):rep(200) .. "}}") }
      assert(client:get(run.id))
      assert.equal(3, #fake:log())
    end)

    it("retries nothing with retries = 0", function()
      local c = helper.client(fake, { retries = 0 })
      fake:script { method = "GET", status = 503, body = "", times = 5 }
      local _, err = c:get(1)
      assert.equal(1, err.attempts)
      assert.equal(1, #fake:log())
      c:close()
    end)

    it("stops at the deadline: one call with its retries, kind timeout", function()
      local core = require("empirical.core")
      local c = helper.client(fake, { deadline = 0.5, retries = 5 })
      fake:script { method = "GET", delay = 5 }
      local t0 = core.now()
      local _, err = c:get(1)
      assert.equal("timeout", err.kind)
      assert.equal(1, err.attempts)
      assert.matches("deadline", err.message)
      assert.is_true(core.now() - t0 < 2, "took " .. (core.now() - t0))
      c:close()
    end)

    it("does not start a retry the deadline leaves no time for", function()
      local c = helper.client(fake, { deadline = 0.5, retries = 5 })
      fake:script { method = "GET", status = 503, body = "", headers = { ["Retry-After"] = "1" }, times = 5 }
      local _, err = c:get(1)
      assert.equal(503, err.status)
      assert.equal(1, err.attempts)
      assert.matches("not retried: the call's deadline leaves no time for another attempt", err.message, 1, true)
      assert.equal(1, #fake:log())
      c:close()
    end)
  end)

  describe("faults", function()
    it("times out a server that never answers", function()
      local c = helper.client(fake, { timeout = 0.5, retries = 0 })
      fake:script { method = "GET", delay = 3 }
      local t0 = require("empirical.core").now()
      local _, err = c:get(1)
      assert.equal("transport", err.kind)
      assert.truthy(err.message:lower():find("timed out", 1, true))
      assert.is_true(require("empirical.core").now() - t0 < 2.5)
      c:close()
    end)

    it("caps the response body", function()
      local c = helper.client(fake, { max_response_bytes = 1000 })
      fake:script { method = "GET", body = '{"data":"' .. ("x"):rep(5000) .. '"}' }
      local _, err = c:get(1)
      assert.equal("decode", err.kind)
      assert.truthy(err.message:find("max_response_bytes", 1, true))
      assert.equal(1, #fake:log())
      c:close()
    end)

    it("does not follow a redirect, and names where it pointed", function()
      fake:script { method = "GET", status = 302, body = "", headers = { Location = "http://127.0.0.2:1/steal" } }
      local _, err = client:get(1)
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      assert.truthy(err.message:find("127.0.0.2", 1, true))
      assert.equal(1, #fake:log())
    end)

    it("reports an HTML page on a 200 as a decode error", function()
      fake:script { method = "GET", content_type = "text/html", body = "<html>maintenance</html>" }
      local _, err = client:get(1)
      assert.equal("decode", err.kind)
      assert.equal("<html>maintenance</html>", err.body)
    end)
  end)

  describe("options", function()
    local cases = {
      { { base_url = "https://x" }, "token" },
      { { token = "", base_url = "https://x" }, "token" },
      { { token = "a\nb", base_url = "https://x" }, "token" },
      { { token = "t", base_url = "http://api.example.com" }, "base_url" },
      { { token = "t", base_url = "ftp://x" }, "base_url" },
      { { token = "t", base_url = "https://x?y=1" }, "base_url" },
      { { token = "t", base_url = "https://user:pw@x" }, "base_url" },
      { { token = "t", base_url = "not a url" }, "base_url" },
      { { token = "t", base_url = "https://x", project_id = 1, project_slug = "a" }, "project_id" },
      { { token = "t", base_url = "https://x", project_slug = "a\r\nX-Evil: 1" }, "project_slug" },
      { { token = "t", base_url = "https://x", user_agent = "ua\0" }, "user_agent" },
      { { token = "t", base_url = "https://x", timeout = 0 }, "timeout" },
      { { token = "t", base_url = "https://x", timeout = "30" }, "timeout" },
      { { token = "t", base_url = "https://x", deadline = -5 }, "deadline" },
      { { token = "t", base_url = "https://x", deadline = 0 / 0 }, "deadline" },
      { { token = "t", base_url = "https://x", retries = -1 }, "retries" },
      { { token = "t", base_url = "https://x", retries = 1.5 }, "retries" },
      { { token = "t", base_url = "https://x", retries = 50 }, "retries" },
      { { token = "t", base_url = "https://x", ca_file = "/nonexistent/ca.pem" }, "ca_file" },
      { { token = "t", base_url = "https://x", max_response_bytes = 0 }, "max_response_bytes" },
      { { token = "t", base_url = "https://x", timeuot = 3 }, "timeuot" },
    }
    for i, case in ipairs(cases) do
      it(("refuses bad options #%d (%s)"):format(i, case[2]), function()
        local saved = os.getenv("EMPIRICALRUN_KEY")
        if case[1].token == nil and saved then return end   -- the environment supplies one
        local c, err = empirical.new(case[1])
        assert.is_nil(c)
        assert.equal("config", err.kind)
        assert.equal(case[2], err.field)
      end)
    end

    it("sends unknown top-level fields only with strict = false", function()
      local _, err = client:trigger { environment = "staging", priority = "high" }
      assert.equal("priority", err.field)
      assert.equal(0, #fake:log())
      local lenient = helper.client(fake, { strict = false })
      assert(lenient:trigger { environment = "staging", priority = "high" })
      assert.equal("high", require("cjson").decode(fake:log()[1].body).priority)
      local _, err2 = lenient:trigger { environment = "staging", build = { sha = "x" } }
      assert.equal("build.sha", err2.field)   -- nested schemas stay strict
      lenient:close()
    end)

    it("allows plain http to a non-loopback host only when asked", function()
      assert.truthy(empirical.new { token = "t", base_url = "http://api.example.com", allow_plain_http = true })
    end)

    it("never shows the token in tostring", function()
      local c = helper.client(fake, { token = "s3cr3t-token-value" })
      assert.falsy(tostring(c):find("s3cr3t", 1, true))
      c:close()
    end)

    it("fails cleanly after close, and closes twice without harm", function()
      local c = helper.client(fake)
      c:close()
      c:close()
      local _, err = c:get(1)
      assert.equal("config", err.kind)
      assert.truthy(err.message:find("closed", 1, true))
    end)

    it("closes at the end of a <close> scope on 5.4", function()
      if _VERSION ~= "Lua 5.4" then return end
      local escaped = load([[
        local c <close> = ...
        return c
      ]])(helper.client(fake))
      local _, err = escaped:get(1)
      assert.equal("config", err.kind)
    end)

    it("raises on a method called without the colon", function()
      assert.has_error(function() client.get(5) end, "empirical: call client:get(...) with a colon")
    end)
  end)
end)
