/* Standard Webhooks verification (api-v3.md section 6): linq.webhook(secret) makes a
 * verifier that holds the decoded key in memory it owns (wiped on close), and
 * verifier:verify(body, headers, opts) checks the three webhook-* headers, the
 * timestamp and an HMAC-SHA256 signature with libcrypto, then decodes the body with
 * the module's private JSON decoder.  The replay guard (`seen`) is Lua:
 * lua/linq/replay.lua.
 *
 * Memory: the only malloc'd things are the key and OpenSSL's MAC context, both owned
 * by the userdata (made in a safe empty state first), so any Lua error frees them
 * through __gc.  The MAC is computed into stack buffers with no Lua call in between,
 * after checking the verifier is still open (a finalizer run by an allocation could
 * have closed it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "linq.h"

#define ENV_SECRET "LINQ_WEBHOOK_SECRET"
#define SECRET_PREFIX "whsec_"
/* Standard Webhooks secrets are 24 to 64 bytes; this bounds EVP_DecodeBlock's int. */
#define MAX_SECRET_CHARS 4096
#define DEFAULT_TOLERANCE 300.0
#define MAC_BYTES 32                      /* SHA-256 */
#define SIG_CHARS 44                      /* its base64: 4 * ceil(32 / 3) */
#define MAX_TIMESTAMP_DIGITS 15
#define MAX_NOW 9007199254740992.0        /* 2^53: every whole number below is exact */

typedef struct linq_webhook {
    unsigned char *key;                   /* NULL once closed (or before it is made) */
    size_t key_len;
    size_t key_alloc;                     /* what is wiped: the padding's bytes too */
    EVP_MAC_CTX *mac;                     /* HMAC-SHA256, keyed again for each message */
} linq_webhook;

/* Every event type of section 6.3: the 27 of TS 0.28.2, then the 18 Go 0.38.3 adds. */
static const char *const event_types[] = {
    "message.sent", "message.received", "message.read", "message.delivered",
    "message.failed", "message.edited", "reaction.added", "reaction.removed",
    "participant.added", "participant.removed", "chat.created", "chat.group_name_updated",
    "chat.group_icon_updated", "chat.group_name_update_failed",
    "chat.group_icon_update_failed", "chat.typing_indicator.started",
    "chat.typing_indicator.stopped", "phone_number.status_updated", "call.initiated",
    "call.ringing", "call.answered", "call.ended", "call.failed", "call.declined",
    "call.no_answer", "location.sharing.started", "location.sharing.stopped",
    "poll.received", "poll.failed", "poll.sent", "poll.delivered", "poll.read",
    "poll.updated", "poll.vote.added", "poll.vote.removed", "poll.reaction.added",
    "chat.background_updated", "chat.background_update_failed", "payment.succeeded",
    "payment.canceled", "payment.expired", "payment.declined", "payment.authorized",
    "connection.created", "connection.revoked",
    NULL
};

/* ---------- the secret ---------- */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Checks that s is canonical, padded, standard base64 (what the Standard Webhooks
 * libraries accept): EVP_DecodeBlock alone takes white space, leaves padding in its
 * count and ignores the bits a last character has to spare.  NULL when it is;
 * otherwise what is wrong, in words that quote nothing of s. */
static const char *check_base64(const char *s, size_t n, size_t *decoded)
{
    size_t i, pad = 0;

    if (n == 0)
        return "is empty";
    if (n > MAX_SECRET_CHARS)
        return "is too long";
    while (pad < n && s[n - 1 - pad] == '=')
        pad++;
    for (i = 0; i < n - pad; i++) {
        if (b64_value((unsigned char)s[i]) < 0)
            return s[i] == '=' ? "has bad padding: '=' before the end"
                               : "is not base64 (only A-Z a-z 0-9 + / and = padding)";
    }
    if (n % 4 != 0)
        return "has bad padding: its base64 length is not a multiple of 4";
    if (pad > 2)
        return "has bad padding: more than two '='";
    /* The bits the last character carries beyond the data must be zero. */
    if (pad > 0 && (b64_value((unsigned char)s[n - pad - 1]) & (pad == 1 ? 0x3 : 0xf)) != 0)
        return "has bad padding: it is not canonical base64";
    *decoded = n / 4 * 3 - pad;
    return NULL;
}

/* Wipes and frees what the verifier owns; idempotent. */
static void free_webhook(linq_webhook *w)
{
    if (w->key != NULL) {
        OPENSSL_cleanse(w->key, w->key_alloc);
        free(w->key);
        w->key = NULL;
        w->key_len = w->key_alloc = 0;
    }
    if (w->mac != NULL) {
        EVP_MAC_CTX_free(w->mac);
        w->mac = NULL;
    }
}

