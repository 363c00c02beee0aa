/* The client object: options checked and copied once, one libcurl handle and one
 * header list made once, and one idempotent cleanup behind close, __gc and __close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linq.h"

static const char *const client_options[] = {
    "api_key", "base_url", "timeout", "connect_timeout", "max_retries", "headers", "ca_file",
    "proxy", "max_body_size", "max_retry_delay", "log_level", "logger", NULL
};

static char *copy_string(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* An environment variable, where an empty value counts as unset. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static void check_api_key(lua_State *L, const char *key, size_t len, const char *source)
{
    if (len == 0)
        luaL_argerror(L, 1, lua_pushfstring(L, "%s is empty", source));
    if (linq_has_control_char(key, len) || memchr(key, ' ', len))
        luaL_argerror(L, 1, lua_pushfstring(
            L, "%s contains a space or a control character (CR, LF, NUL, ...)", source));
}

/* Only http and https, no credentials, query or fragment: the path of a call is
 * appended to it, and nothing secret may sit in a string that errors can show. */
static void check_base_url(lua_State *L, const char *url, size_t len, const char *source)
{
    const char *rest, *slash;
    size_t scheme = 0;

    if (len >= 8 && strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else if (len >= 7 && strncasecmp(url, "http://", 7) == 0)
        scheme = 7;
    else
        luaL_argerror(L, 1, lua_pushfstring(L, "%s must start with http:// or https://", source));
    if (linq_has_control_char(url, len) || memchr(url, ' ', len))
        luaL_argerror(L, 1, lua_pushfstring(L, "%s contains a space or a control character",
                                            source));
    rest = url + scheme;
    if (*rest == '\0' || *rest == '/')
        luaL_argerror(L, 1, lua_pushfstring(L, "%s has no host", source));
    if (strpbrk(rest, "?#"))
        luaL_argerror(L, 1, lua_pushfstring(L, "%s must not have a query or fragment", source));
    slash = strchr(rest, '/');
    {
        const char *at = strchr(rest, '@');
        if (at != NULL && (slash == NULL || at < slash))
            luaL_argerror(L, 1, lua_pushfstring(
                L, "%s must not hold credentials; pass api_key instead", source));
    }
}

static void free_client(lua_State *L, linq_client *c)
{
    if (c->logger_ref != LUA_NOREF && c->logger_ref != LUA_REFNIL && c->logger_ref != 0) {
        luaL_unref(L, LUA_REGISTRYINDEX, c->logger_ref);
        c->logger_ref = LUA_NOREF;
    }
    if (c->curl) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    /* A batch still running keeps the pool (and its connections) until it ends. */
    linq_pool_release(c->pool);
    c->pool = NULL;
    curl_slist_free_all(c->base_headers);
    curl_slist_free_all(c->call_headers);
    c->base_headers = c->call_headers = NULL;
    free(c->base_url);
    free(c->ca_file);
    free(c->proxy);
    free(c->proxy_note);
    free(c->message);
    c->base_url = c->ca_file = c->proxy = c->proxy_note = c->message = NULL;
    linq_key_free(c);
    linq_response_free(&c->resp);
    linq_buf_free(&c->url);
    linq_buf_free(&c->body);
    linq_buf_free(&c->scratch);
}

linq_client *linq_check_client(lua_State *L, int idx)
{
    linq_client *c = luaL_testudata(L, idx, LINQ_CLIENT_MT);
    if (c == NULL)
        linq_argerror(L, idx, lua_pushfstring(L, LINQ_CLIENT_MT " expected, got %s",
                                              luaL_typename(L, idx)));
    if (c->curl == NULL)
        linq_argerror(L, idx, "the linq client is closed");
    return c;
}

static int client_close(lua_State *L)
{
    linq_client *c = luaL_checkudata(L, 1, LINQ_CLIENT_MT);
    if (c->busy)
        luaL_argerror(L, 1, "the linq client is busy with a call");
    free_client(L, c);
    return 0;
}

static int client_gc(lua_State *L)
{
    free_client(L, luaL_checkudata(L, 1, LINQ_CLIENT_MT));
    return 0;
}

/* __close can run in the middle of the client's own call (coroutine.close from a
 * finalizer that ran while the call allocated): the call still uses the key and
 * the buffers, so closing waits until it ends (linq_run_call). */
static int client_close_scope(lua_State *L)
{
    linq_client *c = luaL_checkudata(L, 1, LINQ_CLIENT_MT);
    if (c->busy)
        c->close_pending = 1;
    else
        free_client(L, c);
    return 0;
}

void linq_client_free(lua_State *L, linq_client *c)
{
    free_client(L, c);
}

static int client_tostring(lua_State *L)
{
    linq_client *c = luaL_checkudata(L, 1, LINQ_CLIENT_MT);
    if (c->curl == NULL)
        lua_pushfstring(L, "linq.Client (closed): %p", (void *)c);
    else
        lua_pushfstring(L, "linq.Client (%s): %p", c->base_url, (void *)c);
    return 1;
}

static int header_named(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';');
}

