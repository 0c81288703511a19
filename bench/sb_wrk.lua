-- wrk script used by bench/documents.py: authenticated StaticBackend requests.
--
-- Configured through environment variables:
--   SB_PK     public key sent as SB-PUBLIC-KEY
--   SB_TOKEN  session token sent as "Authorization: Bearer <token>"
--   SB_MODE   "create" (POST a small JSON document per request) or "list" (GET)
--   SB_PATH   request path, e.g. /db/bench or /db/bench?size=25&page=10
--
-- Every response outside 2xx is counted per status; done() prints one line
-- "SBBENCH {json}" that documents.py parses (wrk's own "Non-2xx or 3xx" line
-- treats 3xx as success, this one does not).

local mode = os.getenv("SB_MODE") or "list"
local path = os.getenv("SB_PATH") or "/"
local threads = {}
local counter = 0
local fixed = nil

wrk.method = (mode == "create") and "POST" or "GET"
wrk.headers["SB-PUBLIC-KEY"] = os.getenv("SB_PK") or ""
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("SB_TOKEN") or "")
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  statuses = {}
  sample = ""
  if mode ~= "create" then
    fixed = wrk.format(nil, path)
  end
end

function request()
  if fixed then
    return fixed
  end
  counter = counter + 1
  local body = string.format('{"title":"bench","n":%d,"t":%d,"done":false}', counter, tid or 0)
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if sample == "" then
      sample = key .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(s)
  local escaped = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

function done(summary, latency, requests)
  local total_non2xx, counts, first = 0, {}, ""
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
    local s = thread:get("sample") or ""
    if first == "" then
      first = s
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'SBBENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"statuses":{%s},"sample":%s,'
      .. '"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, total_non2xx, table.concat(parts, ","),
    json_string(first), e.connect, e.read, e.write, e.timeout))
end
