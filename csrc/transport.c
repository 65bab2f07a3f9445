/* Transport: client userdata, request options, the transfer loop, retries. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "decode.h"
#include "errors.h"
#include "events.h"
#include "retry.h"
#include "schema.h"
#include "transport.h"
#include "validate.h"

/* Named defaults, as the README lists them. */
#define EMP_DEFAULT_TIMEOUT_S          30.0
#define EMP_DEFAULT_CONNECT_TIMEOUT_S  10.0
#define EMP_DEFAULT_LOW_SPEED_LIMIT    1      /* bytes per second... */
#define EMP_DEFAULT_LOW_SPEED_TIME_S   20.0   /* ...for this long: a stalled server */
#define EMP_DEFAULT_RETRIES            3
#define EMP_DEFAULT_MAX_RETRY_AFTER_S  60.0
#define EMP_DEFAULT_MAX_RESPONSE_BYTES (64.0 * 1024 * 1024)
#define EMP_MAX_HEADER_BYTES           (64 * 1024)
#define EMP_MAX_RETRIES                10
/* A response buffer larger than this is freed after the call, not kept. */
#define EMP_KEEP_BUFFER_BYTES          (1024 * 1024)

typedef struct emp_client {
  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;       /* for GET */
  struct curl_slist *body_headers;  /* for PUT and POST: adds Content-Type */
  char *base_url;                   /* without a trailing slash */
  long timeout_ms, connect_timeout_ms;
  long deadline_ms;                 /* bounds one call with its retries; 0: none */
  long low_speed_limit, low_speed_time_s;
  int verbose;
  int event_error_reported;         /* on_event raised once: stay quiet after */
  double max_retry_after_s;
  int retries, strict, closed;
  size_t max_response_bytes;
  unsigned seed;
  /* the current transfer */
  char *buf;
  size_t len, cap, header_bytes;
  int body_overflow, header_overflow;
  char errbuf[CURL_ERROR_SIZE];
} emp_client;

/* --- time ----------------------------------------------------------------- */

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

/* --- curl callbacks (no Lua in here: nothing can longjmp past curl) ---------- */

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  emp_client *c = (emp_client *)userdata;
  size_t n = size * count;
  if (n > c->max_response_bytes - c->len) { c->body_overflow = 1; return 0; }
  if (c->len + n > c->cap) {
    size_t cap = c->cap ? c->cap : 16 * 1024;
    char *grown;
    while (cap < c->len + n) cap *= 2;
    if ((grown = (char *)realloc(c->buf, cap)) == NULL) return 0;
    c->buf = grown;
    c->cap = cap;
  }
  memcpy(c->buf + c->len, data, n);
  c->len += n;
  return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata) {
  emp_client *c = (emp_client *)userdata;
  size_t n = size * count;
  (void)data;
  c->header_bytes += n;
  if (c->header_bytes > EMP_MAX_HEADER_BYTES) { c->header_overflow = 1; return 0; }
  return n;
}

/* --- lifetime ------------------------------------------------------------- */

static void free_headers(struct curl_slist **list) {
  struct curl_slist *h;
  for (h = *list; h != NULL; h = h->next) memset(h->data, 0, strlen(h->data)); /* the token */
  curl_slist_free_all(*list);
  *list = NULL;
}

static void client_release(emp_client *c) {
  if (c->easy) {
    if (c->multi) curl_multi_remove_handle(c->multi, c->easy);
    curl_easy_cleanup(c->easy);
  }
  if (c->multi) curl_multi_cleanup(c->multi);
  c->easy = NULL;
  c->multi = NULL;
  free_headers(&c->headers);
  free_headers(&c->body_headers);
  free(c->base_url);
  free(c->buf);
  c->base_url = NULL;
  c->buf = NULL;
  c->cap = c->len = 0;
  c->closed = 1;
}

static emp_client *check_client(lua_State *L) {
  return (emp_client *)luaL_checkudata(L, 1, EMP_CLIENT_MT);
}

static int client_close(lua_State *L) {
  client_release(check_client(L));
  return 0;
}

static int client_tostring(lua_State *L) {
  emp_client *c = check_client(L);
  if (c->closed) lua_pushliteral(L, "empirical.client (closed)");
  else lua_pushfstring(L, "empirical.client (%s)", c->base_url);
  return 1;
}

/* --- options -------------------------------------------------------------- */

