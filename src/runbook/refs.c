/* Reference checks over every expression, ${ } template and lua script of a runbook, with
 * core's Lua tokenizer (luatext.c): `params.X` must name a declared parameter, and a for_each
 * variable (`as:`) may only be used where the engine binds it. Conservative by design: a name
 * inside a string or a comment, after '.' or ':', as a table key, or declared local, assigned
 * or taken as a parameter anywhere in the same text is never flagged. Only text that compiles
 * is checked: the loader already reported the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/luatext.h>

#include "runbook_int.h"

#define MAX_NAMES 256 /* bound or reported names remembered per text; more are not checked */

typedef struct as_var {
	const char *name, *step; /* borrowed from the tree */
} as_var;

typedef struct rctx {
	drb_diags *d;
	lua_State *L;
	const ynode *params; /* the params: mapping; NULL: none declared */
	int skip_params;     /* params: is not a mapping: already reported, check nothing */
	int compiled;	     /* every text is known to compile (drb_check_refs) */
	as_var *as;	     /* the for_each variables of all steps */
	size_t n_as;
} rctx;

/* One text to check and what is in scope there. */
typedef struct unit {
	const ynode *node;
	const char *prefix; /* "step 'scale': " */
	const char *where;  /* "with.service", "assert", "script" */
	const char *var;    /* the for_each variable bound here, or NULL */
	const char *own;    /* the step's for_each variable even where it is not bound */
	int script;	    /* a chunk (lua script) rather than an expression */
} unit;

typedef struct names {
	const char *p[MAX_NAMES];
	size_t n[MAX_NAMES];
	size_t count;
} names;

/* Globals an expression may read besides the parameters and for_each variables: the engine's
 * (params, steps, result, drill, run), the sandbox's libraries and the action namespaces. A
 * name close to a for_each variable is not called a misspelling when it is one of these. */
static const char *const KNOWN[] = {
    "params",	"steps",  "result",  "drill",	       "run",	       "_G",
    "_VERSION", "assert", "error",   "getmetatable",   "ipairs",       "load",
    "next",	"pairs",  "pcall",   "print",	       "rawequal",     "rawget",
    "rawlen",	"rawset", "require", "select",	       "setmetatable", "tonumber",
    "tostring", "type",	  "xpcall",  "collectgarbage", "string",       "table",
    "math",	"utf8",	  "os",	     "drbook",	       "aws",	       "pg",
    "http",	"notify", "sleep",   "exec",	       "approval",     "dns",
    "lua",	NULL};

static int names_has(const names *l, const char *p, size_t n)
{
	for (size_t i = 0; i < l->count; i++)
		if (l->n[i] == n && !memcmp(l->p[i], p, n))
			return 1;
	return 0;
}

static void names_add(names *l, const char *p, size_t n)
{
	if (l->count < MAX_NAMES && !names_has(l, p, n)) {
		l->p[l->count] = p;
		l->n[l->count] = n;
		l->count++;
	}
}

static int tok_eq(const drb_tok *t, const char *s)
{
	return t->kind == DRB_TOK_NAME && strlen(s) == t->n && !memcmp(t->p, s, t->n);
}

static int is_op(const drb_tok *t, const char *s)
{
	return drb_tok_is(t, DRB_TOK_OP, s);
}

/* All tokens of a text (the tokenizer is cheap; two passes read them twice). Returns the
 * count; *out is the caller's to free. */
static size_t tokenize(const char *s, size_t len, drb_tok **out)
{
	drb_lex lx;
	drb_tok t, *v = NULL;
	size_t n = 0, cap = 0;

	drb_lex_init(&lx, s, len);
	while (drb_lex_next(&lx, &t) != DRB_TOK_EOF && t.kind != DRB_TOK_ERROR) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			drb_tok *nv = realloc(v, nc * sizeof(*nv));

			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		v[n++] = t;
	}
	*out = v;
	return n;
}

/* Names the text itself binds, wherever: locals, function parameters, for variables, and
 * (in scripts) anything assigned. Scope is ignored on purpose: fewer checks, no false
 * alarms. */
