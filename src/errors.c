/* Error objects: plain tables with the module's error metatable, so a program can
 * test e.type, e.status, e.code ... and tostring(e) reads as one line for a person.
 * Anything the server sent is redacted of the client's key before it is shown. */
#include <stdlib.h>
#include <string.h>

#include "linq.h"

#define EXCERPT_BYTES 200

const char *linq_error_type_for_status(long status)
{
    switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 409: return "ConflictError";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    default: return status >= 500 ? "InternalServerError" : "APIStatusError";
    }
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 200 && status < 300 ? "Invalid response" : "HTTP error";
    }
}

/* ---------- the key, in every form a server may send it back ---------- */

static char *form_add(linq_client *c, size_t cap)
{
    char *p;
    if (c->nforms == LINQ_KEY_FORMS || (p = malloc(cap + 1)) == NULL)
        return NULL;
    c->form[c->nforms] = p;
    return p;
}

/* Keeps the form just written unless it equals the key or an earlier form. */
static void form_keep(linq_client *c, size_t len)
{
    char *p = c->form[c->nforms];
    int i;

    p[len] = '\0';
    if (len == c->api_key_len && memcmp(p, c->api_key, len) == 0)
        goto drop;
    for (i = 0; i < c->nforms; i++)
        if (c->form_len[i] == len && memcmp(c->form[i], p, len) == 0)
            goto drop;
    c->form_len[c->nforms++] = len;
    return;
drop:
    free(p);
}

int linq_key_forms(linq_client *c)
{
    static const char hex[] = "0123456789ABCDEF", lower_hex[] = "0123456789abcdef";
    const char *k = c->api_key;
    size_t n = c->api_key_len, i, o;
    int pass;
    char *p;

    /* lower-cased (header names, case-folding servers) */
    if ((p = form_add(c, n)) == NULL)
        return 0;
    for (i = 0; i < n; i++)
        p[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
    form_keep(c, n);
    /* JSON with '/' escaped, as some encoders write it */
    if ((p = form_add(c, 2 * n)) == NULL)
        return 0;
    for (i = o = 0; i < n; i++) {
        if (k[i] == '/')
            p[o++] = '\\';
        p[o++] = k[i];
    }
    form_keep(c, o);
    /* percent-encoded, with upper- and lower-case hex digits */
    for (pass = 0; pass < 2; pass++) {
        const char *digits = pass ? lower_hex : hex;
        if ((p = form_add(c, 3 * n)) == NULL)
            return 0;
        for (i = o = 0; i < n; i++) {
            unsigned char ch = (unsigned char)k[i];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
                p[o++] = (char)ch;
            } else {
                p[o++] = '%';
                p[o++] = digits[ch >> 4];
                p[o++] = digits[ch & 15];
            }
        }
        form_keep(c, o);
    }
    return 1;
}

int linq_key_copy(linq_client *dst, const linq_client *src)
{
    size_t total = src->api_key_len + 1;
    char *p;
    int i;

    /* One block, forms already worked out: an exchange per call must not redo it. */
    for (i = 0; i < src->nforms; i++)
        total += src->form_len[i] + 1;
    if ((p = malloc(total)) == NULL)
        return 0;
    dst->api_key = p;
    dst->api_key_len = src->api_key_len;
    memcpy(p, src->api_key, src->api_key_len + 1);
    p += src->api_key_len + 1;
    for (i = 0; i < src->nforms; i++) {
        memcpy(p, src->form[i], src->form_len[i] + 1);
        dst->form[i] = p;
        dst->form_len[i] = src->form_len[i];
        p += src->form_len[i] + 1;
    }
    dst->nforms = src->nforms;
    dst->key_packed = 1;
    return 1;
}

