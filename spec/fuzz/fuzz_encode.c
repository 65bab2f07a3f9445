/* libFuzzer: core.encode on any parameters, for every operation of the
 * core's own list (emp_endpoints, which core.OPERATIONS exports), strict
 * and pass-through. Byte 0 picks the operation (its low three bits, modulo
 * the number of endpoints) and the mode (bit 3 set: strict; clear:
 * strict = false); the rest is either JSON (decoded with cjson into a table)
 * or, when it starts with "return", a Lua expression evaluated in an empty
 * environment with an instruction budget, which reaches what JSON cannot:
 * NaN, infinities, integer edges, huge floats, odd keys, metatables, cycles.
 *
 * Oracles: every call returns a request or nil, err. A request agrees with
 * the params it came from (spec/fuzz/encode_oracle.lua): the method is the
 * row's, ids and query values reached the target exactly and escaped,
 * every other field reached the body, every number in it read back as the
 * same value (integers exactly, floats as the same double), no string holds
 * a NUL. And the validator's two modes agree: a table check mode would send
 * as it is, copy mode accepts too, needing no placeholder, and both bodies
 * read back the same.
 *
 * Run from the repository root, as `make fuzz` does (the oracle is read
 * from spec/fuzz/). */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "json.h"
#include "validate.h"

static lua_State *L;
static unsigned n_ops;

static void budget(lua_State *l, lua_Debug *ar) {
  (void)ar;
  luaL_error(l, "instruction budget spent");
}

/* The environment a Lua-form input sees: enough to build odd tables. */
static const char *const ENV_CODE =
  "return { setmetatable = setmetatable, huge = math.huge, maxint = math.maxinteger,"
  " minint = math.mininteger, nan = 0/0, error = error, char = string.char,"
  " rep = function(s, n) return string.rep(s, math.min(n, 1 << 17)) end }";

/* check(op, params, req, err): the oracle; same_body(x, y): two bodies agree. */
static const char *const SETUP_CODE =
  "package.path = './spec/?.lua;' .. package.path\n"
  "check = require('fuzz.encode_oracle')\n"
  "local cjson = require('cjson')\n"
  "local function same(a, b)\n"
  "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
  "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
  "  for k in pairs(b) do if a[k] == nil then return false end end\n"
  "  return true\n"
  "end\n"
  "function same_body(x, y) assert(same(cjson.decode(x), cjson.decode(y)), 'the two modes send different bodies') end\n";

/* The two modes of validate.c on the params at `params`: a table check
 * mode passes needs no copy, and the copy sends the same JSON. */
static void check_modes(const emp_endpoint *ep, int params, int strict) {
  int spliced, copy, as_is_ok, copy_ok;
  if (!emp_check_in_place(L, ep->input, params, strict)) return;
  if (!emp_validate(L, ep->input, params, EMP_INVALID, strict, "params", &spliced) || spliced != 0) abort();
  copy = lua_gettop(L);
  if (emp_schema_has_body(ep->input)) {
    as_is_ok = emp_json_encode(L, params, 0);
    copy_ok = emp_json_encode(L, copy, 0);
    if (as_is_ok != copy_ok) abort();
    if (as_is_ok) {
      lua_getglobal(L, "same_body");
      lua_insert(L, -3);
      fuzz_call(L, 2, 0);
    }
  }
  lua_settop(L, copy - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_state();
  if (luaL_dostring(L, SETUP_CODE) != LUA_OK) {
    fprintf(stderr, "fuzz_encode: %s (run from the repository root)\n", lua_tostring(L, -1));
    abort();
  }
  for (n_ops = 0; emp_endpoints[n_ops].name != NULL; n_ops++) {}
  return 0;
}

/* Push the parameters the input describes, or return 0 to skip it. */
static int push_params(const uint8_t *data, size_t size) {
  if (size >= 6 && memcmp(data, "return", 6) == 0) {
    if (luaL_loadbufferx(L, (const char *)data, size, "=fuzz", "t") != LUA_OK) return 0;
    luaL_dostring(L, ENV_CODE);
    lua_setupvalue(L, -2, 1);
    lua_sethook(L, budget, LUA_MASKCOUNT, 100000);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) { lua_sethook(L, NULL, 0, 0); return 0; }
    lua_sethook(L, NULL, 0, 0);
    return 1;
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  fuzz_call(L, 1, 1);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {   /* not JSON: use the bytes as a string */
    lua_pop(L, 1);
    lua_pushlstring(L, (const char *)data, size);
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const emp_endpoint *ep;
  int strict, params;
  if (size < 1) return 0;
  ep = &emp_endpoints[(data[0] & 7) % n_ops];
  strict = (data[0] & 8) != 0;
  lua_getglobal(L, "check");
  lua_pushstring(L, ep->name);
  if (!push_params(data + 1, size - 1)) { lua_settop(L, 0); return 0; }
  params = lua_gettop(L);
  if (lua_istable(L, params)) check_modes(ep, params, strict);
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "encode");
  lua_remove(L, -2);
  lua_pushstring(L, ep->name);
  lua_pushvalue(L, params);
  lua_pushboolean(L, strict);
  fuzz_call(L, 3, 2);                /* check, op, params, req | nil, nil | err */
  fuzz_call(L, 4, 0);
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
