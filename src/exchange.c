/* One API call as a resumable state machine, for transports that move the bytes
 * themselves (nginx's cosockets; libcurl's multi interface next).  The C core still
 * does all the work: the request is built here from the same operation table and
 * checks as a libcurl call, the reply is parsed with http-parser, and each attempt is
 * judged, retried and turned into res, meta or an error by the same functions as
 * call.c's.  The transport only connects, sends ex:request(), feeds what it reads
 * to ex:feed(), sleeps when told to, and asks ex:result().
 *
 *   ex:target()          -> host, port, tls         where to connect
 *   ex:request()         -> the bytes of an attempt
 *   ex:timeout()         -> seconds an attempt may take, from its start; and the
 *                           seconds its connect may take (nil: no limit of its own)
 *   ex:feed(bytes)       -> "more" | "done" | "retry", delay | "failed"   ("" = the peer closed)
 *   ex:fail(kind, msg)   -> "retry", delay | "failed"   (kind: connect, send, receive, timeout,
 *                                                        resolve, tls, config)
 *   ex:keepalive()       -> whether the connection may carry another request
 *   ex:result()          -> res, meta, or raises the call's error
 *
 * An exchange owns a copy of everything it needs (the key, to redact it; the reply),
 * so it does not depend on its client staying open, and many run at once. */
#include <http_parser.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

/* ---------- building the request ---------- */

static int add(linq_buf *b, const char *s, size_t n)
{
    return linq_buf_append(b, s, n);
}

static int adds(linq_buf *b, const char *s)
{
    return linq_buf_append(b, s, strlen(s));
}

/* "Name: value" lines of libcurl's header list, as HTTP/1.1 sends them: curl's
 * "Name;" is an empty value, and "Name:" asks curl to drop a header of its own. */
static int add_header_lines(linq_buf *b, const struct curl_slist *l)
{
    for (; l != NULL; l = l->next) {
        size_t n = strlen(l->data);
        if (n > 0 && l->data[n - 1] == ':')
            continue;
        if (n > 0 && l->data[n - 1] == ';') {
            if (!add(b, l->data, n - 1) || !add(b, ":\r\n", 3))
                return 0;
        } else if (!add(b, l->data, n) || !add(b, "\r\n", 2)) {
            return 0;
        }
    }
    return 1;
}

/* Splits the URL (checked at linq.new: http or https, a host, no credentials) and
 * writes the request line and headers. */
static int build_request(lua_State *L, linq_exchange *ex, const linq_call *k)
{
    struct http_parser_url u;
    const char *url = k->url, *authority = strstr(url, "://") + 3, *target;
    size_t authority_len = strcspn(authority, "/?#");
    char len[32];

    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)))
        return luaL_error(L, "linq: cannot parse the URL of the call");
    ex->tls = u.field_data[UF_SCHEMA].len == 5;  /* "https" */
    ex->port = (u.field_set & (1 << UF_PORT)) ? u.port : ex->tls ? 443 : 80;
    ex->host = malloc((size_t)u.field_data[UF_HOST].len + 1);
    if (ex->host == NULL)
        return luaL_error(L, "linq: out of memory");
    memcpy(ex->host, url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    ex->host[u.field_data[UF_HOST].len] = '\0';

    target = authority + authority_len;
    snprintf(len, sizeof len, "%lu",
             (unsigned long)(k->body || k->body_streamed ? k->body_len : 0));
    if (!adds(&ex->request, k->method) || !add(&ex->request, " ", 1)
        || (*target != '/' && !add(&ex->request, "/", 1))
        || !adds(&ex->request, target)
        || !add(&ex->request, " HTTP/1.1\r\nHost: ", 17)
        || !add(&ex->request, authority, authority_len)
        || !add(&ex->request, "\r\n", 2)
        || !add_header_lines(&ex->request, k->headers))
        return luaL_error(L, "linq: out of memory");
    if ((k->body != NULL || k->body_streamed || strcmp(k->method, "GET") != 0)
        && (!add(&ex->request, "Content-Length: ", 16) || !adds(&ex->request, len)
            || !add(&ex->request, "\r\n", 2)))
        return luaL_error(L, "linq: out of memory");
    if (!add(&ex->request, "\r\n", 2) || (k->body && !add(&ex->request, k->body, k->body_len)))
        return luaL_error(L, "linq: out of memory");
    return 0;
}