/* Options are validated first (schema.c); these read the user's table raw.
 * A string stays valid while the options table is on the stack: the whole
 * of emp_client_new, which copies what it keeps. */
static const char *opt_string(lua_State *L, int opts, const char *name) {
  const char *s;
  emp_raw_field(L, opts, name);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

static double opt_number(lua_State *L, int opts, const char *name, double fallback) {
  double d;
  emp_raw_field(L, opts, name);
  d = lua_isnil(L, -1) ? fallback : (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return d;
}

static int opt_bool(lua_State *L, int opts, const char *name, int fallback) {
  int b;
  emp_raw_field(L, opts, name);
  b = lua_isnil(L, -1) ? fallback : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

static int is_loopback(const char *host) {
  return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
         strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* Check base_url and keep it without its trailing slash. Returns NULL on
 * success, else a message. */
static const char *set_base_url(emp_client *c, const char *url, int allow_plain_http) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *part = NULL;
  const char *problem = NULL;
  size_t n;
  if (u == NULL) return "out of memory";
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) { problem = "is not a URL"; goto done; }
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) { problem = "has no host"; goto done; }
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) { problem = "must be an https:// URL"; goto done; }
  if (strcmp(scheme, "http") == 0 && !is_loopback(host) && !allow_plain_http) {
    problem = "is plain http to a host that is not loopback: the bearer token would cross the network "
              "in clear. Use https, or set allow_plain_http = true if you really mean it";
    goto done;
  }
  if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) { problem = "must not carry a user name or password"; goto done; }
  if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK) { problem = "must not have a query string"; goto done; }
  if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) { problem = "must not have a fragment"; goto done; }
  n = strlen(url);
  while (n > 0 && url[n - 1] == '/') n--;
  if ((c->base_url = (char *)malloc(n + 1)) == NULL) { problem = "out of memory"; goto done; }
  memcpy(c->base_url, url, n);
  c->base_url[n] = '\0';
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(part);
  curl_url_cleanup(u);
  return problem;
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *grown = curl_slist_append(*list, line);
  if (grown == NULL) return 0;
  *list = grown;
  return 1;
}

/* Both header lists. The Authorization line is built in a scratch buffer
 * that is wiped before it is freed. */
static int build_headers(lua_State *L, emp_client *c, int opts) {
  const char *token = opt_string(L, opts, "token");
  const char *suffix = opt_string(L, opts, "user_agent");
  const char *slug = opt_string(L, opts, "project_slug");
  double project_id = opt_number(L, opts, "project_id", 0);
  size_t size = strlen(token) + 64;
  char line[512], *auth = (char *)malloc(size);
  int ok = auth != NULL;
  struct curl_slist **lists[2];
  int i;
  lists[0] = &c->headers;
  lists[1] = &c->body_headers;
  if (ok) snprintf(auth, size, "Authorization: Bearer %s", token);
  for (i = 0; ok && i < 2; i++) {
    ok = add_header(lists[i], auth) && add_header(lists[i], "Accept: application/json") &&
         add_header(lists[i], "Expect:");  /* no 100-continue round trip */
    if (ok && suffix) {
      snprintf(line, sizeof line, "User-Agent: empirical-lua/%s %s", EMP_VERSION, suffix);
      ok = add_header(lists[i], line);
    } else if (ok) {
      ok = add_header(lists[i], "User-Agent: empirical-lua/" EMP_VERSION);
    }
    if (ok && slug) {
      snprintf(line, sizeof line, "x-project-slug: %s", slug);
      ok = add_header(lists[i], line);
    } else if (ok && project_id > 0) {
      snprintf(line, sizeof line, "x-project-id: %.0f", project_id);
      ok = add_header(lists[i], line);
    }
  }
  if (ok) ok = add_header(&c->body_headers, "Content-Type: application/json");
  if (auth) {
    memset(auth, 0, size);
    free(auth);
  }
  return ok;
}

