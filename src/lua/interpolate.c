/* ${expr} templates in a step's with: arguments. Walks objects and arrays; a string that is
 * exactly one ${expr} keeps the value's type, anything else is concatenated as text. The
 * whole template is one entry: one instruction budget for all its expressions. Where an
 * expression ends is decided by core's template scanner (luatext.c), shared with validate. */
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include <drbook/luatext.h>
#include <drbook/util.h>

#include "internal.h"

#define STRING_MAX (1024 * 1024) /* an interpolated string longer than this is refused */

/* Evaluates one expression and appends its text to b. */
static int ip_text(drb_lua *D, const char *expr, size_t n, const char *chunk, drb_buf *b,
		   drb_err *err)
{
	lua_State *L = D->L;
	int base = lua_gettop(L), rc = 0;
	const char *s = NULL;
	size_t sn = 0;

	rc = drb_luai_expr_push(D, expr, n, chunk, err);
	if (rc) {
		drb_err_prefix(err, "expression '%.*s': ", (int)(n > 200 ? 200 : n), expr);
		goto out;
	}
	switch (lua_type(L, -1)) {
	case LUA_TSTRING:
		s = lua_tolstring(L, -1, &sn);
		rc = drb_buf_append(b, s, sn);
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, -1))
			rc = drb_buf_printf(b, "%lld", (long long)lua_tointeger(L, -1));
		else
			rc = drb_buf_printf(b, "%.14g", (double)lua_tonumber(L, -1));
		break;
	case LUA_TBOOLEAN:
		rc = drb_buf_puts(b, lua_toboolean(L, -1) ? "true" : "false");
		break;
	case LUA_TNIL:
		rc = drb_err_set(err, DRB_ESCRIPT, "%s: expression '%.*s' is nil in a string",
				 chunk, (int)(n > 200 ? 200 : n), expr);
		goto out;
	default:
		rc = drb_err_set(err, DRB_ESCRIPT,
				 "%s: expression '%.*s' is a %s in a string (only a whole-value "
				 "${...} keeps a table)",
				 chunk, (int)(n > 200 ? 200 : n), expr, luaL_typename(L, -1));
		goto out;
	}
	if (rc)
		rc = drb_err_set(err, rc, "%s: interpolated string longer than %d bytes", chunk,
				 STRING_MAX);
out:
	lua_settop(L, base);
	return rc;
}

/* Evaluates a whole-value expression, keeping its type. */
static int ip_whole(drb_lua *D, const char *expr, size_t n, const char *chunk, json_t **out,
		    drb_err *err)
{
	lua_State *L = D->L;
	int base = lua_gettop(L), rc;

	int shown = (int)(n > 200 ? 200 : n);

	rc = drb_luai_expr_push(D, expr, n, chunk, err);
	if (rc) {
		/* Lua's message already starts with the chunk name */
		drb_err_prefix(err, "expression '%.*s': ", shown, expr);
		goto out;
	}
	rc = drb_lua_to_json(L, -1, out, err);
	if (rc)
		drb_err_prefix(err, "%s: expression '%.*s': ", chunk, shown, expr);
out:
	lua_settop(L, base);
	return rc;
}

static int ip_too_long(drb_err *err, int rc, const char *chunk)
{
	return drb_err_set(err, rc, "%s: interpolated string longer than %d bytes", chunk,
			   STRING_MAX);
}

/* The parts come from the one template scanner (core's luatext.c), the same that validate
 * uses, so a template that validates is split here exactly as it was checked. */
static int ip_string(drb_lua *D, const char *s, size_t len, const char *chunk, json_t **out,
		     drb_err *err)
{
	drb_buf b;
	drb_tmpl t;
	drb_tmpl_part part;
	const char *expr;
	size_t n;
	int rc = 0, more;

	drb_buf_init(&b, STRING_MAX);
	/* exactly one ${expr} and nothing else: the value keeps its type */
	if (drb_tmpl_whole(s, len, &expr, &n)) {
		rc = ip_whole(D, expr, n, chunk, out, err);
		goto out;
	}
	drb_tmpl_init(&t, s, len);
	while ((more = drb_tmpl_next(&t, &part)) == 1) {
		if (part.expr) {
			rc = ip_text(D, part.p, part.n, chunk, &b, err);
			if (rc)
				goto out;
		} else if ((rc = drb_buf_append(&b, part.p, part.n)) != 0) {
			rc = ip_too_long(err, rc, chunk);
			goto out;
		}
	}
	if (more < 0) {
		rc = part.error == DRB_TMPL_EMPTY
			 ? drb_err_set(err, DRB_EINVAL, "%s: empty expression '${}' in '%.200s'",
				       chunk, s)
			 : drb_err_set(err, DRB_EINVAL, "%s: unterminated '${' in '%.200s'", chunk,
				       s);
		goto out;
	}
	*out = json_stringn(b.p ? b.p : "", b.len);
	if (!*out)
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: interpolated string is not valid UTF-8 "
				 "('%.200s')",
				 chunk, s);
out:
	drb_buf_free(&b);
	return rc;
}

static int ip_value(drb_lua *D, const json_t *t, const char *chunk, json_t **out, drb_err *err,
		    int depth)
{
	json_t *r = NULL, *v = NULL, *item = NULL;
	const char *k = NULL;
	size_t i, kn = 0;
	int rc = 0;

	*out = NULL;
	if (depth > DRB_LUA_MAX_DEPTH) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: template nested deeper than %d levels",
				 chunk, DRB_LUA_MAX_DEPTH);
		goto out;
	}
	switch (json_typeof(t)) {
	case JSON_OBJECT:
		r = json_object();
		if (!r) {
			rc = DRB_ENOMEM;
			goto out;
		}
		json_object_keylen_foreach((json_t *)t, k, kn, item)
		{
			rc = ip_value(D, item, chunk, &v, err, depth + 1);
			/* setn_new takes v even when it fails */
			if (rc == 0 && json_object_setn_new(r, k, kn, v) != 0)
				rc = DRB_ENOMEM;
			if (rc)
				goto out;
		}
		break;
	case JSON_ARRAY:
		r = json_array();
		if (!r) {
			rc = DRB_ENOMEM;
			goto out;
		}
		json_array_foreach(t, i, item)
		{
			rc = ip_value(D, item, chunk, &v, err, depth + 1);
			if (rc == 0 && json_array_append_new(r, v) != 0)
				rc = DRB_ENOMEM;
			if (rc)
				goto out;
		}
		break;
	case JSON_STRING:
		rc = ip_string(D, json_string_value(t), json_string_length(t), chunk, &r, err);
		break;
	default:
		r = json_deep_copy(t);
		if (!r)
			rc = DRB_ENOMEM;
		break;
	}
	if (rc == 0) {
		*out = r;
		r = NULL;
	}
out:
	if (rc == DRB_ENOMEM)
		drb_err_set(err, rc, "out of memory");
	json_decref(r);
	return rc;
}

int drb_lua_interpolate(drb_lua *D, const json_t *tmpl, const char *chunkname, json_t **out,
			drb_err *err)
{
	int rc = 0;

	*out = NULL;
	if (!chunkname || !*chunkname)
		chunkname = "with";
	if (!tmpl) {
		*out = json_null();
		goto out;
	}
	drb_luai_enter(D);
	rc = ip_value(D, tmpl, chunkname, out, err, 0);
	drb_luai_leave(D);
out:
	return rc;
}
