/* libcurl's write and header callbacks: they only copy bytes into C buffers and
 * enforce the caps.  No Lua here, so no Lua error can unwind through libcurl. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "linq.h"

size_t linq_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    linq_response *r = userdata;
    size_t n = size * nmemb;

    if (n > r->max_body - r->body.len) {
        r->too_large = 1;
        return 0;  /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return linq_buf_append(&r->body, ptr, n) ? n : 0;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A declared length over the cap is refused before a byte of the body arrives;
 * a plausible one sizes the buffer once instead of doubling it repeatedly. */
static int check_content_length(linq_response *r, const char *value)
{
    char *end;
    unsigned long long n = strtoull(value, &end, 10);

    if (end == value || *value == '-')
        return 1;
    if (n > r->max_body) {
        r->too_large = 1;
        return 0;
    }
    return linq_buf_reserve(&r->body, (size_t)n);
}

size_t linq_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    linq_response *r = userdata;
    size_t n = size * nmemb, name_len, i;
    const char *colon, *value, *end = ptr + n;
    linq_buf *h = &r->headers;
    size_t name_at;

    /* Every line counts, trailers too: libcurl stops a block at 300 KiB with a plain
     * receive error (retried); stopping first gives the caller the real reason. */
    r->header_bytes += n;
    if (n > LINQ_MAX_HEADER_LINE || r->header_bytes > LINQ_MAX_HEADER_BYTES) {
        r->too_large = n > LINQ_MAX_HEADER_LINE ? LINQ_TOO_LARGE_HEADER_LINE
                                                : LINQ_TOO_LARGE_HEADERS;
        return 0;
    }
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        /* A new status line: an interim 1xx reply's headers are not this reply's. */
        h->len = 0;
        r->headers_done = 0;
        r->in_header_block = 1;
        return n;
    }
    if (r->headers_done)
        return n;  /* a chunked body's trailer: not a header of the reply */
    if (n <= 2 && (ptr[0] == '\r' || ptr[0] == '\n')) {
        r->headers_done = 1;  /* the blank line that ends the header block */
        r->in_header_block = 0;
        return n;
    }
    colon = memchr(ptr, ':', n);
    if (colon == NULL || colon == ptr)
        return n;  /* the blank line closing the block, or a line that is not a field */
    if (memchr(ptr, '\0', n) != NULL)
        return n;  /* the store is NUL-separated; libcurl refuses such lines anyway */
    name_len = (size_t)(colon - ptr);
    value = colon + 1;
    while (value < end && is_blank(*value))
        value++;
    while (end > value && is_blank(end[-1]))
        end--;

    name_at = h->len;
    if (!linq_buf_reserve(h, name_len + (size_t)(end - value) + 2))
        return 0;
    for (i = 0; i < name_len; i++)
        h->data[h->len++] = (char)tolower((unsigned char)ptr[i]);
    h->data[h->len++] = '\0';
    memcpy(h->data + h->len, value, (size_t)(end - value));
    h->len += (size_t)(end - value);
    h->data[h->len++] = '\0';

    if (name_len == 14 && memcmp(h->data + name_at, "content-length", 14) == 0)
        return check_content_length(r, h->data + name_at + 15) ? n : 0;
    return n;
}

#if LIBCURL_VERSION_NUM >= 0x075000
int linq_on_prereq(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                   int conn_primary_port, int conn_local_port)
{
    linq_response *r = userdata;

    (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
    /* libcurl calls this again when a reused connection died before any reply and it
     * retries on a fresh one.  The server may have acted on the first send (closing
     * without answering is what a crash or a proxy does), so a POST or PATCH goes no
     * further: the attempt fails as a lost connection, and retrying it is the call's
     * decision, counted in meta.attempts and bounded by max_retries. */
    if (++r->sends > 1 && r->send_once) {
        r->resend_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}
#endif

curl_socket_t linq_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
    linq_response *r = userdata;
    /* Close-on-exec as well: a child started with os.execute must not inherit the
     * connection that carries the key. */
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

    (void)purpose;
    if (fd == CURL_SOCKET_BAD)
        r->socket_errno = errno;  /* libcurl only says "Couldn't connect to server" */
    return fd;
}

const char *linq_response_header(const linq_response *r, const char *lower_name)
{
    const char *p = r->headers.data, *end;

    if (p == NULL)
        return NULL;  /* a reply with no header fields at all */
    end = p + r->headers.len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, lower_name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

void linq_response_reset(linq_response *r)
{
    r->body.len = 0;
    r->headers.len = 0;
    r->too_large = 0;
    r->headers_done = 0;
    r->in_header_block = 0;
    r->header_bytes = 0;
    r->sends = 0;
    r->resend_refused = 0;
    r->socket_errno = 0;
    if (r->body.data)
        r->body.data[0] = '\0';
}

void linq_response_free(linq_response *r)
{
    linq_buf_free(&r->body);
    linq_buf_free(&r->headers);
}
