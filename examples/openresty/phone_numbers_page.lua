-- The handlers of examples/openresty/nginx.conf.  Each nginx worker makes one
-- client, in init_worker_by_lua (linq.new reads LINQ_API_V3_API_KEY and
-- LINQ_API_V3_BASE_URL); every call goes over nginx's cosockets, so the worker
-- keeps serving while it waits.
--
-- linq.safe's calls return nil, err: a raised linq error is a table, which ngx_lua
-- would log as "runtime error: unknown reason".  tostring(err) is one line with the
-- type, status, code, message and request id, never the key.
local linq = require("linq.safe")
local cjson = require("cjson.safe")

local M = {}

local client   -- this worker's

-- init_worker_by_lua: no I/O here, only the options checked, so a missing key
-- shows in the error log at start rather than on the first request.
function M.init_worker()
  local ok, c = pcall(linq.new)
  if not ok then
    ngx.log(ngx.ERR, "no linq client: ", tostring(c))
    return
  end
  client = c
end

local function phone_numbers()
  if not client then return nil, "the linq client is not configured (see the error log)" end
  local res, err = client:phone_numbers()
  if not res then ngx.log(ngx.ERR, "phone_numbers failed: ", tostring(err)) end
  return res, err
end

-- What the browser gets when the call failed.  The failure is this server's, not
-- the browser's: a Linq 401 or 403 says our key was refused, and passed on as it
-- is it would ask the browser to authenticate.  So 502, or 504 when Linq did not
-- answer in time; the details stay in the error log, the request id goes to the
-- browser to quote.
local function gateway_status(err)
  if not linq.is_error(err) then return 500 end   -- no client: this server's configuration
  if err.type == linq.errors.APITimeoutError then return 504 end
  return 502
end

-- A JSON object, or nil for an absent field or JSON null (linq.null, which is not nil).
local function object(v)
  return type(v) == "table" and v or nil
end

local function escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                        ['"'] = "&quot;" }))
end

function M.json()
  local res, err = phone_numbers()
  if not res then
    ngx.status = gateway_status(err)
    ngx.say(cjson.encode({ error = {
      message = "the phone numbers could not be loaded from Linq",
      request_id = linq.is_error(err) and err.request_id or nil,
    } }))
    return
  end
  ngx.say(cjson.encode(res))
end

function M.html()
  local res, err = phone_numbers()
  local out = { "<!doctype html><meta charset=utf-8><title>Phone numbers</title>",
                "<h1>Phone numbers</h1>" }
  if not res then
    ngx.status = gateway_status(err)
    out[#out + 1] = "<p>The phone numbers could not be loaded from Linq" ..
                    (linq.is_error(err) and err.request_id and
                     (" (request " .. escape(err.request_id) .. ")") or "") .. ".</p>"
  else
    out[#out + 1] = "<table><tr><th>Number</th><th>Status</th><th>Forwarding to</th></tr>"
    for _, n in ipairs(res.phone_numbers) do
      -- `reputation` replaces the deprecated `health_status`; servers may send either.
      local health = object(n.reputation) or object(n.health_status) or {}
      local forwarding = n.forwarding_number
      out[#out + 1] = string.format("<tr><td>%s</td><td><a href=\"%s\">%s</a></td><td>%s</td></tr>",
        escape(n.phone_number), escape(health.doc_url or "#"), escape(health.status or "?"),
        (forwarding and forwarding ~= linq.null) and escape(forwarding) or "")
    end
    out[#out + 1] = "</table>"
  end
  ngx.say(table.concat(out, "\n"))
end

return M
