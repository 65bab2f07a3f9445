/* libFuzzer: empirical.playwright.parse (empirical.parse_report) on any text.
 * The input is the report's JSON text, as summary_url would serve it.
 *
 * Oracle: every call returns a report or nil, err (spec/fuzz/report_shape.lua
 * checks which: counts whole, one entry per unexpected or flaky test, paths
 * ending with the title, messages one stripped line, error texts capped).
 * A raise from parse or from the check aborts.
 *
 * The code under test is Lua, which libFuzzer's compiler instrumentation
 * does not see: Lua line coverage (fuzz_common.h) guides it instead, so
 * inputs that reach new branches of the walk are kept and mutated further.
 *
 * Run from the repository root, as `make fuzz` does: the module is read from
 * lua/empirical/playwright.lua, lua-cjson from the system's Lua 5.4 path. */
#include <stdint.h>

#define FUZZ_LUA_COVERAGE
#include "fuzz_common.h"

static lua_State *L;

static const char *const SETUP_CODE =
  "package.path = './lua/?.lua;./spec/?.lua;' .. package.path\n"
  "local parse = require('empirical.playwright').parse\n"
  "local check = require('fuzz.report_shape')\n"
  "return function(text) check(parse(text)) end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_state();
  if (luaL_dostring(L, SETUP_CODE) != LUA_OK) {
    fprintf(stderr, "fuzz_report: %s (run from the repository root)\n", lua_tostring(L, -1));
    abort();
  }
  lua_setglobal(L, "run");
  fuzz_lua_coverage(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_coverage_reset();
  lua_getglobal(L, "run");
  lua_pushlstring(L, (const char *)data, size);
  fuzz_call(L, 1, 0);
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
