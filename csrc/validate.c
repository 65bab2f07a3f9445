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
      else emp_format_double(buf, size, d, 1);
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
  size_t bad, limit = (flags & EMP_HEADER) ? EMP_MAX_HEADER_VALUE_BYTES : EMP_MAX_STRING_BYTES;
  char detail[64];
  if (len == 0 && (flags & EMP_NONEMPTY)) return fail(v, "must not be empty", NULL, NULL);
  if (len > limit) {
    snprintf(detail, sizeof detail, "%zu bytes, over the limit of %zu", len, limit);
    return fail(v, (flags & EMP_HEADER) ? "is too long for an HTTP header: %s" : "is too long: %s", detail, NULL);
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
    return fail(v, "expected a string, got %s", describe(v, idx, got, sizeof got), NULL);
  s = lua_tolstring(v->L, idx, &len);
  if (!emp_check_text(v, s, len, flags)) return 0;
  if (v->copy) lua_pushvalue(v->L, idx);
  return 1;
}

static int check_enum(validator *v, int idx, const emp_field *f) {
  const char *const *choice;
  const char *s;
  size_t len;
  if (!emp_check_string(v, idx, EMP_NONEMPTY)) return 0;
  if (v->copy) lua_pop(v->L, 1);
  s = lua_tolstring(v->L, idx, &len);
  for (choice = f->choices; *choice != NULL; choice++)
    if (strlen(*choice) == len && memcmp(*choice, s, len) == 0) {
      if (v->copy) lua_pushvalue(v->L, idx);
      return 1;
    }
  if (v->copy) {
    luaL_Buffer b;
    lua_State *L = v->L;
    luaL_buffinit(L, &b);
    for (choice = f->choices; *choice != NULL; choice++) {
      if (choice != f->choices) luaL_addstring(&b, choice[1] == NULL ? " or " : ", ");
      luaL_addstring(&b, *choice);
    }
    luaL_pushresult(&b);
    lua_pushfstring(L, "\"%s\"", len > 40 ? "(a long string)" : s);
    fail(v, "expected one of %s, got %s", lua_tostring(L, -2), lua_tostring(L, -1));
  }
  return 0;
}

static int check_bool(validator *v, int idx) {
  char got[48];
  if (lua_type(v->L, idx) != LUA_TBOOLEAN)
    return fail(v, "expected a boolean, got %s", describe(v, idx, got, sizeof got), NULL);
  if (v->copy) lua_pushvalue(v->L, idx);
  return 1;
}

/* A finite number: pushed for JSON (copy mode), or in check mode accepted
 * only if cjson writes it exactly as it must go out. */
static int marshal_number(validator *v, int idx) {
  if (!v->copy) return emp_json_number_is_plain(v->L, idx);
  emp_json_push_number(v->L, idx, &v->spliced);
  return 1;
}

static int check_number(validator *v, int idx) {
  char got[48];
  if (lua_type(v->L, idx) != LUA_TNUMBER || !isfinite((double)lua_tonumber(v->L, idx)))
    return fail(v, "expected a finite number, got %s", describe(v, idx, got, sizeof got), NULL);
  return marshal_number(v, idx);
}

/* "2^53" for the id bound, else the digits. */
static const char *bound(double d, char *buf, size_t size) {
  if (d == EMP_MAX_EXACT_INT) return "2^53";
  snprintf(buf, size, "%.0f", d);
  return buf;
}

/* 1 if the value at idx is a whole number from min to max, compared exactly:
 * an integer beyond 2^53 must not round into range. */
static int whole_in_range(lua_State *L, int idx, double min, double max) {
  double d;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  if (emp_isinteger(L, idx)) {
    lua_Integer n = lua_tointeger(L, idx);
    return n >= (lua_Integer)min && n <= (lua_Integer)max;   /* bounds are whole and within 2^53 */
  }
  d = (double)lua_tonumber(L, idx);
  return isfinite(d) && d == floor(d) && d >= min && d <= max;
}

