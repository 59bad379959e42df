/* The history of game-day drills, read back from the runs folder's audit logs: one summary per
 * run (outcome, RTO and RPO against targets), grouped by drill, and each scenario's RTO trend
 * (the slope of its last runs), rendered as text, JSON, or HTML with an inline SVG chart. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/audit.h>
#include <drbook/report.h>
#include <drbook/util.h>

#include "report_int.h"

#define TREND_RUNS 5	    /* the trend is the slope of this many last RTOs */
#define TREND_STEADY 0.05   /* a slope under 5% of the mean per drill is steady */
#define MAX_RUN_LOGS 100000 /* more logs than this in one folder is refused */
#define CHART_RUNS 30	    /* the chart shows this many last runs per scenario */

static const char *str(const json_t *d, const char *k)
{
	const char *s = json_string_value(json_object_get(d, k));

	return s ? s : "";
}

/* met | missed | unknown: run.end's targets.{rto,rpo} when the log has them, else the older
 * targets.{rto,rpo}_met, else the measure against the target recorded in the log. */
static const char *verdict(const json_t *end_targets, const char *k, const json_t *measured,
			   const json_t *target)
{
	char key[16];
	const json_t *v = json_object_get(end_targets, k);

	if (json_is_string(v) &&
	    (!strcmp(json_string_value(v), "met") || !strcmp(json_string_value(v), "missed")))
		return json_string_value(v);
	snprintf(key, sizeof(key), "%s_met", k);
	v = json_object_get(end_targets, key);
	if (json_is_boolean(v))
		return json_is_true(v) ? "met" : "missed";
	if (json_is_number(measured) && json_is_number(target))
		return json_number_value(measured) <= json_number_value(target) ? "met" : "missed";
	return "unknown";
}

static const char *outcome(const char *status, const char *rto, const char *rpo)
{
	if (!strcmp(status, "succeeded"))
		return strcmp(rto, "missed") && strcmp(rpo, "missed") ? "succeeded" : "failed";
	if (!strcmp(status, "failed") || !strcmp(status, "rolled_back"))
		return "failed";
	if (!strcmp(status, "refused"))
		return "refused";
	return "interrupted";
}

