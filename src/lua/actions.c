/* Actions seen from Lua: the engine's actions as functions (aws.rds.x{...}, pg.query(c, sql)),
 * and the `drbook` table through which Lua modules register custom actions and use JSON.
 * Every C function here releases what it owns before raising (boxes cover memory errors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include <drbook/util.h>

#include "internal.h"

#define JSON_TEXT_MAX (8 * 1024 * 1024) /* json_encode/json_decode text bound */

/* registry[&customs_key] = { name = { mode = 0|1, fn = function } } */
static const char customs_key = 'C';

struct act_up {
	const drb_action *a;
	drb_lua_invoke_fn invoke;
	void *ud;
};

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.' && s[i + 1] == '.')
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* ---- Lua arguments -> the action's JSON arguments ---- */

static int act_args(lua_State *L, int n, const drb_action *a, json_t **out, drb_err *err)
{
	json_t *o = NULL, *v = NULL, *list = NULL;
	int rc = 0, i = 1;
	int named_only = !a->positional || !a->positional[0];

	*out = NULL;
	if (n == 1 && lua_type(L, 1) == LUA_TTABLE) {
		rc = drb_lua_to_json(L, 1, &o, err);
		if (rc || json_is_object(o))
			goto out;
		/* a list is a first positional argument (exec{"ls", "-l"} is argv) */
		json_decref(o);
		o = NULL;
	}
	if (n > 0 && named_only) {
		rc = drb_err_set(err, DRB_EINVAL, "expects one table of named arguments");
		goto out;
	}
	o = json_object();
	if (!o) {
		rc = DRB_ENOMEM;
		goto out;
	}
	for (int k = 0; i <= n && a->positional[k]; k++) {
		const char *name = a->positional[k];
		size_t len = strlen(name);

		if (len > 3 && strcmp(name + len - 3, "...") == 0) {
			list = json_array();
			if (!list) {
				rc = DRB_ENOMEM;
				goto out;
			}
			for (; i <= n; i++) {
				rc = drb_lua_to_json(L, i, &v, err);
				if (rc) {
					drb_err_prefix(err, "argument %d: ", i);
					goto out;
				}
				if (json_array_append_new(list, v) != 0) {
					rc = DRB_ENOMEM;
					goto out;
				}
			}
			rc = json_object_setn_new(o, name, len - 3, list) ? DRB_ENOMEM : 0;
			list = NULL; /* taken, even on failure */
			if (rc)
				goto out;
			break;
		}
		rc = drb_lua_to_json(L, i, &v, err);
		if (rc) {
			drb_err_prefix(err, "argument %d (%s): ", i, name);
			goto out;
		}
		if (json_is_null(v))
			json_decref(v); /* nil: the argument is absent */
		else if (json_object_set_new(o, name, v) != 0)
			rc = DRB_ENOMEM;
		if (rc)
			goto out;
		i++;
	}
	if (i <= n)
		rc = drb_err_set(err, DRB_EINVAL, "too many arguments (%d)", n);
out:
	if (rc == DRB_ENOMEM)
		drb_err_set(err, rc, "out of memory");
	if (rc == 0) {
		*out = o;
		o = NULL;
	}
	json_decref(list);
	json_decref(o);
	return rc;
}

/* The closure behind every registered action. */
static int act_call(lua_State *L)
{
	struct act_up *up = lua_touserdata(L, lua_upvalueindex(1));
	drb_lua *D = drb_luai_ctx(L);
	int n = lua_gettop(L), rc;
	size_t nl;
	json_t *args = NULL, *result = NULL;
	drb_err e = {0};
	drb_luai_box *box = NULL;
	double t0;

	luaL_checkstack(L, 4, "action call");
	box = drb_luai_own(L, drb_luai_json_free);
	rc = act_args(L, n, up->a, &args, &e);
	if (rc)
		goto out;
	box->p = args;
	t0 = drb_mono_now();
	rc = up->invoke(up->ud, up->a, args, &result, &e);
	/* The wall-clock guard is for the script's own work, not for the action's wait. */
	D->deadline += drb_mono_now() - t0;
	box->p = NULL;
	json_decref(args);
	if (rc) {
		json_decref(result);
		goto out;
	}
	box->p = result; /* if pushing raises a memory error, the box's __gc frees it */
	if (up->a->lua_returns)
		rc = drb_lua_push_json(L, json_object_get(result, up->a->lua_returns));
	else
		rc = drb_lua_push_json(L, result);
	box->p = NULL;
	json_decref(result);
	if (rc)
		drb_err_set(&e, rc, "result nested deeper than %d levels", DRB_LUA_MAX_DEPTH);
out:
	if (rc == 0)
		return 1;
	/* Nothing is owned any more; remember the code so the entry can report it. */
	D->act_code = e.code ? e.code : rc;
	/* the action's name once: most actions' messages already begin with it */
	nl = strlen(up->a->name);
	if (!strncmp(e.msg, up->a->name, nl) && e.msg[nl] == ':')
		snprintf(D->act_msg, sizeof(D->act_msg), "%s", e.msg);
	else
		snprintf(D->act_msg, sizeof(D->act_msg), "%s: %s", up->a->name, e.msg);
	lua_pushstring(L, D->act_msg);
	return lua_error(L);
}

