-- luacheck configuration: `make lint`
std = "max"
max_line_length = 120
exclude_files = { "build/", "luarocks-tree/" }
files["spec/"] = { std = "+busted" }
files["sim/"] = { std = "+ngx_lua" }
