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

/* The place of byte off of a scalar's text (for errors inside a cron expression). */
static drb_pos at_offset(const ynode *v, size_t off)
{
	drb_pos p = v->pos;

	p.col += v->quoted + (int)off;
	return p;
}

static int cron_parse_node(const ynode *v, drb_cron *c, drb_diags *d)
{
	char msg[256];
	size_t off = 0;

	if (!v || v->kind != YN_SCALAR || v->vt != YV_STR) {
		drb_diags_add(d, v ? v->pos : (drb_pos){0, 0},
			      "'cron' must be a string \"MIN HOUR DOM MON DOW\" (quote it)");
		return DRB_EINVAL;
	}
	if (drb_cron_parse(c, v->str, &off, msg, sizeof(msg))) {
		drb_diags_add(d, at_offset(v, off), "invalid cron expression: %s", msg);
		return DRB_EINVAL;
	}
	return 0;
}

static int duration_node(const ynode *v, double *out)
{
	return v && v->kind == YN_SCALAR && drb_duration_parse(v->str, out) == 0 && *out > 0
		   ? 0
		   : DRB_EINVAL;
}

/* blackout: a list of {cron, duration, reason} or {from, until, reason}. */
static void blackouts_parse(const ynode *list, drb_blackout **out, size_t *n, drb_diags *d)
{
	static const char *const keys[] = {"cron", "duration", "from", "until", "reason", NULL};

	if (list->kind != YN_SEQ) {
		drb_diags_add(d, list->pos,
			      "'blackout' must be a list of windows ({cron, duration} or {from, "
			      "until})");
		return;
	}
	*out = calloc(list->n + 1, sizeof(**out));
	for (size_t i = 0; *out && i < list->n; i++) {
		const ynode *m = list->kids[i], *v;
		drb_blackout *b = &(*out)[(*n)++];

		b->pos = m->pos;
		if (m->kind != YN_MAP) {
			drb_diags_add(d, m->pos,
				      "a blackout window is a mapping: {cron, duration} or {from, "
				      "until}");
			continue;
		}
		known_keys(m, keys, "a blackout window", d);
		if ((v = get(m, "reason"))) {
			if (!is_str(v))
				drb_diags_add(d, v->pos, "blackout 'reason' must be a string");
			else
				b->reason = strdup(v->str);
		}
		if (get(m, "cron")) {
			b->recurring = 1;
			cron_parse_node(get(m, "cron"), &b->cron, d);
			v = get(m, "duration");
			if (duration_node(v, &b->duration_s) || b->duration_s < 60)
				drb_diags_add(
				    d, v ? v->pos : m->pos,
				    "a recurring blackout needs 'duration' (how long each "
				    "window lasts from its start, at least 1m: 8h, 2h30m)");
			if (get(m, "from") || get(m, "until"))
				drb_diags_add(
				    d, m->pos,
				    "a blackout window is either recurring (cron, duration) "
				    "or one-off (from, until), not both");
			continue;
		}
		{
			const ynode *f = get(m, "from"), *u = get(m, "until");
			int64_t fm = 0, um = 0;

			if (!f || f->kind != YN_SCALAR || drb_rfc3339_parse(f->str, &fm))
				drb_diags_add(d, f ? f->pos : m->pos,
					      "a blackout window needs 'cron' and 'duration', or "
					      "'from' and 'until' as RFC 3339 times "
					      "(2026-12-20T00:00:00Z)");
			else if (!u || u->kind != YN_SCALAR || drb_rfc3339_parse(u->str, &um))
				drb_diags_add(d, u ? u->pos : m->pos,
					      "blackout 'until' must be an RFC 3339 time "
					      "(2027-01-04T00:00:00Z)");
			else if (um <= fm)
				drb_diags_add(d, u->pos, "blackout 'until' must be after 'from'");
			if (get(m, "duration"))
				drb_diags_add(d, get(m, "duration")->pos,
					      "'duration' goes with 'cron' (a one-off window has "
					      "'from' and 'until')");
			b->from_s = fm / 1000;
			b->until_s = um / 1000;
		}
	}
}

static int one_of(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(s, set[i]))
			return 1;
	return 0;
}

/* notify: {channel, severity, on, text} or a list of them; each becomes a run-level
 * notification of the drill's run (the `notify` action), so it is sent and logged like the
 * runbook's own. */
