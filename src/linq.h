/* Internal interface shared by the C files of the linq module. */
#ifndef LINQ_H
#define LINQ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <curl/curl.h>

#include "compat.h"

#define LINQ_VERSION "0.2.0"
#define LINQ_CLIENT_MT "linq.Client"
#define LINQ_ERROR_MT "linq.Error"

#define LINQ_DEFAULT_BASE_URL "https://api.linqapp.com/api/partner"
#define LINQ_ENV_API_KEY "LINQ_API_V3_API_KEY"
#define LINQ_ENV_BASE_URL "LINQ_API_V3_BASE_URL"
#define LINQ_ENV_CUSTOM_HEADERS "LINQ_API_V3_CUSTOM_HEADERS"
#define LINQ_ENV_LOG "LINQ_API_V3_LOG"
#define LINQ_DEFAULT_TIMEOUT 60.0
#define LINQ_DEFAULT_MAX_RETRIES 2
#define LINQ_DEFAULT_MAX_RETRY_DELAY 60.0
#define LINQ_DEFAULT_MAX_BODY ((size_t)64 << 20)
/* Response headers beyond these are a misbehaving server, not an API reply.  libcurl
 * refuses a header line over 100 KiB (CURL_MAX_HTTP_HEADER) and a header block over
 * 300 KiB; linq stops at a block of 256 KiB, so every transport meets the same limits
 * and reports them as the same error, never as a retried connection failure. */
#define LINQ_MAX_HEADER_LINE ((size_t)100 << 10)
#define LINQ_MAX_HEADER_BYTES ((size_t)256 << 10)
/* A body buffer grown past this by one large reply is released once Lua has the
 * body: a client (one per pool thread in nginx) must not hold megabytes forever. */
#define LINQ_KEEP_BUFFER_BYTES ((size_t)1 << 20)
/* Memory a client holds outside the collector's sight: libcurl's handle and its
 * 16 KiB receive buffer, the header lists, the connection. */
#define LINQ_CLIENT_EXTERNAL_KB 24
/* libcurl refuses longer URLs (CURL_MAX_INPUT_LENGTH) with "out of memory". */
#define LINQ_MAX_URL_BYTES ((size_t)8000000)
/* A server's message in an error, cut like the body excerpt: tostring stays short. */
#define LINQ_MAX_MESSAGE_BYTES 1000

/* Upvalues shared by every function of the module (see module.c). */
#define LINQ_UV_DECODE 1
#define LINQ_UV_ENCODE 2
#define LINQ_UV_ERROR_MT 3
#define LINQ_NUPVALUES 3
/* An operation's closure has two more: its row and the name it was registered as. */
#define LINQ_UV_OP (LINQ_NUPVALUES + 1)
#define LINQ_UV_OP_NAME (LINQ_NUPVALUES + 2)
/* In the closures of core._prepare and core._stage: build an exchange of that kind
 * (LINQ_STAGE_*) instead of calling; 0 (or none) in the client's own methods. */
#define LINQ_UV_PREPARE (LINQ_NUPVALUES + 3)
enum { LINQ_STAGE_NONE, LINQ_STAGE_BYTES, LINQ_STAGE_CURL };

/* ---- operations.c: the API as data ---- */
enum { LINQ_P_NONE, LINQ_P_BODY, LINQ_P_QUERY };               /* where params go */
enum { LINQ_PAGE_NONE, LINQ_PAGE_CURSOR, LINQ_PAGE_OFFSET };
enum { LINQ_ACCEPT_JSON, LINQ_ACCEPT_ANY, LINQ_ACCEPT_GEO, LINQ_N_ACCEPT };
enum { LINQ_IDEM_NONE, LINQ_IDEM_HEADER, LINQ_IDEM_MESSAGE, LINQ_IDEM_POLL };
enum { LINQ_IN_PATH, LINQ_IN_QUERY, LINQ_IN_BODY, LINQ_IN_HEADER };
#define LINQ_MAX_FIELDS 24