static void bound_names(const drb_tok *t, size_t n, int script, names *b)
{
	size_t braces = 0; /* inside a table constructor, "name =" after { , ; is a key */

	for (size_t i = 0; i < n; i++) {
		if (is_op(&t[i], "{"))
			braces++;
		else if (is_op(&t[i], "}") && braces)
			braces--;
		if (t[i].kind != DRB_TOK_NAME)
			continue;
		if (tok_eq(&t[i], "local") || tok_eq(&t[i], "for")) {
			/* local a, b <const>; local function f; for k, v in / for i = */
			for (size_t j = i + 1; j < n; j++) {
				if (tok_eq(&t[j], "function"))
					continue;
				if (t[j].kind == DRB_TOK_NAME && !drb_tok_is_keyword(&t[j]))
					names_add(b, t[j].p, t[j].n);
				else if (!is_op(&t[j], ",") && !is_op(&t[j], "<") &&
					 !is_op(&t[j], ">"))
					break;
			}
		} else if (tok_eq(&t[i], "function")) {
			size_t j = i + 1;

			while (j < n && !is_op(&t[j], "("))
				j++;
			for (j++; j < n && !is_op(&t[j], ")"); j++)
				if (t[j].kind == DRB_TOK_NAME)
					names_add(b, t[j].p, t[j].n);
			/* function name() ... end defines a global in a script */
			if (script && i + 1 < n && t[i + 1].kind == DRB_TOK_NAME)
				names_add(b, t[i + 1].p, t[i + 1].n);
		} else if (script && i + 1 < n && !drb_tok_is_keyword(&t[i]) &&
			   (is_op(&t[i + 1], "=") || is_op(&t[i + 1], ",")) &&
			   !(i > 0 && (is_op(&t[i - 1], ".") || is_op(&t[i - 1], ":"))) &&
			   !(braces && i > 0 &&
			     (is_op(&t[i - 1], "{") || is_op(&t[i - 1], ",") ||
			      is_op(&t[i - 1], ";")))) {
			names_add(b, t[i].p, t[i].n);
		}
	}
}

static const char *suggest_param(const rctx *c, const char *name)
{
	const char *best = NULL;
	int cap = strlen(name) >= 7 ? 3 : 2, bd = cap + 1;

	for (size_t i = 0; c->params && i + 1 < c->params->n; i += 2) {
		int dist = drb_edit_distance(name, c->params->kids[i]->str, cap);

		if (dist < bd) {
			bd = dist;
			best = c->params->kids[i]->str;
		}
	}
	return best;
}

static int param_declared(const rctx *c, const char *p, size_t n)
{
	for (size_t i = 0; c->params && i + 1 < c->params->n; i += 2) {
		const ynode *k = c->params->kids[i];

		if (k->len == n && !memcmp(k->str, p, n))
			return 1;
	}
	return 0;
}

static const as_var *as_find(const rctx *c, const char *p, size_t n)
{
	for (size_t i = 0; i < c->n_as; i++)
		if (strlen(c->as[i].name) == n && !memcmp(c->as[i].name, p, n))
			return &c->as[i];
	return NULL;
}

/* " line N" for a script of several lines; "" for an expression. */
static void line_note(const unit *u, const drb_tok *t, char *out, size_t n)
{
	if (u->script && u->node->str && strchr(u->node->str, '\n'))
		snprintf(out, n, " line %d", t->line);
	else
		out[0] = '\0';
}

static void undeclared(const rctx *c, const unit *u, const drb_tok *t, const char *p, size_t n)
{
	char name[128], line[32];
	const char *s;

	snprintf(name, sizeof(name), "%.*s", (int)(n > 80 ? 80 : n), p);
	line_note(u, t, line, sizeof(line));
	s = suggest_param(c, name);
	if (s)
		drb_diags_add(c->d, u->node->pos,
			      "%sundeclared parameter '%s' in %s%s (did you mean '%s'?)", u->prefix,
			      name, u->where, line, s);
	else
		drb_diags_add(c->d, u->node->pos, "%sundeclared parameter '%s' in %s%s", u->prefix,
			      name, u->where, line);
}