struct reg_job {
	const drb_action *a;
	drb_lua_invoke_fn invoke;
	void *ud;
};

static int act_register(lua_State *L)
{
	struct reg_job *j = lua_touserdata(L, 1);
	const char *name = j->a->name, *dot = NULL;
	struct act_up *up = NULL;

	lua_pushglobaltable(L);
	while ((dot = strchr(name, '.')) != NULL) {
		lua_pushlstring(L, name, (size_t)(dot - name));
		lua_pushvalue(L, -1);
		lua_rawget(L, -3);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -2);
			lua_pushvalue(L, -2);
			lua_rawset(L, -5);
		} else if (!lua_istable(L, -1)) {
			return luaL_error(L, "cannot register action '%s': '%s' is a %s",
					  j->a->name, lua_tostring(L, -2), luaL_typename(L, -1));
		}
		lua_remove(L, -2); /* the key */
		lua_remove(L, -2); /* the parent */
		name = dot + 1;
	}
	lua_pushstring(L, name);
	up = lua_newuserdatauv(L, sizeof(*up), 0);
	up->a = j->a;
	up->invoke = j->invoke;
	up->ud = j->ud;
	lua_pushcclosure(L, act_call, 1);
	lua_rawset(L, -3);
	return 0;
}

int drb_lua_register_action(drb_lua *D, const drb_action *a, drb_lua_invoke_fn invoke, void *ud,
			    drb_err *err)
{
	struct reg_job j = {a, invoke, ud};
	int rc = 0;

	if (!a || !a->name || !name_ok(a->name) || !invoke) {
		rc = drb_err_set(err, DRB_EINVAL, "register action '%s': invalid name or no invoke",
				 a && a->name ? a->name : "(null)");
		goto out;
	}
	drb_luai_enter(D);
	rc = drb_luai_protect(D, act_register, &j, a->name, err);
	drb_luai_leave(D);
out:
	return rc;
}

/* ---- the drbook table ---- */

/* Parses and keeps a declaration's schema (the table at idx); raises on a bad one. */
static void keep_schema(lua_State *L, const char *name, int idx)
{
	drb_lua *D = drb_luai_ctx(L);
	struct drb_luai_schema *v;
	drb_action_schema *sch = NULL;
	json_t *decl = NULL;
	char *copy = NULL;
	drb_err e = {0};
	int rc;

	rc = drb_lua_to_json(L, idx, &decl, &e);
	if (rc == 0)
		rc = drb_action_schema_from_json(decl, &sch, &e);
	json_decref(decl);
	if (rc == 0) {
		v = realloc(D->schemas, (D->n_schemas + 1) * sizeof(*v));
		copy = strdup(name);
		if (v)
			D->schemas = v;
		if (!v || !copy) {
			free(copy);
			drb_action_schema_free(sch);
			luaL_error(L, "drbook.action '%s': out of memory", name);
			return;
		}
		D->schemas[D->n_schemas].name = copy;
		D->schemas[D->n_schemas].s = sch;
		D->n_schemas++;
		return;
	}
	luaL_error(L, "drbook.action '%s': %s", name, e.msg);
}

/* drbook.action(name, {mode = "ro"|"mut", doc, args, result, resource}, fn) */
static int db_action(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *mode = NULL;
	int m;

	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	if (!name_ok(name))
		return luaL_error(L, "drbook.action: invalid action name '%s'", name);
	lua_getfield(L, 2, "mode");
	mode = lua_tostring(L, -1);
	if (mode && strcmp(mode, "ro") == 0)
		m = 0;
	else if (mode && strcmp(mode, "mut") == 0)
		m = 1;
	else
		return luaL_error(L, "drbook.action '%s': mode must be \"ro\" or \"mut\"", name);
	lua_pop(L, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &customs_key);
	lua_getfield(L, -1, name);
	if (!lua_isnil(L, -1))
		return luaL_error(L, "drbook.action: action '%s' is already registered", name);
	lua_pop(L, 1);
	keep_schema(L, name, 2);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, m);
	lua_setfield(L, -2, "mode");
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, "fn");
	lua_setfield(L, -2, name);
	return 0;
}