typedef struct linq_op {
    const char *name;          /* the Lua method */
    const char *method;        /* HTTP, upper case */
    const char *path;          /* template with {param}s, from /v3 on */
    unsigned char kind;        /* LINQ_P_* */
    unsigned char paging;      /* LINQ_PAGE_* */
    const char *list_key;      /* the items of a page */
    unsigned char accept;      /* LINQ_ACCEPT_* */
    unsigned char idempotency; /* LINQ_IDEM_*: where the key of a send goes */
    unsigned char is_void;     /* any 2xx gives {} */
    const char *fields;        /* see operations.c */
} linq_op;

typedef struct linq_field {
    const char *name, *type;   /* not NUL-terminated */
    size_t name_len, type_len;
    int where, required;
} linq_field;

int linq_op_fields(const linq_op *op, linq_field *out, int max);
const char *linq_accept_name(int accept);
int linq_operations(lua_State *L);
/* Sets methods[name] for every row; prepare: the closures build exchanges. */
void linq_register_operations(lua_State *L, int methods, int first_uv, int prepare);

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
enum { LINQ_TOO_LARGE_BODY = 1, LINQ_TOO_LARGE_HEADERS, LINQ_TOO_LARGE_HEADER_LINE };

typedef struct linq_response {
    linq_buf body;
    linq_buf headers;        /* "name\0value\0" pairs, names lower-cased */
    size_t max_body;
    size_t header_bytes;     /* as received, status lines and line ends included */
    int too_large;           /* LINQ_TOO_LARGE_*, 0 when within the limits */
    int in_header_block;     /* a status line came and its block has not ended */
    int headers_done;        /* the header block ended: later fields are trailers */
    int send_once;           /* a POST or PATCH: libcurl must not re-send it unseen */
    int sends;               /* times libcurl was about to send this attempt */
    int resend_refused;      /* linq stopped libcurl's silent re-send */
    int socket_errno;        /* why the last socket could not be made, or 0 */
} linq_response;

size_t linq_on_body(char *ptr, size_t size, size_t nmemb, void *userdata);
size_t linq_on_header(char *ptr, size_t size, size_t nmemb, void *userdata);
#if LIBCURL_VERSION_NUM >= 0x075000
/* CURLOPT_PREREQFUNCTION (libcurl 7.80): refuses a second send of one attempt of a
 * POST or PATCH. */
int linq_on_prereq(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                   int conn_primary_port, int conn_local_port);
#endif
/* CURLOPT_OPENSOCKETFUNCTION: remembers why a socket could not be made (EMFILE). */
curl_socket_t linq_open_socket(void *userdata, curlsocktype purpose,
                               struct curl_sockaddr *address);
const char *linq_response_header(const linq_response *r, const char *lower_name);
void linq_response_reset(linq_response *r);
void linq_response_free(linq_response *r);

/* ---- retry.c: the retry policy of the official SDKs, with the server's delay capped ---- */
int linq_status_retryable(long status, const char *x_should_retry);
int linq_curl_code_retryable(CURLcode rc);
/* The delay the server asked for, in seconds, or -1 when it asked for none. */
double linq_server_delay(const char *retry_after_ms, const char *retry_after, time_t now);
double linq_backoff_delay(int retries_done, double unit_random);
/* 0 when a signal cut the wait short. */
int linq_sleep(double seconds);

