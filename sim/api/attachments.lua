-- api/attachments.lua: attachments (api-v3.md 3.7). POST /v3/attachments
-- hands out an upload URL on the simulator itself (upload.lua serves it):
-- <scheme>://<Host>/upload/<id>?sig=<random>, and a download URL
-- <scheme>://<Host>/download/<id>?sig=<random>.

-- luacheck: std ngx_lua

local C = require("common")
local model = require("model")
local store = require("store")

local ipairs, type = ipairs, type

local _M = {}

-- 100 MB, read as MiB (the more permissive reading).
_M.MAX_SIZE = 100 * 1024 * 1024

local SUPPORTED = {}
for _, t in ipairs({
  "image/jpeg", "image/png", "image/gif", "image/heic", "image/heif", "image/tiff",
  "image/bmp", "image/svg+xml", "image/webp", "image/x-icon", "video/mp4",
  "video/quicktime", "video/mpeg", "video/mpeg2", "video/x-m4v", "video/x-msvideo",
  "video/3gpp", "audio/mpeg", "audio/mp3", "audio/x-m4a", "audio/mp4", "audio/x-caf",
  "audio/x-wav", "audio/x-aiff", "audio/aiff", "audio/aac", "audio/midi", "audio/amr",
  "application/pdf", "text/plain", "text/markdown", "text/vcard", "text/rtf", "text/csv",
  "text/html", "text/calendar", "application/msword",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.ms-excel",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "application/vnd.ms-powerpoint",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/x-iwork-pages-sffpages", "application/x-iwork-numbers-sffnumbers",
  "application/x-iwork-keynote-sffkey", "application/epub+zip", "text/xml",
  "application/json", "application/zip", "application/x-gzip",
  "application/vnd.apple.pkpass",
}) do SUPPORTED[t] = true end

-- POST /v3/attachments {content_type, filename, size_bytes} -> 201
-- {attachment_id, download_url, expires_at, http_method, required_headers, upload_url}
function _M.create(ctx)
  local body = C.json_body()
  local ct = C.need(body, "content_type")
  local filename = C.need_string(body, "filename")
  local size = C.need(body, "size_bytes")
  if type(ct) ~= "string" or not SUPPORTED[ct] then
    C.fail(400, 5004, "Invalid file type: " .. tostring(ct))
  end
  if not C.is_int(size) or size < 1 then C.bad("size_bytes", "(a positive integer)") end
  if size > _M.MAX_SIZE then
    C.fail(400, 5005, "File too large: at most " .. _M.MAX_SIZE .. " bytes")
  end
  local id = C.uuid()
  local origin = C.origin()
  local sig = C.random_hex(32)
  local att = {
    id = id, content_type = ct, created_at = C.iso(), filename = filename,
    size_bytes = size, status = "pending",
    download_url = origin .. "/download/" .. id .. "?sig=" .. C.random_hex(32),
    _sig = sig, _expires_at = C.iso(15 * 60),
  }
  ctx.st:put("attachment", id, att)
  store.global_set("att:" .. id, ctx.ns) -- upload.lua finds the namespace by id
  return 201, {
    attachment_id = id, download_url = att.download_url, expires_at = att._expires_at,
    http_method = "PUT", required_headers = { ["Content-Type"] = ct },
    upload_url = origin .. "/upload/" .. id .. "?sig=" .. sig,
  }
end

local function need(st, id)
  local att = st:get("attachment", id)
  if not att then C.not_found(2003) end
  return att
end

-- GET /v3/attachments/{id}
function _M.get(ctx, p)
  return 200, model.public(need(ctx.st, p.attachment))
end

-- DELETE /v3/attachments/{id} -> 204 (void; the reference documents 204)
function _M.delete(ctx, p)
  need(ctx.st, p.attachment)
  ctx.st:delete("attachment", p.attachment)
  store.global_delete("att:" .. p.attachment)
  store.global_delete("upload_bytes:" .. p.attachment)
  return 204, ""
end

return _M
