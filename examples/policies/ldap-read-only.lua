-- ldap-read-only.lua: a directory that may be read, never written.
--
--   destinations:
--     - { Name: ad, Type: LDAP, ldap.url: "ldap://ad.internal", policy: ldap-read-only.lua }
--
-- bind, search, compare and extended operations (StartTLS, WhoAmI) pass; add, modify,
-- delete and modrdn are answered with LDAP result 50 (insufficientAccessRights) and
-- never reach the directory. abandon and unbind cannot be denied.
local allowed = {
  bind = true, search = true, compare = true, extended = true,
  abandon = true, unbind = true,
}

return {
  on_ldap = function(op, dest)
    if not allowed[op.type] then
      return ferry.deny(50, "read-only")
    end
  end,
}
