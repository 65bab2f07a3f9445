/* libFuzzer: core.encode on any parameters. Byte 0 picks the operation and
 * strictness; the rest is either JSON (decoded with cjson into a table) or,
 * when it starts with "return", a Lua expression evaluated in an empty
 * environment with an instruction budget, which reaches what JSON cannot:
 * NaN, infinities, integer edges, metatables, cycles.
 *
 * Oracle: every call returns a request or nil, err; a request's body is
 * JSON that cjson reads back, and no string in it holds a NUL (what a
 * number placeholder that escaped the splice would look like). And the
 * validator's two modes agree: a table check mode would send as it is,
 * copy mode accepts too, needing no placeholder, and both bodies read back
 * the same. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "json.h"
#include "validate.h"

static lua_State *L;

static const char *const OPS[] = { "trigger", "rerun", "get" };

static void budget(lua_State *l, lua_Debug *ar) {
  (void)ar;
  luaL_error(l, "instruction budget spent");
}

/* The environment a Lua-form input sees: enough to build odd tables. */
static const char *const ENV_CODE =
  "return { setmetatable = setmetatable, huge = math.huge, maxint = math.maxinteger,"
  " minint = math.mininteger, nan = 0/0, error = error, char = string.char,"
  " rep = function(s, n) return string.rep(s, math.min(n, 1 << 17)) end }";

/* check_body(text): raises unless text is JSON without a NUL in any string. */
static const char *const CHECK_BODY_CODE =
  "local cjson = require('cjson')\n"
  "local function walk(v)\n"
  "  if type(v) == 'string' then assert(not v:find('\\0', 1, true), 'a NUL in a string of the body')\n"
  "  elseif type(v) == 'table' then for k, x in pairs(v) do walk(k) walk(x) end end\n"
  "end\n"
  "function check_body(text) walk(cjson.decode(text)) end\n"
  "local function same(a, b)\n"
  "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end\n"
  "  for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
  "  for k in pairs(b) do if a[k] == nil then return false end end\n"
  "  return true\n"
  "end\n"
  "function same_body(x, y) assert(same(cjson.decode(x), cjson.decode(y)), 'the two modes send different bodies') end\n";

/* The two modes of validate.c on the trigger table at `params`. */
static void check_modes(int params, int strict) {
  const emp_endpoint *ep = emp_endpoint_find("trigger");
  int spliced, copy, as_is_ok, copy_ok;
  if (!emp_check_in_place(L, ep->input, params, strict)) return;
  if (!emp_validate(L, ep->input, params, EMP_INVALID, strict, "params", &spliced) || spliced != 0) abort();
  copy = lua_gettop(L);
  as_is_ok = emp_json_encode(L, params, 0);
  copy_ok = emp_json_encode(L, copy, 0);
  if (as_is_ok != copy_ok) abort();
  if (as_is_ok) {
    lua_getglobal(L, "same_body");
    lua_insert(L, -3);
    fuzz_call(L, 2, 0);
  }
  lua_settop(L, copy - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = fuzz_state();
  if (luaL_dostring(L, CHECK_BODY_CODE) != LUA_OK) abort();
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
  int req;
  if (size < 1) return 0;
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "encode");
  lua_pushstring(L, OPS[data[0] % 3]);
  if (!push_params(data + 1, size - 1)) { lua_settop(L, 0); return 0; }
  lua_pushboolean(L, data[0] & 4);
  if (data[0] % 3 == 0 && lua_istable(L, -2)) check_modes(lua_gettop(L) - 1, data[0] & 4);
  fuzz_call(L, 3, 2);
  req = lua_gettop(L) - 1;
  if (lua_istable(L, req)) {
    lua_getfield(L, req, "body");
    if (lua_isstring(L, -1) && lua_rawlen(L, -1) > 0) {
      lua_getglobal(L, "check_body");
      lua_pushvalue(L, -2);
      fuzz_call(L, 1, 0);
    }
  } else if (!lua_istable(L, -1)) {
    abort();                                                     /* nil without an error object */
  }
  lua_settop(L, 0);
  fuzz_gc(L);
  return 0;
}