static int setup_easy(emp_client *c, const char *ca_file, const char *proxy) {
  CURL *e = c->easy;
  int ok = 1;
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
  SET(CURLOPT_NOSIGNAL, 1L);               /* threads and event loops: no SIGALRM */
  SET(CURLOPT_PROTOCOLS_STR, "https,http");
  SET(CURLOPT_FOLLOWLOCATION, 0L);         /* a redirect is an error: the token stays put */
  SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SET(CURLOPT_LOW_SPEED_LIMIT, c->low_speed_limit);
  SET(CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_ACCEPT_ENCODING, "");        /* whatever this libcurl can decompress */
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, c);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, c);
  SET(CURLOPT_ERRORBUFFER, c->errbuf);
  if (ca_file) SET(CURLOPT_CAINFO, ca_file);
  if (proxy) SET(CURLOPT_PROXY, proxy);
  if (c->verbose) {
    SET(CURLOPT_DEBUGFUNCTION, emp_debug_trace);
    SET(CURLOPT_VERBOSE, 1L);
  }
#undef SET
  return ok;
}

int emp_client_new(lua_State *L) {
  emp_client *c;
  const char *problem, *ca_file;
  int opts = 1;
  FILE *f;
  if (!emp_validate(L, &emp_client_options, opts, EMP_CONFIG, 1, "options", NULL)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_settop(L, 2);
  /* The userdata exists before anything it owns, so __gc frees whatever a
   * failure part-way leaves behind. */
  c = (emp_client *)emp_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, EMP_CLIENT_MT);
  lua_createtable(L, 0, 1);              /* the user value: {on_event = fn} */
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "on_event");
  emp_setuservalue(L, -2);
  c->low_speed_limit = (long)opt_number(L, opts, "low_speed_limit", EMP_DEFAULT_LOW_SPEED_LIMIT);
  c->low_speed_time_s = (long)ceil(opt_number(L, opts, "low_speed_time", EMP_DEFAULT_LOW_SPEED_TIME_S));
  c->verbose = opt_bool(L, opts, "verbose", 0);
  c->timeout_ms = (long)(opt_number(L, opts, "timeout", EMP_DEFAULT_TIMEOUT_S) * 1000);
  c->connect_timeout_ms = (long)(opt_number(L, opts, "connect_timeout", EMP_DEFAULT_CONNECT_TIMEOUT_S) * 1000);
  c->deadline_ms = (long)(opt_number(L, opts, "deadline", 0) * 1000);
  c->retries = (int)opt_number(L, opts, "retries", EMP_DEFAULT_RETRIES);
  c->max_retry_after_s = opt_number(L, opts, "max_retry_after", EMP_DEFAULT_MAX_RETRY_AFTER_S);
  c->max_response_bytes = (size_t)opt_number(L, opts, "max_response_bytes", EMP_DEFAULT_MAX_RESPONSE_BYTES);
  c->strict = opt_bool(L, opts, "strict", 1);
  c->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(size_t)c;
  if (c->retries > EMP_MAX_RETRIES) {
    client_release(c);
    return emp_fail(L, EMP_CONFIG, "retries", "at most %d, got %d", EMP_MAX_RETRIES, c->retries);
  }
  if ((problem = set_base_url(c, opt_string(L, opts, "base_url"), opt_bool(L, opts, "allow_plain_http", 0))) != NULL) {
    client_release(c);
    return emp_fail(L, EMP_CONFIG, "base_url", "%s", problem);
  }
  ca_file = opt_string(L, opts, "ca_file");
  if (ca_file != NULL) {
    if ((f = fopen(ca_file, "rb")) == NULL) {
      client_release(c);
      return emp_fail(L, EMP_CONFIG, "ca_file", "cannot read %s: %s", ca_file, strerror(errno));
    }
    fclose(f);
  }
  if (!build_headers(L, c, opts) || (c->multi = curl_multi_init()) == NULL ||
      /* calls are sequential: one kept connection is all a client needs */
      curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 1L) != CURLM_OK ||
      (c->easy = curl_easy_init()) == NULL || !setup_easy(c, ca_file, opt_string(L, opts, "proxy"))) {
    client_release(c);
    return emp_fail(L, EMP_CONFIG, NULL, "could not set up libcurl (out of memory, or a libcurl without https)");
  }
  return 1;
}

/* --- one transfer --------------------------------------------------------- */

/* Run the easy handle on the multi handle until it is done. */
static CURLcode transfer(emp_client *c) {
  int running = 1, queued;
  CURLMcode mc;
  CURLMsg *msg;
  CURLcode result = CURLE_FAILED_INIT;
  c->len = 0;
  c->header_bytes = 0;
  c->body_overflow = c->header_overflow = 0;
  c->errbuf[0] = '\0';
  if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK) return CURLE_FAILED_INIT;
  do {
    mc = curl_multi_perform(c->multi, &running);
    if (mc == CURLM_OK && running) mc = curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
  } while (mc == CURLM_OK && running);
  while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL)
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy) result = msg->data.result;
  curl_multi_remove_handle(c->multi, c->easy);
  return result;
}

