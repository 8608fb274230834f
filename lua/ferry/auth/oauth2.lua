-- ferry.auth.oauth2: the token request every OAuth2 flow shares (RFC 6749 section 4),
-- with the SAP destination properties that shape it:
--   tokenServiceURL                     where to ask (required)
--   clientId, clientSecret              the client: client_id/client_secret in the body,
--   tokenService.addClientCredentialsInBody  unless this is "false" (SAP's default is true):
--                                       then HTTP Basic (RFC 6749 section 2.3.1)
--   tokenServiceUser, tokenServicePassword   HTTP Basic for the token service instead
--   tokenServiceURL.headers.<Name>      extra request headers
--   tokenServiceURL.queries.<name>      extra query parameters
--   tokenService.body.<name>            extra form fields
--   scope                               the scope to ask for
--   tokenServiceURL.SocketReadTimeoutInSeconds  how long to wait (default 10)
--   tokenService.KeyStoreLocation, tokenService.KeyStorePassword
--                                       client certificate for the token service (mTLS;
--                                       PKCS#12 or PEM), with TrustStoreLocation's CAs
--                                       trusted besides the system store: core maps them
--                                       (tls_of = "tokenService"), the script never sees a file
-- Tokens are cached by ferry (single flight, refresh before expiry, backoff on
-- failure): ferry.tokens.get calls fetch only when nobody else is already fetching.
local M = {}

local function enc(s) return ferry.url.encode(s) end

-- Build "a=b&c=d" from an ordered list of {name, value} pairs (nil values skipped).
local function form(pairs_)
  local out = {}
  for _, p in ipairs(pairs_) do
    if p[2] ~= nil and p[2] ~= "" then out[#out + 1] = enc(p[1]) .. "=" .. enc(p[2]) end
  end
  return table.concat(out, "&")
end

local function prefixed(dest, prefix)
  local out = {}
  for k, v in pairs(dest) do
    if k:sub(1, #prefix) == prefix and #k > #prefix then out[#out + 1] = { k:sub(#prefix + 1), v } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- fields: the grant's own form fields, e.g. {{"grant_type", "client_credentials"}}.
-- Returns {type=, value=, expires_in=} or nil, reason.
function M.request(dest, fields)
  local url = dest.tokenServiceURL
  if url == nil or url == "" then return nil, "tokenServiceURL is missing" end
  local body = {}
  for _, f in ipairs(fields) do body[#body + 1] = f end
  if dest.scope then body[#body + 1] = { "scope", dest.scope } end
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded",
                    ["Accept"] = "application/json" }
  local in_body = (dest["tokenService.addClientCredentialsInBody"] or "true"):lower() ~= "false"
  if dest.tokenServiceUser then
    headers["Authorization"] = "Basic " ..
      ferry.base64.encode(dest.tokenServiceUser .. ":" .. (dest.tokenServicePassword or ""))
  elseif dest.clientId and not in_body then
    headers["Authorization"] = "Basic " ..
      ferry.base64.encode(enc(dest.clientId) .. ":" .. enc(dest.clientSecret or ""))
  end
  if dest.clientId and (in_body or dest.tokenServiceUser) then
    body[#body + 1] = { "client_id", dest.clientId }
    if dest.clientSecret then body[#body + 1] = { "client_secret", dest.clientSecret } end
  end
  for _, kv in ipairs(prefixed(dest, "tokenService.body.")) do body[#body + 1] = kv end
  for _, kv in ipairs(prefixed(dest, "tokenServiceURL.headers.")) do headers[kv[1]] = kv[2] end
  local q = {}
  for _, kv in ipairs(prefixed(dest, "tokenServiceURL.queries.")) do q[#q + 1] = kv end
  if #q > 0 then url = url .. (url:find("?", 1, true) and "&" or "?") .. form(q) end

  local secs = tonumber(dest["tokenServiceURL.SocketReadTimeoutInSeconds"] or "") or 10
  if secs < 1 or secs > 14 then secs = 10 end     -- a hook waits 15 s at most
  local res, err = ferry.http.request { method = "POST", url = url, headers = headers,
                                        body = form(body), timeout_ms = math.floor(secs * 1000),
                                        tls_of = "tokenService" }
  if res == nil then return nil, "token service: " .. err end
  if res.status ~= 200 then
    return nil, "token service answered " .. res.status, res.status
  end
  local ok, j = pcall(ferry.json.decode, res.body)
  if not ok or type(j) ~= "table" or type(j.access_token) ~= "string" then
    return nil, "token service answer has no access_token", res.status
  end
  local ttype = j.token_type or "Bearer"
  if ttype:lower() == "bearer" then ttype = "Bearer" end
  return { type = ttype, value = j.access_token, expires_in = tonumber(j.expires_in) or 0 }
end

-- The cached token for dest in the caller's tenant (and the user, for user flows:
-- key_extra), fetching it if needed (one fetch per key in the whole gateway). Refreshed
-- 60 s before it expires; the cache shortens that for a short-lived token (half its
-- life, at least 6 s) and never hands out one with < 5 s left.
function M.token(dest, ctx, key_extra, fields)
  local key = "oauth2|" .. ((ctx and ctx.tenant) or "") .. "|" .. dest.Name .. "|" ..
              (key_extra or "")
  return ferry.tokens.get(key, 60000, function()
    return M.request(dest, fields)
  end)
end

-- Put the token on the request as its Authorization header.
function M.authorize(req, tok)
  req.headers["Authorization"] = tok.type .. " " .. tok.value
end

return M
