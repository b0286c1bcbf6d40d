-- One-member PATCHes on the group $GROUP: Okta's add of a member, then its remove by value
-- filter, alternating over the users in $IDS (who are not members of the group).
local ids = {}
local n = 0

function init(args)
  for line in io.lines(os.getenv("IDS")) do
    local id = line:match("([^ ]+)")
    table.insert(ids, id)
  end
end

request = function()
  n = n + 1
  local id = ids[(math.floor((n - 1) / 2) % #ids) + 1]
  local op
  if n % 2 == 1 then
    op = '{"op":"add","path":"members","value":[{"value":"' .. id .. '"}]}'
  else
    op = '{"op":"remove","path":"members[value eq \\"' .. id .. '\\"]"}'
  end
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[' .. op .. ']}'
  return wrk.format("PATCH", "/scim/v2/Groups/" .. os.getenv("GROUP"),
    {["Authorization"] = "Bearer " .. os.getenv("T"), ["Content-Type"] = "application/scim+json"}, body)
end
