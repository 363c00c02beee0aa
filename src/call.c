/* One API call: its options checked before any traffic, then attempts and retries
 * under a protected call, then the decoded body and a meta table (or an error).
 *
 * Ownership: everything malloc'd lives in the client userdata, and the attempts run
 * inside lua_pcall, so a Lua error at any point (a bad option, out of memory while
 * building tables, the error object itself) leaves nothing owned only by a C local,
 * and the client's busy flag and per-call header list are always reset. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linq.h"

static const char *const request_options[] = {
    "timeout", "max_retries", "headers", "body", "query", "params", NULL
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

/* The line that stops libcurl adding "Content-Type: application/x-www-form-urlencoded"
 * to a POST, PUT or PATCH without a body: the API gets no Content-Type then, as the
 * official SDKs send it. */
static const char no_content_type[] = "Content-Type:";
static const char json_content_type[] = "Content-Type: application/json";

static const char *content_type_line(const linq_call *k)
{
    if (k->c->has_content_type)
        return NULL;
    if (k->body != NULL)
        return json_content_type;
    if (strcmp(k->method, "GET") == 0 || strcmp(k->method, "DELETE") == 0)
        return NULL;
    return no_content_type;
}

/* A call with headers of its own: one list of its own headers, then the client's,
 * Accept, Content-Type and Idempotency-Key that it does not override.  Kept in the
 * client so a raise frees it. */
static void build_call_headers(lua_State *L, linq_call *k)
{
    linq_client *c = k->c;
    const struct curl_slist *l;
    const char *extra[2];
    int i, headers_idx = k->headers_idx;

    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    lua_pushnil(L);
    while (lua_next(L, headers_idx)) {
        int kidx = lua_gettop(L) - 1;
        if (!linq_append_header(&c->call_headers, L, kidx, kidx + 1))
            luaL_error(L, "linq: out of memory");
        lua_pop(L, 1);
    }
    for (l = c->accept_list[k->accept]; l != NULL; l = l->next)
        if (!header_overridden(L, headers_idx, l->data))
            append_or_raise(L, c, l->data);
    extra[0] = content_type_line(k);
    extra[1] = k->idempotency_line;
    for (i = 0; i < 2; i++)
        if (extra[i] != NULL && !header_overridden(L, headers_idx, extra[i]))
            append_or_raise(L, c, extra[i]);
    k->headers = c->call_headers;
}

void linq_assemble_headers(lua_State *L, linq_call *k)
{
    struct curl_slist *head = k->c->accept_list[k->accept];
    const char *ctype;
    int n = 0;

    if (k->headers_idx) {
        build_call_headers(L, k);
        return;
    }
    /* The common case allocates nothing: the call's lines are nodes in the call,
     * linked in front of the client's list (libcurl only reads it). */
    if ((ctype = content_type_line(k)) != NULL) {
        k->node[n].data = (char *)ctype;
        k->node[n].next = head;
        head = &k->node[n++];
    }
    if (k->idempotency_line != NULL) {
        k->node[n].data = (char *)k->idempotency_line;
        k->node[n].next = head;
        head = &k->node[n++];
    }
    k->headers = head;
}

