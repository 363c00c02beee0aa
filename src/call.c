/* One API call: its options checked before any traffic, then attempts and retries
 * under a protected call, then the decoded body and a meta table (or an error).
 *
 * Ownership: everything malloc'd lives in the client userdata, and the attempts run
 * inside lua_pcall, so a Lua error at any point (a bad option, out of memory while
 * building tables, the error object itself) leaves nothing owned only by a C local,
 * and the client's busy flag and per-call header list are always reset. */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "linq.h"

typedef struct linq_call {
    linq_client *c;
    const char *method;            /* upper case */
    const char *url;               /* a Lua string on the caller's stack */
    const char *body;              /* NULL: the request has no body */
    size_t body_len;
    struct curl_slist *headers;    /* the client's list or the call's own */
    long timeout_ms;
    int max_retries;
    int plain_list;                /* GET phone_numbers with the client's defaults */
} linq_call;

static const char *const call_options[] = {"timeout", "max_retries", "headers", NULL};
static const char *const request_options[] = {
    "timeout", "max_retries", "headers", "body", "query", NULL
};

/* ---------- before any traffic ---------- */

static int header_overridden(lua_State *L, int headers_idx, const char *line)
{
    size_t n = strcspn(line, ":;");
    int found = 0;

    lua_pushnil(L);
    while (!found && lua_next(L, headers_idx)) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);  /* keys were checked to be strings */
        found = klen == n && strncasecmp(k, line, n) == 0;
        lua_pop(L, 1);
    }
    if (found)
        lua_pop(L, 1);  /* the key lua_next left */
    return found;
}

static void append_or_raise(lua_State *L, linq_client *c, const char *line)
{
    struct curl_slist *l = curl_slist_append(c->call_headers, line);
    if (l == NULL)
        luaL_error(L, "linq: out of memory");
    c->call_headers = l;
}

/* The call's header list: its own headers, the client's that it does not override,
 * and Content-Type when there is a body and neither set one.  Kept in the client so
 * a raise frees it. */
static void build_call_headers(lua_State *L, linq_call *k, int headers_idx)
{
    linq_client *c = k->c;
    const struct curl_slist *l;

    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    if (headers_idx) {
        lua_pushnil(L);
        while (lua_next(L, headers_idx)) {
            int kidx = lua_gettop(L) - 1;
            if (!linq_append_header(&c->call_headers, L, kidx, kidx + 1))
                luaL_error(L, "linq: out of memory");
            lua_pop(L, 1);
        }
    }
    for (l = c->base_headers; l != NULL; l = l->next)
        if (!headers_idx || !header_overridden(L, headers_idx, l->data))
            append_or_raise(L, c, l->data);
    if (k->body != NULL && !linq_slist_has(c->call_headers, "Content-Type"))
        append_or_raise(L, c, "Content-Type: application/json");
    k->headers = c->call_headers;
}

/* Reads { timeout=, max_retries=, headers= } and the request extras into k. */
static void read_call_options(lua_State *L, int arg, linq_call *k, const char *const names[],
                              int *headers_idx)
{
    *headers_idx = 0;
    if (lua_isnoneornil(L, arg))
        return;
    luaL_checktype(L, arg, LUA_TTABLE);
    linq_check_option_names(L, arg, arg, names);
    {
        double seconds = linq_opt_number(L, arg, arg, "timeout", -1, 0, 1, 1e9);
        if (seconds > 0)  /* given; -1 is the absent case, which keeps the client's */
            k->timeout_ms = linq_timeout_ms(seconds);
    }
    k->max_retries = linq_opt_integer(L, arg, arg, "max_retries", k->max_retries, 0, 100);
    lua_getfield(L, arg, "headers");
    if (!lua_isnil(L, -1)) {
        linq_check_headers_table(L, arg, lua_gettop(L), "headers");
        *headers_idx = lua_gettop(L);  /* stays on the stack for the call */
    } else {
        lua_pop(L, 1);
    }
}

static void push_escaped(lua_State *L, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    luaL_Buffer b;
    size_t i;

    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            luaL_addchar(&b, (char)ch);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[ch >> 4]);
            luaL_addchar(&b, hex[ch & 15]);
        }
    }
    luaL_pushresult(&b);
}

