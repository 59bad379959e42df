/* Private to src/lua: the sandbox object and the one protected-entry path that every file of
 * the module uses (sandbox.c owns the state; convert.c, interpolate.c and actions.c only
 * borrow it). Nothing here is part of the public contract. */
#ifndef DRB_LUA_INTERNAL_H
#define DRB_LUA_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include <lua.h>
#include <lauxlib.h>

#include <drbook/lua.h>

enum {
	DRB_LUAI_LIMIT_NONE,
	DRB_LUAI_LIMIT_INSTR,
	DRB_LUAI_LIMIT_TIME,
	DRB_LUAI_LIMIT_CANCEL,  /* the run is being stopped (a signal) */
	DRB_LUAI_LIMIT_DEADLINE, /* the run's deadline passed */
	DRB_LUAI_LIMIT_STEP	 /* the step's time budget (drb_lua_set_step_deadline) ran out */
};

struct drb_lua {
	lua_State *L;
	pthread_mutex_t mu; /* recursive */
	/* allocator */
	size_t mem_limit, mem_used;
	int mem_hit; /* the allocator refused something during this entry */
	/* instruction budget and wall-clock guard, per entry */
	long long instr_limit, instr_count;
	double time_limit, deadline;
	int limit; /* DRB_LUAI_LIMIT_*: set by the hook, makes every later hook call raise */
	/* set from outside the Lua thread (drb_lua_opts): the run is being stopped, and the
	 * run's deadline (monotonic seconds, 0 none); the hook checks both */
	const volatile int *cancel;
	const volatile double *stop_at;
	double step_stop; /* mono seconds, 0 = none: set by the engine under the lock */
	int depth; /* nesting of entries: only the outermost resets the budget */
	/* the last action error raised into Lua, so its code survives the trip through Lua */
	int act_code;
	char act_msg[1024];
	char *lib_dir, *runbook_dir;
	void (*print)(void *ud, const char *line);
	void *print_ud;
	char trace[4096]; /* last failed entry: message and traceback */
	/* custom actions' schemas (drbook.action declarations), owned; freed with the state */
	struct drb_luai_schema {
		char *name;
		drb_action_schema *s;
	} * schemas;
	size_t n_schemas;
};

/* The sandbox that owns a lua_State (kept in the state's extra space). */
drb_lua *drb_luai_ctx(lua_State *L);

/* Charges n units of work to the entry's instruction budget (the count hook charges its
 * instructions through here too) and checks the wall-clock guard. Once either limit is hit
 * it raises "instruction limit exceeded" (or "time limit exceeded") and re-arms the hook so
 * that every later instruction raises again. For C code that loops on its own. */
void drb_luai_charge(lua_State *L, long long n);

/* Replaces find, match, gmatch and gsub in the string table at idx (also the strings'
 * __index) with patterns.c's copies of Lua's matcher, which charge their steps to the
 * budget; during setup. */
void drb_luai_open_patterns(lua_State *L, int idx);

/* Entries: enter resets the budget when it is the outermost one. */
void drb_luai_enter(drb_lua *D);
void drb_luai_leave(drb_lua *D);

/* Calls the function below the nargs arguments on top of the stack with a traceback
 * handler. On success the nres results replace function and arguments; on failure the
 * function and arguments are popped, err holds the message (DRB_ESCRIPT, DRB_ELIMIT or the
 * code of the action error that ended the script). where names the entry for limit
 * messages ("region.yaml:12:5"). */
int drb_luai_pcall(drb_lua *D, int nargs, int nres, const char *where, drb_err *err);

/* Runs fn(ud) under lua_pcall (fn gets ud as a light userdata at index 1, returns 0
 * results); for setup work that allocates in Lua and so may raise a memory error. */
int drb_luai_protect(drb_lua *D, lua_CFunction fn, void *ud, const char *where, drb_err *err);

/* Compiles text (mode "t") under chunkname and calls it; pushes its first result. On
 * failure nothing is pushed. */
int drb_luai_eval_push(drb_lua *D, const char *code, size_t len, const char *chunkname,
		       drb_err *err);
/* Same for an expression: wraps it as "return (" expr "\n)". */
int drb_luai_expr_push(drb_lua *D, const char *expr, size_t len, const char *chunkname,
		       drb_err *err);

/* print() and drbook.log(): one tab-separated line to the print callback. */
int drb_luai_print(lua_State *L);

/* A Lua-owned box for a C resource, so that a Lua error raised while a C function holds the
 * resource (a memory error in lua_push*) cannot leak it: __gc frees whatever p still holds.
 * Pushes the box; clear p (after freeing it yourself) on the normal path. */
typedef struct drb_luai_box {
	void *p;
	void (*fr)(void *);
} drb_luai_box;
drb_luai_box *drb_luai_own(lua_State *L, void (*fr)(void *));
void drb_luai_open_box(lua_State *L); /* registers the metatable; during setup */
void drb_luai_json_free(void *p);     /* json_decref for boxes */

/* Installs the global table `drbook` (action, log, json_encode, json_decode) and the
 * registry table of custom actions; during setup. */
void drb_luai_open_drbook(lua_State *L);

#endif
