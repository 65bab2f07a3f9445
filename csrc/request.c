/* A request: one call on a client, from validation to a result or an error.
 *
 * Its state moves  SENDING -> TRANSFERRED -> (BACKOFF -> SENDING ...) -> DONE.
 * Transfers run on the client's multi handle; emp_client_drive marks a
 * finished one TRANSFERRED (no Lua there), and the request's own poll decides
 * what comes next: another attempt after the retry policy's wait, or the end,
 * where the response is decoded. Nothing here blocks except req:wait and
 * client:call, which wait on the multi handle between polls.
 *
 * The request's user value holds what must live as long as it does:
 *   { client = <client userdata>, body = <string curl sends from>,
 *     on_event = <function or nil>, result = <table>, err = <error object> } */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "errors.h"
#include "events.h"
#include "retry.h"
#include "schema.h"
#include "transport.h"
#include "validate.h"

#define EMP_MAX_HEADER_BYTES (64 * 1024)
/* The longest a blocking wait sleeps before looking at the clock again. */
#define EMP_MAX_WAIT_MS      1000

typedef enum { REQ_SENDING, REQ_TRANSFERRED, REQ_BACKOFF, REQ_DONE } emp_req_state;

struct emp_request {
  emp_client *client;               /* NULL once the client closed */
  emp_request *prev, *next;         /* the client's list of live requests */
  const emp_endpoint *ep;
  CURL *easy;                       /* while the request runs */
  emp_req_state state;
  char path[64];                    /* for events and errors: "/api/test-runs/12/re-run" */
  int attempt, capped;
  long limit_ms;                    /* 0: no deadline */
  double started, retry_at;
  CURLcode code;
  long status;
  emp_failure failure;
  const char *why;                  /* why no further attempt, when the policy would retry */
  char *buf;                        /* the response body */
  size_t len, cap, header_bytes;
  int body_overflow, header_overflow;
  char errbuf[CURL_ERROR_SIZE];
};

/* --- time ------------------------------------------------------------------- */

void emp_sleep_ms(long ms) {
  struct timespec ts;
  if (ms <= 0) return;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

double emp_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int emp_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  if (s > 0) emp_sleep_ms((long)(s * 1000 + 0.5));
  return 0;
}

int emp_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)emp_monotonic());
  return 1;
}

static long elapsed_ms(const emp_request *r) {
  return (long)((emp_monotonic() - r->started) * 1000);
}

/* --- curl callbacks (no Lua in here: nothing can longjmp past curl) ---------- */

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  emp_request *r = (emp_request *)userdata;
  size_t n = size * count;
  if (n > r->client->max_response_bytes - r->len) { r->body_overflow = 1; return 0; }
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 16 * 1024;
    char *grown;
    while (cap < r->len + n) cap *= 2;
    if ((grown = (char *)realloc(r->buf, cap)) == NULL) return 0;
    r->buf = grown;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, data, n);
  r->len += n;
  return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
  emp_request *r = (emp_request *)userdata;
  size_t n = size * count;
  (void)data;
  r->header_bytes += n;
  if (r->header_bytes > EMP_MAX_HEADER_BYTES) { r->header_overflow = 1; return 0; }
  return n;
}

/* --- lifetime ------------------------------------------------------------- */

emp_request *emp_request_next(emp_request *r) {
  return r->next;
}

static void unlink_request(emp_request *r) {
  if (r->client == NULL) return;
  if (r->prev) r->prev->next = r->next;
  else r->client->requests = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* Stop the transfer and hand the easy handle back (or free it). */
static void release_easy(emp_request *r) {
  if (r->easy == NULL) return;
  if (r->client != NULL) {
    if (r->state == REQ_SENDING) curl_multi_remove_handle(r->client->multi, r->easy);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)NULL);
    emp_client_give_easy(r->client, r->easy);
  } else {
    curl_easy_cleanup(r->easy);
  }
  r->easy = NULL;
}

