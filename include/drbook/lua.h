/* The Lua 5.4 sandbox: one state per run. Only base (without dofile, loadfile and binary
 * load), table, string, math and utf8; print goes to a callback; require loads modules from
 * the project's lua/ folder and the runbook's own folder only. A count hook enforces an
 * instruction budget per entry (re-armed so a script's own pcall cannot swallow it) and the
 * allocator enforces a memory cap. Every entry is a protected call with a traceback handler;
 * errors come back as DRB_ESCRIPT (or DRB_ELIMIT for the limits) with the message in err.
 * setmetatable refuses __gc (Lua runs finalizers with hooks off, outside the budget).
 * The pattern functions (find, match, gmatch, gsub) are a vendored copy of Lua's matcher that
 * charges its steps to the same budget (src/lua/patterns.c), so a pathological pattern is
 * stopped like a loop. Entries take the state's recursive lock themselves; callers
 * that need several entries to stay together hold drb_lua_lock. */
#ifndef DRBOOK_LUA_H
#define DRBOOK_LUA_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/error.h>

typedef struct lua_State lua_State;
typedef struct drb_lua drb_lua;

typedef struct drb_lua_opts {
	size_t mem_limit;        /* bytes; 0 = default 64 MiB */
	long long instr_limit;   /* VM instructions per entry; 0 = default 50 million */
	const char *lib_dir;     /* the project's lua/ folder, or NULL */
	const char *runbook_dir; /* the runbook's folder, or NULL */
	/* Where print() and the log helper go (one line each); NULL = discarded. */
	void (*print)(void *ud, const char *line);
	void *print_ud;
	/* Wall-clock guard per entry, a second line behind the instruction budget; time spent
	 * inside actions (invoke) does not count. 0 = default 10 s. */
	double time_limit;
	/* Set from outside the Lua thread: *cancel != 0 (a signal) or *stop_at passed (the run's
	 * deadline, monotonic seconds, 0 = none) ends any running Lua at its next budget check
	 * (every 1000 instructions). Both may be NULL. */
	const volatile int *cancel;
	const volatile double *stop_at;
} drb_lua_opts;

/* Containers nested deeper than this are refused by every conversion (DRB_ELIMIT). */
#define DRB_LUA_MAX_DEPTH 64
/* A Lua value converted to JSON (a step result, with: arguments, an expression's value) may
 * take at most this many bytes of text, counting each reference to a string or table again:
 * the copy lives outside the Lua memory cap. Larger values are refused (DRB_ELIMIT). */
#define DRB_LUA_JSON_MAX (16 * 1024 * 1024)

int drb_lua_new(drb_lua **out, const drb_lua_opts *opts, drb_err *err);
void drb_lua_free(drb_lua *L); /* NULL is fine */

/* Serialises access from several threads (a recursive mutex). Every entry below also takes
 * it for its own duration; hold it yourself to keep several entries together. */
void drb_lua_lock(drb_lua *L);
void drb_lua_unlock(drb_lua *L);

/* The time budget of the step whose Lua runs now (monotonic seconds, 0 = none): any entry
 * (script, expression, custom action) past it ends with DRB_ETIMEOUT "the step's time budget
 * ran out", like the run's deadline. Returns the previous value, for the caller to put back;
 * hold drb_lua_lock around the set, the entries and the reset. */
double drb_lua_set_step_deadline(drb_lua *L, double at);

/* Sets a global from JSON (params, drill...). Objects become tables, arrays sequences
 * (1-based), null nil. */
int drb_lua_set_global(drb_lua *L, const char *name, const json_t *v, drb_err *err);
/* steps.<id>.result = v (and steps.<id>.status = status when not NULL). */
int drb_lua_set_step(drb_lua *L, const char *id, const char *status, const json_t *result,
		     drb_err *err);
/* The global `result` (NULL clears it). */
int drb_lua_set_result(drb_lua *L, const json_t *result, drb_err *err);

/* Evaluates an expression (as drb_expr_wrap's "return (" expr "\n)") and converts the value to JSON (*out the
 * caller's; nil becomes json null). chunkname names the place ("region.yaml:12:5"). */
int drb_lua_eval(drb_lua *L, const char *expr, const char *chunkname, json_t **out,
		 drb_err *err);
/* Same, and the value must be a boolean (nil counts as false; any other type is
 * DRB_ESCRIPT "must be a boolean"). */
int drb_lua_eval_bool(drb_lua *L, const char *expr, const char *chunkname, int *out,
		      drb_err *err);
/* Runs a chunk (a lua step's script); its return value, if any, becomes *out (or null). */
int drb_lua_run(drb_lua *L, const char *script, const char *chunkname, json_t **out,
		drb_err *err);