void linq_read_call_options(lua_State *L, int arg, linq_call *k, const char *const names[])
{
    static const char *const call_options[] = {"timeout", "max_retries", "headers", NULL};

    k->headers_idx = 0;
    if (lua_isnoneornil(L, arg))
        return;
    if (lua_type(L, arg) != LUA_TTABLE)
        linq_argerror(L, arg, lua_pushfstring(L, "table expected, got %s", luaL_typename(L, arg)));
    if (names == NULL)
        names = call_options;
    linq_copy_options(L, arg, names);
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
        k->headers_idx = lua_gettop(L);  /* stays on the stack for the call */
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
        linq_argerror(L, arg, lua_pushfstring(L, "query '%s' must be a string, number, boolean "
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

    if (lua_type(L, qidx) != LUA_TTABLE)
        linq_argerror(L, arg, "option 'query' must be a table");
    lua_newtable(L);
    keys = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, qidx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            linq_argerror(L, arg, "query names must be strings");
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
            int list = lua_gettop(L), j, len = (int)lua_rawlen(L, list), count = 0;
            lua_pushnil(L);
            while (lua_next(L, list)) {
                lua_pop(L, 1);
                count++;
            }
            if (count != len)
                linq_argerror(L, arg, lua_pushfstring(L, "query '%s' must be a string, number, "
                                                         "boolean or a list of them, got a "
                                                         "table with named keys", key));
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
    linq_argerror(L, arg, lua_pushfstring(L, "HTTP method must be GET, POST, PUT, PATCH or "
                                             "DELETE, got '%s'", m));
    return NULL;
}

/* "." or "..", each dot possibly written %2e. */
static int dot_segment(const char *s, size_t n)
{
    size_t i = 0, dots = 0;

    while (i < n) {
        if (s[i] == '.') {
            i++;
        } else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 32) == 'e') {
            i += 3;
        } else {
            return 0;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

static void check_path(lua_State *L, int arg, const char *path, size_t len)
{
    if (len == 0)
        linq_argerror(L, arg, "path is empty");
    if (linq_has_control_char(path, len) || memchr(path, ' ', len))
        linq_argerror(L, arg, "path contains a space or a control character (CR, LF, NUL, ...)");
    if (memchr(path, '#', len) || strstr(path, "://"))
        linq_argerror(L, arg, "path must be a path relative to base_url, such as "
                              "'/v3/phone_numbers'");
    {
        /* A "." or ".." segment would climb out of base_url (libcurl resolves them),
         * taking the key to another path: refused, escaped or not. */
        size_t end = strcspn(path, "?"), i = 0;
        while (i <= end) {
            size_t seg = i;
            while (i < end && path[i] != '/')
                i++;
            if (dot_segment(path + seg, i - seg))
                linq_argerror(L, arg, "path has a '.' or '..' segment, which would leave base_url");
            i++;
        }
    }
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

    if (k->ready_key != NULL && c->ready == k->ready_key)
        return 1;  /* the handle is already set for exactly this */
    c->ready = NULL;
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
    c->ready = k->ready_key;
    return 1;
}

/* Where perform_call (and an exchange's result) find the decoder and the error
 * metatable on the stack. */
#define DECODER_IDX 2
#define ERROR_MT_IDX 3

static int raise_failure(lua_State *L, const linq_call *k, linq_failure *f, int decoded_idx)
{
    f->idempotency_key = k->idempotency_key;
    linq_push_error(L, ERROR_MT_IDX, k->c, f, decoded_idx);
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
    lua_pushvalue(L, DECODER_IDX);
    lua_pushlstring(L, r->body.data, r->body.len);
    lua_call(L, 1, 1);
    return lua_gettop(L);
}

/* The wait before the next attempt: the server's delay when it gave one, else
 * the SDKs' backoff; never more than the client's cap. */
static double retry_delay(linq_client *c, long status, int attempt)
{
    double delay = status ? linq_server_delay(linq_response_header(&c->resp, "retry-after-ms"),
                                              linq_response_header(&c->resp, "retry-after"),
                                              time(NULL))
                          : -1;
    if (delay < 0)
        delay = linq_backoff_delay(attempt - 1, next_random(c));
    return delay > c->max_retry_delay ? c->max_retry_delay : delay;
}

int linq_judge_attempt(linq_client *c, int attempt, int max_retries, int transport_code,
                       const char *transport_message, long status, linq_failure *f,
                       double *delay)
{
    int retryable;

    memset(f, 0, sizeof *f);
    f->attempts = attempt;
    if (transport_code == CURLE_OK && status >= 200 && status < 300)
        return LINQ_ATTEMPT_OK;
    if (c->resp.too_large) {
        f->type = "APIResponseValidationError";
        f->status = status;
        f->message = c->resp.too_large == LINQ_TOO_LARGE_BODY
                         ? "the response body is larger than max_body_size"
                     : c->resp.too_large == LINQ_TOO_LARGE_HEADER_LINE
                         ? "a response header line is longer than 100 KiB"
                         : "the response headers are larger than 256 KiB";
        return LINQ_ATTEMPT_FAILED;
    }
    if (transport_code != CURLE_OK) {
        f->type = transport_code == CURLE_OPERATION_TIMEDOUT ? "APITimeoutError"
                                                             : "APIConnectionError";
        f->curl_code = transport_code;
        f->message = transport_message;
        if (c->proxy_note != NULL && transport_message != NULL) {
            size_t n = strlen(transport_message) + strlen(c->proxy_note) + 1;
            char *m = realloc(c->message, n);
            if (m != NULL) {  /* else the message goes without its note */
                c->message = m;
                snprintf(m, n, "%s%s", transport_message, c->proxy_note);
                f->message = m;
            }
        }
        retryable = linq_curl_code_retryable((CURLcode)transport_code);
        status = 0;
    } else {
        f->type = linq_error_type_for_status(status);
        f->status = status;
        retryable = linq_status_retryable(status, linq_response_header(&c->resp,
                                                                       "x-should-retry"));
    }
    if (!retryable || attempt > max_retries)
        return LINQ_ATTEMPT_FAILED;
    *delay = retry_delay(c, status, attempt);
    return LINQ_ATTEMPT_RETRY;
}

void linq_push_success(lua_State *L, const linq_call *k, long status, int attempt, double waited)
{
    linq_client *c = k->c;
    linq_failure f;
    int overflow;

    if ((k->op != NULL && k->op->is_void) || k->no_result || status == 204 || status == 205) {
        lua_newtable(L);
        return;
    }
    memset(&f, 0, sizeof f);
    f.type = "APIResponseValidationError";
    f.status = status;
    f.attempts = attempt;
    f.waited = waited;
    if (c->resp.body.len == 0) {
        f.message = "the response body is empty; JSON was expected";
        raise_failure(L, k, &f, 0);
    }
    linq_json_mend_surrogates(c->resp.body.data, c->resp.body.len);
    overflow = linq_json_may_overflow(c->resp.body.data, c->resp.body.len);
    lua_pushlstring(L, c->resp.body.data, c->resp.body.len);
    /* Lua has its own copy now: a large buffer goes before the decode, which is
     * when the most memory is in use. */
    linq_buf_release_if_larger(&c->resp.body, LINQ_KEEP_BUFFER_BYTES);
    lua_pushvalue(L, DECODER_IDX);
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
        raise_failure(L, k, &f, 0);
    }
    lua_pop(L, 1);
    lua_remove(L, -2);
    if (lua_type(L, -1) != LUA_TTABLE) {
        f.message = "the response body is JSON but not an object or an array";
        raise_failure(L, k, &f, 0);
    }
    if (overflow && !linq_json_all_finite(L, -1)) {
        f.message = "the response body has a number too large for a double";
        raise_failure(L, k, &f, 0);
    }
    linq_json_integers(L, lua_gettop(L));
}

int linq_finish_call(lua_State *L, const linq_call *k, int verdict, linq_failure *f, long status,
                     double waited)
{
    if (verdict != LINQ_ATTEMPT_OK) {
        f->waited = waited;
        return raise_failure(L, k, f, f->status ? decode_error_body(L, &k->c->resp) : 0);
    }
    linq_push_success(L, k, status, f->attempts, waited);
    linq_push_meta(L, k, status, f->attempts, waited, lua_gettop(L));
    return 2;
}

int linq_curl_outcome(linq_response *r, CURLcode rc, const char *errbuf, const char **message)
{
    *message = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_ABORTED_BY_CALLBACK && r->resend_refused) {
        *message = "the server closed a reused connection without replying; a POST or PATCH "
                   "is not sent again within one attempt, as the server may have acted on it";
        return CURLE_GOT_NOTHING;
    }
    if (rc == CURLE_OUT_OF_MEMORY && r->in_header_block) {
        /* How libcurl refuses a header line over CURL_MAX_HTTP_HEADER: the line
         * never reaches linq_on_header. */
        r->too_large = LINQ_TOO_LARGE_HEADER_LINE;
        return rc;
    }
    if (rc == CURLE_COULDNT_CONNECT && (r->socket_errno == EMFILE || r->socket_errno == ENFILE))
        *message = r->socket_errno == EMFILE
                       ? "no socket could be opened: the process has too many open files "
                         "(EMFILE); close clients you no longer need, or raise `ulimit -n`"
                       : "no socket could be opened: the system has too many open files "
                         "(ENFILE)";
    return rc;
}

/* Arguments: the linq_call (light userdata), the JSON decoder, the error metatable. */
static int perform_call(lua_State *L)
{
    linq_call *k = lua_touserdata(L, 1);
    linq_client *c = k->c;
    linq_failure f;
    double waited = 0, delay = 0;
    long status = 0;
    int attempt, verdict;
    CURL *h = k->easy ? k->easy : c->curl;

    if (k->easy == NULL && !configure(k))
        return luaL_error(L, "linq: out of memory setting up the request");
    c->resp.send_once = strcmp(k->method, "POST") == 0 || strcmp(k->method, "PATCH") == 0;
    for (attempt = 1;; attempt++) {
        const char *message;
        int rc;

        if (k->rewind != NULL && !k->rewind(k->rewind_data))
            return luaL_error(L, "linq: could not rewind the upload for another attempt");
        linq_response_reset(&c->resp);
        c->errbuf[0] = '\0';
        rc = linq_curl_outcome(&c->resp, curl_easy_perform(h), c->errbuf, &message);
        status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        verdict = linq_judge_attempt(c, attempt, k->max_retries, rc, message, status, &f, &delay);
        if (c->log_level >= LINQ_LOG_INFO) {
            linq_attempt_log a;
            curl_off_t us = -1;
            curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
            memset(&a, 0, sizeof a);
            a.method = k->method;
            a.url = k->url;
            a.url_without_query = k->easy != NULL;  /* the upload's presigned URL */
            a.message = f.message;
            a.attempt = attempt;
            a.max_retries = k->max_retries;
            a.transport_code = rc;
            a.verdict = verdict;
            a.status = status;
            a.delay = delay;
            a.elapsed_ms = us >= 0 ? (long)(us / 1000) : -1;
            linq_log_attempt(L, c, &a);
        }
        if (verdict != LINQ_ATTEMPT_RETRY)
            break;
        if (!linq_sleep(delay)) {
            verdict = LINQ_ATTEMPT_FAILED;  /* interrupted: no more attempts */
            f.interrupted = 1;
            break;
        }
        waited += delay;
    }
    return linq_finish_call(L, k, verdict, &f, status, waited);
}

/* Runs perform_call protected, then resets what the call held, then re-raises. */
int linq_run_call(lua_State *L, linq_call *k)
{
    linq_client *c = k->c;
    int st;

    if (k->easy == NULL && k->headers == NULL)
        linq_assemble_headers(L, k);
    lua_pushcfunction(L, perform_call);
    lua_pushlightuserdata(L, k);
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_DECODE));
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_ERROR_MT));
    c->busy = 1;
    st = lua_pcall(L, 3, 2, 0);
    c->busy = 0;
    if (k->easy == NULL && k->headers != c->accept_list[k->accept]) {
        /* The handle must not keep a pointer to the call's nodes or a list we free. */
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->accept_list[LINQ_ACCEPT_JSON]);
        curl_slist_free_all(c->call_headers);
        c->call_headers = NULL;
        c->ready = NULL;
    }
    linq_buf_release_if_larger(&c->resp.body, LINQ_KEEP_BUFFER_BYTES);
    linq_buf_release_if_larger(&c->body, LINQ_KEEP_BUFFER_BYTES);
    if (c->close_pending)
        linq_client_free(L, c);  /* a __close that came during the call */
    if (st != LUA_OK)
        return lua_error(L);
    return 2;
}

