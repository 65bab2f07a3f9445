/* The client: options, headers, base URL, easy handles and the multi handle
 * its requests run on. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "events.h"
#include "schema.h"
#include "signals.h"
#include "transport.h"
#include "validate.h"

/* Named defaults, as the README lists them. */
#define EMP_DEFAULT_TIMEOUT_S          30.0
#define EMP_DEFAULT_CONNECT_TIMEOUT_S  10.0
/* Slower than this for that long and an attempt is abandoned: a server that
 * stalls or trickles is given up on at half the default timeout, while a
 * real answer (a few KiB) is never near it. */
#define EMP_DEFAULT_LOW_SPEED_LIMIT    128    /* bytes per second... */
/* ...for half the timeout (libcurl counts the wait for the first byte too,
 * so a longer timeout asked for a slow server must stretch this with it). */
#define EMP_DEFAULT_RETRIES            3
#define EMP_DEFAULT_MAX_RETRY_AFTER_S  60.0
#define EMP_DEFAULT_MAX_RESPONSE_BYTES (64.0 * 1024 * 1024)
/* Connections kept for reuse: enough for a fan-out of requests. */
#define EMP_MAX_CONNECTIONS            16L

/* --- lifetime ------------------------------------------------------------- */

static void wipe(char *s) {
  if (s != NULL) memset(s, 0, strlen(s));
}

static void free_headers(struct curl_slist **list) {
  struct curl_slist *h;
  for (h = *list; h != NULL; h = h->next) wipe(h->data); /* the token */
  curl_slist_free_all(*list);
  *list = NULL;
}

/* Free what the client owns; its requests are detached first, since their
 * easy handles live on its multi handle. Safe to call twice. */
static void client_release(emp_client *c) {
  emp_request *r = c->requests;
  while (r != NULL) {
    emp_request *next = emp_request_next(r);
    emp_request_detach(r);
    r = next;
  }
  c->requests = NULL;
  if (c->spare) curl_easy_cleanup(c->spare);
  if (c->multi) curl_multi_cleanup(c->multi);
  c->spare = NULL;
  c->multi = NULL;
  free_headers(&c->headers);
  free_headers(&c->post_headers);
  free_headers(&c->body_headers);
  free_headers(&c->anonymous_headers);
  emp_url_free(&c->base);
  wipe(c->token);
  free(c->token);
  free(c->ca_file);
  free(c->proxy);
  c->token = c->ca_file = c->proxy = NULL;
  c->closed = 1;
}

emp_client *emp_check_client(lua_State *L, int idx) {
  return (emp_client *)luaL_checkudata(L, idx, EMP_CLIENT_MT);
}

static int client_close(lua_State *L) {
  client_release(emp_check_client(L, 1));
  return 0;
}

static int client_tostring(lua_State *L) {
  emp_client *c = emp_check_client(L, 1);
  if (c->closed) lua_pushliteral(L, "empirical.client (closed)");
  else lua_pushfstring(L, "empirical.client (%s)", c->base.url);
  return 1;
}

/* --- options -------------------------------------------------------------- */

/* Options are validated first (schema.c: types and ranges); these read the
 * user's table raw. A string stays valid while the options table is on the
 * stack: the whole of emp_client_new, which copies what it keeps. */
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

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *grown = curl_slist_append(*list, line);
  if (grown == NULL) return 0;
  *list = grown;
  return 1;
}

/* The header lists, one per kind of request. Lines are built as Lua
 * strings (any length; values are capped by the schema) except the
 * Authorization line, built in a scratch buffer that is wiped before it is
 * freed. Each list holds only what its requests need: libcurl compares every
 * custom header against the ones it writes itself, on every request. */
