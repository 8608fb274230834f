-- Authentication: OAuth2Password — resource owner password grant with the
-- destination's User and Password (grant_type=password).
local oauth2 = require "ferry.auth.oauth2"
local M = {}

function M.token(dest, ctx)
  return oauth2.token(dest, ctx, "user=" .. (dest.User or ""), {
    { "grant_type", "password" }, { "username", dest.User }, { "password", dest.Password } })
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "token-error: " .. err) end
  oauth2.authorize(req, tok)
end

return M
