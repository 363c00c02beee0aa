/* Many calls at once from plain Lua: client:all and client:each_result
 * (lua/linq/batch.lua) stage each call as an exchange (exchange.h) and hand them
 * here, where libcurl's multi interface runs them side by side.  Each call keeps
 * its own timeout, retries and idempotency key: an attempt is judged by the same
 * function as a lone call's (linq_judge_attempt), and a retry waits in a queue of
 * its own, so its delay holds no other call back.
 *
 *   core._batch(client, exchanges, concurrency) -> batch
 *   batch:next() -> i     the index of a call that has ended (ex:result() gives it)
 *                -> false nothing ended within a second: call again (lets a Lua
 *                         hook, such as the interpreter's Ctrl-C handler, act)
 *                -> nil   every call has ended
 *   batch:close()         stops what still runs; also done by __gc
 *
 * Ownership: the multi handle and its idle easy handles form a pool owned jointly
 * (reference counted) by the client and the batches that use it, so closing the
 * client in the middle of a batch frees nothing the batch still uses, and the next
 * batch of the client reuses the connections of the last.  The exchanges are kept
 * alive by a registry reference held by the batch; libcurl's callbacks write only
 * into their C buffers, so no Lua error can unwind through libcurl. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exchange.h"

#define BATCH_MT "linq.Batch"
#define LINQ_MAX_CONCURRENCY 256

struct linq_pool {
    CURLM *multi;
    CURL **idle;                  /* easy handles set up for the client, not in use */
    int nidle, cap;
    int refs;                     /* the client, and each batch using it */
    int in_use;                   /* a batch is running on multi */
    int max_concurrency;          /* the most calls a batch ran at once on it */
};

typedef struct slot {
    CURL *easy;                   /* kept for the batch once taken from the pool */
    int busy;                     /* easy carries a call now */
    int index;                    /* 1-based, in the caller's list */
    char errbuf[CURL_ERROR_SIZE];
} slot;

typedef struct linq_batch {
    linq_pool *pool;              /* NULL once closed */
    linq_exchange **ex;           /* ex[i - 1] for index i */
    int n;
    int exchanges_ref;            /* registry reference anchoring the exchanges */
    int concurrency, running;
    slot *slots;                  /* concurrency of them */
    int *ready;                   /* indices due to start, FIFO */
    int ready_head, ready_tail;   /* a ring of n */
    double *due;                  /* due[i - 1]: when a waiting retry may start */
    int *ended;                   /* indices that ended, not yet reported (FIFO) */
    int ended_head, ended_tail;
    int finished;                 /* calls that ended and were reported */
    int waiting;                  /* calls waiting for their retry's time */
    long accept_gzip;             /* libcurl was built with zlib */
    /* Reply buffers of calls whose results were taken (collect), for the calls that
     * start next: a batch allocates them about `concurrency` times, not per call. */
    linq_buf *spare;
    int nspare;
} linq_batch;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- the pool ---------- */

void linq_pool_release(linq_pool *p)
{
    int i;

    if (p == NULL || --p->refs > 0)
        return;
    for (i = 0; i < p->nidle; i++)
        curl_easy_cleanup(p->idle[i]);
    if (p->multi != NULL)
        curl_multi_cleanup(p->multi);
    free(p->idle);
    free(p);
}