/* params.X and params["X"] (a plain string literal) at t[i] == params. */
static void check_param_use(const rctx *c, const unit *u, const drb_tok *t, size_t i, size_t n,
			    names *reported)
{
	const char *p = NULL;
	size_t len = 0;

	if (c->skip_params)
		return;
	if (i + 2 < n && is_op(&t[i + 1], ".") && t[i + 2].kind == DRB_TOK_NAME) {
		p = t[i + 2].p;
		len = t[i + 2].n;
	} else if (i + 3 < n && is_op(&t[i + 1], "[") && t[i + 2].kind == DRB_TOK_STRING &&
		   is_op(&t[i + 3], "]") && (t[i + 2].p[0] == '"' || t[i + 2].p[0] == '\'') &&
		   !memchr(t[i + 2].p, '\\', t[i + 2].n)) {
		p = t[i + 2].p + 1;
		len = t[i + 2].n - 2;
	}
	if (!p || param_declared(c, p, len) || names_has(reported, p, len))
		return;
	names_add(reported, p, len);
	undeclared(c, u, &t[i], p, len);
}

static void check_var_use(const rctx *c, const unit *u, const drb_tok *t, names *reported)
{
	const as_var *a = as_find(c, t->p, t->n);
	char name[128], line[32];
	int cap;

	snprintf(name, sizeof(name), "%.*s", (int)(t->n > 80 ? 80 : t->n), t->p);
	line_note(u, t, line, sizeof(line));
	if (a) {
		if (u->var && !strcmp(u->var, name))
			return;
		if (names_has(reported, t->p, t->n))
			return;
		names_add(reported, t->p, t->n);
		if (u->own && !strcmp(u->own, name))
			drb_diags_add(c->d, u->node->pos,
				      "%sthe for_each variable '%s' is not bound in %s%s (only in "
				      "with, when, assert, until, script and rollback)",
				      u->prefix, name, u->where, line);
		else
			drb_diags_add(c->d, u->node->pos,
				      "%s'%s' in %s%s is not in scope: it is the for_each variable "
				      "of step '%s'",
				      u->prefix, name, u->where, line, a->step);
		return;
	}
	/* a misspelt for_each variable: only in expressions and templates (a script may read
	 * globals its modules define) */
	if (!u->var || u->script || t->n < 2 || drb_tok_is_keyword(t))
		return;
	for (size_t k = 0; KNOWN[k]; k++)
		if (!strcmp(KNOWN[k], name))
			return;
	/* "scv" for "svc" is two edits; a one-letter variable has no near miss worth naming */
	cap = strlen(u->var) >= 3 ? 2 : 1;
	if (drb_edit_distance(name, u->var, cap) > cap)
		return;
	if (names_has(reported, t->p, t->n))
		return;
	names_add(reported, t->p, t->n);
	drb_diags_add(c->d, u->node->pos, "%sunknown variable '%s' in %s (did you mean '%s'?)",
		      u->prefix, name, u->where, u->var);
}

/* One expression or script. */
static void check_text(const rctx *c, const unit *u, const char *s, size_t len)
{
	drb_tok *t = NULL;
	size_t n;
	/* 4 kB each: not zeroed, only count is read before an entry is written */
	names *bound = malloc(sizeof(*bound)), *reported = malloc(sizeof(*reported));
	drb_err e;

	drb_err_clear(&e);
	if (!bound || !reported)
		goto out;
	bound->count = reported->count = 0;
	if (!c->compiled &&
	    (u->script ? drb_check_chunk_in(c->L, s, &e) : drb_check_expr_in(c->L, s, len, &e)))
		goto out; /* reported by the loader */
	n = tokenize(s, len, &t);
	bound_names(t, n, u->script, bound);
	for (size_t i = 0; i < n; i++) {
		if (t[i].kind != DRB_TOK_NAME || drb_tok_is_keyword(&t[i]))
			continue;
		if (i > 0 && (is_op(&t[i - 1], ".") || is_op(&t[i - 1], ":") ||
			      is_op(&t[i - 1], "::") || tok_eq(&t[i - 1], "goto")))
			continue; /* a field, a method, a label */
		if (i + 1 < n && is_op(&t[i + 1], "=") && i > 0 &&
		    (is_op(&t[i - 1], "{") || is_op(&t[i - 1], ",") || is_op(&t[i - 1], ";")))
			continue; /* a table constructor's key */
		if (names_has(bound, t[i].p, t[i].n))
			continue;
		if (tok_eq(&t[i], "params"))
			check_param_use(c, u, t, i, n, reported);
		else
			check_var_use(c, u, &t[i], reported);
	}
out:
	free(t);
	free(bound);
	free(reported);
}

