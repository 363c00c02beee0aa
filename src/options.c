/* Checking what callers pass.  Everything here raises ordinary Lua errors in the
 * "bad argument #n to 'f' (...)" form, and runs before any traffic.  No message
 * ever quotes a value that could be the API key. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linq.h"

int linq_argerror(lua_State *L, int arg, const char *msg)
{
    const char *name = lua_tostring(L, lua_upvalueindex(LINQ_UV_OP_NAME));
    lua_Debug ar;

    if (name == NULL)  /* not an operation: Lua's own wording */
        return luaL_argerror(L, arg, msg);
    if (arg > 1)
        return luaL_error(L, "bad argument #%d to '%s' (%s)", arg - 1, name, msg);
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.namewhat != NULL
        && strcmp(ar.namewhat, "method") == 0)
        return luaL_error(L, "calling '%s' on bad self (%s)", name, msg);
    return luaL_error(L, "bad argument #1 to '%s' (%s)", name, msg);
}

/* Pushes a copy of the table at idx made with raw access, in one pass. */
static void push_raw_copy(lua_State *L, int idx)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

void linq_copy_options(lua_State *L, int idx, const char *const names[])
{
    static const char *const nested[] = {"headers", "query", "params"};
    size_t i;

    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    push_raw_copy(L, idx);
    /* An option the table does not hold itself may come from its __index (a table
     * of defaults, a proxy): asked once, here, and kept in the copy. */
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        for (i = 0; names[i] != NULL; i++) {
            lua_getfield(L, -1, names[i]);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_getfield(L, idx, names[i]);
                lua_setfield(L, -2, names[i]);
            } else {
                lua_pop(L, 1);
            }
        }
    }
    for (i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        int copy = lua_gettop(L);
        lua_pushstring(L, nested[i]);
        lua_rawget(L, copy);
        if (lua_type(L, -1) == LUA_TTABLE) {
            push_raw_copy(L, lua_gettop(L));
            lua_setfield(L, copy, nested[i]);
        }
        lua_pop(L, 1);
    }
    lua_replace(L, idx);
}

int linq_has_control_char(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return 1;
    }
    return 0;
}

/* Edit distance, for suggesting the option a typo meant. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, row[32];

    if (la >= 31 || lb >= 31)
        return 99;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

void linq_check_option_names(lua_State *L, int arg, int tidx, const char *const names[])
{
    lua_pushnil(L);
    while (lua_next(L, tidx)) {
        const char *key, *near = NULL;
        size_t i, best = 3, key_len;

        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            linq_argerror(L, arg, lua_pushfstring(L, "option names must be strings, got a %s",
                                                  luaL_typename(L, -1)));
        }
        key = lua_tolstring(L, -1, &key_len);
        for (i = 0; names[i] != NULL; i++) {
            size_t d;
            if (strlen(names[i]) == key_len && memcmp(key, names[i], key_len) == 0)
                break;  /* lengths too: "timeout\0x" is not timeout */
            d = distance(key, names[i]);
            if (d < best) {
                best = d;
                near = names[i];
            }
        }
        if (names[i] == NULL && strlen(key) < key_len)
            linq_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (it contains a NUL)",
                                                  key));
        if (names[i] == NULL) {
            luaL_Buffer b;
            /* The whole list after the guess: a guess can be wrong, the list cannot. */
            luaL_buffinit(L, &b);
            for (i = 0; names[i] != NULL; i++) {
                luaL_addstring(&b, i ? ", " : "");
                luaL_addstring(&b, names[i]);
            }
            luaL_pushresult(&b);
            linq_argerror(L, arg, near
                ? lua_pushfstring(L, "unknown option '%s' (did you mean '%s'?); the options are: "
                                     "%s", key, near, lua_tostring(L, -1))
                : lua_pushfstring(L, "unknown option '%s'; the options are: %s", key,
                                  lua_tostring(L, -1)));
        }
    }
}

double linq_opt_number(lua_State *L, int arg, int tidx, const char *name, double dflt,
                       double min, int min_exclusive, double max)
{
    double v;

    lua_getfield(L, tidx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        linq_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a number, got a %s",
                                              name, luaL_typename(L, -1)));
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!isfinite(v) || v < min || (min_exclusive && v == min) || v > max) {
        char range[96];
        snprintf(range, sizeof range, "%s %g and at most %g",
                 min_exclusive ? "more than" : "at least", min, max);
        linq_argerror(L, arg, lua_pushfstring(L, "option '%s' must be %s", name, range));
    }
    return v;
}

int linq_opt_integer(lua_State *L, int arg, int tidx, const char *name, int dflt, int min, int max)
{
    double v = linq_opt_number(L, arg, tidx, name, dflt, min, 0, max);

    if (v != floor(v))
        linq_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a whole number", name));
    return (int)v;
}

const char *linq_opt_string(lua_State *L, int arg, int tidx, const char *name, size_t *len)
{
    const char *s;

    lua_getfield(L, tidx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        linq_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a string, got a %s",
                                              name, luaL_typename(L, -1)));
    s = lua_tolstring(L, -1, len);
    lua_pop(L, 1);  /* still referenced by the options table */
    return s;
}

static int is_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

void linq_check_headers_table(lua_State *L, int arg, int tidx, const char *what)
{
    if (lua_type(L, tidx) != LUA_TTABLE)
        linq_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a table, got a %s",
                                              what, luaL_typename(L, tidx)));
    lua_pushnil(L);
    while (lua_next(L, tidx)) {
        size_t n, i;
        const char *name;

        if (lua_type(L, -2) != LUA_TSTRING)
            linq_argerror(L, arg, lua_pushfstring(L, "%s: header names must be strings", what));
        name = lua_tolstring(L, -2, &n);
        for (i = 0; i < n; i++)
            if (!is_token_char((unsigned char)name[i]))
                break;
        if (n == 0 || i < n)
            linq_argerror(L, arg, lua_pushfstring(L, "%s: invalid header name '%s'", what, name));
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            linq_argerror(L, arg, lua_pushfstring(L, "%s: header '%s' must be a string, got a %s",
                                                  what, name, luaL_typename(L, -1)));
        {
            size_t vlen, j;
            const char *v;
            lua_pushvalue(L, -1);  /* tolstring on a copy: never convert a key lua_next uses */
            v = lua_tolstring(L, -1, &vlen);
            for (j = 0; j < vlen; j++) {
                unsigned char ch = (unsigned char)v[j];
                if ((ch < 0x20 && ch != '\t') || ch == 0x7f)  /* a tab is allowed in a value */
                    linq_argerror(L, arg, lua_pushfstring(
                        L, "%s: header '%s' contains CR, LF, NUL or another control character",
                        what, name));
            }
            lua_pop(L, 2);
        }
    }
}

long linq_timeout_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    if (ms < 1)
        ms = 1;
    if (ms > 2147483647.0)
        ms = 2147483647.0;
    return (long)ms;
}