/* ---------- reading the reply ---------- */

static int commit_header(linq_exchange *ex)
{
    linq_buf *h = &ex->view.resp.headers;
    size_t i, vstart = 0, vend = ex->value.len;

    if (ex->field.len == 0)
        return 0;
    while (vstart < vend && (ex->value.data[vstart] == ' ' || ex->value.data[vstart] == '\t'))
        vstart++;
    while (vend > vstart && (ex->value.data[vend - 1] == ' ' || ex->value.data[vend - 1] == '\t'))
        vend--;
    if (memchr(ex->field.data, '\0', ex->field.len)
        || (vend > vstart && memchr(ex->value.data + vstart, '\0', vend - vstart))) {
        ex->field.len = ex->value.len = 0;  /* the store is NUL-separated */
        return 0;
    }
    if (!linq_buf_reserve(h, ex->field.len + (vend - vstart) + 2))
        return -1;
    for (i = 0; i < ex->field.len; i++) {
        char ch = ex->field.data[i];
        h->data[h->len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    h->data[h->len++] = '\0';
    if (vend > vstart)
        memcpy(h->data + h->len, ex->value.data + vstart, vend - vstart);
    h->len += vend - vstart;
    h->data[h->len++] = '\0';
    ex->field.len = ex->value.len = 0;
    return 0;
}

/* The limits libcurl's transport has (linq.h), counted as the bytes of
 * "name: value\r\n" lines: the same reply fails the same way on every transport. */
static int within_header_limits(linq_exchange *ex, size_t n)
{
    linq_response *r = &ex->view.resp;

    r->header_bytes += n;
    if (ex->field.len + ex->value.len + n + 4 > LINQ_MAX_HEADER_LINE)
        r->too_large = LINQ_TOO_LARGE_HEADER_LINE;
    else if (r->header_bytes > LINQ_MAX_HEADER_BYTES)
        r->too_large = LINQ_TOO_LARGE_HEADERS;
    return !r->too_large;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    linq_exchange *ex = p->data;
    if (ex->headers_complete)
        return 0;  /* a trailer: not a header of the reply */
    if (ex->in_value || ex->field.len == 0)
        ex->view.resp.header_bytes += 4;  /* a new line: its ": " and line end */
    if (ex->in_value && commit_header(ex) != 0)
        return -1;
    ex->in_value = 0;
    if (!within_header_limits(ex, n))
        return -1;
    return linq_buf_append(&ex->field, at, n) ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    linq_exchange *ex = p->data;
    if (ex->headers_complete)
        return 0;
    ex->in_value = 1;
    if (!within_header_limits(ex, n))
        return -1;
    return linq_buf_append(&ex->value, at, n) ? 0 : -1;
}

static int on_headers_complete(http_parser *p)
{
    linq_exchange *ex = p->data;
    linq_response *r = &ex->view.resp;

    if (ex->in_value && commit_header(ex) != 0)
        return -1;
    ex->in_value = 0;
    if (p->status_code >= 100 && p->status_code < 200) {
        r->headers.len = 0;  /* an interim reply: its headers are not the reply's */
        return 0;
    }
    ex->headers_complete = 1;
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX) {
        if (p->content_length > r->max_body) {
            r->too_large = 1;  /* refused before a byte of the body arrives */
            return -1;
        }
        if (!linq_buf_reserve(&r->body, (size_t)p->content_length))
            return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    linq_exchange *ex = p->data;
    linq_response *r = &ex->view.resp;

    if (n > r->max_body - r->body.len) {
        r->too_large = 1;
        return -1;
    }
    return linq_buf_append(&r->body, at, n) ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    linq_exchange *ex = p->data;
    if (p->status_code >= 100 && p->status_code < 200)
        return 0;  /* the real reply follows on the same connection */
    ex->complete = 1;
    return 1;      /* one reply per request: stop here */
}

static const http_parser_settings parser_settings = {
    NULL, NULL, NULL, on_header_field, on_header_value, on_headers_complete, on_body,
    on_message_complete, NULL, NULL
};

static void start_attempt(linq_exchange *ex)
{
    linq_response_reset(&ex->view.resp);
    ex->field.len = ex->value.len = 0;
    ex->in_value = 0;
    ex->complete = 0;
    ex->headers_complete = 0;
    ex->status = 0;
    http_parser_init(&ex->parser, HTTP_RESPONSE);
    ex->parser.data = ex;
}

/* ---------- the verdicts ---------- */

/* Pushes the verdict of an attempt that ended with transport_code (CURLE_OK when a
 * whole reply came) and advances the exchange. */
static int push_verdict(lua_State *L, linq_exchange *ex, int transport_code)
{
    double delay = 0;
    int v;

    /* Decided before a retry resets the parser for the next attempt. */
    ex->reusable = transport_code == CURLE_OK && ex->complete && http_should_keep_alive(&ex->parser);
    v = linq_judge_attempt(&ex->view, ex->attempt, ex->max_retries, transport_code,
                               ex->message, ex->status, &ex->failure, &delay);
    linq_exchange_log(L, ex, transport_code, v, delay, -1);

    switch (v) {
    case LINQ_ATTEMPT_OK:
        ex->state = EX_DONE;
        lua_pushliteral(L, "done");
        return 1;
    case LINQ_ATTEMPT_RETRY:
        ex->attempt++;
        ex->waited += delay;
        start_attempt(ex);
        lua_pushliteral(L, "retry");
        lua_pushnumber(L, delay);
        return 2;
    default:
        ex->state = EX_FAILED;
        lua_pushliteral(L, "failed");
        return 1;
    }
}

static linq_exchange *check_exchange(lua_State *L)
{
    return luaL_checkudata(L, 1, EXCHANGE_MT);
}

static linq_exchange *check_open(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    if (ex->state != EX_SENDING)
        luaL_argerror(L, 1, "the exchange has ended: call result()");
    return ex;
}

static int ex_feed(lua_State *L)
{
    linq_exchange *ex = check_open(L);
    size_t n, used;
    const char *data = luaL_checklstring(L, 2, &n);

    used = http_parser_execute(&ex->parser, &parser_settings, data, n);
    if (ex->complete) {
        ex->status = (long)ex->parser.status_code;
        return push_verdict(L, ex, CURLE_OK);
    }
    if (ex->view.resp.too_large) {
        ex->status = (long)ex->parser.status_code;
        return push_verdict(L, ex, CURLE_OK);  /* judged as too large, never retried */
    }
    if (HTTP_PARSER_ERRNO(&ex->parser) != HPE_OK || (n == 0) || used != n) {
        if (n == 0)
            linq_exchange_say(ex, "the server closed the connection before the reply was "
                                  "complete");
        else
            linq_exchange_say(ex, "the reply is not valid HTTP/1.1 (%s)",
                     http_errno_description(HTTP_PARSER_ERRNO(&ex->parser)));
        return push_verdict(L, ex, n == 0 ? CURLE_RECV_ERROR : CURLE_WEIRD_SERVER_REPLY);
    }
    lua_pushliteral(L, "more");
    return 1;
}

static int ex_fail(lua_State *L)
{
    static const char *const kinds[] = {"connect", "send", "receive", "timeout", "resolve", "tls",
                                        "config", NULL};
    /* As libcurl would have said it, so one function judges both transports; a
     * missing nginx directive ("config") does not fix itself: never retried. */
    static const int codes[] = {CURLE_COULDNT_CONNECT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
                                CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_RESOLVE_HOST,
                                CURLE_PEER_FAILED_VERIFICATION, CURLE_FAILED_INIT};
    linq_exchange *ex = check_open(L);
    int kind = luaL_checkoption(L, 2, NULL, kinds);
    const char *msg = luaL_optstring(L, 3, "");

    linq_exchange_say(ex, "%s", msg);
    ex->status = 0;
    return push_verdict(L, ex, codes[kind]);
}

static int ex_target(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    lua_pushstring(L, ex->host);
    lua_pushinteger(L, ex->port);
    lua_pushboolean(L, ex->tls);
    return 3;
}

static int ex_request(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    lua_pushlstring(L, ex->request.data, ex->request.len);
    return 1;
}

static int ex_timeout(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    lua_pushnumber(L, (lua_Number)ex->timeout_ms / 1000.0);
    if (ex->connect_timeout_ms > 0 && ex->connect_timeout_ms < ex->timeout_ms)
        lua_pushnumber(L, (lua_Number)ex->connect_timeout_ms / 1000.0);
    else
        lua_pushnil(L);
    return 2;
}

static int ex_keepalive(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    lua_pushboolean(L, ex->reusable);
    return 1;
}

/* Upvalues: the shared ones (decoder, encoder, error metatable). */
static int ex_result(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    linq_call k;

    if (ex->state == EX_SENDING)
        return luaL_argerror(L, 1, "the exchange has not ended yet");
    memset(&k, 0, sizeof k);
    k.c = &ex->view;
    k.op = ex->op;
    k.no_result = ex->no_result;
    k.idempotency_key = ex->idempotency_key;
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_DECODE));   /* 2, as linq_finish_call wants */
    lua_pushvalue(L, lua_upvalueindex(LINQ_UV_ERROR_MT)); /* 3 */
    if (ex->state == EX_DONE)
        ex->failure.attempts = ex->attempt;
    return linq_finish_call(L, &k, ex->state == EX_DONE ? LINQ_ATTEMPT_OK : LINQ_ATTEMPT_FAILED,
                            &ex->failure, ex->status, ex->waited);
}

