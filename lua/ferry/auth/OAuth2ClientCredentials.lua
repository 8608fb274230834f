-- Authentication: OAuth2ClientCredentials — a token for the client itself
-- (grant_type=client_credentials), cached per destination and tenant.
-- Copy this file next to your policy and change it; point a destination at the copy
-- with `policy:` and set `Authentication: NoAuthentication` there.
local oauth2 = require "ferry.auth.oauth2"
local M = {}

function M.token(dest, ctx)
  return oauth2.token(dest, ctx, nil, { { "grant_type", "client_credentials" } })
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "token-error: " .. err) end
  oauth2.authorize(req, tok)
end

return M
