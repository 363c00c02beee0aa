/* The meta table a successful call returns: status, request_id, attempts, waited,
 * and headers.  Most callers never look at the headers, so the table of them is
 * built on first access (meta.headers) from one string kept aside: a call costs
 * one string instead of a string pair and a table slot per header. */
#include <string.h>

#include "linq.h"

#define META_MT "linq.Meta"
#define META_HEADERS "linq.meta_headers"  /* weak-keyed: meta -> raw header block */

static int meta_index(lua_State *L)
{
    size_t len;
    const char *raw;

    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "headers") != 0)
        return 0;
    lua_getfield(L, LUA_REGISTRYINDEX, META_HEADERS);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    raw = lua_tolstring(L, -1, &len);
    if (raw == NULL)
        return 0;
    /* Redacted when it was kept; built once, then an ordinary field. */
    linq_push_header_table(L, len ? raw : NULL, len, NULL);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -5);
    return 1;
}

void linq_meta_register(lua_State *L)
{
    luaL_newmetatable(L, META_MT);
    lua_pushliteral(L, META_MT);
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, meta_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, META_HEADERS);
}

void linq_push_meta(lua_State *L, const linq_call *k, long status, int attempts,
                    double waited, int result_idx)
{
    const linq_client *c = k->c;

    lua_createtable(L, 0, 6);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    if (linq_push_request_id(L, c, result_idx))
        lua_setfield(L, -2, "request_id");
    lua_pushinteger(L, attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, waited);
    lua_setfield(L, -2, "waited");
    if (k->idempotency_key != NULL) {
        lua_pushstring(L, k->idempotency_key);
        lua_setfield(L, -2, "idempotency_key");
    }

    lua_getfield(L, LUA_REGISTRYINDEX, META_HEADERS);
    lua_pushvalue(L, -2);
    linq_push_redacted(L, c, c->resp.headers.data ? c->resp.headers.data : "",
                       c->resp.headers.len);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    luaL_setmetatable(L, META_MT);
}
