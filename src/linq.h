/* Internal interface shared by the C files of the linq module. */
#ifndef LINQ_H
#define LINQ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <curl/curl.h>

#include "compat.h"

#define LINQ_VERSION "0.1.0"
#define LINQ_CLIENT_MT "linq.Client"
#define LINQ_ERROR_MT "linq.Error"

#define LINQ_DEFAULT_BASE_URL "https://api.linqapp.com/api/partner"
#define LINQ_ENV_API_KEY "LINQ_API_V3_API_KEY"
#define LINQ_ENV_BASE_URL "LINQ_API_V3_BASE_URL"
#define LINQ_DEFAULT_TIMEOUT 60.0
#define LINQ_DEFAULT_MAX_RETRIES 2
#define LINQ_DEFAULT_MAX_RETRY_DELAY 60.0
#define LINQ_DEFAULT_MAX_BODY ((size_t)64 << 20)
/* Response headers beyond this are a misbehaving server, not an API reply. */
#define LINQ_MAX_HEADER_BYTES ((size_t)1 << 20)
/* A body buffer grown past this by one large reply is released once Lua has the
 * body: a client (one per pool thread in nginx) must not hold megabytes forever. */
#define LINQ_KEEP_BUFFER_BYTES ((size_t)1 << 20)

/* Upvalues shared by every function of the module (see module.c). */
#define LINQ_UV_DECODE 1
#define LINQ_UV_ENCODE 2
#define LINQ_UV_ERROR_MT 3
#define LINQ_NUPVALUES 3

/* ---- buffer.c: a growable byte buffer owned by whoever holds the struct ---- */
typedef struct linq_buf {
    char *data;
    size_t len, cap;
} linq_buf;

int linq_buf_reserve(linq_buf *b, size_t extra);    /* 0 on out-of-memory */
int linq_buf_append(linq_buf *b, const void *p, size_t n);
void linq_buf_release_if_larger(linq_buf *b, size_t keep);
void linq_buf_free(linq_buf *b);

/* ---- response.c: what one HTTP attempt brought back, filled by curl callbacks ---- */
typedef struct linq_response {
    linq_buf body;
    linq_buf headers;        /* "name\0value\0" pairs, names lower-cased */
    size_t max_body;
    int too_large;           /* 1: the body passed max_body, 2: the headers passed theirs */
} linq_response;

size_t linq_on_body(char *ptr, size_t size, size_t nmemb, void *userdata);
size_t linq_on_header(char *ptr, size_t size, size_t nmemb, void *userdata);
const char *linq_response_header(const linq_response *r, const char *lower_name);
void linq_response_reset(linq_response *r);
void linq_response_free(linq_response *r);

/* ---- retry.c: the retry policy of the official SDKs, with the server's delay capped ---- */
int linq_status_retryable(long status, const char *x_should_retry);
int linq_curl_code_retryable(CURLcode rc);
/* The delay the server asked for, in seconds, or -1 when it asked for none. */
double linq_server_delay(const char *retry_after_ms, const char *retry_after, time_t now);
double linq_backoff_delay(int retries_done, double unit_random);
void linq_sleep(double seconds);

/* ---- client.c ---- */
typedef struct linq_client {
    CURL *curl;                          /* NULL once closed */
    struct curl_slist *base_headers;     /* auth, accept, user agent, client headers */
    struct curl_slist *call_headers;     /* a call's own list; freed when the call ends */
    char *base_url;                      /* no trailing slash */
    char *list_url;                      /* base_url + "/v3/phone_numbers" */
    char *api_key;                       /* kept only to redact it from server text */
    size_t api_key_len;
    long timeout_ms;                     /* per attempt, whole transfer */
    int max_retries;
    double max_retry_delay;
    linq_response resp;
    char errbuf[CURL_ERROR_SIZE];
    uint64_t rng;
    int busy;                            /* a call is running: refuse re-entry */
    int list_ready;                      /* the handle is set for a plain phone_numbers() */
} linq_client;

linq_client *linq_check_client(lua_State *L, int idx);   /* open client or argerror */
int linq_slist_has(const struct curl_slist *l, const char *name);  /* case-insensitive */
int linq_append_header(struct curl_slist **list, lua_State *L, int name_idx, int value_idx);
int linq_client_new(lua_State *L);
void linq_client_register(lua_State *L);  /* metatable; expects module upvalues on top */

/* ---- options.c: checking what callers pass, before any traffic ---- */
void linq_check_option_names(lua_State *L, int arg, int tidx, const char *const names[]);
double linq_opt_number(lua_State *L, int arg, int tidx, const char *name, double dflt,
                       double min, int min_exclusive, double max);
int linq_opt_integer(lua_State *L, int arg, int tidx, const char *name, int dflt, int min, int max);
const char *linq_opt_string(lua_State *L, int arg, int tidx, const char *name, size_t *len);
void linq_check_headers_table(lua_State *L, int arg, int tidx, const char *what);
int linq_has_control_char(const char *s, size_t len);
long linq_timeout_ms(double seconds);

/* ---- call.c: one API call, its retries, and its result ---- */
int linq_client_phone_numbers(lua_State *L);
int linq_client_request(lua_State *L);

/* ---- errors.c ---- */
typedef struct linq_failure {
    const char *type;          /* e.g. "RateLimitError" */
    long status;               /* 0: no response */
    const char *message;       /* used when the body gives none; may be NULL */
    int curl_code;             /* 0 unless the transfer itself failed */
    int attempts;
    double waited;
} linq_failure;

const char *linq_error_type_for_status(long status);
/* Pushes an error object; the error metatable is at mt_idx.  Text from the server is
 * redacted of the client's key. Call with the body decoded (or nil) on top. */
void linq_push_error(lua_State *L, int mt_idx, const linq_client *c, const linq_failure *f,
                     int decoded_idx);
void linq_push_redacted(lua_State *L, const linq_client *c, const char *s, size_t len);
/* A table of the "name\0value\0" pairs at p; values redacted of c's key (c may be NULL). */
void linq_push_header_table(lua_State *L, const char *p, size_t len, const linq_client *c);

/* ---- meta.c: the second result of a call ---- */
void linq_meta_register(lua_State *L);
void linq_push_meta(lua_State *L, const linq_client *c, long status, int attempts,
                    double waited);
int linq_error_tostring(lua_State *L);
int linq_is_error(lua_State *L);

#endif
