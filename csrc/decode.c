/* Response checking against the schemas in schema.c, and the walk that
 * turns cjson's output into what users expect: JSON null becomes nil (list
 * items that are null are dropped), whole numbers become Lua integers. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "decode.h"
#include "json.h"
#include "retry.h"
#include "text.h"

/* Response schemas nest five deep (data.test_run.testRun.id). */
#define MAX_SCHEMA_DEPTH 8
/* The server's own words in an error message are cut here; our hints follow. */
#define EMP_SERVER_MESSAGE_MAX 1024

typedef struct checker {
  lua_State *L;
  /* The names leading to the value being checked. Its path is written out
   * only for an error: most responses are fine, and every get checks ~25 fields. */
  const char *names[MAX_SCHEMA_DEPTH];
  long long index[MAX_SCHEMA_DEPTH];   /* >= 1: an item of a list, shown as name[i] */
  int depth;
} checker;

/* Push what a refused value was, for "expected X, got Y": its type, and its
 * value when short ("a string (\"456\")", "a number (9007199254740992)"). */
static const char *json_value(lua_State *L, int idx) {
  if (emp_json_is_null(L, idx)) return "null";
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len <= 40 && emp_utf8_valid(s, len, NULL) && memchr(s, '\0', len) == NULL)
        return lua_pushfstring(L, "a string (\"%s\")", s);
      return "a string";
    }
    case LUA_TNUMBER: {
      char text[32];
      emp_format_double(text, sizeof text, (double)lua_tonumber(L, idx), 1);
      return lua_pushfstring(L, "a number (%s)", text);
    }
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
    case LUA_TTABLE: {
      int array;
      lua_pushnil(L);
      if (lua_next(L, idx) == 0) return "an empty object or array";
      array = lua_type(L, -2) == LUA_TNUMBER;
      lua_pop(L, 2);
      return array ? "an array" : "an object";
    }
    default: return luaL_typename(L, idx);
  }
}

static int fail(checker *c, emp_kind kind, const char *fmt, const char *arg) {
  emp_path path;
  int i;
  path.len = 0;
  path.text[0] = '\0';
  for (i = 0; i < c->depth && i < MAX_SCHEMA_DEPTH; i++) {
    emp_path_key(&path, c->names[i]);
    if (c->index[i] > 0) emp_path_index(&path, c->index[i]);
  }
  emp_error_push(c->L, kind, path.len ? path.text : NULL, fmt, arg);
  return 0;
}

/* cjson decodes arrays to tables keyed 1..n and objects to string keys; an
 * empty one could be either. */
static int is_kind_of_table(lua_State *L, int idx, int want_array) {
  int array;
  if (!lua_istable(L, idx)) return 0;
  lua_pushnil(L);
  if (lua_next(L, idx) == 0) return 1;
  array = lua_type(L, -2) == LUA_TNUMBER;
  lua_pop(L, 2);
  return array == want_array;
}

static int check_object(checker *c, int idx, const emp_schema *s);

/* An array of objects of schema s; null items are fine (they are dropped). */
static int check_object_list(checker *c, int idx, const emp_schema *s) {
  lua_State *L = c->L;
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  int at = c->depth - 1;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    if (!emp_json_is_null(L, -1)) {
      if (at < MAX_SCHEMA_DEPTH) c->index[at] = i;
      if (!is_kind_of_table(L, lua_gettop(L), 0))
        return fail(c, EMP_DECODE, "expected an object, got %s", json_value(L, lua_gettop(L)));
      if (!check_object(c, lua_gettop(L), s)) return 0;
    }
    lua_pop(L, 1);
  }
  if (at < MAX_SCHEMA_DEPTH) c->index[at] = 0;
  return 1;
}

/* What a field of type t holds, for "expected X, got null". */
static const char *type_word(emp_type t) {
  switch (t) {
    case EMP_T_STRING: return "a string";
    case EMP_T_BOOL: return "a boolean";
    case EMP_T_OBJECT: return "an object";
    case EMP_T_ARRAY: case EMP_T_OBJECT_LIST: return "an array";
    default: return "a number";
  }
}