/* ---- client.c ---- */
typedef struct linq_pool linq_pool;   /* batch.c */
#define LINQ_KEY_FORMS 4
typedef struct linq_client {
    CURL *curl;                          /* NULL once closed */
    struct curl_slist *base_headers;     /* auth, user agent, client headers (no Accept) */
    struct curl_slist *call_headers;     /* a call's own list; freed when the call ends */
    /* "Accept: ..." lines linked in front of base_headers, one per LINQ_ACCEPT_*; the
     * nodes live here (no malloc), so choosing an operation's Accept costs nothing.
     * When the caller's client headers set Accept, accept_list[i] is base_headers. */
    struct curl_slist accept_node[LINQ_N_ACCEPT];
    struct curl_slist *accept_list[LINQ_N_ACCEPT];
    char *base_url;                      /* no trailing slash */
    size_t base_url_len;
    char *ca_file;                       /* NULL: the system's CAs */
    char *api_key;                       /* kept only to redact it from server text */
    size_t api_key_len;
    /* The key as a server may quote it back: lower-cased, JSON-escaped,
     * percent-encoded (errors.c); only the forms that differ from the key. */
    char *form[LINQ_KEY_FORMS];
    size_t form_len[LINQ_KEY_FORMS];
    int nforms;
    int key_packed;                      /* key and forms are one block (linq_key_copy) */
    long timeout_ms;                     /* per attempt, whole transfer */
    long connect_timeout_ms;             /* 0: libcurl's own (bounded by timeout_ms) */
    char *proxy;                         /* the proxy option; "" forbids any proxy */
    /* " (through the proxy ...)": said with every connection failure, credentials
     * left out; NULL when no proxy applies (option or environment). */
    char *proxy_note;
    char *message;                       /* a transport failure's text with its note,
                                          * malloc'd when first needed */
    int max_retries;
    double max_retry_delay;
    int has_content_type;                /* the client's headers set Content-Type */
    linq_response resp;
    linq_buf url;                        /* the URL of the call being made */
    linq_buf body;                       /* its JSON body, encoded here */
    linq_buf scratch;                    /* query pairs before they are sorted */
    char errbuf[CURL_ERROR_SIZE];
    uint64_t rng;
    linq_pool *pool;                     /* connections and handles of batches, or NULL */
    int log_level;                       /* LINQ_LOG_* */
    int logger_ref;                      /* registry reference of logger(level, line), or
                                          * LUA_NOREF: lines go to stderr */
    int busy;                            /* a call is running: refuse re-entry */
    int close_pending;                   /* __close came during a call: close after it */
    const void *ready;                   /* the handle is set up for exactly this call */
} linq_client;

linq_client *linq_check_client(lua_State *L, int idx);   /* open client or argerror */
int linq_slist_has(const struct curl_slist *l, const char *name);  /* case-insensitive */
int linq_append_header(struct curl_slist **list, lua_State *L, int name_idx, int value_idx);
int linq_client_new(lua_State *L);
/* What every transfer of c sets on a handle: the callbacks into c's reply, no
 * redirects, TLS verified against c's trust, http and https only. */
int linq_setup_transfer(CURL *h, linq_client *c, linq_response *r, char *errbuf);
void linq_client_free(lua_State *L, linq_client *c);    /* what close does; idempotent */
/* Registers the client metatable and leaves its methods table on the stack; expects
 * the module upvalues on top. */
void linq_client_register(lua_State *L);

/* ---- options.c: checking what callers pass, before any traffic ---- */
/* "bad argument #n to 'name' (msg)": inside an operation, n counts from the first
 * argument after self and name is the operation's, wherever it was called from. */
int linq_argerror(lua_State *L, int arg, const char *msg);
/* Replaces the options table at idx by a copy made with raw access in one pass (and
 * its headers, query and params tables too): a caller's table is read once, no
 * __index runs, every string stays anchored, and nothing done to the caller's tables
 * later (by a finalizer that runs while linq allocates) reaches what linq reads. */
void linq_copy_options(lua_State *L, int idx, const char *const names[]);
void linq_check_option_names(lua_State *L, int arg, int tidx, const char *const names[]);
double linq_opt_number(lua_State *L, int arg, int tidx, const char *name, double dflt,
                       double min, int min_exclusive, double max);
int linq_opt_integer(lua_State *L, int arg, int tidx, const char *name, int dflt, int min, int max);
const char *linq_opt_string(lua_State *L, int arg, int tidx, const char *name, size_t *len);
void linq_check_headers_table(lua_State *L, int arg, int tidx, const char *what);
int linq_has_control_char(const char *s, size_t len);
long linq_timeout_ms(double seconds);

/* ---- call.c: one API call, its retries, and its result ---- */
typedef struct linq_failure linq_failure;   /* errors.c */
typedef struct linq_call {
    linq_client *c;
    const linq_op *op;             /* NULL for client:request */
    const char *method;            /* upper case */
    const char *url;               /* NUL-terminated; libcurl copies it */
    const char *body;              /* NULL: the request has no body */
    size_t body_len;
    struct curl_slist *headers;    /* what is sent */
    struct curl_slist node[2];     /* per-call lines linked in front of the client's list */
    const char *idempotency_key;   /* the key this call sends, for meta and errors */
    const char *idempotency_line;  /* "Idempotency-Key: ..." when it goes in a header */
    int accept;                    /* LINQ_ACCEPT_* */
    long timeout_ms;
    int max_retries;
    int headers_idx;               /* stack index of the call's own headers, or 0 */
    const void *ready_key;         /* non-NULL: identical calls may reuse the handle's setup */
    /* A transfer on a handle of its own (the attachment upload), set up by its owner: */
    CURL *easy;                    /* NULL: the client's handle, set up from the fields above */
    int (*rewind)(void *);         /* called before each attempt; 0 stops the call */
    void *rewind_data;
    int no_result;                 /* any 2xx gives {} */
    int body_streamed;             /* the transport sends body_len bytes of its own */
} linq_call;

