/* An exchange: one API call made ready for a transport other than the client's own
 * libcurl handle, and driven attempt by attempt (exchange.c).  Two kinds:
 *   LINQ_STAGE_BYTES  the request as HTTP/1.1 bytes, the reply parsed by http-parser
 *                     (nginx's cosockets move the bytes);
 *   LINQ_STAGE_CURL   URL, method, headers and body for a libcurl easy handle of a
 *                     batch (batch.c), whose callbacks fill view.resp.
 * Either way the attempt is judged by linq_judge_attempt and ends in ex:result(). */
#ifndef LINQ_EXCHANGE_H
#define LINQ_EXCHANGE_H

#include <http_parser.h>

#include "linq.h"

#define EXCHANGE_MT "linq.Exchange"

enum { EX_SENDING, EX_DONE, EX_FAILED };

typedef struct linq_exchange {
    /* What a reply needs of the client, copied: the key (to redact it), the retry
     * cap and generator, max_body_size; and the reply of the current attempt. */
    linq_client view;
    const linq_op *op;            /* a static row */
    int stage;                    /* LINQ_STAGE_* */
    int no_result;
    char *idempotency_key;
    linq_buf request;             /* BYTES: one attempt's bytes; CURL: the body */
    int has_body;                 /* CURL: request holds a body (possibly empty) */
    char *url;                    /* CURL: the whole URL */
    const char *method;           /* static, upper case */
    int upload;                   /* a presigned upload: its URL's query is a secret */
    struct curl_slist *headers;   /* CURL: this call's header lines, one malloc'd block */
    char *host;
    int port, tls;
    long timeout_ms, connect_timeout_ms;
    int max_retries, attempt;
    double waited;
    int state;
    linq_failure failure;
    char *message;                /* a transport's failure, advice included (never cut);
                                   * allocated when one happens (linq_exchange_say) */
    long status;
    http_parser parser;
    int in_value;                 /* the last header callback was a value */
    linq_buf field, value;        /* the header field being read */
    int complete;                 /* the reply has been read whole */
    int headers_complete;         /* later header fields are a chunked body's trailers */
    int reusable;                 /* the last attempt left the connection fit for another */
} linq_exchange;

/* Sets ex->message (allocated at the first failure: most calls never have one). */
void linq_exchange_say(linq_exchange *ex, const char *fmt, ...);

/* Logs an attempt the exchange's transport has just judged (log.c's format). */
void linq_exchange_log(lua_State *L, linq_exchange *ex, int transport_code, int verdict,
                       double delay, long elapsed_ms);

#endif
