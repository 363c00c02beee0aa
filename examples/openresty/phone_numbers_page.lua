-- The two handlers of examples/openresty/nginx.conf.  Each nginx worker makes
-- one client (linq.new reads LINQ_API_V3_API_KEY and LINQ_API_V3_BASE_URL);
-- every call goes over nginx's cosockets, so the worker keeps serving.
local linq = require("linq")
local cjson = require("cjson.safe")

local M = {}

local client

local function phone_numbers()
  client = client or linq.new()
  return pcall(client.phone_numbers, client)
end

local function escape(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                        ['"'] = "&quot;" }))
end

-- The API's own status for API errors; 502 when the API could not be reached.
local function fail_status(err)
  return linq.is_error(err) and err.status or 502
end

function M.json()
  local ok, res = phone_numbers()
  if not ok then
    ngx.status = fail_status(res)
    ngx.say(cjson.encode({ error = {
      type = res.type, status = res.status, code = res.code,
      message = res.message or tostring(res), doc_url = res.doc_url,
    } }))
    return
  end
  ngx.say(cjson.encode(res))
end

function M.html()
  local ok, res = phone_numbers()
  local out = { "<!doctype html><meta charset=utf-8><title>Phone numbers</title>",
                "<h1>Phone numbers</h1>" }
  if not ok then
    ngx.status = fail_status(res)
    out[#out + 1] = "<p>" .. escape(tostring(res)) .. "</p>"
  else
    out[#out + 1] = "<table><tr><th>Number</th><th>Status</th><th>Forwarding to</th></tr>"
    for _, n in ipairs(res.phone_numbers) do
      -- `reputation` replaces the deprecated `health_status`; servers may send either.
      local health = n.reputation or n.health_status or {}
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