int linq_slist_has(const struct curl_slist *l, const char *name)
{
    for (; l != NULL; l = l->next)
        if (header_named(l->data, name))
            return 1;
    return 0;
}

/* Appends "Name: value" (curl's "Name;" form for an empty value) from a checked
 * headers table entry; 0 when out of memory. */
int linq_append_header(struct curl_slist **list, lua_State *L, int name_idx, int value_idx)
{
    struct curl_slist *l;
    const char *v;

    lua_pushvalue(L, value_idx);
    v = lua_tostring(L, -1);
    if (*v == '\0')
        lua_pushfstring(L, "%s;", lua_tostring(L, name_idx));
    else
        lua_pushfstring(L, "%s: %s", lua_tostring(L, name_idx), v);
    l = curl_slist_append(*list, lua_tostring(L, -1));
    lua_pop(L, 2);
    if (l == NULL)
        return 0;
    *list = l;
    return 1;
}

/* Each operation's Accept is a node of the client linked in front of the shared
 * list; a client whose own headers set Accept sends theirs on every call. */
static void link_accept_lists(linq_client *c)
{
    static const char *const lines[LINQ_N_ACCEPT] = {
        "Accept: application/json", "Accept: */*", "Accept: application/geo+json"
    };
    int i, theirs = linq_slist_has(c->base_headers, "Accept");

    for (i = 0; i < LINQ_N_ACCEPT; i++) {
        c->accept_node[i].data = (char *)lines[i];  /* libcurl only reads it */
        c->accept_node[i].next = c->base_headers;
        c->accept_list[i] = theirs ? c->base_headers : &c->accept_node[i];
    }
    c->has_content_type = linq_slist_has(c->base_headers, "Content-Type");
}

/* LINQ_API_V3_CUSTOM_HEADERS, as the official SDKs read it: "Name: value" lines,
 * split at the first ':', both sides trimmed, lines without ':' ignored; a header
 * the caller set in `headers` wins.  A name or value that could not be sent is an
 * error at linq.new, where the mistake is, not a silently dropped line. */
