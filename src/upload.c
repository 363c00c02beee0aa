/* The second step of an attachment upload: PUT the bytes to the presigned
 * upload_url that create_attachment returned.  That URL is another host, so the
 * request has a handle of its own that never carries the client's Authorization or
 * headers: exactly the required_headers, and the bytes streamed from the file (a
 * large file is never held in memory).  Attempts and retries are the client's
 * (call.c), with the file rewound before each one.
 *
 * Everything the transfer owns (handle, header list, file) lives in a userdata
 * whose __gc frees it, so a Lua error at any point leaks nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "linq.h"

#define UPLOAD_MT "linq.Upload"

typedef struct upload_state {
    CURL *easy;
    struct curl_slist *headers;
    FILE *file;                /* the source, or NULL for bytes in memory */
    const char *data;          /* anchored on the caller's stack for the call */
    size_t len, pos;
} upload_state;

static void upload_free(upload_state *u)
{
    if (u->easy != NULL)
        curl_easy_cleanup(u->easy);
    curl_slist_free_all(u->headers);
    if (u->file != NULL)
        fclose(u->file);
    u->easy = NULL;
    u->headers = NULL;
    u->file = NULL;
}

static int upload_gc(lua_State *L)
{
    upload_free(luaL_checkudata(L, 1, UPLOAD_MT));
    return 0;
}

static size_t read_source(char *buf, size_t size, size_t nmemb, void *userdata)
{
    upload_state *u = userdata;
    size_t want = size * nmemb, n;

    if (u->file != NULL) {
        n = fread(buf, 1, want, u->file);
        if (n == 0 && ferror(u->file))
            return CURL_READFUNC_ABORT;
        return n;
    }
    n = u->len - u->pos < want ? u->len - u->pos : want;
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

static int rewind_source(void *userdata)
{
    upload_state *u = userdata;

    u->pos = 0;
    return u->file == NULL || fseek(u->file, 0, SEEK_SET) == 0;
}

static int setup(upload_state *u, linq_client *c, const char *url, curl_off_t size,
                 long timeout_ms)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val) if (rc == CURLE_OK) rc = curl_easy_setopt(u->easy, opt, val)
    if (!linq_setup_transfer(u->easy, c, &c->resp, c->errbuf))  /* the client's safety and trust settings */
        return 0;
    SET(CURLOPT_URL, url);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, read_source);
    SET(CURLOPT_READDATA, u);
    SET(CURLOPT_INFILESIZE_LARGE, size);
    SET(CURLOPT_HTTPHEADER, u->headers);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
#undef SET
    return rc == CURLE_OK;
}

/* core._upload(client, upload_url, required_headers, path, data, size [, timeout])
 * -> {}, meta.  One of path and data; size is what create_attachment was told. */
