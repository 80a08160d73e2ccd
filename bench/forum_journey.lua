-- wrk's side of bench/forum_journey.py: replay the request plan the bench wrote (the forum traffic
-- mix, one request per line: endpoint, method, path, token, JSON body) and keep one sample per
-- response: endpoint, status (503s by cause), when it was sent and answered, and the statements and
-- database time the forum reported in Server-Timing.
--
-- Latency is timed here, from the moment wrk asks for the request until its response, and carried
-- in X-Request-ID (the forum echoes it), so it is the latency of each request as measured: wrk's own
-- figures add synthetic samples for slow requests (its coordinated-omission correction).
--
--   JOURNEY_SAMPLES=out.txt wrk -t1 -c50 -d20s -s forum_journey.lua URL -- plan.tsv [think_ms]

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } journey_timespec;
int clock_gettime(int clk_id, journey_timespec *tp);
]])
local clock = ffi.new("journey_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local plan, size, at = {}, 0, 0
local threads = {}
samples = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads)
end

function init(args)
  for line in io.lines(args[1]) do
    local name, method, path, token, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    size = size + 1
    plan[size] = { name, method, path, token, body }
  end
  at = (offset * 7919) % size -- each thread starts at its own place in the plan
  local think = tonumber(args[2] or "0")
  if think > 0 then
    function delay() -- a user's pause between requests: exponential, mean think_ms
      return math.floor(-math.log(1 - math.random()) * think)
    end
  end
end

function request()
  at = at % size + 1
  local r = plan[at]
  local headers = { ["X-Request-ID"] = string.format("%s.%d", r[1], now_us()) }
  local body = nil
  if r[4] ~= "" then
    headers["Authorization"] = "Bearer " .. r[4]
  end
  if r[5] ~= "" then
    headers["Content-Type"] = "application/json"
    body = r[5]
  end
  return wrk.format(r[2], r[3], headers, body)
end

function response(status, headers, body)
  local name, sent = (headers["x-request-id"] or ""):match("^([%w_]+)%.(%d+)$")
  local queries, db_ms = (headers["server-timing"] or ""):match('queries=(%d+)";dur=([%d.]+)')
  local kind = tostring(status)
  if status == 503 and body then
    if body:find("locked", 1, true) then
      kind = "503-locked"
    elseif body:find("connection", 1, true) then
      kind = "503-pool"
    end
  end
  samples[#samples + 1] =
    string.format("%s %s %s %d %s %s", name or "?", kind, sent or "-", now_us(), queries or "-", db_ms or "-")
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("JOURNEY_SAMPLES"), "w"))
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("samples")) do
      out:write(line, "\n")
    end
  end
  local e = summary.errors
  out:write(
    string.format("# wrk %d %d %d %d %d %d\n", summary.duration, e.connect, e.read, e.write, e.timeout, e.status)
  )
  out:close()
end
