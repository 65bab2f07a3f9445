/* Text helpers shared by validation (validate.c) and response checks
 * (decode.c); see text.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* --- paths ---------------------------------------------------------------- */

/* Paths are built for every field checked, so no printf here: it showed
 * in the encode profile. A path too long for the buffer is cut short. */
static size_t path_append(emp_path *p, const char *text, size_t n) {
  size_t old = p->len;
  if (n > EMP_PATH_MAX - 1 - p->len) n = EMP_PATH_MAX - 1 - p->len;
  memcpy(p->text + p->len, text, n);
  p->len += n;
  p->text[p->len] = '\0';
  return old;
}

size_t emp_path_key(emp_path *p, const char *key) {
  size_t old = p->len;
  if (p->len > 0) path_append(p, ".", 1);
  path_append(p, key, strlen(key));
  return old;
}

char *emp_digits_before(char *end, unsigned long long u) {
  do { *--end = (char)('0' + u % 10); u /= 10; } while (u > 0);
  return end;
}

size_t emp_path_index(emp_path *p, long long index) {
  char text[32], *end = text + sizeof text, *t = end;
  unsigned long long u = index < 0 ? 0ULL - (unsigned long long)index : (unsigned long long)index;
  *--t = ']';
  t = emp_digits_before(t, u);
  if (index < 0) *--t = '-';
  *--t = '[';
  return path_append(p, t, (size_t)(end - t));
}

void emp_path_restore(emp_path *p, size_t len) {
  p->len = len;
  p->text[len] = '\0';
}

/* --- numbers --------------------------------------------------------------- */

int emp_format_double(char *buf, size_t size, double d, int min_digits) {
  int digits;
  for (digits = min_digits; digits < 17; digits++) {
    snprintf(buf, size, "%.*g", digits, d);
    if (strtod(buf, NULL) == d) return digits;
  }
  snprintf(buf, size, "%.17g", d);
  return 17;
}

/* --- UTF-8 ---------------------------------------------------------------- */

int emp_utf8_valid(const char *text, size_t len, size_t *bad) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t need;
    unsigned min, cp;
    if (c < 0x80) {
      /* Responses are mostly ASCII: step over eight such bytes at a time. */
      uint64_t word;
      while (i + 8 <= len) {
        memcpy(&word, s + i, 8);
        if (word & 0x8080808080808080ULL) break;
        i += 8;
      }
      if (i < len && s[i] < 0x80) i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)      { need = 1; min = 0x80;    cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; min = 0x800;   cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; min = 0x10000; cp = c & 0x07; }
    else goto invalid;
    if (len - i <= need) goto invalid;
    {
      size_t k;
      for (k = 1; k <= need; k++) {
        if ((s[i + k] & 0xC0) != 0x80) goto invalid;
        cp = (cp << 6) | (s[i + k] & 0x3F);
      }
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto invalid;
    i += need + 1;
  }
  return 1;
invalid:
  if (bad) *bad = i;
  return 0;
}

/* --- "did you mean" ------------------------------------------------------- */

/* Edit distance (with transpositions) of two short names. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), i, j;
  size_t d[48][48];
  if (la >= 48 || lb >= 48) return (size_t)-1;
  for (i = 0; i <= la; i++) d[i][0] = i;
  for (j = 0; j <= lb; j++) d[0][j] = j;
  for (i = 1; i <= la; i++)
    for (j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] != b[j - 1], best = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

const char *emp_closest_name(const char *name, const emp_field *fields) {
  const char *best = NULL;
  size_t best_distance = (size_t)-1, limit = strlen(name) / 3 + 1;
  for (; fields->name != NULL; fields++) {
    size_t d = edit_distance(name, fields->name);
    if (d < best_distance) { best_distance = d; best = fields->name; }
  }
  return best_distance <= limit ? best : NULL;
}
