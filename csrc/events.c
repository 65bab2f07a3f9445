/* on_event and the verbose trace; see events.h. */
#include <stdio.h>
#include <string.h>
#include <ctype.h>

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

/* Where needle (lower case) starts in line, ignoring case, or NULL. */
static const char *find_ci(const char *line, size_t len, const char *needle) {
  size_t n = strlen(needle), i, j;
  for (i = 0; i + n <= len; i++) {
    for (j = 0; j < n && tolower((unsigned char)line[i + j]) == needle[j]; j++) {}
    if (j == n) return line + i;
  }
  return NULL;
}

/* One line of the trace. A line that names a credential header, in any of
 * the forms libcurl writes (an HTTP/1.1 header, an HTTP/2 "h2h3 [name:
 * value]" note), is cut after the name; and the token itself is hidden
 * wherever else it shows. */
static void trace_line(char mark, const char *line, size_t len, const char *token) {
  static const char *const secret[] = { "authorization", "cookie" };
  size_t i, token_len = token ? strlen(token) : 0;
  for (i = 0; i < sizeof secret / sizeof *secret; i++) {
    const char *at = find_ci(line, len, secret[i]);
    if (at != NULL) {
      fprintf(stderr, "%c %.*s: [redacted]\n", mark, (int)(at - line + strlen(secret[i])), line);
      return;
    }
  }
  fputc(mark, stderr);
  fputc(' ', stderr);
  for (i = 0; i < len;) {
    if (token_len > 0 && len - i >= token_len && memcmp(line + i, token, token_len) == 0) {
      fputs("[redacted]", stderr);
      i += token_len;
    } else {
      fputc(line[i++], stderr);
    }
  }
  fputc('\n', stderr);
}

/* userdata: the client's token. */
int emp_debug_trace(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata) {
  char mark;
  size_t start = 0, i;
  (void)handle;
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
      if (end > start) trace_line(mark, data + start, end - start, (const char *)userdata);
      start = i + 1;
    }
  }
  return 0;
}
