/* One generic validator and marshaller for every schema in schema.c;
 * environment variable overrides are in overrides.c, the state and the
 * checks the two files share in check.h.
 *
 * It runs in one of two modes:
 * - copy: each check_* function takes the absolute index of a value, pushes
 *   its marshalled form (or nil, to leave the field out) and returns 1; or
 *   pushes an error object, with the value's path, and returns 0.
 * - check: the same checks on the caller's table, pushing nothing. It
 *   returns 1 only if the table is valid and cjson can send it as it is;
 *   0 on any error and on anything that needs rewriting (a map of env
 *   overrides, an empty list, a number 14 digits cannot carry). Most
 *   requests pass, and skip the copy; the others run the copy pass, which
 *   finds the same error again and names it.
 * The caller's stack above its own slots is left as is on error: the entry
 * points return only the top values. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* Past this depth a pass-through value is refused (a cyclic table, say). */
#define EMP_MAX_PASSTHROUGH_DEPTH 32

const char *emp_describe(lua_State *L, int idx, char *buf, size_t size) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (emp_isinteger(L, idx))
      snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
    else {
      double d = (double)lua_tonumber(L, idx);
      if (d != d) snprintf(buf, size, "NaN");
      else snprintf(buf, size, "%.17g", d);
    }
    return buf;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    snprintf(buf, size, "a string");
    return buf;
  }
  snprintf(buf, size, "a %s", luaL_typename(L, idx));
  return buf;
}

void emp_raw_field(lua_State *L, int idx, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, idx);
}

int emp_fail_unknown(validator *v, const char *name, const emp_field *fields) {
  const char *suggestion;
  size_t old;
  if (!v->copy) return 0;
  suggestion = emp_closest_name(name, fields);
  old = emp_path_key(&v->path, name);
  if (suggestion != NULL)
    fail(v, "unknown field, did you mean %s?", suggestion, NULL);
  else {
    luaL_Buffer b;
    lua_State *L = v->L;
    const emp_field *f;
    luaL_buffinit(L, &b);
    for (f = fields; f->name != NULL; f++) {
      if (f != fields) luaL_addstring(&b, ", ");
      luaL_addstring(&b, f->name);
    }
    luaL_pushresult(&b);
    fail(v, "unknown field (known: %s)", lua_tostring(L, -1), NULL);
  }
  emp_path_restore(&v->path, old);
  return 0;
}

/* --- scalars -------------------------------------------------------------- */

int emp_check_text(validator *v, const char *s, size_t len, unsigned flags) {
  size_t bad;
  char detail[64];
  if (len == 0 && (flags & EMP_NONEMPTY)) return fail(v, "must not be empty", NULL, NULL);
  if (len > EMP_MAX_STRING_BYTES) {
    snprintf(detail, sizeof detail, "%zu bytes, over the limit of %d", len, EMP_MAX_STRING_BYTES);
    return fail(v, "is too long: %s", detail, NULL);
  }
  if (memchr(s, '\0', len) != NULL) return fail(v, "contains a NUL byte", NULL, NULL);
  if ((flags & EMP_HEADER) && (memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL))
    return fail(v, "contains CR or LF, which would break the HTTP header it is sent in", NULL, NULL);
  if (!emp_utf8_valid(s, len, &bad)) {
    snprintf(detail, sizeof detail, "%zu", bad);
    return fail(v, "is not valid UTF-8 (at byte %s)", detail, NULL);
  }
  return 1;
}

int emp_check_string(validator *v, int idx, unsigned flags) {
  size_t len;
  const char *s;
  char got[48];
  if (lua_type(v->L, idx) != LUA_TSTRING)
    return fail(v, "expected a string, got %s", emp_describe(v->L, idx, got, sizeof got), NULL);
  s = lua_tolstring(v->L, idx, &len);
  if (!emp_check_text(v, s, len, flags)) return 0;
  if (v->copy) lua_pushvalue(v->L, idx);
  return 1;
}

static int check_bool(validator *v, int idx) {
  char got[48];
  if (lua_type(v->L, idx) != LUA_TBOOLEAN)
    return fail(v, "expected a boolean, got %s", emp_describe(v->L, idx, got, sizeof got), NULL);
  if (v->copy) lua_pushvalue(v->L, idx);
  return 1;
}

/* A finite number that JSON can carry: pushed (copy mode), or in check mode
 * accepted only if cjson writes it exactly. */
