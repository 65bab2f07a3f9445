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

/* Response schemas nest four deep (data.test_run.testRun.id). */
#define MAX_SCHEMA_DEPTH 8

typedef struct checker {
  lua_State *L;
  /* The names leading to the value being checked. Its path is written out
   * only for an error: most responses are fine, and every get checks ~25 fields. */
  const char *names[MAX_SCHEMA_DEPTH];
  int depth;
} checker;

static int fail(checker *c, emp_kind kind, const char *fmt, const char *arg) {
  emp_path path;
  int i;
  path.len = 0;
  path.text[0] = '\0';
  for (i = 0; i < c->depth && i < MAX_SCHEMA_DEPTH; i++) emp_path_key(&path, c->names[i]);
  emp_error_push(c->L, kind, path.len ? path.text : NULL, fmt, arg);
  return 0;
}

static const char *json_type(lua_State *L, int idx) {
  if (emp_json_is_null(L, idx)) return "null";
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return "a string";
    case LUA_TNUMBER: return "a number";
    case LUA_TBOOLEAN: return "a boolean";
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

static int check_value(checker *c, int idx, const emp_field *f) {
  lua_State *L = c->L;
  if (emp_json_is_null(L, idx)) {
    if (f->flags & EMP_NULLABLE) return 1;
    return fail(c, EMP_DECODE, "expected a value, got null", NULL);
  }
  switch (f->type) {
    case EMP_T_STRING:
      if (lua_type(L, idx) != LUA_TSTRING) return fail(c, EMP_DECODE, "expected a string, got %s", json_type(L, idx));
      return 1;
    case EMP_T_NUMBER:
      if (lua_type(L, idx) != LUA_TNUMBER) return fail(c, EMP_DECODE, "expected a number, got %s", json_type(L, idx));
      return 1;
    case EMP_T_ID: {
      double d = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : 0;
      if (d < 1 || d != floor(d) || d > EMP_MAX_EXACT_INT)
        return fail(c, EMP_DECODE, "expected a whole number from 1 to 2^53, got %s", json_type(L, idx));
      return 1;
    }
    case EMP_T_BOOL:
      if (lua_type(L, idx) != LUA_TBOOLEAN) return fail(c, EMP_DECODE, "expected a boolean, got %s", json_type(L, idx));
      if ((f->flags & EMP_MUST_BE_TRUE) && !lua_toboolean(L, idx))
        return fail(c, EMP_HTTP, "is false: the server did not trigger the run", NULL);
      return 1;
    case EMP_T_OBJECT:
      if (!is_kind_of_table(L, idx, 0)) return fail(c, EMP_DECODE, "expected an object, got %s", json_type(L, idx));
      return check_object(c, idx, f->object);
    case EMP_T_ARRAY:
      if (!is_kind_of_table(L, idx, 1)) return fail(c, EMP_DECODE, "expected an array, got %s", json_type(L, idx));
      return 1;
    default:
      return 1;
  }
}

static int check_object(checker *c, int idx, const emp_schema *s) {
  lua_State *L = c->L;
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++) {
    if (c->depth < MAX_SCHEMA_DEPTH) c->names[c->depth] = f->name;
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

/* What every response error carries: the status, whether a retry is safe,
 * and the first KiB of the body. Returns 0, the failure result. */
static int annotate(lua_State *L, int err, const emp_response *res, int retryable) {
  emp_error_set_int(L, err, "status", res->status);
  emp_error_set_bool(L, err, "retryable", retryable);
  if (res->len > 0)
    emp_error_set_str(L, err, "body", res->body, res->len < EMP_ERROR_BODY_MAX ? res->len : EMP_ERROR_BODY_MAX);
  return 0;
}

static int http_error(lua_State *L, const emp_endpoint *ep, const emp_response *res) {
  const char *message = NULL;
  char text[512];
  int err, retryable = emp_retry_status_is_retryable(res->status, ep->creates_run);
  if (res->len > 0 && is_json_type(res->content_type) && emp_utf8_valid(res->body, res->len, NULL) &&
      push_body(L, res) && emp_json_decode(L))
    message = envelope_message(L, lua_gettop(L));
  if (message == NULL && res->status >= 300 && res->status < 400)
    snprintf(text, sizeof text, "redirected to %s; redirects are not followed, so the token never leaves the API host",
             res->location ? res->location : "(no Location header)");
  else if (message == NULL)
    snprintf(text, sizeof text, "HTTP %ld with %s%s body", res->status,
             res->len == 0 ? "an empty" : "a ",
             res->len == 0 ? "" : (res->content_type ? res->content_type : "non-JSON"));
  else
    snprintf(text, sizeof text, "%s", message);
  if (res->status == 401 || res->status == 403)
    strncat(text, " (check the token: EMPIRICALRUN_KEY)", sizeof text - strlen(text) - 1);
  if (ep->creates_run && res->status >= 500)
    strncat(text, "; the run may have been created: look for it before triggering again",
            sizeof text - strlen(text) - 1);
  err = emp_error_push(L, EMP_HTTP, NULL, "%s", text);
  return annotate(L, err, res, retryable);
}

static int decode_error(lua_State *L, const emp_response *res, const char *fmt, const char *arg) {
  return annotate(L, emp_error_push(L, EMP_DECODE, NULL, fmt, arg), res, 0);
}

int emp_decode(lua_State *L, const emp_endpoint *ep, const emp_response *res) {
  checker c;
  int doc, data;
  size_t bad;
  const char *server_message;
  if (res->status < 200 || res->status > 299) return http_error(L, ep, res);
  if (!is_json_type(res->content_type))
    return decode_error(L, res, "expected an application/json response, got %s", res->content_type);
  if (!emp_utf8_valid(res->body, res->len, &bad))
    return decode_error(L, res, "the response is not valid UTF-8", NULL);
  push_body(L, res);
  if (!emp_json_decode(L))
    return decode_error(L, res, "the response is not valid JSON: %s", lua_tostring(L, -1));
  doc = lua_gettop(L);
  if (!is_kind_of_table(L, doc, 0) || emp_json_is_null(L, doc))
    return decode_error(L, res, "expected a JSON object, got %s", json_type(L, doc));
  server_message = envelope_message(L, doc);
  if (server_message != NULL)
    return annotate(L, emp_error_push(L, EMP_HTTP, NULL, "%s", server_message), res, 0);
  c.L = L;
  c.names[0] = "data";
  c.depth = 1;
  lua_getfield(L, doc, "data");
  data = lua_gettop(L);
  if (!is_kind_of_table(L, data, 0) || emp_json_is_null(L, data)) {
    fail(&c, EMP_DECODE, "expected an object, got %s", lua_isnil(L, data) ? "nothing" : json_type(L, data));
  } else if (check_object(&c, data, ep->data)) {
    lua_getfield(L, data, ep->result);
    normalize(L, lua_gettop(L));
    return 1;
  }
  return annotate(L, lua_gettop(L), res, 0);  /* the failed check's error is on top */
}
