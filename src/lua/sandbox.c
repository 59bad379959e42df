/* The Lua sandbox: builds the state (capped allocator, trimmed libraries, our own require),
 * enforces the per-entry instruction budget and wall-clock guard with a count hook, and owns
 * the single protected-call path through which every entry (eval, run, require, setters)
 * goes. Conversions live in convert.c, templates in interpolate.c, actions in actions.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include <drbook/luatext.h>
#include <drbook/util.h>

#include "internal.h"

#define DEFAULT_MEM_LIMIT ((size_t)64 * 1024 * 1024)
#define DEFAULT_INSTR_LIMIT 50000000LL
#define DEFAULT_TIME_LIMIT 10.0
#define HOOK_EVERY 1000
#define MODULE_MAX (1024 * 1024) /* a module file larger than this is refused */
#define PRINT_MAX (64 * 1024)	 /* longer print lines are cut: they go to a log */
#define NAME_MAX_LEN 128

/* Static addresses as registry keys (Redis style): nothing a script can name. */
static const char loaded_key = 'L';  /* registry[&loaded_key]: require's cache */
static const char loading_key = 'l'; /* value marking a module whose chunk is running */

drb_lua *drb_luai_ctx(lua_State *L)
{
	return *(drb_lua **)lua_getextraspace(L);
}

/* ---- allocator: a hard cap, NULL past it (Lua turns that into LUA_ERRMEM) ---- */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	drb_lua *D = ud;
	size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag, not a size */
	void *p = NULL;

	if (nsize == 0) {
		free(ptr);
		D->mem_used -= old;
		return NULL;
	}
	if (nsize > old && nsize - old > D->mem_limit - D->mem_used) {
		D->mem_hit = 1;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (!p) {
		/* Lua assumes shrinking never fails: keep the old block then. */
		if (ptr && nsize <= old)
			return ptr;
		D->mem_hit = 1;
		return NULL;
	}
	D->mem_used = D->mem_used - old + nsize;
	return p;
}

/* ---- instruction budget and wall-clock guard ---- */

static void sb_hook(lua_State *L, lua_Debug *ar);

static const char *limit_text(int limit)
{
	switch (limit) {
	case DRB_LUAI_LIMIT_TIME:
		return "time limit exceeded";
	case DRB_LUAI_LIMIT_CANCEL:
		return "interrupted: the run is being stopped";
	case DRB_LUAI_LIMIT_DEADLINE:
		return "the run's deadline passed";
	case DRB_LUAI_LIMIT_STEP:
		return "the step's time budget ran out";
	default:
		return "instruction limit exceeded";
	}
}

void drb_luai_charge(lua_State *L, long long n)
{
	drb_lua *D = drb_luai_ctx(L);

	if (D->limit == DRB_LUAI_LIMIT_NONE) {
		D->instr_count += n;
		double now = drb_mono_now();

		if (D->cancel && *D->cancel)
			D->limit = DRB_LUAI_LIMIT_CANCEL;
		else if (D->stop_at && *D->stop_at > 0 && now > *D->stop_at)
			D->limit = DRB_LUAI_LIMIT_DEADLINE;
		else if (D->step_stop > 0 && now > D->step_stop)
			D->limit = DRB_LUAI_LIMIT_STEP;
		else if (D->instr_count > D->instr_limit)
			D->limit = DRB_LUAI_LIMIT_INSTR;
		else if (now > D->deadline)
			D->limit = DRB_LUAI_LIMIT_TIME;
		if (D->limit == DRB_LUAI_LIMIT_NONE)
			return;
		/* From now on every instruction raises again, so a script's own pcall can
		 * catch the error but can never run another instruction after catching it. */
		lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushstring(L, limit_text(D->limit));
	lua_error(L);
}

static void sb_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	drb_luai_charge(L, HOOK_EVERY);
}

