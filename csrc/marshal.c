/* Requests: from an endpoint's row and the caller's params to what goes on
 * the wire, the target (path and query string) and the JSON body. The
 * params are validated first (validate.c), so every value read here has
 * the type its field says. */
#include <string.h>

#include <curl/curl.h>

#include "json.h"
#include "validate.h"

/* Append the value at idx, a validated whole number from 1 to 2^53. */
static void add_digits(luaL_Buffer *b, lua_State *L, int idx) {
  char digits[24], *end = digits + sizeof digits;
  char *start = emp_digits_before(end, (unsigned long long)lua_tonumber(L, idx));
  luaL_addlstring(b, start, (size_t)(end - start));
}

/* Append the string at the top of the stack percent-encoded by libcurl, and
 * pop it. libcurl's copy is freed before anything here can raise. */
static void add_escaped(luaL_Buffer *b, lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  char *escaped = curl_easy_escape(NULL, s, (int)len);   /* strings are at most 64 KiB */
  lua_pop(L, 1);
  if (escaped == NULL) luaL_error(L, "empirical: out of memory");
  lua_pushstring(L, escaped);
  curl_free(escaped);
  luaL_addvalue(b);
}

/* The query value of field f, at the top of the stack: pushed as text. */
static void push_query_value(lua_State *L, const emp_field *f) {
  luaL_Buffer b;
  lua_Integer i, n;
  int list = lua_gettop(L);
  if (f->type != EMP_T_INTEGER && f->type != EMP_T_ID_LIST) {
    lua_pushvalue(L, list);
    return;
  }
  luaL_buffinit(L, &b);
  if (f->type == EMP_T_INTEGER) {
    add_digits(&b, L, list);
  } else {   /* "3,4": the vendor takes the ids comma-separated */
    n = (lua_Integer)lua_rawlen(L, list);
    for (i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ',');
      lua_rawgeti(L, list, i);
      add_digits(&b, L, -1);
      lua_pop(L, 1);
    }
  }
  luaL_pushresult(&b);
}

/* Push the endpoint's path with each {name} replaced by the validated whole
 * number from params (only digits ever reach a path), then the query fields
 * that are set, in schema order. */
static void push_target(lua_State *L, const emp_endpoint *ep, int params) {
  const char *t = ep->path;
  const emp_field *f;
  luaL_Buffer b;
  int first = 1;
  luaL_buffinit(L, &b);
  while (*t != '\0') {
    const char *open = strchr(t, '{'), *close;
    if (open == NULL || (close = strchr(open, '}')) == NULL) {
      luaL_addstring(&b, t);
      break;
    }
    luaL_addlstring(&b, t, (size_t)(open - t));
    lua_pushlstring(L, open + 1, (size_t)(close - open - 1));
    lua_rawget(L, params);
    add_digits(&b, L, -1);
    lua_pop(L, 1);
    t = close + 1;
  }
  for (f = ep->input->fields; f->name != NULL; f++) {
    if (!(f->flags & EMP_IN_QUERY)) continue;
    emp_raw_field(L, params, f->name);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    push_query_value(L, f);
    lua_remove(L, -2);
    luaL_addchar(&b, first ? '?' : '&');
    luaL_addstring(&b, f->name);   /* names are plain ASCII */
    luaL_addchar(&b, '=');
    add_escaped(&b, L);
    first = 0;
  }
  luaL_pushresult(&b);
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
