/* Schemas as data: each endpoint's input, each response, and the client's
 * options are tables of field descriptors read by one generic validator
 * (validate.c) and one generic response checker (decode.c). A new API field
 * is one line in schema.c. */
#ifndef EMP_SCHEMA_H
#define EMP_SCHEMA_H

#include <stddef.h>

typedef enum {
  EMP_T_STRING,        /* UTF-8, no NUL, at most EMP_MAX_STRING_BYTES */
  EMP_T_BOOL,
  EMP_T_ID,            /* whole number from 1 to 2^53 */
  EMP_T_SECONDS,       /* finite number > 0 (client options) */
  EMP_T_COUNT,         /* whole number from 0 to 2^53 (client options) */
  EMP_T_NUMBER,        /* any number (responses) */
  EMP_T_OBJECT,        /* a nested schema */
  EMP_T_ARRAY,         /* any JSON array (responses) */
  EMP_T_STRING_LIST,   /* a list of strings */
  EMP_T_METADATA,      /* string keys to strings or finite numbers */
  EMP_T_ENV_OVERRIDES  /* list of {name=, value=}, or a map NAME -> value */
} emp_type;

enum {
  EMP_REQUIRED    = 1 << 0,
  EMP_NONEMPTY    = 1 << 1, /* strings: "" is refused */
  EMP_NULLABLE    = 1 << 2, /* responses: JSON null is fine */
  EMP_IN_PATH     = 1 << 3, /* goes into the URL path as {name}, not the body */
  EMP_HEADER      = 1 << 4, /* sent in a header: CR, LF and NUL are refused */
  EMP_MUST_BE_TRUE = 1 << 5 /* responses: false means the call failed */
};

struct emp_schema;

typedef struct emp_field {
  const char *name;
  emp_type type;
  unsigned flags;
  const struct emp_schema *object; /* for EMP_T_OBJECT */
} emp_field;

typedef struct emp_schema {
  const emp_field *fields;          /* ends with a {NULL} entry; at most 64 (a bit each in validate.c) */
  const char *const *exclusive;     /* names of which at most one may be set; NULL-terminated, or NULL */
} emp_schema;

typedef struct emp_endpoint {
  const char *op;                   /* "trigger", "rerun", "get" */
  const char *method;               /* HTTP method */
  const char *path;                 /* template; {name} is filled from the EMP_IN_PATH field */
  const emp_schema *input;          /* what encode() takes */
  const emp_schema *data;           /* the response's `data` object */
  const char *result;               /* the key of `data` returned to the caller */
  int creates_run;                  /* not idempotent: the retry policy is strict */
} emp_endpoint;

/* Longest string any field takes: env values are the largest real ones. */
#define EMP_MAX_STRING_BYTES (64 * 1024)

extern const emp_endpoint emp_endpoints[];   /* ends with a {NULL} entry */
extern const emp_schema emp_client_options;

const emp_endpoint *emp_endpoint_find(const char *op);

#endif
