/* The whole Linq API V3 as data: one row per operation, read from the API reference
 * (shared/reference/api-v3.md, sections 3 and 4).  Every client method is a closure
 * over one generic function (operation.c) with its row as upvalue; the docs, the
 * type stubs, the nginx front and the table-driven spec all come from the copy that
 * linq.operations exports.  Adding an operation Linq ships is one line here.
 *
 * Fields: "name:type" separated by commas.  A trailing '!' marks a required field;
 * a leading '?' sends that field in the query of a body operation, a leading '^'
 * sends it as the Idempotency-Key header.  Types: string, integer, number, boolean,
 * object, string[] and object[] (JSON null is accepted for any of them). */
#include <string.h>

#include "linq.h"

#define MSG "message:object!,override_optout:boolean"
#define PAGE "cursor:string,limit:integer"
#define HANDLE "handle:string!"

/* name, HTTP method, path, params kind, paging, list key, Accept, idempotency, void, fields */
static const linq_op operations[] = {
    /* phone numbers */
    {"list_phone_numbers", "GET", "/v3/phone_numbers", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"update_phone_number", "PUT", "/v3/phone_numbers/{phone_number_id}", LINQ_P_BODY, 0, NULL,
     0, 0, 0, "forwarding_number:string!"},
    {"start_reputation_audit", "POST", "/v3/phone_numbers/{phone_number}/reputation_audit",
     LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"get_reputation_audit", "GET", "/v3/phone_numbers/{phone_number}/reputation_audit/{audit_id}",
     LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"get_available_number", "GET", "/v3/available_number", LINQ_P_QUERY, 0, NULL, 0, 0, 0,
     "to:string[],exclude_from:string[]"},
    /* chats */
    {"create_chat", "POST", "/v3/chats", LINQ_P_BODY, 0, NULL, 0, LINQ_IDEM_MESSAGE, 0,
     "from:string!,to:string[]!," MSG},
    {"list_chats", "GET", "/v3/chats", LINQ_P_QUERY, LINQ_PAGE_CURSOR, "chats", 0, 0, 0,
     PAGE ",from:string,to:string"},
    {"get_chat", "GET", "/v3/chats/{chat_id}", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"update_chat", "PUT", "/v3/chats/{chat_id}", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "display_name:string,group_chat_icon:string"},
    {"mark_chat_read", "POST", "/v3/chats/{chat_id}/read", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1, NULL},
    {"leave_chat", "POST", "/v3/chats/{chat_id}/leave", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"share_contact_card", "POST", "/v3/chats/{chat_id}/share_contact_card", LINQ_P_NONE, 0,
     NULL, LINQ_ACCEPT_ANY, 0, 1, NULL},
    {"send_voice_memo", "POST", "/v3/chats/{chat_id}/voicememo", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "voice_memo_url:string,attachment_id:string,override_optout:boolean"},
    {"add_participant", "POST", "/v3/chats/{chat_id}/participants", LINQ_P_BODY, 0, NULL, 0, 0,
     0, HANDLE},
    {"remove_participant", "DELETE", "/v3/chats/{chat_id}/participants", LINQ_P_BODY, 0, NULL,
     0, 0, 0, HANDLE},
    {"start_typing", "POST", "/v3/chats/{chat_id}/typing", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1, NULL},
    {"stop_typing", "DELETE", "/v3/chats/{chat_id}/typing", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1, NULL},
    {"send_message", "POST", "/v3/chats/{chat_id}/messages", LINQ_P_BODY, 0, NULL, 0,
     LINQ_IDEM_MESSAGE, 0, MSG},
    {"list_chat_messages", "GET", "/v3/chats/{chat_id}/messages", LINQ_P_QUERY,
     LINQ_PAGE_CURSOR, "messages", 0, 0, 0, PAGE},
    {"request_location", "POST", "/v3/chats/{chat_id}/location/request", LINQ_P_NONE, 0, NULL,
     0, 0, 0, NULL},
    {"get_location", "GET", "/v3/chats/{chat_id}/location", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_GEO, 0, 0, NULL},
    {"create_poll", "POST", "/v3/chats/{chat_id}/polls", LINQ_P_BODY, 0, NULL, 0,
     LINQ_IDEM_POLL, 0, "poll:object!"},
    {"set_chat_background", "POST", "/v3/chats/{chat_id}/background", LINQ_P_BODY, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1,
     "type:string!,variant:string,shades:string[],style:string,image_url:string"},
    {"remove_chat_background", "DELETE", "/v3/chats/{chat_id}/background", LINQ_P_NONE, 0,
     NULL, LINQ_ACCEPT_ANY, 0, 1, NULL},
    /* messages */
    {"create_message", "POST", "/v3/messages", LINQ_P_BODY, 0, NULL, 0, LINQ_IDEM_HEADER, 0,
     "^idempotency_key:string,to:string[]!," MSG
     ",continuation_message:object,exclude_from:string[]"},
    {"get_message", "GET", "/v3/messages/{message_id}", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"edit_message", "PATCH", "/v3/messages/{message_id}", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "text:string!,part_index:integer"},
    {"delete_message", "DELETE", "/v3/messages/{message_id}", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1, NULL},
    {"list_message_thread", "GET", "/v3/messages/{message_id}/thread", LINQ_P_QUERY,
     LINQ_PAGE_CURSOR, "messages", 0, 0, 0, PAGE ",order:string"},
    {"add_reaction", "POST", "/v3/messages/{message_id}/reactions", LINQ_P_BODY, 0, NULL, 0, 0,
     0, "operation:string!,type:string!,custom_emoji:string,part_index:integer"},
    {"update_app_card", "POST", "/v3/messages/{message_id}/update", LINQ_P_BODY, 0, NULL, 0, 0,
     0, "layout:object!,fallback_text:string,interactive:boolean,url:string,experience:object"},
    {"get_poll", "GET", "/v3/messages/{message_id}/poll", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"add_poll_options", "POST", "/v3/messages/{message_id}/poll/options", LINQ_P_BODY, 0,
     NULL, 0, 0, 0, "options:object[]!"},
    {"vote_in_poll", "POST", "/v3/messages/{message_id}/poll/votes", LINQ_P_BODY, 0, NULL, 0, 0,
     0, "operation:string!,option_id:string!"},
    /* attachments */
    {"create_attachment", "POST", "/v3/attachments", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "content_type:string!,filename:string!,size_bytes:integer!"},
    {"get_attachment", "GET", "/v3/attachments/{attachment_id}", LINQ_P_NONE, 0, NULL, 0, 0, 0,
     NULL},
    {"delete_attachment", "DELETE", "/v3/attachments/{attachment_id}", LINQ_P_NONE, 0, NULL,
     LINQ_ACCEPT_ANY, 0, 1, NULL},
    /* capability */
    {"check_imessage", "POST", "/v3/capability/check_imessage", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "address:string!,from:string"},
    {"check_rcs", "POST", "/v3/capability/check_rcs", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "address:string!,from:string"},
    /* contact card */
    {"get_contact_card", "GET", "/v3/contact_card", LINQ_P_QUERY, 0, NULL, 0, 0, 0,
     "phone_number:string"},
    {"create_contact_card", "POST", "/v3/contact_card", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "first_name:string!,phone_number:string!,image_url:string,last_name:string"},
    {"update_contact_card", "PATCH", "/v3/contact_card", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "?phone_number:string!,first_name:string,image_url:string,last_name:string"},
    /* webhooks */
    {"list_webhook_events", "GET", "/v3/webhook-events", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"create_webhook_subscription", "POST", "/v3/webhook-subscriptions", LINQ_P_BODY, 0, NULL,
     0, 0, 0, "subscribed_events:string[]!,target_url:string!,phone_numbers:string[]"},
    {"list_webhook_subscriptions", "GET", "/v3/webhook-subscriptions", LINQ_P_NONE, 0, NULL, 0,
     0, 0, NULL},
    {"get_webhook_subscription", "GET", "/v3/webhook-subscriptions/{subscription_id}",
     LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"update_webhook_subscription", "PUT", "/v3/webhook-subscriptions/{subscription_id}",
     LINQ_P_BODY, 0, NULL, 0, 0, 0,
     "is_active:boolean,phone_numbers:string[],subscribed_events:string[],target_url:string"},
    {"delete_webhook_subscription", "DELETE", "/v3/webhook-subscriptions/{subscription_id}",
     LINQ_P_NONE, 0, NULL, LINQ_ACCEPT_ANY, 0, 1, NULL},
    /* payment requests */
    {"create_payment_request", "POST", "/v3/payment_requests", LINQ_P_BODY, 0, NULL, 0,
     LINQ_IDEM_HEADER, 0,
     "^idempotency_key:string,amount:integer,currency:string,customer_id:string,"
     "description:string,from:string,payer_handle:string,price_id:string,quantity:integer,"
     "trial_end:string,trial_period_days:integer,metadata:object,mode:string,rail:string"},
    {"get_payment_request", "GET", "/v3/payment_requests/{payment_request_id}", LINQ_P_NONE, 0,
     NULL, 0, 0, 0, NULL},
    {"list_payment_requests", "GET", "/v3/payment_requests", LINQ_P_QUERY, LINQ_PAGE_OFFSET,
     "data", 0, 0, 0, "limit:integer,offset:integer,status:string"},
    {"cancel_payment_request", "POST", "/v3/payment_requests/{payment_request_id}/cancel",
     LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    /* payment providers and handles */
    {"get_payment_provider", "GET", "/v3/payments/providers/{provider}", LINQ_P_NONE, 0, NULL,
     0, 0, 0, NULL},
    {"connect_payment_provider", "POST", "/v3/payments/providers/{provider}/connect",
     LINQ_P_BODY, 0, NULL, 0, 0, 0, "return_url:string!"},
    {"connect_payment_handle", "POST", "/v3/payments/handles/{handle}/connect", LINQ_P_NONE, 0,
     NULL, 0, 0, 0, NULL},
    {"get_payment_handle_connection", "GET", "/v3/payments/handles/{handle}/connection",
     LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"revoke_payment_handle", "DELETE", "/v3/payments/handles/{handle}/connection", LINQ_P_NONE,
     0, NULL, 0, 0, 0, NULL},
    {"verify_payment_handle", "POST", "/v3/payments/handles/{handle}/verify", LINQ_P_BODY, 0,
     NULL, 0, 0, 0, "code:string!,connect_id:string!"},
    /* payments */
    {"create_payment", "POST", "/v3/payments", LINQ_P_BODY, 0, NULL, 0, LINQ_IDEM_HEADER, 0,
     "^idempotency_key:string,amount_cents:integer!,currency:string!,handle:string!,"
     "description:string,merchant:object,metadata:object"},
    {"get_payment", "GET", "/v3/payments/{payment_id}", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"cancel_payment", "POST", "/v3/payments/{payment_id}/cancel", LINQ_P_NONE, 0, NULL, 0, 0,
     0, NULL},
    {"get_payment_credentials", "GET", "/v3/payments/{payment_id}/credentials", LINQ_P_NONE, 0,
     NULL, 0, 0, 0, NULL},
    /* blocked handles */
    {"list_blocked_handles", "GET", "/v3/blocked_handles", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"block_handle", "POST", "/v3/blocked_handles", LINQ_P_BODY, 0, NULL, 0, 0, 0,
     HANDLE ",reason:string"},
    {"unblock_handle", "DELETE", "/v3/blocked_handles", LINQ_P_BODY, 0, NULL, LINQ_ACCEPT_ANY,
     0, 1, HANDLE},
    /* experiences */
    {"list_experiences", "GET", "/v3/experiences", LINQ_P_NONE, 0, NULL, 0, 0, 0, NULL},
    {"get_experience", "GET", "/v3/experiences/{experience}", LINQ_P_NONE, 0, NULL, 0, 0, 0,
     NULL},
};

#define N_OPERATIONS (sizeof operations / sizeof operations[0])

/* Older names kept working: alias -> operation. */
static const struct { const char *alias, *name; } aliases[] = {
    {"phone_numbers", "list_phone_numbers"},
};

static const linq_op *find(const char *name)
{
    size_t i;
    for (i = 0; i < N_OPERATIONS; i++)
        if (strcmp(operations[i].name, name) == 0)
            return &operations[i];
    return NULL;
}

const char *linq_accept_name(int accept)
{
    switch (accept) {
    case LINQ_ACCEPT_ANY: return "*/*";
    case LINQ_ACCEPT_GEO: return "application/geo+json";
    default: return "application/json";
    }
}

/* Splits op's field string into out (at most max); returns how many. */
int linq_op_fields(const linq_op *op, linq_field *out, int max)
{
    const char *p = op->fields;
    int n = 0;

    while (p != NULL && *p != '\0' && n < max) {
        linq_field *f = &out[n++];
        const char *end = strchr(p, ','), *colon;
        if (end == NULL)
            end = p + strlen(p);
        f->where = op->kind == LINQ_P_QUERY ? LINQ_IN_QUERY : LINQ_IN_BODY;
        if (*p == '?') {
            f->where = LINQ_IN_QUERY;
            p++;
        } else if (*p == '^') {
            f->where = LINQ_IN_HEADER;
            p++;
        }
        colon = memchr(p, ':', (size_t)(end - p));
        f->name = p;
        f->name_len = (size_t)(colon - p);
        f->type = colon + 1;
        f->required = end[-1] == '!';
        f->type_len = (size_t)(end - f->type) - (size_t)f->required;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* Pushes { name=, type=, ["in"]=, required= } for every path parameter and field. */
static void push_params(lua_State *L, const linq_op *op)
{
    static const char *const where[] = {"path", "query", "body", "header"};
    linq_field fields[LINQ_MAX_FIELDS];
    const char *p = op->path;
    int i = 0, j, n;

    lua_newtable(L);
    while ((p = strchr(p, '{')) != NULL) {
        const char *end = strchr(p, '}');
        lua_createtable(L, 0, 4);
        lua_pushlstring(L, p + 1, (size_t)(end - p - 1));
        lua_setfield(L, -2, "name");
        lua_pushliteral(L, "string");
        lua_setfield(L, -2, "type");
        lua_pushstring(L, where[LINQ_IN_PATH]);
        lua_setfield(L, -2, "in");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "required");
        lua_rawseti(L, -2, ++i);
        p = end;
    }
    n = linq_op_fields(op, fields, LINQ_MAX_FIELDS);
    for (j = 0; j < n; j++) {
        lua_createtable(L, 0, 4);
        lua_pushlstring(L, fields[j].name, fields[j].name_len);
        lua_setfield(L, -2, "name");
        lua_pushlstring(L, fields[j].type, fields[j].type_len);
        lua_setfield(L, -2, "type");
        lua_pushstring(L, where[fields[j].where]);
        lua_setfield(L, -2, "in");
        lua_pushboolean(L, fields[j].required);
        lua_setfield(L, -2, "required");
        lua_rawseti(L, -2, ++i);
    }
}

static void push_description(lua_State *L, const linq_op *op)
{
    static const char *const kinds[] = {"none", "body", "query"};
    static const char *const paging[] = {NULL, "cursor", "offset"};
    static const char *const idem[] = {NULL, "header", "message", "poll"};

    lua_createtable(L, 0, 10);
    lua_pushstring(L, op->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, op->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, op->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, kinds[op->kind]);
    lua_setfield(L, -2, "kind");
    push_params(L, op);
    lua_setfield(L, -2, "params");
    if (op->paging) {
        lua_pushstring(L, paging[op->paging]);
        lua_setfield(L, -2, "paged");
        lua_pushstring(L, op->list_key);
        lua_setfield(L, -2, "list_key");
    }
    lua_pushstring(L, linq_accept_name(op->accept));
    lua_setfield(L, -2, "accept");
    if (op->idempotency) {
        lua_pushstring(L, idem[op->idempotency]);
        lua_setfield(L, -2, "idempotency");
    }
    lua_pushboolean(L, op->is_void);
    lua_setfield(L, -2, "void");
}

/* linq.operations(): a fresh copy each time, so no caller can change what another sees. */
int linq_operations(lua_State *L)
{
    size_t i;

    lua_createtable(L, 0, (int)(N_OPERATIONS + 1));
    for (i = 0; i < N_OPERATIONS; i++) {
        push_description(L, &operations[i]);
        lua_setfield(L, -2, operations[i].name);
    }
    for (i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        push_description(L, find(aliases[i].name));
        lua_pushstring(L, aliases[i].alias);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, aliases[i].name);
        lua_setfield(L, -2, "alias_of");
        lua_setfield(L, -2, aliases[i].alias);
    }
    return 1;
}

/* Sets methods[name] = closure(shared upvalues..., row, name) for every row and
 * alias; the shared upvalues are at first_uv and after. */
void linq_register_operations(lua_State *L, int methods, int first_uv, int prepare)
{
    size_t i;
    int u;

    for (i = 0; i < N_OPERATIONS + sizeof aliases / sizeof aliases[0]; i++) {
        const linq_op *op;
        const char *name;
        if (i < N_OPERATIONS) {
            op = &operations[i];
            name = op->name;
        } else {
            name = aliases[i - N_OPERATIONS].alias;
            op = find(aliases[i - N_OPERATIONS].name);
        }
        for (u = 0; u < LINQ_NUPVALUES; u++)
            lua_pushvalue(L, first_uv + u);
        lua_pushlightuserdata(L, (void *)op);
        lua_pushstring(L, name);   /* the name errors give: the alias keeps its own */
        lua_pushinteger(L, prepare);
        lua_pushcclosure(L, linq_operation_call, LINQ_NUPVALUES + 3);
        lua_setfield(L, methods, name);
    }
}