static void exchange_free(linq_exchange *ex)
{
    linq_key_free(&ex->view);
    free(ex->idempotency_key);
    free(ex->host);
    free(ex->url);
    free(ex->view.proxy_note);
    free(ex->view.message);
    free(ex->message);
    ex->view.proxy_note = ex->view.message = ex->message = NULL;
    free(ex->headers);  /* one block (stage_for_curl) */
    ex->headers = NULL;
    ex->idempotency_key = ex->host = ex->url = NULL;
    linq_response_free(&ex->view.resp);
    linq_buf_free(&ex->request);
    linq_buf_free(&ex->field);
    linq_buf_free(&ex->value);
}

static int ex_gc(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    if (ex->view.logger_ref > 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, ex->view.logger_ref);
        ex->view.logger_ref = LUA_NOREF;
    }
    exchange_free(ex);
    return 0;
}

void linq_exchange_log(lua_State *L, linq_exchange *ex, int transport_code, int verdict,
                       double delay, long elapsed_ms)
{
    linq_attempt_log a;

    if (ex->view.log_level < LINQ_LOG_INFO)
        return;
    memset(&a, 0, sizeof a);
    a.method = ex->method;
    a.url = ex->url;
    a.url_without_query = ex->upload;
    a.message = ex->message;
    a.attempt = ex->attempt;
    a.max_retries = ex->max_retries;
    a.transport_code = transport_code;
    a.verdict = verdict;
    a.status = ex->status;
    a.delay = delay;
    a.elapsed_ms = elapsed_ms;
    linq_log_attempt(L, &ex->view, &a);
}

