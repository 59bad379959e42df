/* Game-day schedules: which drills to rehearse and how often. Parsed with the same positioned
 * YAML tree as runbooks, validated with the same FILE:LINE:COL diagnostics. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runbook_int.h"

#define DRB_SCHEDULE_MAX_BYTES (256 * 1024)

static const ynode *get(const ynode *m, const char *key)
{
	for (size_t i = 0; m && m->kind == YN_MAP && i + 1 < m->n; i += 2)
		if (m->kids[i]->kind == YN_SCALAR && !strcmp(m->kids[i]->str, key))
			return m->kids[i + 1];
	return NULL;
}

static int is_str(const ynode *n)
{
	return n && n->kind == YN_SCALAR && n->vt == YV_STR && n->str[0];
}

static void known_keys(const ynode *m, const char *const *keys, const char *what, drb_diags *d)
{
	for (size_t i = 0; m && m->kind == YN_MAP && i + 1 < m->n; i += 2) {
		size_t k;

		for (k = 0; keys[k]; k++)
			if (!strcmp(keys[k], m->kids[i]->str))
				break;
		if (!keys[k])
			drb_diags_add(d, m->kids[i]->pos, "unknown key '%s' in %s", m->kids[i]->str,
				      what);
	}
}

static int valid_name(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return 0;
	return 1;
}

/* A parameter value as -p takes it: scalars as written, lists and maps as JSON. */
static char *param_kv(const char *key, const ynode *v)
{
	char *val = NULL, *out = NULL;
	size_t n;

	if (v->kind == YN_SCALAR) {
		val = strdup(v->vt == YV_BOOL ? (v->b ? "true" : "false") : v->str);
	} else {
		json_t *j = drb_yaml_to_json(v);

		val = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(j);
	}
	if (!val)
		return NULL;
	n = strlen(key) + strlen(val) + 2;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s=%s", key, val);
	free(val);
	return out;
}

static void drill_parse(drb_schedule *s, const char *dir, const ynode *m, drb_drill *dr,
			drb_diags *d)
{
	static const char *const keys[] = {"name",    "runbook", "every",   "params",
					   "approve", "yes",	 "enabled", NULL};
	const ynode *v;

	dr->pos = m->pos;
	dr->enabled = 1;
	if (m->kind != YN_MAP) {
		drb_diags_add(d, m->pos, "a drill must be a mapping (name, runbook, every, ...)");
		return;
	}
	known_keys(m, keys, "a drill", d);
	v = get(m, "name");
	if (!is_str(v) || !valid_name(v->str))
		drb_diags_add(d, v ? v->pos : m->pos,
			      "drill 'name' is required: letters, digits, '_', '.', '-'");
	else
		dr->name = strdup(v->str);
	for (size_t i = 0; dr->name && s->drills + i < dr; i++)
		if (s->drills[i].name && !strcmp(s->drills[i].name, dr->name))
			drb_diags_add(d, v->pos, "duplicate drill name '%s' (first at %d:%d)",
				      dr->name, s->drills[i].pos.line, s->drills[i].pos.col);
	v = get(m, "runbook");
	if (!is_str(v)) {
		drb_diags_add(d, v ? v->pos : m->pos, "drill 'runbook' is required (a path)");
	} else if (v->str[0] == '/' || !dir) {
		dr->runbook = strdup(v->str);
	} else {
		size_t n = strlen(dir) + strlen(v->str) + 2;

		dr->runbook = malloc(n);
		if (dr->runbook)
			snprintf(dr->runbook, n, "%s/%s", dir, v->str);
	}
	v = get(m, "every");
	if (!v || v->kind != YN_SCALAR || drb_duration_parse(v->str, &dr->every_s) ||
	    dr->every_s <= 0)
		drb_diags_add(d, v ? v->pos : m->pos,
			      "drill 'every' must be a duration such as 24h or 168h");
	if ((v = get(m, "params"))) {
		if (v->kind != YN_MAP) {
			drb_diags_add(d, v->pos, "drill 'params' must be a mapping");
		} else {
			dr->params = calloc(v->n / 2 + 1, sizeof(char *));
			for (size_t i = 0; dr->params && i + 1 < v->n; i += 2)
				dr->params[dr->n_params++] =
				    param_kv(v->kids[i]->str, v->kids[i + 1]);
		}
	}
	if ((v = get(m, "approve"))) {
		if (v->kind != YN_SEQ) {
			drb_diags_add(d, v->pos, "drill 'approve' must be a list of step ids");
		} else {
			dr->approve = calloc(v->n + 1, sizeof(char *));
			for (size_t i = 0; dr->approve && i < v->n; i++) {
				if (!is_str(v->kids[i]))
					drb_diags_add(d, v->kids[i]->pos,
						      "a step id must be a string");
				else
					dr->approve[dr->n_approve++] = strdup(v->kids[i]->str);
			}
		}
	}
	if ((v = get(m, "yes"))) {
		if (v->kind != YN_SCALAR || v->vt != YV_BOOL)
			drb_diags_add(d, v->pos, "drill 'yes' must be true or false");
		else
			dr->yes = v->b;
	}
	if ((v = get(m, "enabled"))) {
		if (v->kind != YN_SCALAR || v->vt != YV_BOOL)
			drb_diags_add(d, v->pos, "drill 'enabled' must be true or false");
		else
			dr->enabled = v->b;
	}
}

