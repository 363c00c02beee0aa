-- upload.lua: the presigned upload and download URLs that POST /v3/attachments
-- hands out, served by the simulator itself without auth (like S3):
--
--   PUT /upload/<id>?sig=<sig>      the bytes; 200 empty body -> status "complete"
--   GET /upload/<id>/headers        what the last PUT carried (for tests)
--   GET /download/<id>?sig=<sig>    the bytes back (kept only up to 1 MiB)
--
-- A PUT is refused like a real presigned URL would: wrong sig or any
-- Authorization header 403, a Content-Type other than the attachment's
-- 400/5006, a body whose size differs from size_bytes 400/1005. nginx.conf's
-- "location /upload/" allows bodies up to 130 MiB (in a temp file when over
-- 1 MiB); only the size of a body over 1 MiB is stored, never its bytes.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local store = require("store")

local ngx = ngx
local lower, match, find = string.lower, string.match, string.find

local _M = {}

local KEEP_BYTES = 1048576

local function send(status, body, ctype)
  ngx.status = status
  if ctype then ngx.header["Content-Type"] = ctype end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

local function fail(status, code, message)
  return send(status, C.envelope(status, code, message))
end

-- The attachment of an upload/download URL (its namespace is found by id).
local function attachment(id)
  local ns = id and store.global_get("att:" .. id)
  if not ns then return nil end
  local st = store.ns(ns)
  return st:get("attachment", id), st
end

-- Size of the request body, and its bytes when they are at most KEEP_BYTES.
local function body_size()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return #data, #data <= KEEP_BYTES and data or nil end
  local file = ngx.req.get_body_file()
  if not file then return 0, "" end
  local f = io.open(file, "rb")
  if not f then return nil end
  local size = f:seek("end")
  local bytes
  if size <= KEEP_BYTES then
    f:seek("set", 0)
    bytes = f:read("*a") or ""
  end
  f:close()
  return size, bytes
end

local function put(id)
  local att, st = attachment(id)
  if not att then return fail(404, 2003) end
  local headers = ngx.req.get_headers(100)
  local record = { headers = headers, method = "PUT", time = C.iso() }
  local function answer(status, code, message)
    record.status = status
    store.global_set("upload_headers:" .. id, json.encode(record))
    if status == 200 then return send(200, "") end
    return fail(status, code, message)
  end
  if ngx.var.arg_sig ~= att._sig then
    return answer(403, 2005, "Access denied: bad or missing signature")
  end
  if ngx.var.http_authorization then
    return answer(403, 2005, "Access denied: a presigned upload takes no Authorization header")
  end
  local ct = ngx.var.content_type
  if not ct or lower(match(ct, "^%s*(.-)%s*$")) ~= lower(att.content_type) then
    return answer(400, 5006, "Content type mismatch: expected " .. att.content_type
      .. ", got " .. tostring(ct))
  end
  local size, bytes = body_size()
  record.size = size
  if size ~= att.size_bytes then
    return answer(400, 1005, "Invalid parameter value: the body has " .. tostring(size)
      .. " bytes, size_bytes is " .. att.size_bytes)
  end
  if bytes then
    store.global_set("upload_bytes:" .. id, bytes)
  else
    store.global_delete("upload_bytes:" .. id)
  end
  record.kept = bytes ~= nil
  st:update("attachment", id, function(a) a.status = "complete" end)
  return answer(200)
end

-- upload/<id> (PUT) and upload/<id>/headers (GET)
function _M.upload(segs, n)
  local id = segs[2]
  local method = ngx.req.get_method()
  if n == 2 and method == "PUT" then return put(id) end
  if n == 3 and segs[3] == "headers" and (method == "GET" or method == "HEAD") then
    local rec = id and store.global_get("upload_headers:" .. id)
    if not rec then return fail(404, 4004, "No upload recorded for " .. tostring(id)) end
    return send(200, rec)
  end
  return fail(404, 4004)
end

-- download/<id>?sig=
function _M.download(segs, n)
  local method = ngx.req.get_method()
  if n ~= 2 or (method ~= "GET" and method ~= "HEAD") then return fail(404, 4004) end
  local id = segs[2]
  local att = attachment(id)
  if not att then return fail(404, 2003) end
  local want = match(att.download_url, "[?&]sig=([^&]*)")
  if ngx.var.arg_sig ~= want then return fail(403, 2005, "Access denied: bad or missing signature") end
  if att.status ~= "complete" then return fail(404, 2007) end
  local bytes = store.global_get("upload_bytes:" .. id)
  if not bytes then
    return fail(410, 5002, "File download failed: the simulator keeps uploads only up to 1 MiB")
  end
  return send(200, bytes, att.content_type)
end

-- vcf/<digits>.vcf: the vCard behind GET /v3/available_number's vcf_url.
function _M.vcf(segs, n)
  local digits = n == 2 and match(segs[2], "^(%d+)%.vcf$")
  if not digits or find(digits, "^0") then return fail(404, 4004) end
  return send(200, "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Linq\r\nTEL;TYPE=CELL:+" .. digits
    .. "\r\nEND:VCARD\r\n", "text/vcard")
end

return _M
