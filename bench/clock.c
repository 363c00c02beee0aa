/* benchclock: the two clocks the Lua benchmark loops need and Lua lacks.
 *   benchclock.wall()  monotonic wall clock, seconds (CLOCK_MONOTONIC)
 *   benchclock.cpu()   user + system CPU time of the process, seconds (getrusage)
 * Built by bench/run for Lua 5.4 and for LuaJIT into build/bench/<lua>/benchclock.so. */
#define _POSIX_C_SOURCE 200809L
#include <sys/resource.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

static int l_wall(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static int l_cpu(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushnumber(L, (lua_Number)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
                          + (lua_Number)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 1;
}

int luaopen_benchclock(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_wall);
    lua_setfield(L, -2, "wall");
    lua_pushcfunction(L, l_cpu);
    lua_setfield(L, -2, "cpu");
    return 1;
}
