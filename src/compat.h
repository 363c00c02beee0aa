/* Every difference between Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT that this module
 * meets lives here, and only here. */
#ifndef LINQ_COMPAT_H
#define LINQ_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* Lua 5.3 and later have a separate integer subtype (math.type). */
#if LUA_VERSION_NUM >= 503
#define LINQ_HAS_INTEGERS 1
#endif

#if LUA_VERSION_NUM < 502

/* One build serves the 5.1 ABI: lua5.1 and LuaJIT load the same core.so from
 * lib/lua/5.1.  LuaJIT's lauxlib.h declares a few 5.2 functions that plain 5.1
 * does not export, so a build against those headers must not call them: under
 * either set of headers these names go to private copies made from the 5.1 API.
 * Function-like macros, so LuaJIT's own (parenthesised) declarations stay as
 * they are. */

#ifndef lua_rawlen
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

static inline void linq_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void *linq_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

static inline void linq_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}

#define luaL_setfuncs(L, l, nup) linq_setfuncs((L), (l), (nup))
#define luaL_testudata(L, ud, tname) linq_testudata((L), (ud), (tname))
#define luaL_setmetatable(L, tname) linq_setmetatable((L), (tname))

#endif /* LUA_VERSION_NUM < 502 */

#endif
