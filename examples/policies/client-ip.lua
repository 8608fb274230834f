-- client-ip.lua: rules by the client's address.
--
-- Addresses in `full` may do anything; those in `read_only` may only read (GET,
-- HEAD, OPTIONS); every other client is refused. req.client is "ip:port" (IPv6 as
-- "[ip]:port"). Prefixes are IPv4 CIDR blocks here; extend cidr() for IPv6.
local full = { "127.0.0.1/32", "10.0.0.0/8" }
local read_only = { "127.0.0.0/8", "192.168.0.0/16" }
local reads = { GET = true, HEAD = true, OPTIONS = true }

local function ipv4(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

-- Is the address (a number) inside the block "a.b.c.d/len"?
local function cidr(addr, block)
  local net, len = block:match("^(.+)/(%d+)$")
  local size = 2 ^ (32 - tonumber(len))
  return addr // size == ipv4(net) // size
end

local function any(addr, blocks)
  for _, block in ipairs(blocks) do
    if cidr(addr, block) then return true end
  end
  return false
end

return {
  on_request = function(req, dest)
    local addr = ipv4(req.client:match("^(.*):%d+$") or "")
    if addr and any(addr, full) then return end
    if addr and any(addr, read_only) then
      if reads[req.method] then return end
      return ferry.deny(403, "read-only for " .. req.client:match("^(.*):"))
    end
    return ferry.deny(403, "client not allowed")
  end,
}