/* Appends "&key=value" for one scalar at the top of the stack to the string at acc. */
static void add_query_pair(lua_State *L, int arg, int acc, const char *key, size_t klen)
{
    size_t vlen;
    const char *v;

    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN:
        v = lua_toboolean(L, -1) ? "true" : "false";
        vlen = strlen(v);
        break;
    case LUA_TSTRING:
    case LUA_TNUMBER:
        lua_pushvalue(L, -1);
        v = lua_tolstring(L, -1, &vlen);
        lua_replace(L, -2);
        break;
    default:
        luaL_argerror(L, arg, lua_pushfstring(L, "query '%s' must be a string, number, boolean "
                                                 "or a list of them, got a %s",
                                              key, luaL_typename(L, -1)));
        return;
    }
    lua_pushvalue(L, acc);
    lua_pushstring(L, lua_rawlen(L, acc) ? "&" : "");
    push_escaped(L, key, klen);
    lua_pushliteral(L, "=");
    push_escaped(L, v, vlen);
    lua_concat(L, 5);
    lua_replace(L, acc);
}

/* Byte order of two strings that may hold NULs. */
static int name_less(lua_State *L, int a, int b)
{
    size_t la, lb;
    const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
    int d = memcmp(sa, sb, la < lb ? la : lb);
    return d < 0 || (d == 0 && la < lb);
}

/* Sorts the n strings of the array at idx: an insertion sort, as query tables are
 * small, and no reliance on a global table.sort that an embedder may not have. */
static void sort_names(lua_State *L, int idx, int n)
{
    int i, j;

    for (i = 2; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        for (j = i - 1; j >= 1; j--) {
            lua_rawgeti(L, idx, j);
            if (!name_less(L, -2, -1)) {
                lua_pop(L, 1);
                break;
            }
            lua_rawseti(L, idx, j + 1);
        }
        lua_rawseti(L, idx, j + 1);
    }
}

/* Pushes the encoded query string, keys in sorted order so a URL is reproducible. */
static void push_query(lua_State *L, int arg, int qidx)
{
    int keys, acc, i, n = 0;

    luaL_argcheck(L, lua_type(L, qidx) == LUA_TTABLE, arg, "option 'query' must be a table");
    lua_newtable(L);
    keys = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, qidx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, "query names must be strings");
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    sort_names(L, keys, n);

    lua_pushliteral(L, "");
    acc = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        size_t klen;
        const char *key;
        lua_rawgeti(L, keys, i);
        key = lua_tolstring(L, -1, &klen);
        lua_pushvalue(L, -1);
        lua_rawget(L, qidx);
        if (lua_type(L, -1) == LUA_TTABLE) {
            int list = lua_gettop(L), j, len = (int)lua_rawlen(L, list);
            for (j = 1; j <= len; j++) {
                lua_rawgeti(L, list, j);
                add_query_pair(L, arg, acc, key, klen);
                lua_pop(L, 1);
            }
        } else {
            add_query_pair(L, arg, acc, key, klen);
        }
        lua_pop(L, 2);
    }
    lua_remove(L, keys);
}

static const char *check_method(lua_State *L, int arg)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    size_t len, i;
    const char *m = luaL_checklstring(L, arg, &len);
    char upper[8];

    if (len < sizeof upper) {
        for (i = 0; i <= len; i++)
            upper[i] = (char)toupper((unsigned char)m[i]);
        for (i = 0; methods[i] != NULL; i++)
            if (strcmp(upper, methods[i]) == 0)
                return methods[i];
    }
    luaL_argerror(L, arg, lua_pushfstring(L, "HTTP method must be GET, POST, PUT, PATCH or "
                                             "DELETE, got '%s'", m));
    return NULL;
}

static void check_path(lua_State *L, int arg, const char *path, size_t len)
{
    if (len == 0)
        luaL_argerror(L, arg, "path is empty");
    if (linq_has_control_char(path, len) || memchr(path, ' ', len))
        luaL_argerror(L, arg, "path contains a space or a control character (CR, LF, NUL, ...)");
    if (memchr(path, '#', len) || strstr(path, "://"))
        luaL_argerror(L, arg, "path must be a path relative to base_url, such as "
                              "'/v3/phone_numbers'");
}

/* ---------- the attempts, under lua_pcall ---------- */