enum { AUTH = 1, PROJECT = 2, JSON_BODY = 4, NO_FORM = 8 };
static int build_headers(lua_State *L, emp_client *c, int opts) {
  const char *token = opt_string(L, opts, "token");
  const char *suffix = opt_string(L, opts, "user_agent");
  const char *slug = opt_string(L, opts, "project_slug");
  double project_id = opt_number(L, opts, "project_id", 0);
  size_t size = strlen(token) + 32;
  char *auth = (char *)malloc(size);
  int ok = auth != NULL, top = lua_gettop(L), has_project, i;
  const struct { struct curl_slist **list; unsigned parts; } kinds[] = {
    { &c->headers, AUTH | PROJECT },                       /* to the API: GET */
    { &c->post_headers, AUTH | PROJECT | NO_FORM },        /* to the API: a POST with no body */
    { &c->body_headers, AUTH | PROJECT | JSON_BODY },      /* to the API: a JSON body */
    { &c->anonymous_headers, 0 },                          /* to another origin: a report's URL */
  };
  if (suffix) lua_pushfstring(L, "User-Agent: empirical-lua/%s %s", EMP_VERSION, suffix);
  else lua_pushliteral(L, "User-Agent: empirical-lua/" EMP_VERSION);
  if (slug) {
    lua_pushfstring(L, "x-project-slug: %s", slug);
  } else if (project_id > 0) {   /* validated: a whole number from 1 to 2^53 */
    char digits[24], *end = digits + sizeof digits - 1;
    *end = '\0';
    lua_pushfstring(L, "x-project-id: %s", emp_digits_before(end, (unsigned long long)project_id));
  }
  has_project = lua_gettop(L) == top + 2;
  if (ok) snprintf(auth, size, "Authorization: Bearer %s", token);
  for (i = 0; ok && i < (int)(sizeof kinds / sizeof *kinds); i++) {
    struct curl_slist **list = kinds[i].list;
    unsigned parts = kinds[i].parts;
    ok = (!(parts & AUTH) || add_header(list, auth)) && add_header(list, "Accept: application/json") &&
         add_header(list, lua_tostring(L, top + 1)) &&
         (!(parts & PROJECT) || !has_project || add_header(list, lua_tostring(L, top + 2))) &&
         (!(parts & NO_FORM) || add_header(list, "Content-Type:")) &&   /* else libcurl says it is a form */
         (!(parts & JSON_BODY) || (add_header(list, "Content-Type: application/json") &&
                                   add_header(list, "Expect:")));        /* no 100-continue round trip */
  }
  lua_settop(L, top);
  if (auth) {
    wipe(auth);
    free(auth);
  }
  return ok;
}

static char *copy_string(const char *s) {
  char *copy;
  if (s == NULL) return NULL;
  if ((copy = (char *)malloc(strlen(s) + 1)) != NULL) strcpy(copy, s);
  return copy;
}

/* Seconds (validated: within a 32-bit long of milliseconds) to milliseconds. */
static long to_ms(double seconds) {
  return (long)(seconds * 1000 + 0.5);
}

/* --- easy handles ----------------------------------------------------------- */

/* A new easy handle with the options every request shares. */
static CURL *new_easy(emp_client *c) {
  CURL *e = curl_easy_init();
  int ok = e != NULL;
#define SET(opt, val) ok = ok && curl_easy_setopt(e, opt, val) == CURLE_OK
  SET(CURLOPT_NOSIGNAL, 1L);               /* threads and event loops: no SIGALRM */
  SET(CURLOPT_PROTOCOLS_STR, "https,http");
  SET(CURLOPT_FOLLOWLOCATION, 0L);         /* a redirect is ours to judge: the token stays put */
  SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SET(CURLOPT_LOW_SPEED_LIMIT, c->low_speed_limit);
  SET(CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_ACCEPT_ENCODING, "gzip");   /* what the API may compress with; "" would add brotli and zstd setup to every get */
  if (c->ca_file) SET(CURLOPT_CAINFO, c->ca_file);
  if (c->verbose) {
    SET(CURLOPT_DEBUGFUNCTION, emp_debug_trace);
    SET(CURLOPT_DEBUGDATA, c->token);      /* the trace hides it wherever it shows */
    SET(CURLOPT_VERBOSE, 1L);
  }
#undef SET
  if (!ok && e != NULL) {
    curl_easy_cleanup(e);
    e = NULL;
  }
  return e;
}

CURL *emp_client_take_easy(emp_client *c) {
  CURL *e = c->spare;
  c->spare = NULL;
  return e != NULL ? e : new_easy(c);
}

void emp_client_give_easy(emp_client *c, CURL *easy) {
  if (c->spare == NULL && !c->closed) c->spare = easy;
  else curl_easy_cleanup(easy);
}

int emp_client_route(emp_client *c, CURL *easy, int loopback) {
  /* A loopback call never goes through a proxy: not the option's, and not
   * one from http_proxy, which would otherwise see a plain-http token. */
  const char *proxy = loopback ? "" : c->proxy;
  return curl_easy_setopt(easy, CURLOPT_PROXY, proxy) == CURLE_OK;
}

/* --- the multi handle ------------------------------------------------------- */

void emp_client_drive(emp_client *c) {
  int running, queued;
  CURLMsg *msg;
  if (c->multi == NULL) return;
  curl_multi_perform(c->multi, &running);
  while (c->multi != NULL && (msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      CURL *easy = msg->easy_handle;
      CURLcode code = msg->data.result;  /* msg is gone once the handle is removed */
      char *owner = NULL;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
      curl_multi_remove_handle(c->multi, easy);
      if (owner != NULL) emp_request_done_transfer((emp_request *)owner, code);
    }
  }
}