static linq_pool *pool_new(void)
{
    linq_pool *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    p->refs = 1;
    p->multi = curl_multi_init();
    if (p->multi == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* An easy handle with the client's safety and trust settings (libcurl copies the
 * strings, so the client may close while it is in use). */
static CURL *pool_take(linq_pool *p, linq_client *c, long accept_gzip)
{
    CURL *h;

    if (p->nidle > 0)
        return p->idle[--p->nidle];
    if (c->curl == NULL)
        return NULL;  /* the client was closed: no new handles for its settings */
    h = curl_easy_init();
    if (h == NULL)
        return NULL;
    if (!linq_setup_transfer(h, c, &c->resp, c->errbuf)
        || (accept_gzip && curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip") != CURLE_OK)
        || curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK) {
        curl_easy_cleanup(h);
        return NULL;
    }
    return h;
}

static void pool_give(linq_pool *p, CURL *h)
{
    if (p->nidle == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        CURL **grown = realloc(p->idle, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            curl_easy_cleanup(h);
            return;
        }
        p->idle = grown;
        p->cap = cap;
    }
    /* Nothing that points into an exchange stays set on an idle handle. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    p->idle[p->nidle++] = h;
}

/* ---------- running ---------- */

static int configure(linq_exchange *ex, CURL *h)
{
    int get_like = !ex->has_body
                   && (strcmp(ex->method, "GET") == 0 || strcmp(ex->method, "DELETE") == 0);
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, ex->url);
    SET(CURLOPT_HTTPHEADER, ex->headers);
    SET(CURLOPT_TIMEOUT_MS, ex->timeout_ms);
    SET(CURLOPT_WRITEDATA, &ex->view.resp);
    SET(CURLOPT_HEADERDATA, &ex->view.resp);
#if LIBCURL_VERSION_NUM >= 0x075000
    SET(CURLOPT_PREREQDATA, &ex->view.resp);
#endif
    SET(CURLOPT_OPENSOCKETDATA, &ex->view.resp);
    /* Over HTTP/2 a call waits for the connection being made rather than opening
     * another, so a batch shares one; over plain HTTP nothing can be shared. */
    SET(CURLOPT_PIPEWAIT, strncmp(ex->url, "https:", 6) == 0 ? 1L : 0L);
    if (get_like) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ex->request.len);
        SET(CURLOPT_POSTFIELDS, ex->has_body && ex->request.data ? ex->request.data : "");
    }
    SET(CURLOPT_CUSTOMREQUEST, strcmp(ex->method, "GET") == 0 || strcmp(ex->method, "POST") == 0
                                   ? NULL : ex->method);
#undef SET
    return rc == CURLE_OK;
}

static void end_call(linq_batch *b, int index, int state)
{
    b->ex[index - 1]->state = state;
    b->ended[b->ended_tail++ % b->n] = index;
}

/* A call that could not even start (out of memory, or its client closed before it
 * had a handle) ends as a connection failure of that attempt. */
static void fail_to_start(linq_batch *b, int index, const char *why)
{
    linq_exchange *ex = b->ex[index - 1];

    memset(&ex->failure, 0, sizeof ex->failure);
    linq_exchange_say(ex, "%s", why);
    ex->failure.type = "APIConnectionError";
    ex->failure.message = ex->message;
    ex->failure.curl_code = CURLE_FAILED_INIT;
    ex->failure.attempts = ex->attempt;
    end_call(b, index, EX_FAILED);
}

static void start_call(linq_batch *b, linq_client *c, int index)
{
    linq_exchange *ex = b->ex[index - 1];
    slot *s = NULL;
    CURL *h;
    int i;

    for (i = 0; i < b->concurrency && s == NULL; i++)
        if (!b->slots[i].busy)
            s = &b->slots[i];
    if (s->easy == NULL) {
        /* A slot keeps its handle for the batch: what names the slot is set once. */
        h = pool_take(b->pool, c, b->accept_gzip);
        if (h == NULL || curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK
            || curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)s) != CURLE_OK) {
            if (h != NULL)
                pool_give(b->pool, h);
            fail_to_start(b, index, c->curl == NULL
                                        ? "the client was closed before this call started"
                                        : "out of memory starting the call");
            return;
        }
        s->easy = h;
    }
    h = s->easy;
    if (ex->view.resp.body.data == NULL && b->nspare >= 2) {
        ex->view.resp.body = b->spare[--b->nspare];
        ex->view.resp.headers = b->spare[--b->nspare];
    }
    linq_response_reset(&ex->view.resp);
    ex->view.resp.send_once = strcmp(ex->method, "POST") == 0
                              || strcmp(ex->method, "PATCH") == 0;
    s->errbuf[0] = '\0';
    s->index = index;
    if (!configure(ex, h) || curl_multi_add_handle(b->pool->multi, h) != CURLM_OK) {
        fail_to_start(b, index, "out of memory starting the call");
        return;
    }
    s->busy = 1;
    b->running++;
}