static int check_value(checker *c, int idx, const emp_field *f) {
  lua_State *L = c->L;
  if (emp_json_is_null(L, idx)) {
    if (f->flags & EMP_NULLABLE) return 1;
    return fail(c, EMP_DECODE, "expected %s, got null", type_word(f->type));
  }
  switch (f->type) {
    case EMP_T_STRING:
      if (lua_type(L, idx) != LUA_TSTRING) return fail(c, EMP_DECODE, "expected a string, got %s", json_value(L, idx));
      return 1;
    case EMP_T_NUMBER:
      if (lua_type(L, idx) != LUA_TNUMBER) return fail(c, EMP_DECODE, "expected a number, got %s", json_value(L, idx));
      return 1;
    case EMP_T_ID:
      /* Any number the schema allows, but one a double cannot hold exactly
       * would silently name another run: 9007199254740993 reads as ...992. */
      if (lua_type(L, idx) != LUA_TNUMBER) return fail(c, EMP_DECODE, "expected a number, got %s", json_value(L, idx));
      if (!(fabs((double)lua_tonumber(L, idx)) < EMP_MAX_EXACT_INT))
        return fail(c, EMP_DECODE,
                    "is %s as read, at or beyond 2^53: a double cannot hold such an id exactly (the text may "
                    "have been larger still), so it is refused rather than read as another run's id",
                    json_value(L, idx));
      return 1;
    case EMP_T_BOOL:
      if (lua_type(L, idx) != LUA_TBOOLEAN) return fail(c, EMP_DECODE, "expected a boolean, got %s", json_value(L, idx));
      if ((f->flags & EMP_MUST_BE_TRUE) && !lua_toboolean(L, idx))
        return fail(c, EMP_HTTP, "is false: the server did not trigger the run", NULL);
      return 1;
    case EMP_T_OBJECT:
      if (!is_kind_of_table(L, idx, 0)) return fail(c, EMP_DECODE, "expected an object, got %s", json_value(L, idx));
      return check_object(c, idx, f->object);
    case EMP_T_ARRAY:
      if (!is_kind_of_table(L, idx, 1)) return fail(c, EMP_DECODE, "expected an array, got %s", json_value(L, idx));
      return 1;
    case EMP_T_OBJECT_LIST:
      if (!is_kind_of_table(L, idx, 1)) return fail(c, EMP_DECODE, "expected an array, got %s", json_value(L, idx));
      return check_object_list(c, idx, f->object);
    default:
      return 1;
  }
}

static int check_object(checker *c, int idx, const emp_schema *s) {
  lua_State *L = c->L;
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++) {
    if (c->depth < MAX_SCHEMA_DEPTH) {
      c->names[c->depth] = f->name;
      c->index[c->depth] = 0;
    }
    c->depth++;
    lua_getfield(L, idx, f->name);  /* cjson's tables have no metatable */
    if (lua_isnil(L, -1)) {
      if (f->flags & EMP_REQUIRED) return fail(c, EMP_DECODE, "is missing from the response", NULL);
    } else if (!check_value(c, lua_gettop(L), f)) {
      return 0;
    }
    lua_pop(L, 1);
    c->depth--;
  }
  return 1;
}

/* Nulls out, whole numbers in. Depth is bounded by EMP_JSON_MAX_DEPTH.
 * Every value of a response passes here, so each is typed once. */
static void normalize(lua_State *L, int idx) {
  int nulls_in_list = 0;
  luaL_checkstack(L, 4, "empirical: nesting");
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    switch (lua_type(L, -1)) {
      case LUA_TTABLE:
        normalize(L, lua_gettop(L));
        break;
      case LUA_TLIGHTUSERDATA:   /* cjson.null */
        if (lua_type(L, -2) == LUA_TNUMBER) {
          nulls_in_list = 1;     /* compacted below: no holes in lists */
        } else {                 /* clearing a present field is allowed mid-traversal */
          lua_pushvalue(L, -2);
          lua_pushnil(L);
          lua_rawset(L, idx);
        }
        break;
#if LUA_VERSION_NUM >= 503
      case LUA_TNUMBER:
        if (!lua_isinteger(L, -1)) {
          lua_Number d = lua_tonumber(L, -1);
          if (d == floor(d) && fabs(d) <= EMP_MAX_EXACT_INT) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, (lua_Integer)d);
            lua_rawset(L, idx);
          }
        }
        break;
