--- client:upload_attachment{ path = "photo.jpg" } (or data = bytes): both steps of
-- an attachment upload.  create_attachment is called for an upload URL, then the
-- C core PUTs the bytes there (src/upload.c), streamed from the file, with exactly
-- the required_headers the API gave: never the client's key or headers, since the
-- URL is another host.
local core = require("linq.core")

local M = {}

local type, pairs, error, setmetatable = type, pairs, error, setmetatable

-- The API's supported content types (shared/reference/api-v3.md, 3.7), by the
-- file name extensions they commonly carry.
local CONTENT_TYPES = {
  jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", gif = "image/gif",
  heic = "image/heic", heif = "image/heif", tif = "image/tiff", tiff = "image/tiff",
  bmp = "image/bmp", svg = "image/svg+xml", webp = "image/webp", ico = "image/x-icon",
  mp4 = "video/mp4", mov = "video/quicktime", mpeg = "video/mpeg", mpg = "video/mpeg",
  m4v = "video/x-m4v", avi = "video/x-msvideo", ["3gp"] = "video/3gpp",
  mp3 = "audio/mpeg", m4a = "audio/x-m4a", caf = "audio/x-caf", wav = "audio/x-wav",
  aif = "audio/x-aiff", aiff = "audio/x-aiff", aac = "audio/aac", mid = "audio/midi",
  midi = "audio/midi", amr = "audio/amr",
  pdf = "application/pdf", txt = "text/plain", md = "text/markdown", vcf = "text/vcard",
  rtf = "text/rtf", csv = "text/csv", htm = "text/html", html = "text/html",
  ics = "text/calendar", xml = "text/xml", json = "application/json",
  doc = "application/msword",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls = "application/vnd.ms-excel",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ppt = "application/vnd.ms-powerpoint",
  pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  pages = "application/x-iwork-pages-sffpages", numbers = "application/x-iwork-numbers-sffnumbers",
  key = "application/x-iwork-keynote-sffkey", epub = "application/epub+zip",
  zip = "application/zip", gz = "application/x-gzip", pkpass = "application/vnd.apple.pkpass",
}
M.content_types = CONTENT_TYPES

local SPEC_FIELDS = { path = true, data = true, filename = true, content_type = true }

local function argerror(msg)
  error("bad argument #1 to 'upload_attachment' (" .. msg .. ")", 0)
end

local function file_size(path)
  local f, err = io.open(path, "rb")
  if not f then argerror("cannot open '" .. path .. "': " .. tostring(err)) end
  local size = f:seek("end")
  f:close()
  if not size then argerror("cannot read the size of '" .. path .. "'") end
  return size
end

-- What to upload, checked and copied before any traffic.
local function read_spec(spec)
  if type(spec) ~= "table" then argerror("table expected, got " .. type(spec)) end
  local s = {}
  for k, v in pairs(spec) do
    if not SPEC_FIELDS[k] then
      argerror("unknown field '" .. tostring(k) .. "' (path, data, filename, content_type)")
    end
    if type(v) ~= "string" then argerror(k .. " must be a string, got " .. type(v)) end
    s[k] = v
  end
  if (s.path == nil) == (s.data == nil) then argerror("give exactly one of path and data") end
  s.filename = s.filename or (s.path and s.path:match("([^/]+)$"))
  if not s.filename or s.filename == "" then argerror("filename is required with data") end
  if not s.content_type then
    local ext = s.filename:match("%.([^.]+)$")
    s.content_type = ext and CONTENT_TYPES[ext:lower()]
    if not s.content_type then
      argerror("cannot tell the content type of '" .. s.filename .. "'; pass content_type")
    end
  end
  s.size = s.path and file_size(s.path) or #s.data
  return s
end

-- Both steps for any front: create_attachment on self, then put(upload_url,
-- required_headers, spec, timeout) -> _, meta for the PUT.
function M.run(self, spec, opts, put)
  local s = read_spec(spec)
  local res, meta = self:create_attachment({
    content_type = s.content_type, filename = s.filename, size_bytes = s.size,
  }, opts)
  if type(res.upload_url) ~= "string" or (res.http_method ~= nil and res.http_method ~= "PUT") then
    error(setmetatable({
      type = "APIResponseValidationError", status = meta.status, request_id = meta.request_id,
      attempts = meta.attempts, waited = meta.waited,
      message = "create_attachment gave no upload_url to PUT the bytes to",
    }, core._error_mt), 0)
  end
  local headers = type(res.required_headers) == "table" and res.required_headers or nil
  local _, upload_meta = put(res.upload_url, headers, s, type(opts) == "table" and opts.timeout or nil)
  meta.upload = upload_meta
  return res, meta
end

-- Adds upload_attachment to the C client's methods: the PUT over libcurl.
function M.install(methods)
  function methods.upload_attachment(self, spec, opts)
    return M.run(self, spec, opts, function(url, headers, s, timeout)
      return core._upload(self, url, headers, s.path, s.data, s.size, timeout)
    end)
  end
end

return M
