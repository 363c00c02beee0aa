-- What goes on the wire: headers, URL joining, query strings and JSON bodies,
-- as the simulator's echo mode received them.
local linq = require("linq")
local support = require("support")

local function echo_client(opts)
  opts = opts or {}
  opts.mode = opts.mode or "echo"
  return support.client(opts)
end

describe("requests", function()
  it("send the key, Accept and a User-Agent naming the versions", function()
    local client = echo_client()
    local res = client:phone_numbers()
    assert.equal("Bearer " .. support.key, res.headers.authorization)
    assert.equal("application/json", res.headers.accept)
    assert.matches("gzip", res.headers["accept-encoding"])
    local lua_version = (jit and jit.version) or _VERSION
    assert.matches("^linq%-lua/" .. linq._VERSION:gsub("%.", "%%.") .. " %(" ..
                   lua_version:gsub("[%.%-]", "%%%0") .. "; libcurl/%d+%.%d+%.%d+%)$",
                   res.headers["user-agent"])
    assert.is_nil(res.headers["content-type"])  -- no body, no Content-Type
    assert.equal(linq.null, res.body)
    client:close()
  end)

  it("send the client's headers on every call, and a call's own over them", function()
    local client = echo_client{ headers = { ["X-Extra"] = "v", ["X-Both"] = "client" } }
    local res = client:phone_numbers()
    assert.equal("v", res.headers["x-extra"])
    res = client:request("GET", "/v3/x", { headers = { ["x-both"] = "call" } })
    assert.equal("v", res.headers["x-extra"])
    assert.equal("call", res.headers["x-both"])
    client:close()
  end)

  it("let a client header replace a default one", function()
    local client = echo_client{ headers = { ["User-Agent"] = "my-app/1.0" } }
    assert.equal("my-app/1.0", client:phone_numbers().headers["user-agent"])
    client:close()
  end)

  it("join base URL and path with exactly one slash", function()
    local client = linq.new{ api_key = support.key, base_url = support.base("echo") .. "/" }
    assert.equal("/echo/v3/phone_numbers", client:phone_numbers().path)
    assert.equal("/echo/v3/chats", client:request("GET", "v3/chats").path)
    assert.equal("/echo/v3/chats", client:request("GET", "/v3/chats").path)
    client:close()
  end)

  it("encode the query, sorted, with lists as repeated names", function()
    local client = echo_client()
    local res = client:request("GET", "/v3/chats", {
      query = { limit = 10, cursor = "a b&c=d/é", to = { "+1202", "+1303" }, flag = true },
    })
    assert.equal("cursor=a%20b%26c%3Dd%2F%C3%A9&flag=true&limit=10&to=%2B1202&to=%2B1303",
                 res.query)
    assert.equal("a b&c=d/é", res.args.cursor)
    res = client:request("GET", "/v3/chats?x=1", { query = { y = 2 } })
    assert.equal("x=1&y=2", res.query)
    client:close()
  end)

  it("send a table body as JSON with Content-Type, and linq.null as null", function()
    local client = echo_client()
    local res = client:request("PUT", "/v3/phone_numbers/abc",
                               { body = { forwarding_number = linq.null } })
    assert.equal("PUT", res.method)
    assert.equal("application/json", res.headers["content-type"])
    assert.equal('{"forwarding_number":null}', res.body)
    res = client:request("POST", "/v3/chats", { body = '{"raw":true}' })
    assert.equal("POST", res.method)
    assert.equal('{"raw":true}', res.body)
    res = client:request("patch", "/v3/messages/1", { body = { text = "hi" } })
    assert.equal("PATCH", res.method)
    assert.equal('{"text":"hi"}', res.body)
    res = client:request("DELETE", "/v3/messages/1")
    assert.equal("DELETE", res.method)
    assert.is_nil(res.headers["content-type"])
    client:close()
  end)

  it("send one Content-Type, the caller's when the client or the call sets one", function()
    local client = echo_client{ headers = { ["Content-Type"] = "application/merge-patch+json" } }
    local res = client:request("PATCH", "/v3/contact_card", { body = { name = "x" } })
    assert.equal("application/merge-patch+json", res.headers["content-type"])
    res = client:request("PATCH", "/v3/contact_card",
                         { body = { name = "x" }, headers = { ["content-type"] = "text/plain" } })
    assert.equal("text/plain", res.headers["content-type"])
    client:close()
  end)

  it("sort query names without the global table library", function()
    -- In a child interpreter: busted gives each spec file its own globals.
    local out, err, ok = support.run_lua({}, string.format([[
      local client = require("linq").new{ api_key = "k", base_url = %q }
      table = nil  -- an embedder's sandbox may lack it
      local res = client:request("GET", "/v3/chats",
                                 { query = { zeta = 1, alpha = 2, mid = 3, ["a\0b"] = 4, a = 5 } })
      io.write(res.query)
    ]], support.base("echo")))
    assert.is_true(ok, err)
    assert.equal("a=5&a%00b=4&alpha=2&mid=3&zeta=1", out)
  end)

  it("update a phone number's forwarding number through the API", function()
    local client = support.client()
    local res, meta = client:request("PUT", "/v3/phone_numbers/550e8400-e29b-41d4-a716-446655440000",
                                     { body = { forwarding_number = "+12025550100" } })
    assert.equal(200, meta.status)
    assert.equal("+12025550100", res.forwarding_number)
    assert.equal("+12025551234", res.phone_number)
    res = client:request("PUT", "/v3/phone_numbers/550e8400-e29b-41d4-a716-446655440000",
                         { body = { forwarding_number = linq.null } })
    assert.equal(linq.null, res.forwarding_number)
    local e = support.raises(client.request, client, "PUT", "/v3/phone_numbers/nope",
                             { body = { forwarding_number = "+12025550100" } })
    assert.equal("NotFoundError", e.type)
    client:close()
  end)

  it("return an empty table for a 204 No Content", function()
    local client = support.client{ mode = "status/204" }
    local res, meta = client:request("DELETE", "/v3/messages/1")
    assert.same({}, res)
    assert.equal(204, meta.status)
    client:close()
  end)

  it("decode JSON null as linq.null and pass every field through", function()
    local client = echo_client()
    local res = client:phone_numbers()
    assert.equal(linq.null, res.body)          -- the echo's "body": null
    assert.is_not_nil(res.connection)          -- fields no schema names arrive as sent
    assert.is_true(res.body ~= nil)
    client:close()
  end)

end)
