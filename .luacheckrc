-- luacheck configuration: `make lint`
std = "max"
max_line_length = 120
exclude_files = { "build/", "luarocks-tree/" }
files["spec/"] = { std = "+busted" }
files["sim/"] = { std = "+ngx_lua" }
files["examples/openresty/"] = { std = "+ngx_lua" }
files["lua/"] = { read_globals = { "ngx" } }  -- looked at only when nginx runs the module
