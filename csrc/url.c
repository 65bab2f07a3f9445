/* URLs and where the token may go; see url.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "url.h"

/* Decided on the address, not the text: "127.0.0.1.evil.com" and
 * "127.evil.com" are names anyone can point anywhere. libcurl has already
 * turned "127.1" and "0x7f000001" into "127.0.0.1". */
static int host_is_loopback(const char *host) {
  unsigned char addr[16];
  char bare[64];
  size_t n = strlen(host);
  if (strcasecmp(host, "localhost") == 0) return 1;
  if (inet_pton(AF_INET, host, addr) == 1) return addr[0] == 127;
  if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= sizeof bare) return 0;
  memcpy(bare, host + 1, n - 2);
  bare[n - 2] = '\0';
  if (inet_pton(AF_INET6, bare, addr) != 1) return 0;   /* a zone id ("%25eth0") is not loopback either */
  {
    static const unsigned char v6_loopback[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(addr, v6_loopback, 16) == 0 || (memcmp(addr, v4_mapped, 12) == 0 && addr[12] == 127);
  }
}

/* "https://host:443" in lower case: what "the API's own origin" means. */
static char *make_origin(const char *scheme, const char *host, const char *port) {
  size_t n = strlen(scheme) + strlen(host) + strlen(port) + 5, i;
  char *origin = (char *)malloc(n);
  if (origin == NULL) return NULL;
  strcpy(origin, scheme);
  strcat(origin, "://");
  strcat(origin, host);
  strcat(origin, ":");
  strcat(origin, port);
  for (i = 0; origin[i] != '\0'; i++) origin[i] = (char)tolower((unsigned char)origin[i]);
  return origin;
}

/* A copy of s without its trailing slashes. */
static char *without_trailing_slashes(const char *s) {
  size_t n = strlen(s);
  char *copy;
  while (n > 0 && s[n - 1] == '/') n--;
  if ((copy = (char *)malloc(n + 1)) == NULL) return NULL;
  memcpy(copy, s, n);
  copy[n] = '\0';
  return copy;
}

/* A base URL's path is kept as a prefix (a proxy may mount the API under
 * one), but the API's own /api is added by the module: written into the
 * base too, it would double. */
static int path_repeats_api(const char *path) {
  size_t n = strlen(path);
  while (n > 0 && path[n - 1] == '/') n--;
  return (n >= 4 && strncmp(path + n - 4, "/api", 4) == 0) || strstr(path, "/api/") != NULL;
}

/* Each refusal once, with the short reason callers put in err.reason, so
 * that a caller with other words (the command's flags) need not read the text. */
static const char NOT_A_URL[] = "is not a URL (write it whole, like https://api.empirical.run)";
static const char NO_HOST[] = "has no host";
static const char SCHEME[] = "must be an https:// URL";
static const char PLAIN_HTTP[] = "is plain http to a host that is not loopback: the bearer token would cross the network "
                                 "in clear. Use https, or set allow_plain_http = true if you really mean it";
static const char USERINFO[] = "must not carry a user name or password";
static const char QUERY[] = "must not have a query string";
static const char FRAGMENT[] = "must not have a fragment";
static const char API_PATH[] = "ends in /api: write the API's address without it, like https://api.empirical.run "
                               "(the module adds /api/test-runs/...)";

const char *emp_url_reason(const char *problem) {
  static const struct { const char *problem, *reason; } reasons[] = {
    { NOT_A_URL, "not_a_url" }, { NO_HOST, "no_host" }, { SCHEME, "scheme" }, { PLAIN_HTTP, "plain_http" },
    { USERINFO, "userinfo" }, { QUERY, "query" }, { FRAGMENT, "fragment" }, { API_PATH, "api_path" },
  };
  size_t i;
  for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (problem == reasons[i].problem) return reasons[i].reason;
  return NULL;
}

const char *emp_url_parse(emp_url *u, const char *text, unsigned flags) {
  CURLU *h = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *part = NULL, *full = NULL;
  const char *problem = NULL;
  memset(u, 0, sizeof *u);
  if (h == NULL) return "out of memory";
  if (curl_url_set(h, CURLUPART_URL, text, 0) != CURLUE_OK) {
    problem = NOT_A_URL;
    goto done;
  }
  curl_url_get(h, CURLUPART_SCHEME, &scheme, 0);
  if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') { problem = NO_HOST; goto done; }
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) { problem = SCHEME; goto done; }
  u->loopback = host_is_loopback(host);
  if (strcmp(scheme, "http") == 0 && !u->loopback && !(flags & EMP_URL_PLAIN_HTTP)) {
    problem = PLAIN_HTTP;
    goto done;
  }
  if (curl_url_get(h, CURLUPART_USER, &part, 0) == CURLUE_OK) { problem = USERINFO; goto done; }
  if (!(flags & EMP_URL_PATH)) {
    if (curl_url_get(h, CURLUPART_QUERY, &part, 0) == CURLUE_OK) { problem = QUERY; goto done; }
    if (curl_url_get(h, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) { problem = FRAGMENT; goto done; }
    curl_url_get(h, CURLUPART_PATH, &path, 0);
    if (path != NULL && path_repeats_api(path)) {
      problem = API_PATH;
      goto done;
    }
  } else {
    curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);   /* never sent anyway */
  }
  if (curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK ||
      (u->origin = make_origin(scheme, host, port)) == NULL ||
      (u->url = (flags & EMP_URL_PATH) ? strdup(full) : without_trailing_slashes(full)) == NULL) {
    problem = "out of memory";
  }
done:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(part);
  curl_free(full);
  curl_url_cleanup(h);
  if (problem != NULL) emp_url_free(u);
  return problem;
}

void emp_url_free(emp_url *u) {
  free(u->url);
  free(u->origin);
  u->url = u->origin = NULL;
}
