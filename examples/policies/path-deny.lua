-- path-deny.lua: close parts of an API, by path and method.
--
-- /admin and everything under it is closed to everyone; /internal/ paths too; and
-- DELETE is refused everywhere but under /sandbox/. A denied request gets the status
-- and reason given to ferry.deny (the http plugin answers it with
-- `ferry-error: policy-denied`); the upstream never sees it.
local closed = { "^/admin$", "^/admin/", "^/internal/" }

return {
  on_request = function(req, dest)
    for _, pattern in ipairs(closed) do
      if req.path:match(pattern) then
        return ferry.deny(403, req.path .. " is closed")
      end
    end
    if req.method == "DELETE" and not req.path:match("^/sandbox/") then
      return ferry.deny(405, "DELETE is only allowed under /sandbox/")
    end
  end,
}
