/* The floor: N sequential GETs with libcurl and one reused easy handle, the
 * least any client on libcurl can do. Prints the seconds taken.
 *
 *   floor URL N [CA_FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t sink(char *data, size_t size, size_t count, void *userdata) {
  (void)data;
  *(size_t *)userdata += size * count;
  return size * count;
}

int main(int argc, char **argv) {
  CURL *e;
  struct curl_slist *headers = NULL;
  struct timespec t0, t1;
  long i, n, status = 0;
  size_t bytes = 0;
  if (argc < 3) {
    fprintf(stderr, "usage: floor URL N [CA_FILE]\n");
    return 2;
  }
  n = atol(argv[2]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  headers = curl_slist_append(headers, "Authorization: Bearer bench-token");
  headers = curl_slist_append(headers, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &bytes);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (argc > 3) curl_easy_setopt(e, CURLOPT_CAINFO, argv[3]);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < n; i++) {
    CURLcode code = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK || status != 200) {
      fprintf(stderr, "floor: request %ld failed: %s (HTTP %ld)\n", i, curl_easy_strerror(code), status);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  curl_slist_free_all(headers);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  return 0;
}