void drb_luai_enter(drb_lua *D)
{
	/* Entries lock on their own too (the mutex is recursive): a caller that forgot
	 * drb_lua_lock still cannot corrupt the state. */
	pthread_mutex_lock(&D->mu);
	if (D->depth++ > 0)
		return;
	D->instr_count = 0;
	D->limit = DRB_LUAI_LIMIT_NONE;
	D->mem_hit = 0;
	D->act_code = 0;
	D->act_msg[0] = '\0';
	D->deadline = drb_mono_now() + D->time_limit;
	lua_sethook(D->L, sb_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

void drb_luai_leave(drb_lua *D)
{
	D->depth--;
	pthread_mutex_unlock(&D->mu);
}

/* ---- the protected call ---- */

/* Message handler: the message plus a traceback (lua.c's msghandler), without calling an
 * error object's __tostring: a message handler can run with hooks off (when the budget hook
 * raised), where a script's metamethod could loop beyond every limit. */
static int sb_msgh(lua_State *L)
{
	const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
			      ? lua_tostring(L, 1)
			      : NULL;

	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static void sb_mem_text(size_t n, char *out, size_t outn)
{
	if (n >= 1024 * 1024 && n % (1024 * 1024) == 0)
		snprintf(out, outn, "%zu MiB", n / (1024 * 1024));
	else
		snprintf(out, outn, "%zu bytes", n);
}

/* Turns a failed lua_pcall into a code and a message. */
static int sb_classify(drb_lua *D, int status, const char *where, drb_err *err)
{
	const char *full = lua_tostring(D->L, -1);
	const char *cut = NULL, *oom = NULL;
	char mem[64];
	size_t n;

	if (!full)
		full =
		    status == LUA_ERRMEM ? "not enough memory" : "(error object is not a string)";
	snprintf(D->trace, sizeof(D->trace), "%s", full);
	/* err gets the message without the traceback: that is what a human reads first. */
	cut = strstr(full, "\nstack traceback:");
	n = cut ? (size_t)(cut - full) : strlen(full);
	if (!where || !*where)
		where = "lua";
	if (D->limit == DRB_LUAI_LIMIT_INSTR)
		return drb_err_set(err, DRB_ELIMIT,
				   "%s: instruction limit exceeded (%lld instructions)", where,
				   D->instr_limit);
	if (D->limit == DRB_LUAI_LIMIT_TIME)
		return drb_err_set(err, DRB_ELIMIT, "%s: time limit exceeded (%g s)", where,
				   D->time_limit);
	if (D->limit == DRB_LUAI_LIMIT_CANCEL)
		return drb_err_set(err, DRB_EINTERRUPTED,
				   "%s: interrupted: the run is being stopped", where);
	if (D->limit == DRB_LUAI_LIMIT_DEADLINE)
		return drb_err_set(err, DRB_ETIMEOUT, "%s: the run's deadline passed", where);
	if (D->limit == DRB_LUAI_LIMIT_STEP)
		return drb_err_set(err, DRB_ETIMEOUT,
				   "%s: the step's time budget ran out (its timeout or the run's "
				   "deadline)",
				   where);
	/* A memory error a script caught with pcall and raised again is still the cap. */
	oom = strstr(full, "not enough memory");
	if (status == LUA_ERRMEM || (D->mem_hit && oom && oom < full + n)) {
		sb_mem_text(D->mem_limit, mem, sizeof(mem));
		return drb_err_set(err, DRB_ELIMIT, "%s: memory limit of %s exceeded", where, mem);
	}
	/* An action's error that ended the script keeps its code (transient, denied...). */
	if (D->act_code && strlen(D->act_msg) == n && memcmp(D->act_msg, full, n) == 0)
		return drb_err_set(err, D->act_code, "%.*s", (int)n, full);
	return drb_err_set(err, DRB_ESCRIPT, "%.*s", (int)n, full);
}

int drb_luai_pcall(drb_lua *D, int nargs, int nres, const char *where, drb_err *err)
{
	lua_State *L = D->L;
	int fidx = lua_gettop(L) - nargs;
	int status, rc = 0;

	if (!lua_checkstack(L, 2)) {
		lua_settop(L, fidx - 1);
		rc = drb_err_set(err, DRB_ELIMIT, "%s: Lua stack overflow", where ? where : "lua");
		goto out;
	}
	lua_pushcfunction(L, sb_msgh);
	lua_insert(L, fidx);
	status = lua_pcall(L, nargs, nres, fidx);
	if (status == LUA_OK && D->limit != DRB_LUAI_LIMIT_NONE) {
		/* A limit hit, caught by the script, and no instruction ran after it: a C
		 * function in tail position (`return xpcall(...)`) returns straight out of
		 * the chunk. The entry still failed. */
		lua_settop(L, fidx - 1);
		lua_pushstring(L, limit_text(D->limit));
		status = LUA_ERRRUN;
		fidx = lua_gettop(L);
	}
	if (status == LUA_OK) {
		lua_remove(L, fidx);
		goto out;
	}
	rc = sb_classify(D, status, where, err);
	lua_settop(L, fidx - 1);
out:
	return rc;
}

int drb_luai_protect(drb_lua *D, lua_CFunction fn, void *ud, const char *where, drb_err *err)
{
	int rc = 0;

	if (!lua_checkstack(D->L, 4)) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: Lua stack overflow", where);
		goto out;
	}
	lua_pushcfunction(D->L, fn);
	lua_pushlightuserdata(D->L, ud);
	rc = drb_luai_pcall(D, 1, 0, where, err);
out:
	return rc;
}

/* ---- compiling and running text ---- */

struct sb_chunk {
	const char *code;
	size_t len;
	const char *name; /* "=..." */
};

static int sb_run_chunk(lua_State *L)
{
	struct sb_chunk *c = lua_touserdata(L, 1);

	if (luaL_loadbufferx(L, c->code, c->len, c->name, "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	return 1;
}

int drb_luai_eval_push(drb_lua *D, const char *code, size_t len, const char *chunkname,
		       drb_err *err)
{
	char name[256];
	struct sb_chunk c;

	/* "@" makes Lua print the name as given ("region.yaml:12:5:1: ..."), and when it is
	 * longer than LUA_IDSIZE keep its tail, where the line and column are. */
	snprintf(name, sizeof(name), "@%s", chunkname && *chunkname ? chunkname : "lua");
	int rc = 0;

	c.code = code;
	c.len = len;
	c.name = name;
	if (!lua_checkstack(D->L, 4)) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: Lua stack overflow", name + 1);
		goto out;
	}
	lua_pushcfunction(D->L, sb_run_chunk);
	lua_pushlightuserdata(D->L, &c);
	rc = drb_luai_pcall(D, 1, 1, name + 1, err);
out:
	return rc;
}

int drb_luai_expr_push(drb_lua *D, const char *expr, size_t len, const char *chunkname,
		       drb_err *err)
{
	drb_buf b;
	int rc = 0;

	drb_buf_init(&b, len + 64);
	/* the chunk validate compiled too (core's luatext.c) */
	if (drb_expr_wrap(&b, expr, len)) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	rc = drb_luai_eval_push(D, b.p, b.len, chunkname, err);
out:
	drb_buf_free(&b);
	return rc;
}

/* ---- library replacements ---- */

int drb_luai_print(lua_State *L)
{
	drb_lua *D = drb_luai_ctx(L);
	int n = lua_gettop(L);
	luaL_Buffer b;
	size_t len = 0;
	const char *s = NULL;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	if (len > PRINT_MAX) {
		lua_pushlstring(L, s, PRINT_MAX);
		lua_pushliteral(L, "...[truncated]");
		lua_concat(L, 2);
		s = lua_tostring(L, -1);
	}
	if (D->print)
		D->print(D->print_ud, s);
	return 0;
}

/* load(chunk [, name [, mode [, env]]]) with the mode forced to text: binary chunks can
 * break the VM's assumptions, so they never get in. */
static int sb_load(lua_State *L)
{
	int n = lua_gettop(L);

	if (n > 4)
		lua_settop(L, n = 4);
	if (n < 3)
		lua_settop(L, n = 3); /* env stays "none" when it was not given */
	lua_pushliteral(L, "t");
	lua_replace(L, 3);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");

	if (strcmp(opt, "count") != 0 && strcmp(opt, "collect") != 0 && strcmp(opt, "step") != 0)
		return luaL_error(L, "collectgarbage option '%s' is not available in the sandbox",
				  opt);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* xpcall(f, msgh, ...) as pcall followed by msgh(err): Lua calls a message handler at the
 * point of the error, and when the error came from the budget hook that is with hooks
 * switched off, so `xpcall(loop, loop)` would run forever. Here the handler runs after the
 * protected call returned, as ordinary code under the budget. What it loses: the handler no
 * longer sees the erroring stack (the sandbox has no debug library to look at it anyway). */
static int sb_xpcall(lua_State *L)
{
	int n = lua_gettop(L);

	luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_checkstack(L, n + 3, "xpcall");
	lua_pushboolean(L, 1); /* n+1: true, then f and its arguments */
	lua_pushvalue(L, 1);
	for (int i = 3; i <= n; i++)
		lua_pushvalue(L, i);
	if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == LUA_OK)
		return lua_gettop(L) - n; /* true, f's results */
	/* ..., true, error: an interrupted or over-budget entry stays so, the handler's first
	 * instruction raises again */
	lua_pushvalue(L, 2);
	lua_insert(L, -2);
	lua_pcall(L, 1, 1, 0); /* the handler's result, or its own error (Lua's LUA_ERRERR) */
	lua_pushboolean(L, 0);
	lua_replace(L, -3);
	return 2;
}

/* setmetatable without __gc: Lua runs finalizers with hooks switched off, so a finalizer
 * would escape the instruction budget and the wall-clock guard (an endless loop in __gc
 * hangs the run). Lua 5.4 only marks an object for finalization when its metatable has
 * __gc at the time of setmetatable, so checking here is enough. */
static int sb_setmetatable(lua_State *L)
{
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc metamethods are not available in "
					     "the sandbox");
		lua_pop(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* os.date in UTC only: the "!" prefix is forced, runbooks must not depend on the host's
 * time zone. */
static int sb_os_date(lua_State *L)
{
	const char *f = luaL_optstring(L, 1, "%c");

	if (f[0] != '!') {
		if (lua_gettop(L) == 0)
			lua_pushnil(L);
		lua_pushfstring(L, "!%s", f);
		lua_replace(L, 1);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

static int sb_time_field(lua_State *L, const char *k, int dflt)
{
	lua_Integer v = 0;
	int isnum = 0;

	lua_getfield(L, 1, k);
	v = lua_tointegerx(L, -1, &isnum);
	if (!isnum) {
		if (!lua_isnil(L, -1) || dflt < 0)
			return luaL_error(L, "field '%s' missing or not an integer in date table",
					  k);
		v = dflt;
	}
	lua_pop(L, 1);
	if (v < -1000000 || v > 1000000)
		return luaL_error(L, "field '%s' is out of range", k);
	return (int)v;
}

/* os.time() or os.time{year=, month=, day=, hour=12, min=0, sec=0}, the table read as UTC
 * (the standard one uses mktime, i.e. the host's zone). */
static int sb_os_time(lua_State *L)
{
	struct tm tm;
	time_t t;

	if (lua_isnoneornil(L, 1)) {
		lua_pushinteger(L, (lua_Integer)time(NULL));
		return 1;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = sb_time_field(L, "year", -1) - 1900;
	tm.tm_mon = sb_time_field(L, "month", -1) - 1;
	tm.tm_mday = sb_time_field(L, "day", -1);
	tm.tm_hour = sb_time_field(L, "hour", 12);
	tm.tm_min = sb_time_field(L, "min", 0);
	tm.tm_sec = sb_time_field(L, "sec", 0);
	errno = 0;
	t = timegm(&tm);
	if (t == (time_t)-1 && errno != 0)
		return luaL_error(L, "time result cannot be represented");
	lua_pushinteger(L, (lua_Integer)t);
	return 1;
}

static void sb_open_os(lua_State *L)
{
	lua_pushcfunction(L, luaopen_os);
	lua_call(L, 0, 1); /* the full os table, only to borrow a few functions from it */
	lua_createtable(L, 0, 4);
	lua_getfield(L, -2, "clock");
	lua_setfield(L, -2, "clock");
	lua_getfield(L, -2, "difftime");
	lua_setfield(L, -2, "difftime");
	lua_getfield(L, -2, "date");
	lua_pushcclosure(L, sb_os_date, 1);
	lua_setfield(L, -2, "date");
	lua_pushcfunction(L, sb_os_time);
	lua_setfield(L, -2, "time");
	lua_setglobal(L, "os");
	lua_pop(L, 1);
}

/* ---- require ---- */

static int sb_module_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.' && s[i + 1] == '.')
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* Looks for the module in dir; 1 and the chunk pushed when found, 0 when the file does not
 * exist; raises on anything else. chunk gets "@" + the path. The file buffer is freed before
 * anything can raise (luaL_loadbufferx reports errors, it does not raise them). */
static int sb_search(lua_State *L, const char *dir, const char *name, char *chunk, size_t chunkn)
{
	char *buf = NULL;
	size_t len = 0;
	drb_err e = {0};
	int n, status;

	n = snprintf(chunk, chunkn, "@%s/", dir);
	if (n < 0 || (size_t)n >= chunkn)
		return luaL_error(L, "module '%s': folder name too long", name);
	for (const char *p = name; *p && (size_t)n + 5 < chunkn; p++)
		chunk[n++] = *p == '.' ? '/' : *p;
	if ((size_t)n + 5 >= chunkn)
		return luaL_error(L, "module '%s': path too long", name);
	memcpy(chunk + n, ".lua", 5);
	status = drb_file_read(chunk + 1, MODULE_MAX, &buf, &len, &e);
	if (status == DRB_ENOTFOUND)
		return 0;
	if (status != 0)
		return luaL_error(L, "module '%s': %s", name, e.msg);
	status = luaL_loadbufferx(L, buf, len, chunk, "t");
	free(buf);
	if (status != LUA_OK)
		return lua_error(L);
	return 1;
}

static int sb_require(lua_State *L)
{
	drb_lua *D = drb_luai_ctx(L);
	static const char *const refused[] = {"io",	   "os",  "debug", "package",
					      "coroutine", "ffi", "jit",   NULL};
	static const char *const builtin[] = {"string", "table", "math", "utf8", "_G", NULL};
	size_t n = 0;
	const char *name = luaL_checklstring(L, 1, &n);
	const char *dirs[2] = {D->lib_dir, D->runbook_dir};
	char path[4096], tried[2][4096];
	int found = 0, status;

	lua_settop(L, 1);
	for (int i = 0; refused[i]; i++)
		if (strcmp(name, refused[i]) == 0)
			return luaL_error(L, "module '%s' is not available in the sandbox", name);
	if (!sb_module_name_ok(name, n))
		return luaL_error(L,
				  "module name '%s' is not allowed (letters, digits, '_' and "
				  "'.' only)",
				  name);
	for (int i = 0; builtin[i]; i++) {
		if (strcmp(name, builtin[i]) == 0) {
			lua_getglobal(L, strcmp(name, "_G") == 0 ? "_G" : name);
			return 1;
		}
	}
	lua_rawgetp(L, LUA_REGISTRYINDEX, &loaded_key); /* 2 */
	lua_getfield(L, 2, name);
	if (lua_touserdata(L, -1) == &loading_key)
		return luaL_error(L, "module '%s' requires itself (circular require)", name);
	if (!lua_isnil(L, -1))
		return 1;
	lua_pop(L, 1);
	tried[0][0] = tried[1][0] = '\0';
	for (int i = 0; i < 2 && !found; i++) {
		if (!dirs[i])
			continue;
		found = sb_search(L, dirs[i], name, path, sizeof(path));
		if (!found)
			snprintf(tried[i], sizeof(tried[i]), "\n\tno file '%s'", path + 1);
	}
	if (!found)
		return luaL_error(L, "module '%s' not found:%s%s", name, tried[0], tried[1]);
	/* chunk at 3; mark it loading so a cycle is an error rather than a C stack overflow */
	lua_pushlightuserdata(L, (void *)&loading_key);
	lua_setfield(L, 2, name);
	lua_pushvalue(L, 1);
	lua_pushstring(L, path + 1);
	status = lua_pcall(L, 2, 1, 0);
	if (status != LUA_OK) {
		lua_pushnil(L);
		lua_setfield(L, 2, name);
		return lua_error(L);
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, 2, name);
	return 1;
}

/* ---- building the state ---- */

static int sb_setup(lua_State *L)
{
	static const luaL_Reg libs[] = {
	    {LUA_GNAME, luaopen_base},	      {LUA_TABLIBNAME, luaopen_table},
	    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
	    {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
	static const char *const removed[] = {"dofile", "loadfile", NULL};

	for (const luaL_Reg *l = libs; l->name; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	for (int i = 0; removed[i]; i++) {
		lua_pushnil(L);
		lua_setglobal(L, removed[i]);
	}
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	drb_luai_open_patterns(L, -1); /* find, match, gmatch, gsub that count their work */
	lua_pop(L, 1);
	lua_getglobal(L, "load");
	lua_pushcclosure(L, sb_load, 1);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, sb_xpcall);
	lua_setglobal(L, "xpcall");
	lua_getglobal(L, "setmetatable");
	lua_pushcclosure(L, sb_setmetatable, 1);
	lua_setglobal(L, "setmetatable");
	lua_getglobal(L, "collectgarbage");
	lua_pushcclosure(L, sb_collectgarbage, 1);
	lua_setglobal(L, "collectgarbage");
	lua_pushcfunction(L, drb_luai_print);
	lua_setglobal(L, "print");
	lua_pushcfunction(L, sb_require);
	lua_setglobal(L, "require");
	sb_open_os(L);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &loaded_key);
	drb_luai_open_box(L);
	drb_luai_open_drbook(L);
	return 0;
}

static char *sb_dir_dup(const char *s)
{
	char *d = drb_strdup(s);
	size_t n = d ? strlen(d) : 0;

	while (n > 1 && d[n - 1] == '/')
		d[--n] = '\0';
	return d;
}

int drb_lua_new(drb_lua **out, const drb_lua_opts *opts, drb_err *err)
{
	static const drb_lua_opts none;
	drb_lua *D = NULL;
	pthread_mutexattr_t ma;
	int rc = 0, mu = 0;

	*out = NULL;
	if (!opts)
		opts = &none;
	D = calloc(1, sizeof(*D));
	if (!D) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	D->mem_limit = opts->mem_limit ? opts->mem_limit : DEFAULT_MEM_LIMIT;
	D->instr_limit = opts->instr_limit > 0 ? opts->instr_limit : DEFAULT_INSTR_LIMIT;
	D->time_limit = opts->time_limit > 0 ? opts->time_limit : DEFAULT_TIME_LIMIT;
	D->print = opts->print;
	D->print_ud = opts->print_ud;
	D->cancel = opts->cancel;
	D->stop_at = opts->stop_at;
	D->lib_dir = sb_dir_dup(opts->lib_dir);
	D->runbook_dir = sb_dir_dup(opts->runbook_dir);
	if ((opts->lib_dir && !D->lib_dir) || (opts->runbook_dir && !D->runbook_dir)) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (pthread_mutexattr_init(&ma) != 0) {
		rc = drb_err_set(err, DRB_ERR, "pthread_mutexattr_init failed");
		goto out;
	}
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	mu = pthread_mutex_init(&D->mu, &ma) == 0;
	pthread_mutexattr_destroy(&ma);
	if (!mu) {
		rc = drb_err_set(err, DRB_ERR, "pthread_mutex_init failed");
		goto out;
	}
	D->L = lua_newstate(sb_alloc, D);
	if (!D->L) {
		rc = drb_err_set(err, DRB_ELIMIT, "lua: cannot create a state within %zu bytes",
				 D->mem_limit);
		goto out;
	}
	*(drb_lua **)lua_getextraspace(D->L) = D;
	/* Setup runs inside lua_pcall: a memory error while opening libraries must not
	 * longjmp through this frame. */
	drb_luai_enter(D);
	rc = drb_luai_protect(D, sb_setup, D, "lua setup", err);
	drb_luai_leave(D);
	if (rc)
		goto out;
	*out = D;
	D = NULL;
out:
	if (D && !mu) {
		free(D->lib_dir);
		free(D->runbook_dir);
		free(D);
		D = NULL;
	}
	drb_lua_free(D);
	return rc;
}

void drb_lua_free(drb_lua *D)
{
	if (!D)
		return;
	if (D->L)
		lua_close(D->L); /* no Lua finalizers can exist: see sb_setmetatable */
	pthread_mutex_destroy(&D->mu);
	for (size_t i = 0; i < D->n_schemas; i++) {
		free(D->schemas[i].name);
		drb_action_schema_free(D->schemas[i].s);
	}
	free(D->schemas);
	free(D->lib_dir);
	free(D->runbook_dir);
	free(D);
}

void drb_lua_lock(drb_lua *D)
{
	pthread_mutex_lock(&D->mu);
}

void drb_lua_unlock(drb_lua *D)
{
	pthread_mutex_unlock(&D->mu);
}

lua_State *drb_lua_state(drb_lua *D)
{
	return D->L;
}

const char *drb_lua_last_traceback(drb_lua *D)
{
	return D->trace;
}

/* ---- globals ---- */

struct sb_set {
	const char *name, *status;
	const json_t *v;
	int rc;
};

static int sb_set_global(lua_State *L)
{
	struct sb_set *s = lua_touserdata(L, 1);

	s->rc = drb_lua_push_json(L, s->v);
	if (s->rc)
		return 0;
	lua_setglobal(L, s->name);
	return 0;
}

static int sb_set_step(lua_State *L)
{
	struct sb_set *s = lua_touserdata(L, 1);

	lua_getglobal(L, "steps"); /* 2 */
	if (!lua_istable(L, 2)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, 2);
		lua_setglobal(L, "steps");
	}
	lua_pushstring(L, s->name);
	lua_rawget(L, 2); /* 3: steps[id] */
	if (!lua_istable(L, 3)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushstring(L, s->name);
		lua_pushvalue(L, 3);
		lua_rawset(L, 2);
	}
	s->rc = drb_lua_push_json(L, s->v);
	if (s->rc)
		return 0;
	lua_setfield(L, 3, "result");
	if (s->status) {
		lua_pushstring(L, s->status);
		lua_setfield(L, 3, "status");
	}
	return 0;
}

static int sb_setter(drb_lua *D, lua_CFunction fn, struct sb_set *s, drb_err *err)
{
	int rc;

	drb_luai_enter(D);
	rc = drb_luai_protect(D, fn, s, s->name, err);
	if (rc == 0 && s->rc)
		rc = drb_err_set(err, s->rc, "%s: nesting deeper than %d levels", s->name,
				 DRB_LUA_MAX_DEPTH);
	drb_luai_leave(D);
	return rc;
}

int drb_lua_set_global(drb_lua *D, const char *name, const json_t *v, drb_err *err)
{
	struct sb_set s = {name, NULL, v, 0};

	return sb_setter(D, sb_set_global, &s, err);
}

int drb_lua_set_step(drb_lua *D, const char *id, const char *status, const json_t *result,
		     drb_err *err)
{
	struct sb_set s = {id, status, result, 0};

	return sb_setter(D, sb_set_step, &s, err);
}

int drb_lua_set_result(drb_lua *D, const json_t *result, drb_err *err)
{
	struct sb_set s = {"result", NULL, result, 0};

	return sb_setter(D, sb_set_global, &s, err);
}

double drb_lua_set_step_deadline(drb_lua *D, double at)
{
	double was;

	pthread_mutex_lock(&D->mu);
	was = D->step_stop;
	D->step_stop = at;
	pthread_mutex_unlock(&D->mu);
	return was;
}

/* ---- entries ---- */

int drb_lua_eval(drb_lua *D, const char *expr, const char *chunkname, json_t **out, drb_err *err)
{
	lua_State *L = D->L;
	int base = lua_gettop(L), rc;

	*out = NULL;
	drb_luai_enter(D);
	rc = drb_luai_expr_push(D, expr, strlen(expr), chunkname, err);
	if (rc == 0) {
		rc = drb_lua_to_json(L, -1, out, err);
		if (rc)
			drb_err_prefix(err, "%s: ", chunkname ? chunkname : "lua");
	}
	lua_settop(L, base);
	drb_luai_leave(D);
	return rc;
}

int drb_lua_eval_bool(drb_lua *D, const char *expr, const char *chunkname, int *out, drb_err *err)
{
	lua_State *L = D->L;
	int base = lua_gettop(L), rc;

	*out = 0;
	drb_luai_enter(D);
	rc = drb_luai_expr_push(D, expr, strlen(expr), chunkname, err);
	if (rc)
		goto out;
	if (lua_isboolean(L, -1) || lua_isnil(L, -1)) {
		*out = lua_toboolean(L, -1);
		goto out;
	}
	rc = drb_err_set(err, DRB_ESCRIPT, "%s: expression '%.200s' must be a boolean, got %s",
			 chunkname ? chunkname : "lua", expr, luaL_typename(L, -1));
out:
	lua_settop(L, base);
	drb_luai_leave(D);
	return rc;
}

int drb_lua_run(drb_lua *D, const char *script, const char *chunkname, json_t **out, drb_err *err)
{
	lua_State *L = D->L;
	int base = lua_gettop(L), rc;

	if (out)
		*out = NULL;
	drb_luai_enter(D);
	rc = drb_luai_eval_push(D, script, strlen(script), chunkname, err);
	if (rc == 0 && out) {
		rc = drb_lua_to_json(L, -1, out, err);
		if (rc)
			drb_err_prefix(err, "%s: return value: ", chunkname ? chunkname : "lua");
	}
	lua_settop(L, base);
	drb_luai_leave(D);
	return rc;
}

static int sb_require_entry(lua_State *L)
{
	const char *module = lua_touserdata(L, 1);

	lua_getglobal(L, "require");
	lua_pushstring(L, module);
	lua_call(L, 1, 0);
	return 0;
}

int drb_lua_require(drb_lua *D, const char *module, drb_err *err)
{
	char where[192];
	int rc;

	snprintf(where, sizeof(where), "require '%.160s'", module);
	drb_luai_enter(D);
	rc = drb_luai_protect(D, sb_require_entry, (void *)module, where, err);
	drb_luai_leave(D);
	return rc;
}
