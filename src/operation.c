/* The one function behind every operation of the table (operations.c): its row is
 * an upvalue.  Arguments are (self, path parameters..., [params], [opts]); all of
 * them are checked and turned into a URL, a query and a JSON body that the client
 * owns before any traffic, then the call runs as client:request's does (call.c).
 *
 * The caller's params table is read once, with raw access: a pass that checks each
 * field and writes the query straight into the client's buffers, then the encoder's
 * pass over the body.  Neither runs Lua code or allocates Lua objects, so nothing
 * (not a finalizer, not an __index) can change the table between the two. */
#include <string.h>
#include <strings.h>

#include "linq.h"

#define MAX_QUERY 64   /* query pairs in one call; operations take at most five */

/* "bad argument" for a value named by a path parameter or field. */
static int field_error(lua_State *L, int arg, const char *prefix, const char *name, size_t len,
                       const char *what)
{
    lua_pushlstring(L, name, len);
    return linq_argerror(L, arg, lua_pushfstring(L, "%s%s %s", prefix, lua_tostring(L, -1), what));
}

void linq_add_path_param(lua_State *L, int arg, linq_buf *url, const char *name, size_t name_len,
                         int idx)
{
    size_t len;
    const char *s;
    char num[64];

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if (len == 0)
            field_error(L, arg, "", name, name_len, "must not be empty");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            field_error(L, arg, "", name, name_len, "must not be '.' or '..'");
        break;
    case LUA_TNUMBER:
        if (!linq_number_text(L, idx, num) || strpbrk(num, ".eE") != NULL)
            field_error(L, arg, "", name, name_len, "must be a string or a whole number");
        s = num;
        len = strlen(num);
        break;
    default: {
        const char *got = luaL_typename(L, idx);
        lua_pushlstring(L, name, name_len);
        linq_argerror(L, arg, lua_pushfstring(L, "%s must be a non-empty string, got %s",
                                              lua_tostring(L, -1), got));
        return;
    }
    }
    if (!linq_url_add_segment(url, s, len))
        luaL_error(L, "linq: out of memory");
}

/* Appends the base URL and the operation's path with its parameters (stack 2..). */
static int add_path(lua_State *L, const linq_op *op, linq_client *c)
{
    linq_buf *url = &c->url;
    const char *p = op->path;
    int arg = 2;

    url->len = 0;
    if (!linq_buf_append(url, c->base_url, c->base_url_len))
        luaL_error(L, "linq: out of memory");
    for (;;) {
        const char *open = strchr(p, '{'), *close;
        if (open == NULL) {
            if (!linq_buf_append(url, p, strlen(p)))
                luaL_error(L, "linq: out of memory");
            return arg;
        }
        close = strchr(open, '}');
        if (!linq_buf_append(url, p, (size_t)(open - p)))
            luaL_error(L, "linq: out of memory");
        linq_add_path_param(L, arg, url, open + 1, (size_t)(close - open - 1), arg);
        arg++;
        p = close + 1;
    }
}

/* ---------- params ---------- */

typedef struct params_pass {
    const linq_op *op;
    linq_client *c;
    int arg;                       /* stack index of params */
    linq_field fields[LINQ_MAX_FIELDS];
    int nfields;
    size_t query_at[MAX_QUERY];    /* offsets of "name=value" strings in c->scratch */
    int nquery;
    int body_skips;                /* fields of the table that do not go in the body */
    int key_slot;                  /* stack slot anchoring a caller's idempotency key */
} params_pass;

static const linq_field *find_field(const params_pass *pp, const char *name, size_t len)
{
    int i;
    for (i = 0; i < pp->nfields; i++)
        if (pp->fields[i].name_len == len && memcmp(pp->fields[i].name, name, len) == 0)
            return &pp->fields[i];
    return NULL;
}

static int type_is(const linq_field *f, const char *t)
{
    return f->type_len == strlen(t) && memcmp(f->type, t, f->type_len) == 0;
}

static int is_list(lua_State *L, int idx)
{
    size_t n = lua_rawlen(L, idx), count = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;  /* keys 1..n and nothing else (lua_rawlen found a border) */
}

