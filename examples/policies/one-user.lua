-- one-user.lua: a PrincipalPropagation destination that only one user may use.
--
-- req.user holds the claims of the user's JWT, checked by ferry before the policy runs
-- (signature, issuer, audience, expiry); it is nil when the request carries no
-- validated user token. The token itself is never shown: the policy sees the claims.
-- Everyone else gets 403 (ferry-error: policy-denied) and the backend never sees them.
local allowed = "alice"

return {
  on_request = function(req, dest)
    local user = req.user
    if user == nil then
      return ferry.deny(401, "a user token is required")
    end
    local name = user.user_name or user.email or user.sub
    if name ~= allowed then
      return ferry.deny(403, "only " .. allowed .. " may use " .. dest.Name)
    end
    req.headers["X-User"] = name        -- the backend may log who it served
  end,
}