int drb_schedule_load(drb_schedule **out, const char *path, drb_diags *diags)
{
	static const char *const top_keys[] = {"version", "drills", NULL};
	drb_schedule *s = NULL;
	ynode *root = NULL;
	const ynode *v, *list;
	char *buf = NULL, *dir = NULL, *slash;
	size_t len = 0, before = diags->n;
	drb_err err = {0};
	int rc;

	*out = NULL;
	rc = drb_file_read(path, DRB_SCHEDULE_MAX_BYTES, &buf, &len, &err);
	if (rc) {
		drb_diags_add(diags, (drb_pos){0, 0}, "cannot read the schedule: %s", err.msg);
		rc = rc == DRB_ENOTFOUND ? DRB_ENOTFOUND : DRB_EINVAL;
		goto out;
	}
	if (!drb_runbook_is_text((const unsigned char *)buf, len)) {
		drb_diags_add(diags, (drb_pos){0, 0},
			      "not a text file (NUL byte or invalid UTF-8)");
		rc = DRB_EINVAL;
		goto out;
	}
	if (drb_yaml_parse(buf, len, &root, diags) || !root) {
		if (!root)
			drb_diags_add(diags, (drb_pos){0, 0}, "empty schedule");
		rc = DRB_EINVAL;
		goto out;
	}
	if (root->kind != YN_MAP) {
		drb_diags_add(diags, root->pos,
			      "the top level must be a mapping (version, drills)");
		rc = DRB_EINVAL;
		goto out;
	}
	known_keys(root, top_keys, "the schedule", diags);
	v = get(root, "version");
	if (!v || v->kind != YN_SCALAR || v->vt != YV_INT || v->i != 1)
		drb_diags_add(diags, v ? v->pos : root->pos, "'version' must be 1");
	list = get(root, "drills");
	if (!list || list->kind != YN_SEQ || list->n == 0) {
		drb_diags_add(diags, list ? list->pos : root->pos,
			      "'drills' must be a non-empty list");
		rc = DRB_EINVAL;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	dir = strdup(path);
	if (!s || !dir || !(s->drills = calloc(list->n, sizeof(*s->drills)))) {
		rc = DRB_ENOMEM;
		goto out;
	}
	s->path = strdup(path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	for (size_t i = 0; i < list->n; i++, s->n_drills++)
		drill_parse(s, slash ? dir : NULL, list->kids[i], &s->drills[i], diags);
	rc = diags->n > before ? DRB_EINVAL : 0;
out:
	drb_diags_sort(diags);
	drb_yaml_free(root);
	free(buf);
	free(dir);
	if (rc)
		drb_schedule_free(s);
	else
		*out = s;
	return rc;
}

void drb_schedule_free(drb_schedule *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_drills; i++) {
		drb_drill *d = &s->drills[i];

		free(d->name);
		free(d->runbook);
		for (size_t j = 0; j < d->n_params; j++)
			free(d->params[j]);
		free(d->params);
		for (size_t j = 0; j < d->n_approve; j++)
			free(d->approve[j]);
		free(d->approve);
	}
	free(s->drills);
	free(s->path);
	free(s);
}
