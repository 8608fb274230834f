-- A static credential header (an API key or a long-lived bearer token), taken from the
-- destination: `ferry.auth.header` names the header (default Authorization) and
-- `ferry.auth.value` holds the value (use ${env:...} or ${file:...} for it).
--   policy: policies/api-key.lua  with  return require("ferry.auth.StaticHeader")
local M = {}

function M.token(dest, ctx)
  local v = dest["ferry.auth.value"]
  if not v then return nil, "ferry.auth.value is missing" end
  return { type = "", value = v, header = dest["ferry.auth.header"] or "Authorization" }
end

function M.on_request(req, dest)
  local tok, err = M.token(dest, req)
  if not tok then return ferry.deny(502, "destination-invalid: " .. err) end
  req.headers[tok.header] = tok.value
end

return M
