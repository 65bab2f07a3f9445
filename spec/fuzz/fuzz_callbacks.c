/* libFuzzer: the client's callbacks doing ordinary things. The input drives
 * a program (spec/fuzz/callbacks.lua) that makes clients of the Lua layer
 * (require("empirical")), starts, polls, waits on and aborts calls of every
 * operation, closes clients, and whose callbacks (on_event, and wait's
 * on_poll, on_poll_error and sleep) do the same, raise, yield and collect
 * garbage. Its oracle: no crash, no sanitizer report, every public call
 * returns a result or nil, err (no Lua error escapes one, but those a
 * callback raises into its own pcall, such as "busy"), and every success
 * on_event reported is a result some call returned: a request refused as
 * busy, or whose client a callback closed, never loses its result.
 *
 * The server is in this process: a thread answers on a loopback port, one
 * connection at a time, each with the next answer of the input's script
 * (byte 0's low four bits say how many of the bytes after it are script):
 * a valid answer for the route (trigger, rerun, get in some state, cancel,
 * list, a Playwright report for a run's summary_url), a 201, 503, 429, 500,
 * 412, truncated JSON, a dropped connection, or a redirect. A second client
 * points at a port nothing listens on: connection refused, at once. The
 * clients' deadline is short, so a retry's backoff is cut; nothing sleeps.
 *
 * Lua line coverage (fuzz_common.h) guides the fuzzer through the Lua
 * layer and the program as well as the core's C. Run from the repository
 * root, as `make fuzz` does (lua/ and spec/fuzz/ are read from there). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define FUZZ_LUA_COVERAGE
#include "fuzz_common.h"

static lua_State *L;
static int port, dead_port;

/* --- the server -------------------------------------------------------------- */

#define SCRIPT_MAX 16
static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t script[SCRIPT_MAX];
static size_t script_len, served;

static int next_answer(void) {
  int a;
  pthread_mutex_lock(&script_lock);
  a = script_len ? script[served % script_len] : 0;
  served++;
  pthread_mutex_unlock(&script_lock);
  return a;
}

static void send_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static void respond(int fd, int status, const char *extra, const char *body) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s\r\n", status, strlen(body), extra);
  send_all(fd, head, (size_t)n);
  send_all(fd, body, strlen(body));
}

static const char *const STATES[] = { "ended", "queued", "cancelled", "started" };

/* The valid answer for the request line's route, in buf (state: for a get). */
static const char *route_body(const char *method, const char *path, const char *state, char *buf, size_t size) {
  long id = 0;
  const char *digits = strstr(path, "/test-runs/");
  if (digits) id = strtol(digits + 11, NULL, 10);
  if (strncmp(path, "/report/", 8) == 0)
    return "{\"suites\":[{\"title\":\"a.spec.ts\",\"specs\":[{\"title\":\"t\",\"file\":\"a.spec.ts\",\"line\":3,"
           "\"column\":5,\"tests\":[{\"projectName\":\"p\",\"status\":\"unexpected\",\"results\":"
           "[{\"status\":\"failed\",\"error\":{\"message\":\"\\u001b[31mboom\\u001b[0m\\nat x\"}}]}]}]}],"
           "\"stats\":{\"expected\":0,\"unexpected\":1,\"flaky\":0,\"skipped\":0}}";
  if (strcmp(method, "GET") == 0 && strncmp(path, "/api/test-runs?", 15) == 0)
    return "{\"data\":{\"project\":{\"id\":1,\"name\":\"p\"},\"test_runs\":{\"items\":[{\"id\":11,\"state\":\"ended\"},"
           "{\"id\":12,\"duration\":1.5}]}},\"pagination\":{\"page\":1,\"per_page\":2,\"total\":2,\"total_pages\":1}}";
  if (strstr(path, "/cancel") != NULL) return "{\"message\":\"Test run cancelled\"}";
  if (strcmp(method, "GET") == 0) {
    snprintf(buf, size, "{\"data\":{\"test_run\":{\"project\":{\"id\":1},\"testRun\":{\"id\":%ld,\"state\":\"%s\","
             "\"summary_url\":\"http://127.0.0.1:%d/report/%ld.json\"},\"flattenedSummaryDetails\":[]}}}",
             id, state, port, id);
    return buf;
  }
  snprintf(buf, size, "{\"data\":{\"trigger\":{\"success\":true},\"test_run\":{\"id\":%ld,\"state\":\"queued\","
           "\"test_run_branch\":\"main\",\"created_at\":\"2026-01-01T00:00:00Z\"}}}", id ? id : 42);
  return buf;
}