linq_client *linq_check_idle_client(lua_State *L);
void linq_init_call(linq_call *k, linq_client *c, const char *method);
/* Reads { timeout=, max_retries=, headers= } (and the request extras in names). */
void linq_read_call_options(lua_State *L, int arg, linq_call *k, const char *const names[]);
void linq_assemble_headers(lua_State *L, linq_call *k);
int linq_run_call(lua_State *L, linq_call *k);
/* What a libcurl transfer's end means, whichever interface ran it: the code to judge
 * (a refused re-send reads as a connection lost before the reply) and its message. */
int linq_curl_outcome(linq_response *r, CURLcode rc, const char *errbuf, const char **message);

/* Judging an attempt and finishing a call: shared by the libcurl loop (call.c)
 * and the exchanges that other transports drive (exchange.c). */
enum { LINQ_ATTEMPT_OK, LINQ_ATTEMPT_RETRY, LINQ_ATTEMPT_FAILED };
/* What an attempt that ended with transport_code (a CURLcode, CURLE_OK when a reply
 * came) and status means: OK, RETRY after *delay seconds, or FAILED with f filled. */
int linq_judge_attempt(linq_client *c, int attempt, int max_retries, int transport_code,
                       const char *transport_message, long status, linq_failure *f,
                       double *delay);
/* With the decoder at stack index 2 and the error metatable at 3: pushes res, meta
 * (returns 2) for a success, or raises the failure in f. */
int linq_finish_call(lua_State *L, const linq_call *k, int verdict, linq_failure *f, long status,
                     double waited);
void linq_push_success(lua_State *L, const linq_call *k, long status, int attempt, double waited);
int linq_client_request(lua_State *L);

/* ---- operation.c: the generic method behind every row of the table ---- */
int linq_operation_call(lua_State *L);
/* Appends the path parameter at idx, checked (a non-empty string other than . and ..,
 * or a whole number) and escaped as one segment; errors name it and argument arg. */
void linq_add_path_param(lua_State *L, int arg, linq_buf *url, const char *name, size_t name_len,
                         int idx);

/* ---- url.c: path templates and query strings, written into a client's buffer ---- */
/* Appends s as one path segment: A-Za-z0-9-._~!$&'()*+,;=:@ kept, the rest %XX. */
int linq_url_add_segment(linq_buf *b, const char *s, size_t len);
/* Appends v escaped for a query (only A-Za-z0-9-._~ kept). */
int linq_url_add_query_text(linq_buf *b, const char *s, size_t len);
/* ---- json.c: exact JSON out, integers in ---- */
extern const char linq_empty_array_sentinel;   /* its address is linq.empty_array */
int linq_json_encode(lua_State *L, int idx, linq_buf *out, const void *empty_array,
                     char *err, size_t errlen);
void linq_json_integers(lua_State *L, int idx);
/* The number at idx as JSON and URLs write it: integers exactly, other finite numbers
 * in the shortest form that reads back the same, '.' as the decimal point whatever the
 * locale; NUL-terminated.  Its length, or 0 for NaN and infinity. */
size_t linq_number_text(lua_State *L, int idx, char out[64]);

/* ---- exchange.c: a call as a state machine, for transports that move the bytes ---- */
int linq_exchange_push(lua_State *L, linq_call *k, int stage);
void linq_exchange_register(lua_State *L);   /* expects the module upvalues on top */
/* The stage of the method running now (its LINQ_UV_PREPARE upvalue). */
int linq_stage_of_caller(lua_State *L);

