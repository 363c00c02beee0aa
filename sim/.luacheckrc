-- luacheck config for the simulator (sim.lua runs inside nginx/ngx_lua,
-- make-data.lua under plain lua5.4)
std = "ngx_lua"
max_line_length = 100
files["make-data.lua"] = { std = "lua54" }
