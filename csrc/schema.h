/* Schemas as data: each endpoint is one row (emp_endpoints in schema.c)
 * naming its method, path, input (path, query and body fields), response
 * and retry policy; the client's options are a schema too. One generic
 * validator (validate.c) and one generic response checker (decode.c) read
 * them, and core.OPERATIONS exports the rows to the Lua layer. A new API
 * field is one line in schema.c; a new endpoint is one row. */
#ifndef EMP_SCHEMA_H
#define EMP_SCHEMA_H

#include <stddef.h>

typedef enum {
  EMP_T_STRING,        /* UTF-8, no NUL, at most EMP_MAX_STRING_BYTES */
  EMP_T_ENUM,          /* a string from `choices` */
  EMP_T_BOOL,
  EMP_T_INTEGER,       /* requests, options: a whole number from `min` to `max` */
  EMP_T_SECONDS,       /* options: a finite number from `min` to `max` */
  EMP_T_NUMBER,        /* requests: any finite number; responses: any number */
  EMP_T_ID,            /* responses: a number a double holds exactly (|x| < 2^53) */
  EMP_T_OBJECT,        /* a nested schema */
  EMP_T_ARRAY,         /* responses: any JSON array */
  EMP_T_OBJECT_LIST,   /* responses: an array of `object`s (null items allowed) */
  EMP_T_STRING_LIST,   /* requests: a list of strings */
  EMP_T_ID_LIST,       /* requests: a non-empty list of whole numbers from 1 to 2^53 */
  EMP_T_METADATA,      /* requests: string keys to strings or finite numbers */
  EMP_T_ENV_OVERRIDES  /* requests: list of {name=, value=}, or a map NAME -> value */
} emp_type;

enum {
  EMP_REQUIRED     = 1 << 0,
  EMP_NONEMPTY     = 1 << 1, /* strings: "" is refused */
  EMP_NULLABLE     = 1 << 2, /* responses: JSON null is fine */
  EMP_IN_PATH      = 1 << 3, /* goes into the URL path as {name}, not the body */
  EMP_IN_QUERY     = 1 << 4, /* goes into the query string, not the body */
  EMP_HEADER       = 1 << 5, /* sent in a header: CR, LF and NUL are refused, length capped */
  EMP_MUST_BE_TRUE = 1 << 6, /* responses: false means the call failed */
  EMP_SECRET       = 1 << 7  /* errors never show the value */
};

struct emp_schema;

typedef struct emp_field {
  const char *name;
  emp_type type;
  unsigned flags;
  const struct emp_schema *object;  /* EMP_T_OBJECT, EMP_T_OBJECT_LIST */
  const char *const *choices;       /* EMP_T_ENUM: NULL-terminated */
  double min, max;                  /* EMP_T_INTEGER, EMP_T_SECONDS */
} emp_field;

typedef struct emp_schema {
  const emp_field *fields;          /* ends with a {NULL} entry; at most 64 (a bit each in validate.c) */
  const char *const *exclusive;     /* names of which at most one may be set; NULL-terminated, or NULL */
} emp_schema;

/* What a status means for one endpoint, said in the error's message. */
typedef struct emp_status_note {
  long status;                      /* 0 ends the list */
  const char *text;
} emp_status_note;

enum {
  EMP_IDEMPOTENT = 1 << 0, /* safe to send again after it may have left; else the retry policy is strict */
  EMP_RAW        = 1 << 1  /* no schema: the body is the result (the report download) */
};

typedef struct emp_endpoint {
  const char *name;                 /* "trigger", "rerun", "get", "cancel", "list" */
  const char *method;               /* the HTTP method, whatever the body */
  const char *path;                 /* template; {name} is filled from the EMP_IN_PATH field */
  const emp_schema *input;          /* what encode() takes: path, query and body fields */
  const emp_schema *response;       /* the whole JSON document of a 2xx */
  const char *result;               /* the value returned: a key of the document, dotted ("data.test_run"); NULL: all */
  const char *beside;               /* a top-level key returned beside the result ("pagination"), or NULL */
  unsigned flags;
  const emp_status_note *notes;     /* NULL, or ends with {0} */
} emp_endpoint;

/* Longest string any field takes: env values are the largest real ones. */
#define EMP_MAX_STRING_BYTES (64 * 1024)
/* Longest value sent in an HTTP header (token, slug, user agent): servers
 * commonly refuse header lines over 8 KiB. */
#define EMP_MAX_HEADER_VALUE_BYTES (8 * 1024)

extern const emp_endpoint emp_endpoints[];   /* ends with a {NULL} entry */
extern const emp_endpoint emp_download;      /* the report download: not an API endpoint */
extern const emp_schema emp_client_options;
extern const emp_field emp_an_id;            /* a whole number from 1 to 2^53: list items, path params */

const emp_endpoint *emp_endpoint_find(const char *name);

/* 1 if some field of s goes in a body (neither path nor query). */
int emp_schema_has_body(const emp_schema *s);

/* The names of the endpoints, "trigger, rerun, get, cancel or list", for messages. */
const char *emp_endpoint_names(void);

#endif
