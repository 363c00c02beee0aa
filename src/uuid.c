/* Idempotency keys: random (version 4) UUIDs from the operating system's CSPRNG, so
 * two processes started at the same moment never share a key. */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

#include "linq.h"

int linq_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t got = 0;
    int i, o = 0;

    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        got += (size_t)n;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);  /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[o] = '\0';
    return 1;
}