static int check_integer(validator *v, int idx, const emp_field *f) {
  char got[48], lo[32], hi[32], range[72];
  if (!whole_in_range(v->L, idx, f->min, f->max)) {
    snprintf(range, sizeof range, "from %s to %s", bound(f->min, lo, sizeof lo), bound(f->max, hi, sizeof hi));
    return fail(v, "expected a whole number %s, got %s", range, describe(v, idx, got, sizeof got));
  }
  return marshal_number(v, idx);
}

/* Seconds for timeouts, in the field's range (libcurl takes long milliseconds). */
static int check_seconds(validator *v, int idx, const emp_field *f) {
  char got[48], range[64];
  double d = lua_type(v->L, idx) == LUA_TNUMBER ? (double)lua_tonumber(v->L, idx) : NAN;
  if (!(d >= f->min && d <= f->max)) {   /* NaN fails too */
    snprintf(range, sizeof range, "from %g to %.0f", f->min, f->max);
    return fail(v, "expected seconds %s, got %s", range, describe(v, idx, got, sizeof got));
  }
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
    if (!whole_in_range(L, -2, 1, EMP_MAX_EXACT_INT)) {
      emp_describe(L, -2, got, sizeof got);
      return fail(v, what, got, NULL);
    }
    count++;
    if ((lua_Integer)lua_tonumber(L, -2) > max) max = (lua_Integer)lua_tonumber(L, -2);
    lua_pop(L, 1);
  }
  if (count != max) return fail(v, "is a list with holes (nil before the last item)", NULL, NULL);
  *n = count;
  return 1;
}

/* A list 1..n of items each checked by `item` (with `f`); `noun` says
 * what it holds, for messages. An empty list is left out (never sent as
 * {}), unless `empty` says why it is refused. */
static int check_list_of(validator *v, int idx, const char *noun, int (*item)(validator *, int, const emp_field *),
                         const emp_field *f, const char *empty) {
  lua_State *L = v->L;
  lua_Integer n, i;
  int out = 0;
  char got[48], what[64];
  snprintf(what, sizeof what, "expected a list of %s, found key %%s", noun);
  if (!lua_istable(L, idx)) {
    snprintf(what, sizeof what, "expected a list of %s, got %%s", noun);
    return fail(v, what, describe(v, idx, got, sizeof got), NULL);
  }
  if (!emp_list_length(v, idx, what, &n)) return 0;
  if (n == 0) {
    if (empty != NULL) return fail(v, "must not be empty (%s)", empty, NULL);
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
    if (!item(v, lua_gettop(L), f)) return 0;
    if (v->copy) lua_rawseti(L, out, i);
    lua_pop(L, 1);
    leave(v, old);
  }
  return 1;
}

static int check_nonempty_string(validator *v, int idx, const emp_field *f) {
  (void)f;
  return emp_check_string(v, idx, EMP_NONEMPTY);
}

static int check_metadata(validator *v, int idx) {
  lua_State *L = v->L;
  int out = 0;
  char got[48];
  if (!lua_istable(L, idx)) return fail(v, "expected a table of key = value, got %s", describe(v, idx, got, sizeof got), NULL);
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
      if (!check_number(v, lua_gettop(L))) return 0;
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

static int check_any(validator *v, int idx, int depth);

/* A pass-through table goes out as a JSON array when its keys are exactly
 * 1..n, and as an object when they are all strings. Anything else would be
 * refused by cjson without naming the field (a sparse list), or sent with a
 * key twice ({[1] = "a", ["1"] = "b"}): refused here, naming it. Sets
 * *list to n, or to -1 for an object. */
static int table_shape(validator *v, int idx, lua_Integer *list) {
  lua_State *L = v->L;
  lua_Integer numbers = 0, strings = 0, max = 0;
  char got[48];
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      if (!check_key(v, -1)) return 0;
      strings++;
    } else if (whole_in_range(L, -1, 1, EMP_MAX_EXACT_INT)) {
      numbers++;
      if ((lua_Integer)lua_tonumber(L, -1) > max) max = (lua_Integer)lua_tonumber(L, -1);
    } else {
      return fail(v, "has a key that JSON cannot carry (%s)", emp_describe(L, -1, got, sizeof got), NULL);
    }
  }
  if (numbers > 0 && strings > 0)
    return fail(v, "mixes list items with named fields: JSON has no such value", NULL, NULL);
  if (numbers != max) return fail(v, "is a list with holes (nil before the last item)", NULL, NULL);
  *list = numbers > 0 ? numbers : -1;
  return 1;
}

