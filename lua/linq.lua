--- linq: a client for the Linq API, for Lua 5.1-5.4 and LuaJIT.
-- Requests, retries, errors and JSON all run in the C core (`linq.core`); this
-- front only re-exports it, and is where Lua-side integrations belong.
-- See README.md for the interface.
return require("linq.core")
