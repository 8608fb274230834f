-- hide-upstream.lua: an example policy, mounted at /etc/ferry/policies/ from the
-- ConfigMap ferry-policies. A destination in etcd names it by its absolute path:
--
--   etcdctl put /ferry/destinations/acme/orders \
--     '{"Name":"orders","Type":"HTTP","URL":"https://orders.example.com",
--       "ProxyType":"Internet","policy":"/etc/ferry/policies/hide-upstream.lua"}'
--
-- It tells the upstream which tenant calls, and keeps the upstream's software and
-- version out of the answers the applications see.
return {
  on_request = function(req, dest)
    req.headers["X-Ferry-Tenant"] = req.tenant
  end,
  on_response = function(res, dest)
    res.headers["Server"] = nil
    res.headers["X-Powered-By"] = nil
  end,
}