/* Read one request (headers, and a body of Content-Length) and answer it. */
static void serve(int fd) {
  char req[8192], method[16] = "", path[1024] = "", body[1024], extra[160];
  size_t len = 0;
  const char *end = NULL, *cl;
  long want;
  int a;
  while (end == NULL && len < sizeof req - 1) {
    ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
    if (n <= 0) return;
    len += (size_t)n;
    req[len] = '\0';
    end = strstr(req, "\r\n\r\n");
  }
  if (end == NULL || sscanf(req, "%15s %1023s", method, path) != 2) return;
  cl = strstr(req, "Content-Length: ");
  want = cl ? strtol(cl + 16, NULL, 10) : 0;
  while ((long)(len - (size_t)(end + 4 - req)) < want && len < sizeof req - 1) {
    ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
    if (n <= 0) return;
    len += (size_t)n;
  }
  a = next_answer();
  switch (a % 12) {
    case 0: case 1: case 2: case 3:
      respond(fd, 200, "", route_body(method, path, STATES[a % 4], body, sizeof body));
      break;
    case 4: respond(fd, 201, "", route_body(method, path, "ended", body, sizeof body)); break;
    case 5: respond(fd, 503, "", "{\"data\":null,\"error\":{\"message\":\"busy\"}}"); break;
    case 6: respond(fd, 429, "", "{\"error\":{\"message\":\"slow down\"}}"); break;
    case 7: respond(fd, 500, "", "{\"error\":{\"message\":\"oops\"}}"); break;
    case 8: respond(fd, 412, "", "{\"data\":null,\"error\":{\"message\":\"Test run has already ended\"}}"); break;
    case 9: respond(fd, 200, "", "{\"data\":{\"test_run\":"); break;
    case 10: break;   /* dropped: closed without an answer */
    default:
      snprintf(extra, sizeof extra, "Location: http://127.0.0.1:%d/report/%d.json\r\n", port, a);
      respond(fd, 302, extra, "");
  }
}

static void *server(void *arg) {
  int listener = (int)(intptr_t)arg;
  for (;;) {
    struct timeval tv = { 2, 0 };
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      abort();
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    serve(fd);
    close(fd);
  }
  return NULL;
}

/* A loopback socket on a free port: listening, or closed again (refused). */
static int loopback_socket(int listening, int *port_out) {
  struct sockaddr_in a;
  socklen_t n = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &n) != 0 ||
      (listening && listen(fd, 64) != 0))
    abort();
  *port_out = ntohs(a.sin_port);
  if (!listening) close(fd);
  return fd;
}

/* --- the harness ----------------------------------------------------------------- */

static const char *const SETUP_CODE =
  "package.path = './lua/?.lua;./lua/?/init.lua;./spec/?.lua;' .. package.path\n"
  "return (require('fuzz.callbacks'))\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  pthread_t thread;
  int listener = loopback_socket(1, &port);
  (void)argc;
  (void)argv;
  loopback_socket(0, &dead_port);
  if (pthread_create(&thread, NULL, server, (void *)(intptr_t)listener) != 0) abort();
  pthread_detach(thread);
  L = fuzz_state();
  if (luaL_dostring(L, SETUP_CODE) != LUA_OK) {
    fprintf(stderr, "fuzz_callbacks: %s (run from the repository root)\n", lua_tostring(L, -1));
    abort();
  }
  lua_setglobal(L, "run");
  fuzz_lua_coverage(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n;
  if (size < 1) return 0;
  n = data[0] & 15;
  if (n > size - 1) n = size - 1;
  pthread_mutex_lock(&script_lock);
  memcpy(script, data + 1, n);
  script_len = n;
  served = 0;
  pthread_mutex_unlock(&script_lock);
  fuzz_lua_coverage_reset();
  lua_getglobal(L, "run");
  lua_pushlstring(L, (const char *)data + 1 + n, size - 1 - n);
  lua_pushinteger(L, port);
  lua_pushinteger(L, dead_port);
  fuzz_call(L, 3, 1);
  if (getenv("FUZZ_CALLBACKS_STATS") != NULL) {   /* what an input reached, to check the seeds */
    lua_getfield(L, -1, "results");
    lua_getfield(L, -2, "successes");
    lua_getfield(L, -3, "busy");
    fprintf(stderr, "fuzz_callbacks: %d results, %d success events, %d busy refusals, %zu connections\n",
            (int)lua_tointeger(L, -3), (int)lua_tointeger(L, -2), (int)lua_tointeger(L, -1), served);
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);   /* every input: the clients and requests it dropped are collected here */
  return 0;
}