static int check_any_table(validator *v, int idx, int depth) {
  lua_State *L = v->L;
  lua_Integer n, i;
  int out = 0;
  if (depth >= EMP_MAX_PASSTHROUGH_DEPTH)
    return fail(v, "nests deeper than %s levels (a table that contains itself?)", "32", NULL);
  luaL_checkstack(L, 6, "empirical: nesting");
  if (!table_shape(v, idx, &n)) return 0;
  if (v->copy) {
    lua_createtable(L, n > 0 ? (int)n : 0, 0);
    out = lua_gettop(L);
  }
  if (n > 0) {
    for (i = 1; i <= n; i++) {
      size_t old = enter_index(v, i);
      lua_rawgeti(L, idx, i);
      if (!check_any(v, lua_gettop(L), depth + 1)) return 0;
      if (v->copy) lua_rawseti(L, out, i);
      lua_pop(L, 1);
      leave(v, old);
    }
    return 1;
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t old = enter_key(v, lua_tostring(L, -2));   /* a string: table_shape saw to it */
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

static int check_any(validator *v, int idx, int depth) {
  char got[48];
  switch (lua_type(v->L, idx)) {
    case LUA_TBOOLEAN: return check_bool(v, idx);
    case LUA_TSTRING: return emp_check_string(v, idx, 0);
    case LUA_TNUMBER: return check_number(v, idx);
    case LUA_TTABLE: return check_any_table(v, idx, depth);
    default:
      return fail(v, "cannot be sent as JSON (%s)", emp_describe(v->L, idx, got, sizeof got), NULL);
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

static int check_typed(validator *v, int idx, const emp_field *f) {
  switch (f->type) {
    case EMP_T_STRING:        return emp_check_string(v, idx, f->flags);
    case EMP_T_ENUM:          return check_enum(v, idx, f);
    case EMP_T_BOOL:          return check_bool(v, idx);
    case EMP_T_INTEGER:       return check_integer(v, idx, f);
    case EMP_T_SECONDS:       return check_seconds(v, idx, f);
    case EMP_T_NUMBER:        return check_number(v, idx);
    case EMP_T_OBJECT:        return check_object(v, idx, f->object, 0);
    case EMP_T_STRING_LIST:   return check_list_of(v, idx, "strings", check_nonempty_string, NULL, NULL);
    case EMP_T_ID_LIST:       return check_list_of(v, idx, "ids", check_integer, &emp_an_id,
                                                   "leave it out to list every environment");
    case EMP_T_METADATA:      return check_metadata(v, idx);
    case EMP_T_ENV_OVERRIDES: return emp_check_env_overrides(v, idx);
    case EMP_T_ID:            /* response types: no request field has them */
    case EMP_T_ARRAY:
    case EMP_T_OBJECT_LIST:   break;
  }
  return fail(v, "has a type this module does not know", NULL, NULL);
}

/* A secret's value never appears in a message ("expected a string, got a number"). */
static int check_field(validator *v, int idx, const emp_field *f) {
  int ok, outer = v->secret;
  v->secret = outer || (f->flags & EMP_SECRET);
  ok = check_typed(v, idx, f);
  v->secret = outer;
  return ok;
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

/* Unknown fields pass through (strict = false) only into a body: an
 * endpoint without one has nowhere to send them. */
static void validator_init(validator *v, lua_State *L, const emp_schema *s, emp_kind kind, int strict, int copy) {
  v->L = L;
  v->kind = kind;
  v->strict = strict || !emp_schema_has_body(s);
  v->secret = 0;
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
  validator_init(&v, L, schema, kind, strict, 1);
  ok = check_object(&v, input, schema, 1);
  if (spliced) *spliced = v.spliced;
  return ok;
}

int emp_check_in_place(lua_State *L, const emp_schema *schema, int input, int strict) {
  validator v;
  int top = lua_gettop(L), ok;
  if (!lua_istable(L, input)) return 0;
  validator_init(&v, L, schema, EMP_INVALID, strict, 0);
  ok = check_object(&v, input, schema, 1);
  lua_settop(L, top);
  return ok;
}
