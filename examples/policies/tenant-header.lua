-- tenant-header.lua: tell the upstream which tenant a request is for.
--
-- The tenant is the one the client authenticated as (forward mode), else the
-- listener's `tenant:`, else the destination's tenant. Whatever X-Tenant the client
-- sent is replaced, so a client cannot claim another tenant.
return {
  on_request = function(req, dest)
    req.headers["X-Tenant"] = req.tenant or "unknown"
    -- The SAP property of the destination, readable like any other (nil if absent).
    req.headers["X-Destination"] = dest.Name
  end,
}
