/* URLs, and where the token may go: https, or plain http only to a
 * loopback address, decided on the address libcurl parsed (never on how the
 * text starts); and the origin a URL belongs to, so that the token goes to
 * the API's own origin and nowhere else. */
#ifndef EMP_URL_H
#define EMP_URL_H

#include <stddef.h>

typedef struct emp_url {
  char *url;        /* as libcurl normalised it (CURLUPART_URL) */
  char *origin;     /* "https://api.empirical.run:443": scheme, host and port */
  int loopback;     /* the host is 127.0.0.0/8, ::1 or localhost */
} emp_url;

enum {
  EMP_URL_PLAIN_HTTP = 1 << 0, /* plain http to any host (allow_plain_http) */
  EMP_URL_PATH       = 1 << 1  /* a path is part of it (summary_url), not only an origin to join to */
};

/* Parse and check text; fill *u (free with emp_url_free) and return NULL,
 * or return a message ("is plain http to a host that is not loopback ...")
 * and leave *u empty. */
const char *emp_url_parse(emp_url *u, const char *text, unsigned flags);

/* The short reason for a problem emp_url_parse returned ("plain_http",
 * "not_a_url", "no_host", "scheme", "userinfo", "query", "fragment",
 * "api_path"), or NULL for another (out of memory). */
const char *emp_url_reason(const char *problem);

void emp_url_free(emp_url *u);

#endif
