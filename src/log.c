/* What a client says about its own work: the levels of the official SDKs
 * (off < error < warn < info < debug, default warn, LINQ_API_V3_LOG), to stderr or
 * to the caller's logger(level, line).  A retry is info; every attempt is debug.
 * Each line passes through the key's redaction (errors.c) and names no header
 * values, so neither the key nor Authorization or cookie values can appear.
 * Nothing is formatted below the client's level: the default costs one compare. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linq.h"

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", NULL};

const char *linq_log_level_name(int level)
{
    return level_names[level];
}

static int level_of(const char *s)
{
    int i;
    for (i = 0; level_names[i] != NULL; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

/* Pushes nothing; the line is at the top of the stack and is popped. */
static void emit(lua_State *L, const linq_client *c, int level)
{
    linq_push_redacted(L, c, lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_remove(L, -2);
    if (c->logger_ref != LUA_NOREF && c->logger_ref != LUA_REFNIL) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->logger_ref);
        lua_pushstring(L, level_names[level]);
        lua_pushvalue(L, -3);
        /* A logger that fails must not fail the call it reports on. */
        if (lua_pcall(L, 2, 0, 0) != LUA_OK)
            lua_pop(L, 1);
        lua_pop(L, 1);
        return;
    }
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
}

void linq_log(lua_State *L, const linq_client *c, int level, const char *fmt, ...)
{
    va_list ap;

    if (level > c->log_level)
        return;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    emit(L, c, level);
}

void linq_log_attempt(lua_State *L, const linq_client *c, const linq_attempt_log *a)
{
    const char *rid;

    if (c->log_level < LINQ_LOG_INFO || (a->verdict != LINQ_ATTEMPT_RETRY
                                         && c->log_level < LINQ_LOG_DEBUG))
        return;
    rid = linq_response_header(&c->resp, "x-request-id");
    if (rid == NULL)
        rid = linq_response_header(&c->resp, "x-trace-id");
    /* A presigned upload URL's query is its signature: only the path is shown. */
    lua_pushfstring(L, "linq: %s ", a->method);
    lua_pushlstring(L, a->url, a->url_without_query ? strcspn(a->url, "?") : strlen(a->url));
    if (a->transport_code != CURLE_OK)
        lua_pushfstring(L, " -> no reply: %s", a->message ? a->message : "?");
    else
        lua_pushfstring(L, " -> %d", (int)a->status);
    lua_concat(L, 3);
    lua_pushfstring(L, " (attempt %d of %d", a->attempt, a->max_retries + 1);
    if (a->elapsed_ms >= 0)
        lua_pushfstring(L, ", %d ms", (int)a->elapsed_ms);
    else
        lua_pushliteral(L, "");
    lua_pushfstring(L, "%s%s)", rid ? ", request_id " : "", rid ? rid : "");
    if (a->verdict == LINQ_ATTEMPT_RETRY) {
        char delay[32];
        snprintf(delay, sizeof delay, "%.3g", a->delay);
        lua_pushfstring(L, "; retrying in %s s", delay);
    } else {
        lua_pushliteral(L, "");
    }
    lua_concat(L, 5);
    emit(L, c, a->verdict == LINQ_ATTEMPT_RETRY ? LINQ_LOG_INFO : LINQ_LOG_DEBUG);
}

/* Reads log_level and logger from the options table at idx (already copied and
 * checked for names) and LINQ_API_V3_LOG; sets c->log_level and c->logger_ref.
 * Everything that can raise comes before the logger is referenced. */
void linq_log_configure(lua_State *L, linq_client *c, int idx)
{
    static int warned;  /* the environment is the process's: one warning per process */
    const char *v = NULL;
    int level = LINQ_LOG_WARN, bad_env = 0;

    c->logger_ref = LUA_NOREF;
    lua_getfield(L, idx, "logger");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1)) {
        if (!luaL_getmetafield(L, -1, "__call"))
            luaL_argerror(L, 1, lua_pushfstring(L, "option 'logger' must be a function "
                                                   "(level, line), got a %s",
                                                luaL_typename(L, -1)));
        lua_pop(L, 1);  /* the __call found: a callable table or userdata will do */
    }
    lua_getfield(L, idx, "log_level");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING || (level = level_of(lua_tostring(L, -1))) < 0)
            luaL_argerror(L, 1, "option 'log_level' must be one of off, error, warn, info, "
                                "debug");
    } else if ((v = getenv(LINQ_ENV_LOG)) != NULL && *v != '\0') {
        bad_env = level_of(v) < 0;
        level = bad_env ? LINQ_LOG_WARN : level_of(v);
    }
    lua_pop(L, 1);
    c->log_level = level;
    if (!lua_isnil(L, -1))
        c->logger_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
    if (bad_env && !warned) {
        warned = 1;
        linq_log(L, c, LINQ_LOG_WARN, "linq: " LINQ_ENV_LOG " was set to \"%s\", expected one "
                                      "of off, error, warn, info, debug; using warn", v);
    }
}
