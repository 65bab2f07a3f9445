/* empirical.core: the module entry. Validation and marshalling of the
 * endpoints (validate.c with overrides.c, marshal.c, decode.c, text.c, from
 * the rows in schema.c; JSON through lua-cjson in json.c), transport
 * (client.c, request.c, url.c, retry.c), waiting and signals (signals.c),
 * events (events.c), errors (errors.c), and the Lua versions (compat.c). The Lua layer is lua/empirical. */
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <curl/curl.h>

#include "decode.h"
#include "errors.h"
#include "json.h"
#include "signals.h"
#include "transport.h"
#include "validate.h"

/* The endpoint named at arg, or NULL with nil and an error pushed. */
static const emp_endpoint *find_op(lua_State *L, int arg) {
  const emp_endpoint *ep = lua_type(L, arg) == LUA_TSTRING ? emp_endpoint_find(lua_tostring(L, arg)) : NULL;
  if (ep == NULL)
    emp_fail(L, EMP_INVALID, "op", "unknown operation %s (%s)",
             lua_type(L, arg) == LUA_TSTRING ? lua_tostring(L, arg) : luaL_typename(L, arg), emp_endpoint_names());
  return ep;
}

/* core.OPERATIONS: the endpoint rows, in order, for the Lua layer (the
 * client's methods, start, the docs) to read rather than repeat:
 * {name=, method=, path=, idempotent=, body=, path_params={...}, query={...}}. */
static void push_operations(lua_State *L) {
  const emp_endpoint *ep;
  const emp_field *f;
  lua_Integer i = 0, n_path, n_query;
  lua_newtable(L);
  for (ep = emp_endpoints; ep->name != NULL; ep++) {
    lua_createtable(L, 0, 7);
    lua_pushstring(L, ep->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, ep->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, ep->path);
    lua_setfield(L, -2, "path");
    lua_pushboolean(L, (ep->flags & EMP_IDEMPOTENT) != 0);
    lua_setfield(L, -2, "idempotent");
    lua_pushboolean(L, emp_schema_has_body(ep->input));
    lua_setfield(L, -2, "body");
    lua_newtable(L);
    lua_newtable(L);
    n_path = n_query = 0;
    for (f = ep->input->fields; f->name != NULL; f++) {
      lua_pushstring(L, f->name);
      if (f->flags & EMP_IN_PATH) lua_rawseti(L, -3, ++n_path);
      else if (f->flags & EMP_IN_QUERY) lua_rawseti(L, -2, ++n_query);
      else lua_pop(L, 1);
    }
    lua_setfield(L, -3, "query");
    lua_setfield(L, -2, "path_params");
    lua_rawseti(L, -2, ++i);
  }
}

/* core.encode(op, params [, strict]) -> {method=, path=, body=?} | nil, err */
static int core_encode(lua_State *L) {
  const emp_endpoint *ep = find_op(L, 1);
  int strict = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  if (ep == NULL) return 2;
  lua_settop(L, 2);
  if (!emp_marshal(L, ep, 2, strict)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_createtable(L, 0, 3);           /* path, body, {} */
  lua_insert(L, -3);                  /* {}, path, body */
  lua_setfield(L, -3, "body");        /* a nil body leaves it out */
  lua_setfield(L, -2, "path");
  lua_pushstring(L, ep->method);
  lua_setfield(L, -2, "method");
  return 1;
}

/* core.decode(op, status, body [, content_type [, location]]) -> result | nil, err */
static int core_decode(lua_State *L) {
  const emp_endpoint *ep = find_op(L, 1);
  emp_response res;
  if (ep == NULL) return 2;
  if (!(lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) >= 100 && lua_tonumber(L, 2) <= 999))
    return emp_fail(L, EMP_INVALID, "status", "expected an HTTP status from 100 to 999, got %s", luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TSTRING)
    return emp_fail(L, EMP_INVALID, "body", "expected a string, got %s", luaL_typename(L, 3));
  res.status = (long)lua_tonumber(L, 2);
  res.body = luaL_optlstring(L, 3, "", &res.len);
  res.body_index = lua_isnoneornil(L, 3) ? 0 : 3;
  res.content_type = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : NULL;   /* else: not told */
  res.location = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : NULL;
  if (emp_decode(L, ep, &res)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

static int core_curl_version(lua_State *L) {
  lua_pushstring(L, curl_version());
  return 1;
}

/* core.isatty(file) -> boolean: progress output picks a live line on a
 * terminal and plain lines in CI logs. */
static int core_isatty(lua_State *L) {
  FILE *f = emp_tofile(L, 1);
  lua_pushboolean(L, f != NULL && isatty(fileno(f)));
  return 1;
}

/* core.terminal_width(file) -> columns | nil: progress lines fit the
 * terminal they are drawn on. */
static int core_terminal_width(lua_State *L) {
  FILE *f = emp_tofile(L, 1);
  struct winsize size;
  if (f == NULL || !isatty(fileno(f)) || ioctl(fileno(f), TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
    lua_pushnil(L);
  } else {
    lua_pushinteger(L, size.ws_col);
  }
  return 1;
}

int luaopen_empirical_core(lua_State *L) {
  static int curl_ready = 0;
  static const luaL_Reg functions[] = {
    { "encode", core_encode },
    { "decode", core_decode },
    { "client", emp_client_new },
    { "error", emp_error_lua_new },
    { "sleep", emp_sleep },
    { "now", emp_now },
    { "catch_signals", emp_catch_signals },
    { "release_signals", emp_release_signals },
    { "pending_signal", emp_pending_signal },
    { "terminal_width", core_terminal_width },
    { "curl_version", core_curl_version },
    { "isatty", core_isatty },
    { NULL, NULL }
  };
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "empirical: curl_global_init failed");
    curl_ready = 1;
  }
  emp_error_open(L);
  emp_json_open(L);
  emp_client_open(L);
  emp_request_open(L);
  luaL_newlib(L, functions);
  lua_pushliteral(L, EMP_VERSION);
  lua_setfield(L, -2, "VERSION");
  push_operations(L);
  lua_setfield(L, -2, "OPERATIONS");
  return 1;
}
