/* A growable byte buffer.  It never raises: callers run inside libcurl callbacks,
 * where a Lua error must not unwind, so out-of-memory is a return value. */
#include <stdlib.h>
#include <string.h>

#include "linq.h"

int linq_buf_reserve(linq_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX - b->len - 1)
        return 0;
    need = b->len + extra + 1;  /* room for a terminating NUL */
    if (need <= b->cap)
        return 1;
    cap = b->cap ? b->cap : 256;  /* a URL or a small reply; bodies double from here */
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return 0;
    b->data = p;
    b->cap = cap;
    return 1;
}

int linq_buf_append(linq_buf *b, const void *p, size_t n)
{
    if (!linq_buf_reserve(b, n))
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 1;
}

void linq_buf_release_if_larger(linq_buf *b, size_t keep)
{
    if (b->cap > keep)
        linq_buf_free(b);
}

void linq_buf_free(linq_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