/* A call that creates a run always gets a fresh connection: on a reused
 * connection that dies before answering, libcurl resends the request by
 * itself, and a resent PUT or POST could create a second run. */
static int set_request(emp_client *c, const emp_endpoint *ep, const char *url, const char *body, size_t body_len) {
  CURL *e = c->easy;
  int ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, ep->creates_run ? 1L : 0L) == CURLE_OK;
  if (body == NULL) {
    ok = ok && curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK;
  } else {
    ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, ep->method) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->body_headers) == CURLE_OK;
  }
  return ok;
}

/* Push a transport error for a failed transfer. */
static int transport_error(lua_State *L, emp_client *c, CURLcode code, emp_failure failure, int creates_run,
                           int deadline_hit) {
  const char *what = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
  emp_kind kind = deadline_hit ? EMP_TIMEOUT : EMP_TRANSPORT;
  int err;
  if (deadline_hit) what = "the call's deadline passed before the response was complete";
  if (c->body_overflow) {
    err = emp_error_push(L, EMP_DECODE, NULL, "the response is larger than max_response_bytes (%zu bytes)",
                         c->max_response_bytes);
  } else if (c->header_overflow) {
    err = emp_error_push(L, EMP_DECODE, NULL, "the response headers are larger than %d bytes", EMP_MAX_HEADER_BYTES);
  } else if (creates_run && failure == EMP_FAILURE_AMBIGUOUS) {
    err = emp_error_push(L, kind, NULL,
                         "%s; the request may have reached the server, so it was not retried: the run may have "
                         "been created. Look for it (client:get, or the dashboard) before triggering again",
                         what);
  } else {
    err = emp_error_push(L, kind, NULL, "%s", what);
  }
  emp_error_set_bool(L, err, "retryable", failure == EMP_FAILURE_NOT_SENT ||
                                          (failure == EMP_FAILURE_AMBIGUOUS && !creates_run));
  return err;
}

/* How long to wait before the next attempt, or -1 when the server asks for
 * longer than max_retry_after (then *why says so). */
static long retry_delay_ms(emp_client *c, int attempt, const char **why) {
  curl_off_t after = 0;
  curl_easy_getinfo(c->easy, CURLINFO_RETRY_AFTER, &after);
  if (after > 0) {
    if ((double)after > c->max_retry_after_s) {
      *why = "the server asked to retry later than max_retry_after allows";
      return -1;
    }
    return (long)after * 1000;
  }
  return emp_retry_backoff_ms(attempt, &c->seed);
}

/* Keep a small response buffer for the next call; give a large one back. */
static void trim_buffer(emp_client *c) {
  if (c->cap > EMP_KEEP_BUFFER_BYTES) {
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
  }
}

static long elapsed_ms(double since) {
  return (long)((emp_monotonic() - since) * 1000);
}

/* client:call(op, params [, limit]): validate, send with the retry policy,
 * decode. limit (seconds) tightens the client's deadline for this one call:
 * client:wait passes what is left of its own. */