static int ex_tostring(lua_State *L)
{
    linq_exchange *ex = check_exchange(L);
    lua_pushfstring(L, EXCHANGE_MT " (%s, attempt %d): %p", ex->op ? ex->op->name : "request",
                    ex->attempt, (void *)ex);
    return 1;
}

/* ---------- making one ---------- */

static char *copy_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void linq_exchange_say(linq_exchange *ex, const char *fmt, ...)
{
    enum { MESSAGE_BYTES = 1024 };
    va_list ap;

    if (ex->message == NULL && (ex->message = malloc(MESSAGE_BYTES)) == NULL)
        return;  /* the failure goes without its text */
    va_start(ap, fmt);
    vsnprintf(ex->message, MESSAGE_BYTES, fmt, ap);
    va_end(ap);
}

int linq_stage_of_caller(lua_State *L)
{
    return (int)lua_tointeger(L, lua_upvalueindex(LINQ_UV_PREPARE));
}

/* What a libcurl handle of a batch needs, copied: the exchange outlives the call's
 * buffers in the client (the client's next call reuses them). */
static void stage_for_curl(lua_State *L, linq_exchange *ex, const linq_call *k)
{
    const struct curl_slist *l;

    size_t n = 0, bytes = 0;
    struct curl_slist *node;
    char *text;

    /* One block holds the nodes and their text: libcurl only reads the list, and
     * one malloc and one free per call beat two of each per line. */
    for (l = k->headers; l != NULL; l = l->next) {
        n++;
        bytes += strlen(l->data) + 1;
    }
    if (n > 0) {
        node = malloc(n * sizeof *node + bytes);
        if (node == NULL)
            luaL_error(L, "linq: out of memory");
        ex->headers = node;
        text = (char *)(node + n);
        for (l = k->headers; l != NULL; l = l->next, node++) {
            size_t len = strlen(l->data) + 1;
            memcpy(text, l->data, len);
            node->data = text;
            node->next = l->next != NULL ? node + 1 : NULL;
            text += len;
        }
    }
    if (k->c->proxy_note != NULL
        && (ex->view.proxy_note = copy_bytes(k->c->proxy_note, strlen(k->c->proxy_note))) == NULL)
        luaL_error(L, "linq: out of memory");
    ex->has_body = k->body != NULL;
    if (k->body != NULL && !linq_buf_append(&ex->request, k->body, k->body_len))
        luaL_error(L, "linq: out of memory");
}

