-- POST /Users with a unique userName per request (Okta's create payload, password included:
-- the default policy ignores it).
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

function init(args)
  prefix = (args[1] or "u") .. "-" .. tid .. "-"
end

request = function()
  counter = counter + 1
  local name = prefix .. counter .. "@example.com"
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' .. name ..
    '","name":{"givenName":"Ada","familyName":"Lovelace"},"emails":[{"primary":true,"value":"' .. name ..
    '","type":"work"}],"displayName":"Ada Lovelace","locale":"en-US","externalId":"00u' .. counter ..
    '","groups":[],"password":"1mz050nq","active":true}'
  return wrk.format("POST", "/scim/v2/Users", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("T")}, body)
end
