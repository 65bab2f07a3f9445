/* The validator's state and the checks shared by validate.c (scalars,
 * lists, objects, the entry points) and overrides.c (environment variable
 * overrides). Every check follows the two-mode contract at the top of
 * validate.c. Internal to the validator: the rest of csrc/ uses validate.h. */
#ifndef EMP_CHECK_H
#define EMP_CHECK_H

#include <stdio.h>

#include "validate.h"

typedef struct validator {
  lua_State *L;
  emp_kind kind;   /* EMP_INVALID for requests, EMP_CONFIG for options */
  int strict;
  int copy;        /* 1: copy mode; 0: check mode (see validate.c) */
  int secret;      /* checking a secret: messages name its type, never its value */
  int spliced;
  emp_path path;   /* copy mode only: paths are for error messages */
} validator;

/* The path of the value being checked, in copy mode. */
static inline size_t enter_key(validator *v, const char *key) {
  return v->copy ? emp_path_key(&v->path, key) : 0;
}

static inline size_t enter_index(validator *v, long long index) {
  return v->copy ? emp_path_index(&v->path, index) : 0;
}

static inline void leave(validator *v, size_t old) {
  if (v->copy) emp_path_restore(&v->path, old);
}

/* Push the error (copy mode) and return 0. */
static inline int fail(validator *v, const char *fmt, const char *a, const char *b) {
  if (v->copy) emp_error_push(v->L, v->kind, v->path.len ? v->path.text : NULL, fmt, a, b);
  return 0;
}

/* "a string", "a boolean", "2.5": for "expected X, got Y". */
const char *emp_describe(lua_State *L, int idx, char *buf, size_t size);

/* The same, but only the type of a secret. */
static inline const char *describe(validator *v, int idx, char *buf, size_t size) {
  if (!v->secret) return emp_describe(v->L, idx, buf, size);
  snprintf(buf, size, "a %s", luaL_typename(v->L, idx));
  return buf;
}

/* An unknown key `name` of an object with `fields`: fails, suggesting the
 * field it most likely misspells. */
int emp_fail_unknown(validator *v, const char *name, const emp_field *fields);

/* Text the API takes: not too long, no NUL, valid UTF-8; EMP_NONEMPTY and
 * EMP_HEADER from flags. Returns 1, or fails. */
int emp_check_text(validator *v, const char *s, size_t len, unsigned flags);
int emp_check_string(validator *v, int idx, unsigned flags);

/* The table at idx is a list 1..n with no holes and no other keys: sets *n,
 * or fails with `what` (a format naming the bad key). */
int emp_list_length(validator *v, int idx, const char *what, lua_Integer *n);

/* environment_variables_overrides (overrides.c). */
int emp_check_env_overrides(validator *v, int idx);

#endif
