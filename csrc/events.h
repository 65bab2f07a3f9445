/* What a client tells its user about its work, never with the token in it:
 * on_event(ev) after each attempt, and libcurl's verbose trace. */
#ifndef EMP_EVENTS_H
#define EMP_EVENTS_H

#include <curl/curl.h>

#include "compat.h"

typedef struct emp_attempt {
  const char *method, *path;   /* "GET", "/api/test-runs/12" */
  int attempt;                 /* 1 for the first try */
  long elapsed_ms;             /* since the call started */
  long status;                 /* 0: no HTTP response */
  const char *kind;            /* the error kind of this attempt, NULL on success */
  long retry_in_ms;            /* -1: no retry follows */
} emp_attempt;

/* Call the function at stack index fn (if it is one) with an event table.
 * An error it raises is caught and, the first time (*reported is 0),
 * reported on stderr: the call it observes goes on, so a run is never lost
 * to a logging bug. */
void emp_event_emit(lua_State *L, int fn, const emp_attempt *a, int *reported);

/* CURLOPT_DEBUGFUNCTION: the trace on stderr, headers and info lines only,
 * credential headers cut after their name in every form libcurl writes
 * them, and the token (CURLOPT_DEBUGDATA) hidden wherever else it shows. */
int emp_debug_trace(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);

#endif
