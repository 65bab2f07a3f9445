/* libFuzzer: empirical.playwright.parse (empirical.parse_report) on any text.
 * The input is the report's JSON text, as summary_url would serve it.
 *
 * Oracle: every call returns a report or nil, err (spec/fuzz/report_shape.lua
 * checks which: counts whole, one entry per unexpected or flaky test, paths
 * ending with the title, messages one stripped line, error texts capped).
 * A raise from parse or from the check aborts.
 *
 * The code under test is Lua, which libFuzzer's compiler instrumentation
 * does not see (the interpreter and cjson are Debian's builds): a line hook
 * feeds it Lua coverage instead, each pair of consecutive lines run bumping
 * one of libFuzzer's extra counters, so inputs that reach new branches of
 * the walk are kept and mutated further.
 *
 * Run from the repository root, as `make fuzz` does: the module is read from
 * lua/empirical/playwright.lua, lua-cjson from the system's Lua 5.4 path. */
#include <stdint.h>

#include "fuzz_common.h"

static lua_State *L;

#define EDGES 8192
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_edges[EDGES];
static uintptr_t previous;

static void line_hook(lua_State *l, lua_Debug *ar) {
  uintptr_t here;
  uint8_t *c;
  if (!lua_getinfo(l, "S", ar)) return;
  /* the chunk's name is one interned string per file: its address names the file */
  here = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline * 2654435761u;
  c = &lua_edges[(here ^ (previous >> 1)) % EDGES];
  if (*c < 255) (*c)++;
  previous = here;
}

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
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  previous = 0;
  lua_getglobal(L, "run");
  lua_pushlstring(L, (const char *)data, size);
  fuzz_call(L, 1, 0);
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