int linq_exchange_push(lua_State *L, linq_call *k, int stage)
{
    linq_client *c = k->c;
    linq_exchange *ex;

    if (k->headers == NULL)
        linq_assemble_headers(L, k);
    ex = lua_newuserdata(L, sizeof *ex);  /* empty and safe first: __gc may run at any point */
    memset(ex, 0, sizeof *ex);
    ex->view.logger_ref = LUA_NOREF;
    luaL_setmetatable(L, EXCHANGE_MT);
    ex->op = k->op;
    ex->no_result = k->no_result;
    ex->timeout_ms = k->timeout_ms;
    ex->connect_timeout_ms = c->connect_timeout_ms;
    ex->max_retries = k->max_retries;
    ex->attempt = 1;
    ex->view.max_retry_delay = c->max_retry_delay;
    ex->view.resp.max_body = c->resp.max_body;
    ex->view.rng = c->rng ^ ((uint64_t)(uintptr_t)ex << 7);
    c->rng = c->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    if (!linq_key_copy(&ex->view, c)
        || (k->idempotency_key != NULL
            && (ex->idempotency_key = copy_bytes(k->idempotency_key,
                                                 strlen(k->idempotency_key))) == NULL))
        return luaL_error(L, "linq: out of memory");
    ex->stage = stage;
    ex->method = k->method;
    ex->url = copy_bytes(k->url, strlen(k->url));
    if (ex->url == NULL)
        return luaL_error(L, "linq: out of memory");
    ex->upload = k->body_streamed;
    ex->view.log_level = c->log_level;
    if (c->logger_ref > 0) {  /* its own reference: the exchange may outlive the client */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->logger_ref);
        ex->view.logger_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (stage == LINQ_STAGE_CURL)
        stage_for_curl(L, ex, k);
    else
        build_request(L, ex, k);
    /* The client's buffers and per-call list are free for its next call. */
    if (k->headers != c->accept_list[k->accept]) {
        curl_slist_free_all(c->call_headers);
        c->call_headers = NULL;
    }
    linq_buf_release_if_larger(&c->body, LINQ_KEEP_BUFFER_BYTES);
    start_attempt(ex);
    return 1;
}

void linq_exchange_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"target", ex_target},
        {"request", ex_request},
        {"timeout", ex_timeout},
        {"feed", ex_feed},
        {"fail", ex_fail},
        {"keepalive", ex_keepalive},
        {"result", ex_result},
        {NULL, NULL}
    };
    int i;

    /* http-parser's own cap (80 KiB for a whole block by default) would stop a reply
     * that libcurl reads; set above linq's limits so they are the ones that apply.
     * The setting is process-wide, and only ever raised. */
    http_parser_set_max_header_size((uint32_t)(LINQ_MAX_HEADER_BYTES + (16 << 10)));
    luaL_newmetatable(L, EXCHANGE_MT);
    lua_pushliteral(L, EXCHANGE_MT);
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, ex_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ex_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    for (i = 0; i < LINQ_NUPVALUES; i++)
        lua_pushvalue(L, -2 - LINQ_NUPVALUES);
    luaL_setfuncs(L, methods, LINQ_NUPVALUES);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
