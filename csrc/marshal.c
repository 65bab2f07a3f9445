/* Requests: from an endpoint's row and the caller's params to what goes on
 * the wire, the target (path and query string) and the JSON body. The
 * params are validated first (validate.c), so every value read here has
 * the type its field says. */
#include <string.h>

#include <curl/curl.h>

#include "json.h"
#include "validate.h"

/* The target is built as pieces on the stack, joined by lua_concat: no
 * luaL_Buffer, whose storage may sit on the stack while values come and go
 * above it. */

/* Push the digits of d, a validated whole number from 1 to 2^53. */
static void push_digits(lua_State *L, double d) {
  char digits[24], *end = digits + sizeof digits;
  char *start = emp_digits_before(end, (unsigned long long)d);
  lua_pushlstring(L, start, (size_t)(end - start));
}

/* Replace the string on top with its percent-encoding, by libcurl. */
static void escape_top(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  char *escaped = curl_easy_escape(NULL, s, (int)len);   /* strings are at most 64 KiB */
  if (escaped == NULL) luaL_error(L, "empirical: out of memory");
  lua_pushstring(L, escaped);
  curl_free(escaped);
  lua_remove(L, -2);
}

/* Replace the query value of field f, on top, with its text. */
static void to_query_text(lua_State *L, const emp_field *f) {
  if (f->type == EMP_T_INTEGER) {
    double d = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    push_digits(L, d);
  } else if (f->type == EMP_T_ID_LIST) {   /* "3,4": the vendor takes the ids comma-separated */
    int list = lua_gettop(L);
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, list);
    int pieces = 0;
    for (i = 1; i <= n; i++) {
      double d;
      lua_rawgeti(L, list, i);
      d = (double)lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (i > 1) lua_pushliteral(L, ",");
      push_digits(L, d);
      pieces += i > 1 ? 2 : 1;
      if (pieces >= 32) {   /* joined in batches: linear, and the stack stays small */
        lua_concat(L, pieces);
        pieces = 1;
      }
    }
    lua_concat(L, pieces);
    lua_remove(L, list);
  }
}

/* Push the endpoint's path with each {name} replaced by the validated whole
 * number from params (only digits ever reach a path), then the query fields
 * that are set, in schema order. */
static void push_target(lua_State *L, const emp_endpoint *ep, int params) {
  const char *t = ep->path;
  const emp_field *f;
  int base = lua_gettop(L), first = 1;
  luaL_checkstack(L, 8, "empirical: the request's target");
  for (;;) {
    const char *open = strchr(t, '{'), *close;
    if (open == NULL || (close = strchr(open, '}')) == NULL) {
      lua_pushstring(L, t);
      break;
    }
    lua_pushlstring(L, t, (size_t)(open - t));
    lua_pushlstring(L, open + 1, (size_t)(close - open - 1));
    lua_rawget(L, params);
    to_query_text(L, &emp_an_id);   /* a {name} of a path holds an id */
    lua_concat(L, lua_gettop(L) - base);
    t = close + 1;
  }
  for (f = ep->input->fields; f->name != NULL; f++) {
    if (!(f->flags & EMP_IN_QUERY)) continue;
    emp_raw_field(L, params, f->name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    to_query_text(L, f);
    escape_top(L);
    lua_pushfstring(L, "%c%s=", first ? '?' : '&', f->name);   /* names are plain ASCII */
    lua_insert(L, -2);
    lua_concat(L, lua_gettop(L) - base);
    first = 0;
  }
  lua_concat(L, lua_gettop(L) - base);
}

/* The table at `out` minus the fields that went into the path and query:
 * the body, or nil when nothing is left to send. */
static void push_body_table(lua_State *L, const emp_endpoint *ep, int out, int params) {
  const emp_field *f;
  if (!lua_rawequal(L, out, params))   /* a copy of ours: free to change */
    for (f = ep->input->fields; f->name != NULL; f++)
      if (f->flags & (EMP_IN_PATH | EMP_IN_QUERY)) {
        lua_pushnil(L);
        lua_setfield(L, out, f->name);
      }
  lua_pushnil(L);
  if (lua_next(L, out) == 0) {
    lua_pushnil(L);
    return;
  }
  lua_pop(L, 2);
  lua_pushvalue(L, out);
}

int emp_marshal(lua_State *L, const emp_endpoint *ep, int params, int strict) {
  int spliced = 0, body = emp_schema_has_body(ep->input), out;
  const emp_field *f;
  int outside = 0;   /* fields that go elsewhere than the body */
  for (f = ep->input->fields; f->name != NULL; f++)
    if (f->flags & (EMP_IN_PATH | EMP_IN_QUERY)) outside = 1;
  /* The caller's table goes to cjson as it is when it is valid and needs no
   * rewriting; a body beside path or query fields (rerun, cancel) is a copy. */
  if ((!body || !outside) && emp_check_in_place(L, ep->input, params, strict)) {
    lua_pushvalue(L, params);
  } else if (!emp_validate(L, ep->input, params, EMP_INVALID, strict, "params", &spliced)) {
    return 0;
  }
  out = lua_gettop(L);
  push_target(L, ep, params);
  if (!body) {
    lua_pushnil(L);
  } else {
    push_body_table(L, ep, out, params);
    if (!lua_isnil(L, -1) && !emp_json_encode(L, lua_gettop(L), spliced)) {
      emp_error_push(L, EMP_INVALID, NULL, "could not be encoded as JSON: %s", lua_tostring(L, -1));
      return 0;
    }
    if (!lua_isnil(L, -1)) lua_remove(L, -2);   /* the body table, now text */
  }
  lua_remove(L, out);   /* the validated table */
  return 1;
}
