-- wrk script for bench/ingest: replays pre-generated, pre-signed requests (wrk's Lua has no md5).
-- Usage: wrk ... -s replay.lua URL -- <request file> <thread count>
-- Request file: one request a line, "<path>\t<x-signature or ->\t<json body>". Thread i sends the lines
-- with index % threads == i, in order, so no request is sent twice unless a thread runs out (reported as
-- "wrapped"). done() prints one line "WRKJSON {...}" that bench/ingest/run.py parses.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local reqs, n, i = {}, 0, 0
non2xx, wrapped, sent = 0, 0, 0

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local k = 0
  for line in io.lines(file) do
    if k % nthreads == tid then
      local path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = { ["Content-Type"] = "application/json" }
      if sig ~= "-" then headers["X-Signature"] = sig end
      n = n + 1
      reqs[n] = wrk.format("POST", path, headers, body)
    end
    k = k + 1
  end
  if n == 0 then error("no requests for thread " .. tid .. " in " .. file) end
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  return reqs[i]
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad, wraps = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    wraps = wraps + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,"non2xx":%d,"wrapped":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.duration, summary.requests, summary.bytes, bad, wraps,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