static double next_random(linq_client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (double)((c->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static int configure(linq_call *k)
{
    linq_client *c = k->c;
    CURL *h = c->curl;
    CURLcode rc;

    if (k->plain_list && c->list_ready)
        return 1;  /* the handle is already set for exactly this */
    c->list_ready = 0;
    rc = curl_easy_setopt(h, CURLOPT_URL, k->url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, k->headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, k->timeout_ms);
    if (rc != CURLE_OK)
        return 0;
    if (k->body == NULL && (strcmp(k->method, "GET") == 0 || strcmp(k->method, "DELETE") == 0)) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(k->body ? k->body_len : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body ? k->body : "");
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                     strcmp(k->method, "GET") == 0 || strcmp(k->method, "POST") == 0
                         ? NULL : k->method);
    c->list_ready = k->plain_list;
    return 1;
}

static int raise_failure(lua_State *L, linq_call *k, linq_failure *f, int decoded_idx)
{
    linq_push_error(L, 3, k->c, f, decoded_idx);
    return lua_error(L);
}

/* Error bodies are decoded only when they look like JSON: an HTML page is not. */
static int decode_error_body(lua_State *L, const linq_response *r)
{
    size_t i = 0;

    while (i < r->body.len && isspace((unsigned char)r->body.data[i]))
        i++;
    if (i == r->body.len || r->body.data[i] != '{')
        return 0;
    lua_pushvalue(L, 2);
    lua_pushlstring(L, r->body.data, r->body.len);
    lua_call(L, 1, 1);
    return lua_gettop(L);
}

/* Arguments: the linq_call (light userdata), the JSON decoder, the error metatable. */
static int perform_call(lua_State *L)
{
    linq_call *k = lua_touserdata(L, 1);
    linq_client *c = k->c;
    linq_failure f;
    double waited = 0;
    long status = 0;
    int attempt;

    if (!configure(k))
        return luaL_error(L, "linq: out of memory setting up the request");
    for (attempt = 1;; attempt++) {
        CURLcode rc;
        int retryable;

        linq_response_reset(&c->resp);
        c->errbuf[0] = '\0';
        rc = curl_easy_perform(c->curl);
        status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);

        memset(&f, 0, sizeof f);
        f.attempts = attempt;
        if (rc == CURLE_OK && status >= 200 && status < 300)
            break;
        if (c->resp.too_large) {
            f.type = "APIResponseValidationError";
            f.status = status;
            f.message = c->resp.too_large == 2
                ? "the response headers are larger than 1 MiB"
                : "the response body is larger than max_body_size";
            f.waited = waited;
            return raise_failure(L, k, &f, 0);
        }
        if (rc != CURLE_OK) {
            f.type = rc == CURLE_OPERATION_TIMEDOUT ? "APITimeoutError" : "APIConnectionError";
            f.curl_code = (int)rc;
            f.message = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
            status = 0;
            retryable = linq_curl_code_retryable(rc);
        } else {
            f.type = linq_error_type_for_status(status);
            f.status = status;
            retryable = linq_status_retryable(status,
                                              linq_response_header(&c->resp, "x-should-retry"));
        }
        if (!retryable || attempt > k->max_retries) {
            f.waited = waited;
            return raise_failure(L, k, &f, status ? decode_error_body(L, &c->resp) : 0);
        }
        {
            double delay = status ? linq_server_delay(
                                        linq_response_header(&c->resp, "retry-after-ms"),
                                        linq_response_header(&c->resp, "retry-after"),
                                        time(NULL))
                                  : -1;
            if (delay < 0)
                delay = linq_backoff_delay(attempt - 1, next_random(c));
            if (delay > c->max_retry_delay)
                delay = c->max_retry_delay;
            linq_sleep(delay);
            waited += delay;
        }
    }

    /* A 2xx reply. */
    if (status == 204 || status == 205) {
        lua_newtable(L);
    } else {
        memset(&f, 0, sizeof f);
        f.type = "APIResponseValidationError";
        f.status = status;
        f.attempts = attempt;
        f.waited = waited;
        if (c->resp.body.len == 0) {
            f.message = "the response body is empty; JSON was expected";
            return raise_failure(L, k, &f, 0);
        }
        lua_pushlstring(L, c->resp.body.data, c->resp.body.len);
        /* Lua has its own copy now: a large buffer goes before the decode, which
         * is when the most memory is in use. */
        linq_buf_release_if_larger(&c->resp.body, LINQ_KEEP_BUFFER_BYTES);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -2);
        lua_call(L, 1, 2);                    /* body, decoded or nil, error */
        if (lua_isnil(L, -2)) {
            if (c->resp.body.data == NULL) {  /* released: the excerpt needs its start */
                size_t len;
                const char *body = lua_tolstring(L, -3, &len);
                linq_buf_append(&c->resp.body, body, len < 4096 ? len : 4096);
            }
            lua_pushfstring(L, "the response body is not valid JSON (%s)",
                            lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
            f.message = lua_tostring(L, -1);
            return raise_failure(L, k, &f, 0);
        }
        lua_pop(L, 1);
        lua_remove(L, -2);
    }
    linq_push_meta(L, c, status, attempt, waited);
    return 2;
}

/* Runs perform_call protected, then resets what the call held, then re-raises. */
static int run_call(lua_State *L, linq_call *k)
{
    linq_client *c = k->c;
    int st;

    lua_pushcfunction(L, perform_call);
    lua_pushlightuserdata(L, k);
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_DECODE));
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_ERROR_MT));
    c->busy = 1;
    st = lua_pcall(L, 3, 2, 0);
    c->busy = 0;
    if (c->call_headers != NULL) {
        /* The handle must not keep a pointer to a list we free. */
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->base_headers);
        curl_slist_free_all(c->call_headers);
        c->call_headers = NULL;
        c->list_ready = 0;
    }
    linq_buf_release_if_larger(&c->resp.body, LINQ_KEEP_BUFFER_BYTES);
    if (st != LUA_OK)
        return lua_error(L);
    return 2;
}

