/* Format v1 validation: walks the YAML tree once, reports every rule broken anywhere in the
 * file (not just the first) at the node that broke it, and builds the model as it goes. The
 * model is handed out only when the file produced no diagnostic at all. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <drbook/luatext.h>

#include "runbook_int.h"

typedef struct seen_id {
	const char *id;
	drb_pos pos;  /* the step's position, shown as "first defined at" */
	size_t order; /* preflight first, then steps */
} seen_id;

typedef struct vctx {
	drb_diags *d;
	const drb_load_opts *opts;
	drb_runbook *rb;
	seen_id *ids;
	size_t n_ids;
	lua_State *L; /* one bare state compiles every expression of the file */
	const char *kind; /* "shadow setup " or "shadow teardown " while parsing those, or NULL */
} vctx;

static const char *const TOP_KEYS[] = {
    "version",	   "name",   "description",  "scenario",  "targets",	"params",
    "connections", "lua",    "preflight",    "steps",	  "on_failure", "deadline",
    "lock",	   "notify", "max_parallel", "stop_when", "shadow",	NULL};
static const char *const SHADOW_KEYS[] = {"setup", "params", "teardown", NULL};
static const char *const PARAM_KEYS[] = {"type",   "default", "description", "required",
					 "secret", "choices", NULL};
static const char *const PG_KEYS[] = {"kind",
				      "dsn_env",
				      "dsn_file",
				      "rds_instance",
				      "region",
				      "endpoint_url",
				      "user",
				      "dbname",
				      "password_env",
				      "password_file",
				      "sslmode",
				      "connect_timeout",
				      "statement_timeout",
				      NULL};
static const char *const AWS_KEYS[] = {"kind", "region", "endpoint_url", "profile", NULL};
/* keys that would hold a secret inline: refused with a pointer to the safe spelling */
static const char *const SECRET_KEYS[] = {"dsn",
					  "password",
					  "passwd",
					  "secret",
					  "secret_key",
					  "secret_access_key",
					  "aws_secret_access_key",
					  "access_key_id",
					  "aws_access_key_id",
					  "session_token",
					  "aws_session_token",
					  "token",
					  "connection_string",
					  "url",
					  NULL};
static const char *const STEP_KEYS[] = {
    "id",	"action",      "with",	       "script",     "assert",	   "when",
    "until",	"every",       "timeout",      "retry",	     "on_failure", "rollback",
    "for_each", "as",	       "max_parallel", "idempotent", "done_when",  "read_only",
    "critical", "description", "needs",	       NULL};
static const char *const RETRY_KEYS[] = {"attempts", "backoff", "initial", "max", NULL};
static const char *const ROLLBACK_KEYS[] = {"action", "with", "script", NULL};
static const char *const DONE_WHEN_KEYS[] = {"action", "with", "assert", NULL};
static const char *const NOTIFY_KEYS[] = {"on", "action", "with", NULL};
static const char *const NOTIFY_EVENTS[] = {"start", "success", "failure", "end", NULL};
static const char *const PARAM_TYPES[] = {"string", "int", "bool", "duration", "list", "map", NULL};
static const char *const LUA_KEYWORDS[] = {
    "and",	"break",  "do",	  "else", "elseif", "end",   "false", "for",
    "function", "goto",	  "if",	  "in",	  "local",  "nil",   "not",   "or",
    "repeat",	"return", "then", "true", "until",  "while", NULL};
static const char *const AS_RESERVED[] = {"params", "steps", "result", "drill", NULL};

static void diag(vctx *v, const ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void diag(vctx *v, const ynode *n, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	int len;
	drb_pos p = {0, 0};

	if (n)
		p = n->pos;
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	msg = malloc((size_t)len + 1);
	if (!msg) {
		drb_diags_add(v->d, p, "out of memory");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)len + 1, fmt, ap);
	va_end(ap);
	drb_diags_add(v->d, p, "%s", msg);
	free(msg);
}

static int in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

static int is_str(const ynode *n)
{
	return n && n->kind == YN_SCALAR && n->vt == YV_STR;
}

static int is_null(const ynode *n)
{
	return n && n->kind == YN_SCALAR && n->vt == YV_NULL;
}

/* The value of key k in mapping m, or NULL. */
static const ynode *mget(const ynode *m, const char *k)
{
	if (!m || m->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->n; i += 2)
		if (!strcmp(m->kids[i]->str, k))
			return m->kids[i + 1];
	return NULL;
}

/* Optional keys: an explicit null (`description:` with nothing after it) means unset. */
static const ynode *opt(const ynode *m, const char *k)
{
	const ynode *n = mget(m, k);

	return is_null(n) ? NULL : n;
}

static const ynode *key_node(const ynode *m, const char *k)
{
	for (size_t i = 0; m && i + 1 < m->n; i += 2)
		if (!strcmp(m->kids[i]->str, k))
			return m->kids[i];
	return NULL;
}

static const char *suggest(const char *key, const char *const *known)
{
	const char *best = NULL;
	/* 2 edits, or 3 for longer names: 'retires' still finds 'retry' */
	int cap = strlen(key) >= 7 ? 3 : 2, bd = cap + 1;

	for (size_t i = 0; known[i]; i++) {
		int dist = drb_edit_distance(key, known[i], cap);

		if (dist < bd) {
			bd = dist;
			best = known[i];
		}
	}
	return best;
}

static void unknown_key(vctx *v, const ynode *k, const char *where, const char *const *known)
{
	const char *s = suggest(k->str, known);

	if (s)
		diag(v, k, "unknown key '%.80s'%s%s (did you mean '%s'?)", k->str,
		     where ? " in " : "", where ? where : "", s);
	else
		diag(v, k, "unknown key '%.80s'%s%s", k->str, where ? " in " : "",
		     where ? where : "");
}

static void check_keys(vctx *v, const ynode *m, const char *const *known, const char *where)
{
	for (size_t i = 0; i + 1 < m->n; i += 2)
		if (!in_list(m->kids[i]->str, known))
			unknown_key(v, m->kids[i], where, known);
}