/* Every ${ } expression of every string under n (mapping values, list items). */
static void check_templates(const rctx *c, unit *u, const ynode *n, const char *path)
{
	char sub[256];

	if (n->kind == YN_SCALAR) {
		drb_tmpl t;
		drb_tmpl_part part;

		if (n->vt != YV_STR)
			return;
		u->node = n;
		u->where = path;
		u->script = 0;
		drb_tmpl_init(&t, n->str, n->len);
		while (drb_tmpl_next(&t, &part) == 1)
			if (part.expr)
				check_text(c, u, part.p, part.n);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		if (n->kind == YN_SEQ) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
			check_templates(c, u, n->kids[i], sub);
		} else if (i % 2 == 1) {
			snprintf(sub, sizeof(sub), "%s.%.60s", path, n->kids[i - 1]->str);
			check_templates(c, u, n->kids[i], sub);
		}
	}
}

static const ynode *get(const ynode *m, const char *k)
{
	if (!m || m->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->n; i += 2)
		if (!strcmp(m->kids[i]->str, k))
			return m->kids[i + 1];
	return NULL;
}

static int is_string(const ynode *n)
{
	return n && n->kind == YN_SCALAR && n->vt == YV_STR;
}

/* with: {script:} is Lua only for the lua action; another action's script is its own. */
static int is_lua(const ynode *m)
{
	const ynode *a = get(m, "action");

	return is_string(a) && !strcmp(a->str, "lua");
}

static void check_expr_key(const rctx *c, unit *u, const ynode *m, const char *key,
			   const char *where)
{
	const ynode *n = get(m, key);

	if (!is_string(n))
		return;
	u->node = n;
	u->where = where;
	u->script = 0;
	check_text(c, u, n->str, n->len);
}

/* A script: step-level and rollback script: are Lua as written; with: {script:} is a
 * template first, and only checked as Lua when it holds no ${ } (as the loader does). */
static void check_script_key(const rctx *c, unit *u, const ynode *m, const char *key,
			     const char *where, int in_with)
{
	const ynode *n = get(m, key);

	if (!is_string(n) || (in_with && strstr(n->str, "${")))
		return;
	u->node = n;
	u->where = where;
	u->script = 1;
	check_text(c, u, n->str, n->len);
}

/* An action call ({action, with, script, assert}) under a step: rollback or done_when. */
static void check_call(const rctx *c, unit *u, const ynode *m, const char *name)
{
	char path[64];
	const ynode *w;

	if (!m || m->kind != YN_MAP)
		return;
	snprintf(path, sizeof(path), "%s.with", name);
	w = get(m, "with");
	if (w && w->kind == YN_MAP) {
		check_templates(c, u, w, path);
		snprintf(path, sizeof(path), "%s.with.script", name);
		if (is_lua(m))
			check_script_key(c, u, w, "script", path, 1);
	}
	snprintf(path, sizeof(path), "%s.script", name);
	check_script_key(c, u, m, "script", path, 0);
	snprintf(path, sizeof(path), "%s.assert", name);
	check_expr_key(c, u, m, "assert", path);
}

static const char *step_var(const ynode *m)
{
	const ynode *fe = get(m, "for_each"), *as = get(m, "as");

	if (!fe || (fe->kind == YN_SCALAR && fe->vt == YV_NULL))
		return NULL;
	if (!as)
		return "item";
	return is_string(as) ? as->str : NULL;
}