/* "bad argument #1 to 'fname' (the webhook secret ...)", naming the variable
 * whatever the call site looks like. */
static int secret_error(lua_State *L, const char *fname, const char *what)
{
    return luaL_error(L, "bad argument #1 to '%s' (the webhook secret %s; pass \"whsec_<base64>\" "
                      "or set " ENV_SECRET ")", fname, what);
}

/* Pushes a verifier for the secret at stack index 1 (nil: the environment's). */
static linq_webhook *push_webhook(lua_State *L, const char *fname)
{
    static const char digest[] = "SHA256";
    const char *s;
    size_t n, decoded = 0;
    const char *bad;
    linq_webhook *w;
    EVP_MAC *hmac;
    OSSL_PARAM params[2];
    int got;

    if (lua_isnoneornil(L, 1)) {
        s = getenv(ENV_SECRET);
        if (s == NULL)
            secret_error(L, fname, "is missing: no argument and " ENV_SECRET " is not set");
        n = strlen(s);
    } else if (lua_type(L, 1) == LUA_TSTRING) {
        s = lua_tolstring(L, 1, &n);
    } else {
        luaL_error(L, "bad argument #1 to '%s' (the webhook secret must be a string, got a %s; "
                   "pass \"whsec_<base64>\" or set " ENV_SECRET ")", fname, luaL_typename(L, 1));
        return NULL;
    }
    if (n >= sizeof SECRET_PREFIX - 1 && memcmp(s, SECRET_PREFIX, sizeof SECRET_PREFIX - 1) == 0) {
        s += sizeof SECRET_PREFIX - 1;
        n -= sizeof SECRET_PREFIX - 1;
    }
    if (memchr(s, '\0', n) != NULL)
        secret_error(L, fname, "is not base64 (it contains a NUL)");
    if ((bad = check_base64(s, n, &decoded)) != NULL)
        secret_error(L, fname, bad);

    /* Safe empty state first, so __gc can run at any point after this. */
    w = lua_newuserdata(L, sizeof *w);
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, LINQ_WEBHOOK_MT);

    w->key = malloc(n / 4 * 3);
    hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    w->mac = hmac != NULL ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);   /* the context holds its own reference */
    if (w->key == NULL || w->mac == NULL) {
        free_webhook(w);
        luaL_error(L, "%s: out of memory (or OpenSSL has no HMAC)", fname);
        return NULL;
    }
    w->key_alloc = n / 4 * 3;
    got = EVP_DecodeBlock(w->key, (const unsigned char *)s, (int)n);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (got != (int)(n / 4 * 3) || !EVP_MAC_CTX_set_params(w->mac, params)) {
        free_webhook(w);
        luaL_error(L, "%s: OpenSSL could not set up HMAC-SHA256", fname);
        return NULL;
    }
    w->key_len = decoded;   /* the padding's zero bytes are not key */
    return w;
}

int linq_webhook_new(lua_State *L)
{
    lua_settop(L, 1);
    push_webhook(L, "webhook");
    return 1;
}

/* The base64 of HMAC-SHA256(key, id "." timestamp "." body) into out (SIG_CHARS + NUL).
 * No Lua call in here: nothing can close the verifier or raise halfway. */
static int sign(linq_webhook *w, const char *id, size_t id_len, const char *ts, size_t ts_len,
                const char *body, size_t body_len, char out[SIG_CHARS + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    int ok;

    ok = EVP_MAC_init(w->mac, w->key, w->key_len, NULL)
        && EVP_MAC_update(w->mac, (const unsigned char *)id, id_len)
        && EVP_MAC_update(w->mac, (const unsigned char *)".", 1)
        && EVP_MAC_update(w->mac, (const unsigned char *)ts, ts_len)
        && EVP_MAC_update(w->mac, (const unsigned char *)".", 1)
        && EVP_MAC_update(w->mac, (const unsigned char *)body, body_len)
        && EVP_MAC_final(w->mac, mac, &mac_len, sizeof mac)
        && mac_len == MAC_BYTES;
    if (ok)
        ok = EVP_EncodeBlock((unsigned char *)out, mac, MAC_BYTES) == SIG_CHARS;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

/* ---------- verification ---------- */

/* Raises a linq.Error { type = "WebhookVerificationError", reason =, message = }.
 * The message is fixed text: nothing from the body, the headers or the secret. */
static int fail(lua_State *L, const char *reason, const char *message)
{
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "WebhookVerificationError");
    lua_setfield(L, -2, "type");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_ERROR_MT));
    lua_setmetatable(L, -2);
    return lua_error(L);
}

