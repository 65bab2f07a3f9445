/* libFuzzer: core.decode on any status, content type and body.
 * Byte 0 picks the operation and the status, byte 1 the content type; the
 * rest is the body. Every call must return a result or nil, err. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"

static lua_State *L;

static const char *const OPS[] = { "trigger", "rerun", "get" };
static const long STATUSES[] = { 200, 201, 204, 301, 400, 401, 404, 429, 500, 503 };
static const char *const TYPES[] = { "application/json", "application/json; charset=utf-8", "text/html", NULL };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_state();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "decode");
  lua_pushstring(L, OPS[data[0] % 3]);
  lua_pushinteger(L, STATUSES[(data[0] / 3) % 10]);
  lua_pushlstring(L, (const char *)data + 2, size - 2);
  if (TYPES[data[1] % 4]) lua_pushstring(L, TYPES[data[1] % 4]);
  else lua_pushnil(L);
  lua_pushstring(L, "https://elsewhere.example/x");
  fuzz_call(L, 5, 2);
  if (lua_isnil(L, -2) && !lua_istable(L, -1)) abort();   /* a failure always carries an error object */
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