/* Judges the attempt that ended on s, as a lone call's attempt is judged. */
static void attempt_ended(lua_State *L, linq_batch *b, slot *s, CURLcode rc)
{
    linq_exchange *ex = b->ex[s->index - 1];
    const char *message;
    double delay = 0;
    long status = 0;
    int code, verdict;

    code = linq_curl_outcome(&ex->view.resp, rc, s->errbuf, &message);
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    /* The message outlives the slot: copied into the exchange, as a transport's is. */
    if (code != CURLE_OK)
        linq_exchange_say(ex, "%s", message);
    verdict = linq_judge_attempt(&ex->view, ex->attempt, ex->max_retries, code, ex->message,
                                 status, &ex->failure, &delay);
    if (ex->view.log_level >= LINQ_LOG_INFO) {
        curl_off_t us = -1;
        curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME_T, &us);
        ex->status = status;
        linq_exchange_log(L, ex, code, verdict, delay, us >= 0 ? (long)(us / 1000) : -1);
    }
    curl_multi_remove_handle(b->pool->multi, s->easy);
    s->busy = 0;
    b->running--;
    if (verdict == LINQ_ATTEMPT_RETRY) {
        ex->attempt++;
        ex->waited += delay;
        b->due[s->index - 1] = now_seconds() + delay;
        b->waiting++;
        return;
    }
    ex->status = status;
    end_call(b, s->index, verdict == LINQ_ATTEMPT_OK ? EX_DONE : EX_FAILED);
}

/* Moves retries whose time has come to the ready queue; returns the seconds until
 * the next one is due (or a large number). */
static double wake_retries(linq_batch *b, double now)
{
    double next = 1e9;
    int i;

    if (b->waiting == 0)
        return next;
    for (i = 0; i < b->n; i++) {
        double d = b->due[i];
        if (d <= 0)
            continue;
        if (d <= now) {
            b->due[i] = 0;
            b->waiting--;
            b->ready[b->ready_tail++ % b->n] = i + 1;
        } else if (d - now < next) {
            next = d - now;
        }
    }
    return next;
}

static linq_batch *check_batch(lua_State *L)
{
    return luaL_checkudata(L, 1, BATCH_MT);
}

static void batch_close(lua_State *L, linq_batch *b)
{
    int i;

    if (b->pool != NULL) {
        for (i = 0; i < b->concurrency; i++) {
            slot *s = &b->slots[i];
            if (s->easy != NULL && s->busy) {
                curl_multi_remove_handle(b->pool->multi, s->easy);
                /* Stopped mid-transfer: its connection is not fit to reuse. */
                curl_easy_cleanup(s->easy);
            } else if (s->easy != NULL) {
                pool_give(b->pool, s->easy);
            }
            s->easy = NULL;
            s->busy = 0;
        }
        b->pool->in_use = 0;
        linq_pool_release(b->pool);
        b->pool = NULL;
    }
    if (b->exchanges_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, b->exchanges_ref);
        b->exchanges_ref = LUA_NOREF;
    }
    for (i = 0; i < b->nspare; i++)
        linq_buf_free(&b->spare[i]);
    b->nspare = 0;
    free(b->spare);
    b->spare = NULL;
    free(b->ex);
    free(b->slots);
    free(b->ready);
    free(b->due);
    free(b->ended);
    b->ex = NULL;
    b->slots = NULL;
    b->ready = b->ended = NULL;
    b->due = NULL;
}