static int is_ident(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

static int is_step_id(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int is_module_name(const char *s)
{
	if (!*s || strstr(s, ".."))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

/* A duration: "90s"-style string or a bare non-negative number of seconds. */
static int dur_value(const ynode *n, double *out)
{
	if (!n || n->kind != YN_SCALAR)
		return -1;
	switch (n->vt) {
	case YV_INT:
		if (n->i < 0)
			return -1;
		*out = (double)n->i;
		return 0;
	case YV_REAL:
		if (!(n->r >= 0) || !isfinite(n->r))
			return -1;
		*out = n->r;
		return 0;
	case YV_STR:
		return drb_duration_parse(n->str, out) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

static json_t *seconds_json(double s)
{
	if (s == floor(s) && s < 9e15)
		return json_integer((json_int_t)s);
	return json_real(s);
}

static int parse_onf(const ynode *n)
{
	if (!is_str(n))
		return -1;
	if (!strcmp(n->str, "abort"))
		return DRB_ONF_ABORT;
	if (!strcmp(n->str, "rollback"))
		return DRB_ONF_ROLLBACK;
	if (!strcmp(n->str, "continue"))
		return DRB_ONF_CONTINUE;
	return -1;
}

static int bool_field(vctx *v, const ynode *m, const char *key, const char *prefix, int *out)
{
	const ynode *n = opt(m, key);

	if (!n)
		return 0;
	if (n->kind != YN_SCALAR || n->vt != YV_BOOL) {
		diag(v, n, "%s'%s' must be true or false", prefix, key);
		return -1;
	}
	*out = n->b;
	return 1;
}

static void str_field(vctx *v, const ynode *m, const char *key, const char *prefix, char **out)
{
	const ynode *n = opt(m, key);

	if (!n)
		return;
	if (!is_str(n)) {
		diag(v, n, "%s'%s' must be a string", prefix, key);
		return;
	}
	free(*out);
	*out = strdup(n->str);
}

static int action_mode(vctx *v, const char *name)
{
	if (!v->opts || !v->opts->action_mode)
		return -2; /* not checked */
	return v->opts->action_mode(v->opts->ud, name);
}

/* ---- expressions and ${ } ---- */

static void expr_field(vctx *v, const ynode *m, const char *key, const char *prefix, drb_expr *out)
{
	const ynode *n = opt(m, key);
	const char *src;
	drb_err e;

	if (!n)
		return;
	/* `when: false` or `until: true` are expressions too: a plain boolean or number is
	 * taken as the Lua literal it spells */
	if (is_str(n) || (n->kind == YN_SCALAR && (n->vt == YV_INT || n->vt == YV_REAL))) {
		src = n->str;
	} else if (n->kind == YN_SCALAR && n->vt == YV_BOOL) {
		src = n->b ? "true" : "false";
	} else {
		diag(v, n, "%s'%s' must be a string holding a Lua expression", prefix, key);
		return;
	}
	drb_err_clear(&e);
	if (drb_check_expr_in(v->L, src, strlen(src), &e))
		diag(v, n, "%s'%s' does not compile: %s", prefix, key, e.msg);
	out->src = strdup(src);
	out->pos = n->pos;
}

/* One ${ } expression of a template: it must compile as the engine will compile it. */
static void interp_expr(vctx *v, const ynode *n, const char *prefix, const char *path,
			const char *e, size_t len)
{
	size_t a = 0, z = len;
	drb_err err;

	drb_err_clear(&err);
	if (drb_check_expr_in(v->L, e, len, &err)) {
		while (a < z && isspace((unsigned char)e[a]))
			a++;
		while (z > a && isspace((unsigned char)e[z - 1]))
			z--;
		diag(v, n, "%s'${%.*s}' in %s does not compile: %s", prefix,
		     (int)(z - a > 60 ? 60 : z - a), e + a, path, err.msg);
	}
}

/* Every string under with: (keys excluded) may hold ${ } expressions: all must compile. The
 * split is core's template scanner, the one the engine interpolates with. */
static void check_interp(vctx *v, const ynode *n, const char *prefix, const char *path)
{
	char sub[256];

	if (n->kind == YN_SCALAR) {
		drb_tmpl t;
		drb_tmpl_part part;
		int rc;

		if (n->vt != YV_STR)
			return;
		drb_tmpl_init(&t, n->str, n->len);
		while ((rc = drb_tmpl_next(&t, &part)) == 1)
			if (part.expr)
				interp_expr(v, n, prefix, path, part.p, part.n);
		if (rc < 0 && part.error == DRB_TMPL_EMPTY)
			diag(v, n, "%sempty '${}' in %s", prefix, path);
		else if (rc < 0)
			diag(v, n, "%sunterminated '${' in %s (write '$${' for a literal '${')",
			     prefix, path);
		return;
	}
	if (n->kind == YN_SEQ) {
		for (size_t i = 0; i < n->n; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
			check_interp(v, n->kids[i], prefix, sub);
		}
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		snprintf(sub, sizeof(sub), "%s.%.60s", path, n->kids[i]->str);
		check_interp(v, n->kids[i + 1], prefix, sub);
	}
}

static json_t *empty_with;
static pthread_once_t empty_once = PTHREAD_ONCE_INIT;

static void empty_init(void)
{
	empty_with = json_object();
}

/* with: must be a mapping; returns its JSON, NULL after a diagnostic. Every absent with: is
 * one shared empty object (a template is never modified: interpolation builds new values),
 * 200 bytes less a step. */
static json_t *with_field(vctx *v, const ynode *m, const char *prefix, const char *path,
			  drb_pos *pos)
{
	const ynode *n = opt(m, "with");

	if (!n) {
		pthread_once(&empty_once, empty_init);
		return empty_with ? json_incref(empty_with) : json_object();
	}
	if (pos)
		*pos = n->pos;
	if (n->kind != YN_MAP) {
		diag(v, n, "%s'with' must be a mapping", prefix);
		return NULL;
	}
	check_interp(v, n, prefix, path);
	return drb_yaml_to_json(n);
}

static void compile_script(vctx *v, const ynode *n, const char *prefix)
{
	drb_err e;

	drb_err_clear(&e);
	if (drb_check_chunk_in(v->L, n->str, &e))
		diag(v, n, "%sscript does not compile: %s", prefix, e.msg);
}

/* script: is for the lua action, and the lua action needs one (script: or with: {script:}). */
static void check_script(vctx *v, const ynode *m, const char *action, const char *prefix,
			 char **out, drb_pos *out_pos)
{
	const ynode *s = opt(m, "script");
	const ynode *w = opt(m, "with");
	const ynode *ws = w && w->kind == YN_MAP ? opt(w, "script") : NULL;
	int is_lua = action && !strcmp(action, "lua");

	if (s && !is_str(s)) {
		diag(v, s, "%s'script' must be a string", prefix);
		s = NULL;
	} else if (s && action && !is_lua) {
		diag(v, s, "%s'script' is only for the lua action", prefix);
		s = NULL;
	}
	if (!is_lua)
		goto store;
	if (!s && !ws) {
		diag(v, m, "%sthe lua action needs a script (script: or with: {script: ...})",
		     prefix);
		goto store;
	}
	if (s && ws) {
		diag(v, ws, "%sthe script is given twice (script: and with: script:)", prefix);
		goto store;
	}
	if (s)
		compile_script(v, s, prefix);
	else if (!is_str(ws))
		diag(v, ws, "%s'with.script' must be a string", prefix);
	else if (!strstr(ws->str, "${")) /* interpolated scripts compile only once filled in */
		compile_script(v, ws, prefix);
store:
	if (s && out) {
		*out = strdup(s->str);
		if (out_pos)
			*out_pos = s->pos;
	}
}

/* with: against the action's schema (with_check.c), when the caller gave schemas. */
static void check_with(vctx *v, const ynode *m, const ynode *a, const char *prefix)
{
	if (!is_str(a) || !v->opts || !v->opts->action_schema)
		return;
	drb_with_check(v->d, prefix, a->str, v->opts->action_schema(v->opts->ud, a->str),
		       opt(m, "with"), a);
}

/* An action invocation: rollback:, done_when: {...}, notify entries. */
static void parse_call(vctx *v, const ynode *m, const char *const *keys, const char *prefix,
		       const char *where, const char *with_path, int need_ro, drb_call_spec *out)
{
	const ynode *a = mget(m, "action");
	const char *action = NULL;

	out->pos = m->pos;
	check_keys(v, m, keys, where);
	if (!a) {
		diag(v, m, "%smissing required key 'action'", prefix);
	} else if (!is_str(a)) {
		diag(v, a, "%s'action' must be a string", prefix);
	} else {
		int mode = action_mode(v, a->str);

		action = a->str;
		out->action = strdup(a->str);
		if (mode == -1)
			diag(v, a, "%sunknown action '%.80s'", prefix, a->str);
		else if (need_ro && mode != -2 && mode != 0)
			diag(v, a, "%saction '%.80s' is not read-only", prefix, a->str);
	}
	out->with = with_field(v, m, prefix, with_path, NULL);
	check_with(v, m, a, prefix);
	if (in_list("script", keys))
		check_script(v, m, action, prefix, &out->script, NULL);
	if (in_list("assert", keys))
		expr_field(v, m, "assert", prefix, &out->assert_);
}

/* ---- params and connections ---- */

static const char *type_expect(drb_param_type t)
{
	static const char *const e[] = {"a string",	 "an integer",
					"true or false", "a duration (like 90s or 15m, or seconds)",
					"a list",	 "a mapping"};
	return e[t];
}

/* The node as a value of type t (durations in seconds), or NULL when it is not one. */
static json_t *typed_value(const ynode *n, drb_param_type t)
{
	double s;

	switch (t) {
	case DRB_PT_STRING:
		return is_str(n) ? json_string(n->str) : NULL;
	case DRB_PT_INT:
		return n->kind == YN_SCALAR && n->vt == YV_INT ? json_integer(n->i) : NULL;
	case DRB_PT_BOOL:
		return n->kind == YN_SCALAR && n->vt == YV_BOOL ? json_boolean(n->b) : NULL;
	case DRB_PT_DURATION:
		return dur_value(n, &s) == 0 ? seconds_json(s) : NULL;
	case DRB_PT_LIST:
		return n->kind == YN_SEQ ? drb_yaml_to_json(n) : NULL;
	case DRB_PT_MAP:
		return n->kind == YN_MAP ? drb_yaml_to_json(n) : NULL;
	}
	return NULL;
}

static void parse_param(vctx *v, const ynode *k, const ynode *m, drb_param *p)
{
	char prefix[160], where[160];
	const ynode *t, *def, *ch;
	int type = -1, req = -1;

	p->name = strdup(k->str);
	p->pos = k->pos;
	if (!is_ident(k->str))
		diag(v, k,
		     "invalid parameter name '%.80s': use letters, digits and _, not starting "
		     "with a digit",
		     k->str);
	snprintf(where, sizeof(where), "parameter '%.80s'", k->str);
	snprintf(prefix, sizeof(prefix), "%s: ", where);
	if (m->kind != YN_MAP) {
		diag(v, m, "%s must be a mapping with a 'type'", where);
		return;
	}
	check_keys(v, m, PARAM_KEYS, where);
	t = mget(m, "type");
	if (!t) {
		diag(v, m, "%smissing required key 'type'", prefix);
	} else {
		for (int i = 0; is_str(t) && PARAM_TYPES[i]; i++)
			if (!strcmp(t->str, PARAM_TYPES[i]))
				type = i;
		if (type < 0)
			diag(v, t, "%s'type' must be one of string, int, bool, duration, list, map",
			     prefix);
	}
	p->type = type < 0 ? DRB_PT_STRING : (drb_param_type)type;
	str_field(v, m, "description", prefix, &p->description);
	bool_field(v, m, "secret", prefix, &p->secret);
	bool_field(v, m, "required", prefix, &req);
	def = opt(m, "default");
	if (def && type >= 0) {
		p->def = typed_value(def, p->type);
		if (!p->def)
			diag(v, def, "%s'default' must be %s", prefix, type_expect(p->type));
	}
	/* no default means the caller must give one, unless required: false says "may be
	 * absent" (the value is then null) */
	p->required = !def && req != 0;
	ch = opt(m, "choices");
	if (!ch)
		return;
	if (ch->kind != YN_SEQ || !ch->n) {
		diag(v, ch, "%s'choices' must be a non-empty list", prefix);
		return;
	}
	if (type < 0)
		return;
	p->choices = json_array();
	for (size_t i = 0; p->choices && i < ch->n; i++) {
		json_t *c = typed_value(ch->kids[i], p->type);

		if (!c) {
			diag(v, ch->kids[i], "%seach choice must be %s", prefix,
			     type_expect(p->type));
			continue;
		}
		json_array_append_new(p->choices, c);
	}
	if (p->def && p->choices && json_array_size(p->choices) == ch->n) {
		size_t i;
		json_t *c;
		int found = 0;

		json_array_foreach(p->choices, i, c) found |= json_equal(c, p->def);
		if (!found)
			diag(v, def, "%sdefault is not one of the choices", prefix);
	}
}

static void parse_connection(vctx *v, const ynode *k, const ynode *m, drb_connection *c)
{
	static const char *const sslmodes[] = {"disable",   "allow",	   "prefer", "require",
					       "verify-ca", "verify-full", NULL};
	char prefix[160], where[160];
	const ynode *kind;
	const char *const *keys = NULL;
	int pg = 0, secrets = 0;

	c->name = strdup(k->str);
	c->pos = k->pos;
	if (!is_ident(k->str))
		diag(v, k,
		     "invalid connection name '%.80s': use letters, digits and _, not "
		     "starting with a digit",
		     k->str);
	snprintf(where, sizeof(where), "connection '%.80s'", k->str);
	snprintf(prefix, sizeof(prefix), "%s: ", where);
	if (m->kind != YN_MAP) {
		diag(v, m, "%s must be a mapping with a 'kind'", where);
		return;
	}
	kind = mget(m, "kind");
	if (!kind) {
		diag(v, m, "%smissing required key 'kind'", prefix);
	} else if (is_str(kind) && !strcmp(kind->str, "postgres")) {
		keys = PG_KEYS;
		pg = 1;
	} else if (is_str(kind) && !strcmp(kind->str, "aws")) {
		keys = AWS_KEYS;
	} else {
		diag(v, kind, "%s'kind' must be postgres or aws", prefix);
	}
	if (keys)
		c->kind = strdup(kind->str);
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const ynode *key = m->kids[i], *val = m->kids[i + 1];

		if (in_list(key->str, SECRET_KEYS)) {
			secrets = 1;
			if (pg || !keys)
				diag(v, key,
				     "%ssecrets must come from the environment or a file: use "
				     "dsn_env or dsn_file",
				     prefix);
			else
				diag(v, key,
				     "%ssecrets must come from the environment or a file: use "
				     "profile or the AWS_* environment variables",
				     prefix);
			continue;
		}
		if (!keys)
			continue;
		if (!in_list(key->str, keys)) {
			unknown_key(v, key, where, keys);
			continue;
		}
		if (!strcmp(key->str, "connect_timeout") ||
		    !strcmp(key->str, "statement_timeout")) {
			double s;

			if (dur_value(val, &s) || s <= 0)
				diag(v, val, "%s'%s' must be a duration greater than 0", prefix,
				     key->str);
		} else if (!strcmp(key->str, "sslmode")) {
			if (!is_str(val) || !in_list(val->str, sslmodes))
				diag(v, val,
				     "%s'sslmode' must be one of disable, allow, prefer, "
				     "require, verify-ca, verify-full",
				     prefix);
		} else if (strcmp(key->str, "kind") && (!is_str(val) || !*val->str)) {
			diag(v, val, "%s'%s' must be a non-empty string", prefix, key->str);
		}
	}
	if (pg) {
		int n = !!mget(m, "dsn_env") + !!mget(m, "dsn_file") + !!mget(m, "rds_instance");

		/* an inline dsn: was refused above, with the advice this would repeat */
		if (n != 1 && !(n == 0 && secrets))
			diag(v, m, "%sneeds exactly one of dsn_env, dsn_file or rds_instance",
			     prefix);
	}
	c->spec = drb_yaml_to_json(m);
}

/* ---- steps ---- */

static void parse_retry(vctx *v, const ynode *r, const char *prefix, const char *id_where,
			drb_step *s)
{
	char where[200];
	const ynode *a, *n;
	double d;

	s->has_retry = 1;
	s->retry.attempts = 1;
	s->retry.exponential = 1;
	s->retry.initial_s = 1;
	s->retry.max_s = 60;
	if (r->kind != YN_MAP) {
		diag(v, r, "%s'retry' must be a mapping with 'attempts'", prefix);
		return;
	}
	snprintf(where, sizeof(where), "retry of %s", id_where);
	check_keys(v, r, RETRY_KEYS, where);
	a = mget(r, "attempts");
	if (!a)
		diag(v, r, "%sretry: missing required key 'attempts'", prefix);
	else if (a->kind != YN_SCALAR || a->vt != YV_INT || a->i < 1 || a->i > 100)
		diag(v, a, "%s'retry.attempts' must be an integer between 1 and 100", prefix);
	else
		s->retry.attempts = (int)a->i;
	n = opt(r, "backoff");
	if (n) {
		if (is_str(n) && !strcmp(n->str, "fixed"))
			s->retry.exponential = 0;
		else if (!is_str(n) || strcmp(n->str, "exponential"))
			diag(v, n, "%s'retry.backoff' must be exponential or fixed", prefix);
	}
	n = opt(r, "initial");
	if (n) {
		if (dur_value(n, &d) || d <= 0 || d > 3600)
			diag(v, n,
			     "%s'retry.initial' must be a duration greater than 0 and at most 1h",
			     prefix);
		else
			s->retry.initial_s = d;
	}
	n = opt(r, "max");
	if (n) {
		if (dur_value(n, &d) || d < s->retry.initial_s || d > 3600)
			diag(v, n, "%s'retry.max' must be a duration between retry.initial and 1h",
			     prefix);
		else
			s->retry.max_s = d;
	} else if (s->retry.initial_s > s->retry.max_s) {
		s->retry.max_s = s->retry.initial_s; /* the default cap never undercuts initial */
	}
}

static void parse_step(vctx *v, const ynode *m, size_t idx, int preflight, drb_step *s)
{
	char where[160], prefix[170], pfwhere[180];
	const ynode *id, *a, *n;
	const char *action = NULL;
	int mode = -2;
	double d;

	s->critical = 1;
	s->pos = m->pos;
	snprintf(where, sizeof(where), "%sstep #%zu",
		 v->kind     ? v->kind
		 : preflight ? "preflight "
			     : "",
		 idx + 1);
	if (m->kind != YN_MAP) {
		diag(v, m, "%s must be a mapping", where);
		return;
	}
	id = mget(m, "id");
	if (!id) {
		diag(v, m, "%s: missing required key 'id'", where);
	} else if (!is_str(id)) {
		diag(v, id, "%s: 'id' must be a string", where);
	} else if (!is_step_id(id->str)) {
		diag(v, id,
		     "%s: invalid id '%.80s': use letters, digits, _ and -, starting with a "
		     "letter or digit",
		     where, id->str);
	} else {
		seen_id *ids = realloc(v->ids, (v->n_ids + 1) * sizeof(*ids));

		snprintf(where, sizeof(where), "step '%.80s'", id->str);
		s->id = strdup(id->str);
		if (ids) {
			v->ids = ids;
			ids[v->n_ids].id = id->str;
			ids[v->n_ids].pos = m->pos;
			ids[v->n_ids].order = v->n_ids;
			v->n_ids++;
		}
	}
	snprintf(prefix, sizeof(prefix), "%s: ", where);
	snprintf(pfwhere, sizeof(pfwhere), "%s%s", s->id ? "preflight " : "", where);
	check_keys(v, m, STEP_KEYS, where);

	a = mget(m, "action");
	if (!a) {
		diag(v, m, "%smissing required key 'action'", prefix);
	} else if (!is_str(a)) {
		diag(v, a, "%s'action' must be a string", prefix);
	} else {
		action = a->str;
		s->action = strdup(a->str);
		mode = action_mode(v, a->str);
		if (mode == -1)
			diag(v, a, "%sunknown action '%.80s'", prefix, a->str);
	}
	s->with = with_field(v, m, prefix, "with", &s->with_pos);
	check_with(v, m, a, prefix);
	check_script(v, m, action, prefix, &s->script, &s->script_pos);
	expr_field(v, m, "assert", prefix, &s->assert_);
	expr_field(v, m, "when", prefix, &s->when);
	expr_field(v, m, "until", prefix, &s->until);
	expr_field(v, m, "for_each", prefix, &s->for_each);

	n = opt(m, "done_when");
	if (n && n->kind == YN_MAP) {
		char dprefix[200], dwhere[200];

		snprintf(dprefix, sizeof(dprefix), "%sdone_when: ", prefix);
		snprintf(dwhere, sizeof(dwhere), "done_when of %s", where);
		s->done_when_call = calloc(1, sizeof(*s->done_when_call));
		if (s->done_when_call)
			parse_call(v, n, DONE_WHEN_KEYS, dprefix, dwhere, "done_when.with", 1,
				   s->done_when_call);
	} else if (n && !is_str(n)) {
		diag(v, n,
		     "%s'done_when' must be an expression or a mapping {action, with, assert}",
		     prefix);
	} else {
		expr_field(v, m, "done_when", prefix, &s->done_when);
	}

	n = opt(m, "every");
	if (n) {
		if (dur_value(n, &d) || d < 0.1)
			diag(v, n, "%s'every' must be a duration of at least 100ms", prefix);
		else
			s->every_s = d;
		if (!opt(m, "until"))
			diag(v, key_node(m, "every"), "%s'every' needs 'until'", prefix);
	}
	if (s->until.src && !s->every_s)
		s->every_s = 5;
	n = opt(m, "timeout");
	if (n) {
		if (dur_value(n, &d) || d <= 0 || d > 86400)
			diag(v, n, "%s'timeout' must be a duration greater than 0 and at most 24h",
			     prefix);
		else
			s->timeout_s = d;
	}
	n = opt(m, "retry");
	if (n)
		parse_retry(v, n, prefix, where, s);
	n = opt(m, "on_failure");
	if (n) {
		int onf = parse_onf(n);

		if (onf < 0)
			diag(v, n, "%s'on_failure' must be abort, rollback or continue", prefix);
		else
			s->on_failure = (drb_on_failure)onf;
	}
	n = opt(m, "rollback");
	if (n) {
		char rprefix[200], rwhere[200];

		snprintf(rprefix, sizeof(rprefix), "%srollback: ", prefix);
		snprintf(rwhere, sizeof(rwhere), "rollback of %s", where);
		if (preflight)
			diag(v, key_node(m, "rollback"), "%s cannot have a rollback", pfwhere);
		if (n->kind != YN_MAP) {
			diag(v, n, "%s'rollback' must be a mapping {action, with, script}", prefix);
		} else {
			const ynode *nested = key_node(n, "rollback");

			if (nested)
				diag(v, nested, "%sa rollback cannot have its own rollback",
				     rprefix);
			s->rollback = calloc(1, sizeof(*s->rollback));
			if (s->rollback) {
				static const char *const rb_keys[] = {"action", "with", "script",
								      "rollback", NULL};
				parse_call(v, n, nested ? rb_keys : ROLLBACK_KEYS, rprefix, rwhere,
					   "rollback.with", 0, s->rollback);
			}
		}
	}
	n = opt(m, "as");
	if (n) {
		if (!is_str(n) || !is_ident(n->str) || in_list(n->str, AS_RESERVED) ||
		    in_list(n->str, LUA_KEYWORDS))
			diag(v, n,
			     "%s'as' must be a Lua name other than params, steps, result, drill "
			     "or a keyword",
			     prefix);
		else
			s->as = strdup(n->str);
		if (!opt(m, "for_each"))
			diag(v, key_node(m, "as"), "%s'as' needs 'for_each'", prefix);
	}
	if (!s->as)
		s->as = strdup("item");
	n = opt(m, "max_parallel");
	if (n) {
		if (n->kind != YN_SCALAR || n->vt != YV_INT || n->i < 1 || n->i > 64)
			diag(v, n, "%s'max_parallel' must be an integer between 1 and 64", prefix);
		else
			s->max_parallel = (int)n->i;
		if (!opt(m, "for_each"))
			diag(v, key_node(m, "max_parallel"), "%s'max_parallel' needs 'for_each'",
			     prefix);
	}
	n = opt(m, "needs");
	if (n && preflight) {
		diag(v, key_node(m, "needs"),
		     "%s cannot have needs: preflight checks run one after the other, before every "
		     "step",
		     pfwhere);
	} else if (n && n->kind != YN_SEQ) {
		diag(v, n, "%s'needs' must be a list of step ids", prefix);
	} else if (n) {
		s->needs_set = 1;
		s->needs = calloc(n->n + 1, sizeof(char *));
		for (size_t i = 0; s->needs && i < n->n; i++) {
			if (!is_str(n->kids[i]))
				diag(v, n->kids[i], "%s'needs' must be a list of step ids", prefix);
			else
				s->needs[s->n_needs++] = strdup(n->kids[i]->str);
		}
	}
	bool_field(v, m, "idempotent", prefix, &s->idempotent);
	s->read_only_set = bool_field(v, m, "read_only", prefix, &s->read_only) == 1;
	bool_field(v, m, "critical", prefix, &s->critical);
	{
		char *desc = NULL;

		str_field(v, m, "description", prefix, &desc);
		free(desc); /* validated only: the model has no field for it */
	}

	if (preflight && action && mode != -1) {
		if (!strcmp(action, "approval"))
			diag(v, a, "%s cannot ask for approval", pfwhere);
		else if (mode == 1)
			diag(v, a, "%s uses mutating action '%.80s'", pfwhere, action);
		else if (mode == 3 && !(s->read_only_set && s->read_only))
			diag(v, a, "%s uses action '%.80s' without read_only: true", pfwhere,
			     action);
	}
}

static int id_cmp(const void *pa, const void *pb)
{
	const seen_id *a = pa, *b = pb;
	int c = strcmp(a->id, b->id);

	if (c)
		return c;
	/* "first" is first in the file: preflight is parsed before steps but may be written
	 * after them */
	if (a->pos.line != b->pos.line)
		return a->pos.line < b->pos.line ? -1 : 1;
	if (a->pos.col != b->pos.col)
		return a->pos.col < b->pos.col ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Sorted, so thousands of steps cost n log n; each duplicate names the first definition. */
static void check_unique_ids(vctx *v)
{
	size_t first = 0;

	if (v->n_ids < 2)
		return;
	qsort(v->ids, v->n_ids, sizeof(*v->ids), id_cmp);
	for (size_t i = 1; i < v->n_ids; i++) {
		if (strcmp(v->ids[i].id, v->ids[first].id)) {
			first = i;
			continue;
		}
		drb_diags_add(v->d, v->ids[i].pos,
			      "duplicate step id '%.80s' (first defined at %d:%d)", v->ids[i].id,
			      v->ids[first].pos.line, v->ids[first].pos.col);
	}
}

static void parse_steps(vctx *v, const ynode *root, const char *key, int preflight, drb_step **out,
			size_t *n_out)
{
	const ynode *l = mget(root, key);

	if (!l) {
		if (!preflight)
			diag(v, root, "missing required key 'steps'");
		return;
	}
	if (l->kind != YN_SEQ || (!preflight && !l->n)) {
		if (preflight && is_null(l))
			return;
		diag(v, l,
		     preflight ? "'preflight' must be a list of steps"
			       : "'steps' must be a list of at least one step");
		return;
	}
	if (!l->n)
		return;
	*out = calloc(l->n, sizeof(**out));
	if (!*out) {
		diag(v, l, "out of memory");
		return;
	}
	*n_out = l->n;
	for (size_t i = 0; i < l->n; i++)
		parse_step(v, l->kids[i], i, preflight, &(*out)[i]);
}

static void parse_notify(vctx *v, const ynode *l, drb_runbook *rb)
{
	if (l->kind != YN_SEQ) {
		diag(v, l, "'notify' must be a list of {on, action, with}");
		return;
	}
	if (!l->n)
		return;
	rb->notify = calloc(l->n, sizeof(*rb->notify));
	if (!rb->notify)
		return;
	rb->n_notify = l->n;
	for (size_t i = 0; i < l->n; i++) {
		const ynode *m = l->kids[i], *on;
		drb_notify *nt = &rb->notify[i];
		char where[64], prefix[80];

		snprintf(where, sizeof(where), "notify entry #%zu", i + 1);
		snprintf(prefix, sizeof(prefix), "%s: ", where);
		if (m->kind != YN_MAP) {
			diag(v, m, "%s must be a mapping {on, action, with}", where);
			continue;
		}
		parse_call(v, m, NOTIFY_KEYS, prefix, where, "with", 0, &nt->call);
		on = mget(m, "on");
		if (!on) {
			diag(v, m, "%smissing required key 'on'", prefix);
			continue;
		}
		if (on->kind != YN_SEQ || !on->n) {
			diag(v, on, "%s'on' must be a list of start, success, failure, end",
			     prefix);
			continue;
		}
		nt->on = calloc(on->n, sizeof(char *));
		for (size_t j = 0; nt->on && j < on->n; j++) {
			if (!is_str(on->kids[j]) || !in_list(on->kids[j]->str, NOTIFY_EVENTS)) {
				diag(v, on->kids[j],
				     "%s'on' must be a list of start, success, failure, end",
				     prefix);
				continue;
			}
			nt->on[nt->n_on++] = strdup(on->kids[j]->str);
		}
	}
}

/* lock: KEY or [KEY, ...]; each key names a lock file, so its length and characters are
 * checked here rather than refused at run time. */
static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* us-east-1, eu-west-1, us-gov-west-1, cn-north-1: lowercase letters, digits and dashes. */
static int region_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 40 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return 0;
	return 1;
}

/* stop_when: [{alarm: NAME, region: R}, ...]: CloudWatch alarms that stop the run while it
 * lives (DESIGN.md v1.1). Literal text only: the watcher reads them before any step runs. */
static void parse_stop_when(vctx *v, const ynode *n, drb_runbook *rb)
{
	static const char *const keys[] = {"alarm", "region", NULL};

	if (n->kind != YN_SEQ || !n->n) {
		diag(v, n, "'stop_when' must be a non-empty list of {alarm: NAME, region: REGION}");
		return;
	}
	if (n->n > DRB_STOP_WHEN_MAX) {
		diag(v, n, "'stop_when' lists %zu alarms; at most %d", n->n, DRB_STOP_WHEN_MAX);
		return;
	}
	rb->stop_when = calloc(n->n, sizeof(*rb->stop_when));
	if (!rb->stop_when) {
		diag(v, n, "out of memory");
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const ynode *e = n->kids[i], *a, *r;
		char where[48];
		int bad = 0;

		snprintf(where, sizeof(where), "stop_when entry #%zu", i + 1);
		if (e->kind != YN_MAP) {
			diag(v, e, "%s must be a mapping {alarm: NAME, region: REGION}", where);
			continue;
		}
		check_keys(v, e, keys, where);
		a = opt(e, "alarm");
		r = opt(e, "region");
		if (!a) {
			diag(v, e, "%s: missing required key 'alarm' (a CloudWatch alarm name)",
			     where);
			bad = 1;
		} else if (!is_str(a) || !*a->str || strlen(a->str) > 255 || has_control(a->str)) {
			diag(v, a,
			     "%s: 'alarm' must be an alarm name: 1 to 255 characters of one line",
			     where);
			bad = 1;
		} else if (strstr(a->str, "${")) {
			diag(v, a, "%s: 'alarm' is read before the run starts: no ${ } here",
			     where);
			bad = 1;
		}
		if (r && (!is_str(r) || !region_name_ok(r->str))) {
			diag(v, r, "%s: 'region' must be an AWS region name like eu-west-1", where);
			bad = 1;
		}
		if (bad)
			continue;
		for (size_t j = 0; j < rb->n_stop_when; j++)
			if (!strcmp(rb->stop_when[j].alarm, a->str) &&
			    !strcmp(rb->stop_when[j].region ?: "", r ? r->str : "")) {
				diag(v, a, "%s: alarm '%s' is listed twice", where, a->str);
				bad = 1;
			}
		if (bad)
			continue;
		rb->stop_when[rb->n_stop_when].alarm = strdup(a->str);
		rb->stop_when[rb->n_stop_when].region = r ? strdup(r->str) : NULL;
		rb->stop_when[rb->n_stop_when].pos = a->pos;
		rb->n_stop_when++;
	}
}

static void parse_lock(vctx *v, const ynode *n, drb_runbook *rb)
{
	const ynode *one = n;
	size_t count = 1;

	if (n->kind == YN_SEQ) {
		if (!n->n) {
			diag(v, n, "'lock' must be a key or a non-empty list of keys");
			return;
		}
		count = n->n;
		if (count > DRB_LOCK_KEYS_MAX) {
			diag(v, n, "'lock' lists %zu keys; at most %d", count, DRB_LOCK_KEYS_MAX);
			return;
		}
	}
	rb->locks = calloc(count, sizeof(char *));
	if (!rb->locks) {
		diag(v, n, "out of memory");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const ynode *k = n->kind == YN_SEQ ? n->kids[i] : one;
		int dup = 0;

		if (!is_str(k) || !*k->str) {
			diag(v, k, "a lock key must be a non-empty string");
			continue;
		}
		if (!drb_runbook_lock_key_ok(k->str)) {
			if (strlen(k->str) > DRB_LOCK_KEY_MAX)
				diag(v, k, "lock key '%.40s...' is %zu bytes long; at most %d",
				     k->str, strlen(k->str), DRB_LOCK_KEY_MAX);
			else
				diag(v, k, "a lock key must not hold control characters");
			continue;
		}
		for (size_t j = 0; j < rb->n_locks; j++)
			dup |= !strcmp(rb->locks[j], k->str);
		if (dup) {
			diag(v, k, "lock key '%s' is listed twice", k->str);
			continue;
		}
		rb->locks[rb->n_locks++] = strdup(k->str);
	}
}

/* ---- the step graph (needs:) and steps.Y references ---- */

typedef struct gid {
	const char *id;
	int pre;    /* a preflight check */
	size_t idx; /* in rb->preflight or rb->steps */
} gid;

typedef struct gctx {
	vctx *v;
	gid *ids; /* sorted by id, then file order */
	size_t n_ids;
	size_t *mark; /* mark[k] == epoch: step k ends before the step being checked starts */
	size_t epoch;
	int marked;    /* mark is up to date for the step being checked (made at its first
			* steps.Y: marking is linear in the step's ancestors) */
	size_t *stack; /* mark_ancestors' */
	/* the expression being checked */
	int pre;     /* it belongs to a preflight check ... */
	size_t idx;  /* ... or step with this index */
	int any;     /* notify: any step may be named (they run at the end) */
	int self_ok; /* rollback: the step itself has ended */
	const ynode *node;
	const char *prefix, *what;
} gctx;

static int gid_cmp(const void *pa, const void *pb)
{
	const gid *a = pa, *b = pb;
	int c = strcmp(a->id, b->id);

	if (c)
		return c;
	if (a->pre != b->pre)
		return a->pre ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static const gid *gid_find(const gctx *g, const char *id, size_t n)
{
	size_t lo = 0, hi = g->n_ids;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(g->ids[mid].id, id, n);

		if (!c && g->ids[mid].id[n])
			c = 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < g->n_ids && !strncmp(g->ids[lo].id, id, n) && !g->ids[lo].id[n])
		return &g->ids[lo];
	return NULL;
}

/* Marks every step that step i waits for, directly or not (its ancestors). */
static void mark_ancestors(gctx *g, size_t i, size_t *stack)
{
	const drb_runbook *rb = g->v->rb;
	size_t top = 0;

	g->epoch++;
	stack[top++] = i;
	while (top) {
		const drb_step *s = &rb->steps[stack[--top]];

		for (size_t d = 0; d < s->n_deps; d++) {
			size_t k = s->deps[d];

			if (g->mark[k] != g->epoch) {
				g->mark[k] = g->epoch;
				stack[top++] = k;
			}
		}
	}
}

static int ref_cb(void *ud, const char *name, size_t n, size_t off)
{
	gctx *g = ud;
	const gid *t = gid_find(g, name, n);
	int ok;

	(void)off;
	if (!t) {
		diag(g->v, g->node, "%s'steps.%.*s' in %s: there is no step '%.*s'", g->prefix,
		     (int)(n > 80 ? 80 : n), name, g->what, (int)(n > 80 ? 80 : n), name);
		return 0;
	}
	if (g->any)
		ok = 1;
	else if (g->pre)
		ok = t->pre && t->idx < g->idx;
	else {
		if (!g->marked) { /* only a step that names another pays for its ancestors */
			mark_ancestors(g, g->idx, g->stack);
			g->marked = 1;
		}
		ok = t->pre || g->mark[t->idx] == g->epoch || (g->self_ok && t->idx == g->idx);
	}
	if (ok)
		return 0;
	if (g->pre && !t->pre)
		diag(g->v, g->node,
		     "%s'steps.%s' in %s: preflight checks run before step '%s' starts", g->prefix,
		     t->id, g->what, t->id);
	else if (!g->pre && t->idx == g->idx && !t->pre)
		diag(g->v, g->node, "%s'steps.%s' in %s: the step has not ended yet when this runs",
		     g->prefix, t->id, g->what);
	else if (g->pre)
		diag(g->v, g->node, "%s'steps.%s' in %s: preflight check '%s' runs after this one",
		     g->prefix, t->id, g->what, t->id);
	else
		diag(g->v, g->node,
		     "%s'steps.%s' in %s: step '%s' cannot have ended before this step starts "
		     "(add it to needs)",
		     g->prefix, t->id, g->what, t->id);
	return 0;
}

/* Every steps.Y in the ${ } expressions of a template (one scanner: luatext.h). */
static void refs_in_template(gctx *g, const char *s, size_t len)
{
	drb_tmpl t;
	drb_tmpl_part part;

	drb_tmpl_init(&t, s, len);
	while (drb_tmpl_next(&t, &part) > 0) {
		char *src;

		if (!part.expr)
			continue;
		src = strndup(part.p, part.n);
		if (src)
			drb_expr_refs(src, "steps", ref_cb, g);
		free(src);
	}
}

/* Every steps.Y in the ${ } of the strings under n (a with: mapping). */
static void refs_in_with(gctx *g, const ynode *n, const char *path)
{
	char sub[256];

	if (!n)
		return;
	if (n->kind == YN_SCALAR) {
		if (n->vt == YV_STR) {
			g->node = n;
			g->what = path;
			refs_in_template(g, n->str, n->len);
		}
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		if (n->kind == YN_SEQ) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
			refs_in_with(g, n->kids[i], sub);
		} else if (i % 2) {
			snprintf(sub, sizeof(sub), "%s.%.60s", path, n->kids[i - 1]->str);
			refs_in_with(g, n->kids[i], sub);
		}
	}
}

/* Every steps.Y in an expression or script written as a scalar. */
static void refs_in_code(gctx *g, const ynode *n, const char *what)
{
	if (!n || n->kind != YN_SCALAR || n->vt != YV_STR)
		return;
	g->node = n;
	g->what = what;
	drb_expr_refs(n->str, "steps", ref_cb, g);
}

static void refs_in_step(gctx *g, const ynode *m, const char *prefix)
{
	static const char *const exprs[] = {"assert", "when", "until", "for_each", "script", NULL};
	const ynode *n;
	char with_path[32] = "with";

	g->prefix = prefix;
	g->self_ok = 0;
	refs_in_with(g, opt(m, "with"), with_path);
	for (size_t i = 0; exprs[i]; i++)
		refs_in_code(g, opt(m, exprs[i]), exprs[i]);
	/* done_when and rollback may name the step itself: the first looks at what it left
	 * behind, the second runs after it ended */
	g->self_ok = 1;
	n = opt(m, "done_when");
	if (n && n->kind == YN_MAP) {
		refs_in_with(g, opt(n, "with"), "done_when.with");
		refs_in_code(g, opt(n, "assert"), "done_when.assert");
	} else {
		refs_in_code(g, n, "done_when");
	}
	n = opt(m, "rollback");
	if (n && n->kind == YN_MAP) {
		refs_in_with(g, opt(n, "with"), "rollback.with");
		refs_in_code(g, opt(n, "script"), "rollback.script");
		g->self_ok = 0;
	}
}

static void step_prefix(const drb_step *s, size_t i, int pre, char *buf, size_t n)
{
	if (s->id)
		snprintf(buf, n, "%sstep '%.80s': ", pre ? "preflight " : "", s->id);
	else
		snprintf(buf, n, "%sstep #%zu: ", pre ? "preflight " : "", i + 1);
}

/* needs -> deps, each unknown id reported at its place. */
static void resolve_needs(gctx *g, const ynode *steps_node)
{
	drb_runbook *rb = g->v->rb;
	char prefix[120];

	for (size_t i = 0; i < rb->n_steps; i++) {
		drb_step *s = &rb->steps[i];
		const ynode *m = steps_node->kids[i], *l = opt(m, "needs");

		step_prefix(s, i, 0, prefix, sizeof(prefix));
		if (!s->needs_set) {
			if (i > 0 && (s->deps = malloc(sizeof(*s->deps)))) {
				s->deps[0] = i - 1;
				s->n_deps = 1;
			}
			continue;
		}
		s->deps = calloc(l->n + 1, sizeof(*s->deps));
		if (!s->deps)
			continue;
		for (size_t k = 0; k < l->n; k++) {
			const ynode *e = l->kids[k];
			const gid *t;
			size_t dup = 0;

			if (!is_str(e))
				continue;
			t = gid_find(g, e->str, strlen(e->str));
			for (size_t j = 0; j < k; j++)
				if (is_str(l->kids[j]) && !strcmp(l->kids[j]->str, e->str))
					dup = 1;
			if (dup)
				diag(g->v, e, "%sneeds '%.80s' twice", prefix, e->str);
			else if (!t)
				diag(g->v, e, "%sneeds unknown step '%.80s'", prefix, e->str);
			else if (t->pre)
				diag(g->v, e,
				     "%sneeds preflight check '%.80s': preflight ends before any "
				     "step "
				     "starts",
				     prefix, e->str);
			else
				s->deps[s->n_deps++] = t->idx;
		}
	}
}

/* The node of step u's needs entry naming step v (for the place of a cycle). */
static const ynode *needs_entry(const drb_runbook *rb, const ynode *steps_node, size_t u, size_t v)
{
	const ynode *m = steps_node->kids[u], *l = opt(m, "needs");

	for (size_t k = 0; l && l->kind == YN_SEQ && k < l->n; k++)
		if (is_str(l->kids[k]) && rb->steps[v].id &&
		    !strcmp(l->kids[k]->str, rb->steps[v].id))
			return l->kids[k];
	return m;
}

/* Every cycle is reported once, at the needs entry that closes it. Returns 1 if any. */
static int find_cycles(gctx *g, const ynode *steps_node)
{
	drb_runbook *rb = g->v->rb;
	size_t n = rb->n_steps, *stack = calloc(n + 1, sizeof(size_t)),
	       *next = calloc(n + 1, sizeof(size_t));
	unsigned char *color = calloc(n + 1, 1);
	int found = 0;

	if (!stack || !next || !color)
		goto out;
	for (size_t root = 0; root < n; root++) {
		size_t top = 0;

		if (color[root])
			continue;
		stack[top++] = root;
		color[root] = 1;
		next[root] = 0;
		while (top) {
			size_t u = stack[top - 1];
			const drb_step *s = &rb->steps[u];

			if (next[u] >= s->n_deps) {
				color[u] = 2;
				top--;
				continue;
			}
			{
				size_t w = s->deps[next[u]++];

				if (color[w] == 0) {
					color[w] = 1;
					next[w] = 0;
					stack[top++] = w;
				} else if (color[w] == 1) {
					drb_buf b;
					char prefix[120];
					size_t at = top;

					while (at > 0 && stack[at - 1] != w)
						at--;
					drb_buf_init(&b, 4096);
					drb_buf_printf(&b, "%s", rb->steps[u].id ?: "?");
					for (size_t k = at - 1; k < top; k++)
						drb_buf_printf(&b, " -> %s",
							       rb->steps[stack[k]].id ?: "?");
					step_prefix(s, u, 0, prefix, sizeof(prefix));
					diag(g->v, needs_entry(rb, steps_node, u, w),
					     "%sneeds cycle: %s (each needs the next)", prefix,
					     b.p ? b.p : "");
					drb_buf_free(&b);
					found = 1;
				}
			}
		}
	}
out:
	free(stack);
	free(next);
	free(color);
	return found;
}

static void check_graph(vctx *v, const ynode *root)
{
	drb_runbook *rb = v->rb;
	const ynode *pre_node = opt(root, "preflight"), *steps_node = mget(root, "steps"),
		    *notify = opt(root, "notify");
	gctx g;
	char prefix[120];

	memset(&g, 0, sizeof(g));
	g.v = v;
	if (!steps_node || steps_node->kind != YN_SEQ || steps_node->n != rb->n_steps)
		return;
	g.ids = calloc(rb->n_preflight + rb->n_steps + 1, sizeof(*g.ids));
	g.mark = calloc(rb->n_steps + 1, sizeof(*g.mark));
	g.stack = calloc(rb->n_steps * 2 + 1, sizeof(*g.stack));
	if (!g.ids || !g.mark || !g.stack)
		goto out;
	for (size_t i = 0; i < rb->n_preflight; i++)
		if (rb->preflight[i].id)
			g.ids[g.n_ids++] = (gid){rb->preflight[i].id, 1, i};
	for (size_t i = 0; i < rb->n_steps; i++)
		if (rb->steps[i].id)
			g.ids[g.n_ids++] = (gid){rb->steps[i].id, 0, i};
	qsort(g.ids, g.n_ids, sizeof(*g.ids), gid_cmp);
	resolve_needs(&g, steps_node);
	find_cycles(&g, steps_node);

	for (size_t i = 0;
	     pre_node && pre_node->kind == YN_SEQ && i < pre_node->n && i < rb->n_preflight; i++) {
		step_prefix(&rb->preflight[i], i, 1, prefix, sizeof(prefix));
		g.pre = 1;
		g.idx = i;
		refs_in_step(&g, pre_node->kids[i], prefix);
	}
	g.pre = 0;
	for (size_t i = 0; i < rb->n_steps; i++) {
		step_prefix(&rb->steps[i], i, 0, prefix, sizeof(prefix));
		g.idx = i;
		g.marked = 0;
		refs_in_step(&g, steps_node->kids[i], prefix);
	}
	g.any = 1;
	for (size_t i = 0; notify && notify->kind == YN_SEQ && i < notify->n; i++) {
		snprintf(prefix, sizeof(prefix), "notify entry #%zu: ", i + 1);
		g.prefix = prefix;
		refs_in_with(&g, opt(notify->kids[i], "with"), "with");
	}
out:
	free(g.ids);
	free(g.mark);
	free(g.stack);
}

/* shadow: { setup: [STEP...], params: {NAME: VALUE...}, teardown: [STEP...] }. Setup and
 * teardown steps are steps (ids unique across the file) that run one after the other: no
 * needs, no rollback (teardown undoes what setup made), no approval in teardown (it runs
 * unattended, also after a signal). Each override names a declared parameter and has its
 * type (and is one of its choices). Setup without teardown is refused: what it creates must
 * go away. */
static void parse_shadow_steps(vctx *v, const ynode *sh, const char *key, drb_step **out,
			       size_t *n_out)
{
	const ynode *l = opt(sh, key);
	char kind[32];

	if (!l)
		return;
	if (l->kind != YN_SEQ || !l->n) {
		diag(v, l, "'shadow.%s' must be a list of at least one step", key);
		return;
	}
	*out = calloc(l->n, sizeof(**out));
	if (!*out)
		return;
	*n_out = l->n;
	snprintf(kind, sizeof(kind), "shadow %s ", key);
	v->kind = kind;
	for (size_t i = 0; i < l->n; i++) {
		drb_step *s = &(*out)[i];
		const ynode *m = l->kids[i];
		char where[160];

		parse_step(v, m, i, 0, s);
		if (m->kind != YN_MAP)
			continue;
		if (s->id)
			snprintf(where, sizeof(where), "shadow %s step '%.80s'", key, s->id);
		else
			snprintf(where, sizeof(where), "shadow %s step #%zu", key, i + 1);
		if (key_node(m, "needs"))
			diag(v, key_node(m, "needs"),
			     "%s cannot have needs: shadow %s steps run one after the other", where,
			     key);
		if (key_node(m, "rollback"))
			diag(v, key_node(m, "rollback"),
			     "%s cannot have a rollback: teardown undoes what setup made", where);
		if (!strcmp(key, "teardown") && s->action && !strcmp(s->action, "approval"))
			diag(v, mget(m, "action"),
			     "%s cannot ask for approval: teardown runs unattended", where);
	}
	v->kind = NULL;
}

static void parse_shadow(vctx *v, const ynode *sh)
{
	drb_runbook *rb = v->rb;
	const ynode *p;

	if (sh->kind != YN_MAP) {
		diag(v, sh, "'shadow' must be a mapping {setup, params, teardown}");
		return;
	}
	rb->has_shadow = 1;
	check_keys(v, sh, SHADOW_KEYS, "shadow");
	parse_shadow_steps(v, sh, "setup", &rb->shadow_setup, &rb->n_shadow_setup);
	parse_shadow_steps(v, sh, "teardown", &rb->shadow_teardown, &rb->n_shadow_teardown);
	if (opt(sh, "setup") && !opt(sh, "teardown"))
		diag(v, key_node(sh, "setup"),
		     "'shadow' has setup steps but no teardown: what setup creates must be torn "
		     "down");
	rb->shadow_params = json_object();
	p = opt(sh, "params");
	if (p && p->kind != YN_MAP) {
		diag(v, p, "'shadow.params' must be a mapping of parameter name to value");
		return;
	}
	for (size_t i = 0; p && i + 1 < p->n; i += 2) {
		const ynode *k = p->kids[i], *val = p->kids[i + 1];
		const drb_param *dp = NULL;
		json_t *tv;

		for (size_t j = 0; is_str(k) && j < rb->n_params; j++)
			if (rb->params[j].name && !strcmp(rb->params[j].name, k->str))
				dp = &rb->params[j];
		if (!dp) {
			diag(v, k,
			     "shadow.params: unknown parameter '%.80s' (declare it in 'params')",
			     is_str(k) ? k->str : "?");
			continue;
		}
		tv = typed_value(val, dp->type);
		if (!tv) {
			diag(v, val, "shadow.params.%.80s must be %s", dp->name,
			     type_expect(dp->type));
			continue;
		}
		if (dp->choices) {
			size_t j;
			json_t *c;
			int found = 0;

			json_array_foreach(dp->choices, j, c) found |= json_equal(c, tv);
			if (!found) {
				diag(v, val,
				     "shadow.params.%.80s is not one of the parameter's choices",
				     dp->name);
				json_decref(tv);
				continue;
			}
		}
		json_object_set_new(rb->shadow_params, dp->name, tv);
	}
}

static void parse_top(vctx *v, const ynode *root)
{
	drb_runbook *rb = v->rb;
	const ynode *n;
	double d;

	check_keys(v, root, TOP_KEYS, NULL);
	n = mget(root, "version");
	if (!n)
		diag(v, root, "missing required key 'version'");
	else if (n->kind != YN_SCALAR || n->vt != YV_INT || n->i != 1)
		diag(v, n, "'version' must be 1");
	else
		rb->version = 1;
	n = mget(root, "name");
	if (!n)
		diag(v, root, "missing required key 'name'");
	else if (!is_str(n) || !*n->str)
		diag(v, n, "'name' must be a non-empty string");
	else
		rb->name = strdup(n->str);
	str_field(v, root, "description", "", &rb->description);
	str_field(v, root, "scenario", "", &rb->scenario);

	n = opt(root, "targets");
	if (n && n->kind != YN_MAP) {
		diag(v, n, "'targets' must be a mapping {rto, rpo}");
	} else if (n) {
		const ynode *t;

		check_keys(v, n, (const char *const[]){"rto", "rpo", NULL}, "targets");
		if ((t = opt(n, "rto")) && dur_value(t, &d) == 0)
			rb->target_rto_s = d;
		else if (t)
			diag(v, t, "'targets.rto' must be a duration (like 90s, 15m or 1h)");
		if ((t = opt(n, "rpo")) && dur_value(t, &d) == 0)
			rb->target_rpo_s = d;
		else if (t)
			diag(v, t, "'targets.rpo' must be a duration (like 90s, 15m or 1h)");
	}

	n = opt(root, "params");
	if (n && n->kind != YN_MAP) {
		diag(v, n, "'params' must be a mapping of name to {type, default, ...}");
	} else if (n && n->n) {
		rb->params = calloc(n->n / 2, sizeof(*rb->params));
		if (rb->params) {
			rb->n_params = n->n / 2;
			for (size_t i = 0; i < rb->n_params; i++)
				parse_param(v, n->kids[2 * i], n->kids[2 * i + 1], &rb->params[i]);
		}
	}

	n = opt(root, "connections");
	if (n && n->kind != YN_MAP) {
		diag(v, n, "'connections' must be a mapping of name to {kind, ...}");
	} else if (n && n->n) {
		rb->conns = calloc(n->n / 2, sizeof(*rb->conns));
		if (rb->conns) {
			rb->n_conns = n->n / 2;
			for (size_t i = 0; i < rb->n_conns; i++)
				parse_connection(v, n->kids[2 * i], n->kids[2 * i + 1],
						 &rb->conns[i]);
		}
	}

	n = opt(root, "lua");
	if (n && n->kind != YN_SEQ) {
		diag(v, n, "'lua' must be a list of module names");
	} else if (n && n->n) {
		rb->lua_modules = calloc(n->n, sizeof(char *));
		for (size_t i = 0; rb->lua_modules && i < n->n; i++) {
			const ynode *mod = n->kids[i];

			if (!is_str(mod) || !is_module_name(mod->str)) {
				diag(v, mod,
				     "lua module '%.80s' is not a valid name (letters, digits, _ . "
				     "and -; no slashes or '..')",
				     mod->kind == YN_SCALAR ? mod->str : "?");
				continue;
			}
			rb->lua_modules[rb->n_lua_modules++] = strdup(mod->str);
		}
	}

	parse_steps(v, root, "preflight", 1, &rb->preflight, &rb->n_preflight);
	parse_steps(v, root, "steps", 0, &rb->steps, &rb->n_steps);
	n = opt(root, "shadow");
	if (n)
		parse_shadow(v, n);
	check_unique_ids(v);
	check_graph(v, root);

	rb->on_failure = DRB_ONF_ABORT;
	n = opt(root, "on_failure");
	if (n) {
		int onf = parse_onf(n);

		if (onf < 0)
			diag(v, n, "'on_failure' must be abort, rollback or continue");
		else
			rb->on_failure = (drb_on_failure)onf;
	}
	n = opt(root, "deadline");
	if (n) {
		if (dur_value(n, &d) || d <= 0)
			diag(v, n, "'deadline' must be a duration greater than 0");
		else
			rb->deadline_s = d;
	}
	n = opt(root, "lock");
	if (n)
		parse_lock(v, n, rb);
	else if (rb->name && !drb_runbook_lock_key_ok(rb->name))
		diag(v, mget(root, "name"),
		     "the name is the run lock key when 'lock' is not given: it must be at most %d "
		     "bytes without control characters; shorten it or set 'lock'",
		     DRB_LOCK_KEY_MAX);
	n = opt(root, "notify");
	if (n)
		parse_notify(v, n, rb);
	n = opt(root, "stop_when");
	if (n)
		parse_stop_when(v, n, rb);
	rb->max_parallel = 8;
	n = opt(root, "max_parallel");
	if (n && (n->kind != YN_SCALAR || n->vt != YV_INT || n->i < 1 || n->i > 64))
		diag(v, n, "'max_parallel' must be an integer between 1 and 64");
	else if (n)
		rb->max_parallel = (int)n->i;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF) and no NUL. */
int drb_runbook_is_text(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned cp, min;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			len = 2, cp = c & 0x1F, min = 0x80;
		else if ((c & 0xF0) == 0xE0)
			len = 3, cp = c & 0x0F, min = 0x800;
		else if ((c & 0xF8) == 0xF0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

/* for_each over a list parameter whose default is longer than DRB_FOR_EACH_MAX: the run would
 * refuse it, so validate says so first, at the for_each. */
static void check_for_each_sizes(vctx *v, const drb_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *e = steps[i].for_each.src, *z;
		size_t len;

		if (!e)
			continue;
		while (isspace((unsigned char)*e))
			e++;
		if (strncmp(e, "params.", 7))
			continue;
		e += 7;
		for (z = e; isalnum((unsigned char)*z) || *z == '_'; z++)
			;
		len = (size_t)(z - e);
		while (isspace((unsigned char)*z))
			z++;
		if (*z || !len)
			continue;
		for (size_t k = 0; k < v->rb->n_params; k++) {
			const drb_param *p = &v->rb->params[k];

			if (strlen(p->name) == len && !strncmp(p->name, e, len) &&
			    json_is_array(p->def) && json_array_size(p->def) > DRB_FOR_EACH_MAX)
				drb_diags_add(v->d, steps[i].for_each.pos,
					      "step '%.80s': for_each over params.%s: its default "
					      "has %zu items, more than the %d a for_each may have",
					      steps[i].id ? steps[i].id : "?", p->name,
					      json_array_size(p->def), DRB_FOR_EACH_MAX);
		}
	}
}

static size_t max_bytes(const drb_load_opts *opts)
{
	return opts && opts->max_bytes ? opts->max_bytes : (size_t)DRB_RUNBOOK_MAX_BYTES;
}

static void too_large(drb_diags *diags, const drb_load_opts *opts)
{
	if (max_bytes(opts) == (size_t)DRB_RUNBOOK_MAX_BYTES)
		drb_diags_add(diags, (drb_pos){0, 0}, "runbook larger than 1 MiB");
	else
		drb_diags_add(diags, (drb_pos){0, 0}, "runbook larger than the cap of %zu bytes",
			      max_bytes(opts));
}

static int load_buffer(drb_runbook **out, const char *name, const char *buf, size_t len,
		       const drb_load_opts *opts, drb_diags *diags)
{
	vctx v;
	ynode *root = NULL;
	drb_runbook *rb = NULL;
	size_t before = diags->n;
	int rc = 0;

	*out = NULL;
	memset(&v, 0, sizeof(v));
	if (len > max_bytes(opts)) {
		too_large(diags, opts);
		rc = DRB_EINVAL;
		goto out;
	}
	if (!drb_runbook_is_text((const unsigned char *)buf, len)) {
		drb_diags_add(diags, (drb_pos){0, 0},
			      "not a text file (NUL byte or invalid UTF-8)");
		rc = DRB_EINVAL;
		goto out;
	}
	rb = calloc(1, sizeof(*rb));
	if (!rb) {
		rc = DRB_ENOMEM;
		goto out;
	}
	rb->path = drb_strdup(name);
	rb->target_rto_s = rb->target_rpo_s = -1;
	drb_sha256_hex(buf, len, rb->sha256);
	if (drb_yaml_parse(buf, len, &root, diags)) {
		rc = DRB_EINVAL;
		goto out;
	}
	if (!root || is_null(root)) {
		drb_diags_add(diags, (drb_pos){0, 0}, "empty runbook");
		rc = DRB_EINVAL;
		goto out;
	}
	if (root->kind != YN_MAP) {
		drb_diags_add(diags, root->pos,
			      "the top level must be a mapping (version, name, steps, ...)");
		rc = DRB_EINVAL;
		goto out;
	}
	v.d = diags;
	v.opts = opts;
	v.rb = rb;
	v.L = luaL_newstate(); /* NULL: each check makes its own */
	parse_top(&v, root);
	check_for_each_sizes(&v, rb->preflight, rb->n_preflight);
	check_for_each_sizes(&v, rb->steps, rb->n_steps);
	/* no problem so far: every text compiled, and the reference checks need not compile
	 * them again (a third of the load's time) */
	drb_check_refs(diags, v.L, root, diags->n == before);
	if (diags->n > before)
		rc = DRB_EINVAL;
out:
	if (v.L)
		lua_close(v.L);
	free(v.ids);
	drb_yaml_free(root);
	drb_diags_sort(diags);
	if (rc)
		drb_runbook_free(rb);
	else
		*out = rb;
	return rc;
}

int drb_runbook_load_buffer(drb_runbook **out, const char *name, const char *buf, size_t len,
			    const drb_load_opts *opts, drb_diags *diags)
{
	return load_buffer(out, name, buf, len, opts, diags);
}

int drb_runbook_load(drb_runbook **out, const char *path, const drb_load_opts *opts,
		     drb_diags *diags)
{
	char *buf = NULL;
	size_t len = 0;
	drb_err err;
	int rc;

	*out = NULL;
	drb_err_clear(&err);
	rc = drb_file_read(path, max_bytes(opts), &buf, &len, &err);
	if (rc == DRB_ELIMIT) {
		too_large(diags, opts);
		rc = DRB_EINVAL;
		goto out;
	}
	if (rc) {
		/* the message is "PATH: reason": the path is already in front of the diagnostic */
		const char *why = err.msg;
		size_t pl = strlen(path);

		if (!strncmp(why, path, pl) && !strncmp(why + pl, ": ", 2))
			why += pl + 2;
		drb_diags_add(diags, (drb_pos){0, 0}, "cannot open: %s", why);
		rc = rc == DRB_ENOTFOUND ? DRB_ENOTFOUND : DRB_EINVAL;
		goto out;
	}
	rc = load_buffer(out, path, buf, len, opts, diags);
	if (rc == 0) {
		const char *slash = strrchr(path, '/');

		(*out)->dir =
		    slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	}
out:
	free(buf);
	return rc;
}