static int add_env_headers(lua_State *L, struct curl_slist **list)
{
    const char *v = env(LINQ_ENV_CUSTOM_HEADERS), *line;

    for (line = v; line != NULL && *line != '\0';) {
        size_t len = strcspn(line, "\n"), nlen, vlen;
        const char *colon = memchr(line, ':', len), *name = line, *value, *end = line + len;
        struct curl_slist *l;

        line = *end ? end + 1 : end;
        if (colon == NULL)
            continue;
        value = colon + 1;
        while (name < colon && (*name == ' ' || *name == '\t'))
            name++;
        nlen = (size_t)(colon - name);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        while (value < end && (*value == ' ' || *value == '\t'))
            value++;
        while (end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        vlen = (size_t)(end - value);
        if (nlen == 0 || strcspn(name, " \t\r\",;:()<>@[]{}?=/\\") < nlen
            || linq_has_control_char(name, nlen))
            luaL_argerror(L, 1, "environment variable " LINQ_ENV_CUSTOM_HEADERS " has a line "
                                "whose header name is empty or not a token");
        if (linq_has_control_char(value, vlen))
            luaL_argerror(L, 1, "environment variable " LINQ_ENV_CUSTOM_HEADERS " has a header "
                                "value with a control character");
        lua_pushlstring(L, name, nlen);
        if (linq_slist_has(*list, lua_tostring(L, -1))) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushlstring(L, value, vlen);
        /* curl's "Name;" sends an empty value ("Name:" would remove the header) */
        lua_pushfstring(L, vlen ? "%s: %s" : "%s;", lua_tostring(L, -2), lua_tostring(L, -1));
        l = curl_slist_append(*list, lua_tostring(L, -1));
        lua_pop(L, 3);
        if (l == NULL)
            return 0;
        *list = l;
    }
    return 1;
}

/* The headers sent on every request, built once.  The caller's own headers come
 * first and win over LINQ_API_V3_CUSTOM_HEADERS, and both over the defaults. */
static int build_base_headers(lua_State *L, linq_client *c, int headers_idx)
{
    struct curl_slist **list = &c->base_headers;
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    const char *runtime;
    int top = lua_gettop(L), ok = 1;

    if (headers_idx) {
        lua_pushnil(L);
        while (lua_next(L, headers_idx)) {
            int kidx = lua_gettop(L) - 1;
            if (!linq_append_header(list, L, kidx, kidx + 1)) {
                lua_settop(L, top);
                return 0;
            }
            lua_pop(L, 1);
        }
    }
    if (!add_env_headers(L, list)) {
        lua_settop(L, top);
        return 0;
    }
    /* LuaJIT says "Lua 5.1" in _VERSION; its jit.version names it properly. */
    lua_getglobal(L, "jit");
    if (lua_type(L, -1) == LUA_TTABLE)
        lua_getfield(L, -1, "version");
    else
        lua_getglobal(L, "_VERSION");
    runtime = lua_isstring(L, -1) ? lua_tostring(L, -1) : LUA_VERSION;
    lua_pushfstring(L, "User-Agent: linq-lua/%s (%s; libcurl/%s)", LINQ_VERSION, runtime,
                    cv->version);
    lua_pushfstring(L, "Authorization: Bearer %s", c->api_key);
    {
        const char *defaults[3];
        int i;
        defaults[0] = lua_tostring(L, -2);
        defaults[1] = lua_tostring(L, -1);
        defaults[2] = "Expect:";  /* never wait for "100 Continue" before a body */
        for (i = 0; ok && i < 3; i++) {
            char name[32];
            size_t n = strcspn(defaults[i], ":");
            memcpy(name, defaults[i], n);
            name[n] = '\0';
            if (!linq_slist_has(*list, name)) {
                struct curl_slist *l = curl_slist_append(*list, defaults[i]);
                if (l == NULL)
                    ok = 0;
                else
                    *list = l;
            }
        }
    }
    lua_settop(L, top);
    if (ok)
        link_accept_lists(c);
    return ok;
}

/* Appends "scheme://host[:port]" of a proxy URL, without the credentials it may
 * carry (user:password@ must never reach an error text). */
static int add_proxy_host(linq_buf *b, const char *url)
{
    const char *scheme_end = strstr(url, "://"), *host = scheme_end ? scheme_end + 3 : url;
    size_t hlen = strcspn(host, "/?#"), at;

    for (at = hlen; at > 0 && host[at - 1] != '@'; at--)
        ;
    return (scheme_end == NULL || linq_buf_append(b, url, (size_t)(host - url)))
           && linq_buf_append(b, host + at, hlen - at);
}

/* Does a no_proxy list name host?  libcurl's rule, in its common forms: "*", or
 * entries that equal the host or are a domain it ends in (a leading dot optional). */
static int no_proxy_matches(const char *list, const char *host, size_t hlen)
{
    while (list != NULL && *list != '\0') {
        size_t n = strcspn(list, ", ");
        const char *e = list;
        if (n > 0 && *e == '.') {
            e++;
            n--;
        }
        if ((n == 1 && *e == '*')
            || (n == hlen && strncasecmp(e, host, n) == 0)
            || (n > 0 && n < hlen && host[hlen - n - 1] == '.'
                && strncasecmp(e, host + hlen - n, n) == 0))
            return 1;
        list += strcspn(list, ", ");
        list += strspn(list, ", ");
    }
    return 0;
}

/* Works out c->proxy_note: the proxy a call goes through, as errors will name it.
 * libcurl reads the environment itself; this only repeats its choice so that a
 * failure can say "through the proxy ..." instead of blaming the API. */
static int note_proxy(linq_client *c)
{
    const char *proxy = c->proxy, *source = "option 'proxy'";
    linq_buf b = {NULL, 0, 0};

    const char *host = strstr(c->base_url, "://") + 3;
    size_t hlen = strcspn(host, ":/");

    if (proxy == NULL) {
        int tls = strncasecmp(c->base_url, "https:", 6) == 0;
        const char *names[3];
        size_t i;
        names[0] = tls ? "https_proxy" : "http_proxy";   /* libcurl: lower case for http */
        names[1] = tls ? "HTTPS_PROXY" : "all_proxy";
        names[2] = tls ? "all_proxy" : "ALL_PROXY";
        for (i = 0; proxy == NULL && i < 3; i++)
            if ((proxy = env(names[i])) != NULL)
                source = names[i];
        if (proxy == NULL && tls && (proxy = env("ALL_PROXY")) != NULL)
            source = "ALL_PROXY";
    }
    /* no_proxy applies to the option too, as libcurl applies it */
    if (proxy != NULL && (no_proxy_matches(env("no_proxy"), host, hlen)
                          || no_proxy_matches(env("NO_PROXY"), host, hlen)))
        proxy = NULL;
    if (proxy == NULL || *proxy == '\0')
        return 1;
    if (!linq_buf_append(&b, " (through the proxy ", 20) || !add_proxy_host(&b, proxy)
        || !linq_buf_append(&b, ", from ", 7) || !linq_buf_append(&b, source, strlen(source))
        || !linq_buf_append(&b, ")", 2)) {
        linq_buf_free(&b);
        return 0;
    }
    c->proxy_note = b.data;
    return 1;
}

/* A readable file holding at least one PEM certificate: a directory, an empty file
 * or a key would only fail at the first call, far from the mistake. */
static void check_ca_file(lua_State *L, const char *path)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    const size_t blen = sizeof begin - 1;
    char buf[4096 + sizeof begin];
    size_t n, have = 0;
    int found = 0, err;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        luaL_argerror(L, 1, lua_pushfstring(L, "option 'ca_file': cannot open '%s': %s", path,
                                            strerror(errno)));
    while (!found && (n = fread(buf + have, 1, sizeof buf - have, f)) > 0) {
        have += n;
        found = memmem(buf, have, begin, blen) != NULL;
        if (have >= blen - 1) {  /* keep a tail: the line may straddle two reads */
            memmove(buf, buf + have - (blen - 1), blen - 1);
            have = blen - 1;
        }
    }
    err = ferror(f);
    fclose(f);
    if (err || !found)
        luaL_argerror(L, 1, lua_pushfstring(L, "option 'ca_file': '%s' is not a PEM bundle "
                                               "(no BEGIN CERTIFICATE line)", path));
}

