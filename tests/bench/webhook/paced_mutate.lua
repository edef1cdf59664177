-- wrk script: POST an AdmissionReview to /mutate over keep-alive.
--   BODY_FILE   the AdmissionReview (required)
--   RATE        total requests/s across all threads; 0 or unset = as fast
--               as possible (saturation)
--   THREADS     wrk's -t (to split RATE between threads)
-- Pacing: wrk 4.1 has no rate option, but calls delay() before each request.
-- Each thread hands out send slots t0 + k * interval (interval = THREADS /
-- RATE) from a monotonic clock (LuaJIT ffi -> clock_gettime), and delay()
-- returns the wait until the request's slot, so the offered load is fixed
-- whatever the latency (as long as connections are not all busy).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } vp_timespec;
  int clock_gettime(int clk_id, vp_timespec *tp);
]]
local ts = ffi.new("vp_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local rate = tonumber(os.getenv("RATE") or "0")
local threads = tonumber(os.getenv("THREADS") or "1")
local interval = rate > 0 and (threads * 1000.0 / rate) or 0
local next_slot = nil

-- BASELINE=1: GET /healthz instead (same TLS connections and pacing, no
-- admission work): the HTTP + TLS floor measured in the same run.
if os.getenv("BASELINE") == "1" then
  wrk.method = "GET"
  wrk.path = "/healthz"
else
  wrk.method = "POST"
  wrk.path = "/mutate"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  local slot = next_slot
  next_slot = next_slot + interval
  local wait = slot - now
  if wait < 0 then return 0 end
  return math.floor(wait)
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%d\n",
    summary.requests, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout))
end