/* Checks the value at idx against a field's declared type; JSON null passes. */
static void check_type(lua_State *L, params_pass *pp, const linq_field *f, int idx)
{
    int t = lua_type(L, idx), ok;
    const char *want;

    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL)
        return;
    if (type_is(f, "string")) {
        ok = t == LUA_TSTRING;
        want = "a string";
    } else if (type_is(f, "integer")) {
        char num[64];
        ok = t == LUA_TNUMBER && linq_number_text(L, idx, num) && strpbrk(num, ".eE") == NULL;
        want = "a whole number";
    } else if (type_is(f, "number")) {
        ok = t == LUA_TNUMBER;
        want = "a number";
    } else if (type_is(f, "boolean")) {
        ok = t == LUA_TBOOLEAN;
        want = "a boolean";
    } else if (type_is(f, "object")) {
        ok = t == LUA_TTABLE;
        want = "a table";
    } else {  /* string[] and object[] */
        ok = (t == LUA_TTABLE && is_list(L, idx))
            || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &linq_empty_array_sentinel);
        want = "a list";
    }
    if (!ok) {
        lua_pushlstring(L, f->name, f->name_len);
        linq_argerror(L, pp->arg, lua_pushfstring(L, "params.%s must be %s, got %s",
                                                  lua_tostring(L, -1), want, luaL_typename(L, idx)));
    }
}

/* Writes the text of one scalar query value, escaped; 0 when it is not a scalar. */
static int add_query_scalar(lua_State *L, linq_buf *b, int idx)
{
    char num[64];
    size_t len;
    const char *s;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return linq_url_add_query_text(b, s, len) ? 1 : -1;
    case LUA_TNUMBER:
        if (!linq_number_text(L, idx, num))
            return 0;
        return linq_url_add_query_text(b, num, strlen(num)) ? 1 : -1;
    case LUA_TBOOLEAN:
        s = lua_toboolean(L, idx) ? "true" : "false";
        return linq_url_add_query_text(b, s, strlen(s)) ? 1 : -1;
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, idx) == NULL;  /* JSON null: an empty value */
    default:
        return 0;
    }
}

/* "name=value\0" into c->scratch; a list is one parameter, comma-joined, as the
 * official SDKs send it.  An empty list sends nothing. */
static void add_query_pair(lua_State *L, params_pass *pp, const char *name, size_t len, int idx)
{
    linq_buf *b = &pp->c->scratch;
    size_t at = b->len;
    int ok = 1;

    if (lua_type(L, idx) == LUA_TTABLE) {
        int i, n = (int)lua_rawlen(L, idx);
        if (n == 0 || !is_list(L, idx)) {
            if (n == 0 && is_list(L, idx))
                return;
            field_error(L, pp->arg, "params.", name, len,
                        "must be a string, number, boolean or a list of them");
        }
        ok = linq_url_add_query_text(b, name, len) && linq_buf_append(b, "=", 1);
        for (i = 1; ok && i <= n; i++) {
            int r;
            if (i > 1)
                ok = linq_buf_append(b, "%2C", 3);
            lua_rawgeti(L, idx, i);
            r = add_query_scalar(L, b, lua_gettop(L));
            lua_pop(L, 1);
            if (r == 0)
                field_error(L, pp->arg, "params.", name, len,
                            "must be a string, number, boolean or a list of them");
            ok = ok && r > 0;
        }
    } else {
        int r;
        ok = linq_url_add_query_text(b, name, len) && linq_buf_append(b, "=", 1);
        r = add_query_scalar(L, b, idx);
        if (r == 0)
            field_error(L, pp->arg, "params.", name, len,
                        "must be a string, number, boolean or a list of them");
        ok = ok && r > 0;
    }
    if (!ok || !linq_buf_append(b, "", 1))  /* the NUL that ends the pair */
        luaL_error(L, "linq: out of memory");
    if (pp->nquery == MAX_QUERY)
        linq_argerror(L, pp->arg, "params has too many query parameters");
    pp->query_at[pp->nquery++] = at;
}

/* Sorted by name, so a URL is the same whatever order the table gives. */
static void append_query(lua_State *L, params_pass *pp, linq_buf *url)
{
    const char *base = pp->c->scratch.data;
    int i, j;

    for (i = 1; i < pp->nquery; i++) {
        size_t at = pp->query_at[i];
        for (j = i; j > 0 && strcmp(base + pp->query_at[j - 1], base + at) > 0; j--)
            pp->query_at[j] = pp->query_at[j - 1];
        pp->query_at[j] = at;
    }
    for (i = 0; i < pp->nquery; i++) {
        const char *pair = base + pp->query_at[i];
        if (!linq_buf_append(url, i ? "&" : "?", 1) || !linq_buf_append(url, pair, strlen(pair)))
            luaL_error(L, "linq: out of memory");
    }
}

/* The one pass over the caller's params: types, required fields, the query, and
 * the key of a send that goes in a header. */
