/* When to try again and how long to wait first, as the official Linq SDKs do, except
 * that a delay asked for by the server is capped by the caller (see call.c).
 * Every input here is a header value from the network: parse defensively. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "linq.h"

int linq_status_retryable(long status, const char *x_should_retry)
{
    if (x_should_retry != NULL) {
        if (strcasecmp(x_should_retry, "true") == 0)
            return 1;
        if (strcasecmp(x_should_retry, "false") == 0)
            return 0;
    }
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

int linq_curl_code_retryable(CURLcode rc)
{
    switch (rc) {
    /* Retrying cannot change these: the request or the peer's identity is wrong. */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR:
    case CURLE_FAILED_INIT:
        return 0;
    default:
        return 1;
    }
}

/* A non-negative finite number filling the whole value, or -1. */
static double parse_seconds(const char *s, double per_second)
{
    char *end;
    double v;

    while (*s == ' ' || *s == '\t')
        s++;
    {
        /* Digits and one point only: strtod would also read "0x10", "1e3", "inf". */
        const char *p = s;
        while ((*p >= '0' && *p <= '9') || *p == '.')
            p++;
        if (p == s)
            return -1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0')
            return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < 0)
        return -1;
    return v / per_second;
}

double linq_server_delay(const char *retry_after_ms, const char *retry_after, time_t now)
{
    double d;

    if (retry_after_ms != NULL && (d = parse_seconds(retry_after_ms, 1000.0)) >= 0)
        return d;
    if (retry_after == NULL)
        return -1;
    if ((d = parse_seconds(retry_after, 1.0)) >= 0)
        return d;
    {
        time_t when = curl_getdate(retry_after, NULL);  /* RFC 7231 HTTP-date forms */
        if (when == (time_t)-1)
            return -1;
        return when > now ? difftime(when, now) : 0;
    }
}

double linq_backoff_delay(int retries_done, double unit_random)
{
    double d = retries_done >= 4 ? 8.0 : 0.5 * (double)(1 << retries_done);
    return d * (1.0 - 0.25 * unit_random);
}

int linq_sleep(double seconds)
{
    struct timespec ts;

    if (!(seconds > 0))
        return 1;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    /* A signal (Ctrl-C) ends the wait: the caller stops retrying and returns to
     * Lua, where the interpreter's handler acts, instead of sleeping on. */
    return nanosleep(&ts, NULL) == 0;
}
