/* luaopen_linq_core: the C core that lua/linq.lua re-exports.  JSON goes through a
 * private lua-cjson instance, so an application's own cjson settings are never
 * touched and bad JSON comes back as a value, not a throw. */
#include <dlfcn.h>

#include "linq.h"

/* Pushes cjson.safe.new(), configured for strict JSON. */
static void push_private_cjson(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_remove(L, -2);
    lua_getfield(L, -1, "decode_invalid_numbers");  /* no NaN, Infinity or hex from a server */
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
}

/* Keeps the library holding code loaded until the process ends.  An interpreter
 * closing down unloads C modules while finalizers may still run (a client made by
 * a finalizer at exit ran code that was gone: ours under LuaJIT, lua-cjson's under
 * Lua 5.3), and the rockspec's builtin build cannot pass -Wl,-z,nodelete. */
/* Pushes a table of request and every operation, each building an exchange of the
 * given stage (LINQ_STAGE_*) instead of calling; the module upvalues from first_uv. */
static void push_stagers(lua_State *L, int first_uv, int stage)
{
    int t, i;

    lua_createtable(L, 0, 70);
    t = lua_gettop(L);
    for (i = 0; i < LINQ_NUPVALUES; i++)
        lua_pushvalue(L, first_uv + i);
    lua_pushnil(L);           /* no row; the name its errors give, wherever it is called */
    lua_pushliteral(L, "request");
    lua_pushinteger(L, stage);
    lua_pushcclosure(L, linq_client_request, LINQ_NUPVALUES + 3);
    lua_setfield(L, t, "request");
    linq_register_operations(L, t, first_uv, stage);
}

int luaopen_linq_core(lua_State *L);

static void pin_library(const void *code)
{
    Dl_info info;

    if (code != NULL && dladdr(code, &info) && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* Only its address matters: linq.empty_array. */
const char linq_empty_array_sentinel = 0;

int luaopen_linq_core(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"new", linq_client_new},
        {"is_error", linq_is_error},
        {"_operations", linq_operations},
        {"_upload", linq_upload},
        {"_prepare_upload", linq_prepare_upload},
        {"_batch", linq_batch_new},
        {"_stage_all", linq_stage_all},
        {NULL, NULL}
    };
    int json, i;

    pin_library((const void *)(uintptr_t)luaopen_linq_core);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "linq: libcurl failed to initialise");

    push_private_cjson(L);
    json = lua_gettop(L);

    /* The shared upvalues, in LINQ_UV_* order.  lua-cjson's library is pinned as
     * ours is: a call from a finalizer at exit decodes with it. */
    lua_getfield(L, json, "decode");
    pin_library((const void *)(uintptr_t)lua_tocfunction(L, -1));
    lua_getfield(L, json, "encode");
    luaL_newmetatable(L, LINQ_ERROR_MT);
    lua_pushliteral(L, LINQ_ERROR_MT);
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, linq_error_tostring);
    lua_setfield(L, -2, "__tostring");

    linq_client_register(L);
    linq_meta_register(L);
    linq_upload_register(L);
    linq_exchange_register(L);
    linq_batch_register(L);

    lua_createtable(L, 0, 6);
    for (i = 0; i < LINQ_NUPVALUES; i++)
        lua_pushvalue(L, json + 1 + i);
    luaL_setfuncs(L, functions, LINQ_NUPVALUES);
    /* Webhooks (webhook.c): linq.webhook, linq.webhook_signature, linq.events. */
    linq_webhook_register(L, json + 1);
    lua_getfield(L, json, "null");
    lua_setfield(L, -2, "null");
    /* Encodes as [] (an empty Lua table is {}), e.g. to clear a list field. */
    lua_pushlightuserdata(L, (void *)&linq_empty_array_sentinel);
    lua_setfield(L, -2, "empty_array");
    lua_pushliteral(L, LINQ_VERSION);
    lua_setfield(L, -2, "_VERSION");
    /* For the nginx front, which rebuilds errors that crossed a thread as plain tables. */
    lua_pushvalue(L, json + 3);
    lua_setfield(L, -2, "_error_mt");
    /* For lua/linq.lua, which adds the methods written in Lua (paging, upload). */
    luaL_getmetatable(L, LINQ_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -3, "_methods");
    lua_pop(L, 1);
    /* For transports that move the bytes themselves (nginx's cosockets): the same
     * methods, each returning an exchange (exchange.c) instead of calling. */
    push_stagers(L, json + 1, LINQ_STAGE_BYTES);
    lua_setfield(L, -2, "_prepare");
    /* For client:all (batch.c): the same, staged for a libcurl handle of a batch. */
    push_stagers(L, json + 1, LINQ_STAGE_CURL);
    lua_setfield(L, -2, "_stage");
    return 1;
}