void linq_key_free(linq_client *c)
{
    int i;

    if (c->key_packed && c->api_key) {
        size_t total = c->api_key_len + 1;
        for (i = 0; i < c->nforms; i++)
            total += c->form_len[i] + 1;
        memset(c->api_key, 0, total);
        free(c->api_key);
        c->api_key = NULL;
        for (i = 0; i < c->nforms; i++)
            c->form[i] = NULL;
        c->nforms = 0;
        return;
    }
    if (c->api_key) {
        memset(c->api_key, 0, c->api_key_len);
        free(c->api_key);
        c->api_key = NULL;
    }
    for (i = 0; i < c->nforms; i++) {
        memset(c->form[i], 0, c->form_len[i]);
        free(c->form[i]);
        c->form[i] = NULL;
    }
    c->nforms = 0;
}

/* The earliest place in s where the key appears in any of its forms; its length in *n. */
static const char *find_key(const linq_client *c, const char *s, size_t len, size_t *n)
{
    const char *best = NULL;
    int i;

    if (c == NULL || c->api_key == NULL || c->api_key_len == 0)
        return NULL;
    for (i = -1; i < c->nforms; i++) {
        const char *k = i < 0 ? c->api_key : c->form[i];
        size_t klen = i < 0 ? c->api_key_len : c->form_len[i];
        const char *hit = len >= klen ? memmem(s, len, k, klen) : NULL;
        if (hit != NULL && (best == NULL || hit < best)) {
            best = hit;
            *n = klen;
        }
    }
    return best;
}

void linq_push_redacted(lua_State *L, const linq_client *c, const char *s, size_t len)
{
    luaL_Buffer b;
    const char *end = s + len, *hit;
    size_t klen = 0;

    if ((hit = find_key(c, s, len, &klen)) == NULL) {
        lua_pushlstring(L, s, len);  /* the usual case: nothing to replace */
        return;
    }
    luaL_buffinit(L, &b);
    while (hit != NULL) {
        luaL_addlstring(&b, s, (size_t)(hit - s));
        luaL_addstring(&b, "[redacted]");
        s = hit + klen;
        hit = find_key(c, s, (size_t)(end - s), &klen);
    }
    luaL_addlstring(&b, s, (size_t)(end - s));
    luaL_pushresult(&b);
}

/* How many bytes at s (rest of them left) are the key in one of its forms: the
 * whole form, or, at the very end of the text, 4 or more of its first bytes (a
 * reply cut at the size cap).  0 when none. */
static size_t key_at(const linq_client *c, const char *s, size_t rest)
{
    int i;

    if (c->api_key == NULL || c->api_key_len == 0)
        return 0;
    for (i = -1; i < c->nforms; i++) {
        const char *k = i < 0 ? c->api_key : c->form[i];
        size_t klen = i < 0 ? c->api_key_len : c->form_len[i];
        size_t m = rest < klen ? rest : klen;
        if (s[0] == k[0] && (rest >= klen || rest >= 4) && memcmp(s, k, m) == 0)
            return m;
    }
    return 0;
}

/* The first bytes of a body, on one line, cut at a character boundary.  The key is
 * matched in the raw bytes as the excerpt is made, so it is replaced whole wherever
 * the cut falls (folded white space and earlier replacements change the lengths). */
static void push_excerpt(lua_State *L, const linq_client *c, const char *s, size_t len)
{
    static const char mark[] = "[redacted]";
    char out[EXCERPT_BYTES + 4];
    size_t n = 0, i = 0;
    int space = 1;  /* drops leading white space and folds runs of it */

    while (i < len && n < EXCERPT_BYTES) {
        unsigned char ch = (unsigned char)s[i];
        size_t k = key_at(c, s + i, len - i);
        if (k > 0) {
            if (n + sizeof mark - 1 > EXCERPT_BYTES)
                break;  /* no room for the whole mark: the excerpt ends here */
            memcpy(out + n, mark, sizeof mark - 1);
            n += sizeof mark - 1;
            i += k;
            space = 0;
        } else if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            if (!space)
                out[n++] = ' ';
            space = 1;
            i++;
        } else {
            out[n++] = (char)ch;
            space = 0;
            i++;
        }
    }
    if (i < len) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
            n--;  /* continuation bytes of a cut character */
        if (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0)
            n--;  /* and its lead byte */
        memcpy(out + n, "...", 3);
        n += 3;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    lua_pushlstring(L, out, n);
}