static void read_params(lua_State *L, params_pass *pp, linq_call *k)
{
    unsigned long seen = 0;
    int i;

    pp->c->scratch.len = 0;
    if (lua_type(L, pp->arg) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, pp->arg)) {
            int v = lua_gettop(L), where;
            size_t len;
            const char *name;
            const linq_field *f;

            if (lua_type(L, v - 1) != LUA_TSTRING)
                linq_argerror(L, pp->arg, lua_pushfstring(L, "params: field names must be "
                                                             "strings, got %s",
                                                          luaL_typename(L, v - 1)));
            name = lua_tolstring(L, v - 1, &len);
            f = find_field(pp, name, len);
            if (f != NULL) {
                seen |= 1UL << (f - pp->fields);
                check_type(L, pp, f, v);
                where = f->where;
            } else {
                where = pp->op->kind == LINQ_P_QUERY ? LINQ_IN_QUERY : LINQ_IN_BODY;
            }
            if (where == LINQ_IN_QUERY) {
                add_query_pair(L, pp, name, len, v);
                pp->body_skips += pp->op->kind == LINQ_P_BODY;
            } else if (where == LINQ_IN_HEADER) {
                if (lua_type(L, v) == LUA_TSTRING) {
                    lua_pushvalue(L, v);
                    lua_replace(L, pp->key_slot);  /* anchored for the whole call */
                    k->idempotency_key = lua_tostring(L, pp->key_slot);
                }
                pp->body_skips++;
            }
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, pp->arg)) {
        linq_argerror(L, pp->arg, lua_pushfstring(L, "params must be a table, got %s",
                                                  luaL_typename(L, pp->arg)));
    }
    for (i = 0; i < pp->nfields; i++)
        if (pp->fields[i].required && !(seen & (1UL << i)))
            field_error(L, pp->arg, "params.", pp->fields[i].name, pp->fields[i].name_len,
                        "is required");
}

/* ---------- the body ---------- */

/* Pushes a copy of the table at idx without the fields that go elsewhere. */
static void push_body_copy(lua_State *L, params_pass *pp, int idx)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len;
        const char *name = lua_tolstring(L, -2, &len);  /* keys were checked */
        const linq_field *f = find_field(pp, name, len);
        if (f == NULL || f->where == LINQ_IN_BODY) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        } else {
            lua_pop(L, 1);
        }
    }
}

/* The key of a send that goes in its body (message.idempotency_key): the caller's
 * when set, else a new one in a copy of their tables.  Leaves the body on top. */
static void push_keyed_body(lua_State *L, params_pass *pp, linq_call *k, const char *holder)
{
    int top, sub;

    push_body_copy(L, pp, pp->arg);
    top = lua_gettop(L);
    lua_getfield(L, top, holder);  /* our copy: checked to hold the caller's table */
    sub = lua_gettop(L);
    lua_pushliteral(L, "idempotency_key");
    lua_rawget(L, sub);
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_replace(L, pp->key_slot);
        k->idempotency_key = lua_tostring(L, pp->key_slot);
        lua_settop(L, top);
        return;
    }
    if (!lua_isnil(L, -1))
        linq_argerror(L, pp->arg, lua_pushfstring(L, "params.%s.idempotency_key must be a "
                                                     "string, got %s",
                                                  holder, luaL_typename(L, -1)));
    lua_pop(L, 1);
    {
        char uuid[37];
        if (!linq_uuid4(uuid))
            luaL_error(L, "linq: the operating system gave no random bytes for an "
                          "idempotency key");
        lua_pushstring(L, uuid);
        lua_replace(L, pp->key_slot);
        k->idempotency_key = lua_tostring(L, pp->key_slot);
    }
    lua_newtable(L);  /* the caller's holder table stays as it was */
    lua_pushnil(L);
    while (lua_next(L, sub)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushvalue(L, pp->key_slot);
    lua_setfield(L, -2, "idempotency_key");
    lua_setfield(L, top, holder);
    lua_settop(L, top);
}

static void encode_body(lua_State *L, params_pass *pp, linq_call *k)
{
    linq_client *c = pp->c;
    char err[160];
    int idx = pp->arg;

    if (pp->op->idempotency == LINQ_IDEM_MESSAGE || pp->op->idempotency == LINQ_IDEM_POLL) {
        push_keyed_body(L, pp, k, pp->op->idempotency == LINQ_IDEM_MESSAGE ? "message" : "poll");
        idx = lua_gettop(L);
    } else if (pp->body_skips) {
        push_body_copy(L, pp, pp->arg);
        idx = lua_gettop(L);
    }
    c->body.len = 0;
    if (lua_isnil(L, idx)) {
        if (!linq_buf_append(&c->body, "{}", 2))  /* the SDKs send {} for no fields */
            luaL_error(L, "linq: out of memory");
    } else if (!linq_json_encode(L, idx, &c->body, &linq_empty_array_sentinel, err, sizeof err)) {
        linq_argerror(L, pp->arg, lua_pushfstring(L, "params cannot be encoded as JSON: %s", err));
    }
    k->body = c->body.data;
    k->body_len = c->body.len;
}

