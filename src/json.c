/* The request-body encoder, and the integer pass over what lua-cjson decoded.
 *
 * Debian's lua-cjson 2.1.0 encodes at most 14 significant digits and decodes every
 * number as a float.  Bodies are therefore encoded here: exact integers, shortest
 * round-tripping floats, an explicit empty-array sentinel, and an error (with the
 * path of the offending value) for anything JSON cannot carry.
 *
 * The encoder never raises and never runs Lua code: tables are read with raw
 * access only, strings are read with lua_tolstring on string values only (never on
 * numbers, which would convert the slot in place and allocate), and metatables are
 * ignored.  The only Lua-side growth is lua_checkstack, once per nested table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linq.h"

/* Tables nested deeper than this are refused by the encoder; a cycle ends here too. */
#define JSON_MAX_DEPTH 128
/* The integer pass stops descending here: lua-cjson's own default decode depth. */
#define JSON_INTEGERS_MAX_DEPTH 1000
/* Stack slots one table level needs: key and value of the walk, key and value of a
 * second walk that classifies a malformed table, and a margin. */
#define JSON_LEVEL_SLOTS 6

/* One step of the path to the value being encoded: a string key or an array index. */
typedef struct json_step {
    const char *key;    /* NULL: an array index */
    size_t len;         /* key length, or the 1-based index */
} json_step;

typedef struct json_enc {
    lua_State *L;
    linq_buf *out;
    const void *empty_array;
    char *err;
    size_t errlen;
    json_step path[JSON_MAX_DEPTH];
} json_enc;

/* ---- output ---- */

static int grow(json_enc *e, size_t n)
{
    return linq_buf_reserve(e->out, n);  /* doubles the capacity: few, large steps */
}

/* Room for n more bytes and the terminating NUL that linq_buf keeps. */
static inline int ensure(json_enc *e, size_t n)
{
    return e->out->cap - e->out->len > n || grow(e, n);
}

static inline void put_unchecked(json_enc *e, const char *s, size_t n)
{
    memcpy(e->out->data + e->out->len, s, n);
    e->out->len += n;
}

static inline int put(json_enc *e, const char *s, size_t n)
{
    if (!ensure(e, n))
        return 0;
    put_unchecked(e, s, n);
    return 1;
}

static inline int put_char(json_enc *e, char c)
{
    if (!ensure(e, 1))
        return 0;
    e->out->data[e->out->len++] = c;
    return 1;
}

/* ---- errors ---- */

static void err_cat(json_enc *e, size_t *pos, const char *s, size_t n)
{
    size_t room;

    if (e->errlen == 0 || *pos >= e->errlen - 1)
        return;
    room = e->errlen - 1 - *pos;
    if (n > room)
        n = room;
    memcpy(e->err + *pos, s, n);
    *pos += n;
    e->err[*pos] = '\0';
}

