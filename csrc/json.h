/* The bridge to lua-cjson: a private cjson.new() instance (the user's own
 * cjson settings are never touched), configured once at module load.
 *
 * lua-cjson 2.1.0 (Debian 12) writes numbers with at most 14 significant
 * digits, so 2^53 would go out as 9.007199254741e+15. Numbers that 14 digits
 * cannot carry exactly are marshalled as placeholder strings "\0<digits>",
 * which cjson writes as "\u0000<digits>", and spliced back into bare numbers
 * after encoding. No user string can produce the placeholder: validation
 * refuses NUL in every string. */
#ifndef EMP_JSON_H
#define EMP_JSON_H

#include <stddef.h>

#include "compat.h"

/* Nesting deeper than this in a response is refused (a decode error). */
#define EMP_JSON_MAX_DEPTH 64

void emp_json_open(lua_State *L);

/* Push the finite number at idx for encoding: a number, or a placeholder
 * (and ++*spliced). Integers go out exactly, whatever their size; floats as
 * the shortest text that reads back as the same double; -0 as 0. */
void emp_json_push_number(lua_State *L, int idx, int *spliced);

/* 1 if cjson writes the finite number at idx exactly as emp_json_push_number
 * would send it: no placeholder needed, and no -0. */
int emp_json_number_is_plain(lua_State *L, int idx);

/* Encode the table at idx: push the JSON text and return 1; or push a message and return 0. */
int emp_json_encode(lua_State *L, int idx, int spliced);

/* Decode the JSON string on top of the stack: replace it with the value
 * and return 1; or with a message and return 0. */
int emp_json_decode(lua_State *L);

/* Is the value at idx JSON null (cjson.null)? */
int emp_json_is_null(lua_State *L, int idx);

#endif
