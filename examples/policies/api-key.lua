-- api-key.lua: add the upstream's API key, which the applications never see.
--
--   destinations:
--     - Name: weather
--       Type: HTTP
--       URL: https://api.weather.example
--       apiKey: ${env:WEATHER_API_KEY}      # a secret: never printed, never logged
--       policy: api-key.lua
--
-- Any key a client sent is dropped first, so only the destination's reaches the
-- upstream. dest.apiKey reads the property by its name; a destination without one is
-- refused rather than sent on without a key.
return {
  on_request = function(req, dest)
    local key = dest.apiKey
    if not key then
      return ferry.deny(502, "destination " .. dest.Name .. " has no apiKey")
    end
    req.headers["X-Api-Key"] = key
    -- Some APIs want it in the query instead:
    -- req.query = (req.query ~= "" and req.query .. "&" or "") .. "api_key=" .. key
  end,
}
