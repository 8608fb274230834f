-- Authentication: OAuth2JWTBearer — forward a user: the app sends the user's JWT as
-- X-user-token: <jwt> or Authorization: Bearer <jwt>; ferry exchanges it (RFC 7523,
-- grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer) and replaces the header.
-- Cached per user token (SAP-NOTES section 7, item 3: never by client only).
local oauth2 = require "ferry.auth.oauth2"
local M = {}

local function user_jwt(ctx)
  local hs = ctx and ctx.headers
  if not hs then return nil end
  if hs["X-user-token"] then return hs["X-user-token"] end   -- SAP's header wins
  local h = hs["Authorization"]
  if h then return h:match("^[Bb]earer%s+(%S+)$") end
end

function M.token(dest, ctx)
  local jwt = user_jwt(ctx)
  if not jwt then return nil, "no user token (Authorization: Bearer <JWT>)" end
  return oauth2.token(dest, ctx, "jwt=" .. ferry.sha256(jwt), {
    { "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer" }, { "assertion", jwt } })
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "token-error: " .. err) end
  req.headers["X-user-token"] = nil
  oauth2.authorize(req, tok)
end

return M
