/* The retry policy: which failures may be tried again, and how long to wait. */
#include "retry.h"

int emp_retry_status_is_retryable(long status, int idempotent) {
  if (status == 429) return 1;            /* the server refused before doing anything */
  if (!idempotent) return 0;              /* a 5xx may come after the run was created */
  return status == 408 || status == 500 || status == 502 || status == 503 || status == 504;
}

emp_failure emp_retry_classify(CURLcode code, int request_started) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
      return EMP_FAILURE_NOT_SENT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_OPERATION_TIMEDOUT:
      return request_started ? EMP_FAILURE_AMBIGUOUS : EMP_FAILURE_NOT_SENT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_WRITE_ERROR:               /* our response-size caps */
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
      return EMP_FAILURE_PERMANENT;
    default:
      return request_started ? EMP_FAILURE_AMBIGUOUS : EMP_FAILURE_NOT_SENT;
  }
}

long emp_retry_backoff_ms(int attempt, unsigned *seed) {
  long ceiling = EMP_RETRY_BASE_MS;
  unsigned x = *seed ? *seed : 0x9E3779B9u;
  while (--attempt > 0 && ceiling < EMP_RETRY_CAP_MS) ceiling *= 2;
  if (ceiling > EMP_RETRY_CAP_MS) ceiling = EMP_RETRY_CAP_MS;
  x ^= x << 13; x ^= x >> 17; x ^= x << 5;  /* xorshift32: jitter needs spread, not secrecy */
  *seed = x;
  return (long)(x % (unsigned)(ceiling + 1));
}