/* Runs the batch until a call ends (its index), a second has passed (0) or every
 * call has ended and was reported (-1: the handles are back in the pool). */
static int step(lua_State *L, linq_batch *b, linq_client *c)
{
    double slice_end = now_seconds() + 1.0;

    if (b->pool == NULL)
        return -1;
    for (;;) {
        double now, until_retry;
        int still, timeout_ms;
        CURLMsg *msg;

        if (b->ended_head != b->ended_tail) {
            b->finished++;
            return b->ended[b->ended_head++ % b->n];
        }
        if (b->finished == b->n) {
            batch_close(L, b);  /* the handles go back to the pool for the next batch */
            return -1;
        }
        now = now_seconds();
        until_retry = wake_retries(b, now);
        while (b->running < b->concurrency && b->ready_head != b->ready_tail)
            start_call(b, c, b->ready[b->ready_head++ % b->n]);
        if (b->ended_head != b->ended_tail)
            continue;
        if (curl_multi_perform(b->pool->multi, &still) != CURLM_OK)
            return luaL_error(L, "linq: libcurl's multi interface failed");
        while ((msg = curl_multi_info_read(b->pool->multi, &still)) != NULL) {
            slot *s = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (s != NULL)
                attempt_ended(L, b, s, msg->data.result);
        }
        if (b->ended_head != b->ended_tail || (b->ready_head != b->ready_tail
                                               && b->running < b->concurrency))
            continue;
        now = now_seconds();
        if (now >= slice_end)
            return 0;
        timeout_ms = (int)((slice_end - now) * 1000) + 1;
        if (b->waiting > 0 && until_retry * 1000 < timeout_ms)
            timeout_ms = (int)(until_retry * 1000) + 1;
        if (b->running > 0) {
            if (curl_multi_poll(b->pool->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
                return luaL_error(L, "linq: libcurl's multi interface failed");
        } else {
            linq_sleep(timeout_ms / 1000.0);  /* only retries waiting */
        }
    }
}

/* batch:next(client): the client (kept by the Lua wrapper) is what a new handle's
 * settings come from. */
static int batch_next(lua_State *L)
{
    linq_batch *b = check_batch(L);
    int i = step(L, b, luaL_checkudata(L, 2, LINQ_CLIENT_MT));

    if (i > 0)
        lua_pushinteger(L, i);
    else if (i == 0)
        lua_pushboolean(L, 0);
    else
        lua_pushnil(L);
    return 1;
}

/* The result is made: the call's reply buffers can serve a call yet to start. */
static void give_buffers(linq_batch *b, linq_exchange *ex)
{
    linq_response *r = &ex->view.resp;

    linq_buf_release_if_larger(&r->body, LINQ_KEEP_BUFFER_BYTES);
    if (b->spare == NULL || b->nspare + 2 > 2 * b->concurrency || r->body.data == NULL
        || r->headers.data == NULL)
        return;
    b->spare[b->nspare++] = r->headers;
    b->spare[b->nspare++] = r->body;
    memset(&r->headers, 0, sizeof r->headers);
    memset(&r->body, 0, sizeof r->body);
}

static int nothing(lua_State *L)
{
    (void)L;
    return 0;
}

/* Pushes the result of staged exchange at ex_idx as all() gives it, using the
 * exchanges' result method at fn_idx: { ok = true, res =, meta = } or { ok = false,
 * err = }.  An error that is not a linq error (out of memory, the interpreter's
 * Ctrl-C) is not a call's failure: it is raised. */
static void push_result(lua_State *L, int fn_idx, int ex_idx)
{
    lua_pushvalue(L, fn_idx);
    lua_pushvalue(L, ex_idx);
    if (lua_pcall(L, 1, 2, 0) == LUA_OK) {
        lua_createtable(L, 0, 3);
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "ok");
        lua_insert(L, -3);          /* table, res, meta */
        lua_setfield(L, -3, "meta");
        lua_setfield(L, -2, "res");
        return;
    }
    if (lua_type(L, -1) != LUA_TTABLE)
        lua_error(L);
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "ok");
    lua_insert(L, -2);
    lua_setfield(L, -2, "err");
}