static int marshal_number(validator *v, double d) {
  if (!v->copy) return emp_json_number_is_plain(d);
  emp_json_push_number(v->L, d, &v->spliced);
  return 1;
}

/* Whole numbers from `min` to 2^53: integers, or floats with no fraction. */
static int check_whole(validator *v, int idx, double min) {
  lua_State *L = v->L;
  const char *expected = min >= 1 ? "expected a whole number from 1 to 2^53, got %s"
                                  : "expected a whole number from 0 to 2^53, got %s";
  char got[48];
  double d;
  if (lua_type(L, idx) != LUA_TNUMBER) return fail(v, expected, emp_describe(L, idx, got, sizeof got), NULL);
  if (emp_isinteger(L, idx)) {
    lua_Integer n = lua_tointeger(L, idx);
    if (n < (lua_Integer)min || n > (lua_Integer)EMP_MAX_EXACT_INT)
      return fail(v, expected, emp_describe(L, idx, got, sizeof got), NULL);
    d = (double)n;
  } else {
    d = (double)lua_tonumber(L, idx);
    if (!isfinite(d) || d != floor(d) || d < min || d > EMP_MAX_EXACT_INT)
      return fail(v, expected, emp_describe(L, idx, got, sizeof got), NULL);
  }
  return marshal_number(v, d);
}

/* Seconds for timeouts: positive, finite, and small enough for curl's long milliseconds. */
static int check_seconds(validator *v, int idx) {
  char got[48];
  double d;
  if (lua_type(v->L, idx) != LUA_TNUMBER)
    return fail(v, "expected seconds (a number > 0), got %s", emp_describe(v->L, idx, got, sizeof got), NULL);
  d = (double)lua_tonumber(v->L, idx);
  if (!(d > 0 && d <= 2147483.0))
    return fail(v, "expected seconds from 0 to 2147483, got %s", emp_describe(v->L, idx, got, sizeof got), NULL);
  if (v->copy) lua_pushnumber(v->L, (lua_Number)d);
  return 1;
}

/* --- lists and maps ------------------------------------------------------- */

int emp_list_length(validator *v, int idx, const char *what, lua_Integer *n) {
  lua_State *L = v->L;
  lua_Integer count = 0, max = 0;
  char got[48];
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_Number k;
    if (lua_type(L, -2) != LUA_TNUMBER || (k = lua_tonumber(L, -2)) < 1 || k != floor(k) || k > EMP_MAX_EXACT_INT) {
      emp_describe(L, -2, got, sizeof got);
      return fail(v, what, got, NULL);
    }
    count++;
    if ((lua_Integer)k > max) max = (lua_Integer)k;
    lua_pop(L, 1);
  }
  if (count != max) return fail(v, "is a list with holes (nil before the last item)", NULL, NULL);
  *n = count;
  return 1;
}

static int check_string_list(validator *v, int idx) {
  lua_State *L = v->L;
  lua_Integer n, i;
  int out = 0;
  char got[48];
  if (!lua_istable(L, idx)) return fail(v, "expected a list of strings, got %s", emp_describe(L, idx, got, sizeof got), NULL);
  if (!emp_list_length(v, idx, "expected a list of strings, found key %s", &n)) return 0;
  if (n == 0) {   /* an empty list is left out, never sent as {} */
    if (!v->copy) return 0;
    lua_pushnil(L);
    return 1;
  }
  if (v->copy) {
    lua_createtable(L, (int)n, 0);
    out = lua_gettop(L);
  }
  for (i = 1; i <= n; i++) {
    size_t old = enter_index(v, i);
    lua_rawgeti(L, idx, i);
    if (!emp_check_string(v, lua_gettop(L), EMP_NONEMPTY)) return 0;
    if (v->copy) lua_rawseti(L, out, i);
    lua_pop(L, 1);
    leave(v, old);
  }
  return 1;
}

