-- wrk -s bench/nginx/wrk.lua: one machine-readable line at the end of a run
-- (latency in microseconds; errors as wrk counts them: status = HTTP status >= 400).
-- luacheck: globals done
done = function(summary, latency)
  local e = summary.errors
  io.write(string.format("result requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
                         "connect=%d read=%d write=%d status=%d timeout=%d\n",
                         summary.requests, summary.duration, latency:percentile(50),
                         latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
