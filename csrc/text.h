/* Text helpers shared by validation (validate.c) and response checks
 * (decode.c): the paths that name a value in errors, UTF-8, and the
 * "did you mean" of an unknown field. */
#ifndef EMP_TEXT_H
#define EMP_TEXT_H

#include <stddef.h>

#include "schema.h"

/* The path of the value being checked, as users write it:
 * "build.commit", "environment_variables_overrides[2].value". */
#define EMP_PATH_MAX 256
typedef struct emp_path {
  char text[EMP_PATH_MAX];
  size_t len;
} emp_path;

size_t emp_path_key(emp_path *p, const char *key);      /* append; returns the old length */
size_t emp_path_index(emp_path *p, long long index);
void emp_path_restore(emp_path *p, size_t len);

/* Write the decimal digits of u so that they end just before `end`; return
 * where they start. */
char *emp_digits_before(char *end, unsigned long long u);

/* The shortest "%.Ng" text of d (N from min_digits to 17) that reads back
 * as d; returns N. size: 32 is always enough. */
int emp_format_double(char *buf, size_t size, double d, int min_digits);

/* 1 if s is valid UTF-8 (no overlongs, no surrogates); else 0 and *bad is the offset. */
int emp_utf8_valid(const char *s, size_t len, size_t *bad);

/* The name in `fields` (ending with a NULL name) that `name` most likely
 * misspells, or NULL if none is close. */
const char *emp_closest_name(const char *name, const emp_field *fields);

#endif