static int is_identifier(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* Writes msg, then " at a.b[2]" for the `depth` steps that lead to the value. */
static int fail(json_enc *e, int depth, const char *msg)
{
    size_t pos = 0;
    int i;

    if (e->err == NULL || e->errlen == 0)
        return 0;
    e->err[0] = '\0';
    err_cat(e, &pos, msg, strlen(msg));
    if (depth > 0)
        err_cat(e, &pos, " at ", 4);
    for (i = 0; i < depth; i++) {
        const json_step *s = &e->path[i];
        char buf[40];

        if (s->key == NULL) {
            int n = snprintf(buf, sizeof buf, "[%lu]", (unsigned long)s->len);
            err_cat(e, &pos, buf, (size_t)n);
        } else if (is_identifier(s->key, s->len) && s->len <= 64) {
            if (i > 0)
                err_cat(e, &pos, ".", 1);
            err_cat(e, &pos, s->key, s->len);
        } else {
            /* Quoted, cut to 32 bytes, anything unprintable shown as '?'. */
            size_t j, n = s->len > 32 ? 32 : s->len;
            err_cat(e, &pos, "[\"", 2);
            for (j = 0; j < n; j++) {
                unsigned char c = (unsigned char)s->key[j];
                char ch = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
                err_cat(e, &pos, &ch, 1);
            }
            if (n < s->len)
                err_cat(e, &pos, "...", 3);
            err_cat(e, &pos, "\"]", 2);
        }
    }
    return 0;
}

static int fail_oom(json_enc *e)
{
    return fail(e, 0, "out of memory");
}

/* ---- strings ---- */

/* 0: copied as is; otherwise the character after the backslash ('u': \u00XX). */
static const char escape_of[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\', [0x7f] = 'u'
};

static int put_string(json_enc *e, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    linq_buf *b = e->out;

    /* Invariant of the loop: room for the rest of the string and the closing quote. */
    if (len > (size_t)-1 - 8 || !ensure(e, len + 2))
        return fail_oom(e);
    b->data[b->len++] = '"';
    for (;;) {
        const unsigned char *run = p;
        char c;

        while (p < end && escape_of[*p] == 0)
            p++;
        if (p > run)
            put_unchecked(e, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        /* At most 6 bytes for this one, then the invariant for what follows. */
        if (!ensure(e, 6 + (size_t)(end - p)))
            return fail_oom(e);
        c = escape_of[*p];
        if (c == 'u') {
            char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            put_unchecked(e, u, 6);
        } else {
            char two[2] = {'\\', c};
            put_unchecked(e, two, 2);
        }
        p++;
    }
    b->data[b->len++] = '"';
    return 1;
}

/* ---- numbers ---- */

/* Decimal digits of v into buf (at least 21 bytes); returns the length. */
static size_t format_integer(char *buf, long long v)
{
    char tmp[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    if (v < 0)
        buf[i++] = '-';
    while (n > 0)
        buf[i++] = tmp[--n];
    return i;
}

static inline int is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E';
}

/* A finite double into buf (64 bytes): as an integer when it is one below 2^63,
 * otherwise the shortest of %.15g, %.16g, %.17g that reads back to the same value,
 * with the locale's decimal point (whatever its bytes) turned into '.'. */
static size_t format_double(char *buf, double d)
{
    int prec, n = 0, i;

    if (d > -9223372036854775808.0 && d < 9223372036854775808.0) {
        long long ll = (long long)d;
        if ((double)ll == d)
            return format_integer(buf, ll);
    }
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 64, "%.*g", prec, d);
        if (n <= 0 || n >= 64)
            return 0;   /* cannot happen for a finite double */
        if (prec == 17 || strtod(buf, NULL) == d)
            break;
    }
    for (i = 0; i < n; i++) {
        if (!is_number_char(buf[i])) {
            int j = i + 1;
            while (j < n && !is_number_char(buf[j]))
                j++;
            buf[i] = '.';
            memmove(buf + i + 1, buf + j, (size_t)(n - j));
            n -= j - i - 1;
            break;
        }
    }
    return (size_t)n;
}

size_t linq_number_text(lua_State *L, int idx, char out[64])
{
    size_t n;
    double d;

#if LINQ_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        n = format_integer(out, (long long)lua_tointeger(L, idx));
        out[n] = '\0';
        return n;
    }
#endif
    d = (double)lua_tonumber(L, idx);
    if (!isfinite(d))
        return 0;
    n = format_double(out, d);
    out[n] = '\0';
    return n;
}

static int put_number(json_enc *e, int idx, int depth)
{
    char buf[64];
    size_t n = linq_number_text(e->L, idx, buf);

    if (n == 0)
        return fail(e, depth, "cannot encode NaN or infinity");
    return put(e, buf, n) || fail_oom(e);
}

/* ---- tables ---- */

static int encode_value(json_enc *e, int idx, int depth);

/* Whether the key at idx is an integral number. */
static int key_is_integral(lua_State *L, int idx)
{
    double d;
#if LINQ_HAS_INTEGERS
    if (lua_isinteger(L, idx))
        return 1;
#endif
    d = (double)lua_tonumber(L, idx);
    return d > -9223372036854775808.0 && d < 9223372036854775808.0 &&
           d == (double)(long long)d;
}

/* The table at t cannot be an array or an object: says why.  Walks it afresh. */
static int fail_shape(json_enc *e, int t, int depth)
{
    lua_State *L = e->L;
    int strings = 0, integers = 0, others = 0;

    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING)
            strings = 1;
        else if (lua_type(L, -1) == LUA_TNUMBER && key_is_integral(L, -1))
            integers = 1;
        else
            others = 1;
    }
    if (others)
        return fail(e, depth, "key is not a string");
    if (strings && integers)
        return fail(e, depth, "table has both list and named keys");
    return fail(e, depth, "sparse array (keys are not exactly 1..n)");
}