static int check_metadata(validator *v, int idx) {
  lua_State *L = v->L;
  int out = 0;
  char got[48];
  if (!lua_istable(L, idx)) return fail(v, "expected a table of key = value, got %s", emp_describe(L, idx, got, sizeof got), NULL);
  if (v->copy) {
    lua_newtable(L);
    out = lua_gettop(L);
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t len, old;
    const char *key;
    if (lua_type(L, -2) != LUA_TSTRING)
      return fail(v, "keys must be strings, found key %s", emp_describe(L, -2, got, sizeof got), NULL);
    key = lua_tolstring(L, -2, &len);
    if (!emp_check_text(v, key, len, EMP_NONEMPTY)) return 0;
    old = enter_key(v, key);
    if (lua_type(L, -1) == LUA_TSTRING) {
      if (!emp_check_string(v, lua_gettop(L), 0)) return 0;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
      double d = (double)lua_tonumber(L, -1);
      if (!isfinite(d)) return fail(v, "expected a string or a finite number, got %s", emp_describe(L, -1, got, sizeof got), NULL);
      if (!marshal_number(v, d)) return 0;
    } else {
      return fail(v, "expected a string or a number, got %s", emp_describe(L, -1, got, sizeof got), NULL);
    }
    leave(v, old);
    if (v->copy) {
      lua_pushvalue(L, -3);   /* key */
      lua_insert(L, -2);      /* key, marshalled value */
      lua_rawset(L, out);
    }
    lua_pop(L, 1);            /* the input value; the key stays for lua_next */
  }
  return 1;
}

/* --- pass-through values (strict = false) ---------------------------------- */

/* A key of a pass-through table is JSON text like any string: a NUL in it
 * would also read as the number placeholder of json.h. */
static int check_key(validator *v, int idx) {
  size_t len, bad;
  const char *key = lua_tolstring(v->L, idx, &len);   /* a string already: no conversion */
  if (len > EMP_MAX_STRING_BYTES) return fail(v, "has a key that is too long", NULL, NULL);
  if (memchr(key, '\0', len) != NULL) return fail(v, "has a key that contains a NUL byte", NULL, NULL);
  if (!emp_utf8_valid(key, len, &bad)) return fail(v, "has a key that is not valid UTF-8", NULL, NULL);
  return 1;
}

static int check_any(validator *v, int idx, int depth) {
  lua_State *L = v->L;
  char got[48];
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return check_bool(v, idx);
    case LUA_TSTRING: return emp_check_string(v, idx, 0);
    case LUA_TNUMBER: {
      double d = (double)lua_tonumber(L, idx);
      if (!isfinite(d)) return fail(v, "expected a finite number, got %s", emp_describe(L, idx, got, sizeof got), NULL);
      return marshal_number(v, d);
    }
    case LUA_TTABLE: {
      int out = 0;
      if (depth >= EMP_MAX_PASSTHROUGH_DEPTH)
        return fail(v, "nests deeper than %s levels (a table that contains itself?)", "32", NULL);
      luaL_checkstack(L, 6, "empirical: nesting");
      if (v->copy) {
        lua_newtable(L);
        out = lua_gettop(L);
      }
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        size_t old;
        if (lua_type(L, -2) == LUA_TSTRING) {
          if (!check_key(v, -2)) return 0;
          old = enter_key(v, lua_tostring(L, -2));
        } else if (lua_type(L, -2) == LUA_TNUMBER) old = enter_index(v, (long long)lua_tonumber(L, -2));
        else return fail(v, "has a key that JSON cannot carry (%s)", emp_describe(L, -2, got, sizeof got), NULL);
        if (!check_any(v, lua_gettop(L), depth + 1)) return 0;
        leave(v, old);
        if (v->copy) {
          lua_pushvalue(L, -3);
          lua_insert(L, -2);
          lua_rawset(L, out);
        }
        lua_pop(L, 1);
      }
      return 1;
    }
    default:
      return fail(v, "cannot be sent as JSON (%s)", emp_describe(L, idx, got, sizeof got), NULL);
  }
}

/* --- objects -------------------------------------------------------------- */

/* The field called `name` (len bytes: a key with a NUL in it is no field). */
static const emp_field *find_field(const emp_schema *s, const char *name, size_t len) {
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++)
    if (f->name[0] == name[0] && strcmp(f->name, name) == 0) return strlen(f->name) == len ? f : NULL;
  return NULL;
}

static int check_object(validator *v, int idx, const emp_schema *s, int top);

