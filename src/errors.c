/* Error objects: plain tables with the module's error metatable, so a program can
 * test e.type, e.status, e.code ... and tostring(e) reads as one line for a person.
 * Anything the server sent is redacted of the client's key before it is shown. */
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

void linq_push_redacted(lua_State *L, const linq_client *c, const char *s, size_t len)
{
    luaL_Buffer b;
    const char *end = s + len;
    size_t klen = c != NULL && c->api_key ? c->api_key_len : 0;

    if (klen == 0 || len < klen || memmem(s, len, c->api_key, klen) == NULL) {
        lua_pushlstring(L, s, len);  /* the usual case: nothing to replace */
        return;
    }
    luaL_buffinit(L, &b);
    while (s < end) {
        const char *hit = klen && (size_t)(end - s) >= klen ? memmem(s, (size_t)(end - s),
                                                                      c->api_key, klen) : NULL;
        if (hit == NULL) {
            luaL_addlstring(&b, s, (size_t)(end - s));
            break;
        }
        luaL_addlstring(&b, s, (size_t)(hit - s));
        luaL_addstring(&b, "[redacted]");
        s = hit + klen;
    }
    luaL_pushresult(&b);
}

/* The first bytes of a body, on one line, cut at a character boundary.  The key is
 * matched in the raw bytes as the excerpt is made, so it is replaced whole wherever
 * the cut falls (folded white space and earlier replacements change the lengths);
 * a body that ends with 4 or more of the key's first bytes (a reply cut at the size
 * cap) gets those replaced too. */
static void push_excerpt(lua_State *L, const linq_client *c, const char *s, size_t len)
{
    static const char mark[] = "[redacted]";
    char out[EXCERPT_BYTES + 4];
    size_t klen = c->api_key ? c->api_key_len : 0;
    size_t n = 0, i = 0;
    int space = 1;  /* drops leading white space and folds runs of it */

    while (i < len && n < EXCERPT_BYTES) {
        unsigned char ch = (unsigned char)s[i];
        size_t rest = len - i;
        if (klen && ch == (unsigned char)c->api_key[0] && (rest >= klen || rest >= 4)
            && memcmp(s + i, c->api_key, rest < klen ? rest : klen) == 0) {
            if (n + sizeof mark - 1 > EXCERPT_BYTES)
                break;  /* no room for the whole mark: the excerpt ends here */
            memcpy(out + n, mark, sizeof mark - 1);
            n += sizeof mark - 1;
            i += rest < klen ? rest : klen;
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
        lua_getfield(L, -1, p);
        if (lua_isstring(L, -1)) {  /* a repeated field: join as HTTP does */
            lua_pushliteral(L, ", ");
            linq_push_redacted(L, c, value, strlen(value));
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            linq_push_redacted(L, c, value, strlen(value));
        }
        lua_setfield(L, -2, p);
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
            linq_push_redacted(L, c, s, n);
            lua_remove(L, -2);
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
    if (f->waited > 0) {
        lua_pushnumber(L, f->waited);
        lua_setfield(L, e, "waited");
    }
    if (f->curl_code) {
        lua_pushinteger(L, f->curl_code);
        lua_setfield(L, e, "curl_code");
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
