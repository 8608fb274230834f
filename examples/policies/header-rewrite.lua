-- header-rewrite.lua: reshape the headers an upstream sees and the client gets back.
--
--   destinations:
--     - { Name: api, Type: HTTP, URL: "https://api.internal", policy: header-rewrite.lua }
--
-- Requests: an old client's X-Api-Version becomes the Accept-Version the upstream
-- reads, the client's User-Agent and Cookie stay behind, and every request says which
-- gateway sent it. Responses: the upstream's Server and X-Powered-By do not leak out.
return {
  on_request = function(req, dest)
    local version = req.headers["X-Api-Version"]
    if version then
      req.headers["Accept-Version"] = version
      req.headers["X-Api-Version"] = nil
    end
    req.headers["User-Agent"] = nil
    req.headers["Cookie"] = nil
    req.headers["X-Gateway"] = "ferry"
  end,

  on_response = function(res, dest)
    res.headers["Server"] = nil
    res.headers["X-Powered-By"] = nil
  end,
}
