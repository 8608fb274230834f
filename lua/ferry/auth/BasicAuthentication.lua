-- Authentication: BasicAuthentication — HTTP Basic with the destination's User and
-- Password. (The http plugin does this natively; this module is the same thing for a
-- policy that wants to change it, and for the destination API's authTokens.)
local M = {}

function M.token(dest, ctx)
  if not dest.User then return nil, "User is missing" end
  return { type = "Basic", value = ferry.base64.encode(dest.User .. ":" .. (dest.Password or "")) }
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "destination-invalid: " .. err) end
  req.headers["Authorization"] = "Basic " .. tok.value
end

return M