#endif
      default:
        break;
    }
    lua_pop(L, 1);
  }
  if (nulls_in_list) {   /* cjson's arrays have no holes: rawlen is the length */
    lua_Integer i, j = 1, last = (lua_Integer)lua_rawlen(L, idx);
    for (i = 1; i <= last; i++) {
      lua_rawgeti(L, idx, i);
      if (emp_json_is_null(L, -1)) { lua_pop(L, 1); continue; }
      lua_rawseti(L, idx, j++);
    }
    for (; j <= last; j++) {
      lua_pushnil(L);
      lua_rawseti(L, idx, j);
    }
  }
}

/* Push the body as a Lua string for cjson. Returns 1. */
static int push_body(lua_State *L, const emp_response *res) {
  if (res->body_index != 0) lua_pushvalue(L, res->body_index);
  else lua_pushlstring(L, res->body, res->len);
  return 1;
}

static int is_json_type(const char *content_type) {
  size_t n;
  const char *semi;
  if (content_type == NULL) return 1; /* not told: let the body speak */
  semi = strchr(content_type, ';');
  n = semi ? (size_t)(semi - content_type) : strlen(content_type);
  while (n > 0 && content_type[n - 1] == ' ') n--;
  return (n == 16 && strncasecmp(content_type, "application/json", 16) == 0) ||
         (n > 5 && strncasecmp(content_type + n - 5, "+json", 5) == 0);
}

/* The server's own words from an error envelope {"error": {"message": ...}}
 * on top of a decoded body, or NULL. Leaves the stack as it was. */
static const char *envelope_message(lua_State *L, int idx) {
  const char *message = NULL;
  if (!lua_istable(L, idx)) return NULL;
  lua_getfield(L, idx, "error");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "message");
    if (lua_type(L, -1) == LUA_TSTRING) message = lua_tostring(L, -1); /* anchored in the decoded body */
    lua_pop(L, 1);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    message = lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  return message;
}

/* Append the server's text, cut on a character boundary if it is long, so
 * that what we add after it always fits. */
static void add_server_text(luaL_Buffer *b, const char *s) {
  size_t len = strlen(s);
  if (len > EMP_SERVER_MESSAGE_MAX) {
    len = EMP_SERVER_MESSAGE_MAX;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    luaL_addlstring(b, s, len);
    luaL_addstring(b, "...");
  } else {
    luaL_addlstring(b, s, len);
  }
}

/* What every response error carries: the status, whether a retry is safe,
 * the first KiB of the body, and, for a call that creates a run and got
 * this far, that the run may exist. Returns 0, the failure result. */
static int annotate(lua_State *L, int err, const emp_endpoint *ep, const emp_response *res, int retryable) {
  const char *kind;
  emp_error_set_int(L, err, "status", res->status);
  emp_error_set_bool(L, err, "retryable", retryable);
  if (res->len > 0)
    emp_error_set_str(L, err, "body", res->body, res->len < EMP_ERROR_BODY_MAX ? res->len : EMP_ERROR_BODY_MAX);
  /* A 5xx, or a 2xx that cannot be read, may come after the run was created;
   * a 2xx whose body says it failed (http) did not create one. */
  lua_getfield(L, err, "kind");
  kind = lua_tostring(L, -1);
  if (!(ep->flags & EMP_IDEMPOTENT) && (res->status >= 500 || (res->status < 300 && strcmp(kind, "decode") == 0)))
    emp_error_note_may_exist(L, err, res->status);
  lua_pop(L, 1);
  return 0;
}

