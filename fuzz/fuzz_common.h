/* Shared by the libFuzzer harnesses in fuzz/: feeding a raw header block to
 * linq_on_header the way libcurl 7.88 does, and a failure macro that aborts
 * (so libFuzzer saves the input as a crash artifact). */
#ifndef LINQ_FUZZ_COMMON_H
#define LINQ_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/linq.h"

/* The key the harnesses give their client: redaction must hide it everywhere. */
#define FUZZ_SECRET "sk_fuzz_SECRET_123"
#define FUZZ_SECRET_LEN (sizeof FUZZ_SECRET - 1)

/* Stop at the first UB report even when run by hand (UBSAN_OPTIONS still overrides). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

/* libcurl refuses a single header line longer than this (CURL_MAX_HTTP_HEADER). */
#define FUZZ_CURL_MAX_HEADER_LINE ((size_t)100 * 1024)

#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "\nFUZZ INVARIANT FAILED at %s:%d: %s\n  ",         \
                    __FILE__, __LINE__, #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* What feeding a header block did. */
typedef struct fuzz_feed {
    size_t used;          /* bytes of the block that reached the callback */
    size_t longest_line;
    long last_status;     /* from the last "HTTP/x nnn" line, 0 if none */
    int curl_aborted;     /* libcurl itself would have failed the transfer (CURLE 8) */
    int callback_aborted; /* linq_on_header returned short: curl stops (CURLE 23) */
} fuzz_feed;

static inline long fuzz_parse_status_line(const char *p, size_t n)
{
    /* "HTTP/1.1 200 ..." or "HTTP/2 200 ...": the 3 digits after the first space. */
    const char *sp = memchr(p, ' ', n);
    long v = 0;
    int i;

    if (sp == NULL || (size_t)(sp - p) + 4 > n)
        return 0;
    for (i = 1; i <= 3; i++) {
        char ch = sp[i];
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (ch - '0');
    }
    return v;
}

/* Calls on_line(line, len, ud) for each line of [data, data+size), each line with its
 * "\n" (and any "\r" before it), in order, and stops where libcurl 7.88 would:
 *   - a line holding a NUL byte: libcurl fails with "Nul byte in header" (verified
 *     against curl 7.88.1 for header lines and chunked trailers: CURLE_WEIRD_SERVER_REPLY
 *     and CURLE_RECV_ERROR), so such a line never reaches the callback;
 *   - a line longer than 100 KiB: libcurl refuses it;
 *   - an unterminated last line: libcurl waits for its end, and fails at EOF.
 * A short return from the callback stops the transfer, as it does in libcurl.
 * Lines libcurl would also refuse but that are harmless to the callback (no colon, a
 * first line that is not a status line) are passed on: more paths, no false alarms. */
static inline void fuzz_feed_headers(linq_response *r, const unsigned char *data, size_t size,
                              fuzz_feed *out,
                              void (*on_line)(const char *line, size_t len, void *ud), void *ud)
{
    size_t at = 0;

    memset(out, 0, sizeof *out);
    while (at < size) {
        const unsigned char *nl = memchr(data + at, '\n', size - at);
        size_t len;
        char *line;

        if (nl == NULL) {
            out->curl_aborted = 1;
            break;
        }
        len = (size_t)(nl - (data + at)) + 1;
        if (memchr(data + at, '\0', len) != NULL || len > FUZZ_CURL_MAX_HEADER_LINE) {
            out->curl_aborted = 1;
            break;
        }
        /* A copy of just this line, so ASan sees any read past its end. */
        line = malloc(len);
        FUZZ_CHECK(line != NULL, "out of memory");
        memcpy(line, data + at, len);
        if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
            out->last_status = fuzz_parse_status_line(line, len);
        if (on_line)
            on_line(line, len, ud);
        if (linq_on_header(line, 1, len, r) != len) {
            free(line);
            out->callback_aborted = 1;
            at += len;
            break;
        }
        free(line);
        if (len > out->longest_line)
            out->longest_line = len;
        at += len;
    }
    out->used = at;
}

/* The header store is "name\0value\0" pairs with lower-case, colon-free, non-empty names. */
static inline void fuzz_check_header_store(const linq_response *r, size_t longest_line)
{
    const linq_buf *h = &r->headers;
    size_t i = 0, strings = 0;

    FUZZ_CHECK(h->len <= LINQ_MAX_HEADER_BYTES + longest_line + 2,
               "header store is %zu bytes", h->len);
    FUZZ_CHECK(h->len <= h->cap, "len %zu > cap %zu", h->len, h->cap);
    if (h->len == 0)
        return;
    FUZZ_CHECK(h->data[h->len - 1] == '\0', "header store does not end with a NUL");
    while (i < h->len) {
        size_t n = strlen(h->data + i);
        if (strings % 2 == 0) {
            size_t k;
            FUZZ_CHECK(n > 0, "empty header name at %zu", i);
            for (k = 0; k < n; k++) {
                char ch = h->data[i + k];
                FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'), "upper-case name byte at %zu", i + k);
                FUZZ_CHECK(ch != ':', "colon in a header name at %zu", i + k);
            }
        }
        i += n + 1;
        strings++;
    }
    FUZZ_CHECK(i == h->len && strings % 2 == 0, "header store holds %zu strings", strings);
}

/* Redacts every occurrence of the secret, as linq_push_redacted does, into a malloc'd
 * copy (the key has no self-overlap, so the occurrences are the same from any start). */
static inline char *fuzz_redact_all(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1), *o = out;
    const char *end = s + len;

    FUZZ_CHECK(out != NULL, "out of memory");
    while (s < end) {
        const char *hit = memmem(s, (size_t)(end - s), FUZZ_SECRET, FUZZ_SECRET_LEN);
        if (hit == NULL) {
            memcpy(o, s, (size_t)(end - s));
            o += end - s;
            break;
        }
        memcpy(o, s, (size_t)(hit - s));
        o += hit - s;
        *o++ = '#';  /* shorter than "[redacted]", and not a byte of the key */
        s = hit + FUZZ_SECRET_LEN;
    }
    *out_len = (size_t)(o - out);
    return out;
}

#endif
