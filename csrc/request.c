/* A request: one call on a client, from validation to a result or an error.
 *
 * Its state moves  SENDING -> TRANSFERRED -> (BACKOFF -> SENDING ...) -> DONE.
 * Transfers run on the client's multi handle; emp_client_drive marks a
 * finished one TRANSFERRED (no Lua there), and the request's own poll decides
 * what comes next: another attempt after the retry policy's wait, the next
 * hop of a report's redirect, or the end, where the response is decoded.
 * Nothing here blocks except req:wait and client:call, which wait on the
 * multi handle between polls, in slices, so that a caught signal ends them.
 *
 * Callbacks (on_event) run inside a poll. They may close the client, start
 * other calls or raise; a request they poll or wait on while it is being
 * polled is refused ("busy"). Whatever they do, a result the server gave is
 * returned: a created run is never reported as a failure.
 *
 * The request's user value holds what must live as long as it does:
 *   { client = <client userdata>, body = <string curl sends from>,
 *     path = <the path, or a report's URL without its query>,
 *     on_event = <function or nil>, result = <value>, err = <error object> } */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "errors.h"
#include "events.h"
#include "retry.h"
#include "schema.h"
#include "signals.h"
#include "transport.h"
#include "validate.h"

#define EMP_MAX_HEADER_BYTES (64 * 1024)
/* A report's summary_url may redirect (to storage) this many times. */
#define EMP_MAX_REDIRECTS    5

typedef enum { REQ_SENDING, REQ_TRANSFERRED, REQ_BACKOFF, REQ_DONE } emp_req_state;