static int http_error(lua_State *L, const emp_endpoint *ep, const emp_response *res) {
  const char *message = NULL;
  const emp_status_note *note;
  luaL_Buffer b;
  char status[64];
  int said = 0, retryable = emp_retry_status_is_retryable(res->status, ep->flags & EMP_IDEMPOTENT);
  if (res->len > 0 && is_json_type(res->content_type) && emp_utf8_valid(res->body, res->len, NULL) &&
      push_body(L, res) && emp_json_decode(L))
    message = envelope_message(L, lua_gettop(L));   /* anchored by the decoded body, left on the stack */
  luaL_buffinit(L, &b);
  for (note = ep->notes; note != NULL && note->status != 0; note++)
    if (note->status == res->status) {
      luaL_addstring(&b, note->text);
      if (message != NULL) luaL_addstring(&b, ": ");
      said = 1;
    }
  if (message != NULL) {
    add_server_text(&b, message);
  } else if (res->status >= 300 && res->status < 400 && (ep->flags & EMP_RAW)) {
    luaL_addstring(&b, "redirected without a Location header to follow");
  } else if (res->status >= 300 && res->status < 400) {
    luaL_addstring(&b, "redirected to ");
    add_server_text(&b, res->location ? res->location : "(no Location header)");
    luaL_addstring(&b, "; redirects are not followed, so the token never leaves the API host");
  } else if (!said) {   /* nothing said yet: describe what came */
    snprintf(status, sizeof status, "HTTP %ld with ", res->status);
    luaL_addstring(&b, status);
    if (res->len == 0) luaL_addstring(&b, "an empty body");
    else {
      luaL_addstring(&b, "a ");
      add_server_text(&b, res->content_type ? res->content_type : "non-JSON");
      luaL_addstring(&b, " body");
    }
  }
  if ((res->status == 401 || res->status == 403) && !(ep->flags & EMP_RAW))
    luaL_addstring(&b, " (check the token: EMPIRICALRUN_KEY)");
  luaL_pushresult(&b);
  return annotate(L, emp_error_push(L, EMP_HTTP, NULL, "%s", lua_tostring(L, -1)), ep, res, retryable);
}

static int decode_error(lua_State *L, const emp_endpoint *ep, const emp_response *res, const char *fmt, const char *arg) {
  return annotate(L, emp_error_push(L, EMP_DECODE, NULL, fmt, arg), ep, res, 0);
}

/* Push the value at the dotted key `path` of the table at idx ("data.test_run"). */
static void push_at(lua_State *L, int idx, const char *path) {
  lua_pushvalue(L, idx);
  while (path != NULL && *path != '\0') {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    lua_pushlstring(L, path, n);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    path = dot ? dot + 1 : NULL;
  }
}

int emp_decode(lua_State *L, const emp_endpoint *ep, const emp_response *res) {
  checker c;
  int doc;
  size_t bad;
  const char *server_message;
  if (res->status < 200 || res->status > 299) return http_error(L, ep, res);
  if (ep->flags & EMP_RAW) {   /* the report: its text is the result */
    push_body(L, res);
    return 1;
  }
  if (!is_json_type(res->content_type))
    return decode_error(L, ep, res, "expected an application/json response, got %s", res->content_type);
  if (!emp_utf8_valid(res->body, res->len, &bad))
    return decode_error(L, ep, res, "the response is not valid UTF-8", NULL);
  push_body(L, res);
  if (!emp_json_decode(L))
    return decode_error(L, ep, res, "the response is not valid JSON: %s", lua_tostring(L, -1));
  doc = lua_gettop(L);
  if (!is_kind_of_table(L, doc, 0) || emp_json_is_null(L, doc))
    return decode_error(L, ep, res, "expected a JSON object, got %s", json_value(L, doc));
  server_message = envelope_message(L, doc);
  if (server_message != NULL)
    return annotate(L, emp_error_push(L, EMP_HTTP, NULL, "%s", server_message), ep, res, 0);
  c.L = L;
  c.depth = 0;
  if (!check_object(&c, doc, ep->response))
    return annotate(L, lua_gettop(L), ep, res, 0);  /* the failed check's error is on top */
  normalize(L, doc);
  push_at(L, doc, ep->result);
  if (ep->beside != NULL && lua_istable(L, -1)) {
    lua_getfield(L, doc, ep->beside);
    lua_setfield(L, -2, ep->beside);
  }
  return 1;
}
