/* ${expr} templates in a step's with: arguments. Walks objects and arrays; a string that is
 * exactly one ${expr} keeps the value's type, anything else is concatenated as text. The
 * whole template is one entry: one instruction budget for all its expressions. */
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include <drbook/util.h>

#include "internal.h"

#define STRING_MAX (1024 * 1024) /* an interpolated string longer than this is refused */

/* Finds the '}' closing the "${" at s[start] (start points at '$'), counting nested braces
 * and skipping '...' and "..." literals; returns its index or -1. */
static long ip_close(const char *s, size_t len, size_t start)
{
	int depth = 1;

	for (size_t j = start + 2; j < len; j++) {
		char c = s[j];

		if (c == '\'' || c == '"') {
			for (j++; j < len && s[j] != c; j++)
				if (s[j] == '\\' && j + 1 < len)
					j++;
			if (j >= len)
				return -1;
		} else if (c == '{') {
			depth++;
		} else if (c == '}' && --depth == 0) {
			return (long)j;
		}
	}
	return -1;
}

static int ip_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

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

static int ip_string(drb_lua *D, const char *s, size_t len, const char *chunk, json_t **out,
		     drb_err *err)
{
	drb_buf b;
	size_t i = 0, lit = 0;
	long end;
	int rc = 0;

	drb_buf_init(&b, STRING_MAX);
	/* exactly one ${expr} and nothing else: the value keeps its type */
	if (len >= 3 && s[0] == '$' && s[1] == '{' &&
	    (end = ip_close(s, len, 0)) == (long)len - 1) {
		if (ip_blank(s + 2, len - 3))
			rc = drb_err_set(err, DRB_EINVAL, "%s: empty expression '${}'", chunk);
		else
			rc = ip_whole(D, s + 2, len - 3, chunk, out, err);
		goto out;
	}
	while (i < len) {
		if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
			rc = drb_buf_append(&b, s + lit, i - lit);
			if (rc == 0)
				rc = drb_buf_puts(&b, "${");
			if (rc) {
				rc = ip_too_long(err, rc, chunk);
				goto out;
			}
			i += 3;
			lit = i;
		} else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			rc = drb_buf_append(&b, s + lit, i - lit);
			if (rc) {
				rc = ip_too_long(err, rc, chunk);
				goto out;
			}
			end = ip_close(s, len, i);
			if (end < 0) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "%s: unterminated '${' in '%.200s'", chunk, s);
				goto out;
			}
			if (ip_blank(s + i + 2, (size_t)end - i - 2)) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "%s: empty expression '${}' in "
						 "'%.200s'",
						 chunk, s);
				goto out;
			}
			rc = ip_text(D, s + i + 2, (size_t)end - i - 2, chunk, &b, err);
			if (rc)
				goto out;
			i = (size_t)end + 1;
			lit = i;
		} else {
			i++;
		}
	}
	rc = drb_buf_append(&b, s + lit, len - lit);
	if (rc) {
		rc = ip_too_long(err, rc, chunk);
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