/* Whether the key at idx is an integer in 1..n. */
static int key_in_range(lua_State *L, int idx, size_t n)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
#if LINQ_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        lua_Integer k = lua_tointeger(L, idx);
        return k >= 1 && (lua_Unsigned)k <= (lua_Unsigned)n;
    }
#endif
    {
        double d = (double)lua_tonumber(L, idx);
        return d >= 1 && d <= (double)n && d == (double)(size_t)d;
    }
}

static int encode_array(json_enc *e, int t, size_t n, int depth)
{
    lua_State *L = e->L;
    size_t count = 0, i;

    /* Exactly the keys 1..n: n keys, each an integer in 1..n. */
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!key_in_range(L, -1, n) || ++count > n) {
            lua_pop(L, 1);
            return fail_shape(e, t, depth);
        }
    }
    if (count != n)
        return fail_shape(e, t, depth);

    if (!put_char(e, '['))
        return fail_oom(e);
    for (i = 1; i <= n; i++) {
        if (i > 1 && !put_char(e, ','))
            return fail_oom(e);
        lua_rawgeti(L, t, (lua_Integer)i);
        e->path[depth].key = NULL;
        e->path[depth].len = i;
        if (!encode_value(e, lua_gettop(L), depth + 1))
            return 0;
        lua_pop(L, 1);
    }
    return put_char(e, ']') || fail_oom(e);
}

/* All keys strings, in lua_next order.  An empty table is {}. */
static int encode_object(json_enc *e, int t, int depth)
{
    lua_State *L = e->L;
    int first = 1;

    if (!put_char(e, '{'))
        return fail_oom(e);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *key;
        size_t klen;

        if (lua_type(L, -2) != LUA_TSTRING)
            return fail_shape(e, t, depth);
        key = lua_tolstring(L, -2, &klen);   /* a string: no conversion */
        if ((!first && !put_char(e, ',')) || !put_string(e, key, klen) || !put_char(e, ':'))
            return fail_oom(e);
        first = 0;
        e->path[depth].key = key;            /* stays on the stack while in use */
        e->path[depth].len = klen;
        if (!encode_value(e, lua_gettop(L), depth + 1))
            return 0;
        lua_pop(L, 1);
    }
    return put_char(e, '}') || fail_oom(e);
}

static int encode_table(json_enc *e, int t, int depth)
{
    size_t n;

    if (depth >= JSON_MAX_DEPTH)
        return fail(e, depth, "table nested deeper than 128 levels");
    if (!lua_checkstack(e->L, JSON_LEVEL_SLOTS))
        return fail(e, depth, "Lua stack overflow");
    n = (size_t)lua_rawlen(e->L, t);
    return n > 0 ? encode_array(e, t, n, depth) : encode_object(e, t, depth);
}

/* idx is absolute; depth is the number of tables around the value. */
static int encode_value(json_enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    int type = lua_type(L, idx);

    switch (type) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return put_string(e, s, len);
    }
    case LUA_TNUMBER:
        return put_number(e, idx, depth);
    case LUA_TTABLE:
        return encode_table(e, idx, depth);
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? put(e, "true", 4) : put(e, "false", 5)) || fail_oom(e);
    case LUA_TNIL:
        return put(e, "null", 4) || fail_oom(e);
    case LUA_TLIGHTUSERDATA: {
        const void *p = lua_touserdata(L, idx);
        if (p == NULL)
            return put(e, "null", 4) || fail_oom(e);
        if (p == e->empty_array)
            return put(e, "[]", 2) || fail_oom(e);
        return fail(e, depth, "cannot encode a light userdata");
    }
    default: {
        char msg[48];
        snprintf(msg, sizeof msg, "cannot encode a %s", lua_typename(L, type));
        return fail(e, depth, msg);
    }
    }
}