struct emp_request {
  emp_client *client;               /* NULL once the client closed */
  emp_request *prev, *next;         /* the client's list of live requests */
  const emp_endpoint *ep;
  CURL *easy;                       /* while the request runs */
  emp_req_state state;
  const char *path;                 /* for events and errors; anchored in the user value */
  int attempt, capped, redirects;
  int busy;                         /* being polled: a callback may not poll it again */
  int linked;                       /* on the client's list of live requests */
  int left;                         /* the last attempt may have reached the server */
  int left_at_close;                /* an attempt was under way when the client closed */
  size_t max_response_bytes;        /* the client's, kept for messages once it is closed */
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

/* Take r off its client's list, once: a request that ended is no longer
 * on it, and must not touch it again (its __gc runs later). */
static void unlink_request(emp_request *r) {
  if (!r->linked) return;
  if (r->prev) r->prev->next = r->next;
  else if (r->client != NULL) r->client->requests = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->linked = 0;
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

/* Let go of everything but the user value: the end of a request, however it ends. */
static void end_request(emp_request *r) {
  release_easy(r);
  unlink_request(r);
  free_buffer(r);
  r->state = REQ_DONE;
}

/* The client is closing. A request whose answer has come (TRANSFERRED)
 * keeps it, easy handle and body, off the multi handle already: its next
 * poll still decodes it, so a created run is never lost to a close. */
void emp_request_detach(emp_request *r) {
  r->left_at_close = r->state == REQ_SENDING || r->state == REQ_TRANSFERRED;
  if (r->state != REQ_TRANSFERRED) {
    release_easy(r);
    free_buffer(r);
  }
  r->client = NULL;   /* release_easy now frees the handle it kept */
  r->prev = r->next = NULL;
  r->linked = 0;      /* the client is letting go of its whole list */
}

static int request_gc(lua_State *L) {
  emp_request *r = (emp_request *)luaL_checkudata(L, 1, EMP_REQUEST_MT);
  end_request(r);
  r->client = NULL;
  return 0;
}

void emp_request_done_transfer(emp_request *r, CURLcode code) {
  r->code = code;
  r->state = REQ_TRANSFERRED;
}

/* --- attempts ----------------------------------------------------------------- */

/* Begin the next attempt (or the next hop of a redirect, which is no new
 * attempt); 0 if libcurl refused (then r->code says so). */
static int send_attempt(emp_request *r, int new_attempt) {
  emp_client *c = r->client;
  long attempt_ms = c->timeout_ms;
  if (new_attempt) r->attempt++;
  r->capped = 0;
  if (r->limit_ms > 0 && r->limit_ms - elapsed_ms(r) < attempt_ms) {
    attempt_ms = r->limit_ms - elapsed_ms(r);
    if (attempt_ms < 1) attempt_ms = 1;
    r->capped = 1;
  }
  r->len = r->header_bytes = 0;
  r->status = 0;
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

/* What the last transfer says: its status, how it failed, and whether the
 * request may have reached the server (it began to leave: libcurl got past
 * connecting and the TLS handshake; or an answer came). */
static void read_transfer(emp_request *r) {
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);   /* also after a failure mid-body */
  curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  r->failure = r->code == CURLE_OK ? EMP_FAILURE_AMBIGUOUS   /* it reached the server: it answered */
                                   : emp_retry_classify(r->code, pretransfer > 0);
  r->left = r->code == CURLE_OK || r->status > 0 || pretransfer > 0;
}

/* After a transfer: the wait before another attempt, or -1 for none. */
static long next_attempt_in(emp_request *r) {
  int idempotent = (r->ep->flags & EMP_IDEMPOTENT) != 0;
  long delay;
  read_transfer(r);
  if (r->code == CURLE_OK) {
    if (!emp_retry_status_is_retryable(r->status, idempotent) || r->attempt > r->client->retries) return -1;
  } else {
    if (r->code == CURLE_OPERATION_TIMEDOUT && r->capped) return -1;   /* likely the deadline: no time for more */
    if (r->failure == EMP_FAILURE_PERMANENT || (r->failure == EMP_FAILURE_AMBIGUOUS && !idempotent) ||
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
  int deadline_hit = r->capped && r->code == CURLE_OPERATION_TIMEDOUT && elapsed_ms(r) >= r->limit_ms - 10;
  int idempotent = (r->ep->flags & EMP_IDEMPOTENT) != 0;
  int err;
  if (deadline_hit) what = "the call's deadline passed before the response was complete";
  if (r->body_overflow)
    err = emp_error_push(L, EMP_DECODE, NULL, "the response is larger than max_response_bytes (%zu bytes)",
                         r->max_response_bytes);
  else if (r->header_overflow)
    err = emp_error_push(L, EMP_DECODE, NULL, "the response headers are larger than %d bytes", EMP_MAX_HEADER_BYTES);
  else if (r->code == CURLE_OUT_OF_MEMORY && r->status > 0)   /* libcurl's own cap on one header line */
    err = emp_error_push(L, EMP_DECODE, NULL, "the response headers are larger than libcurl accepts "
                         "(a header line over 100 KiB)");
  else
    err = emp_error_push(L, deadline_hit ? EMP_TIMEOUT : EMP_TRANSPORT, NULL, "%s", what);
  if (r->status > 0) emp_error_set_int(L, err, "status", r->status);
  emp_error_set_bool(L, err, "retryable", r->failure == EMP_FAILURE_NOT_SENT ||
                                          (r->failure == EMP_FAILURE_AMBIGUOUS && idempotent));
  if (!idempotent && r->left) emp_error_note_may_exist(L, err, r->status);
  return err;
}

static void emit(lua_State *L, emp_request *r, int uv, const char *kind, long retry_in_ms) {
  emp_attempt ev;
  if (r->client == NULL) return;   /* closed by an earlier callback: no one to tell */
  lua_getfield(L, uv, "on_event");
  ev.method = r->ep->method;
  ev.path = r->path;
  ev.attempt = r->attempt;
  ev.elapsed_ms = elapsed_ms(r);
  ev.status = r->status;
  ev.kind = kind;
  ev.retry_in_ms = retry_in_ms;
  emp_event_emit(L, lua_gettop(L), &ev, &r->client->event_error_reported);
  lua_pop(L, 1);
}

/* Set what every error of a request carries, put it in uv.err, and tell on_event. */
static void fail_with(lua_State *L, emp_request *r, int uv, int err) {
  lua_pushfstring(L, "%s %s", r->ep->method, r->path);
  lua_setfield(L, err, "request");
  emp_error_set_int(L, err, "attempts", r->attempt);
  lua_pushvalue(L, err);
  lua_setfield(L, uv, "err");
  lua_getfield(L, err, "kind");
  emit(L, r, uv, lua_tostring(L, -1), -1);
  lua_settop(L, err - 1);
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
      end_request(r);              /* before the callback: it may close the client */
      emit(L, r, uv, NULL, -1);
      return;
    }
  } else {
    transport_error(L, r);
  }
  err = lua_gettop(L);
  if (r->code == CURLE_OK) {   /* a poller's next try honours the server's Retry-After */
    curl_off_t after = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &after);   /* the server's number: capped at a day */
    if (after > 0) emp_error_set_int(L, err, "retry_after", (long long)(after < 86400 ? after : 86400));
  }
  if (r->why != NULL) {
    lua_getfield(L, err, "message");
    lua_pushfstring(L, "%s (not retried: %s)", lua_tostring(L, -1), r->why);
    lua_setfield(L, err, "message");
    lua_pop(L, 1);
  }
  end_request(r);
  fail_with(L, r, uv, err);
}

/* End r now with the error on top of the stack (closed, interrupted,
 * aborted), noting for a creating call whose attempt was under way that the
 * run may exist. */
static void cut(lua_State *L, emp_request *r, int uv, int was_sending) {
  int err = lua_gettop(L);
  if (!(r->ep->flags & EMP_IDEMPOTENT) && was_sending) emp_error_note_may_exist(L, err, 0);
  end_request(r);
  fail_with(L, r, uv, err);
}

static void fail_closed(lua_State *L, emp_request *r, int uv) {
  emp_error_push(L, EMP_CONFIG, NULL, "the client was closed while %s %s was in flight", r->ep->method, r->path);
  cut(L, r, uv, r->left_at_close);
}

/* End r now, for the reason (an error object) on top of the stack: unless
 * its answer has already come, which it keeps (a created run is returned). */
static void stop(lua_State *L, emp_request *r, int uv) {
  if (r->state == REQ_TRANSFERRED && r->easy != NULL) {
    lua_pop(L, 1);
    read_transfer(r);
    finish(L, r, uv);
    return;
  }
  cut(L, r, uv, r->client != NULL ? r->state == REQ_SENDING : r->left_at_close);
}

/* --- a report's redirects ------------------------------------------------------ */

/* A 3xx to a report download: follow it, without the token, to a URL that
 * passes the same checks as summary_url. Returns 1 when the next hop is
 * under way, else 0 with a message in *problem (NULL: not a redirect). */
static int follow_redirect(emp_request *r, const char **problem) {
  char *location = NULL;
  emp_url next;
  *problem = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  if (r->code != CURLE_OK || r->status < 300 || r->status > 399) return 0;
  curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &location);
  if (location == NULL) return 0;   /* no Location: decoded as an http error */
  if (++r->redirects > EMP_MAX_REDIRECTS) {
    *problem = "more than 5 redirects";
    return 0;
  }
  if ((*problem = emp_url_parse(&next, location, EMP_URL_PATH | (r->client->allow_plain_http ? EMP_URL_PLAIN_HTTP : 0))) != NULL)
    return 0;
  /* The next hop never carries the token, wherever it points. */
  if (curl_easy_setopt(r->easy, CURLOPT_URL, next.url) != CURLE_OK ||
      curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->client->anonymous_headers) != CURLE_OK ||
      !emp_client_route(r->client, r->easy, next.loopback)) {
    *problem = "libcurl refused the redirect's URL";
    emp_url_free(&next);
    return 0;
  }
  emp_url_free(&next);
  return send_attempt(r, 0);
}

