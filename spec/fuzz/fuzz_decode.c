/* libFuzzer: core.decode on any status, content type and body, for every
 * operation of the core's own list (emp_endpoints, which core.OPERATIONS
 * exports). Byte 0 picks the operation (modulo the number of endpoints) and
 * the status (the quotient), byte 1 the content type; the rest is the body.
 *
 * Oracle (spec/fuzz/decode_oracle.lua): every call returns a result or nil,
 * err of kind http or decode; a result holds no JSON null, no whole number
 * left a float, and run ids that are integers below 2^53. Run from the
 * repository root, as `make fuzz` does. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "schema.h"

static lua_State *L;
static unsigned n_ops;

static const long STATUSES[] = { 200, 201, 204, 301, 400, 401, 404, 429, 500, 503, 412 };
#define N_STATUSES (sizeof STATUSES / sizeof *STATUSES)
static const char *const TYPES[] = { "application/json", "application/json; charset=utf-8", "text/html", NULL };

static const char *const SETUP_CODE =
  "package.path = './spec/?.lua;' .. package.path\n"
  "check = require('fuzz.decode_oracle')\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_state();
  if (luaL_dostring(L, SETUP_CODE) != LUA_OK) {
    fprintf(stderr, "fuzz_decode: %s (run from the repository root)\n", lua_tostring(L, -1));
    abort();
  }
  for (n_ops = 0; emp_endpoints[n_ops].name != NULL; n_ops++) {}
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *op;
  if (size < 2) return 0;
  op = emp_endpoints[data[0] % n_ops].name;
  lua_getglobal(L, "check");
  lua_pushstring(L, op);
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushstring(L, op);
  lua_pushinteger(L, STATUSES[(data[0] / n_ops) % N_STATUSES]);
  lua_pushlstring(L, (const char *)data + 2, size - 2);
  if (TYPES[data[1] % 4]) lua_pushstring(L, TYPES[data[1] % 4]);
  else lua_pushnil(L);
  lua_pushstring(L, "https://elsewhere.example/x");
  fuzz_call(L, 5, 2);               /* check, op, result | nil, nil | err */
  fuzz_call(L, 3, 0);
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