static void free_buffer(emp_request *r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

void emp_request_detach(emp_request *r) {
  release_easy(r);
  r->client = NULL;
  r->prev = r->next = NULL;
  free_buffer(r);
}

static int request_gc(lua_State *L) {
  emp_request *r = (emp_request *)luaL_checkudata(L, 1, EMP_REQUEST_MT);
  release_easy(r);
  unlink_request(r);
  r->client = NULL;
  free_buffer(r);
  r->state = REQ_DONE;
  return 0;
}

void emp_request_done_transfer(emp_request *r, CURLcode code) {
  r->code = code;
  r->state = REQ_TRANSFERRED;
}

/* --- attempts ----------------------------------------------------------------- */

/* Begin the next attempt; 0 if libcurl refused (then r->code says so). */
static int send_attempt(emp_request *r) {
  emp_client *c = r->client;
  long attempt_ms = c->timeout_ms;
  r->attempt++;
  r->capped = 0;
  if (r->limit_ms > 0 && r->limit_ms - elapsed_ms(r) < attempt_ms) {
    attempt_ms = r->limit_ms - elapsed_ms(r);
    if (attempt_ms < 1) attempt_ms = 1;
    r->capped = 1;
  }
  r->len = r->header_bytes = 0;
  r->body_overflow = r->header_overflow = 0;
  r->errbuf[0] = '\0';
  curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, attempt_ms);
  if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
    r->code = CURLE_FAILED_INIT;
    r->state = REQ_TRANSFERRED;
    return 0;
  }
  r->state = REQ_SENDING;
  return 1;
}

/* How long to wait before the next attempt, or -1 when the server asks for
 * longer than max_retry_after (then r->why says so). */
static long retry_delay_ms(emp_request *r) {
  curl_off_t after = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &after);
  if (after > 0) {
    if ((double)after > r->client->max_retry_after_s) {
      r->why = "the server asked to retry later than max_retry_after allows";
      return -1;
    }
    return (long)after * 1000;
  }
  return emp_retry_backoff_ms(r->attempt, &r->client->seed);
}

/* After a transfer: the wait before another attempt, or -1 for none. */
static long next_attempt_in(emp_request *r) {
  const emp_endpoint *ep = r->ep;
  long delay;
  if (r->code == CURLE_OK) {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (!emp_retry_status_is_retryable(r->status, ep->flags & EMP_IDEMPOTENT) || r->attempt > r->client->retries) return -1;
  } else {
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    r->failure = emp_retry_classify(r->code, pretransfer > 0);
    if (r->code == CURLE_OPERATION_TIMEDOUT && r->capped) return -1;   /* likely the deadline: no time for more */
    if (r->failure == EMP_FAILURE_PERMANENT || (r->failure == EMP_FAILURE_AMBIGUOUS && !(ep->flags & EMP_IDEMPOTENT)) ||
        r->attempt > r->client->retries)
      return -1;
  }
  if ((delay = retry_delay_ms(r)) < 0) return -1;
  if (r->limit_ms > 0 && elapsed_ms(r) + delay >= r->limit_ms) {
    r->why = "the call's deadline leaves no time for another attempt";
    return -1;
  }
  return delay;
}

/* --- the end of a request ------------------------------------------------------- */

/* Push the error for a transfer that got no usable HTTP response. */
static int transport_error(lua_State *L, emp_request *r) {
  const char *what = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->code);
  int creates_run = !(r->ep->flags & EMP_IDEMPOTENT);
  int deadline_hit = r->capped && r->code == CURLE_OPERATION_TIMEDOUT && elapsed_ms(r) >= r->limit_ms - 10;
  emp_kind kind = deadline_hit ? EMP_TIMEOUT : EMP_TRANSPORT;
  int err;
  if (deadline_hit) what = "the call's deadline passed before the response was complete";
  if (r->body_overflow) {
    err = emp_error_push(L, EMP_DECODE, NULL, "the response is larger than max_response_bytes (%zu bytes)",
                         r->client->max_response_bytes);
  } else if (r->header_overflow) {
    err = emp_error_push(L, EMP_DECODE, NULL, "the response headers are larger than %d bytes", EMP_MAX_HEADER_BYTES);
  } else if (creates_run && r->failure == EMP_FAILURE_AMBIGUOUS) {
    err = emp_error_push(L, kind, NULL,
                         "%s; the request may have reached the server, so it was not retried: the run may have "
                         "been created. Look for it (client:get, or the dashboard) before triggering again",
                         what);
  } else {
    err = emp_error_push(L, kind, NULL, "%s", what);
  }
  emp_error_set_bool(L, err, "retryable", r->failure == EMP_FAILURE_NOT_SENT ||
                                          (r->failure == EMP_FAILURE_AMBIGUOUS && !creates_run));
  return err;
}