static int check_field(validator *v, int idx, const emp_field *f) {
  switch (f->type) {
    case EMP_T_STRING:        return emp_check_string(v, idx, f->flags);
    case EMP_T_BOOL:          return check_bool(v, idx);
    case EMP_T_ID:            return check_whole(v, idx, 1);
    case EMP_T_COUNT:         return check_whole(v, idx, 0);
    case EMP_T_SECONDS:       return check_seconds(v, idx);
    case EMP_T_OBJECT:        return check_object(v, idx, f->object, 0);
    case EMP_T_STRING_LIST:   return check_string_list(v, idx);
    case EMP_T_METADATA:      return check_metadata(v, idx);
    case EMP_T_ENV_OVERRIDES: return emp_check_env_overrides(v, idx);
    case EMP_T_NUMBER:
    case EMP_T_ARRAY:         return check_any(v, idx, 1);
  }
  return fail(v, "has a type this module does not know", NULL, NULL);
}

/* Check mode: one walk over the caller's keys, checking each as it comes,
 * then the required and exclusive fields from the set of keys seen. */
static int check_fields_in_place(validator *v, int idx, const emp_schema *s, int top) {
  lua_State *L = v->L;
  uint64_t seen = 0;   /* bit i: s->fields[i] is set */
  const emp_field *f;
  int set = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t len;
    const char *key;
    if (lua_type(L, -2) != LUA_TSTRING) return 0;
    key = lua_tolstring(L, -2, &len);
    if ((f = find_field(s, key, len)) != NULL) {
      if (!check_field(v, lua_gettop(L), f)) return 0;
      seen |= UINT64_C(1) << (f - s->fields);
    } else if (v->strict || !top || !check_key(v, -2) || !check_any(v, lua_gettop(L), 1)) {
      return 0;
    }
    lua_pop(L, 1);
  }
  for (f = s->fields; f->name != NULL; f++)
    if ((f->flags & EMP_REQUIRED) && !(seen & (UINT64_C(1) << (f - s->fields)))) return 0;
  if (s->exclusive != NULL) {
    const char *const *name;
    for (name = s->exclusive; *name != NULL; name++)
      if (seen & (UINT64_C(1) << (find_field(s, *name, strlen(*name)) - s->fields))) set++;
  }
  return set <= 1;
}

static int check_object(validator *v, int idx, const emp_schema *s, int top) {
  lua_State *L = v->L;
  const emp_field *f;
  const char *unknown = NULL;
  int out;
  char got[48];
  if (!lua_istable(L, idx)) return fail(v, "expected a table, got %s", emp_describe(L, idx, got, sizeof got), NULL);
  luaL_checkstack(L, 8, "empirical: nesting");
  if (!v->copy) return check_fields_in_place(v, idx, s, top);

  /* Copy mode walks the schema, not the keys, so that of several errors the
   * same one is named every time: unknown keys first (the first by name),
   * then fields in schema order. */
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t len;
    const char *key;
    if (lua_type(L, -2) != LUA_TSTRING)
      return fail(v, "expected named fields, found key %s", emp_describe(L, -2, got, sizeof got), NULL);
    key = lua_tolstring(L, -2, &len);
    if (find_field(s, key, len) == NULL && (v->strict || !top) && (unknown == NULL || strcmp(key, unknown) < 0))
      unknown = key;
    lua_pop(L, 1);
  }
  if (unknown != NULL) return emp_fail_unknown(v, unknown, s->fields);

  if (s->exclusive != NULL) {
    const char *const *name, *first = NULL;
    for (name = s->exclusive; *name != NULL; name++) {
      emp_raw_field(L, idx, *name);
      if (!lua_isnil(L, -1)) {
        if (first != NULL) {
          emp_path_key(&v->path, first);
          return fail(v, "cannot be used together with %s; pick one", *name, NULL);
        }
        first = *name;
      }
      lua_pop(L, 1);
    }
  }

  lua_newtable(L);
  out = lua_gettop(L);
  for (f = s->fields; f->name != NULL; f++) {
    size_t old = emp_path_key(&v->path, f->name);
    emp_raw_field(L, idx, f->name);
    if (lua_isnil(L, -1)) {
      if (f->flags & EMP_REQUIRED) return fail(v, "is required", NULL, NULL);
    } else {
      if (!check_field(v, lua_gettop(L), f)) return 0;
      lua_setfield(L, out, f->name); /* a nil result leaves the field out */
    }
    lua_pop(L, 1);
    emp_path_restore(&v->path, old);
  }

  if (top && !v->strict) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      size_t len;
      const char *key = lua_tolstring(L, -2, &len);
      if (find_field(s, key, len) == NULL) {
        size_t old;
        if (!check_key(v, -2)) return 0;
        old = emp_path_key(&v->path, key);
        if (!check_any(v, lua_gettop(L), 1)) return 0;
        emp_path_restore(&v->path, old);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, out);
      }
      lua_pop(L, 1);
    }
  }
  return 1;
}

