/* The client: one libcurl multi handle and one reusable easy handle per
 * client, so calls share a connection (and its TLS session) and, later,
 * many transfers can run at once on the same multi handle. */
#ifndef EMP_TRANSPORT_H
#define EMP_TRANSPORT_H

#include "compat.h"

#define EMP_VERSION "0.1.0"
#define EMP_CLIENT_MT "empirical.client"

/* Register the client metatable; leaves nothing on the stack. */
void emp_transport_open(lua_State *L);

/* core.client(options): a client, or nil, err (kind "config"). */
int emp_client_new(lua_State *L);

/* core.sleep(seconds), core.now(): monotonic seconds. */
int emp_sleep(lua_State *L);
int emp_now(lua_State *L);
void emp_sleep_ms(long ms);
double emp_monotonic(void);

#endif