void linq_push_header_table(lua_State *L, const char *p, size_t len, const linq_client *c)
{
    const char *end;

    lua_newtable(L);
    if (p == NULL)
        return;  /* a reply with no header fields at all */
    end = p + len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        linq_push_redacted(L, c, p, strlen(p));  /* a name can carry the key too */
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isstring(L, -1)) {  /* a repeated field: join as HTTP does */
            lua_pushliteral(L, ", ");
            linq_push_redacted(L, c, value, strlen(value));
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            linq_push_redacted(L, c, value, strlen(value));
        }
        lua_rawset(L, -3);
        p = value + strlen(value) + 1;
    }
}

int linq_push_request_id(lua_State *L, const linq_client *c, int decoded_idx)
{
    const char *rid = linq_response_header(&c->resp, "x-request-id");

    if (rid == NULL)
        rid = linq_response_header(&c->resp, "x-trace-id");
    if (rid != NULL) {
        linq_push_redacted(L, c, rid, strlen(rid));
        return 1;
    }
    if (decoded_idx && lua_type(L, decoded_idx) == LUA_TTABLE) {
        lua_pushliteral(L, "trace_id");
        lua_rawget(L, decoded_idx);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            linq_push_redacted(L, c, s, len);
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Copies t[key] of the envelope into the error when it has the expected type. */
static int copy_field(lua_State *L, int from, int to, const char *key, int type,
                      const linq_client *c)
{
    int found = 0;

    lua_getfield(L, from, key);
    if (lua_type(L, -1) == type) {
        if (type == LUA_TSTRING) {
            size_t n;
            const char *s = lua_tolstring(L, -1, &n);
            linq_push_redacted(L, c, s, n);   /* the key goes before any cut */
            lua_remove(L, -2);
            s = lua_tolstring(L, -1, &n);
            if (n > LINQ_MAX_MESSAGE_BYTES) {
                size_t cut = LINQ_MAX_MESSAGE_BYTES;
                while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
                    cut--;  /* not inside a UTF-8 character */
                lua_pushlstring(L, s, cut);
                lua_pushliteral(L, "...");
                lua_concat(L, 2);
                lua_remove(L, -2);
            }
        } else if (type == LUA_TNUMBER) {
            lua_Number v = lua_tonumber(L, -1);
            /* 2004, not 2004.0, under 5.3+; a value outside the integers stays a float
             * (converting it would be undefined behaviour). */
            if (v >= -9223372036854775808.0 && v < 9223372036854775808.0
                && v == (lua_Number)(lua_Integer)v) {
                lua_pop(L, 1);
                lua_pushinteger(L, (lua_Integer)v);
            }
        }
        lua_setfield(L, to, key);
        found = 1;
    } else {
        lua_pop(L, 1);
    }
    return found;
}

void linq_push_error(lua_State *L, int mt_idx, const linq_client *c, const linq_failure *f,
                     int decoded_idx)
{
    const linq_response *r = &c->resp;
    int e, have_message = 0;

    lua_createtable(L, 0, 12);
    e = lua_gettop(L);
    lua_pushstring(L, f->type);
    lua_setfield(L, e, "type");
    lua_pushinteger(L, f->attempts);
    lua_setfield(L, e, "attempts");
    /* Always there, as in meta: 0 on a first attempt, so e.waited > 0 needs no nil test. */
    lua_pushnumber(L, f->waited);
    lua_setfield(L, e, "waited");
    if (f->curl_code) {
        lua_pushinteger(L, f->curl_code);
        lua_setfield(L, e, "curl_code");
    }
    if (f->interrupted) {
        lua_pushboolean(L, 1);
        lua_setfield(L, e, "interrupted");
    }
    if (f->idempotency_key != NULL) {
        lua_pushstring(L, f->idempotency_key);
        lua_setfield(L, e, "idempotency_key");
    }
    if (f->status > 0) {
        double asked = linq_server_delay(linq_response_header(r, "retry-after-ms"),
                                         linq_response_header(r, "retry-after"), time(NULL));
        lua_pushinteger(L, f->status);
        lua_setfield(L, e, "status");
        linq_push_header_table(L, r->headers.data, r->headers.len, c);
        lua_setfield(L, e, "headers");
        if (linq_push_request_id(L, c, decoded_idx))
            lua_setfield(L, e, "request_id");
        if (asked >= 0) {
            lua_pushnumber(L, asked);
            lua_setfield(L, e, "retry_after");
        }
    }
    if (decoded_idx && lua_type(L, decoded_idx) == LUA_TTABLE) {
        lua_getfield(L, decoded_idx, "error");
        if (lua_type(L, -1) == LUA_TTABLE) {
            int env = lua_gettop(L);
            if (!copy_field(L, env, e, "code", LUA_TNUMBER, c))
                copy_field(L, env, e, "code", LUA_TSTRING, c);
            have_message = copy_field(L, env, e, "message", LUA_TSTRING, c);
            copy_field(L, env, e, "doc_url", LUA_TSTRING, c);
        }
        lua_pop(L, 1);
        if (!have_message)
            have_message = copy_field(L, decoded_idx, e, "message", LUA_TSTRING, c);
    }
    if (!have_message) {
        const char *m = f->message ? f->message : reason_phrase(f->status);
        linq_push_redacted(L, c, m, strlen(m));
        lua_setfield(L, e, "message");
        if (f->status > 0 && r->body.len > 0) {
            push_excerpt(L, c, r->body.data, r->body.len);
            lua_setfield(L, e, "body");
        }
    }
    lua_pushvalue(L, mt_idx);
    lua_setmetatable(L, e);
}

/* A copy of s with control characters (a server's CR, LF, tab...) as spaces. */
static void push_one_line(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    size_t i;

    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        luaL_addchar(&b, ch < 0x20 || ch == 0x7f ? ' ' : (char)ch);
    }
    luaL_pushresult(&b);
}

/* Pushes before, the field on one line, after: 3 values; nothing when the field is
 * not a string or a number. */
static int push_field(lua_State *L, int e, const char *key, const char *before,
                      const char *after)
{
    size_t len;
    const char *s;

    lua_getfield(L, e, key);
    if (!lua_isstring(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    s = lua_tolstring(L, -1, &len);  /* converts this stack slot, not the table's field */
    lua_pushstring(L, before);
    push_one_line(L, s, len);
    lua_pushstring(L, after);
    lua_remove(L, -4);
    return 3;
}

int linq_error_tostring(lua_State *L)
{
    lua_Integer attempts;
    int n = 1;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstack(L, 30, "linq error");
    lua_getfield(L, 1, "attempts");
    attempts = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);

    lua_pushliteral(L, "linq: ");
    n += push_field(L, 1, "type", "", "");
    n += push_field(L, 1, "status", " ", "");
    n += push_field(L, 1, "code", " (code ", ")");
    n += push_field(L, 1, "message", ": ", "");
    n += push_field(L, 1, "doc_url", " <", ">");
    n += push_field(L, 1, "body", "; body: ", "");
    n += push_field(L, 1, "request_id", " [request_id ", "]");
    if (attempts > 1) {
        lua_pushfstring(L, " (after %d attempts)", (int)attempts);
        n++;
    }
    lua_concat(L, n);
    return 1;
}

int linq_is_error(lua_State *L)
{
    int yes = 0;

    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, LINQ_ERROR_MT);
        yes = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_pushboolean(L, yes);
    return 1;
}