/* batch:collect(client, staged) -> results: every call to its end, each result made
 * here rather than by a Lua function per call (client:all). */
static int batch_collect(lua_State *L)
{
    linq_batch *b = check_batch(L);
    linq_client *c = luaL_checkudata(L, 2, LINQ_CLIENT_MT);
    int i;

    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_createtable(L, b->n, 0);                  /* 4: results */
    luaL_getmetatable(L, EXCHANGE_MT);
    lua_getfield(L, -1, "__index");
    lua_getfield(L, -1, "result");                /* 7: the exchanges' result method */
    while ((i = step(L, b, c)) >= 0) {
        if (i == 0) {
            /* A second passed: a call into Lua lets a hook (Ctrl-C) act. */
            lua_pushcfunction(L, nothing);
            lua_call(L, 0, 0);
            continue;
        }
        lua_rawgeti(L, 3, i);
        push_result(L, 7, lua_gettop(L));
        lua_rawseti(L, 4, i);
        lua_pop(L, 1);
        give_buffers(b, b->ex[i - 1]);
    }
    lua_settop(L, 4);
    return 1;
}

static int batch_close_method(lua_State *L)
{
    batch_close(L, check_batch(L));
    return 0;
}

/* core._stage_all(fname, client, calls, stage) -> staged: each entry { name, args... }
 * of calls checked and staged by stage[name](client, args...), read once with raw
 * access; misuse raises "bad argument #1 to '<fname>' (...)" naming the entry,
 * before any traffic.  In C: a Lua loop with a pcall per entry cost more than the
 * rest of the staging. */
