-- wrk script: POST a fixed JSON body, check every response body, report as JSON.
--
-- Arguments (after wrk's "--"): the body file, then any number of
--   H:Name: value   a request header
--   M:text          a marker every good response body contains (plain match)
-- A response counts as bad when its status is not 2xx or a marker is missing.
-- done() prints one line "BENCH-JSON {...}" with counts and latency percentiles
-- (microseconds) for bench/loadgen.py to read.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  markers = {}
  for i = 2, #args do
    local kind, rest = args[i]:sub(1, 2), args[i]:sub(3)
    if kind == "H:" then
      local name, value = rest:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
    elseif kind == "M:" then
      table.insert(markers, rest)
    end
  end
  bad_bodies = 0
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  for _, marker in ipairs(markers) do
    if not string.find(body, marker, 1, true) then
      bad_bodies = bad_bodies + 1
      return
    end
  end
end

function done(summary, latency, requests)
  local bad, n = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad_bodies")
    n = n + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
    '"timeouts": %d, "non2xx": %d, "bad_bodies": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, n, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
