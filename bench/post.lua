-- wrk script: POST one fixed JSON body and print the run's numbers as one JSON line.
-- The body is read from the file named by BENCH_BODY_FILE (set by bench.load).

local file = assert(io.open(assert(os.getenv("BENCH_BODY_FILE")), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "requests": %d, "status_errors": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.duration, summary.requests, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
