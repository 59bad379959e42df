/* Small pieces the loader's checks are built from: the diagnostics list, compiling Lua
 * expressions and chunks without running them. (The ${ } scanner is core's luatext.c, shared
 * with the run; the edit distance that suggests the key a user meant is drb_edit_distance.) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <drbook/luatext.h>

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

struct chunk {
	const char *src, *name;
	size_t len;
	int memo; /* remember what compiled (compile) */
};

static const char compiled_key = 'c';

/* Under lua_pcall: a memory error while remembering is a failed compile, not a panic. */
static int compile_fn(lua_State *L)
{
	const struct chunk *c = lua_touserdata(L, 1);

	if (c->memo) {
		if (lua_rawgetp(L, LUA_REGISTRYINDEX, &compiled_key) != LUA_TTABLE) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_rawsetp(L, LUA_REGISTRYINDEX, &compiled_key);
		}
		lua_pushlstring(L, c->src, c->len); /* 3 */
		if (lua_rawget(L, 2) == LUA_TBOOLEAN)
			return 0; /* compiled before */
		lua_pop(L, 1);
	}
	if (luaL_loadbufferx(L, c->src, c->len, c->name, "t") != LUA_OK)
		return lua_error(L);
	if (c->memo) {
		lua_pushlstring(L, c->src, c->len);
		lua_pushboolean(L, 1);
		lua_rawset(L, 2);
	}
	return 0;
}

/* Compiles in L (a bare state: no libraries are needed to compile, and nothing is ever run
 * in it), or in a state of its own when L is NULL. The compiled function is dropped. The
 * compile runs in a C function under lua_pcall, as the sandbox's does (sb_run_chunk):
 * Lua's nesting limit counts the C calls below the parser, so an expression nested just too
 * deep for the run is refused here too. With memo, a shared L remembers the texts that
 * compiled (a table in its registry): a runbook repeats its expressions (${params.region} on
 * every step), and each is compiled once; scripts, seldom repeated, are not remembered. */
static int compile(lua_State *L, const char *src, size_t len, const char *chunkname, int memo,
		   drb_err *err)
{
	lua_State *own = L ? NULL : luaL_newstate();
	struct chunk c = {src, chunkname, len, memo && L};
	int rc = 0, top, status;

	if (!L)
		L = own;
	if (!L)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	top = lua_gettop(L);
	lua_pushcfunction(L, compile_fn);
	lua_pushlightuserdata(L, &c);
	status = lua_pcall(L, 1, 0, 0);
	if (status != LUA_OK) {
		const char *m = lua_tostring(L, -1);

		rc = status == LUA_ERRMEM
			 ? drb_err_set(err, DRB_ENOMEM, "out of memory")
			 : drb_err_set(err, DRB_EINVAL, "%s", m ? m : "cannot compile");
	}
	lua_settop(L, top);
	if (own)
		lua_close(own);
	return rc;
}

int drb_check_expr_in(lua_State *L, const char *src, size_t len, drb_err *err)
{
	drb_buf b;
	int rc = 0;

	drb_buf_init(&b, (size_t)DRB_RUNBOOK_MAX_BYTES + 64);
	/* exactly the chunk the engine evaluates (core's luatext.c) */
	if (drb_expr_wrap(&b, src, len)) {
		rc = drb_err_set(err, DRB_ELIMIT, "expression too long");
		goto out;
	}
	rc = compile(L, b.p, b.len, "=expression", 1, err);
out:
	drb_buf_free(&b);
	return rc;
}

int drb_check_chunk_in(lua_State *L, const char *src, drb_err *err)
{
	return compile(L, src, strlen(src), "=script", 0, err);
}

int drb_runbook_check_expr(const char *src, drb_err *err)
{
	return drb_check_expr_in(NULL, src, strlen(src), err);
}

int drb_runbook_check_chunk(const char *src, drb_err *err)
{
	return drb_check_chunk_in(NULL, src, err);
}

/* root.NAME, root["NAME"], root['NAME'] on the shared Lua tokenizer (luatext.h), so strings
 * and comments are skipped by the same rules the scanner and the compiler use. */
int drb_expr_refs(const char *s, const char *root,
		  int (*cb)(void *ud, const char *name, size_t n, size_t off), void *ud)
{
	drb_lex lx;
	drb_tok prev = {0}, t, a, b, c;
	size_t rl = strlen(root);

	drb_lex_init(&lx, s, strlen(s));
	for (;;) {
		int rc = 0;

		if (drb_lex_next(&lx, &t) == DRB_TOK_EOF || t.kind == DRB_TOK_ERROR)
			return 0; /* an unfinished string: the compiler reports it */
		if (t.kind != DRB_TOK_NAME || t.n != rl || memcmp(t.p, root, rl) ||
		    drb_tok_is(&prev, DRB_TOK_OP, ".") || drb_tok_is(&prev, DRB_TOK_OP, ":")) {
			prev = t;
			continue;
		}
		prev = t;
		drb_lex_next(&lx, &a);
		if (drb_tok_is(&a, DRB_TOK_OP, ".")) {
			drb_lex_next(&lx, &b);
			if (b.kind == DRB_TOK_NAME && !drb_tok_is_keyword(&b))
				rc = cb(ud, b.p, b.n, t.off);
			prev = b;
		} else if (drb_tok_is(&a, DRB_TOK_OP, "[")) {
			drb_lex_next(&lx, &b);
			if (b.kind == DRB_TOK_STRING && b.n >= 2 &&
			    (b.p[0] == '"' || b.p[0] == '\'') && !memchr(b.p + 1, '\\', b.n - 2) &&
			    drb_lex_next(&lx, &c) == DRB_TOK_OP && drb_tok_is(&c, DRB_TOK_OP, "]"))
				rc = cb(ud, b.p + 1, b.n - 2, t.off);
			prev = b;
		} else {
			prev = a;
		}
		if (rc)
			return rc;
	}
}