/* Argument errors name 'verify' wherever it is called from (linq_argerror reads the
 * name from the closure's LINQ_UV_OP_NAME upvalue). */
static linq_webhook *check_webhook(lua_State *L)
{
    linq_webhook *w = luaL_testudata(L, 1, LINQ_WEBHOOK_MT);
    if (w == NULL)
        linq_argerror(L, 1, lua_pushfstring(L, LINQ_WEBHOOK_MT " expected, got %s",
                                            luaL_typename(L, 1)));
    if (w->key == NULL)
        linq_argerror(L, 1, "the linq.Webhook is closed");
    return w;
}

enum { H_ID, H_TIMESTAMP, H_SIGNATURE, H_COUNT };
static const char *const header_names[H_COUNT] = {
    "webhook-id", "webhook-timestamp", "webhook-signature"
};

static int header_slot(const char *k, size_t n)
{
    int i;
    for (i = 0; i < H_COUNT; i++)
        if (n == strlen(header_names[i]) && strncasecmp(k, header_names[i], n) == 0)
            return i;
    return -1;
}

/* Pushes a header's value as a string, or nil when it has none: a string as it is;
 * a table (the field sent several times) by its first element when that is a
 * string; for webhook-signature, every string element from the first, joined by
 * spaces, since each may hold signatures. */
static void push_header_value(lua_State *L, int v, int join)
{
    if (lua_type(L, v) == LUA_TSTRING) {
        lua_pushvalue(L, v);
        return;
    }
    if (lua_type(L, v) != LUA_TTABLE) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, v, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushnil(L);
        return;
    }
    if (join) {
        luaL_Buffer b;
        int i, first = lua_gettop(L);   /* stays below the buffer */
        luaL_buffinit(L, &b);
        lua_pushvalue(L, first);
        luaL_addvalue(&b);
        for (i = 2;; i++) {
            lua_rawgeti(L, v, i);
            if (lua_type(L, -1) != LUA_TSTRING) {
                lua_pop(L, 1);
                break;
            }
            luaL_addchar(&b, ' ');
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        lua_remove(L, -2);
    }
}

/* Reads the headers table at hidx once, with raw access, into stack slots
 * first..first+2 (nil when absent).  A name given twice (in two cases) with
 * different values is refused rather than picked from at random. */
static void read_headers(lua_State *L, int hidx, int first)
{
    int conflict[H_COUNT] = {0, 0, 0}, i;

    lua_pushnil(L);
    while (lua_next(L, hidx)) {
        int slot = -1;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t n;
            const char *k = lua_tolstring(L, -2, &n);
            slot = header_slot(k, n);
        }
        if (slot >= 0) {
            push_header_value(L, lua_gettop(L), slot == H_SIGNATURE);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
            } else if (lua_isnil(L, first + slot)) {
                lua_replace(L, first + slot);
            } else {
                conflict[slot] |= !lua_rawequal(L, -1, first + slot);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    for (i = 0; i < H_COUNT; i++) {
        size_t n = 0;
        if (conflict[i])
            fail(L, "missing_header", lua_pushfstring(L, "header %s is given twice with different "
                                                      "values", header_names[i]));
        if (!lua_isnil(L, first + i))
            lua_tolstring(L, first + i, &n);
        if (n == 0)
            fail(L, "missing_header", lua_pushfstring(L, "missing required header %s",
                                                      header_names[i]));
    }
}

/* Digits only (no sign, no space, no fraction), at most MAX_TIMESTAMP_DIGITS. */
static int parse_timestamp(const char *s, size_t n, double *out)
{
    long long v = 0;
    size_t i;

    if (n == 0 || n > MAX_TIMESTAMP_DIGITS)
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = (double)v;   /* below 10^15: exact */
    return 1;
}

/* Whether one of the space-separated entries is "v1," followed by exactly the
 * expected base64 text (compared in constant time; other versions are skipped). */
static int signature_matches(const char *h, size_t n, const char expected[SIG_CHARS])
{
    const char *end = h + n;
    int found = 0;

    while (h < end) {
        const char *sp = memchr(h, ' ', (size_t)(end - h));
        const char *e = sp != NULL ? sp : end;
        if (e - h == 3 + SIG_CHARS && h[0] == 'v' && h[1] == '1' && h[2] == ','
            && CRYPTO_memcmp(h + 3, expected, SIG_CHARS) == 0)
            found = 1;
        h = sp != NULL ? sp + 1 : end;
    }
    return found;
}

/* Puts in slot the replay guard for opts.seen (already in slot): a table with an
 * add method is used as it is; a string names a lua_shared_dict, which
 * linq.replay wraps (only inside nginx). */
static void resolve_guard(lua_State *L, int arg, int slot)
{
    if (lua_isnil(L, slot))
        return;
    if (lua_type(L, slot) == LUA_TSTRING) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "linq.replay");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "shared_dict");
        lua_pushvalue(L, slot);
        lua_call(L, 1, 2);
        if (lua_isnil(L, -2))
            linq_argerror(L, arg, lua_pushfstring(L, "option 'seen': %s", lua_tostring(L, -1)));
        lua_pop(L, 1);
        lua_replace(L, slot);
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, slot) == LUA_TTABLE) {
        lua_getfield(L, slot, "add");
        if (lua_isfunction(L, -1) || luaL_getmetafield(L, -1, "__call")) {
            lua_settop(L, slot);
            return;
        }
    }
    linq_argerror(L, arg, lua_pushfstring(L, "option 'seen' must be a replay guard "
                                          "(linq.replay_guard) or a lua_shared_dict name, got a %s",
                                          luaL_typename(L, slot)));
}