int linq_setup_transfer(CURL *h, linq_client *c, linq_response *r, char *errbuf)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_WRITEFUNCTION, linq_on_body);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, linq_on_header);
    SET(CURLOPT_HEADERDATA, r);
#if LIBCURL_VERSION_NUM >= 0x075000  /* 7.80: older libcurl re-sends unseen, as it always did */
    SET(CURLOPT_PREREQFUNCTION, linq_on_prereq);
    SET(CURLOPT_PREREQDATA, r);
#endif
    SET(CURLOPT_OPENSOCKETFUNCTION, linq_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, r);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (c->ca_file != NULL) {
        SET(CURLOPT_CAINFO, c->ca_file);
        SET(CURLOPT_CAPATH, NULL);  /* exactly that bundle: not libcurl's built-in folder too */
    }
    if (c->proxy != NULL)
        SET(CURLOPT_PROXY, c->proxy);  /* "" turns off the environment's proxies too */
    if (c->connect_timeout_ms > 0)
        SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
#undef SET
    return rc == CURLE_OK;
}

/* Options that never change between calls are set here, once per client. */
static int setup_handle(linq_client *c)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    CURL *h = c->curl;
    CURLcode rc = linq_setup_transfer(h, c, &c->resp, c->errbuf) ? CURLE_OK : CURLE_FAILED_INIT;

    /* gzip alone, by name: with "" libcurl rebuilds its list of every encoding on
     * each request, and a longer list costs more per call (callgrind: "" 128.7k,
     * "gzip, deflate, br" 127.8k, "gzip" 125.1k, none 120.2k instructions a call).
     * gzip is what APIs send, and it shrinks a large list about tenfold. */
    if (rc == CURLE_OK && (cv->features & CURL_VERSION_LIBZ))
        rc = curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    return rc == CURLE_OK;
}

