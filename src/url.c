/* Pieces of a URL, written straight into a buffer the client owns: no Lua strings
 * are made per call, so nothing here can raise or run a finalizer. */
#include <string.h>

#include "linq.h"

static const char hex[] = "0123456789ABCDEF";

static int unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* RFC 3986 pchar: sub-delims, ':' and '@' stay as they are in a path segment, as the
 * official TypeScript SDK leaves them ("+1555" stays "+1555"). */
static int segment_byte(unsigned char ch)
{
    switch (ch) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case ';': case '=': case ':': case '@':
        return 1;
    default:
        return unreserved(ch);
    }
}

static int add_escaped(linq_buf *b, const char *s, size_t len, int (*safe)(unsigned char))
{
    size_t i = 0;

    if (!linq_buf_reserve(b, len * 3))
        return 0;
    while (i < len) {
        size_t run = i;
        while (run < len && safe((unsigned char)s[run]))
            run++;
        memcpy(b->data + b->len, s + i, run - i);
        b->len += run - i;
        if (run == len)
            break;
        b->data[b->len++] = '%';
        b->data[b->len++] = hex[(unsigned char)s[run] >> 4];
        b->data[b->len++] = hex[(unsigned char)s[run] & 15];
        i = run + 1;
    }
    b->data[b->len] = '\0';
    return 1;
}

int linq_url_add_segment(linq_buf *b, const char *s, size_t len)
{
    return add_escaped(b, s, len, segment_byte);
}

int linq_url_add_query_text(linq_buf *b, const char *s, size_t len)
{
    return add_escaped(b, s, len, unreserved);
}

