/* Error objects and their __tostring. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

#define EMP_KIND_STRING(name, str) str,
static const char *const kind_names[] = { EMP_ERROR_KINDS(EMP_KIND_STRING) NULL };
#undef EMP_KIND_STRING

/* Most messages fit here; a longer one is written into a userdata, which
 * the collector frees even if something below raises. */
#define EMP_MESSAGE_ON_STACK 512

static int push_errorv(lua_State *L, emp_kind kind, const char *field,
                       const char *fmt, va_list ap) {
  char small[EMP_MESSAGE_ON_STACK], *text = small;
  int idx, n, scratch = 0;
  va_list again;
  va_copy(again, ap);
  n = vsnprintf(small, sizeof small, fmt, ap);
  if (n >= (int)sizeof small) {
    text = (char *)lua_newuserdata(L, (size_t)n + 1);
    scratch = lua_gettop(L);
    vsnprintf(text, (size_t)n + 1, fmt, again);
  }
  va_end(again);
  if (n < 0) text = "(a message that could not be formatted)";
  lua_createtable(L, 0, 6);
  idx = lua_gettop(L);
  lua_pushstring(L, kind_names[kind]);
  lua_setfield(L, idx, "kind");
  if (field != NULL && field[0] != '\0') {
    lua_pushstring(L, field);
    lua_setfield(L, idx, "field");
    lua_pushfstring(L, "%s: %s", field, text);
  } else {
    lua_pushstring(L, text);
  }
  lua_setfield(L, idx, "message");
  luaL_setmetatable(L, EMP_ERROR_MT);
  if (scratch) {
    lua_remove(L, scratch);
    idx--;
  }
  return idx;
}

int emp_error_push(lua_State *L, emp_kind kind, const char *field, const char *fmt, ...) {
  va_list ap;
  int idx;
  va_start(ap, fmt);
  idx = push_errorv(L, kind, field, fmt, ap);
  va_end(ap);
  return idx;
}

int emp_fail(lua_State *L, emp_kind kind, const char *field, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  push_errorv(L, kind, field, fmt, ap);
  va_end(ap);
  return 2;
}

void emp_error_set_int(lua_State *L, int idx, const char *key, long long value) {
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)value);   /* no trip through a double: exact, whatever the value */
#else
  lua_pushnumber(L, (lua_Number)value);
#endif
  lua_setfield(L, idx, key);
}

void emp_error_set_bool(lua_State *L, int idx, const char *key, int value) {
  lua_pushboolean(L, value);
  lua_setfield(L, idx, key);
}

void emp_error_set_str(lua_State *L, int idx, const char *key, const char *value, size_t len) {
  lua_pushlstring(L, value, len);
  lua_setfield(L, idx, key);
}

/* The closing advice of a "may have been created" message, also kept as
 * err.advice: words for any caller (a Lua program, the command, the
 * OpenResty service), so no method names; one with its own (the command's
 * `empirical list`) replaces exactly this tail. */
static const char MAY_EXIST_ADVICE[] =
  "look for it in the project's runs (the list endpoint or the dashboard) before triggering again";

void emp_error_note_may_exist(lua_State *L, int idx, long status) {
  char how[64] = "the request may have reached the server";
  lua_getfield(L, idx, "run_may_exist");
  if (lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (status > 0) snprintf(how, sizeof how, "the server answered HTTP %ld", status);
  lua_getfield(L, idx, "message");
  lua_pushfstring(L, "%s; %s, so the run may have been created: %s", lua_tostring(L, -1), how, MAY_EXIST_ADVICE);
  lua_setfield(L, idx, "message");
  lua_pop(L, 2);
  emp_error_set_bool(L, idx, "run_may_exist", 1);
  emp_error_set_str(L, idx, "advice", MAY_EXIST_ADVICE, sizeof MAY_EXIST_ADVICE - 1);
}

/* Read a string or number field of the table at index 1, or NULL. */
static const char *field_text(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  return lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
}

/* "empirical: http 404: GET /api/test-runs/9: Test run not found (after 2 attempts)" */
static int error_tostring(lua_State *L) {
  char status[32] = "", attempts[48] = "";
  const char *kind, *request, *message;
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field_text(L, "kind");
  request = field_text(L, "request");
  message = field_text(L, "message");
  lua_getfield(L, 1, "status");   /* any value a caller put there: only a plausible one is shown */
  if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 100 && lua_tonumber(L, -1) <= 999)
    snprintf(status, sizeof status, " %d", (int)lua_tonumber(L, -1));
  lua_getfield(L, 1, "attempts");
  if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 1 && lua_tonumber(L, -1) < 1e6)
    snprintf(attempts, sizeof attempts, " (after %d attempts)", (int)lua_tonumber(L, -1));
  lua_pushfstring(L, "empirical: %s%s: %s%s%s%s", kind ? kind : "error", status,
                  request ? request : "", request ? ": " : "",
                  message ? message : "(no message)", attempts);
  return 1;
}

void emp_error_open(lua_State *L) {
  if (luaL_newmetatable(L, EMP_ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "empirical.error");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}

/* core.error(kind, message [, fields]): the Lua layer's errors share the
 * metatable, so users see one kind of object whatever failed. */
int emp_error_lua_new(lua_State *L) {
  int kind = luaL_checkoption(L, 1, NULL, kind_names);
  const char *message = luaL_checkstring(L, 2);
  int idx = emp_error_push(L, (emp_kind)kind, NULL, "%s", message);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, idx);
    }
  }
  return 1;
}
