/* libFuzzer harness: the input is a raw HTTP response header block, as `curl -D -`
 * prints it.  Each line goes to linq_on_header exactly as libcurl hands it over (one
 * call per line, "\r\n" kept, status lines and the closing blank line included), then
 * the headers the client reads are looked up and run through the retry policy.
 *
 * Covers src/response.c (linq_on_header, linq_response_header, the Content-Length
 * check), src/retry.c (linq_server_delay with curl_getdate, linq_status_retryable,
 * linq_backoff_delay) and src/buffer.c.  A reference model of the header store checks
 * every look-up. */
#include <math.h>
#include <stdint.h>
#include <strings.h>
#include <time.h>

#include "fuzz_common.h"

/* The names the client reads (call.c, errors.c) plus the one response.c acts on. */
static const char *const looked_up[] = {
    "retry-after-ms", "retry-after", "x-should-retry", "content-type", "x-request-id",
    "content-length", NULL
};
#define NLOOKED 6

/* The reference model: for each looked-up name, the value of its first field since the
 * last status line and before the blank line that ends the block (later fields are a
 * chunked body's trailers), as linq_on_header should have stored it. */
typedef struct model {
    char *value[NLOOKED];
    size_t value_len[NLOOKED];
    int ended;
} model;

static void model_clear(model *m)
{
    int i;
    for (i = 0; i < NLOOKED; i++) {
        free(m->value[i]);
        m->value[i] = NULL;
    }
}

static int blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void model_line(const char *line, size_t len, void *ud)
{
    model *m = ud;
    const char *colon, *v, *end = line + len;
    size_t name_len;
    int i;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        model_clear(m);  /* an interim reply's headers are not the final reply's */
        m->ended = 0;
        return;
    }
    if (m->ended)
        return;
    if (len >= 1 && len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        m->ended = 1;
        return;
    }
    colon = memchr(line, ':', len);
    if (colon == NULL || colon == line)
        return;
    name_len = (size_t)(colon - line);
    for (i = 0; looked_up[i] != NULL; i++) {
        if (m->value[i] == NULL && strlen(looked_up[i]) == name_len &&
            strncasecmp(looked_up[i], line, name_len) == 0) {
            v = colon + 1;
            while (v < end && blank(*v))
                v++;
            while (end > v && blank(end[-1]))
                end--;
            m->value[i] = malloc((size_t)(end - v) + 1);
            FUZZ_CHECK(m->value[i] != NULL, "out of memory");
            memcpy(m->value[i], v, (size_t)(end - v));
            m->value[i][end - v] = '\0';
            m->value_len[i] = (size_t)(end - v);
        }
    }
}

static uint64_t hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ d[i]) * 1099511628211ULL;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    linq_response r;
    model m;
    fuzz_feed feed;
    const char *v[NLOOKED];
    int i, retryable;
    double delay;
    long status;
    uint64_t h = hash(data, size);

    memset(&r, 0, sizeof r);
    memset(&m, 0, sizeof m);
    r.max_body = (size_t)1 << 20;

    fuzz_feed_headers(&r, data, size, &feed, model_line, &m);
    fuzz_check_header_store(&r, feed.longest_line);

    for (i = 0; i < NLOOKED; i++) {
        v[i] = linq_response_header(&r, looked_up[i]);
        if (v[i] != NULL) {
            const char *end;
            FUZZ_CHECK(r.headers.data != NULL, "%s: a value from an empty store", looked_up[i]);
            end = r.headers.data + r.headers.len;
            FUZZ_CHECK(v[i] > r.headers.data && v[i] < end, "%s: value outside the store",
                       looked_up[i]);
            FUZZ_CHECK(v[i] + strlen(v[i]) < end, "%s: value runs past the store", looked_up[i]);
        }
        if (r.too_large != 2) {  /* a refused line is in the model, not in the store */
            FUZZ_CHECK((v[i] == NULL) == (m.value[i] == NULL),
                       "%s: store says %s, model says %s", looked_up[i],
                       v[i] ? "present" : "absent", m.value[i] ? "present" : "absent");
            if (v[i] != NULL)
                FUZZ_CHECK(strlen(v[i]) == m.value_len[i] &&
                           memcmp(v[i], m.value[i], m.value_len[i]) == 0,
                           "%s: store has '%s', model has '%s'", looked_up[i], v[i], m.value[i]);
        }
    }

    /* Content-Length: a declared size over max_body refuses the reply before its body. */
    if (r.too_large == 1) {
        const char *cl = linq_response_header(&r, "content-length");
        FUZZ_CHECK(feed.callback_aborted, "too_large without a short return");
        FUZZ_CHECK(cl != NULL, "too_large without a content-length");
    }
    FUZZ_CHECK(r.body.len == 0, "a header filled the body");

    /* The retry policy on what the server sent; now is fixed, so dates are stable. */
    delay = linq_server_delay(v[0], v[1], (time_t)1700000000);
    FUZZ_CHECK(delay == -1 || (isfinite(delay) && delay >= 0), "server delay %g", delay);
    delay = linq_server_delay(v[0], v[1], time(NULL));
    FUZZ_CHECK(delay == -1 || (isfinite(delay) && delay >= 0), "server delay %g", delay);
    delay = linq_server_delay(NULL, v[1], (time_t)0);
    FUZZ_CHECK(delay == -1 || (isfinite(delay) && delay >= 0), "server delay %g", delay);
    delay = linq_server_delay(v[0], NULL, (time_t)0);
    FUZZ_CHECK(delay == -1 || (isfinite(delay) && delay >= 0), "server delay %g", delay);

    status = feed.last_status;
    retryable = linq_status_retryable(status, v[2]);
    FUZZ_CHECK(retryable == 0 || retryable == 1, "retryable %d", retryable);
    if (v[2] != NULL && strcasecmp(v[2], "true") == 0)
        FUZZ_CHECK(retryable == 1, "x-should-retry: true ignored");
    if (v[2] != NULL && strcasecmp(v[2], "false") == 0)
        FUZZ_CHECK(retryable == 0, "x-should-retry: false ignored");
    /* Every status, once, with this reply's x-should-retry. */
    retryable = linq_status_retryable((long)(h % 1000), v[2]);
    FUZZ_CHECK(retryable == 0 || retryable == 1, "retryable %d", retryable);

    /* The backoff, over the range of attempts a client allows (max_retries <= 100). */
    {
        int done = (int)((h >> 10) % 101);
        double unit = (double)(h >> 11) / 9007199254740992.0;  /* [0, 1) */
        double b = linq_backoff_delay(done, unit);
        FUZZ_CHECK(isfinite(b) && b > 0 && b <= 8.0, "backoff %g after %d", b, done);
    }

    model_clear(&m);
    linq_response_free(&r);
    return 0;
}
