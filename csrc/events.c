/* on_event and the verbose trace; see events.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "events.h"

void emp_event_emit(lua_State *L, int fn, const emp_attempt *a, int *reported) {
  if (!lua_isfunction(L, fn)) return;
  lua_pushvalue(L, fn);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, a->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, a->path);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, a->attempt);
  lua_setfield(L, -2, "attempt");
  lua_pushinteger(L, a->elapsed_ms);
  lua_setfield(L, -2, "elapsed_ms");
  if (a->status > 0) {
    lua_pushinteger(L, a->status);
    lua_setfield(L, -2, "status");
  }
  if (a->kind != NULL) {
    lua_pushstring(L, a->kind);
    lua_setfield(L, -2, "kind");
  }
  if (a->retry_in_ms >= 0) {
    lua_pushinteger(L, a->retry_in_ms);
    lua_setfield(L, -2, "retry_in_ms");
  }
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    if (!*reported)
      fprintf(stderr, "empirical: on_event raised an error (ignored, and later ones not reported): %s\n",
              lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
    *reported = 1;
    lua_pop(L, 1);
  }
}

/* One header line of the trace, its value hidden when it carries credentials. */
static void trace_line(char mark, const char *line, size_t len) {
  static const char *const secret[] = { "authorization:", "proxy-authorization:", "cookie:" };
  size_t i;
  for (i = 0; i < sizeof secret / sizeof *secret; i++) {
    size_t n = strlen(secret[i]);
    if (len >= n && strncasecmp(line, secret[i], n) == 0) {
      fprintf(stderr, "%c %.*s [redacted]\n", mark, (int)n, line);
      return;
    }
  }
  fprintf(stderr, "%c %.*s\n", mark, (int)len, line);
}

int emp_debug_trace(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata) {
  char mark;
  size_t start = 0, i;
  (void)handle;
  (void)userdata;
  switch (type) {
    case CURLINFO_TEXT:       mark = '*'; break;
    case CURLINFO_HEADER_OUT: mark = '>'; break;
    case CURLINFO_HEADER_IN:  mark = '<'; break;
    default: return 0;        /* bodies and TLS records stay out of the trace */
  }
  for (i = 0; i <= size; i++) {
    if (i == size || data[i] == '\n') {
      size_t end = i;
      if (end > start && data[end - 1] == '\r') end--;
      if (end > start) trace_line(mark, data + start, end - start);
      start = i + 1;
    }
  }
  return 0;
}