int linq_stage_all(lua_State *L)
{
    const char *fname = luaL_checkstring(L, 1);
    int n, i;

    luaL_checktype(L, 4, LUA_TTABLE);
    if (lua_type(L, 3) != LUA_TTABLE)
        return luaL_error(L, "bad argument #1 to '%s' (a list of calls expected, got %s)", fname,
                          luaL_typename(L, 3));
    lua_settop(L, 4);
    n = (int)lua_rawlen(L, 3);
    lua_createtable(L, n, 0);                                     /* 5: staged */
    for (i = 1; i <= n; i++) {
        int nargs, j;
        lua_rawgeti(L, 3, i);                                     /* 6: the entry */
        if (lua_type(L, 6) != LUA_TTABLE)
            return luaL_error(L, "bad argument #1 to '%s' (calls[%d] must be a table { name, "
                                 "arguments... }, got %s)", fname, i, luaL_typename(L, 6));
        lua_rawgeti(L, 6, 1);                                     /* 7: its name */
        if (lua_type(L, 7) == LUA_TSTRING) {
            lua_pushvalue(L, 7);
            lua_rawget(L, 4);                                     /* 8: the stager */
        } else {
            lua_pushnil(L);
        }
        if (lua_type(L, 8) != LUA_TFUNCTION)
            return luaL_error(L, "bad argument #1 to '%s' (calls[%d]: %s%s%s is not an operation "
                                 "of the client (all runs operations and 'request'))", fname, i,
                              lua_type(L, 7) == LUA_TSTRING ? "'" : "",
                              lua_type(L, 7) == LUA_TSTRING ? lua_tostring(L, 7)
                                                            : luaL_typename(L, 7),
                              lua_type(L, 7) == LUA_TSTRING ? "'" : "");
        nargs = (int)lua_rawlen(L, 6);
        luaL_checkstack(L, nargs + 2, "too many arguments in one call");
        lua_pushvalue(L, 2);
        for (j = 2; j <= nargs; j++)
            lua_rawgeti(L, 6, j);
        if (lua_pcall(L, nargs > 0 ? nargs : 1, 1, 0) != LUA_OK)
            return luaL_error(L, "bad argument #1 to '%s' (calls[%d], %s: %s)", fname, i,
                              lua_tostring(L, 7),
                              lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
        lua_rawseti(L, 5, i);
        lua_settop(L, 5);
    }
    return 1;
}

/* core._batch(client, exchanges, concurrency): exchanges is a list of staged
 * exchanges (LINQ_STAGE_CURL), kept alive by the batch. */
int linq_batch_new(lua_State *L)
{
    linq_client *c = linq_check_client(L, 1);
    int n, concurrency, i;
    linq_batch *b;
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    concurrency = (int)luaL_checkinteger(L, 3);
    luaL_argcheck(L, concurrency >= 1 && concurrency <= LINQ_MAX_CONCURRENCY, 3,
                  "concurrency must be 1..256");
    luaL_argcheck(L, n >= 1, 2, "no calls");
    if (concurrency > n)
        concurrency = n;
    lua_settop(L, 2);
    b = lua_newuserdata(L, sizeof *b);  /* empty and safe first: __gc may run at any point */
    memset(b, 0, sizeof *b);
    b->exchanges_ref = LUA_NOREF;
    luaL_setmetatable(L, BATCH_MT);
    b->n = n;
    b->concurrency = concurrency;
    b->accept_gzip = (cv->features & CURL_VERSION_LIBZ) != 0;
    b->ex = calloc((size_t)n, sizeof *b->ex);
    b->slots = calloc((size_t)concurrency, sizeof *b->slots);
    b->ready = calloc((size_t)n, sizeof *b->ready);
    b->due = calloc((size_t)n, sizeof *b->due);
    b->ended = calloc((size_t)n, sizeof *b->ended);
    b->spare = calloc((size_t)(2 * concurrency), sizeof *b->spare);
    if (b->ex == NULL || b->slots == NULL || b->ready == NULL || b->due == NULL
        || b->ended == NULL || b->spare == NULL)
        return luaL_error(L, "linq: out of memory");
    for (i = 1; i <= n; i++) {
        linq_exchange *ex;
        lua_rawgeti(L, 2, i);
        ex = luaL_testudata(L, -1, EXCHANGE_MT);
        if (ex == NULL || ex->stage != LINQ_STAGE_CURL || ex->state != EX_SENDING)
            return luaL_argerror(L, 2, "not a list of staged calls");
        lua_pop(L, 1);
        b->ex[i - 1] = ex;
        b->ready[b->ready_tail++] = i;
    }
    /* One running batch per pool: a batch started while another runs (from inside
     * an each_result loop) gets a pool of its own. */
    if (c->pool == NULL || c->pool->in_use) {
        linq_pool *p = pool_new();
        if (p == NULL)
            return luaL_error(L, "linq: out of memory");
        if (c->pool == NULL) {
            c->pool = p;
            p->refs++;
        }
        b->pool = p;
    } else {
        b->pool = c->pool;
        b->pool->refs++;
    }
    b->pool->in_use = 1;
    /* libcurl keeps 4 idle connections per handle still added; as a batch's last
     * calls end one by one that falls below what the batch opened, and it would close
     * connections the next batch could reuse. */
    if (concurrency > b->pool->max_concurrency) {
        b->pool->max_concurrency = concurrency;
        curl_multi_setopt(b->pool->multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
    }
    lua_pushvalue(L, 2);
    b->exchanges_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int batch_gc(lua_State *L)
{
    batch_close(L, check_batch(L));
    return 0;
}

void linq_batch_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"next", batch_next},
        {"collect", batch_collect},
        {"close", batch_close_method},
        {NULL, NULL}
    };

    luaL_newmetatable(L, BATCH_MT);
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