static void emit(lua_State *L, emp_request *r, int uv, const char *kind, long retry_in_ms) {
  emp_attempt ev;
  lua_getfield(L, uv, "on_event");
  ev.method = r->ep->method;
  ev.path = r->path;
  ev.attempt = r->attempt;
  ev.elapsed_ms = elapsed_ms(r);
  ev.status = r->code == CURLE_OK ? r->status : 0;
  ev.kind = kind;
  ev.retry_in_ms = retry_in_ms;
  emp_event_emit(L, lua_gettop(L), &ev, &r->client->event_error_reported);
  lua_pop(L, 1);
}

/* Decode the last transfer into uv.result or uv.err, report it, and let go
 * of the easy handle and the buffer. */
static void finish(lua_State *L, emp_request *r, int uv) {
  int err;
  if (r->code == CURLE_OK) {
    emp_response res;
    char *location = NULL, *content_type = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &content_type);
    curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &location);
    res.status = r->status;
    res.body = r->buf ? r->buf : "";
    res.len = r->len;
    res.body_index = 0;
    res.content_type = content_type;
    res.location = location;
    if (emp_decode(L, r->ep, &res)) {
      lua_setfield(L, uv, "result");
      emit(L, r, uv, NULL, -1);
      goto done;
    }
  } else {
    transport_error(L, r);
  }
  err = lua_gettop(L);
  lua_pushfstring(L, "%s %s", r->ep->method, r->path);
  lua_setfield(L, err, "request");
  emp_error_set_int(L, err, "attempts", r->attempt);
  if (r->why != NULL) {
    lua_getfield(L, err, "message");
    lua_pushfstring(L, "%s (not retried: %s)", lua_tostring(L, -1), r->why);
    lua_setfield(L, err, "message");
    lua_pop(L, 1);
  }
  lua_getfield(L, err, "kind");
  emit(L, r, uv, lua_tostring(L, -1), -1);
  lua_pop(L, 1);
  lua_setfield(L, uv, "err");
done:
  release_easy(r);
  unlink_request(r);
  free_buffer(r);
  r->state = REQ_DONE;
}

static void fail_closed(lua_State *L, emp_request *r, int uv) {
  emp_error_push(L, EMP_CONFIG, NULL, "the client was closed while %s %s was in flight", r->ep->method, r->path);
  lua_setfield(L, uv, "err");
  r->state = REQ_DONE;
}

/* Move r along without blocking: 1 when it is done. The request userdata
 * is at idx. */
static int step(lua_State *L, emp_request *r, int idx) {
  int uv;
  long delay;
  if (r->state == REQ_DONE) return 1;
  emp_getuservalue(L, idx);
  uv = lua_gettop(L);
  if (r->client == NULL) {
    fail_closed(L, r, uv);
  } else {
    if (r->state == REQ_BACKOFF && emp_monotonic() >= r->retry_at) send_attempt(r);
    if (r->state == REQ_SENDING) emp_client_drive(r->client);
    if (r->state == REQ_TRANSFERRED) {
      if ((delay = next_attempt_in(r)) < 0) {
        finish(L, r, uv);
      } else {
        emit(L, r, uv, r->code == CURLE_OK ? "http" : "transport", delay);
        r->retry_at = emp_monotonic() + (double)delay / 1000;
        r->state = REQ_BACKOFF;
        if (delay == 0) send_attempt(r);
      }
    }
  }
  lua_settop(L, uv - 1);
  return r->state == REQ_DONE;
}

/* Block on the client's transfers until r is done. */
static void wait_done(lua_State *L, emp_request *r, int idx) {
  while (!step(L, r, idx)) {
    long ms = EMP_MAX_WAIT_MS;
    if (r->state == REQ_BACKOFF) {
      long until = (long)((r->retry_at - emp_monotonic()) * 1000) + 1;
      if (until < ms) ms = until > 0 ? until : 0;
    }
    curl_multi_poll(r->client->multi, NULL, 0, (int)ms, NULL);
  }
}

/* --- Lua API ---------------------------------------------------------------------- */

static emp_request *check_request(lua_State *L) {
  return (emp_request *)luaL_checkudata(L, 1, EMP_REQUEST_MT);
}

