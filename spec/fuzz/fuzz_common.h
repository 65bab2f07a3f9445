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

#endif
