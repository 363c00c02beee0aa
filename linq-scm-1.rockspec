package = "linq"
version = "scm-1"
source = {
   url = "git+https://github.com/linq-lua/linq.git",
}
description = {
   summary = "Client for the Linq API (chats, messages, phone numbers), with a C core on libcurl",
   detailed = [[
      linq performs Linq API V3 requests in C over libcurl, decodes replies with a private
      lua-cjson instance into native Lua tables, retries as the official SDKs do, and raises
      structured errors carrying the HTTP status, the API's code, message and doc_url.
      Every operation of the API is a method; inside nginx, calls go over cosockets.
      Webhook signatures are verified in C with OpenSSL's libcrypto.
   ]],
   homepage = "https://github.com/linq-lua/linq",
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson >= 2.1.0",
}
external_dependencies = {
   CURL = { header = "curl/curl.h", library = "curl" },
   HTTP_PARSER = { header = "http_parser.h", library = "http_parser" },
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
   type = "builtin",
   modules = {
      linq = "lua/linq.lua",
      ["linq.nginx"] = "lua/linq/nginx.lua",
      ["linq.cosocket"] = "lua/linq/cosocket.lua",
      ["linq.paging"] = "lua/linq/paging.lua",
      ["linq.upload"] = "lua/linq/upload.lua",
      ["linq.replay"] = "lua/linq/replay.lua",
      ["linq.safe"] = "lua/linq/safe.lua",
      ["linq.batch"] = "lua/linq/batch.lua",
      ["linq.core"] = {
         sources = {
            "src/batch.c", "src/buffer.c", "src/call.c", "src/client.c", "src/errors.c",
            "src/exchange.c",
            "src/json.c", "src/log.c",
            "src/meta.c", "src/module.c", "src/operation.c", "src/operations.c",
            "src/options.c", "src/response.c", "src/retry.c", "src/upload.c", "src/url.c",
            "src/uuid.c", "src/webhook.c",
         },
         defines = { "_GNU_SOURCE" },
         libraries = { "curl", "http_parser", "crypto" },
         incdirs = { "$(CURL_INCDIR)", "$(HTTP_PARSER_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(HTTP_PARSER_LIBDIR)", "$(OPENSSL_LIBDIR)" },
      },
   },
}
