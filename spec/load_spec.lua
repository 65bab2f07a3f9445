-- Load: many calls on one client and many clients, with this process's open
-- file descriptors and resident memory read from /proc before and after.
-- RSS may move by allocator noise (LuaJIT's more than PUC Lua's); a leak of
-- 200 bytes a call would pass 2 MiB in 10,000 calls. valgrind counts bytes.
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
  local status = f:read("*a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+) kB"))
end

local MAX_GROWTH_KIB = 2048
-- Under AddressSanitizer (make check-asan) freed memory sits in quarantine
-- by design, so RSS says nothing there; descriptors still count.
local CHECK_RSS = os.getenv("EMPIRICAL_SANITIZER") == nil
-- A leak of one descriptor per call or client would add thousands or
-- hundreds; a descriptor or two may belong to something else mid-flight.
local MAX_FD_GROWTH = 2

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

  it("10,000 sequential gets on one client, twice, after 10,000 more, keep descriptors and memory flat", function()
    local client = helper.client(fake)
    for _ = 1, 10000 do assert(client:get(run_id)) end     -- warm: buffers, caches, the heap the GC lets grow
    settle()
    -- Two windows of 10,000: a leak grows both alike, while the allocator
    -- may take one step of a few MiB now and then (seen once in a long run).
    local fds, growth = open_fds(), {}
    for w = 1, 2 do
      local rss = rss_kib()
      for _ = 1, 10000 do assert(client:get(run_id)) end
      settle()
      growth[w] = rss_kib() - rss
    end
    assert.is_true(open_fds() - fds <= MAX_FD_GROWTH, ("descriptors: %d, then %d"):format(fds, open_fds()))
    assert.is_true(not CHECK_RSS or math.min(growth[1], growth[2]) < MAX_GROWTH_KIB,
                   ("RSS grew by %d KiB, then %d KiB"):format(growth[1], growth[2]))
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
    assert.is_true(open_fds() - fds <= MAX_FD_GROWTH, ("descriptors: %d, then %d"):format(fds, open_fds()))
    assert.is_true(not CHECK_RSS or rss_kib() - rss < MAX_GROWTH_KIB, ("RSS grew by %d KiB"):format(rss_kib() - rss))
  end)

  it("200 clients dropped without close are cleaned up by the collector", function()
    local function round()
      for _ = 1, 200 do assert(helper.client(fake):get(run_id)) end
      settle()
    end
    round()
    local fds, rss = open_fds(), rss_kib()
    round()
    assert.is_true(open_fds() - fds <= MAX_FD_GROWTH, ("descriptors: %d, then %d"):format(fds, open_fds()))
    assert.is_true(not CHECK_RSS or rss_kib() - rss < MAX_GROWTH_KIB, ("RSS grew by %d KiB"):format(rss_kib() - rss))
  end)
end)
