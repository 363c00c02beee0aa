/* libFuzzer harness: Standard Webhooks verification (src/webhook.c), checked against
 * a reference model built from OpenSSL's one-shot HMAC() and a base64 round trip.
 *
 * Input format:
 *   byte 0      flags: bit 0 append the correct "v1,<sig>" to the signature header;
 *               bits 1-2 the clock: 0 = the timestamp, 1 = timestamp + 300,
 *               2 = timestamp + 301, 3 = timestamp - 301; bit 3 header names in upper
 *               case; bit 4 the signature header as a table { value };
 *               bit 5 secret mode (below)
 *   then        fields separated by '\n': webhook-id, webhook-timestamp,
 *               webhook-signature, then the body (the rest, newlines included).
 *   Secret mode: the first field is a secret for linq.webhook; it must be taken exactly
 *               when it is canonical padded base64 (optionally after "whsec_") of at
 *               most 4096 characters, and webhook_signature with it must equal the
 *               reference HMAC; refusals must be "bad argument #1 to 'webhook'" errors
 *               naming LINQ_WEBHOOK_SECRET that quote nothing of the secret.
 *
 * Invariants: verify returns a table exactly when the model says the message is good,
 * and otherwise raises a linq.Error whose reason is the model's; its message is one of
 * a fixed set (so neither the body, the headers nor the secret can reach it) and its
 * tostring is one line; the stack is balanced.  The verifier's secret is fixed. */
#include <stdint.h>

#include <lualib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_common.h"

#define WH_SECRET_B64 "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define TOLERANCE 300
#define GC_EVERY 4096
#define LUA_GROWTH_KB 1024
#define MAX_SECRET_CHARS 4096

int luaopen_linq_core(lua_State *L);

static lua_State *L;
static int verifier_ref = LUA_NOREF, decode_ref = LUA_NOREF;
static unsigned char key[64];
static int key_len;
static unsigned long runs;

static int init_lua(lua_State *L)
{
    luaL_openlibs(L);
    luaL_requiref(L, "linq.core", luaopen_linq_core, 0);
    lua_getfield(L, -1, "webhook");
    lua_pushliteral(L, "whsec_" WH_SECRET_B64);
    lua_call(L, 1, 1);
    verifier_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    /* A decoder configured as module.c's, for the model's JSON verdict. */
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
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "fuzz_webhook: luaL_newstate failed\n");
        exit(1);
    }
    lua_pushcfunction(L, init_lua);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_webhook: setting up Lua failed: %s\n"
                        "(needs Debian's lua-cjson for Lua 5.4 on package.cpath)\n",
                lua_tostring(L, -1));
        exit(1);
    }
    key_len = EVP_DecodeBlock(key, (const unsigned char *)WH_SECRET_B64,
                              (int)(sizeof WH_SECRET_B64 - 1));
    return 0;
}

/* ---------- the reference model ---------- */

/* "v1," + base64(HMAC-SHA256(k, id.ts.body)) into out (48 bytes), by another road:
 * one contiguous buffer and the one-shot HMAC(). */
static void reference_signature(const unsigned char *k, int klen, const char *id, size_t id_len,
                                const char *ts, size_t ts_len, const char *body,
                                size_t body_len, char out[48])
{
    size_t n = id_len + ts_len + body_len + 2;
    unsigned char *msg = malloc(n + 1), mac[32];
    unsigned int mac_len = 0;

    FUZZ_CHECK(msg != NULL, "out of memory");
    memcpy(msg, id, id_len);
    msg[id_len] = '.';
    memcpy(msg + id_len + 1, ts, ts_len);
    msg[id_len + 1 + ts_len] = '.';
    memcpy(msg + id_len + ts_len + 2, body, body_len);
    FUZZ_CHECK(HMAC(EVP_sha256(), k, klen, msg, n, mac, &mac_len) != NULL && mac_len == 32,
               "HMAC() failed");
    free(msg);
    memcpy(out, "v1,", 3);
    FUZZ_CHECK(EVP_EncodeBlock((unsigned char *)out + 3, mac, 32) == 44, "EncodeBlock");
}

/* Canonical padded base64: decoding and encoding again gives the same text. */
static int reference_secret(const char *s, size_t n, unsigned char **k, int *klen)
{
    unsigned char *dec, *enc;
    int m, ok, pad = 0;

    if (n >= 6 && memcmp(s, "whsec_", 6) == 0) {
        s += 6;
        n -= 6;
    }
    if (n == 0 || n > MAX_SECRET_CHARS || n % 4 != 0)
        return 0;
    dec = malloc(n);
    enc = malloc(n + 1);
    FUZZ_CHECK(dec != NULL && enc != NULL, "out of memory");
    m = EVP_DecodeBlock(dec, (const unsigned char *)s, (int)n);
    ok = m > 0 && m == (int)(n / 4 * 3);
    if (ok) {
        pad = (s[n - 1] == '=') + (s[n - 2] == '=');
        ok = EVP_EncodeBlock(enc, dec, m - pad) == (int)n && memcmp(enc, s, n) == 0;
    }
    free(enc);
    if (!ok) {
        free(dec);
        return 0;
    }
    *k = dec;
    *klen = m - pad;
    return 1;
}