static void notify_parse(const ynode *v, const char *drill, drb_drill *dr, drb_diags *d)
{
	static const char *const keys[] = {"channel", "severity", "on", "text", NULL};
	static const char *const channels[] = {"slack", "pagerduty", "sns", NULL};
	static const char *const severities[] = {"info", "warning", "error", "critical", NULL};
	static const char *const events[] = {"start", "success", "failure", "end", NULL};
	size_t n = v->kind == YN_SEQ ? v->n : 1;

	if (v->kind != YN_SEQ && v->kind != YN_MAP) {
		drb_diags_add(d, v->pos,
			      "drill 'notify' must be a mapping {channel, severity, on} or a list "
			      "of them");
		return;
	}
	dr->notify = calloc(n, sizeof(*dr->notify));
	for (size_t i = 0; dr->notify && i < n; i++) {
		const ynode *m = v->kind == YN_SEQ ? v->kids[i] : v, *x;
		drb_notify *nt = &dr->notify[dr->n_notify++];
		char text[512];

		nt->call.pos = m->pos;
		nt->call.action = strdup("notify");
		nt->call.with = json_object();
		if (m->kind != YN_MAP) {
			drb_diags_add(d, m->pos, "a drill notification must be a mapping");
			continue;
		}
		known_keys(m, keys, "a drill notification", d);
		x = get(m, "channel");
		if (!is_str(x) || !one_of(x->str, channels))
			drb_diags_add(d, x ? x->pos : m->pos,
				      "notify 'channel' must be slack, pagerduty or sns");
		else
			json_object_set_new(nt->call.with, "channel", json_string(x->str));
		x = get(m, "severity");
		if (x && (!is_str(x) || !one_of(x->str, severities)))
			drb_diags_add(d, x->pos,
				      "notify 'severity' must be info, warning, error or critical");
		else
			json_object_set_new(nt->call.with, "severity",
					    json_string(x ? x->str : "error"));
		x = get(m, "text");
		if (x && !is_str(x)) {
			drb_diags_add(d, x->pos, "notify 'text' must be a string");
		} else {
			/* the drill's verdict, targets included (a missed target fails the drill)
			 */
			snprintf(text, sizeof(text),
				 "game-day drill %s: ${run.status}${run.error and (': ' .. "
				 "run.error) or ''} (run ${run.id})",
				 drill ? drill : "?");
			json_object_set_new(nt->call.with, "text", json_string(x ? x->str : text));
		}
		x = get(m, "on");
		if (!x) {
			nt->on = calloc(2, sizeof(char *));
			if (nt->on)
				nt->on[nt->n_on++] = strdup("failure");
		} else if (x->kind != YN_SEQ || x->n == 0) {
			drb_diags_add(d, x->pos,
				      "notify 'on' must be a list of start, success, failure, end");
		} else {
			nt->on = calloc(x->n + 1, sizeof(char *));
			for (size_t k = 0; nt->on && k < x->n; k++) {
				if (!is_str(x->kids[k]) || !one_of(x->kids[k]->str, events))
					drb_diags_add(d, x->kids[k]->pos,
						      "notify 'on' takes start, success, failure, "
						      "end");
				else
					nt->on[nt->n_on++] = strdup(x->kids[k]->str);
			}
		}
	}
}

static void drill_parse(drb_schedule *s, const char *dir, const ynode *m, drb_drill *dr,
			drb_diags *d)
{
	static const char *const keys[] = {"name",     "runbook",  "every",   "cron",
					   "catch_up", "params",   "approve", "yes",
					   "enabled",  "blackout", "notify",  "shadow",
					   NULL};
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
	dr->catch_up_s = 2 * 3600;
	v = get(m, "every");
	if (v && get(m, "cron")) {
		drb_diags_add(d, v->pos, "a drill has 'every' or 'cron', not both");
	} else if (!v && get(m, "cron")) {
		v = get(m, "cron");
		dr->has_cron = cron_parse_node(v, &dr->cron, d) == 0;
		dr->cron_src = strdup(v->str ? v->str : "");
		if ((v = get(m, "catch_up")) && duration_node(v, &dr->catch_up_s))
			drb_diags_add(d, v->pos,
				      "drill 'catch_up' must be a duration such as 30m or 2h");
	} else if (!v) {
		drb_diags_add(d, m->pos,
			      "a drill needs 'every' (a duration such as 24h or 168h) or 'cron' "
			      "(\"MIN HOUR DOM MON DOW\", UTC)");
	} else if (v->kind != YN_SCALAR || drb_duration_parse(v->str, &dr->every_s) ||
		   dr->every_s <= 0) {
		drb_diags_add(d, v->pos, "drill 'every' must be a duration such as 24h or 168h");
	}
	if (!get(m, "cron") && (v = get(m, "catch_up")))
		drb_diags_add(d, v->pos, "'catch_up' goes with 'cron'");
	if ((v = get(m, "blackout")))
		blackouts_parse(v, &dr->blackouts, &dr->n_blackouts, d);
	if ((v = get(m, "notify")))
		notify_parse(v, dr->name, dr, d);
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
	if ((v = get(m, "shadow"))) {
		if (v->kind != YN_SCALAR || v->vt != YV_BOOL)
			drb_diags_add(d, v->pos, "drill 'shadow' must be true or false");
		else
			dr->shadow = v->b;
	}
}

