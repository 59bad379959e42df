/* Lua values <-> JSON (jansson), and the Lua-owned box that keeps C resources from leaking
 * when a Lua error interrupts a C function. to_json only reads the state and never raises;
 * push_json allocates in Lua and so must run under a protected call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "internal.h"

#define BOX_META "drbook.owned"

/* ---- Lua -> JSON ---- */

struct tj_path {
	const void *t[DRB_LUA_MAX_DEPTH + 1];
	int n;
	size_t size; /* bytes charged so far: each string, key and value, each time it is seen */
};

/* A value costs its text plus this much for its jansson node: the JSON copy of a table that
 * holds one large string many times is as large as all the copies, so the charge counts
 * every reference again. */
#define TJ_NODE 32

static int tj_charge(struct tj_path *path, size_t n, drb_err *err)
{
	if (n > DRB_LUA_JSON_MAX - path->size || TJ_NODE > DRB_LUA_JSON_MAX - path->size - n)
		return drb_err_set(err, DRB_ELIMIT,
				   "the value is too large to convert to JSON: over %d MiB (each "
				   "reference to a string or table counts again)",
				   DRB_LUA_JSON_MAX / (1024 * 1024));
	path->size += n + TJ_NODE;
	return 0;
}

static int tj_value(lua_State *L, int idx, json_t **out, drb_err *err, struct tj_path *path);

/* Counts keys: *nint positive integer keys (largest *max), *nstr string keys. */
static int tj_scan(lua_State *L, int idx, lua_Integer *max, size_t *nint, size_t *nstr,
		   drb_err *err)
{
	*max = 0;
	*nint = *nstr = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int kt = lua_type(L, -2);

		if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
			lua_Integer k = lua_tointeger(L, -2);

			(*nint)++;
			if (k > *max)
				*max = k;
		} else if (kt == LUA_TSTRING) {
			(*nstr)++;
		} else {
			const char *tn = lua_typename(L, kt);

			lua_pop(L, 2);
			return drb_err_set(err, DRB_EINVAL,
					   "a table key of type %s cannot be converted to JSON"
					   "%s",
					   tn, kt == LUA_TNUMBER ? " (only 1..n)" : "");
		}
		lua_pop(L, 1);
	}
	return 0;
}

static int tj_array(lua_State *L, int idx, lua_Integer max, json_t **out, drb_err *err,
		    struct tj_path *path)
{
	json_t *a = json_array(), *v = NULL;
	int rc = 0;

	if (!a) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	for (lua_Integer i = 1; i <= max; i++) {
		lua_rawgeti(L, idx, i);
		rc = tj_value(L, -1, &v, err, path);
		lua_pop(L, 1);
		if (rc)
			goto out;
		if (json_array_append_new(a, v) != 0) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
	}
	*out = a;
	a = NULL;
out:
	json_decref(a);
	return rc;
}

static int tj_object(lua_State *L, int idx, json_t **out, drb_err *err, struct tj_path *path)
{
	json_t *o = json_object(), *v = NULL;
	int rc = 0;

	if (!o) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t kn = 0;
		/* keys are strings (checked by tj_scan): lua_tolstring does not convert them */
		const char *k = lua_tolstring(L, -2, &kn);

		rc = tj_charge(path, kn, err);
		if (rc == 0)
			rc = tj_value(L, -1, &v, err, path);
		if (rc == 0 && json_object_setn_new(o, k, kn, v) != 0)
			rc = drb_err_set(err, DRB_EINVAL, "a table key is not valid UTF-8");
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			drb_err_prefix(err, "key '%.64s': ", k);
			goto out;
		}
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	return rc;
}

static int tj_table(lua_State *L, int idx, json_t **out, drb_err *err, struct tj_path *path)
{
	const void *me = lua_topointer(L, idx);
	lua_Integer max = 0;
	size_t nint = 0, nstr = 0;
	int rc = 0;

	for (int i = 0; i < path->n; i++)
		if (path->t[i] == me)
			return drb_err_set(err, DRB_EINVAL,
					   "a table that contains itself (a cycle) "
					   "cannot be converted to JSON");
	if (path->n >= DRB_LUA_MAX_DEPTH)
		return drb_err_set(err, DRB_ELIMIT, "tables nested deeper than %d levels",
				   DRB_LUA_MAX_DEPTH);
	if (!lua_checkstack(L, 4))
		return drb_err_set(err, DRB_ELIMIT, "Lua stack exhausted while converting");
	rc = tj_scan(L, idx, &max, &nint, &nstr, err);
	if (rc)
		return rc;
	if (nint && nstr)
		return drb_err_set(err, DRB_EINVAL,
				   "a table with both integer and string keys "
				   "cannot be converted to JSON");
	/* Holes (from JSON nulls) are fine, a huge index with a few values is not. */
	if (nint && (size_t)max > 2 * nint)
		return drb_err_set(err, DRB_EINVAL,
				   "a sparse array (largest index %lld, %zu "
				   "values) cannot be converted to JSON",
				   (long long)max, nint);
	path->t[path->n++] = me;
	rc = nint ? tj_array(L, idx, max, out, err, path) : tj_object(L, idx, out, err, path);
	path->n--;
	return rc;
}