linq_client *linq_check_idle_client(lua_State *L)
{
    linq_client *c = linq_check_client(L, 1);
    if (c->busy)
        linq_argerror(L, 1, "the linq client is busy with a call (re-entrant use)");
    return c;
}

void linq_init_call(linq_call *k, linq_client *c, const char *method)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->method = method;
    k->timeout_ms = c->timeout_ms;
    k->max_retries = c->max_retries;
}

/* Appends "{name}" placeholders of path expanded from the params table at pidx. */
static void add_request_path(lua_State *L, linq_buf *url, const char *path, size_t len, int pidx)
{
    const char *p = path, *end = path + len;
    int used = 0;

    while (p < end) {
        const char *open = pidx ? memchr(p, '{', (size_t)(end - p)) : NULL, *close;
        if (open == NULL || (close = memchr(open, '}', (size_t)(end - open))) == NULL) {
            if (!linq_buf_append(url, p, (size_t)(end - p)))
                luaL_error(L, "linq: out of memory");
            break;
        }
        if (!linq_buf_append(url, p, (size_t)(open - p)))
            luaL_error(L, "linq: out of memory");
        lua_pushlstring(L, open + 1, (size_t)(close - open - 1));
        lua_rawget(L, pidx);
        if (lua_isnil(L, -1)) {
            lua_pushlstring(L, open, (size_t)(close - open + 1));
            linq_argerror(L, 4, lua_pushfstring(L, "option 'params' has no value for '%s'",
                                                lua_tostring(L, -1)));
        }
        linq_add_path_param(L, 4, url, open + 1, (size_t)(close - open - 1), lua_gettop(L));
        lua_pop(L, 1);
        used++;
        p = close + 1;
    }
    if (pidx) {
        int n = 0;
        lua_pushnil(L);
        while (lua_next(L, pidx)) {
            lua_pop(L, 1);
            n++;
        }
        if (n != used)
            linq_argerror(L, 4, "option 'params' names a parameter that is not in the path");
    }
}