static linq_client *check_idle_client(lua_State *L)
{
    linq_client *c = linq_check_client(L, 1);
    if (c->busy)
        luaL_argerror(L, 1, "the linq client is busy with a call (re-entrant use)");
    return c;
}

static void init_call(linq_call *k, linq_client *c, const char *method, const char *url)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->method = method;
    k->url = url;
    k->headers = c->base_headers;
    k->timeout_ms = c->timeout_ms;
    k->max_retries = c->max_retries;
}

int linq_client_phone_numbers(lua_State *L)
{
    linq_client *c = check_idle_client(L);
    linq_call k;
    int headers_idx;

    init_call(&k, c, "GET", c->list_url);
    read_call_options(L, 2, &k, call_options, &headers_idx);
    if (headers_idx)
        build_call_headers(L, &k, headers_idx);
    k.plain_list = k.headers == c->base_headers && k.timeout_ms == c->timeout_ms;
    return run_call(L, &k);
}

int linq_client_request(lua_State *L)
{
    linq_client *c = check_idle_client(L);
    const char *method = check_method(L, 2);
    size_t path_len;
    const char *path = luaL_checklstring(L, 3, &path_len);
    linq_call k;
    int headers_idx, url_parts;

    check_path(L, 3, path, path_len);
    lua_settop(L, 4);
    init_call(&k, c, method, NULL);
    read_call_options(L, 4, &k, request_options, &headers_idx);

    /* The URL: base, exactly one slash, path, query. */
    lua_pushstring(L, c->base_url);
    lua_pushstring(L, path[0] == '/' ? "" : "/");
    lua_pushvalue(L, 3);
    url_parts = 3;
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "query");
        if (!lua_isnil(L, -1)) {
            int q = lua_gettop(L);
            push_query(L, 4, q);
            lua_remove(L, q);
            if (lua_rawlen(L, -1) > 0) {
                lua_pushstring(L, memchr(path, '?', path_len) ? "&" : "?");
                lua_insert(L, -2);
                url_parts += 2;
            } else {
                lua_pop(L, 1);
            }
        } else {
            lua_pop(L, 1);
        }
    }
    lua_concat(L, url_parts);
    k.url = lua_tostring(L, -1);  /* anchored on this stack until we return */

    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "body");
        if (lua_type(L, -1) == LUA_TSTRING) {
            k.body = lua_tolstring(L, -1, &k.body_len);  /* already JSON: sent as it is */
        } else if (!lua_isnil(L, -1)) {
            lua_pushvalue(L, lua_upvalueindex(LINQ_UV_ENCODE));
            lua_insert(L, -2);
            lua_call(L, 1, 2);
            if (lua_isnil(L, -2))
                luaL_argerror(L, 4, lua_pushfstring(L, "option 'body' cannot be encoded as "
                                                       "JSON: %s", lua_tostring(L, -1)));
            lua_pop(L, 1);
            k.body = lua_tolstring(L, -1, &k.body_len);
        } else {
            lua_pop(L, 1);
        }
    }
    if (headers_idx || k.body != NULL)
        build_call_headers(L, &k, headers_idx);
    return run_call(L, &k);
}
