/* Waiting, and the signals that end a wait: the monotonic clock, sleep,
 * and SIGINT/SIGTERM caught on request. Catching is opt-in (loading the
 * module changes no signal handling, so Neovim and nginx are untouched).
 * Once caught, a signal is only noted; every blocking wait of the module
 * looks at the note at least every EMP_SIGNAL_SLICE_MS and ends with kind
 * "interrupted", consuming it. */
#ifndef EMP_SIGNALS_H
#define EMP_SIGNALS_H

#include "compat.h"

/* Waits sleep at most this long between looks at the note: a signal ends
 * them within about this. */
#define EMP_SIGNAL_SLICE_MS 100

/* The signal caught and not yet reported (SIGINT, SIGTERM), or 0. */
int emp_signal_pending(void);

/* Consume the pending signal and push nil and an error of kind
 * "interrupted" naming it: `return emp_signal_fail(L)`. */
int emp_signal_fail(lua_State *L);

/* Consume the pending signal and push the error object alone; returns its index. */
int emp_signal_error(lua_State *L);

/* core.catch_signals(), core.release_signals(), core.pending_signal(). */
int emp_catch_signals(lua_State *L);
int emp_release_signals(lua_State *L);
int emp_pending_signal(lua_State *L);

/* Time, for the Lua layer too: core.sleep(seconds) -> true | nil, err and
 * core.now(), monotonic seconds. */
int emp_sleep(lua_State *L);
int emp_now(lua_State *L);
double emp_monotonic(void);

#endif
