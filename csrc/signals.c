/* Waiting and the signals that end a wait; see signals.h. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "signals.h"

static volatile sig_atomic_t pending;   /* written only by the handler and by take() */

static const int CAUGHT[] = { SIGINT, SIGTERM };
#define N_CAUGHT (sizeof CAUGHT / sizeof *CAUGHT)
static struct sigaction previous[N_CAUGHT];
static int catching;

static void note(int signo) {
  pending = signo;
}

static const char *signal_name(int signo) {
  return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal";
}

int emp_signal_pending(void) {
  return (int)pending;
}

int emp_signal_error(lua_State *L) {
  int signo = (int)pending, err;
  pending = 0;
  err = emp_error_push(L, EMP_INTERRUPTED, NULL, "interrupted by %s", signal_name(signo));
  lua_pushstring(L, signal_name(signo));
  lua_setfield(L, err, "signal");
  return err;
}

int emp_signal_fail(lua_State *L) {
  lua_pushnil(L);
  emp_signal_error(L);
  return 2;
}

int emp_catch_signals(lua_State *L) {
  struct sigaction action;
  size_t i;
  if (!catching) {
    memset(&action, 0, sizeof action);
    action.sa_handler = note;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;   /* other code's reads go on; our waits look every slice */
    for (i = 0; i < N_CAUGHT; i++) sigaction(CAUGHT[i], &action, &previous[i]);
    catching = 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int emp_release_signals(lua_State *L) {
  size_t i;
  if (catching) {
    for (i = 0; i < N_CAUGHT; i++) sigaction(CAUGHT[i], &previous[i], NULL);
    catching = 0;
    pending = 0;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int emp_pending_signal(lua_State *L) {
  if (pending == 0) lua_pushnil(L);
  else lua_pushstring(L, signal_name((int)pending));
  return 1;
}

double emp_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int emp_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)emp_monotonic());
  return 1;
}

/* core.sleep(seconds) -> true | nil, err: in slices, so that a caught
 * signal ends it within one. */
int emp_sleep(lua_State *L) {
  lua_Number s;
  double until;
  if (lua_type(L, 1) != LUA_TNUMBER)
    return emp_fail(L, EMP_INVALID, "seconds", "expected a number, got %s", luaL_typename(L, 1));
  s = lua_tonumber(L, 1);
  until = emp_monotonic() + (s > 0 ? (double)s : 0);
  for (;;) {
    double left = until - emp_monotonic();
    struct timespec ts;
    if (pending) return emp_signal_fail(L);
    if (!(left > 0)) break;   /* also NaN */
    if (left > EMP_SIGNAL_SLICE_MS / 1000.0) left = EMP_SIGNAL_SLICE_MS / 1000.0;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(left * 1e9);
    nanosleep(&ts, NULL);   /* EINTR: look again */
  }
  lua_pushboolean(L, 1);
  return 1;
}
