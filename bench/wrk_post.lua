-- wrk script: POST the body in $WRK_BODY with the JSON object of headers in $WRK_HEADERS;
-- with $WRK_PATHS (one path a line), each request takes the next path in turn.
local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

wrk.method = "POST"
wrk.body = read(os.getenv("WRK_BODY"))
wrk.headers["Content-Type"] = "application/json"
for key, value in string.gmatch(os.getenv("WRK_HEADERS") or "{}", '"([^"]+)"%s*:%s*"([^"]*)"') do
  wrk.headers[key] = value
end

local paths = {}
local paths_file = os.getenv("WRK_PATHS")
if paths_file then
  for line in io.lines(paths_file) do
    if line ~= "" then table.insert(paths, line) end
  end
end

local counter = 0
function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

local n = 0
request = function()
  if #paths == 0 then
    return wrk.request()
  end
  n = n + 1
  local path = paths[((offset or 0) + n) % #paths + 1]
  return wrk.format(nil, path)
end
