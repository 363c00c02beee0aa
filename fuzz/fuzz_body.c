/* libFuzzer harness: a whole HTTP reply, through what the client does with it.
 *
 * Input format:
 *   bytes 0-1   big-endian u16 v: the status is 200 + v % 400, and o = v / 400 picks
 *               the body cap: o == 0 -> 1 MiB, otherwise 8*o - 7 bytes (1 .. 1297),
 *               so the "body larger than max_body_size" path is reachable
 *   then        a header block up to and including its first empty line ("\n\n" or
 *               "\n\r\n"), fed to linq_on_header line by line as libcurl does,
 *   then        the body, fed to linq_on_body in chunks of varying size (0 .. 16 KiB).
 *   Without an empty line the whole rest is the body and there are no headers.
 *
 * Then, under lua_pcall, the steps of perform_call() in src/call.c for one attempt:
 * the private cjson decoder on the body (2xx: always; errors: when it starts with '{'),
 * linq_push_error (src/errors.c) with the client's key set so redaction runs,
 * linq_error_tostring, linq_push_meta.  A 2xx body that decodes is also turned
 * into an error, so the envelope code sees every decoded shape.
 *
 * Invariants: the key never appears in tostring(e) or in any string field of e; the
 * body excerpt holds no piece (>= 4 bytes) of a key that the body held whole; the
 * excerpt is one line of at most 203 bytes; the body reached the buffer intact; each
 * push leaves exactly one value on the stack; the key is absent from e.headers and
 * meta.headers too. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>

#include <lualib.h>

#include "fuzz_common.h"

#define SHORTEST_PIECE 4  /* as spec/secrets_spec.lua: key:sub(1, 4) */
#define GC_EVERY 4096
#define LUA_GROWTH_KB 1024  /* a live Lua heap this much over its first size (~30 KiB): a leak */

int luaopen_linq_core(lua_State *L);

static lua_State *L;
static int decode_ref = LUA_NOREF;
static char secret[] = FUZZ_SECRET;
static linq_client client;
static unsigned long runs;


typedef struct job {
    long status;
    fuzz_feed feed;
    const char *body;          /* the body as sent, for the reference */
    size_t body_len;
    unsigned attempts;
} job;

/* ---------- set-up, once ---------- */

static int init_lua(lua_State *L)
{
    luaL_openlibs(L);
    luaL_requiref(L, "linq.core", luaopen_linq_core, 0);
    lua_pop(L, 1);

    /* A private decoder configured as module.c's, kept in the registry. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_remove(L, -2);
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    luaL_getmetatable(L, LINQ_ERROR_MT);
    if (!lua_istable(L, -1))
        return luaL_error(L, "no %s metatable after loading linq.core", LINQ_ERROR_MT);
    lua_pop(L, 1);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz_body: luaL_newstate failed\n");
        exit(1);
    }
    lua_pushcfunction(L, init_lua);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_body: setting up Lua failed: %s\n"
                        "(needs Debian's lua-cjson for Lua 5.4 on package.cpath)\n",
                lua_tostring(L, -1));
        exit(1);
    }
    memset(&client, 0, sizeof client);
    client.api_key = secret;
    client.api_key_len = FUZZ_SECRET_LEN;
    return 0;
}

/* ---------- checks ---------- */

static void check_no_secret(const char *what, const char *s, size_t n)
{
    FUZZ_CHECK(memmem(s, n, FUZZ_SECRET, FUZZ_SECRET_LEN) == NULL,
               "the key is in %s: '%.*s'", what, (int)(n > 600 ? 600 : n), s);
}

/* Any prefix of the key of SHORTEST_PIECE bytes or more in s must come from text that
 * holds it outside a whole key (ref: the source with every whole key removed). */
static void check_no_piece(const char *what, const char *s, size_t n, const char *ref,
                           size_t ref_len)
{
    size_t k;
    for (k = FUZZ_SECRET_LEN - 1; k >= SHORTEST_PIECE; k--)  /* reports the longest */
        FUZZ_CHECK(memmem(s, n, FUZZ_SECRET, k) == NULL || memmem(ref, ref_len, FUZZ_SECRET, k),
                   "%s holds the key's first %zu bytes '%.*s', which the reply only sent "
                   "as part of the whole key: '%.*s'", what, k, (int)k, FUZZ_SECRET,
                   (int)(n > 600 ? 600 : n), s);
}

static void check_headers_table(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t kn, vn, i;
        const char *k, *v;
        FUZZ_CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING,
                   "headers: a %s -> %s pair", luaL_typename(L, -2), luaL_typename(L, -1));
        k = lua_tolstring(L, -2, &kn);
        v = lua_tolstring(L, -1, &vn);
        for (i = 0; i < kn; i++)
            FUZZ_CHECK(!isupper((unsigned char)k[i]), "headers: upper-case name '%s'", k);
        {
            check_no_secret("e.headers (name)", k, kn);
            check_no_secret("e.headers (value)", v, vn);
        }
        lua_pop(L, 1);
    }
}

