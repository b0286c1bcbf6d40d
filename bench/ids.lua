-- Requests over a list of ids read from $IDS (one per line): GET /Users/{id},
-- GET /Users?filter=userName eq "...", or PATCH /Users/{id} (Okta's deactivate/reactivate).
local ids = {}
local names = {}
local mode = os.getenv("MODE") or "get"
local n = 0

function init(args)
  for line in io.lines(os.getenv("IDS")) do
    local id, name = line:match("([^ ]+) ([^ ]+)")
    table.insert(ids, id)
    table.insert(names, name)
  end
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

request = function()
  n = n + 1
  local i = math.random(1, #ids)
  local h = {["Authorization"] = "Bearer " .. os.getenv("T")}
  if mode == "get" then
    return wrk.format("GET", "/scim/v2/Users/" .. ids[i], h)
  elseif mode == "filter" then
    return wrk.format("GET", "/scim/v2/Users?filter=" .. urlencode('userName eq "' .. names[i] .. '"'), h)
  else
    h["Content-Type"] = "application/scim+json"
    local active = (n % 2 == 0) and "true" or "false"
    local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":' .. active .. '}}]}'
    return wrk.format("PATCH", "/scim/v2/Users/" .. ids[i], h, body)
  end
end