/* req:poll() -> false | true, result | true, nil, err; never blocks. */
static int request_poll(lua_State *L) {
  emp_request *r = check_request(L);
  lua_settop(L, 1);
  if (!step(L, r, 1)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  emp_getuservalue(L, 1);
  lua_getfield(L, 3, "result");
  lua_getfield(L, 3, "err");
  lua_remove(L, 3);
  return 3;
}

/* req:wait() -> result | nil, err. */
static int request_wait(lua_State *L) {
  emp_request *r = check_request(L);
  lua_settop(L, 1);
  wait_done(L, r, 1);
  emp_getuservalue(L, 1);
  lua_getfield(L, 2, "result");
  if (!lua_isnil(L, -1)) return 1;
  lua_getfield(L, 2, "err");
  return 2;
}

static int request_tostring(lua_State *L) {
  emp_request *r = check_request(L);
  static const char *const STATES[] = { "sending", "transferred", "waiting to retry", "done" };
  lua_pushfstring(L, "empirical.request (%s %s, %s)", r->ep->method, r->path, STATES[r->state]);
  return 1;
}

/* client:start(op, params [, limit]) -> request | nil, err. Validation
 * happens here: a bad input is an error before anything is sent. limit
 * (seconds) tightens the client's deadline for this request. */
int emp_request_start(lua_State *L) {
  emp_client *c = emp_check_client(L, 1);
  const emp_endpoint *ep = emp_endpoint_find(luaL_checkstring(L, 2));
  emp_request *r;
  const char *path, *body;
  size_t body_len = 0;
  long limit_ms = c->deadline_ms;
  int marshalled, uv;
  if (ep == NULL) return luaL_argerror(L, 2, lua_pushfstring(L, "unknown operation (%s)", emp_endpoint_names()));
  if (!lua_isnoneornil(L, 4)) {
    long limit = (long)(luaL_checknumber(L, 4) * 1000);
    if (limit < 1) limit = 1;
    if (limit_ms == 0 || limit < limit_ms) limit_ms = limit;
  }
  if (c->closed) return emp_fail(L, EMP_CONFIG, NULL, "the client is closed");
  lua_settop(L, 3);
  if (!emp_marshal(L, ep, 3, c->strict)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  marshalled = lua_gettop(L) - 1;   /* path, body */

  r = (emp_request *)emp_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, EMP_REQUEST_MT);
  lua_createtable(L, 0, 4);
  uv = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, uv, "client");
  emp_getuservalue(L, 1);
  lua_getfield(L, -1, "on_event");
  lua_setfield(L, uv, "on_event");
  lua_pop(L, 1);
  lua_pushvalue(L, marshalled + 1);
  body = lua_tolstring(L, -1, &body_len);
  lua_setfield(L, uv, "body");            /* curl reads from it: anchored as long as r */
  path = lua_tostring(L, marshalled);
  snprintf(r->path, sizeof r->path, "%s", path);
  lua_pushfstring(L, "%s%s", c->base_url, path);   /* curl copies the URL */
  lua_pushvalue(L, uv);
  emp_setuservalue(L, uv - 1);

  r->client = c;
  r->ep = ep;
  r->limit_ms = limit_ms;
  r->started = emp_monotonic();
  r->next = c->requests;
  if (c->requests) c->requests->prev = r;
  c->requests = r;
  if ((r->easy = emp_client_take_easy(c)) == NULL)
    return emp_fail(L, EMP_CONFIG, NULL, "could not set up libcurl (out of memory)");
  {
    CURL *e = r->easy;
    int ok = curl_easy_setopt(e, CURLOPT_URL, lua_tostring(L, -1)) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_HEADERDATA, r) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK &&
             /* A call that creates a run always gets a fresh connection: on a
              * reused connection that dies before answering, libcurl resends
              * the request by itself, and a resent PUT or POST could create a
              * second run. */
             curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, (ep->flags & EMP_IDEMPOTENT) ? 0L : 1L) == CURLE_OK;
    if (body == NULL && strcmp(ep->method, "GET") == 0) {
      ok = ok && curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK;
    } else {   /* the method is the row's, body or not (a cancel without a reason has none) */
      ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, ep->method) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, body ? c->body_headers : c->headers) == CURLE_OK;
    }
    if (!ok) return emp_fail(L, EMP_CONFIG, NULL, "libcurl refused the request options");
  }
  lua_settop(L, uv - 1);
  send_attempt(r);
  return 1;
}

/* client:call(op, params [, limit]) -> result | nil, err: start, then wait. */
int emp_request_call(lua_State *L) {
  int n = emp_request_start(L);
  if (n == 2) return 2;
  lua_replace(L, 1);     /* the request, where request_wait wants it */
  lua_settop(L, 1);
  return request_wait(L);
}

void emp_request_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "poll", request_poll },
    { "wait", request_wait },
    { NULL, NULL }
  };
  if (luaL_newmetatable(L, EMP_REQUEST_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, request_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, request_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
