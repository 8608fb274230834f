-- Authentication: OAuth2RefreshToken — the app hands a refresh token (request header
-- X-refresh-token, as for SAP's destination service) and ferry trades it for an access
-- token (grant_type=refresh_token). Cached per refresh token, never across users.
local oauth2 = require "ferry.auth.oauth2"
local M = {}

local function refresh_token(ctx)
  return ctx and ctx.headers and ctx.headers["X-refresh-token"]
end

function M.token(dest, ctx)
  local rt = refresh_token(ctx)
  if not rt then return nil, "no refresh token (X-refresh-token)" end
  return oauth2.token(dest, ctx, "rt=" .. ferry.sha256(rt), {
    { "grant_type", "refresh_token" }, { "refresh_token", rt } })
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "token-error: " .. err) end
  req.headers["X-refresh-token"] = nil
  oauth2.authorize(req, tok)
end

return M