int linq_client_new(lua_State *L)
{
    const char *key, *url, *ca_file, *proxy;
    size_t key_len, url_len, proxy_len = 0;
    double connect_timeout;
    const char *key_source = "option 'api_key'", *url_source = "option 'base_url'";
    double timeout, max_retry_delay, max_body;
    int max_retries, headers_idx = 0;
    linq_client *c;

    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    linq_copy_options(L, 1, client_options);
    linq_check_option_names(L, 1, 1, client_options);

    key = linq_opt_string(L, 1, 1, "api_key", &key_len);
    if (key == NULL && (key = env(LINQ_ENV_API_KEY)) != NULL) {
        key_len = strlen(key);
        key_source = "environment variable " LINQ_ENV_API_KEY;
    }
    if (key == NULL)
        luaL_argerror(L, 1, "no API key: pass api_key or set the environment variable "
                            LINQ_ENV_API_KEY);
    check_api_key(L, key, key_len, key_source);

    url = linq_opt_string(L, 1, 1, "base_url", &url_len);
    if (url == NULL) {
        url = env(LINQ_ENV_BASE_URL);
        url_source = "environment variable " LINQ_ENV_BASE_URL;
        if (url == NULL) {
            url = LINQ_DEFAULT_BASE_URL;
            url_source = "the default base URL";
        }
        url_len = strlen(url);
    }
    check_base_url(L, url, url_len, url_source);
    while (url_len > 0 && url[url_len - 1] == '/')
        url_len--;

    timeout = linq_opt_number(L, 1, 1, "timeout", LINQ_DEFAULT_TIMEOUT, 0, 1, 1e9);
    max_retries = linq_opt_integer(L, 1, 1, "max_retries", LINQ_DEFAULT_MAX_RETRIES, 0, 100);
    max_retry_delay = linq_opt_number(L, 1, 1, "max_retry_delay", LINQ_DEFAULT_MAX_RETRY_DELAY,
                                      0, 0, 86400);
    max_body = linq_opt_number(L, 1, 1, "max_body_size", (double)LINQ_DEFAULT_MAX_BODY,
                               1, 0, 1e15);
    connect_timeout = linq_opt_number(L, 1, 1, "connect_timeout", 0, 0, 1, 1e9);
    ca_file = linq_opt_string(L, 1, 1, "ca_file", NULL);
    if (ca_file != NULL)
        check_ca_file(L, ca_file);
    proxy = linq_opt_string(L, 1, 1, "proxy", &proxy_len);
    if (proxy != NULL && (linq_has_control_char(proxy, proxy_len) || memchr(proxy, ' ', proxy_len)))
        luaL_argerror(L, 1, "option 'proxy' contains a space or a control character");
    lua_getfield(L, 1, "headers");  /* index 2 */
    if (!lua_isnil(L, 2)) {
        linq_check_headers_table(L, 1, 2, "headers");
        headers_idx = 2;
    }

    /* Safe empty state first, so __gc can run at any point after this. */
    c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, LINQ_CLIENT_MT);

    linq_log_configure(L, c, 1);
    c->timeout_ms = linq_timeout_ms(timeout);
    c->max_retries = max_retries;
    c->max_retry_delay = max_retry_delay;
    c->resp.max_body = (size_t)max_body;
    c->rng = (uint64_t)(uintptr_t)c ^ ((uint64_t)time(NULL) << 20) ^ 0x9e3779b97f4a7c15ULL;
    c->api_key = copy_string(key, key_len);
    c->api_key_len = key_len;
    c->base_url = copy_string(url, url_len);
    c->base_url_len = url_len;
    c->ca_file = ca_file ? copy_string(ca_file, strlen(ca_file)) : NULL;
    c->proxy = proxy ? copy_string(proxy, proxy_len) : NULL;
    c->connect_timeout_ms = connect_timeout > 0 ? linq_timeout_ms(connect_timeout) : 0;
    c->curl = curl_easy_init();
    if (!c->api_key || !linq_key_forms(c) || !c->base_url || (ca_file && !c->ca_file)
        || (proxy && !c->proxy) || !note_proxy(c) || !c->curl) {
        free_client(L, c);
        return luaL_error(L, "linq.new: out of memory");
    }
    if (!build_base_headers(L, c, headers_idx) || !setup_handle(c)) {
        free_client(L, c);
        return luaL_error(L, "linq.new: could not set up libcurl");
    }
    /* The collector sees a userdata of a few hundred bytes, but a client holds a
     * libcurl handle with its buffers (and later a connection): count that memory
     * towards the collector's pace, so dropped clients are reclaimed as fast as
     * they are made instead of piling up with their descriptors. */
    lua_gc(L, LUA_GCSTEP, LINQ_CLIENT_EXTERNAL_KB);
    return 1;
}

void linq_client_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", linq_client_request},
        {"close", client_close},
        {NULL, NULL}
    };
    static const luaL_Reg metamethods[] = {
        {"__gc", client_gc},
        {"__close", client_close_scope},
        {"__tostring", client_tostring},
        {NULL, NULL}
    };
    int i;

    luaL_newmetatable(L, LINQ_CLIENT_MT);          /* upvalues..., mt */
    lua_pushliteral(L, LINQ_CLIENT_MT);
    lua_setfield(L, -2, "__name");                 /* 5.1 and 5.2 do not set it */
    lua_pushliteral(L, "linq.Client");
    lua_setfield(L, -2, "__metatable");            /* callers cannot swap our methods */
    luaL_setfuncs(L, metamethods, 0);
    lua_newtable(L);                               /* upvalues..., mt, methods */
    for (i = LINQ_NUPVALUES; i > 0; i--)
        lua_pushvalue(L, -2 - LINQ_NUPVALUES);
    luaL_setfuncs(L, methods, LINQ_NUPVALUES);
    linq_register_operations(L, lua_gettop(L), lua_gettop(L) - 1 - LINQ_NUPVALUES, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
