/* The with: check of validate: every literal argument of a step (and of its rollback,
 * done_when and notify calls) against the schema of its action, with the same rules the run
 * applies to the interpolated values (drb_arg_check), so validate and run cannot disagree.
 * The schemas come in as data through drb_load_opts: the runbook module never sees the
 * providers. */
#include <string.h>

#include "runbook_int.h"

/* Any ${ } makes the value the run's business: a whole-value ${x} keeps whatever type x has. */
static int has_interp(const ynode *n)
{
	return n->kind == YN_SCALAR && n->vt == YV_STR && strstr(n->str, "${") != NULL;
}

/* A misspelling of name is in w: its "did you mean" already says what is missing. */
static int misspelt(const drb_action_schema *s, const ynode *w, const char *name)
{
	for (size_t i = 0; w && i + 1 < w->n; i += 2) {
		const ynode *k = w->kids[i];
		const char *near;

		if (k->kind == YN_SCALAR && !drb_schema_arg(s, k->str) &&
		    (near = drb_schema_suggest(s, k->str)) && !strcmp(near, name))
			return 1;
	}
	return 0;
}

void drb_with_check(drb_diags *d, const char *prefix, const char *action,
		    const drb_action_schema *s, const ynode *w, const ynode *at)
{
	if (!s || s->open || (w && w->kind != YN_MAP))
		return;
	for (size_t i = 0; w && i + 1 < w->n; i += 2) {
		const ynode *k = w->kids[i], *v = w->kids[i + 1];
		const drb_arg_spec *a = k->kind == YN_SCALAR ? drb_schema_arg(s, k->str) : NULL;
		json_t *j;
		drb_err e;

		if (k->kind != YN_SCALAR)
			continue; /* the YAML checks have reported it */
		if (!a) {
			const char *near = drb_schema_suggest(s, k->str);

			drb_diags_add(d, k->pos, "%s%s: unknown argument '%.80s'%s%s%s", prefix,
				      action, k->str, near ? " (did you mean '" : "",
				      near ? near : "", near ? "'?)" : "");
			continue;
		}
		if (has_interp(v))
			continue;
		j = drb_yaml_to_json(v);
		drb_err_clear(&e);
		if (j && drb_arg_check(a, j, &e))
			drb_diags_add(d, v->pos, "%s%s: %s", prefix, action, e.msg);
		json_decref(j);
	}
	for (const drb_arg_spec *a = s->args; a && a->name; a++) {
		const ynode *v = NULL;

		if (!a->required)
			continue;
		for (size_t i = 0; w && i + 1 < w->n; i += 2)
			if (w->kids[i]->kind == YN_SCALAR && !strcmp(w->kids[i]->str, a->name))
				v = w->kids[i + 1];
		if ((!v || (v->kind == YN_SCALAR && v->vt == YV_NULL)) && !misspelt(s, w, a->name))
			drb_diags_add(d, w ? w->pos : at->pos, "%s%s: argument '%s' is required",
				      prefix, action, a->name);
	}
}