int linq_json_encode(lua_State *L, int idx, linq_buf *out, const void *empty_array, char *err,
                     size_t errlen)
{
    json_enc e;
    int top = lua_gettop(L), ok;
    size_t start = out->len;

    if (idx < 0 && idx > LUA_REGISTRYINDEX)
        idx = top + idx + 1;
    e.L = L;
    e.out = out;
    e.empty_array = empty_array;
    e.err = err;
    e.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';

    ok = encode_value(&e, idx, 0);
    lua_settop(L, top);
    if (!ok) {
        out->len = start;           /* nothing half-written is left behind */
        if (out->data != NULL)
            out->data[out->len] = '\0';
        return 0;
    }
    out->data[out->len] = '\0';     /* every ensure() kept room for it */
    return 1;
}

/* ---- the integer pass ---- */

#if LINQ_HAS_INTEGERS
/* The integer equal to the float at idx, when it is integral and within +-2^53. */
static int integral_float(lua_State *L, int idx, lua_Integer *out)
{
    lua_Number d;

    if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx))
        return 0;
    d = lua_tonumber(L, idx);
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0))   /* NaN fails too */
        return 0;
    *out = (lua_Integer)d;
    return (lua_Number)*out == d;
}

static void integers_in(lua_State *L, int t, int depth)
{
    if (depth >= JSON_INTEGERS_MAX_DEPTH || !lua_checkstack(L, 4))
        return;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_Integer i;

        if (integral_float(L, -1, &i)) {
            /* Assigning to an existing field during lua_next is allowed. */
            lua_pushvalue(L, -2);
            lua_pushinteger(L, i);
            lua_rawset(L, t);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            integers_in(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

void linq_json_integers(lua_State *L, int idx)
{
#if LINQ_HAS_INTEGERS
    lua_Integer i;

    idx = lua_absindex(L, idx);
    if (integral_float(L, idx, &i)) {   /* a bare number: replaced in its slot */
        lua_pushinteger(L, i);
        lua_replace(L, idx);
    } else if (lua_type(L, idx) == LUA_TTABLE) {
        integers_in(L, idx, 0);
    }
#else
    (void)L;
    (void)idx;
#endif
}

/* ---- mending what a server sends ---- */

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 32) >= 'a' && (c | 32) <= 'f')
            v |= (unsigned)((c | 32) - 'a' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

void linq_json_mend_surrogates(char *s, size_t len)
{
    char *p = s, *end = s + len;

    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        unsigned u, low;
        if (end - p < 2)
            return;
        if (p[1] != 'u' || end - p < 6 || !hex4(p + 2, &u) || u < 0xD800 || u > 0xDFFF) {
            p += 2;  /* another escape, \\ included: its second byte is not an escape */
            continue;
        }
        if (u < 0xDC00 && end - p >= 12 && p[6] == '\\' && p[7] == 'u' && hex4(p + 8, &low)
            && low >= 0xDC00 && low <= 0xDFFF) {
            p += 12;  /* a proper pair */
            continue;
        }
        memcpy(p + 2, "fffd", 4);
        p += 6;
    }
}

/* Whether the text may hold a number too large for a double (an exponent of three
 * or more digits after a digit): a fast scan, so the slow check below runs only
 * for a body that has one (or such text inside a string). */
int linq_json_may_overflow(const char *s, size_t len)
{
    const char *p = s, *end = s + len;

    while (p < end) {
        const char *e = p;
        while (e < end && (*e | 32) != 'e')
            e++;
        if (e == end)
            return 0;
        if (e > s && e[-1] >= '0' && e[-1] <= '9') {
            const char *d = e + 1;
            size_t digits = 0;
            if (d < end && (*d == '+' || *d == '-'))
                d++;
            while (d < end && *d >= '0' && *d <= '9') {
                d++;
                digits++;
            }
            if (digits >= 3)
                return 1;
        }
        p = e + 1;
    }
    return 0;
}

static int finite_in(lua_State *L, int t, int depth)
{
    if (depth > 1000 || !lua_checkstack(L, 3))
        return 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ok = 1;
        if (lua_type(L, -1) == LUA_TNUMBER) {
            double d = (double)lua_tonumber(L, -1);
            ok = isfinite(d);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            ok = finite_in(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
        if (!ok) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

int linq_json_all_finite(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER)
        return isfinite((double)lua_tonumber(L, idx));
    if (lua_type(L, idx) != LUA_TTABLE)
        return 1;
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    return finite_in(L, idx, 0);
}