int linq_client_request(lua_State *L)
{
    linq_client *c = linq_check_idle_client(L);
    const char *method = check_method(L, 2);
    size_t path_len;
    const char *path = luaL_checklstring(L, 3, &path_len);
    linq_call k;
    int pidx = 0;

    check_path(L, 3, path, path_len);
    lua_settop(L, 4);
    linq_init_call(&k, c, method);
    linq_read_call_options(L, 4, &k, request_options);

    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "params");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1))
                linq_argerror(L, 4, "option 'params' must be a table");
            pidx = lua_gettop(L);
        } else {
            lua_pop(L, 1);
        }
    }
    /* The URL: base, exactly one slash, path, query. */
    c->url.len = 0;
    if (!linq_buf_append(&c->url, c->base_url, c->base_url_len)
        || (path[0] != '/' && !linq_buf_append(&c->url, "/", 1)))
        return luaL_error(L, "linq: out of memory");
    add_request_path(L, &c->url, path, path_len, pidx);
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "query");
        if (!lua_isnil(L, -1)) {
            size_t qlen;
            const char *q;
            push_query(L, 4, lua_gettop(L));
            q = lua_tolstring(L, -1, &qlen);
            if (qlen > 0 && (!linq_buf_append(&c->url, memchr(path, '?', path_len) ? "&" : "?", 1)
                             || !linq_buf_append(&c->url, q, qlen)))
                return luaL_error(L, "linq: out of memory");
        }
        lua_pop(L, 1);
    }
    k.url = c->url.data;
    if (c->url.len > LINQ_MAX_URL_BYTES)
        linq_argerror(L, 3, "the URL with its query is longer than libcurl's 8 MB limit");

    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, 4, "body");
        if (!lua_isnil(L, -1) && strcmp(method, "GET") == 0)
            linq_argerror(L, 4, "a GET request cannot have a body (option 'body'); use query, "
                                "or POST");
        if (lua_type(L, -1) == LUA_TSTRING) {
            k.body = lua_tolstring(L, -1, &k.body_len);  /* already JSON: sent as it is */
        } else if (!lua_isnil(L, -1)) {
            char err[160];
            c->body.len = 0;
            if (!linq_json_encode(L, lua_gettop(L), &c->body, &linq_empty_array_sentinel, err,
                                  sizeof err))
                linq_argerror(L, 4, lua_pushfstring(L, "option 'body' cannot be encoded as "
                                                       "JSON: %s", err));
            k.body = c->body.data;
            k.body_len = c->body.len;
        }
    }
    if (linq_stage_of_caller(L) != LINQ_STAGE_NONE)  /* another transport moves the bytes */
        return linq_exchange_push(L, &k, linq_stage_of_caller(L));
    return linq_run_call(L, &k);
}