/* client:wait_io([seconds]) -> true | nil, err: block until a transfer has
 * something to do or the time is up (default 1 s), for loops that poll many
 * requests. A caught signal ends it early with kind "interrupted". */
static int client_wait_io(lua_State *L) {
  emp_client *c = emp_check_client(L, 1);
  double s = luaL_optnumber(L, 2, 1.0);
  long ms = s > 0 && s < 86400 ? to_ms(s) : (s > 0 ? 86400000L : 0);
  while (ms > 0 && c->multi != NULL && !emp_signal_pending()) {
    long slice = ms < EMP_SIGNAL_SLICE_MS ? ms : EMP_SIGNAL_SLICE_MS;
    int ready = 0;
    curl_multi_poll(c->multi, NULL, 0, (int)slice, &ready);
    if (ready > 0) break;
    ms -= slice;
  }
  if (emp_signal_pending()) return emp_signal_fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* --- creation ----------------------------------------------------------------- */

/* core.client(options [, on_event]): the options are validated against the
 * schema first; on_event, a function, is the Lua layer's to check. */
int emp_client_new(lua_State *L) {
  emp_client *c;
  const char *problem, *ca_file, *token;
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
  c->timeout_ms = to_ms(opt_number(L, opts, "timeout", EMP_DEFAULT_TIMEOUT_S));
  c->connect_timeout_ms = to_ms(opt_number(L, opts, "connect_timeout", EMP_DEFAULT_CONNECT_TIMEOUT_S));
  c->deadline_ms = to_ms(opt_number(L, opts, "deadline", 0));
  c->low_speed_limit = (long)opt_number(L, opts, "low_speed_limit", EMP_DEFAULT_LOW_SPEED_LIMIT);
  c->low_speed_time_s = (long)ceil(opt_number(L, opts, "low_speed_time", fmax(1.0, c->timeout_ms / 2000.0)));
  c->verbose = opt_bool(L, opts, "verbose", 0);
  c->retries = (int)opt_number(L, opts, "retries", EMP_DEFAULT_RETRIES);
  c->max_retry_after_s = opt_number(L, opts, "max_retry_after", EMP_DEFAULT_MAX_RETRY_AFTER_S);
  c->max_response_bytes = (size_t)fmin(opt_number(L, opts, "max_response_bytes", EMP_DEFAULT_MAX_RESPONSE_BYTES),
                                       (double)(SIZE_MAX / 2));
  c->strict = opt_bool(L, opts, "strict", 1);
  c->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(size_t)c;
  c->allow_plain_http = opt_bool(L, opts, "allow_plain_http", 0);
  problem = emp_url_parse(&c->base, opt_string(L, opts, "base_url"), c->allow_plain_http ? EMP_URL_PLAIN_HTTP : 0);
  if (problem != NULL) {
    const char *reason = emp_url_reason(problem);
    client_release(c);
    emp_fail(L, EMP_CONFIG, "base_url", "%s", problem);
    if (reason != NULL) emp_error_set_str(L, lua_gettop(L), "reason", reason, strlen(reason));
    return 2;
  }
  ca_file = opt_string(L, opts, "ca_file");
  if (ca_file != NULL) {
    if ((f = fopen(ca_file, "rb")) == NULL) {
      client_release(c);
      return emp_fail(L, EMP_CONFIG, "ca_file", "cannot read %s: %s", ca_file, strerror(errno));
    }
    fclose(f);
  }
  token = opt_string(L, opts, "token");
  c->token = copy_string(token);
  c->ca_file = copy_string(ca_file);
  c->proxy = copy_string(opt_string(L, opts, "proxy"));
  if (c->token == NULL || (ca_file != NULL && c->ca_file == NULL) ||
      (opt_string(L, opts, "proxy") != NULL && c->proxy == NULL) ||
      !build_headers(L, c, opts) || (c->multi = curl_multi_init()) == NULL ||
      curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, EMP_MAX_CONNECTIONS) != CURLM_OK ||
      (c->spare = new_easy(c)) == NULL) {
    client_release(c);
    return emp_fail(L, EMP_CONFIG, NULL, "could not set up libcurl (out of memory, or a libcurl without https)");
  }
  return 1;
}

void emp_client_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "call", emp_request_call },
    { "start", emp_request_start },
    { "wait_io", client_wait_io },
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
