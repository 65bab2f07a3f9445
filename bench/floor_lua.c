/* The fair floor: one reused libcurl easy handle driven from Lua. What any
 * Lua client on libcurl + lua-cjson must at least do per get: set the URL,
 * perform, collect the body into a Lua string; the caller then runs
 * cjson.decode on it. No validation, no retries, no schema check.
 *
 *   local floor = require("floor_lua")
 *   local h = floor.new(token [, ca_file])
 *   local body, status = h:get(url)        -- error() on a transport failure
 *
 * Built by `make bench` into build/bench/floor_lua.so (Lua 5.4). */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>

#define FLOOR_MT "bench.floor"

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
  char *buf;
  size_t len, cap;
} floor_handle;

static size_t on_body(char *data, size_t size, size_t count, void *userdata) {
  floor_handle *h = (floor_handle *)userdata;
  size_t n = size * count;
  if (h->len + n > h->cap) {
    size_t cap = h->cap ? h->cap : 16 * 1024;
    char *grown;
    while (cap < h->len + n) cap *= 2;
    if ((grown = (char *)realloc(h->buf, cap)) == NULL) return 0;
    h->buf = grown;
    h->cap = cap;
  }
  memcpy(h->buf + h->len, data, n);
  h->len += n;
  return n;
}

static floor_handle *check(lua_State *L) {
  return (floor_handle *)luaL_checkudata(L, 1, FLOOR_MT);
}

static int floor_get(lua_State *L) {
  floor_handle *h = check(L);
  const char *url = luaL_checkstring(L, 2);
  long status = 0;
  CURLcode code;
  h->len = 0;
  curl_easy_setopt(h->easy, CURLOPT_URL, url);
  code = curl_easy_perform(h->easy);
  if (code != CURLE_OK) return luaL_error(L, "floor: %s", curl_easy_strerror(code));
  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushlstring(L, h->buf ? h->buf : "", h->len);
  lua_pushinteger(L, (lua_Integer)status);
  return 2;
}

static int floor_gc(lua_State *L) {
  floor_handle *h = check(L);
  if (h->easy) curl_easy_cleanup(h->easy);
  curl_slist_free_all(h->headers);
  free(h->buf);
  memset(h, 0, sizeof *h);
  return 0;
}

static int floor_new(lua_State *L) {
  const char *token = luaL_checkstring(L, 1);
  const char *ca = luaL_optstring(L, 2, NULL);
  floor_handle *h = (floor_handle *)lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h);
  luaL_setmetatable(L, FLOOR_MT);
  lua_pushfstring(L, "Authorization: Bearer %s", token);
  h->headers = curl_slist_append(h->headers, lua_tostring(L, -1));
  lua_pop(L, 1);
  h->headers = curl_slist_append(h->headers, "Accept: application/json");
  if ((h->easy = curl_easy_init()) == NULL) return luaL_error(L, "floor: curl_easy_init failed");
  curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
  curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
  if (ca) curl_easy_setopt(h->easy, CURLOPT_CAINFO, ca);
  return 1;
}

int luaopen_floor_lua(lua_State *L) {
  static const luaL_Reg methods[] = { { "get", floor_get }, { NULL, NULL } };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (luaL_newmetatable(L, FLOOR_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, floor_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, floor_new);
  lua_setfield(L, -2, "new");
  return 1;
}
