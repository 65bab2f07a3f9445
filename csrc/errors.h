/* Error objects: every failure in the module is `nil, err`, where err is a
 * table {kind=, message=, field=?, reason=?, status=?, retryable=?, attempts=?,
 * request=?, body=?, run_may_exist=?, advice=?, signal=?, retry_after=?} with a shared metatable
 * whose __tostring reads well. */
#ifndef EMP_ERRORS_H
#define EMP_ERRORS_H

#include "compat.h"

/* The kinds, written once: enum name, the string users compare against. */
#define EMP_ERROR_KINDS(X)                                                  \
  X(INVALID,     "invalid")     /* bad input; nothing was sent */              \
  X(CONFIG,      "config")      /* bad client options */                       \
  X(TRANSPORT,   "transport")   /* no HTTP response */                         \
  X(HTTP,        "http")        /* non-2xx, or a 2xx that reports failure */   \
  X(DECODE,      "decode")      /* the response is not what the schema says */ \
  X(TIMEOUT,     "timeout")     /* a deadline ran out: a call's or wait's */   \
  X(INTERRUPTED, "interrupted") /* a caught SIGINT or SIGTERM ended a wait */

#define EMP_KIND_ENUM(name, str) EMP_##name,
typedef enum { EMP_ERROR_KINDS(EMP_KIND_ENUM) EMP_KIND_COUNT } emp_kind;
#undef EMP_KIND_ENUM

#define EMP_ERROR_MT "empirical.error"

/* Push a new error object; message is "field: text" when field is set.
 * Returns the absolute stack index of the new table. */
int emp_error_push(lua_State *L, emp_kind kind, const char *field, const char *fmt, ...);

/* Push nil and a new error object: `return emp_fail(L, ...)` from a lua_CFunction. */
int emp_fail(lua_State *L, emp_kind kind, const char *field, const char *fmt, ...);

/* Set fields of the error object at idx. */
void emp_error_set_int(lua_State *L, int idx, const char *key, long long value);
void emp_error_set_bool(lua_State *L, int idx, const char *key, int value);
void emp_error_set_str(lua_State *L, int idx, const char *key, const char *value, size_t len);

/* For a call that creates a run and may have reached the server: say in the
 * message that the run may exist (with the status, when one came) and set
 * err.run_may_exist. Once per error. */
void emp_error_note_may_exist(lua_State *L, int idx, long status);

/* Register the metatable; leaves nothing on the stack. */
void emp_error_open(lua_State *L);

/* core.error(kind, message [, fields]) for the Lua layer. */
int emp_error_lua_new(lua_State *L);

#endif
