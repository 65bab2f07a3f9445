/* Transport: a client owns one libcurl multi handle, so its calls share
 * connections (and TLS sessions) and many can run at once; a request is one
 * call on it, moved along by a small state machine that never blocks except
 * where the caller asks it to (req:wait, client:call).
 *
 *   client.c   the client: options, headers, base URL, easy handles, the multi
 *   request.c  a request: attempts, the retry policy's waits, decoding, events */
#ifndef EMP_TRANSPORT_H
#define EMP_TRANSPORT_H

#include <curl/curl.h>

#include "compat.h"
#include "url.h"

#define EMP_VERSION "0.1.0"
#define EMP_CLIENT_MT "empirical.client"
#define EMP_REQUEST_MT "empirical.request"

typedef struct emp_request emp_request;

typedef struct emp_client {
  CURLM *multi;
  CURL *spare;                      /* an idle easy handle, set up, for the next request */
  struct curl_slist *headers;       /* to the API: GET */
  struct curl_slist *post_headers;  /* to the API: a POST without a body */
  struct curl_slist *body_headers;  /* to the API: with a JSON body */
  struct curl_slist *anonymous_headers; /* to any other origin: no token, no project */
  emp_url base;                     /* base_url, without a trailing slash, and its origin */
  char *token;                      /* for the verbose trace to hide; wiped on close */
  char *ca_file, *proxy;            /* copied: each new easy handle needs them */
  long timeout_ms, connect_timeout_ms;
  long deadline_ms;                 /* bounds one call with its retries; 0: none */
  long low_speed_limit, low_speed_time_s;
  double max_retry_after_s;
  int retries, strict, closed, verbose, allow_plain_http;
  int event_error_reported;         /* on_event raised once: stay quiet after */
  size_t max_response_bytes;
  unsigned seed;
  emp_request *requests;            /* live requests: close() detaches them */
} emp_client;

/* client.c */
void emp_client_open(lua_State *L);       /* registers the metatable */
int emp_client_new(lua_State *L);         /* core.client(options [, on_event]) */
emp_client *emp_check_client(lua_State *L, int idx);
CURL *emp_client_take_easy(emp_client *c); /* the spare, or a new one set up; NULL: out of memory */
void emp_client_give_easy(emp_client *c, CURL *easy);
void emp_client_drive(emp_client *c);     /* one non-blocking round of every transfer */
/* Set the proxy for a request to a loopback address or not; 0 on failure. */
int emp_client_route(emp_client *c, CURL *easy, int loopback);

/* request.c */
void emp_request_open(lua_State *L);      /* registers the metatable */
int emp_request_start(lua_State *L);      /* client:start(op, params [, limit]); op "report": a URL */
int emp_request_call(lua_State *L);       /* client:call(op, params [, limit]): start and wait */
void emp_request_done_transfer(emp_request *r, CURLcode code);  /* from emp_client_drive */
void emp_request_detach(emp_request *r);  /* the client is closing */
emp_request *emp_request_next(emp_request *r);

#endif