static void check_error(lua_State *L, int e, const job *j, const linq_failure *f)
{
    size_t n, n2;
    const char *s, *s2;
    int top = lua_gettop(L);
    char *ref;
    size_t ref_len;

    FUZZ_CHECK(lua_type(L, e) == LUA_TTABLE, "the error is a %s", luaL_typename(L, e));
    FUZZ_CHECK(lua_getmetatable(L, e), "the error has no metatable");
    luaL_getmetatable(L, LINQ_ERROR_MT);
    FUZZ_CHECK(lua_rawequal(L, -1, -2), "the error's metatable is not %s", LINQ_ERROR_MT);
    lua_pop(L, 2);
    lua_pushcfunction(L, linq_is_error);
    lua_pushvalue(L, e);
    lua_call(L, 1, 1);
    FUZZ_CHECK(lua_toboolean(L, -1), "linq.is_error(e) is false");
    lua_pop(L, 1);

    lua_getfield(L, e, "type");
    s = lua_tostring(L, -1);
    FUZZ_CHECK(s != NULL && strcmp(s, f->type) == 0, "e.type is %s, not %s", s ? s : "nil",
               f->type);
    lua_pop(L, 1);
    lua_getfield(L, e, "status");
    if (f->status > 0)
        FUZZ_CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == f->status, "e.status");
    else
        FUZZ_CHECK(lua_isnil(L, -1), "e.status without a status");
    lua_pop(L, 1);
    lua_getfield(L, e, "retry_after");
    if (!lua_isnil(L, -1)) {
        lua_Number d = lua_tonumber(L, -1);
        FUZZ_CHECK(lua_type(L, -1) == LUA_TNUMBER && isfinite(d) && d >= 0, "e.retry_after %g",
                   (double)d);
    }
    lua_pop(L, 1);
    lua_getfield(L, e, "message");
    FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "e.message is a %s", luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_getfield(L, e, "headers");
    if (f->status > 0) {
        FUZZ_CHECK(lua_istable(L, -1), "e.headers is a %s", luaL_typename(L, -1));
        check_headers_table(L, lua_gettop(L));
    }
    lua_pop(L, 1);

    /* The excerpt: one line, short, and no piece of a key the body held whole. */
    lua_getfield(L, e, "body");
    if (!lua_isnil(L, -1)) {
        size_t i;
        FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "e.body is a %s", luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &n);
        FUZZ_CHECK(n <= 203, "e.body is %zu bytes", n);
        for (i = 0; i < n; i++)
            FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f,
                       "e.body has control byte 0x%02x at %zu", (unsigned char)s[i], i);
        FUZZ_CHECK(n == 0 || (s[0] != ' ' && s[n - 1] != ' '), "e.body is not trimmed");
        ref = fuzz_redact_all(client.resp.body.data ? client.resp.body.data : "",
                              client.resp.body.len, &ref_len);
        check_no_piece("e.body", s, n, ref, ref_len);
        free(ref);
    }
    lua_pop(L, 1);

    /* No string field holds the key. */
    lua_pushnil(L);
    while (lua_next(L, e)) {
        if (lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING) {
            char what[64];
            snprintf(what, sizeof what, "e.%s", lua_tostring(L, -2));
            s = lua_tolstring(L, -1, &n);
            check_no_secret(what, s, n);
        }
        lua_pop(L, 1);
    }

    /* tostring, directly and through the metatable. */
    lua_pushcfunction(L, linq_error_tostring);
    lua_pushvalue(L, e);
    lua_call(L, 1, 1);
    s = lua_tolstring(L, -1, &n);
    FUZZ_CHECK(s != NULL && n >= 6 && memcmp(s, "linq: ", 6) == 0, "tostring(e) is '%s'",
               s ? s : "(nil)");
    check_no_secret("tostring(e)", s, n);
    s2 = luaL_tolstring(L, e, &n2);
    FUZZ_CHECK(n == n2 && memcmp(s, s2, n) == 0, "__tostring differs: '%s' / '%s'", s, s2);
    lua_pop(L, 2);

    FUZZ_CHECK(lua_gettop(L) == top, "check_error left the stack at %d, not %d",
               lua_gettop(L), top);
    (void)j;
}