static int tj_value(lua_State *L, int idx, json_t **out, drb_err *err, struct tj_path *path)
{
	json_t *v = NULL;
	size_t n = 0;
	const char *s = NULL;
	double d;

	*out = NULL;
	idx = lua_absindex(L, idx);
	if (lua_type(L, idx) == LUA_TSTRING)
		(void)lua_tolstring(L, idx, &n);
	if (tj_charge(path, n, err))
		return DRB_ELIMIT;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		v = json_null();
		break;
	case LUA_TBOOLEAN:
		v = json_boolean(lua_toboolean(L, idx));
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			v = json_integer((json_int_t)lua_tointeger(L, idx));
			break;
		}
		d = lua_tonumber(L, idx);
		if (!isfinite(d))
			return drb_err_set(err, DRB_EINVAL, "%s cannot be converted to JSON",
					   isnan(d) ? "NaN" : "an infinite number");
		v = json_real(d);
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &n);
		v = json_stringn(s, n);
		if (!v)
			return drb_err_set(err, DRB_EINVAL,
					   "a string that is not valid UTF-8 cannot "
					   "be converted to JSON");
		break;
	case LUA_TTABLE:
		return tj_table(L, idx, out, err, path);
	default:
		return drb_err_set(err, DRB_EINVAL, "a %s value cannot be converted to JSON",
				   luaL_typename(L, idx));
	}
	if (!v)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	*out = v;
	return 0;
}

int drb_lua_to_json(lua_State *L, int idx, json_t **out, drb_err *err)
{
	struct tj_path path;

	path.n = 0;
	path.size = 0;
	*out = NULL;
	return tj_value(L, idx, out, err, &path);
}

/* ---- JSON -> Lua ---- */

static int pj_value(lua_State *L, const json_t *v, int depth)
{
	const char *k = NULL;
	json_t *item = NULL;
	size_t i, kn = 0;
	int rc;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
		if (depth >= DRB_LUA_MAX_DEPTH)
			return DRB_ELIMIT;
		luaL_checkstack(L, 3, "JSON value nested too deeply");
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_keylen_foreach((json_t *)v, k, kn, item)
		{
			if (json_is_null(item))
				continue; /* nil: no key at all */
			lua_pushlstring(L, k, kn);
			rc = pj_value(L, item, depth + 1);
			if (rc) {
				lua_pop(L, 2);
				return rc;
			}
			lua_rawset(L, -3);
		}
		return 0;
	case JSON_ARRAY:
		if (depth >= DRB_LUA_MAX_DEPTH)
			return DRB_ELIMIT;
		luaL_checkstack(L, 3, "JSON value nested too deeply");
		lua_createtable(L, (int)json_array_size(v), 0);
		json_array_foreach(v, i, item)
		{
			if (json_is_null(item))
				continue; /* a hole */
			rc = pj_value(L, item, depth + 1);
			if (rc) {
				lua_pop(L, 1);
				return rc;
			}
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		return 0;
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		return 0;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		lua_pushboolean(L, json_is_true(v));
		return 0;
	case JSON_NULL:
	default:
		lua_pushnil(L);
		return 0;
	}
}

int drb_lua_push_json(lua_State *L, const json_t *v)
{
	int top = lua_gettop(L);
	int rc = pj_value(L, v, 0);

	if (rc)
		lua_settop(L, top);
	return rc;
}

/* ---- boxes ---- */

static int box_gc(lua_State *L)
{
	drb_luai_box *b = luaL_checkudata(L, 1, BOX_META);

	if (b->p && b->fr)
		b->fr(b->p);
	b->p = NULL;
	return 0;
}

void drb_luai_open_box(lua_State *L)
{
	luaL_newmetatable(L, BOX_META);
	lua_pushcfunction(L, box_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

drb_luai_box *drb_luai_own(lua_State *L, void (*fr)(void *))
{
	drb_luai_box *b = lua_newuserdatauv(L, sizeof(*b), 0);

	b->p = NULL;
	b->fr = fr;
	luaL_setmetatable(L, BOX_META);
	return b;
}

void drb_luai_json_free(void *p)
{
	json_decref(p);
}