/* Interpolates a with: template: every string holding ${expr} is evaluated; a string that is
 * exactly one ${expr} keeps the value's type, otherwise values are concatenated as text
 * (integers as such, floats with %.14g, booleans as true/false; nil or a table inside text is
 * DRB_ESCRIPT naming the expression). Templates are split by core's drb_tmpl_next, the
 * scanner validate uses ("$${" is a literal "${"; Lua strings and comments inside ${...} are
 * skipped, braces nest). Objects (values only, not keys) and arrays are walked;
 * an unterminated or empty ${} is DRB_EINVAL. The template is one entry (one budget).
 * *out is the caller's. */
int drb_lua_interpolate(drb_lua *L, const json_t *tmpl, const char *chunkname, json_t **out,
			drb_err *err);

/* Loads the runbook's modules with require(name) in order. Names are [A-Za-z0-9_.]+ (dots
 * are folders), looked up as <lib_dir>/<name>.lua then <runbook_dir>/<name>.lua (text only,
 * at most 1 MiB), cached; io, os, debug, package and coroutine are refused. */
int drb_lua_require(drb_lua *L, const char *module, drb_err *err);

/* Makes actions callable from Lua: "aws.rds.promote_read_replica" becomes the function
 * aws.rds.promote_read_replica{...}. Calls go through invoke (the engine), which applies
 * the read-only rule and the audit seam. */
typedef int (*drb_lua_invoke_fn)(void *ud, const drb_action *a, const json_t *args,
				 json_t **result, drb_err *err);
/* Arguments: one table -> that object; otherwise a->positional names them (a name ending in
 * "..." collects the rest into a list); no arguments -> {}. invoke runs with the Lua lock
 * held; its *result (may stay NULL = nil) is taken and freed here. An error from invoke
 * becomes the Lua error "a->name: message" (a script can pcall it); when it ends the entry
 * uncaught, the entry returns invoke's code (e.g. DRB_ETRANSIENT) rather than DRB_ESCRIPT.
 * Time spent in invoke does not count against the wall-clock guard. a and ud are borrowed
 * and must outlive the state. */
int drb_lua_register_action(drb_lua *L, const drb_action *a, drb_lua_invoke_fn invoke,
			    void *ud, drb_err *err);

/* Lua values <-> JSON for the engine and tests. Tables with keys 1..n only are arrays
 * (holes become null when at least half of 1..n is present; sparser tables are refused),
 * empty tables are objects, string keys objects; mixed keys, functions, userdata, NaN and
 * infinities, invalid UTF-8 and cycles are refused (DRB_EINVAL), nesting deeper than
 * DRB_LUA_MAX_DEPTH or larger than DRB_LUA_JSON_MAX too (DRB_ELIMIT). to_json never raises
 * a Lua error. */
int drb_lua_to_json(lua_State *L, int idx, json_t **out, drb_err *err);
/* Pushes exactly one value (0), or nothing (DRB_ELIMIT: too deep). JSON null is nil, so
 * nulls inside arrays leave holes. May raise a Lua memory error: call it from a C function
 * running under lua_pcall. */
int drb_lua_push_json(lua_State *L, const json_t *v);

/* Custom actions written in Lua: a module calls drbook.action(name, decl, fn) with fn(args) ->
 * result table and decl = {mode = "ro"|"mut", doc = "...", resource = "ARG",
 * args = {NAME = {type = "string", required = true, default = ..., enum = {...}, doc = "..."}},
 * result = {NAME = {type = "int", doc = "..."}}} (drb_action_schema_from_json; a bad
 * declaration raises at require). mode() answers like drb_load_opts.action_mode (-1
 * unknown). */
int drb_lua_custom_mode(drb_lua *L, const char *name);
/* The declared schema of a custom action (open when it declared no args), NULL when no such
 * action. Borrowed: valid until drb_lua_free. */
const drb_action_schema *drb_lua_custom_schema(drb_lua *L, const char *name);
/* Calls the custom action with args converted to a table; *result is the caller's (null when
 * fn returns nil). DRB_ENOTFOUND when no such action is registered. The mode is not checked
 * here: the engine applies the read-only rule. */
int drb_lua_call_custom(drb_lua *L, const char *name, const json_t *args, json_t **result,
			drb_err *err);

lua_State *drb_lua_state(drb_lua *L); /* borrowed; for bindings and tests */

/* The full message and stack traceback of the last failed entry ("" when none); borrowed,
 * valid until the next entry. err->msg holds only the message. */
const char *drb_lua_last_traceback(drb_lua *L);

#endif