/* wh:verify(body, headers [, { tolerance =, now =, seen = }]) -> event */
static int webhook_verify(lua_State *L)
{
    static const char *const names[] = {"tolerance", "now", "seen", NULL};
    enum { BODY = 2, HEADERS = 3, OPTS = 4, ID, TS, SIG, GUARD };
    linq_webhook *w = check_webhook(L);
    double tolerance = DEFAULT_TOLERANCE, now, ts = 0;
    const char *body, *id, *tstext, *sig;
    size_t body_len, id_len, ts_len, sig_len;
    char expected[SIG_CHARS + 1];

    lua_settop(L, OPTS);
    if (lua_type(L, BODY) != LUA_TSTRING)
        linq_argerror(L, BODY, lua_pushfstring(L, "the raw body must be a string, got a %s",
                                               luaL_typename(L, BODY)));
    if (lua_type(L, HEADERS) != LUA_TTABLE)
        linq_argerror(L, HEADERS, lua_pushfstring(L, "headers must be a table, got a %s",
                                                  luaL_typename(L, HEADERS)));
    now = (double)time(NULL);
    lua_pushnil(L);                         /* ID */
    lua_pushnil(L);                         /* TS */
    lua_pushnil(L);                         /* SIG */
    lua_pushnil(L);                         /* GUARD */
    if (!lua_isnil(L, OPTS)) {
        if (lua_type(L, OPTS) != LUA_TTABLE)
            linq_argerror(L, OPTS, lua_pushfstring(L, "options must be a table, got a %s",
                                                   luaL_typename(L, OPTS)));
        linq_copy_options(L, OPTS, names);
        linq_check_option_names(L, OPTS, OPTS, names);
        tolerance = linq_opt_number(L, OPTS, OPTS, "tolerance", DEFAULT_TOLERANCE, 0, 0, 1e15);
        now = linq_opt_number(L, OPTS, OPTS, "now", now, -MAX_NOW, 0, MAX_NOW);
        lua_getfield(L, OPTS, "seen");
        lua_replace(L, GUARD);
        resolve_guard(L, OPTS, GUARD);
    }
    now = floor(now);   /* whole seconds, as the Standard Webhooks libraries count */

    read_headers(L, HEADERS, ID);
    tstext = lua_tolstring(L, TS, &ts_len);
    if (!parse_timestamp(tstext, ts_len, &ts))
        fail(L, "bad_timestamp", "webhook-timestamp is not a whole number of seconds");
    if (now - ts > tolerance)
        fail(L, "timestamp_too_old", "message timestamp too old");
    if (ts - now > tolerance)
        fail(L, "timestamp_too_new", "message timestamp too new");

    body = lua_tolstring(L, BODY, &body_len);
    id = lua_tolstring(L, ID, &id_len);
    sig = lua_tolstring(L, SIG, &sig_len);
    /* From here to the comparison, no Lua call: a finalizer run by an allocation
     * above may have closed the verifier, so check again first. */
    if (w->key == NULL)
        linq_argerror(L, 1, "the linq.Webhook is closed");
    if (!sign(w, id, id_len, tstext, ts_len, body, body_len, expected))
        return luaL_error(L, "verify: OpenSSL failed to compute HMAC-SHA256");
    if (!signature_matches(sig, sig_len, expected))
        fail(L, "no_matching_signature", "no matching signature found");

    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_DECODE));
    lua_pushvalue(L, BODY);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
        fail(L, "bad_json", "the signed body is not a JSON object");
    linq_json_integers(L, -1);

    if (!lua_isnil(L, GUARD)) {
        /* guard:add(id, expires_at, now): true when the id is new (and now remembered). */
        lua_getfield(L, GUARD, "add");
        lua_pushvalue(L, GUARD);
        lua_pushvalue(L, ID);
        lua_pushnumber(L, ts + tolerance);
        lua_pushnumber(L, now);
        lua_call(L, 4, 1);
        if (!lua_toboolean(L, -1))
            fail(L, "replayed", "webhook-id was already delivered (a replay)");
        lua_pop(L, 1);
    }
    return 1;
}

