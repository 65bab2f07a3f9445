/* JSON through lua-cjson; see json.h for the number splice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "text.h"

/* Registry keys: the instance's encode and decode functions. */
static const char encode_key = 'e';
static const char decode_key = 'd';

static void configure(lua_State *L, int instance, const char *option, int a) {
  lua_getfield(L, instance, option);
  lua_pushinteger(L, a);
  lua_call(L, 1, 0);
}

void emp_json_open(lua_State *L) {
  int instance;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    luaL_error(L, "empirical.core needs lua-cjson (Debian: apt-get install lua-cjson): %s", lua_tostring(L, -1));
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  instance = lua_gettop(L);
  configure(L, instance, "decode_max_depth", EMP_JSON_MAX_DEPTH);
  configure(L, instance, "encode_max_depth", EMP_JSON_MAX_DEPTH);
  lua_getfield(L, instance, "decode_invalid_numbers"); /* no NaN, Infinity or hex in responses */
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, instance, "encode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &encode_key);
  lua_getfield(L, instance, "decode");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &decode_key);
  lua_pop(L, 2);
}

/* cjson writes numbers as "%.14g": exact for whole numbers below 1e14. */
#define CJSON_EXACT_WHOLE 1e14

int emp_json_number_is_plain(lua_State *L, int idx) {
  char text[40];
  double d;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    lua_Integer n = lua_tointeger(L, idx);
    return n > -(lua_Integer)CJSON_EXACT_WHOLE && n < (lua_Integer)CJSON_EXACT_WHOLE;
  }
#endif
  d = (double)lua_tonumber(L, idx);
  if (d == 0) return !signbit(d);
  if (d == floor(d) && fabs(d) < CJSON_EXACT_WHOLE) return 1;
  return emp_format_double(text, sizeof text, d, 14) == 14;
}

void emp_json_push_number(lua_State *L, int idx, int *spliced) {
  char text[48];   /* "\0" and at most 24 characters of "%.17g" or 20 digits */
  double d;
  if (emp_json_number_is_plain(L, idx)) {
    lua_pushvalue(L, idx);
    return;
  }
  d = (double)lua_tonumber(L, idx);
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    snprintf(text + 1, sizeof text - 1, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
  } else
#endif
  if (d == 0) {                                   /* -0 goes out as 0, on every Lua */
    emp_pushwhole(L, 0.0);
    return;
  } else if (d == floor(d) && fabs(d) < 9.2e18) {   /* whole: every digit of the double */
    snprintf(text + 1, sizeof text - 1, "%.0f", d);
  } else {
    emp_format_double(text + 1, sizeof text - 1, d, 14);
  }
  text[0] = '\0';
  lua_pushlstring(L, text, 1 + strlen(text + 1));
  (*spliced)++;
}

/* Replace every "\u0000<number>" in the string on top with <number>. */
static void splice_numbers(lua_State *L) {
  static const char marker[] = "\"\\u0000";
  size_t len, marker_len = sizeof marker - 1;
  const char *s = lua_tolstring(L, -1, &len), *end = s + len, *p;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  while ((p = strstr(s, marker)) != NULL) {   /* cjson output has no NUL bytes */
    const char *num = p + marker_len, *q = memchr(num, '"', (size_t)(end - num));
    if (q == NULL) break;
    luaL_addlstring(&b, s, (size_t)(p - s));
    luaL_addlstring(&b, num, (size_t)(q - num));
    s = q + 1;
  }
  luaL_addlstring(&b, s, (size_t)(end - s));
  luaL_pushresult(&b);
  lua_remove(L, -2);
}

int emp_json_encode(lua_State *L, int idx, int spliced) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &encode_key);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return 0;
  if (spliced > 0) splice_numbers(L);
  return 1;
}

int emp_json_decode(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &decode_key);
  lua_insert(L, -2);
  return lua_pcall(L, 1, 1, 0) == LUA_OK;
}

int emp_json_is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}