static void validator_init(validator *v, lua_State *L, emp_kind kind, int strict, int copy) {
  v->L = L;
  v->kind = kind;
  v->strict = strict;
  v->copy = copy;
  v->spliced = 0;
  v->path.len = 0;
  v->path.text[0] = '\0';
}

static int refuse_non_table(lua_State *L, int input, emp_kind kind, const char *what) {
  char got[48];
  emp_error_push(L, kind, what, "expected a table, got %s", emp_describe(L, input, got, sizeof got));
  return 0;
}

int emp_validate(lua_State *L, const emp_schema *schema, int input, emp_kind kind,
                 int strict, const char *what, int *spliced) {
  validator v;
  int ok;
  if (!lua_istable(L, input)) return refuse_non_table(L, input, kind, what);
  validator_init(&v, L, kind, strict, 1);
  ok = check_object(&v, input, schema, 1);
  if (spliced) *spliced = v.spliced;
  return ok;
}

int emp_check_in_place(lua_State *L, const emp_schema *schema, int input, int strict) {
  validator v;
  int top = lua_gettop(L), ok;
  if (!lua_istable(L, input)) return 0;
  validator_init(&v, L, EMP_INVALID, strict, 0);
  ok = check_object(&v, input, schema, 1);
  lua_settop(L, top);
  return ok;
}

/* --- requests ------------------------------------------------------------- */

static int has_body(const emp_schema *s) {
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++)
    if (!(f->flags & EMP_IN_PATH)) return 1;
  return 0;
}

static int has_path_fields(const emp_schema *s) {
  const emp_field *f;
  for (f = s->fields; f->name != NULL; f++)
    if (f->flags & EMP_IN_PATH) return 1;
  return 0;
}

/* Push the endpoint's path with each {name} replaced by the validated whole
 * number from params: only digits ever reach a path. */
static void push_path(lua_State *L, const emp_endpoint *ep, int params) {
  char path[EMP_PATH_MAX];
  const char *t = ep->path;
  size_t n = 0;
  while (*t != '\0' && n < sizeof path - 24) {
    const char *close;
    if (*t != '{' || (close = strchr(t, '}')) == NULL) { path[n++] = *t++; continue; }
    {
      char name[32], digits[24], *end = digits + sizeof digits, *start;
      size_t len = (size_t)(close - t - 1);
      if (len >= sizeof name) len = sizeof name - 1;
      memcpy(name, t + 1, len);
      name[len] = '\0';
      emp_raw_field(L, params, name);
      /* checked by check_whole: a whole number from 1 to 2^53 */
      start = emp_digits_before(end, (unsigned long long)lua_tonumber(L, -1));
      lua_pop(L, 1);
      memcpy(path + n, start, (size_t)(end - start));
      n += (size_t)(end - start);
      t = close + 1;
    }
  }
  lua_pushlstring(L, path, n);
}

int emp_marshal(lua_State *L, const emp_endpoint *ep, int params, int strict) {
  int spliced = 0, body = has_body(ep->input);
  /* The caller's table goes to cjson as it is when it is valid and needs no
   * rewriting; a body without the path's fields (rerun) is always a copy. */
  if ((!body || !has_path_fields(ep->input)) && emp_check_in_place(L, ep->input, params, strict)) {
    lua_pushvalue(L, params);
  } else if (!emp_validate(L, ep->input, params, EMP_INVALID, strict, "params", &spliced)) {
    return 0;
  }
  push_path(L, ep, params);
  if (!body) {
    lua_pushnil(L);
  } else {
    const emp_field *f;
    int out = lua_gettop(L) - 1;
    if (!lua_rawequal(L, out, params))
      for (f = ep->input->fields; f->name != NULL; f++)
        if (f->flags & EMP_IN_PATH) {
          lua_pushnil(L);
          lua_setfield(L, out, f->name);
        }
    if (!emp_json_encode(L, out, spliced)) {
      emp_error_push(L, EMP_INVALID, NULL, "could not be encoded as JSON: %s", lua_tostring(L, -1));
      return 0;
    }
  }
  lua_remove(L, -3);   /* the validated table */
  return 1;
}