/* ---------- the Idempotency-Key header ---------- */

/* The Idempotency-Key header: the caller's own (in params or in the call's headers,
 * not both), else a new key. */
static void settle_header_key(lua_State *L, params_pass *pp, linq_call *k)
{
    char uuid[37];

    if (k->headers_idx) {
        lua_pushnil(L);
        while (lua_next(L, k->headers_idx)) {
            if (strcasecmp(lua_tostring(L, -2), "Idempotency-Key") == 0) {  /* names are strings */
                if (k->idempotency_key != NULL)
                    linq_argerror(L, pp->arg, "the idempotency key is given twice (params."
                                              "idempotency_key and an Idempotency-Key header)");
                lua_pushvalue(L, -1);
                lua_replace(L, pp->key_slot);
                k->idempotency_key = lua_tostring(L, pp->key_slot);
                k->idempotency_line = NULL;  /* their header is sent as it is */
                lua_pop(L, 2);
                return;
            }
            lua_pop(L, 1);
        }
    }
    if (k->idempotency_key == NULL) {
        if (!linq_uuid4(uuid))
            luaL_error(L, "linq: the operating system gave no random bytes for an "
                          "idempotency key");
        lua_pushstring(L, uuid);
        lua_replace(L, pp->key_slot);
        k->idempotency_key = lua_tostring(L, pp->key_slot);
    }
    if (linq_has_control_char(k->idempotency_key, strlen(k->idempotency_key)))
        linq_argerror(L, pp->arg, "params.idempotency_key contains a control character");
    lua_pushfstring(L, "Idempotency-Key: %s", k->idempotency_key);
    k->idempotency_line = lua_tostring(L, -1);  /* stays on the stack for the call */
}

/* ---------- the method ---------- */

int linq_operation_call(lua_State *L)
{
    const linq_op *op = lua_touserdata(L, lua_upvalueindex(LINQ_UV_OP));
    linq_client *c = linq_check_idle_client(L);
    params_pass pp;
    linq_call k;
    int opts_arg, constant_url;

    linq_init_call(&k, c, op->method);
    k.op = op;
    k.accept = op->accept;
    memset(&pp, 0, sizeof pp);
    pp.op = op;
    pp.c = c;

    pp.arg = add_path(L, op, c);  /* the argument after the path parameters */
    opts_arg = op->kind == LINQ_P_NONE ? pp.arg : pp.arg + 1;
    if (lua_gettop(L) > opts_arg)
        linq_argerror(L, opts_arg + 1, lua_pushfstring(L, "no value expected, got %s (%s takes "
                                                          "%s)",
                                                       luaL_typename(L, opts_arg + 1), op->name,
                                                       op->kind == LINQ_P_NONE
                                                           ? "path parameters and options"
                                                           : "path parameters, params and options"));
    lua_settop(L, opts_arg);
    lua_pushnil(L);
    pp.key_slot = lua_gettop(L);
    constant_url = pp.arg == 2;

    if (op->kind != LINQ_P_NONE) {
        pp.nfields = linq_op_fields(op, pp.fields, LINQ_MAX_FIELDS);
        read_params(L, &pp, &k);
        if (pp.nquery > 0) {
            append_query(L, &pp, &c->url);
            constant_url = 0;
        }
    }
    linq_read_call_options(L, opts_arg, &k, NULL);
    if (op->idempotency == LINQ_IDEM_HEADER)
        settle_header_key(L, &pp, &k);
    if (op->kind == LINQ_P_BODY)
        encode_body(L, &pp, &k);
    k.url = c->url.data;
    if (c->url.len > LINQ_MAX_URL_BYTES)
        linq_argerror(L, 2, "the URL with its query is longer than libcurl's 8 MB limit");
    if (constant_url && k.body == NULL && k.idempotency_key == NULL && !k.headers_idx
        && k.timeout_ms == c->timeout_ms)
        k.ready_key = op;  /* a repeat of this call can reuse the handle as it is */
    if (linq_stage_of_caller(L) != LINQ_STAGE_NONE)  /* another transport moves the bytes */
        return linq_exchange_push(L, &k, linq_stage_of_caller(L));
    return linq_run_call(L, &k);
}