int linq_upload(lua_State *L)
{
    linq_client *c = linq_check_idle_client(L);
    size_t url_len;
    const char *url = luaL_checklstring(L, 2, &url_len);
    const char *path = luaL_optstring(L, 4, NULL);
    lua_Number size = luaL_checknumber(L, 6);
    upload_state *u;
    linq_call k;

    luaL_argcheck(L, (url_len > 8 && strncmp(url, "https://", 8) == 0)
                     || (url_len > 7 && strncmp(url, "http://", 7) == 0),
                  2, "upload_url must be an http(s) URL");
    luaL_argcheck(L, !linq_has_control_char(url, url_len), 2,
                  "upload_url contains a control character");
    luaL_argcheck(L, size >= 0 && size < 9007199254740992.0, 6, "size out of range");
    if (!lua_isnil(L, 3))
        linq_check_headers_table(L, 3, 3, "required_headers");
    lua_settop(L, 7);

    u = lua_newuserdata(L, sizeof *u);  /* index 8 */
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, UPLOAD_MT);
    if (path != NULL) {
        u->file = fopen(path, "rb");
        if (u->file == NULL)
            return luaL_argerror(L, 4, lua_pushfstring(L, "cannot open '%s': %s", path,
                                                       strerror(errno)));
    } else {
        u->data = luaL_checklstring(L, 5, &u->len);
    }
    /* Exactly the required headers; libcurl's own Accept and Expect are dropped. */
    if (!lua_isnil(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            int kidx = lua_gettop(L) - 1;
            if (!linq_append_header(&u->headers, L, kidx, kidx + 1))
                return luaL_error(L, "linq: out of memory");
            lua_pop(L, 1);
        }
    }
    {
        static const char *const drop[][2] = {{"Accept", "Accept:"}, {"Expect", "Expect:"}};
        size_t i;
        for (i = 0; i < sizeof drop / sizeof drop[0]; i++) {
            struct curl_slist *l;
            if (linq_slist_has(u->headers, drop[i][0]))
                continue;
            l = curl_slist_append(u->headers, drop[i][1]);
            if (l == NULL)
                return luaL_error(L, "linq: out of memory");
            u->headers = l;
        }
    }

    linq_init_call(&k, c, "PUT");
    if (!lua_isnil(L, 7))
        k.timeout_ms = linq_timeout_ms(luaL_checknumber(L, 7));
    u->easy = curl_easy_init();
    if (u->easy == NULL || !setup(u, c, url, (curl_off_t)size, k.timeout_ms))
        return luaL_error(L, "linq: could not set up libcurl for the upload");
    k.url = url;
    k.easy = u->easy;
    k.rewind = rewind_source;
    k.rewind_data = u;
    k.no_result = 1;
    {  /* u stays anchored at index 8 for the whole call */
        int n = linq_run_call(L, &k);
        upload_free(u);  /* now, not at the next collection: the file and socket go */
        return n;
    }
}

/* core._prepare_upload(client, upload_url, required_headers, size [, timeout]) -> an
 * exchange (exchange.c) for the PUT, whose transport sends the size bytes after
 * ex:request(); the same headers as the libcurl upload above, nothing of the client's. */
int linq_prepare_upload(lua_State *L)
{
    linq_client *c = linq_check_idle_client(L);
    size_t url_len;
    const char *url = luaL_checklstring(L, 2, &url_len);
    lua_Number size = luaL_checknumber(L, 4);
    linq_call k;

    luaL_argcheck(L, (url_len > 8 && strncmp(url, "https://", 8) == 0)
                     || (url_len > 7 && strncmp(url, "http://", 7) == 0),
                  2, "upload_url must be an http(s) URL");
    luaL_argcheck(L, !linq_has_control_char(url, url_len) && !memchr(url, ' ', url_len), 2,
                  "upload_url contains a space or a control character");
    luaL_argcheck(L, size >= 0 && size < 9007199254740992.0, 4, "size out of range");
    if (!lua_isnil(L, 3))
        linq_check_headers_table(L, 3, 3, "required_headers");
    linq_init_call(&k, c, "PUT");
    if (!lua_isnoneornil(L, 5))
        k.timeout_ms = linq_timeout_ms(luaL_checknumber(L, 5));
    curl_slist_free_all(c->call_headers);
    c->call_headers = NULL;
    if (!lua_isnil(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            int kidx = lua_gettop(L) - 1;
            if (!linq_append_header(&c->call_headers, L, kidx, kidx + 1))
                return luaL_error(L, "linq: out of memory");
            lua_pop(L, 1);
        }
    }
    k.url = url;
    k.headers = c->call_headers;   /* exactly these; freed once the exchange has its bytes */
    k.body_len = (size_t)size;
    k.body_streamed = 1;
    k.no_result = 1;
    return linq_exchange_push(L, &k, LINQ_STAGE_BYTES);
}

void linq_upload_register(lua_State *L)
{
    luaL_newmetatable(L, UPLOAD_MT);
    lua_pushcfunction(L, upload_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