/* One run's summary from its records; NULL for a log without run.start. */
static json_t *summarize(const char *path, const json_t *recs)
{
	const json_t *start = NULL, *end = NULL, *rec;
	json_t *s, *tg, *st;
	size_t i;
	int64_t ms = 0;

	json_t *steps_ms = NULL;

	json_array_foreach(recs, i, rec)
	{
		const char *ev = str(rec, "event");

		if (!start && drb_event_of(ev) == DRB_EV_RUN_START)
			start = rec;
		else if (drb_event_of(ev) == DRB_EV_RUN_END)
			end = rec;
	}
	if (!start || drb_rfc3339_parse(str(start, "ts"), &ms))
		return NULL;
	/* how long each step (not a for_each child) took when it ended ok: the forecast's data */
	if (!(steps_ms = json_object()))
		return NULL;
	json_array_foreach(recs, i, rec)
	{
		const json_t *d = json_object_get(rec, "data");
		const char *uid = str(rec, "step");

		if (drb_event_of(str(rec, "event")) == DRB_EV_STEP_END && *uid &&
		    !strchr(uid, '[') && !strcmp(str(d, "status"), "ok") &&
		    json_is_integer(json_object_get(d, "duration_ms")))
			json_object_set(steps_ms, uid, json_object_get(d, "duration_ms"));
	}
	st = json_object_get(start, "data");
	s = json_pack("{s:s, s:s, s:O?, s:s, s:O?, s:O?, s:s, s:b, s:s, s:I}", "log", path, "run",
		      str(start, "run"), "gameday", json_object_get(st, "gameday"), "name",
		      str(st, "name"), "scenario", json_object_get(st, "scenario"), "runbook",
		      json_object_get(st, "runbook"), "mode", str(st, "mode"), "drill",
		      json_is_true(json_object_get(st, "drill")), "started_at", str(start, "ts"),
		      "started_ms", (json_int_t)ms);
	if (!s || json_object_set_new(s, "steps_ms", steps_ms)) {
		if (!s)
			json_decref(steps_ms);
		json_decref(s);
		return NULL;
	}
	/* targets: run.end's (the run's verdict) over run.start's (what it aimed at) */
	tg = json_object();
	json_object_update(tg, json_object_get(st, "targets"));
	if (end) {
		const json_t *ed = json_object_get(end, "data");
		const json_t *et = json_object_get(ed, "targets");

		if (json_is_number(json_object_get(et, "rto_s")))
			json_object_set(tg, "rto_s", json_object_get(et, "rto_s"));
		if (json_is_number(json_object_get(et, "rpo_s")))
			json_object_set(tg, "rpo_s", json_object_get(et, "rpo_s"));
		json_object_set_new(s, "ended_at", json_string(str(end, "ts")));
		json_object_set_new(s, "status", json_string(str(ed, "status")));
		json_object_set(s, "exit_code", json_object_get(ed, "exit_code"));
		if (json_object_get(ed, "error"))
			json_object_set(s, "error", json_object_get(ed, "error"));
		if (json_is_number(json_object_get(ed, "rto_s")))
			json_object_set(s, "rto_s", json_object_get(ed, "rto_s"));
		if (json_is_number(json_object_get(ed, "rpo_s")))
			json_object_set(s, "rpo_s", json_object_get(ed, "rpo_s"));
		json_object_set_new(s, "rto",
				    json_string(verdict(et, "rto", json_object_get(ed, "rto_s"),
							json_object_get(tg, "rto_s"))));
		json_object_set_new(s, "rpo",
				    json_string(verdict(et, "rpo", json_object_get(ed, "rpo_s"),
							json_object_get(tg, "rpo_s"))));
	} else {
		json_object_set_new(s, "status", json_string("interrupted"));
		json_object_set_new(s, "rto", json_string("unknown"));
		json_object_set_new(s, "rpo", json_string("unknown"));
	}
	json_object_set_new(s, "targets", tg);
	json_object_set_new(s, "outcome",
			    json_string(outcome(str(s, "status"), str(s, "rto"), str(s, "rpo"))));
	return s;
}

static int by_start(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "started_ms"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "started_ms"));

	return x < y ? -1 : x > y;
}

int drb_report_runs(const char *dir, json_t **out, drb_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	json_t **v = NULL, *arr = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	if (!d) {
		/* no runs folder yet: no runs */
		*out = json_array();
		return *out ? 0 : drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	while ((e = readdir(d))) {
		char path[4096];
		json_t *recs = NULL, *s;
		drb_err ignored = {0};
		size_t len = strlen(e->d_name);

		if (len < 7 || strcmp(e->d_name + len - 6, ".jsonl"))
			continue;
		if (n >= MAX_RUN_LOGS) {
			rc = drb_err_set(err, DRB_ELIMIT, "%s: more than %d logs", dir,
					 MAX_RUN_LOGS);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		/* a log that cannot be read is not a run (audit verify says why) */
		if (drb_audit_read(path, &recs, &ignored))
			continue;
		s = summarize(path, recs);
		json_decref(recs);
		if (!s)
			continue;
		if (n == cap) {
			json_t **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!nv) {
				json_decref(s);
				rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
				goto out;
			}
			v = nv;
		}
		v[n++] = s;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_start);
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_array_append_new(arr, v[i]);
		v[i] = NULL;
	}
	if (!arr)
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
	*out = arr;
out:
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
	closedir(d);
	return rc;
}