static void redirect_error(lua_State *L, emp_request *r, int uv, const char *problem) {
  int err = emp_error_push(L, EMP_HTTP, NULL, "the report's URL redirected to a URL that was refused: %s", problem);
  emp_error_set_int(L, err, "status", r->status);
  emp_error_set_bool(L, err, "retryable", 0);
  end_request(r);
  fail_with(L, r, uv, err);
}

/* --- moving a request along ----------------------------------------------------- */

/* Move r along without blocking: 1 when it is done. The request userdata
 * is at idx. */
static int step(lua_State *L, emp_request *r, int idx) {
  int uv;
  long delay;
  const char *problem;
  if (r->state == REQ_DONE) return 1;
  if (r->busy)
    return luaL_error(L, "empirical: %s %s is busy: a callback of its own cannot poll or wait on it",
                      r->ep->method, r->path);
  r->busy = 1;
  emp_getuservalue(L, idx);
  uv = lua_gettop(L);
  if (r->client == NULL && r->state == REQ_TRANSFERRED && r->easy != NULL) {
    read_transfer(r);   /* its answer came before the client closed: no more attempts, but its result */
    finish(L, r, uv);
  } else if (r->client == NULL) {
    fail_closed(L, r, uv);
  } else {
    if (r->state == REQ_BACKOFF && emp_monotonic() >= r->retry_at) send_attempt(r, 1);
    if (r->state == REQ_SENDING) emp_client_drive(r->client);
    if (r->state == REQ_TRANSFERRED && (r->ep->flags & EMP_RAW) && !follow_redirect(r, &problem) && problem != NULL) {
      redirect_error(L, r, uv, problem);
    } else if (r->state == REQ_TRANSFERRED) {
      if ((delay = next_attempt_in(r)) < 0) {
        finish(L, r, uv);
      } else {
        r->retry_at = emp_monotonic() + (double)delay / 1000;
        r->state = REQ_BACKOFF;    /* this answer is used up: a close now cuts nothing that came */
        emit(L, r, uv, r->code == CURLE_OK ? "http" : "transport", delay);
        if (r->client == NULL) fail_closed(L, r, uv);   /* the callback closed the client */
        else if (delay == 0) send_attempt(r, 1);
      }
    }
  }
  lua_settop(L, uv - 1);
  r->busy = 0;
  return r->state == REQ_DONE;
}