static int db_json_encode(lua_State *L)
{
	drb_luai_box *box = NULL;
	json_t *j = NULL;
	char *s = NULL;
	drb_err e = {0};
	size_t n;

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	box = drb_luai_own(L, free); /* before s exists: creating it may raise */
	if (drb_lua_to_json(L, 1, &j, &e) != 0)
		return luaL_error(L, "drbook.json_encode: %s", e.msg);
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return luaL_error(L, "drbook.json_encode: out of memory");
	n = strlen(s);
	if (n > JSON_TEXT_MAX) {
		free(s);
		return luaL_error(L, "drbook.json_encode: text longer than %d bytes",
				  JSON_TEXT_MAX);
	}
	box->p = s; /* if pushing raises a memory error, the box's __gc frees s */
	lua_pushlstring(L, s, n);
	box->p = NULL;
	free(s);
	return 1;
}

static int db_json_decode(lua_State *L)
{
	size_t n = 0;
	const char *s = luaL_checklstring(L, 1, &n);
	drb_luai_box *box = NULL;
	json_error_t je;
	json_t *j = NULL;
	int rc;

	if (n > JSON_TEXT_MAX)
		return luaL_error(L, "drbook.json_decode: text longer than %d bytes",
				  JSON_TEXT_MAX);
	box = drb_luai_own(L, drb_luai_json_free);
	j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j)
		return luaL_error(L, "drbook.json_decode: %s (line %d, column %d)", je.text,
				  je.line, je.column);
	box->p = j;
	rc = drb_lua_push_json(L, j);
	box->p = NULL;
	json_decref(j);
	if (rc)
		return luaL_error(L, "drbook.json_decode: nesting deeper than %d levels",
				  DRB_LUA_MAX_DEPTH);
	return 1;
}

void drb_luai_open_drbook(lua_State *L)
{
	static const luaL_Reg fns[] = {{"action", db_action},
				       {"log", drb_luai_print},
				       {"json_encode", db_json_encode},
				       {"json_decode", db_json_decode},
				       {NULL, NULL}};

	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &customs_key);
	luaL_newlib(L, fns);
	lua_setglobal(L, "drbook");
}

/* ---- custom actions from C ---- */

struct custom_job {
	const char *name;
	const json_t *args;
	int mode;
	int rc;
};

static int custom_lookup(lua_State *L)
{
	struct custom_job *j = lua_touserdata(L, 1);

	j->mode = -1;
	lua_rawgetp(L, LUA_REGISTRYINDEX, &customs_key);
	lua_getfield(L, -1, j->name);
	if (!lua_istable(L, -1))
		return 0;
	lua_getfield(L, -1, "mode");
	j->mode = (int)lua_tointeger(L, -1);
	return 0;
}

const drb_action_schema *drb_lua_custom_schema(drb_lua *D, const char *name)
{
	const drb_action_schema *s = NULL;

	drb_lua_lock(D);
	for (size_t i = 0; i < D->n_schemas && !s; i++)
		if (!strcmp(D->schemas[i].name, name))
			s = D->schemas[i].s;
	drb_lua_unlock(D);
	return s;
}

int drb_lua_custom_mode(drb_lua *D, const char *name)
{
	struct custom_job j = {name, NULL, -1, 0};
	drb_err e = {0};
	int rc;

	drb_luai_enter(D);
	rc = drb_luai_protect(D, custom_lookup, &j, name, &e);
	drb_luai_leave(D);
	return rc ? -1 : j.mode;
}

static int custom_run(lua_State *L)
{
	struct custom_job *j = lua_touserdata(L, 1);

	lua_rawgetp(L, LUA_REGISTRYINDEX, &customs_key);
	lua_getfield(L, -1, j->name);
	lua_getfield(L, -1, "fn");
	if (drb_lua_push_json(L, j->args) != 0)
		return luaL_error(L, "arguments nested deeper than %d levels", DRB_LUA_MAX_DEPTH);
	lua_call(L, 1, 1);
	return 1;
}

int drb_lua_call_custom(drb_lua *D, const char *name, const json_t *args, json_t **result,
			drb_err *err)
{
	lua_State *L = D->L;
	struct custom_job j = {name, args, -1, 0};
	char where[192];
	int base = lua_gettop(L), rc = 0;

	*result = NULL;
	snprintf(where, sizeof(where), "action %.160s", name);
	drb_luai_enter(D);
	if (drb_lua_custom_mode(D, name) < 0) {
		rc = drb_err_set(err, DRB_ENOTFOUND, "custom action '%s' is not registered", name);
		goto out;
	}
	if (!lua_checkstack(L, 4)) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: Lua stack overflow", where);
		goto out;
	}
	lua_pushcfunction(L, custom_run);
	lua_pushlightuserdata(L, &j);
	rc = drb_luai_pcall(D, 1, 1, where, err);
	if (rc)
		goto out;
	rc = drb_lua_to_json(L, -1, result, err);
	if (rc)
		drb_err_prefix(err, "%s: result: ", where);
out:
	lua_settop(L, base);
	drb_luai_leave(D);
	return rc;
}