static void check_step(const rctx *c, const ynode *m, size_t idx, int preflight)
{
	const ynode *id = get(m, "id"), *w, *dw;
	char prefix[200];
	unit u = {0};

	if (m->kind != YN_MAP)
		return;
	if (is_string(id))
		snprintf(prefix, sizeof(prefix), "step '%.80s': ", id->str);
	else
		snprintf(prefix, sizeof(prefix), "%sstep #%zu: ", preflight ? "preflight " : "",
			 idx + 1);
	u.prefix = prefix;
	u.own = step_var(m);
	/* bound for each item: with, when, assert, until, the script, the rollback */
	u.var = u.own;
	w = get(m, "with");
	if (w && w->kind == YN_MAP) {
		check_templates(c, &u, w, "with");
		if (is_lua(m))
			check_script_key(c, &u, w, "script", "with.script", 1);
	}
	check_script_key(c, &u, m, "script", "script", 0);
	check_expr_key(c, &u, m, "assert", "assert");
	check_expr_key(c, &u, m, "when", "when");
	check_expr_key(c, &u, m, "until", "until");
	check_call(c, &u, get(m, "rollback"), "rollback");
	/* not bound: the list itself, and done_when (resume asks it of the step as a whole) */
	u.var = NULL;
	check_expr_key(c, &u, m, "for_each", "for_each");
	dw = get(m, "done_when");
	if (dw && dw->kind == YN_MAP)
		check_call(c, &u, dw, "done_when");
	else
		check_expr_key(c, &u, m, "done_when", "done_when");
}

static void collect_as(rctx *c, const ynode *l)
{
	for (size_t i = 0; l && l->kind == YN_SEQ && i < l->n; i++) {
		const ynode *m = l->kids[i], *id = get(m, "id");
		const char *var = m->kind == YN_MAP ? step_var(m) : NULL;
		as_var *v;

		if (!var || as_find(c, var, strlen(var)))
			continue;
		v = realloc(c->as, (c->n_as + 1) * sizeof(*v));
		if (!v)
			return;
		c->as = v;
		c->as[c->n_as].name = var;
		c->as[c->n_as].step = is_string(id) ? id->str : "?";
		c->n_as++;
	}
}

void drb_check_refs(drb_diags *d, lua_State *L, const ynode *root, int compiled)
{
	rctx c = {.d = d, .L = L, .compiled = compiled};
	const ynode *p = get(root, "params"), *steps[2], *nt;

	if (p && p->kind == YN_MAP)
		c.params = p;
	else if (p && !(p->kind == YN_SCALAR && p->vt == YV_NULL))
		c.skip_params = 1;
	steps[0] = get(root, "preflight");
	steps[1] = get(root, "steps");
	for (int k = 0; k < 2; k++)
		collect_as(&c, steps[k]);
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; steps[k] && steps[k]->kind == YN_SEQ && i < steps[k]->n; i++)
			check_step(&c, steps[k]->kids[i], i, k == 0);
	{
		/* shadow: setup and teardown steps read params like any step */
		const ynode *sh = get(root, "shadow");
		const ynode *sl[2] = {sh && sh->kind == YN_MAP ? get(sh, "setup") : NULL,
				      sh && sh->kind == YN_MAP ? get(sh, "teardown") : NULL};

		for (int k = 0; k < 2; k++)
			for (size_t i = 0; sl[k] && sl[k]->kind == YN_SEQ && i < sl[k]->n; i++)
				check_step(&c, sl[k]->kids[i], i, 0);
	}
	nt = get(root, "notify");
	for (size_t i = 0; nt && nt->kind == YN_SEQ && i < nt->n; i++) {
		char prefix[64];
		const ynode *w = get(nt->kids[i], "with");
		unit u = {0};

		snprintf(prefix, sizeof(prefix), "notify entry #%zu: ", i + 1);
		u.prefix = prefix;
		if (w && w->kind == YN_MAP)
			check_templates(&c, &u, w, "with");
	}
	free(c.as);
}
