/* Small pieces the loader's checks are built from: the diagnostics list, compiling Lua
 * expressions and chunks without running them, and the ${ } scanner (the edit distance
 * that suggests the key a user probably meant is drb_edit_distance in core). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "runbook_int.h"

void drb_diags_init(drb_diags *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->path = path ? strdup(path) : NULL;
}

void drb_diags_add(drb_diags *d, drb_pos pos, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	msg = malloc((size_t)n + 1);
	if (!msg)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		drb_diag *v = realloc(d->v, nc * sizeof(*v));

		if (!v) {
			free(msg);
			return;
		}
		d->v = v;
		d->cap = nc;
	}
	d->v[d->n].pos = pos;
	d->v[d->n].msg = msg;
	d->n++;
}

static int pos_before(drb_pos a, drb_pos b)
{
	return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* Stable merge sort: qsort is not stable, and diagnostics at the same place keep the order
 * in which the checks found them. */
void drb_diags_sort(drb_diags *d)
{
	drb_diag *tmp = NULL;

	if (d->n < 2)
		return;
	tmp = malloc(d->n * sizeof(*tmp));
	if (!tmp)
		return;
	for (size_t w = 1; w < d->n; w *= 2) {
		for (size_t lo = 0; lo < d->n; lo += 2 * w) {
			size_t mid = lo + w < d->n ? lo + w : d->n;
			size_t hi = lo + 2 * w < d->n ? lo + 2 * w : d->n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				tmp[k++] =
				    pos_before(d->v[j].pos, d->v[i].pos) ? d->v[j++] : d->v[i++];
			while (i < mid)
				tmp[k++] = d->v[i++];
			while (j < hi)
				tmp[k++] = d->v[j++];
		}
		memcpy(d->v, tmp, d->n * sizeof(*tmp));
	}
	free(tmp);
}

void drb_diags_print(const drb_diags *d, void *file)
{
	FILE *f = file;
	drb_diags copy = *d;

	/* sort a copy of the index so a const list prints in order too */
	copy.v = malloc(d->n * sizeof(*copy.v) + 1);
	if (copy.v) {
		memcpy(copy.v, d->v, d->n * sizeof(*copy.v));
		drb_diags_sort(&copy);
	} else {
		copy.v = d->v;
	}
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%s:%d:%d: %s\n", d->path ? d->path : "-", copy.v[i].pos.line,
			copy.v[i].pos.col, copy.v[i].msg);
	if (copy.v != d->v)
		free(copy.v);
}

void drb_diags_free(drb_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

/* Compiles in L (a bare state: no libraries are needed to compile, and nothing is ever run
 * in it), or in a state of its own when L is NULL. The compiled function is dropped. */
static int compile(lua_State *L, const char *src, size_t len, const char *chunkname, drb_err *err)
{
	lua_State *own = L ? NULL : luaL_newstate();
	int rc = 0, top;

	if (!L)
		L = own;
	if (!L)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	top = lua_gettop(L);
	if (luaL_loadbufferx(L, src, len, chunkname, "t") != LUA_OK) {
		const char *m = lua_tostring(L, -1);

		rc = drb_err_set(err, DRB_EINVAL, "%s", m ? m : "cannot compile");
	}
	lua_settop(L, top);
	if (own)
		lua_close(own);
	return rc;
}

int drb_check_expr_in(lua_State *L, const char *src, drb_err *err)
{
	drb_buf b;
	int rc = 0;

	drb_buf_init(&b, (size_t)DRB_RUNBOOK_MAX_BYTES + 64);
	/* exactly what the engine evaluates, so "1) x = (2" cannot sneak a statement in */
	if (drb_buf_puts(&b, "return (") || drb_buf_puts(&b, src) || drb_buf_puts(&b, ")")) {
		rc = drb_err_set(err, DRB_ELIMIT, "expression too long");
		goto out;
	}
	rc = compile(L, b.p, b.len, "=expression", err);
out:
	drb_buf_free(&b);
	return rc;
}

int drb_check_chunk_in(lua_State *L, const char *src, drb_err *err)
{
	return compile(L, src, strlen(src), "=script", err);
}

int drb_runbook_check_expr(const char *src, drb_err *err)
{
	return drb_check_expr_in(NULL, src, err);
}

int drb_runbook_check_chunk(const char *src, drb_err *err)
{
	return drb_check_chunk_in(NULL, src, err);
}

/* Skips a Lua string literal starting at s[i] (a quote or a long bracket); returns the index
 * after it, or 0 when it is not closed. */
static size_t skip_lua_string(const char *s, size_t i)
{
	char q = s[i];

	if (q == '"' || q == '\'') {
		for (i++; s[i]; i++) {
			if (s[i] == '\\' && s[i + 1])
				i++;
			else if (s[i] == q)
				return i + 1;
		}
		return 0;
	}
	/* [[ ... ]] or [==[ ... ]==] */
	{
		size_t lvl = 0, j = i + 1;

		while (s[j] == '=')
			j++, lvl++;
		if (s[j] != '[')
			return i + 1; /* just an index bracket */
		for (j++; s[j]; j++) {
			if (s[j] == ']') {
				size_t k = j + 1, l = 0;

				while (s[k] == '=')
					k++, l++;
				if (l == lvl && s[k] == ']')
					return k + 1;
			}
		}
		return 0;
	}
}

int drb_interp_scan(const char *s, int (*cb)(void *ud, const char *e, size_t n), void *ud)
{
	size_t i = 0;

	while (s[i]) {
		size_t start, depth = 1;

		if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
			i += 3; /* "$${" is a literal "${" */
			continue;
		}
		if (!(s[i] == '$' && s[i + 1] == '{')) {
			i++;
			continue;
		}
		i += 2;
		start = i;
		while (s[i] && depth) {
			if (s[i] == '"' || s[i] == '\'' || s[i] == '[') {
				size_t nx = skip_lua_string(s, i);

				if (!nx)
					return 1;
				i = nx;
				continue;
			}
			if (s[i] == '{')
				depth++;
			else if (s[i] == '}')
				depth--;
			i++;
		}
		if (depth)
			return 1;
		{
			size_t a = start, z = i - 1; /* z: the closing brace */
			int rc;

			while (a < z && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n'))
				a++;
			while (z > a && (s[z - 1] == ' ' || s[z - 1] == '\t' || s[z - 1] == '\n'))
				z--;
			if (a == z)
				return 2;
			rc = cb(ud, s + a, z - a);
			if (rc)
				return rc;
		}
	}
	return 0;
}