int drb_schedule_load(drb_schedule **out, const char *path, drb_diags *diags)
{
	static const char *const top_keys[] = {"version", "blackout", "drills", NULL};
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
	if ((v = get(root, "blackout")))
		blackouts_parse(v, &s->blackouts, &s->n_blackouts, diags);
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

static void blackouts_free(drb_blackout *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].reason);
	free(b);
}

void drb_schedule_free(drb_schedule *s)
{
	if (!s)
		return;
	blackouts_free(s->blackouts, s->n_blackouts);
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
		free(d->cron_src);
		blackouts_free(d->blackouts, d->n_blackouts);
		for (size_t j = 0; j < d->n_notify; j++) {
			for (size_t k = 0; k < d->notify[j].n_on; k++)
				free(d->notify[j].on[k]);
			free(d->notify[j].on);
			free(d->notify[j].call.action);
			json_decref(d->notify[j].call.with);
		}
		free(d->notify);
	}
	free(s->drills);
	free(s->path);
	free(s);
}

int drb_schedule_due(const drb_drill *d, int64_t last_s, int64_t now_s, int64_t *at_s)
{
	int64_t f = 0, from;

	*at_s = 0;
	if (!d->enabled)
		return 0;
	if (!d->has_cron) {
		*at_s = last_s ? last_s + (int64_t)d->every_s : now_s;
		return *at_s <= now_s;
	}
	/* the first firing after the last run that is not older than catch_up, if passed */
	from = now_s - (int64_t)d->catch_up_s - 1;
	if (last_s > from)
		from = last_s;
	if (drb_cron_next(&d->cron, from, &f) == 0 && f <= now_s) {
		*at_s = f;
		return 1;
	}
	if (drb_cron_next(&d->cron, last_s > now_s ? last_s : now_s, &f) == 0)
		*at_s = f;
	return 0;
}

/* Whether t is inside window b; *end: when that window closes. */
static int in_window(const drb_blackout *b, int64_t t, int64_t *end)
{
	int64_t f, g;

	if (!b->recurring) {
		*end = b->until_s;
		return t >= b->from_s && t < b->until_s;
	}
	/* a window [f, f + duration) holds t when some firing f lies in (t - duration, t]; it
	 * lasts longest from the latest such firing */
	if (drb_cron_next(&b->cron, t - (int64_t)b->duration_s, &f) || f > t)
		return 0;
	for (int i = 0; i < 100000 && drb_cron_next(&b->cron, f, &g) == 0 && g <= t; i++)
		f = g;
	*end = f + (int64_t)b->duration_s;
	return 1;
}

const drb_blackout *drb_schedule_blackout(const drb_schedule *s, const drb_drill *d, int64_t now_s,
					  int64_t *until_s)
{
	const drb_blackout *hit = NULL;
	int64_t t = now_s;

	/* follow windows that touch or overlap, so "until" is when a drill may start again */
	for (int guard = 0; guard < 1000; guard++) {
		const drb_blackout *found = NULL;
		int64_t end = 0;

		for (size_t i = 0; !found && s && i < s->n_blackouts; i++)
			if (in_window(&s->blackouts[i], t, &end))
				found = &s->blackouts[i];
		for (size_t i = 0; !found && d && i < d->n_blackouts; i++)
			if (in_window(&d->blackouts[i], t, &end))
				found = &d->blackouts[i];
		if (!found)
			break;
		if (!hit)
			hit = found;
		t = end;
	}
	*until_s = t;
	return hit;
}
