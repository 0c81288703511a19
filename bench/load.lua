-- wrk script of bench/harness.py: any method, headers and body, from the environment.
--   BENCH_METHOD   GET or POST
--   BENCH_HEADERS  "Name: value" lines
--   BENCH_BODY     request body; "%d" in it becomes a per-thread counter (creates differ)
-- done() prints one line "BENCH {json}": requests, non-2xx answers (wrk's own count
-- treats 3xx as success), socket errors and the first bad answer.

local body = os.getenv("BENCH_BODY") or ""
local threads = {}
wrk.method = os.getenv("BENCH_METHOD") or "GET"
for name, value in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^:\n]+): ([^\n]*)") do
  wrk.headers[name] = value
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counter, non2xx, sample = 0, 0, ""
  if not string.find(body, "%%d") then
    fixed = wrk.format(nil, nil, nil, body ~= "" and body or nil)
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format(body, counter))
end

function response(status, headers, resp)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then
      sample = status .. " " .. string.sub(resp or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    if first == "" then
      first = thread:get("sample") or ""
    end
  end
  first = string.gsub(first, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"non2xx":%d,"socket_errors":%d,"sample":"%s"}\n',
    summary.requests, bad, e.connect + e.read + e.write + e.timeout, first))
end