static int digits_only(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > 15)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int has_entry(const char *h, size_t n, const char *want, size_t want_len)
{
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && h[j] != ' ')
            j++;
        if (j - i == want_len && memcmp(h + i, want, want_len) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

/* ---------- one input ---------- */

typedef struct field {
    const char *p;
    size_t n;
} field;

static const char *const messages[] = {
    "missing required header webhook-id", "missing required header webhook-timestamp",
    "missing required header webhook-signature",
    "webhook-timestamp is not a whole number of seconds", "message timestamp too old",
    "message timestamp too new", "no matching signature found",
    "the signed body is not a JSON object", NULL
};

static void check_error(int e, const char *want_reason)
{
    const char *reason, *message, *text;
    size_t len;
    int i;

    FUZZ_CHECK(lua_type(L, e) == LUA_TTABLE, "verify raised a %s: %s", luaL_typename(L, e),
               lua_isstring(L, e) ? lua_tostring(L, e) : "");
    lua_getfield(L, e, "type");
    FUZZ_CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "WebhookVerificationError") == 0,
               "type %s", lua_tostring(L, -1));
    lua_getfield(L, e, "reason");
    reason = lua_tostring(L, -1);
    FUZZ_CHECK(reason != NULL && strcmp(reason, want_reason) == 0, "reason %s, the model says %s",
               reason ? reason : "(none)", want_reason);
    lua_getfield(L, e, "message");
    message = lua_tostring(L, -1);
    FUZZ_CHECK(message != NULL, "no message");
    for (i = 0; messages[i] != NULL && strcmp(messages[i], message) != 0; i++)
        ;
    FUZZ_CHECK(messages[i] != NULL, "a message outside the fixed set: '%s'", message);
    FUZZ_CHECK(luaL_callmeta(L, e, "__tostring"), "no __tostring");
    text = lua_tolstring(L, -1, &len);
    FUZZ_CHECK(memchr(text, '\n', len) == NULL, "tostring is not one line: %s", text);
    FUZZ_CHECK(memmem(text, len, WH_SECRET_B64, 8) == NULL, "the secret is in: %s", text);
    lua_pop(L, 4);
}

static void push_headers(const field *f, const char *sig, size_t sig_len, unsigned flags)
{
    static const char *const lower[] = {"webhook-id", "webhook-timestamp", "webhook-signature"};
    static const char *const upper[] = {"WEBHOOK-ID", "WEBHOOK-TIMESTAMP", "WEBHOOK-SIGNATURE"};
    const char *const *names = (flags & 8) ? upper : lower;

    lua_createtable(L, 0, 3);
    lua_pushlstring(L, f[0].p, f[0].n);
    lua_setfield(L, -2, names[0]);
    lua_pushlstring(L, f[1].p, f[1].n);
    lua_setfield(L, -2, names[1]);
    lua_pushlstring(L, sig, sig_len);
    if (flags & 16) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    }
    lua_setfield(L, -2, names[2]);
}

