/* environment_variables_overrides: a list of {name =, value =}, or a map
 * NAME -> value that is sent as that list, sorted by name. Names are shell
 * names and appear once. See check.h and the two modes in validate.c. */
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Environment variable names as shells take them. */
static int check_env_name(validator *v, const char *s, size_t len) {
  size_t i;
  if (!emp_check_text(v, s, len, EMP_NONEMPTY)) return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    int ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return fail(v, "\"%s\" is not an environment variable name (letters, digits and _, not starting with a digit)", s, NULL);
  }
  return 1;
}

/* Check the value at `value` (absolute) and, in copy mode, push {name=, value=}. */
static int push_override(validator *v, const char *name, size_t len, int value) {
  lua_State *L = v->L;
  size_t old = enter_key(v, "value");
  if (!emp_check_string(v, value, 0)) return 0;
  leave(v, old);
  if (!v->copy) return 1;
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "value");
  lua_pushlstring(L, name, len);
  lua_setfield(L, -2, "name");
  return 1;
}

static const emp_field override_fields[] = {
  { "name", EMP_T_STRING, EMP_REQUIRED, NULL, NULL, 0, 0 }, { "value", EMP_T_STRING, EMP_REQUIRED, NULL, NULL, 0, 0 },
  { NULL, EMP_T_STRING, 0, NULL, NULL, 0, 0 }
};

/* Push the name and the value of the {name = ..., value = ...} at `item`
 * (nil where missing), refusing any other key. One walk over the item's
 * keys: no field lookups. */
static int override_parts(validator *v, int item) {
  lua_State *L = v->L;
  int name, value;
  char got[48];
  lua_pushnil(L);
  lua_pushnil(L);
  value = lua_gettop(L);
  name = value - 1;
  lua_pushnil(L);
  while (lua_next(L, item) != 0) {
    size_t len;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (key == NULL) return fail(v, "expected {name = ..., value = ...}, found key %s", emp_describe(L, -2, got, sizeof got), NULL);
    if (len == 4 && memcmp(key, "name", 4) == 0) lua_replace(L, name);
    else if (len == 5 && memcmp(key, "value", 5) == 0) lua_replace(L, value);
    else return emp_fail_unknown(v, key, override_fields);
  }
  return 1;
}

static int overrides_from_list(validator *v, int idx, lua_Integer n) {
  lua_State *L = v->L;
  lua_Integer i;
  int out = 0, seen;
  char got[48];
  lua_createtable(L, 0, (int)n);   /* sized once: no rehash per name */
  seen = lua_gettop(L);
  if (v->copy) {
    lua_createtable(L, (int)n, 0);
    out = lua_gettop(L);
  }
  for (i = 1; i <= n; i++) {
    size_t old = enter_index(v, i), len, o;
    int item, nameidx;
    const char *name;
    lua_rawgeti(L, idx, i);
    item = lua_gettop(L);
    if (!lua_istable(L, item)) return fail(v, "expected {name = ..., value = ...}, got %s", emp_describe(L, item, got, sizeof got), NULL);
    if (!override_parts(v, item)) return 0;
    nameidx = item + 1;
    o = enter_key(v, "name");
    if (lua_type(L, nameidx) != LUA_TSTRING) {
      if (lua_isnil(L, nameidx)) return fail(v, "is required", NULL, NULL);
      return fail(v, "expected a string, got %s", emp_describe(L, nameidx, got, sizeof got), NULL);
    }
    name = lua_tolstring(L, nameidx, &len);
    if (!check_env_name(v, name, len)) return 0;
    lua_pushvalue(L, nameidx);
    lua_rawget(L, seen);
    if (!lua_isnil(L, -1)) return fail(v, "%s is set twice", name, NULL);
    lua_pop(L, 1);
    lua_pushvalue(L, nameidx);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    leave(v, o);
    if (lua_isnil(L, nameidx + 1)) {
      enter_key(v, "value");
      return fail(v, "is required", NULL, NULL);
    }
    if (!push_override(v, name, len, nameidx + 1)) return 0;
    if (v->copy) lua_rawseti(L, out, i);
    lua_settop(L, item - 1);
    leave(v, old);
  }
  lua_remove(L, seen);
  return 1;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* {NAME = "value"} is sent as a list sorted by name, so the body is stable.
 * Copy mode only: check mode sends such a table to the copy pass. */
static int overrides_from_map(validator *v, int idx) {
  lua_State *L = v->L;
  size_t count = 0, i;
  const char **names;
  int out;
  char got[48];
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t len, old;
    const char *name;
    if (lua_type(L, -2) != LUA_TSTRING)
      return fail(v, "expected a list of {name=, value=} or a map of NAME = value, found key %s",
                  emp_describe(L, -2, got, sizeof got), NULL);
    name = lua_tolstring(L, -2, &len);
    old = emp_path_key(&v->path, name);
    if (!check_env_name(v, name, len)) return 0;
    emp_path_restore(&v->path, old);
    count++;
    lua_pop(L, 1);
  }
  /* The names stay anchored as keys of the input table while we sort them;
   * the array is a userdata so a Lua error below cannot leak it. */
  names = (const char **)emp_newuserdata(L, count * sizeof *names);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    names[i++] = lua_tostring(L, -2);
    lua_pop(L, 1);
  }
  qsort(names, count, sizeof *names, compare_names);
  lua_createtable(L, (int)count, 0);
  out = lua_gettop(L);
  for (i = 0; i < count; i++) {
    size_t old = emp_path_key(&v->path, names[i]);
    emp_raw_field(L, idx, names[i]);
    if (!emp_check_string(v, lua_gettop(L), 0)) return 0;
    emp_path_restore(&v->path, old);
    lua_createtable(L, 0, 2);
    lua_insert(L, -2);
    lua_setfield(L, -2, "value");
    lua_pushstring(L, names[i]);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, out, (lua_Integer)i + 1);
    lua_pop(L, 1);
  }
  lua_remove(L, out - 1); /* the names array */
  return 1;
}

int emp_check_env_overrides(validator *v, int idx) {
  lua_State *L = v->L;
  lua_Integer n;
  char got[48];
  if (!lua_istable(L, idx))
    return fail(v, "expected a list of {name=, value=} or a map of NAME = value, got %s", emp_describe(L, idx, got, sizeof got), NULL);
  lua_pushnil(L);
  if (lua_next(L, idx) == 0) {   /* empty: left out */
    if (!v->copy) return 0;
    lua_pushnil(L);
    return 1;
  }
  lua_pop(L, 2);
  lua_rawgeti(L, idx, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return v->copy ? overrides_from_map(v, idx) : 0;
  }
  lua_pop(L, 1);
  if (!emp_list_length(v, idx, "mixes list items with NAME = value pairs (found key %s)", &n)) return 0;
  return overrides_from_list(v, idx, n);
}
