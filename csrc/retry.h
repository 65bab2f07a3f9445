/* The retry policy, as the README's table states it:
 *  - reads (GET) retry on transport failures and on 408, 429, 500, 502, 503, 504;
 *  - calls that create a run (PUT, POST) retry only when the request provably
 *    never reached the server (no name, refused, TLS handshake failed before
 *    the request, connect timeout), or on 429;
 *  - backoff is exponential with full jitter, base 0.5 s, cap 20 s; a
 *    Retry-After header is honoured up to the client's max_retry_after. */
#ifndef EMP_RETRY_H
#define EMP_RETRY_H

#include <curl/curl.h>

#define EMP_RETRY_BASE_MS 500
#define EMP_RETRY_CAP_MS  20000

/* idempotent: the endpoint's EMP_IDEMPOTENT flag (a get, a cancel). */
int emp_retry_status_is_retryable(long status, int idempotent);

typedef enum {
  EMP_FAILURE_PERMANENT,  /* retrying cannot help: certificates, our own caps, bad URL */
  EMP_FAILURE_NOT_SENT,   /* the request never left: safe for any method */
  EMP_FAILURE_AMBIGUOUS   /* it may have reached the server */
} emp_failure;

/* request_started: curl got as far as sending (CURLINFO_PRETRANSFER_TIME > 0). */
emp_failure emp_retry_classify(CURLcode code, int request_started);

/* Full jitter: a random delay in [0, min(cap, base * 2^(attempt-1))]. */
long emp_retry_backoff_ms(int attempt, unsigned *seed);

#endif