static void run_verify(const field *f, unsigned flags)
{
    char good[48], *sig;
    size_t sig_len;
    double ts = 0, now = 1614265330.0;
    const char *want = NULL;
    int top = lua_gettop(L), st;

    reference_signature(key, key_len, f[0].p, f[0].n, f[1].p, f[1].n, f[3].p, f[3].n, good);
    sig_len = f[2].n + ((flags & 1) ? 1 + sizeof good - 1 : 0);
    sig = malloc(sig_len + 1);
    FUZZ_CHECK(sig != NULL, "out of memory");
    memcpy(sig, f[2].p, f[2].n);
    if (flags & 1) {
        sig[f[2].n] = ' ';
        memcpy(sig + f[2].n + 1, good, sizeof good - 1);
    }

    /* The model's verdict, in verify's order. */
    if (f[0].n == 0 || f[1].n == 0 || sig_len == 0)
        want = "missing_header";
    else if (!digits_only(f[1].p, f[1].n))
        want = "bad_timestamp";
    if (digits_only(f[1].p, f[1].n)) {
        char buf[16];
        memcpy(buf, f[1].p, f[1].n);
        buf[f[1].n] = '\0';
        ts = strtod(buf, NULL);
        switch ((flags >> 1) & 3) {
        case 0: now = ts; break;
        case 1: now = ts + TOLERANCE; break;
        case 2: now = ts + TOLERANCE + 1; break;
        default: now = ts - TOLERANCE - 1; break;
        }
    }
    if (want == NULL && now - ts > TOLERANCE)
        want = "timestamp_too_old";
    if (want == NULL && ts - now > TOLERANCE)
        want = "timestamp_too_new";
    if (want == NULL && !has_entry(sig, sig_len, good, sizeof good - 1))
        want = "no_matching_signature";
    if (want == NULL) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
        lua_pushlstring(L, f[3].p, f[3].n);
        lua_call(L, 1, 1);
        if (lua_type(L, -1) != LUA_TTABLE)
            want = "bad_json";
        lua_pop(L, 1);
    }

    lua_rawgeti(L, LUA_REGISTRYINDEX, verifier_ref);
    lua_getfield(L, -1, "verify");
    lua_insert(L, -2);
    lua_pushlstring(L, f[3].p, f[3].n);
    push_headers(f, sig, sig_len, flags);
    free(sig);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, now);
    lua_setfield(L, -2, "now");
    lua_pushinteger(L, TOLERANCE);
    lua_setfield(L, -2, "tolerance");
    st = lua_pcall(L, 4, 1, 0);
    if (want == NULL)
        FUZZ_CHECK(st == LUA_OK && lua_type(L, -1) == LUA_TTABLE,
                   "a good message was refused: %s",
                   st == LUA_OK ? "(not a table)" : (lua_isstring(L, -1) ? lua_tostring(L, -1)
                                                     : "(a linq error)"));
    else {
        FUZZ_CHECK(st != LUA_OK, "verify passed a message the model refuses (%s)", want);
        check_error(lua_gettop(L), want);
    }
    lua_pop(L, 1);
    FUZZ_CHECK(lua_gettop(L) == top, "stack %d, was %d", lua_gettop(L), top);
}

/* Whether msg is one of the fixed refusals of a secret: so it quotes nothing of it. */
static int is_secret_error(const char *msg)
{
    static const char *const whats[] = {
        "is empty", "is too long", "has bad padding: its base64 length is not a multiple of 4",
        "has bad padding: more than two '='", "has bad padding: '=' before the end",
        "is not base64 (only A-Z a-z 0-9 + / and = padding)",
        "has bad padding: it is not canonical base64", "is not base64 (it contains a NUL)", NULL
    };
    char want[256];
    int i;

    for (i = 0; whats[i] != NULL; i++) {
        snprintf(want, sizeof want, "bad argument #1 to 'webhook_signature' (the webhook secret "
                 "%s; pass \"whsec_<base64>\" or set LINQ_WEBHOOK_SECRET)", whats[i]);
        if (strcmp(msg, want) == 0)
            return 1;
    }
    return 0;
}

static void run_secret(const field *f)
{
    unsigned char *k = NULL;
    int klen = 0, valid = reference_secret(f[0].p, f[0].n, &k, &klen), st;
    const char *msg;
    size_t len;

    lua_getglobal(L, "require");
    lua_pushliteral(L, "linq.core");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "webhook_signature");
    lua_pushlstring(L, f[0].p, f[0].n);
    lua_pushlstring(L, f[1].p, f[1].n);
    lua_pushliteral(L, "1614265330");
    lua_pushlstring(L, f[3].p, f[3].n);
    st = lua_pcall(L, 4, 1, 0);
    if (valid) {
        char good[48];
        reference_signature(k, klen, f[1].p, f[1].n, "1614265330", 10, f[3].p, f[3].n, good);
        FUZZ_CHECK(st == LUA_OK, "a canonical secret was refused: %s", lua_tostring(L, -1));
        msg = lua_tolstring(L, -1, &len);
        FUZZ_CHECK(len == sizeof good - 1 && memcmp(msg, good, len) == 0,
                   "signature %s, the reference %.47s", msg, good);
    } else {
        FUZZ_CHECK(st != LUA_OK, "a secret that is not canonical base64 was taken");
        msg = lua_tolstring(L, -1, &len);
        FUZZ_CHECK(msg != NULL && is_secret_error(msg), "an unexpected refusal: %s",
                   msg ? msg : luaL_typename(L, -1));
    }
    lua_pop(L, 2);
    if (k != NULL) {
        OPENSSL_cleanse(k, (size_t)klen);
        free(k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    field f[4];
    const char *p, *end;
    unsigned flags;
    int i;

    if (size < 1)
        return 0;
    flags = data[0];
    p = (const char *)data + 1;
    end = (const char *)data + size;
    for (i = 0; i < 3; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        f[i].p = p;
        f[i].n = (size_t)(e - p);
        p = nl != NULL ? nl + 1 : end;
    }
    f[3].p = p;
    f[3].n = (size_t)(end - p);

    lua_settop(L, 0);
    if (flags & 32)
        run_secret(f);
    else
        run_verify(f, flags);
    lua_settop(L, 0);

    if (++runs % GC_EVERY == 0) {
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
