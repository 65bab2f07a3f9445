/* Shared by the libFuzzer harnesses: a Lua state with empirical.core loaded
 * the way `require` loads it, and a pcall that turns any raised error into a
 * crash. The public functions promise `nil, err` for every input, so a Lua
 * error out of them is a bug the fuzzer must report. */
#ifndef EMP_FUZZ_COMMON_H
#define EMP_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

int luaopen_empirical_core(lua_State *L);

static lua_State *fuzz_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "empirical.core", luaopen_empirical_core, 0);
  lua_setglobal(L, "core");
  return L;
}

/* Call the function below its nargs arguments; abort on a raised error. */
static void fuzz_call(lua_State *L, int nargs, int nresults) {
  if (lua_pcall(L, nargs, nresults, 0) != LUA_OK) {
    fprintf(stderr, "raised: %s\n", lua_tostring(L, -1));
    abort();
  }
}

/* Collect garbage now and then, so __gc paths run under the sanitizers too. */
static void fuzz_gc(lua_State *L) {
  static unsigned n;
  if (++n % 256 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
}

#ifdef FUZZ_LUA_COVERAGE
/* Lua coverage for libFuzzer, for harnesses whose code under test is Lua
 * (the interpreter and cjson are Debian's builds, which libFuzzer's
 * instrumentation does not see): a line hook bumps one of libFuzzer's extra
 * counters per pair of consecutive lines run, so inputs that reach new
 * branches of the Lua code are kept and mutated further. */
#include <stdint.h>

#define FUZZ_LUA_EDGES 8192
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fuzz_lua_edges[FUZZ_LUA_EDGES];
static uintptr_t fuzz_lua_previous;

static void fuzz_line_hook(lua_State *l, lua_Debug *ar) {
  uintptr_t here;
  uint8_t *c;
  if (!lua_getinfo(l, "S", ar)) return;
  /* the chunk's name is one interned string per file: its address names the file */
  here = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
  c = &fuzz_lua_edges[(here ^ (fuzz_lua_previous >> 1)) % FUZZ_LUA_EDGES];
  if (*c < 255) (*c)++;
  fuzz_lua_previous = here;
}

/* Hook L's line events. */
static void fuzz_lua_coverage(lua_State *L) {
  lua_sethook(L, fuzz_line_hook, LUA_MASKLINE, 0);
}

/* At the start of each input: an edge does not run across inputs. */
static void fuzz_lua_coverage_reset(void) {
  fuzz_lua_previous = 0;
}
#endif

#endif