/* End r because a caught signal arrived while a caller waited on it. */
static void interrupt(lua_State *L, emp_request *r, int idx) {
  int uv;
  emp_getuservalue(L, idx);
  uv = lua_gettop(L);
  emp_signal_error(L);
  stop(L, r, uv);
  lua_settop(L, uv - 1);
}

/* Block on the client's transfers until r is done, or a caught signal. */
static void wait_done(lua_State *L, emp_request *r, int idx) {
  while (!step(L, r, idx)) {
    long ms = EMP_SIGNAL_SLICE_MS;
    if (emp_signal_pending()) {
      interrupt(L, r, idx);
      return;
    }
    if (r->client == NULL) continue;   /* a callback closed it: the next step says so */
    /* Move the client's other transfers along too: a socket of theirs left
     * readable would wake the poll below at once, and spin. */
    if (r->state != REQ_SENDING) emp_client_drive(r->client);
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

/* req:abort([message]) -> true: end a request still in flight with kind
 * "interrupted" (an event loop's "stop"); one whose answer has come keeps
 * it, as a done one keeps its outcome. */
static int request_abort(lua_State *L) {
  emp_request *r = check_request(L);
  const char *message = luaL_optstring(L, 2, "aborted by the caller (req:abort())");
  lua_settop(L, 2);
  if (r->state != REQ_DONE && !r->busy) {
    int uv;
    emp_getuservalue(L, 1);
    uv = lua_gettop(L);
    emp_error_push(L, EMP_INTERRUPTED, NULL, "%s", message);
    stop(L, r, uv);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int request_tostring(lua_State *L) {
  emp_request *r = check_request(L);
  static const char *const STATES[] = { "sending", "transferred", "waiting to retry", "done" };
  lua_pushfstring(L, "empirical.request (%s %s, %s)", r->ep->method, r->path, STATES[r->state]);
  return 1;
}

/* Set up the easy handle for r's first attempt. */
static int set_up(emp_request *r, const char *url, const char *body, size_t body_len,
                  struct curl_slist *headers, int loopback) {
  CURL *e = r->easy;
  int ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HEADERDATA, r) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
           emp_client_route(r->client, e, loopback) &&
           /* A call that creates a run always gets a fresh connection: on a
            * reused connection that dies before answering, libcurl resends
            * the request by itself, and a resent PUT or POST could create a
            * second run. */
           curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, (r->ep->flags & EMP_IDEMPOTENT) ? 0L : 1L) == CURLE_OK;
  if (body == NULL && strcmp(r->ep->method, "GET") == 0)
    return ok && curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK;
  /* The method is the row's, body or not (a cancel without a reason has none). */
  return ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->ep->method) == CURLE_OK;
}

/* The report download's target: summary_url, checked like base_url; the
 * token goes only to the API's own origin. Pushes the URL and the label
 * (the URL without its query, which may hold a signature). */
static const char *report_target(lua_State *L, emp_client *c, int arg, int *same_origin, int *loopback) {
  emp_url u;
  const char *problem, *url = luaL_checkstring(L, arg), *query;
  if ((problem = emp_url_parse(&u, url, EMP_URL_PATH | (c->allow_plain_http ? EMP_URL_PLAIN_HTTP : 0))) != NULL)
    return problem;
  *same_origin = strcmp(u.origin, c->base.origin) == 0;
  *loopback = u.loopback;
  lua_pushstring(L, u.url);
  query = strchr(u.url, '?');
  lua_pushlstring(L, u.url, query ? (size_t)(query - u.url) : strlen(u.url));
  emp_url_free(&u);
  return NULL;
}

/* client:start(op, params [, limit]) -> request | nil, err. Validation
 * happens here: a bad input is an error before anything is sent. limit
 * (seconds) tightens the client's deadline for this request. The op
 * "report" takes a URL (a run's summary_url) instead of params. */
int emp_request_start(lua_State *L) {
  emp_client *c = emp_check_client(L, 1);
  const char *name = luaL_checkstring(L, 2), *body, *problem;
  const emp_endpoint *ep = strcmp(name, emp_download.name) == 0 ? &emp_download : emp_endpoint_find(name);
  emp_request *r;
  size_t body_len = 0;
  long limit_ms = c->deadline_ms;
  int uv, target, same_origin = 1, loopback = c->base.loopback;
  if (ep == NULL) return emp_fail(L, EMP_INVALID, "op", "unknown operation %s (%s)", name, emp_endpoint_names());
  if (!lua_isnoneornil(L, 4)) {
    double limit_s = (double)luaL_checknumber(L, 4);
    long limit = !(limit_s > 0.001) ? 1 : limit_s < 2147483.0 ? (long)(limit_s * 1000) : 0;   /* 0: no tighter */
    if (limit > 0 && (limit_ms == 0 || limit < limit_ms)) limit_ms = limit;
  }
  if (c->closed) return emp_fail(L, EMP_CONFIG, NULL, "the client is closed");
  lua_settop(L, 3);
  if (ep == &emp_download) {
    if ((problem = report_target(L, c, 3, &same_origin, &loopback)) != NULL)
      return emp_fail(L, EMP_INVALID, "summary_url", "%s", problem);
    lua_pushnil(L);                       /* url, label, no body */
  } else {
    if (!emp_marshal(L, ep, 3, c->strict)) {
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    lua_pushfstring(L, "%s%s", c->base.url, lua_tostring(L, -2));
    lua_insert(L, -3);                    /* url, path, body */
  }
  target = lua_gettop(L) - 2;             /* url, label, body */

  r = (emp_request *)emp_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, EMP_REQUEST_MT);
  lua_createtable(L, 0, 6);
  uv = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, uv, "client");
  emp_getuservalue(L, 1);
  lua_getfield(L, -1, "on_event");
  lua_setfield(L, uv, "on_event");
  lua_pop(L, 1);
  lua_pushvalue(L, target + 1);
  r->path = lua_tostring(L, -1);
  lua_setfield(L, uv, "path");            /* anchored as long as r */
  lua_pushvalue(L, target + 2);
  body = lua_tolstring(L, -1, &body_len);
  lua_setfield(L, uv, "body");            /* curl reads from it: anchored as long as r */
  lua_pushvalue(L, uv);
  emp_setuservalue(L, uv - 1);

  r->client = c;
  r->ep = ep;
  r->max_response_bytes = c->max_response_bytes;
  r->limit_ms = limit_ms;
  r->started = emp_monotonic();
  r->next = c->requests;
  if (c->requests) c->requests->prev = r;
  c->requests = r;
  r->linked = 1;
  if ((r->easy = emp_client_take_easy(c)) == NULL)
    return emp_fail(L, EMP_CONFIG, NULL, "could not set up libcurl (out of memory)");
  if (!set_up(r, lua_tostring(L, target), body, body_len,
              !same_origin ? c->anonymous_headers : body ? c->body_headers :
              strcmp(ep->method, "GET") == 0 ? c->headers : c->post_headers, loopback))
    return emp_fail(L, EMP_CONFIG, NULL, "libcurl refused the request options");
  lua_settop(L, uv - 1);
  send_attempt(r, 1);
  return 1;
}

/* client:call(op, params [, limit]) -> result | nil, err: start, then wait. */
int emp_request_call(lua_State *L) {
  int n;
  if (emp_signal_pending()) return emp_signal_fail(L);   /* caught before it began: nothing is sent */
  n = emp_request_start(L);
  if (n == 2) return 2;
  lua_replace(L, 1);     /* the request, where request_wait wants it */
  lua_settop(L, 1);
  return request_wait(L);
}

void emp_request_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "poll", request_poll },
    { "wait", request_wait },
    { "abort", request_abort },
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
