/* raw_curl: the floor the module is measured against.  One libcurl easy handle,
 * reused (so the connection stays alive), doing GET URL in a loop with the
 * module's request headers; the body is discarded (bytes counted).
 *
 * Built with -DWITH_CJSON (and -llua5.4) it is raw_curl_cjson: the body is kept
 * in one reused buffer and decoded by cjson.decode in an embedded Lua 5.4 state:
 * the least any libcurl + lua-cjson client must do per call.  Linked with
 * -lluajit-5.1 instead it is raw_curl_cjson_jit: the same floor for LuaJIT.
 *
 *   raw_curl URL KEY SECONDS WARMUP_SECONDS [CALLS]
 *
 * Warms up for WARMUP_SECONDS, then calls for SECONDS of wall clock and prints
 *   calls=N wall=S cpu=S bytes=B
 * (cpu: user + system time of this process over the measured calls; bytes: body
 * size of the last call).  With CALLS (bench/callgrind.lua) it makes exactly that
 * many calls instead, without timing or warm-up, so that two runs under callgrind
 * differ only in the number of calls.  Any non-200 answer or transfer error is
 * fatal. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#ifdef WITH_CJSON
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#endif

struct body {
    char *p;
    size_t len, cap;
};

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t k = size * n;
#ifdef WITH_CJSON
    if (b->len + k > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + k)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, k);
#else
    (void)data;
#endif
    b->len += k;
    return k;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static CURL *h;
static struct body body;
#ifdef WITH_CJSON
static lua_State *L;
#endif

static void one_call(void)
{
    char err[CURL_ERROR_SIZE] = "";
    long status = 0;
    body.len = 0;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "raw_curl: %s: %s\n", curl_easy_strerror(rc), err);
        exit(1);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        fprintf(stderr, "raw_curl: HTTP %ld\n", status);
        exit(1);
    }
#ifdef WITH_CJSON
    lua_pushvalue(L, 1); /* cjson.decode */
    lua_pushlstring(L, body.p, body.len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "raw_curl: decode: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    if (!lua_istable(L, -1)) {
        fprintf(stderr, "raw_curl: decode gave no table\n");
        exit(1);
    }
    lua_pop(L, 1);
#endif
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s URL KEY SECONDS WARMUP_SECONDS [CALLS]\n", argv[0]);
        return 2;
    }
    long fixed = argc == 6 ? atol(argv[5]) : -1;
    double seconds = atof(argv[3]), warmup = atof(argv[4]);
    char auth[1024];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    char ua[128];
    snprintf(ua, sizeof ua, "User-Agent: linq-bench-raw/1 (libcurl/%s)", curl_version_info(CURLVERSION_NOW)->version);
    hdrs = curl_slist_append(hdrs, ua);
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);

#ifdef WITH_CJSON
    L = luaL_newstate();
    luaL_openlibs(L);
#ifdef LUA_GCGEN
    /* The collector mode the lua5.4 interpreter runs the module under (lua.c
     * switches to generational): a 10,000-number decode costs about 2 ms more
     * per call in it than in luaL_newstate's incremental default, which would
     * otherwise count against the module. */
    lua_gc(L, LUA_GCGEN, 0, 0);
#endif
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "raw_curl: require cjson: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, "decode");
    lua_replace(L, 1); /* stack: [1] = cjson.decode */
    lua_settop(L, 1);
#endif

    if (fixed >= 0) { /* a fixed number of calls, nothing else (callgrind) */
        for (long i = 0; i < fixed; i++)
            one_call();
        printf("calls=%ld wall=0 cpu=0 bytes=%zu\n", fixed, body.len);
    } else {
        double t0 = wall();
        do one_call(); while (wall() - t0 < warmup);

        long calls = 0;
        double c0 = cpu();
        t0 = wall();
        double t;
        do {
            one_call();
            calls++;
        } while ((t = wall()) - t0 < seconds);
        double c1 = cpu();

        printf("calls=%ld wall=%.6f cpu=%.6f bytes=%zu\n", calls, t - t0, c1 - c0, body.len);
    }

    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
#ifdef WITH_CJSON
    lua_close(L);
    free(body.p);
#endif
    curl_global_cleanup();
    return 0;
}
