/* Responses: status and body to a result table or an error object. */
#ifndef EMP_DECODE_H
#define EMP_DECODE_H

#include <stddef.h>

#include "errors.h"
#include "schema.h"

/* The first bytes of a bad response kept on err.body. */
#define EMP_ERROR_BODY_MAX 1024

typedef struct emp_response {
  long status;
  const char *body;
  size_t len;
  int body_index;            /* the body as a Lua string on the stack (no copy needed), or 0 */
  const char *content_type;  /* NULL when unknown */
  const char *location;      /* a redirect's target, NULL when none */
} emp_response;

/* Push the result (data[ep->result], nulls removed, whole numbers as
 * integers) and return 1; or push an error object and return 0. */
int emp_decode(lua_State *L, const emp_endpoint *ep, const emp_response *res);

#endif