static int signature_argerror(lua_State *L, int arg, const char *msg)
{
    return luaL_error(L, "bad argument #%d to 'webhook_signature' (%s)", arg, msg);
}

/* linq.webhook_signature(secret, id, timestamp, body) -> "v1,<base64>" */
int linq_webhook_signature(lua_State *L)
{
    const char *id, *body, *ts;
    size_t id_len, body_len, ts_len;
    char sig[3 + SIG_CHARS + 1];
    linq_webhook *w;

    lua_settop(L, 4);
    if (lua_type(L, 2) != LUA_TSTRING)
        signature_argerror(L, 2, "the webhook id must be a string");
    if (lua_type(L, 3) == LUA_TNUMBER) {
        char text[64];
        double v = lua_tonumber(L, 3);
        if (!(v >= 0 && v < 1e15 && v == floor(v)))
            signature_argerror(L, 3, "the timestamp must be a whole number of seconds");
        snprintf(text, sizeof text, "%.0f", v);
        lua_pushstring(L, text);
        lua_replace(L, 3);
    } else if (lua_type(L, 3) != LUA_TSTRING) {
        signature_argerror(L, 3, "the timestamp must be a string or a number");
    }
    if (lua_type(L, 4) != LUA_TSTRING)
        signature_argerror(L, 4, "the body must be a string");
    id = lua_tolstring(L, 2, &id_len);
    ts = lua_tolstring(L, 3, &ts_len);
    body = lua_tolstring(L, 4, &body_len);
    w = push_webhook(L, "webhook_signature");
    memcpy(sig, "v1,", 3);
    if (!sign(w, id, id_len, ts, ts_len, body, body_len, sig + 3)) {
        free_webhook(w);
        return luaL_error(L, "webhook_signature: OpenSSL failed to compute HMAC-SHA256");
    }
    free_webhook(w);
    lua_pushlstring(L, sig, sizeof sig - 1);
    return 1;
}

static int webhook_close(lua_State *L)
{
    free_webhook(luaL_checkudata(L, 1, LINQ_WEBHOOK_MT));
    return 0;
}

static int webhook_tostring(lua_State *L)
{
    linq_webhook *w = luaL_checkudata(L, 1, LINQ_WEBHOOK_MT);
    lua_pushfstring(L, w->key == NULL ? "linq.Webhook (closed): %p" : "linq.Webhook: %p",
                    (void *)w);
    return 1;
}

void linq_webhook_register(lua_State *L, int first_uv)
{
    static const luaL_Reg methods[] = {
        {"close", webhook_close},
        {NULL, NULL}
    };
    static const luaL_Reg metamethods[] = {
        {"__gc", webhook_close},
        {"__close", webhook_close},
        {"__tostring", webhook_tostring},
        {NULL, NULL}
    };
    int module = lua_gettop(L), i;

    luaL_newmetatable(L, LINQ_WEBHOOK_MT);
    lua_pushliteral(L, LINQ_WEBHOOK_MT);
    lua_setfield(L, -2, "__name");                 /* 5.1 and 5.2 do not set it */
    lua_pushliteral(L, LINQ_WEBHOOK_MT);
    lua_setfield(L, -2, "__metatable");
    luaL_setfuncs(L, metamethods, 0);
    lua_newtable(L);
    for (i = 0; i < LINQ_NUPVALUES; i++)
        lua_pushvalue(L, first_uv + i);
    lua_pushnil(L);                                /* LINQ_UV_OP: no row */
    lua_pushliteral(L, "verify");                  /* LINQ_UV_OP_NAME, for linq_argerror */
    lua_pushcclosure(L, webhook_verify, LINQ_NUPVALUES + 2);
    lua_setfield(L, -2, "verify");
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, linq_webhook_new);
    lua_setfield(L, module, "webhook");
    lua_pushcfunction(L, linq_webhook_signature);
    lua_setfield(L, module, "webhook_signature");
    lua_newtable(L);
    for (i = 0; event_types[i] != NULL; i++) {
        lua_pushstring(L, event_types[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, module, "events");
}
