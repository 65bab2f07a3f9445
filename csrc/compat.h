/* Lua version compatibility: the one place that knows 5.1/LuaJIT from 5.3+.
 * Everything else in csrc/ is written against the 5.4 API and these shims. */
#ifndef EMP_COMPAT_H
#define EMP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>   /* LUA_FILEHANDLE, on 5.1 */

/* PUC Lua 5.1 lacks the 5.2 auxiliary library; LuaJIT 2.1 (OpenResty's
 * luajit2) has most of it, and marks that by defining luaL_newlib. */
#if LUA_VERSION_NUM < 502 && !defined(luaL_newlib)
#  define EMP_COMPAT_AUXLIB 1
#  define luaL_setfuncs(L, l, n)     emp_compat_setfuncs((L), (l), (n))
#  define luaL_newlib(L, l)          (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#  define luaL_testudata(L, i, n)    emp_compat_testudata((L), (i), (n))
#  define luaL_setmetatable(L, n)    (luaL_getmetatable((L), (n)), lua_setmetatable((L), -2))
void emp_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *emp_compat_testudata(lua_State *L, int idx, const char *name);
#endif

#if LUA_VERSION_NUM < 502
#  define lua_rawlen(L, i)           lua_objlen((L), (i))
#  define lua_rawgetp(L, i, p)       (lua_pushlightuserdata((L), (void *)(p)), lua_rawget((L), EMP_BELOW_PUSH(i)))
/* idx once one more value is pushed: relative indices move, pseudo-indices do not. */
#  define EMP_BELOW_PUSH(i)          ((i) < 0 && (i) > LUA_REGISTRYINDEX ? (i) - 1 : (i))
#  define lua_rawsetp(L, i, p)       emp_compat_rawsetp((L), (i), (p))
#  ifndef LUA_OK
#    define LUA_OK 0
#  endif
void emp_compat_rawsetp(lua_State *L, int idx, const void *p);
#endif

#if LUA_VERSION_NUM >= 503
#  define emp_isinteger(L, i)        lua_isinteger((L), (i))
#else
#  define emp_isinteger(L, i)        0
#endif

/* Userdata with one user value, which holds a table: the Lua values the
 * userdata keeps alive (collectable with it, unlike registry refs). */
#if LUA_VERSION_NUM >= 504
#  define emp_newuserdata(L, size)   lua_newuserdatauv((L), (size), 1)
#  define emp_setuservalue(L, i)     lua_setiuservalue((L), (i), 1)
#  define emp_getuservalue(L, i)     lua_getiuservalue((L), (i), 1)
#elif LUA_VERSION_NUM >= 502
#  define emp_newuserdata(L, size)   lua_newuserdata((L), (size))
#  define emp_setuservalue(L, i)     lua_setuservalue((L), (i))
#  define emp_getuservalue(L, i)     lua_getuservalue((L), (i))
#else
#  define emp_newuserdata(L, size)   lua_newuserdata((L), (size))
#  define emp_setuservalue(L, i)     lua_setfenv((L), (i))
#  define emp_getuservalue(L, i)     lua_getfenv((L), (i))
#endif

/* The C stream of a Lua file handle (io.stdout, io.open's result); NULL if closed. */
#if LUA_VERSION_NUM >= 502
#  define emp_tofile(L, i)           (((luaL_Stream *)luaL_checkudata((L), (i), LUA_FILEHANDLE))->f)
#else
#  define emp_tofile(L, i)           (*(FILE **)luaL_checkudata((L), (i), LUA_FILEHANDLE))
#endif

/* 2^53: the largest whole number a double (and so JSON, and LuaJIT) holds exactly. */
#define EMP_MAX_EXACT_INT 9007199254740992.0

/* Push a whole number as an integer where the Lua has integers, else as a double. */
#if LUA_VERSION_NUM >= 503
#  define emp_pushwhole(L, d)        lua_pushinteger((L), (lua_Integer)(d))
#else
#  define emp_pushwhole(L, d)        lua_pushnumber((L), (lua_Number)(d))
#endif

#endif
