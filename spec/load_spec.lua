-- Load: many calls on one client and many clients, with this process's open
-- file descriptors and resident memory read from /proc before and after.
local helper = require("helper")

local function open_fds()
  local n = 0
  local list = assert(io.popen("ls /proc/" .. helper.pid() .. "/fd"))
  for _ in list:lines() do n = n + 1 end
  list:close()
  return n - 1   -- the pipe ls writes to
end

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+) kB"))
end

local function settle()
  collectgarbage()
  collectgarbage()
end

describe("under load", function()
  local fake, run_id

  setup(function()
    fake = helper.start_fake { speed = 1000 }
    local c = helper.client(fake)
    run_id = assert(c:trigger { environment = "staging" }).id
    c:close()
  end)
  teardown(function() fake:stop() end)

  it("10,000 sequential gets on one client keep descriptors and memory flat", function()
    local client = helper.client(fake)
    for _ = 1, 1000 do assert(client:get(run_id)) end      -- warm: buffers, caches, the GC's pace
    settle()
    local fds, rss = open_fds(), rss_kib()
    for _ = 1, 10000 do assert(client:get(run_id)) end
    settle()
    assert.equal(fds, open_fds())
    assert.is_true(rss_kib() - rss < 1024, ("RSS grew by %d KiB"):format(rss_kib() - rss))
    client:close()
  end)

  it("200 clients created, used and closed leave no descriptor or memory behind", function()
    local function round()
      for _ = 1, 200 do
        local c = helper.client(fake)
        assert(c:get(run_id))
        c:close()
      end
    end
    round()
    settle()
    local fds, rss = open_fds(), rss_kib()
    round()
    settle()
    assert.equal(fds, open_fds())
    assert.is_true(rss_kib() - rss < 1024, ("RSS grew by %d KiB"):format(rss_kib() - rss))
  end)

  it("200 clients dropped without close are cleaned up by the collector", function()
    local function round()
      for _ = 1, 200 do assert(helper.client(fake):get(run_id)) end
      settle()
    end
    round()
    local fds, rss = open_fds(), rss_kib()
    round()
    assert.equal(fds, open_fds())
    assert.is_true(rss_kib() - rss < 1024, ("RSS grew by %d KiB"):format(rss_kib() - rss))
  end)
end)