/* Pushes the error for f (decoded value at decoded_idx, or 0) and checks it. */
static void push_and_check(lua_State *L, const job *j, linq_failure *f, int decoded_idx)
{
    int top = lua_gettop(L);

    luaL_getmetatable(L, LINQ_ERROR_MT);
    linq_push_error(L, top + 1, &client, f, decoded_idx);
    FUZZ_CHECK(lua_gettop(L) == top + 2, "linq_push_error pushed %d values",
               lua_gettop(L) - top - 1);
    check_error(L, top + 2, j, f);
    lua_settop(L, top);
}

/* The private decoder on the body: pushes nresults values. */
static void decode_body(lua_State *L, int nresults)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
    lua_pushlstring(L, client.resp.body.data ? client.resp.body.data : "", client.resp.body.len);
    lua_call(L, 1, nresults);
}

/* As decode_error_body() in call.c: only a body that starts with '{' is decoded. */
static int decode_error_body(lua_State *L)
{
    const linq_response *r = &client.resp;
    size_t i = 0;

    while (i < r->body.len && isspace((unsigned char)r->body.data[i]))
        i++;
    if (i == r->body.len || r->body.data[i] != '{')
        return 0;
    decode_body(L, 1);
    return lua_gettop(L);
}

/* Under lua_pcall; argument: the job. */
static int run_job(lua_State *L)
{
    const job *j = lua_touserdata(L, 1);
    const linq_response *r = &client.resp;
    linq_failure f;
    long status = j->status;

    memset(&f, 0, sizeof f);
    f.attempts = (int)j->attempts;

    if (j->feed.curl_aborted) {
        /* libcurl failed the transfer itself (a NUL in a header line). */
        f.type = "APIConnectionError";
        f.curl_code = CURLE_WEIRD_SERVER_REPLY;
        f.message = "Nul byte in header";
        push_and_check(L, j, &f, 0);
        return 0;
    }
    if (r->too_large) {
        f.type = "APIResponseValidationError";
        f.status = status;
        f.message = r->too_large == 2 ? "the response headers are larger than 1 MiB"
                                      : "the response body is larger than max_body_size";
        push_and_check(L, j, &f, 0);
        return 0;
    }
    if (status >= 200 && status < 300) {
        f.type = "APIResponseValidationError";
        f.status = status;
        if (r->body.len == 0 && status != 204 && status != 205) {
            f.message = "the response body is empty; JSON was expected";
            push_and_check(L, j, &f, 0);
            return 0;
        }
        decode_body(L, 2);
        if (lua_isnil(L, -2)) {
            if (status != 204 && status != 205) {
                lua_pushfstring(L, "the response body is not valid JSON (%s)",
                                lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
                f.message = lua_tostring(L, -1);
                push_and_check(L, j, &f, 0);
            }
            return 0;
        }
        lua_pop(L, 1);
        /* The integer pass over whatever the decoder made of the input ... */
        linq_json_integers(L, lua_gettop(L));
        /* ... the success path's meta, and its headers built on first access ... */
        {
            int top = lua_gettop(L);
            linq_call k;
            memset(&k, 0, sizeof k);
            k.c = &client;
            linq_push_meta(L, &k, status, 1, 0, top);
            FUZZ_CHECK(lua_gettop(L) == top + 1, "linq_push_meta pushed %d values",
                       lua_gettop(L) - top);
            lua_getfield(L, top + 1, "headers");
            FUZZ_CHECK(lua_istable(L, -1), "meta.headers is not a table");
            check_headers_table(L, top + 2);
            lua_getfield(L, top + 1, "headers");
            FUZZ_CHECK(lua_rawequal(L, -1, -2), "meta.headers was built twice");
            lua_settop(L, top);
        }
        /* ... and, beyond call.c, the decoded value through the envelope code. */
        f.type = linq_error_type_for_status(status);
        push_and_check(L, j, &f, lua_gettop(L));
        return 0;
    }

    /* An error status: the retry decision, then the error as raise_failure builds it. */
    {
        int retryable = linq_status_retryable(status, linq_response_header(r, "x-should-retry"));
        double delay = linq_server_delay(linq_response_header(r, "retry-after-ms"),
                                         linq_response_header(r, "retry-after"), time(NULL));
        FUZZ_CHECK(retryable == 0 || retryable == 1, "retryable %d", retryable);
        FUZZ_CHECK(delay == -1 || (isfinite(delay) && delay >= 0), "server delay %g", delay);
        if (retryable && f.attempts > 1)
            f.waited = delay < 0 ? linq_backoff_delay(0, 0.5)
                                 : (delay > LINQ_DEFAULT_MAX_RETRY_DELAY
                                        ? LINQ_DEFAULT_MAX_RETRY_DELAY : delay);
    }
    f.type = linq_error_type_for_status(status);
    f.status = status;
    push_and_check(L, j, &f, decode_error_body(L));
    return 0;
}

/* ---------- feeding the reply ---------- */

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The body in pieces as libcurl's write callback gets them: at most 16 KiB each,
 * sometimes none at all (libcurl may call with 0 bytes for an empty body). */
static void feed_body(linq_response *r, const uint8_t *body, size_t n, uint64_t seed)
{
    static char empty[1];
    size_t at = 0;
    int zero_calls = 0;
    uint64_t s = seed | 1;

    for (;;) {
        uint64_t x = next_rand(&s);
        size_t want, got;
        char *piece;

        switch (x % 8) {
        case 0: want = 0; break;
        case 1: case 2: case 3: case 4: want = 1 + (size_t)(x >> 8) % 16; break;
        case 5: case 6: want = 1 + (size_t)(x >> 8) % 512; break;
        default: want = 16384; break;
        }
        if (want > n - at)
            want = n - at;
        if (want == 0) {
            if (zero_calls < 2 && (at < n || n == 0 || (x & 64))) {
                zero_calls++;
                got = linq_on_body(empty, 1, 0, r);
                FUZZ_CHECK(got == 0, "a 0-byte write returned %zu", got);
            }
            if (at == n)
                return;
            continue;
        }
        piece = malloc(want);  /* exactly the piece, so ASan sees any read past it */
        FUZZ_CHECK(piece != NULL, "out of memory");
        memcpy(piece, body + at, want);
        got = linq_on_body(piece, 1, want, r);
        free(piece);
        if (got != want) {
            FUZZ_CHECK(got == 0, "a write returned %zu of %zu", got, want);
            FUZZ_CHECK(r->too_large == 1, "a write was refused without too_large");
            FUZZ_CHECK(at + want > r->max_body, "refused %zu bytes at %zu under a cap of %zu",
                       want, at, r->max_body);
            return;  /* libcurl stops the transfer */
        }
        at += want;
    }
}

/* The first empty line ("\n\n" or "\n\r\n"): returns the header block's length. */
static size_t header_block_len(const uint8_t *d, size_t n)
{
    size_t i;
    for (i = 0; i + 1 < n; i++) {
        if (d[i] != '\n')
            continue;
        if (d[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job j;
    unsigned v, o;
    size_t hlen;
    const uint8_t *rest;
    linq_response *r = &client.resp;

    if (size < 2)
        return 0;
    v = (unsigned)data[0] << 8 | data[1];
    o = v / 400;
    rest = data + 2;
    size -= 2;

    memset(&j, 0, sizeof j);
    j.status = 200 + (long)(v % 400);
    j.attempts = 1 + (unsigned)(size % 3);
    memset(r, 0, sizeof *r);
    r->max_body = o == 0 ? (size_t)1 << 20 : (size_t)o * 8 - 7;

    hlen = header_block_len(rest, size);
    fuzz_feed_headers(r, rest, hlen, &j.feed, NULL, NULL);
    fuzz_check_header_store(r, j.feed.longest_line);
    j.body = (const char *)rest + hlen;
    j.body_len = size - hlen;
    if (!j.feed.curl_aborted && !j.feed.callback_aborted) {
        feed_body(r, rest + hlen, size - hlen, (uint64_t)v * 0x9E3779B97F4A7C15ULL ^ size);
        if (!r->too_large)
            FUZZ_CHECK(r->body.len == j.body_len &&
                       (j.body_len == 0 || memcmp(r->body.data, j.body, j.body_len) == 0),
                       "the body buffer holds %zu bytes, %zu were sent", r->body.len,
                       j.body_len);
        else
            FUZZ_CHECK(r->body.len <= r->max_body, "%zu body bytes over a cap of %zu",
                       r->body.len, r->max_body);
    }

    lua_settop(L, 0);
    lua_pushcfunction(L, run_job);
    lua_pushlightuserdata(L, &j);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        FUZZ_CHECK(0, "a Lua error while handling the reply: %s",
                   lua_isstring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_settop(L, 0);

    linq_response_free(r);
    if (++runs % GC_EVERY == 0) {
        /* libFuzzer cannot tell Lua's garbage from a leak (it stops its per-input leak
         * check), so: after a full collection the Lua heap must not keep growing. */
        static int base_kb = -1;
        int kb;
        lua_gc(L, LUA_GCCOLLECT, 0);
        kb = lua_gc(L, LUA_GCCOUNT, 0);
        if (base_kb < 0)
            base_kb = kb;
        FUZZ_CHECK(kb <= base_kb + LUA_GROWTH_KB, "the Lua heap grew from %d KiB to %d KiB "
                   "over %lu inputs: something keeps references", base_kb, kb, runs);
    }
    return 0;
}