static int client_call(lua_State *L) {
  emp_client *c = check_client(L);
  const emp_endpoint *ep = emp_endpoint_find(luaL_checkstring(L, 2));
  const char *path, *body, *why = NULL;
  size_t body_len = 0;
  int attempt, req, on_event, err = 0, capped = 0, deadline_hit;
  emp_attempt ev;
  long limit_ms = c->deadline_ms;
  double started = emp_monotonic();
  CURLcode code = CURLE_OK;
  long status = 0;
  emp_failure failure = EMP_FAILURE_PERMANENT;
  if (ep == NULL) return luaL_argerror(L, 2, "unknown operation");
  if (!lua_isnoneornil(L, 4)) {
    long limit = (long)(luaL_checknumber(L, 4) * 1000);
    if (limit < 1) limit = 1;
    if (limit_ms == 0 || limit < limit_ms) limit_ms = limit;
  }
  if (c->closed) return emp_fail(L, EMP_CONFIG, NULL, "the client is closed");
  lua_settop(L, 3);
  emp_getuservalue(L, 1);
  lua_getfield(L, -1, "on_event");
  on_event = lua_gettop(L);
  if (emp_encode(L, ep, 3, c->strict) == 2) return 2;
  req = lua_gettop(L);
  lua_getfield(L, req, "path");
  path = lua_tostring(L, -1);
  lua_getfield(L, req, "body");
  body = lua_tolstring(L, -1, &body_len);   /* anchored in req for the whole call */
  lua_pushfstring(L, "%s%s", c->base_url, path);
  if (!set_request(c, ep, lua_tostring(L, -1), body, body_len))
    return emp_fail(L, EMP_CONFIG, NULL, "libcurl refused the request options");

  ev.method = ep->method;
  ev.path = path;
  for (attempt = 1;; attempt++) {
    long delay, attempt_ms = c->timeout_ms;
    if (limit_ms > 0 && limit_ms - elapsed_ms(started) < attempt_ms) {
      attempt_ms = limit_ms - elapsed_ms(started);
      if (attempt_ms < 1) attempt_ms = 1;
      capped = 1;
    }
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, attempt_ms);
    code = transfer(c);
    if (code == CURLE_OK) {
      curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
      if (!emp_retry_status_is_retryable(status, ep->creates_run) || attempt > c->retries) break;
    } else {
      curl_off_t pretransfer = 0;
      curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
      failure = emp_retry_classify(code, pretransfer > 0);
      if (code == CURLE_OPERATION_TIMEDOUT && capped) break;   /* likely the deadline: no time for more */
      if (failure == EMP_FAILURE_PERMANENT || (failure == EMP_FAILURE_AMBIGUOUS && ep->creates_run) ||
          attempt > c->retries)
        break;
    }
    if ((delay = retry_delay_ms(c, attempt, &why)) < 0) break;
    if (limit_ms > 0 && elapsed_ms(started) + delay >= limit_ms) {
      why = "the call's deadline leaves no time for another attempt";
      break;
    }
    ev.attempt = attempt;
    ev.elapsed_ms = elapsed_ms(started);
    ev.status = code == CURLE_OK ? status : 0;
    ev.kind = code == CURLE_OK ? "http" : "transport";
    ev.retry_in_ms = delay;
    emp_event_emit(L, on_event, &ev, &c->event_error_reported);
    emp_sleep_ms(delay);
  }
  deadline_hit = capped && code == CURLE_OPERATION_TIMEDOUT && elapsed_ms(started) >= limit_ms - 10;

  ev.attempt = attempt;
  ev.status = code == CURLE_OK ? status : 0;
  ev.retry_in_ms = -1;
  if (code != CURLE_OK) {
    err = transport_error(L, c, code, failure, ep->creates_run, deadline_hit);
  } else {
    emp_response res;
    char *location = NULL, *content_type = NULL;
    curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &content_type);
    curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &location);
    res.status = status;
    res.body = c->buf ? c->buf : "";
    res.len = c->len;
    res.content_type = content_type;
    res.location = location;
    if (emp_decode(L, ep, &res)) {
      trim_buffer(c);
      ev.elapsed_ms = elapsed_ms(started);
      ev.kind = NULL;
      emp_event_emit(L, on_event, &ev, &c->event_error_reported);
      return 1;
    }
    err = lua_gettop(L);
  }
  ev.elapsed_ms = elapsed_ms(started);
  lua_getfield(L, err, "kind");
  ev.kind = lua_tostring(L, -1);   /* anchored by the error object */
  emp_event_emit(L, on_event, &ev, &c->event_error_reported);
  lua_pop(L, 1);
  trim_buffer(c);
  lua_pushfstring(L, "%s %s", ep->method, path);
  lua_setfield(L, err, "request");
  emp_error_set_int(L, err, "attempts", attempt);
  if (why != NULL) {
    lua_getfield(L, err, "message");
    lua_pushfstring(L, "%s (not retried: %s)", lua_tostring(L, -1), why);
    lua_setfield(L, err, "message");
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_pushvalue(L, err);
  return 2;
}

void emp_transport_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "call", client_call },
    { "close", client_close },
    { NULL, NULL }
  };
  if (luaL_newmetatable(L, EMP_CLIENT_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__close");
#endif
    lua_pushcfunction(L, client_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