/* ---- log.c: what a client says about its work ---- */
enum { LINQ_LOG_OFF, LINQ_LOG_ERROR, LINQ_LOG_WARN, LINQ_LOG_INFO, LINQ_LOG_DEBUG };
typedef struct linq_attempt_log {
    const char *method, *url, *message;
    int attempt, max_retries, transport_code, verdict;
    long status;
    double delay;                  /* before the next attempt, when verdict is RETRY */
    long elapsed_ms;               /* -1: not known to the transport */
    int url_without_query;
} linq_attempt_log;
const char *linq_log_level_name(int level);
void linq_log(lua_State *L, const linq_client *c, int level, const char *fmt, ...);
/* info for an attempt that will be retried, debug for every attempt. */
void linq_log_attempt(lua_State *L, const linq_client *c, const linq_attempt_log *a);
void linq_log_configure(lua_State *L, linq_client *c, int idx);

/* ---- batch.c: many calls at once over libcurl's multi interface ---- */
void linq_pool_release(linq_pool *p);    /* drops one owner's hold; the last frees it */
int linq_batch_new(lua_State *L);
int linq_stage_all(lua_State *L);
void linq_batch_register(lua_State *L);

/* ---- upload.c ---- */
int linq_upload(lua_State *L);
int linq_prepare_upload(lua_State *L);
void linq_upload_register(lua_State *L);

/* ---- uuid.c ---- */
/* Replaces in place each \uD800-\uDFFF escape that is not half of a pair with
 * \uFFFD (the same length): Node writes them for a cut emoji, and the decoder
 * would refuse the whole reply for one. */
void linq_json_mend_surrogates(char *s, size_t len);
/* lua-cjson reads 1e400 as infinity: a quick look at the text for such a number,
 * then, only when it may hold one, a walk of the decoded value for any. */
int linq_json_may_overflow(const char *s, size_t len);
int linq_json_all_finite(lua_State *L, int idx);

/* A random (v4) UUID from the operating system's CSPRNG, 36 characters + NUL. */
int linq_uuid4(char out[37]);

/* ---- errors.c ---- */
struct linq_failure {
    const char *type;          /* e.g. "RateLimitError" */
    long status;               /* 0: no response */
    const char *message;       /* used when the body gives none; may be NULL */
    int curl_code;             /* 0 unless the transfer itself failed */
    int attempts;
    double waited;
    const char *idempotency_key;
    int interrupted;           /* a signal ended the wait before the next attempt */
};

const char *linq_error_type_for_status(long status);
/* Pushes an error object; the error metatable is at mt_idx.  Text from the server is
 * redacted of the client's key. Call with the body decoded (or nil) on top. */
void linq_push_error(lua_State *L, int mt_idx, const linq_client *c, const linq_failure *f,
                     int decoded_idx);
void linq_push_redacted(lua_State *L, const linq_client *c, const char *s, size_t len);
/* Works out c->form from c->api_key (0 when out of memory); wipes and frees both. */
int linq_key_forms(linq_client *c);
/* Gives dst a copy of src's key and forms in one block (0 when out of memory). */
int linq_key_copy(linq_client *dst, const linq_client *src);
void linq_key_free(linq_client *c);
/* A table of the "name\0value\0" pairs at p; values redacted of c's key (c may be NULL). */
void linq_push_header_table(lua_State *L, const char *p, size_t len, const linq_client *c);

/* ---- webhook.c: Standard Webhooks verification (HMAC-SHA256 from libcrypto) ---- */
#define LINQ_WEBHOOK_MT "linq.Webhook"
int linq_webhook_new(lua_State *L);
int linq_webhook_signature(lua_State *L);
/* Makes the verifier's metatable (its methods get the module upvalues at first_uv..)
 * and sets webhook, webhook_signature and events in the module table on top. */
void linq_webhook_register(lua_State *L, int first_uv);

/* ---- meta.c: the second result of a call ---- */
void linq_meta_register(lua_State *L);
void linq_push_meta(lua_State *L, const linq_call *k, long status, int attempts,
                    double waited, int result_idx);
/* Pushes the id that names this reply for Linq's support (x-request-id, else
 * x-trace-id, else the body's trace_id), redacted; 0 and nothing pushed if none. */
int linq_push_request_id(lua_State *L, const linq_client *c, int decoded_idx);
int linq_error_tostring(lua_State *L);
int linq_is_error(lua_State *L);

#endif
