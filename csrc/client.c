/* The client: options, headers, base URL, easy handles and the multi handle
 * its requests run on. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "events.h"
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
#define EMP_MAX_RETRIES                10
/* Connections kept for reuse: enough for a fan-out of requests. */
#define EMP_MAX_CONNECTIONS            16L

/* --- lifetime ------------------------------------------------------------- */

static void free_headers(struct curl_slist **list) {
  struct curl_slist *h;
  for (h = *list; h != NULL; h = h->next) memset(h->data, 0, strlen(h->data)); /* the token */
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
  free_headers(&c->body_headers);
  free(c->base_url);
  free(c->ca_file);
  free(c->proxy);
  c->base_url = c->ca_file = c->proxy = NULL;
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
         add_header(lists[i], "Expect:") &&  /* no 100-continue round trip */
         (i == 1 || add_header(lists[i], "Content-Type:"));  /* a body-less POST is no form */
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

static char *copy_string(const char *s) {
  char *copy;
  if (s == NULL) return NULL;
  if ((copy = (char *)malloc(strlen(s) + 1)) != NULL) strcpy(copy, s);
  return copy;
}

/* --- easy handles ----------------------------------------------------------- */

/* A new easy handle with the options every request shares. */
static CURL *new_easy(emp_client *c) {
  CURL *e = curl_easy_init();
  int ok = e != NULL;
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
  if (c->ca_file) SET(CURLOPT_CAINFO, c->ca_file);
  if (c->proxy) SET(CURLOPT_PROXY, c->proxy);
  if (c->verbose) {
    SET(CURLOPT_DEBUGFUNCTION, emp_debug_trace);
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

/* --- the multi handle ------------------------------------------------------- */

void emp_client_drive(emp_client *c) {
  int running, queued;
  CURLMsg *msg;
  if (c->multi == NULL) return;
  curl_multi_perform(c->multi, &running);
  while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
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

/* client:wait_io([seconds]): block until a transfer has something to do or
 * the time is up (default 1 s), for loops that poll many requests. */
static int client_wait_io(lua_State *L) {
  emp_client *c = emp_check_client(L, 1);
  double s = luaL_optnumber(L, 2, 1.0);
  if (c->multi != NULL && s > 0) curl_multi_poll(c->multi, NULL, 0, (int)(s * 1000 + 0.5), NULL);
  return 0;
}

/* --- creation ----------------------------------------------------------------- */

/* core.client(options [, on_event]): the options are validated against the
 * schema first; on_event, a function, is the Lua layer's to check. */
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
  c->timeout_ms = (long)(opt_number(L, opts, "timeout", EMP_DEFAULT_TIMEOUT_S) * 1000);
  c->connect_timeout_ms = (long)(opt_number(L, opts, "connect_timeout", EMP_DEFAULT_CONNECT_TIMEOUT_S) * 1000);
  c->deadline_ms = (long)(opt_number(L, opts, "deadline", 0) * 1000);
  c->low_speed_limit = (long)opt_number(L, opts, "low_speed_limit", EMP_DEFAULT_LOW_SPEED_LIMIT);
  c->low_speed_time_s = (long)ceil(opt_number(L, opts, "low_speed_time", EMP_DEFAULT_LOW_SPEED_TIME_S));
  c->verbose = opt_bool(L, opts, "verbose", 0);
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
  c->ca_file = copy_string(ca_file);
  c->proxy = copy_string(opt_string(L, opts, "proxy"));
  if ((ca_file != NULL && c->ca_file == NULL) || (opt_string(L, opts, "proxy") != NULL && c->proxy == NULL) ||
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
