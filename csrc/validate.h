/* Validation and marshalling of requests and client options, from the
 * schemas in schema.c. Reads tables raw: no metamethod is ever called. */
#ifndef EMP_VALIDATE_H
#define EMP_VALIDATE_H

#include <stddef.h>

#include "errors.h"
#include "schema.h"
#include "text.h"

/* Push t[name] for the table at idx without calling any metamethod: user
 * tables are always read raw. */
void emp_raw_field(lua_State *L, int idx, const char *name);

/* Validate the table at `input` against `schema` and push the marshalled
 * copy (ready for JSON); or push an error object of `kind`. Returns 1 or 0.
 * Unknown top-level keys are refused when strict, else passed through.
 * *spliced counts numbers that json.c must splice in (see json.h). */
int emp_validate(lua_State *L, const emp_schema *schema, int input, emp_kind kind,
                 int strict, const char *what, int *spliced);

/* 1 if the table at `input` is valid and cjson can send it as it is; 0 if
 * it is invalid or needs the copy of emp_validate. Pushes nothing. */
int emp_check_in_place(lua_State *L, const emp_schema *schema, int input, int strict);

/* Validate params (the table at `params`) for ep and push its path and its
 * JSON body (nil for an endpoint without one); or push an error object.
 * Returns 1 or 0. */
int emp_marshal(lua_State *L, const emp_endpoint *ep, int params, int strict);

#endif