/* ---- RTO forecast (drbook plan) ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median and nearest-rank 95th percentile of v[0..n-1] (sorted here), n > 0. */
static void quantiles(double *v, size_t n, double *median, double *p95)
{
	size_t r = (size_t)ceil(0.95 * (double)n);

	qsort(v, n, sizeof(*v), cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*p95 = v[(r ? r : 1) - 1];
}

/* {samples, median_s, p95_s} of step id over the runs, or NULL when no run has it. */
static json_t *step_forecast(const json_t *runs, const char *id)
{
	size_t i, n = 0;
	const json_t *run;
	double *v = malloc((json_array_size(runs) + 1) * sizeof(*v)), med, p95;
	json_t *o = NULL;

	if (!v)
		return NULL;
	json_array_foreach(runs, i, run)
	{
		const json_t *ms = json_object_get(json_object_get(run, "steps_ms"), id);

		if (json_is_integer(ms))
			v[n++] = (double)json_integer_value(ms) / 1000.0;
	}
	if (n) {
		quantiles(v, n, &med, &p95);
		o = json_pack("{s:s, s:I, s:f, s:f}", "id", id, "samples", (json_int_t)n,
			      "median_s", med, "p95_s", p95);
	}
	free(v);
	return o;
}

static size_t plan_index(const json_t *plan, const char *id)
{
	size_t i;
	const json_t *s;

	json_array_foreach(plan, i, s)
	{
		if (!strcmp(str(s, "id"), id))
			return i;
	}
	return (size_t)-1;
}

int drb_report_forecast(const json_t *all_runs, const char *name, const json_t *plan,
			const json_t *preflight, double target_rto_s, json_t **out, drb_err *err)
{
	json_t *runs = json_array(), *f = NULL, *steps = json_array(), *path = json_array();
	json_t **fc = NULL;
	size_t i, n = json_array_size(plan), best = 0, k;
	const json_t *run, *s, *id;
	double *len = NULL, pre_med = 0, pre_p95 = 0, path_med = 0, path_p95 = 0;
	size_t *prev = NULL;
	int rc = 0;

	*out = NULL;
	fc = calloc(n + 1, sizeof(*fc));
	len = calloc(n + 1, sizeof(*len));
	prev = calloc(n + 1, sizeof(*prev));
	if (!runs || !steps || !path || !fc || !len || !prev) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	/* the past runs and drills of this runbook (a plan runs no step) */
	json_array_foreach(all_runs, i, run)
	{
		if (!strcmp(str(run, "name"), name) && strcmp(str(run, "mode"), "plan") &&
		    json_object_size(json_object_get(run, "steps_ms")))
			json_array_append(runs, (json_t *)run);
	}
	f = json_pack("{s:I, s:b}", "runs", (json_int_t)json_array_size(runs), "history",
		      json_array_size(runs) > 0);
	if (!f) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (target_rto_s >= 0)
		json_object_set_new(f, "target_rto_s", json_real(target_rto_s));
	if (!json_array_size(runs))
		goto done;
	json_array_foreach(preflight, i, id)
	{
		json_t *p = step_forecast(runs, json_string_value(id));

		if (p) {
			pre_med += json_real_value(json_object_get(p, "median_s"));
			pre_p95 += json_real_value(json_object_get(p, "p95_s"));
		}
		json_decref(p);
	}
	json_array_foreach(plan, i, s)
	{
		fc[i] = step_forecast(runs, str(s, "id"));
		if (fc[i])
			json_array_append(steps, fc[i]);
		else
			json_array_append_new(
			    steps, json_pack("{s:s, s:i}", "id", str(s, "id"), "samples", 0));
	}
	/* the longest chain by predicted median (needs may point forward: relax until stable,
	 * at most n rounds in an acyclic graph); a step without history counts 0 */
	for (size_t round = 0, changed = 1; changed && round <= n; round++) {
		changed = 0;
		json_array_foreach(plan, i, s)
		{
			double w = fc[i] ? json_real_value(json_object_get(fc[i], "median_s")) : 0;
			double l = w;
			size_t p = i;

			json_array_foreach(json_object_get(s, "needs"), k, id)
			{
				size_t d = plan_index(plan, json_string_value(id));

				if (d < n && len[d] + w > l)
					l = len[d] + w, p = d;
			}
			if (l != len[i] || p != prev[i])
				len[i] = l, prev[i] = p, changed = 1;
		}
	}
	/* ties: the chain ending last (a step without history after the path still ends it) */
	for (i = 1; i < n; i++)
		if (len[i] >= len[best])
			best = i;
	for (i = best; n;) {
		json_array_insert_new(path, 0, json_string(str(json_array_get(plan, i), "id")));
		if (fc[i]) {
			path_med += json_real_value(json_object_get(fc[i], "median_s"));
			path_p95 += json_real_value(json_object_get(fc[i], "p95_s"));
		}
		if (prev[i] == i || json_array_size(path) > n)
			break;
		i = prev[i];
	}
	json_object_set(f, "steps", steps);
	json_object_set(f, "critical_path", path);
	json_object_set_new(f, "preflight_median_s", json_real(pre_med));
	json_object_set_new(f, "preflight_p95_s", json_real(pre_p95));
	json_object_set_new(f, "critical_path_median_s", json_real(path_med));
	json_object_set_new(f, "critical_path_p95_s", json_real(path_p95));
	json_object_set_new(f, "rto_median_s", json_real(pre_med + path_med));
	json_object_set_new(f, "rto_p95_s", json_real(pre_p95 + path_p95));
	if (target_rto_s >= 0) {
		json_object_set_new(f, "exceeds", json_boolean(pre_med + path_med > target_rto_s));
		json_object_set_new(f, "p95_exceeds",
				    json_boolean(pre_p95 + path_p95 > target_rto_s));
	}
done:
	*out = f;
	f = NULL;
out:
	for (i = 0; fc && i < n; i++)
		json_decref(fc[i]);
	free(fc);
	free(len);
	free(prev);
	json_decref(f);
	json_decref(runs);
	json_decref(steps);
	json_decref(path);
	return rc;
}

/* Least-squares slope of y over 0..n-1. */
static double slope(const double *y, size_t n)
{
	double mx = (double)(n - 1) / 2, my = 0, num = 0, den = 0;

	for (size_t i = 0; i < n; i++)
		my += y[i] / (double)n;
	for (size_t i = 0; i < n; i++) {
		num += ((double)i - mx) * (y[i] - my);
		den += ((double)i - mx) * ((double)i - mx);
	}
	return den > 0 ? num / den : 0;
}

/* The scenario's trend from the RTOs of its runs (in start order). */
static json_t *trend(const char *scenario, json_t *runs, double target)
{
	double y[TREND_RUNS], mean = 0, k;
	size_t n = 0, m, i, total = json_array_size(runs);
	json_t *r, *t;
	const char *word;

	/* the last TREND_RUNS measured RTOs, oldest first */
	for (i = total; i-- > 0 && n < TREND_RUNS;) {
		r = json_array_get(runs, i);
		if (json_is_number(json_object_get(r, "rto_s")))
			n++;
	}
	for (i = total, m = n; i-- > 0 && m > 0;) {
		r = json_array_get(runs, i);
		if (json_is_number(json_object_get(r, "rto_s")))
			y[--m] = json_number_value(json_object_get(r, "rto_s"));
	}
	for (i = 0; i < n; i++)
		mean += y[i] / (double)n;
	k = n >= 2 ? slope(y, n) : 0;
	if (n < 2)
		word = "unknown";
	else if (mean > 0 && k < -TREND_STEADY * mean)
		word = "improving";
	else if (mean > 0 && k > TREND_STEADY * mean)
		word = "worsening";
	else
		word = "steady";
	t = json_pack("{s:s, s:s, s:i, s:O}", "scenario", scenario, "trend", word, "window", (int)n,
		      "runs", runs);
	if (t && n >= 2) {
		json_object_set_new(t, "rto_slope_s", json_real(k));
		json_object_set_new(t, "rto_mean_s", json_real(mean));
	}
	if (t && target >= 0)
		json_object_set_new(t, "target_rto_s", json_real(target));
	return t;
}

int drb_report_history(const json_t *runs, const drb_history_drill *drills, size_t n_drills,
		       json_t **out, drb_err *err)
{
	json_t *h = json_pack("{s:[], s:[]}", "drills", "scenarios"), *r, *scen = json_object();
	json_t *dl = json_object_get(h, "drills"), *sl = json_object_get(h, "scenarios");
	const char *key;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!h || !scen) {
		json_decref(h);
		json_decref(scen);
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	for (size_t k = 0; k < n_drills; k++) {
		const drb_history_drill *dr = &drills[k];
		json_t *mine = json_array(), *e;
		int counts[4] = {0};
		static const char *const names[] = {"succeeded", "failed", "refused",
						    "interrupted"};

		json_array_foreach(runs, i, r)
		{
			json_t *c;

			if (strcmp(str(r, "gameday"), dr->name))
				continue;
			c = json_deep_copy(r);
			/* a log that recorded no target: the runbook's, when the caller knows it */
			if (!strcmp(str(c, "rto"), "unknown") && dr->target_rto_s >= 0 &&
			    json_is_number(json_object_get(c, "rto_s")))
				json_object_set_new(c, "rto",
						    json_string(json_number_value(json_object_get(
								    c, "rto_s")) <= dr->target_rto_s
								    ? "met"
								    : "missed"));
			if (!strcmp(str(c, "rpo"), "unknown") && dr->target_rpo_s >= 0 &&
			    json_is_number(json_object_get(c, "rpo_s")))
				json_object_set_new(c, "rpo",
						    json_string(json_number_value(json_object_get(
								    c, "rpo_s")) <= dr->target_rpo_s
								    ? "met"
								    : "missed"));
			json_object_set_new(
			    c, "outcome",
			    json_string(outcome(str(c, "status"), str(c, "rto"), str(c, "rpo"))));
			for (int j = 0; j < 4; j++)
				counts[j] += !strcmp(str(c, "outcome"), names[j]);
			json_array_append_new(mine, c);
			/* the scenario: as the runbook names it, else the runbook's name */
			key = json_string_value(json_object_get(c, "scenario"));
			if (!key || !*key)
				key = str(c, "name");
			if (!json_object_get(scen, key))
				json_object_set_new(scen, key, json_array());
			json_array_append(json_object_get(scen, key), c);
		}
		e = json_pack("{s:s, s:s?, s:o, s:{s:i, s:i, s:i, s:i, s:i}}", "name", dr->name,
			      "runbook", dr->runbook, "runs", mine, "counts", "drills",
			      counts[0] + counts[1] + counts[2] + counts[3], "succeeded", counts[0],
			      "failed", counts[1], "refused", counts[2], "interrupted", counts[3]);
		if (dr->target_rto_s >= 0)
			json_object_set_new(e, "target_rto_s", json_real(dr->target_rto_s));
		if (dr->target_rpo_s >= 0)
			json_object_set_new(e, "target_rpo_s", json_real(dr->target_rpo_s));
		json_array_append_new(dl, e);
	}
	json_object_foreach(scen, key, v)
	{
		/* runs of several drills of one scenario interleave: keep start order */
		size_t n = json_array_size(v);
		json_t **tmp = calloc(n ? n : 1, sizeof(*tmp)), *sorted = json_array();
		double target = -1;

		for (i = 0; tmp && i < n; i++)
			tmp[i] = json_array_get(v, i);
		if (tmp && n)
			qsort(tmp, n, sizeof(*tmp), by_start);
		for (i = 0; tmp && i < n; i++) {
			const json_t *t =
			    json_object_get(json_object_get(tmp[i], "targets"), "rto_s");

			json_array_append(sorted, tmp[i]);
			if (json_is_number(t))
				target = json_number_value(t);
		}
		free(tmp);
		json_array_append_new(sl, trend(key, sorted, target));
		json_decref(sorted);
	}
	json_decref(scen);
	*out = h;
	return 0;
}

/* ---- rendering ---- */

static void fmt_s(const json_t *v, char *out, size_t n)
{
	if (json_is_number(v))
		drb_duration_format(json_number_value(v), out, n);
	else
		snprintf(out, n, "-");
}

/* "75s / 1m missed" */
static void against(const json_t *r, const char *k, char *out, size_t n)
{
	char key[16], got[32], want[32];

	snprintf(key, sizeof(key), "%s_s", k);
	fmt_s(json_object_get(r, key), got, sizeof(got));
	fmt_s(json_object_get(json_object_get(r, "targets"), key), want, sizeof(want));
	snprintf(out, n, "%s / %s %s", got, want, str(r, k));
}

/* The scenario's RTOs as an inline SVG line chart: one point per run (red when it failed),
 * the target as a dashed line, the trend over the last runs as a straight line. */
static void trend_svg(FILE *f, const json_t *sc)
{
	const json_t *runs = json_object_get(sc, "runs"), *r;
	const double W = 700, H = 220, L = 70, R = 50, T = 20, B = 40;
	size_t n = json_array_size(runs), first = n > CHART_RUNS ? n - CHART_RUNS : 0, i, shown;
	double ymax = 0, ystep, target = json_number_value(json_object_get(sc, "target_rto_s"));
	int has_target = json_is_number(json_object_get(sc, "target_rto_s"));
	char lab[32];

	for (i = first; i < n; i++) {
		double y = json_number_value(json_object_get(json_array_get(runs, i), "rto_s"));

		if (y > ymax)
			ymax = y;
	}
	if (has_target && target > ymax)
		ymax = target;
	/* round gridlines: 0, 5m, 10m, 15m rather than thirds of the largest RTO */
	{
		static const double steps[] = {0.1, 0.2, 0.5, 1,   2,	5,    10,   15,	 30,
					       60,  120, 300, 600, 900, 1800, 3600, 7200};
		double want = (ymax > 0 ? ymax * 1.1 : 1) / 4;

		ystep = steps[sizeof(steps) / sizeof(steps[0]) - 1];
		for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			if (steps[i] >= want) {
				ystep = steps[i];
				break;
			}
		ymax = ystep * ceil((ymax > 0 ? ymax * 1.1 : 1) / ystep);
	}
	shown = n - first;
#define X(k) (L + (shown > 1 ? (double)(k) * (W - L - R) / (double)(shown - 1) : (W - L - R) / 2))
#define Y(v) (T + (H - T - B) * (1 - (v) / ymax))
	fprintf(f,
		"<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
		"height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" data-scenario=\"",
		W, H, W, H);
	drb_report_html_escape(f, str(sc, "scenario"));
	fputs("\">\n", f);
	fprintf(f, "<title>RTO of the last %zu drills of ", shown);
	drb_report_html_escape(f, str(sc, "scenario"));
	fprintf(f, ": %s</title>\n", str(sc, "trend"));
	fprintf(f,
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\"/>"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\"/>\n",
		L, T, L, H - B, L, H - B, W - R, H - B);
	for (double v = 0; v <= ymax + 1e-9; v += ystep) {
		if (v > 0)
			drb_duration_format(v, lab, sizeof(lab));
		else
			snprintf(lab, sizeof(lab), "0");
		fprintf(f,
			"<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
			L, Y(v), W - R, Y(v));
		fprintf(
		    f,
		    "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
		    L - 6, Y(v) + 4, lab);
	}
	if (has_target) {
		drb_duration_format(target, lab, sizeof(lab));
		fprintf(f,
			"<line class=\"target\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
			"stroke=\"#c60\" stroke-dasharray=\"6 4\"/><text x=\"%.0f\" y=\"%.1f\" "
			"font-size=\"11\" fill=\"#c60\" text-anchor=\"end\">target %s</text>\n",
			L, Y(target), W - R, Y(target), W - R, Y(target) - 4, lab);
	}
	fputs("<polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"2\" points=\"", f);
	for (i = first; i < n; i++) {
		r = json_array_get(runs, i);
		if (json_is_number(json_object_get(r, "rto_s")))
			fprintf(f, "%.1f,%.1f ", X(i - first),
				Y(json_number_value(json_object_get(r, "rto_s"))));
	}
	fputs("\"/>\n", f);
	for (i = first; i < n; i++) {
		char d[32], line[512];

		r = json_array_get(runs, i);
		if (!json_is_number(json_object_get(r, "rto_s")))
			continue;
		fmt_s(json_object_get(r, "rto_s"), d, sizeof(d));
		/* run ids and times come from the logs: escaped like any text from outside */
		fprintf(f, "<circle class=\"run %s\" data-run=\"",
			drb_report_token(str(r, "outcome")));
		drb_report_html_escape(f, str(r, "run"));
		fprintf(f, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", X(i - first),
			Y(json_number_value(json_object_get(r, "rto_s"))),
			strcmp(str(r, "outcome"), "succeeded") ? "#b00" : "#070");
		snprintf(line, sizeof(line), "%s %s: RTO %s (%s)", str(r, "started_at"),
			 str(r, "run"), d, str(r, "outcome"));
		drb_report_html_escape(f, line);
		fprintf(f,
			"</title></circle>\n<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" "
			"text-anchor=\"middle\">",
			X(i - first), H - B + 14);
		snprintf(line, sizeof(line), "%.10s", str(r, "started_at"));
		drb_report_html_escape(f, line);
		fputs("</text>\n", f);
	}
	if (json_is_number(json_object_get(sc, "rto_slope_s"))) {
		/* the fitted line over the window the trend was computed on */
		size_t w = (size_t)json_integer_value(json_object_get(sc, "window")),
		       idx[TREND_RUNS], m = 0;
		double k = json_number_value(json_object_get(sc, "rto_slope_s")),
		       mean = json_number_value(json_object_get(sc, "rto_mean_s"));

		for (i = n; i-- > first && m < w;)
			if (json_is_number(json_object_get(json_array_get(runs, i), "rto_s")))
				idx[m++] = i;
		if (m >= 2) {
			double c = (double)(m - 1) / 2;

			fprintf(f,
				"<line class=\"trendline %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				"y2=\"%.1f\" stroke=\"#888\" stroke-width=\"1.5\" "
				"stroke-dasharray=\"2 3\"/>\n",
				str(sc, "trend"), X(idx[m - 1] - first), Y(mean - k * c),
				X(idx[0] - first), Y(mean + k * c));
		}
	}
	fputs("</svg>\n", f);
#undef X
#undef Y
}

int drb_report_history_write(const json_t *h, drb_report_format fmt, FILE *f, drb_err *err)
{
	const json_t *d, *r, *sc;
	size_t i, j;
	int html = fmt == DRB_REPORT_HTML;

	if (fmt == DRB_REPORT_JSON) {
		if (json_dumpf(h, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
			return drb_err_set(err, DRB_EIO, "cannot write the history");
		fputc('\n', f);
		return 0;
	}
	if (html)
		fprintf(f,
			"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>drbook "
			"game-day history</title>\n<style>%s</style></head><body>\n"
			"<h1>Game-day history</h1>\n",
			drb_report_css);
	json_array_foreach(json_object_get(h, "drills"), i, d)
	{
		const json_t *c = json_object_get(d, "counts");

		if (html) {
			fputs("<h2>Drill ", f);
			drb_report_html_escape(f, str(d, "name"));
			fprintf(f,
				"</h2>\n<p>%lld drills: %lld succeeded, %lld failed, %lld refused, "
				"%lld interrupted</p>\n<table><tr><th>started</th><th>run</th>"
				"<th>outcome</th><th>status</th><th>RTO / target</th>"
				"<th>RPO / target</th><th>log</th></tr>\n",
				(long long)json_integer_value(json_object_get(c, "drills")),
				(long long)json_integer_value(json_object_get(c, "succeeded")),
				(long long)json_integer_value(json_object_get(c, "failed")),
				(long long)json_integer_value(json_object_get(c, "refused")),
				(long long)json_integer_value(json_object_get(c, "interrupted")));
		} else {
			fprintf(f,
				"drill %s: %lld drills, %lld succeeded, %lld failed, %lld refused, "
				"%lld interrupted\n",
				str(d, "name"),
				(long long)json_integer_value(json_object_get(c, "drills")),
				(long long)json_integer_value(json_object_get(c, "succeeded")),
				(long long)json_integer_value(json_object_get(c, "failed")),
				(long long)json_integer_value(json_object_get(c, "refused")),
				(long long)json_integer_value(json_object_get(c, "interrupted")));
			if (json_array_size(json_object_get(d, "runs")))
				fprintf(f, "  %-24s %-22s %-11s %-12s %-24s %s\n", "started", "run",
					"outcome", "status", "RTO / target", "RPO / target");
		}
		json_array_foreach(json_object_get(d, "runs"), j, r)
		{
			char rto[96], rpo[96];

			against(r, "rto", rto, sizeof(rto));
			against(r, "rpo", rpo, sizeof(rpo));
			if (html) {
				fprintf(f, "<tr class=\"%s\"><td>",
					drb_report_token(str(r, "outcome")));
				drb_report_html_escape(f, str(r, "started_at"));
				fputs("</td><td>", f);
				drb_report_html_escape(f, str(r, "run"));
				fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>",
					drb_report_token(str(r, "outcome")),
					drb_report_token(str(r, "status")), rto, rpo);
				drb_report_html_escape(f, str(r, "log"));
				fputs("</td></tr>\n", f);
			} else {
				fprintf(f, "  %-24s %-22s %-11s %-12s %-24s %s\n",
					str(r, "started_at"), str(r, "run"), str(r, "outcome"),
					str(r, "status"), rto, rpo);
			}
		}
		fputs(html ? "</table>\n" : "\n", f);
	}
	if (html)
		fputs("<h2>Trends</h2>\n", f);
	else
		fputs("trends (RTO of the last drills of each scenario)\n", f);
	json_array_foreach(json_object_get(h, "scenarios"), i, sc)
	{
		char k[32] = "-", mean[32] = "-";

		if (json_is_number(json_object_get(sc, "rto_slope_s"))) {
			snprintf(k, sizeof(k), "%+.1fs",
				 json_number_value(json_object_get(sc, "rto_slope_s")));
			drb_duration_format(json_number_value(json_object_get(sc, "rto_mean_s")),
					    mean, sizeof(mean));
		}
		if (html) {
			fputs("<h3>", f);
			drb_report_html_escape(f, str(sc, "scenario"));
			fprintf(f, ": <span class=\"trend-word\">%s</span></h3>\n",
				str(sc, "trend"));
			if (json_is_number(json_object_get(sc, "rto_slope_s")))
				fprintf(
				    f,
				    "<p>RTO over the last %lld drills: mean %s, %s per drill</p>\n",
				    (long long)json_integer_value(json_object_get(sc, "window")),
				    mean, k);
			else
				fputs("<p>Not enough measured RTOs for a trend yet.</p>\n", f);
			trend_svg(f, sc);
		} else if (!json_is_number(json_object_get(sc, "rto_slope_s"))) {
			fprintf(f, "  %-32s %-10s %lld measured RTO(s): not enough for a trend\n",
				str(sc, "scenario"), str(sc, "trend"),
				(long long)json_integer_value(json_object_get(sc, "window")));
		} else {
			fprintf(f, "  %-32s %-10s last %lld RTOs: mean %s, %s per drill\n",
				str(sc, "scenario"), str(sc, "trend"),
				(long long)json_integer_value(json_object_get(sc, "window")), mean,
				k);
		}
	}
	if (html)
		fputs("</body></html>\n", f);
	return ferror(f) ? drb_err_set(err, DRB_EIO, "cannot write the history") : 0;
}
