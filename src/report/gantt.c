/* The run as a chart: the analysis the report model gains from its timeline (the critical
 * path, DNS convergence) and its drawing as an inline SVG Gantt chart for the HTML report:
 * steps as bars, waits, retries, approvals, rollbacks, and RTO, RPO and DNS markers. No
 * script, font or file outside the page: it must open the same way offline in five years. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <drbook/report.h>
#include <drbook/util.h>

#include "report_int.h"

#define MAX_CHART_ROWS 2000 /* a chart of more rows says so instead of drawing them */
#define TICK_TARGET 8	    /* about this many time ticks */

static const char *str(const json_t *d, const char *k)
{
	const char *s = json_string_value(json_object_get(d, k));

	return s ? s : "";
}

static double num(const json_t *d, const char *k, double dflt)
{
	const json_t *v = json_object_get(d, k);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Where a step ends on the chart: its end, or the log's last record when it never ended. */
static double end_of(const json_t *m, const json_t *s)
{
	return num(s, "end_offset_s", num(m, "last_offset_s", num(s, "offset_s", 0)));
}

static int is_candidate(const json_t *s)
{
	return !json_object_get(s, "parent") && strcmp(str(s, "status"), "skipped") &&
	       json_is_number(json_object_get(s, "offset_s"));
}

/* The critical path: from the top-level step that ended last, back through the step each one
 * waited for: among its needs when the log records them, else among the steps that had ended
 * when it started, the one that ended last. Steps in order make one chain; parallel branches
 * leave the shorter ones out. */
static void critical_path(json_t *m)
{
	json_t *steps = json_object_get(m, "steps"), *path = json_array(), *s, *cur = NULL;
	size_t i, guard = 0;
	double best = -1e300;

	json_array_foreach(steps, i, s) if (is_candidate(s) && end_of(m, s) > best)
	{
		best = end_of(m, s);
		cur = s;
	}
	while (cur && guard++ <= json_array_size(steps)) {
		const json_t *needs = json_object_get(cur, "needs");
		double start = num(cur, "offset_s", 0), latest = -1e300;
		json_t *pred = NULL;

		json_object_set_new(cur, "critical", json_true());
		json_array_insert(path, 0, json_object_get(cur, "id"));
		json_array_foreach(steps, i, s)
		{
			int cand = 0;

			if (s == cur || !is_candidate(s) ||
			    json_is_true(json_object_get(s, "critical")))
				continue;
			if (json_is_array(needs)) {
				size_t k;
				json_t *n;

				json_array_foreach(needs, k,
						   n) if (!strcmp(json_string_value(n) ?: "",
								  str(s, "id"))) cand = 1;
			} else {
				/* records are written in order: what ended before this started */
				cand = end_of(m, s) <= start + 0.0005;
			}
			/* on a tie (log times are whole ms: a 0 ms step ends when the one before
			 * it did), the later one in start order is the one that ran just before */
			if (cand && end_of(m, s) >= latest) {
				latest = end_of(m, s);
				pred = s;
			}
		}
		cur = pred;
	}
	if (json_array_size(path)) {
		const json_t *first = NULL, *last = NULL;

		json_array_foreach(steps, i, s)
		{
			if (!strcmp(str(s, "id"), json_string_value(json_array_get(path, 0))))
				first = s;
			if (!strcmp(str(s, "id"), json_string_value(json_array_get(
						      path, json_array_size(path) - 1))))
				last = s;
		}
		json_object_set_new(m, "critical_path_s",
				    json_real(end_of(m, last) - num(first, "offset_s", 0)));
	}
	json_object_set_new(m, "critical_path", path);
}

/* DNS convergence: a step whose result says when the last stale answer was seen
 * (last_stale_at), else a dns.resolve step polled until the answer changed: its last call but
 * one saw the old answer. Absent when the run resolved nothing. */
static void dns_convergence(json_t *m)
{
	json_t *steps = json_object_get(m, "steps"), *s, *dns = NULL;
	size_t i;
	int64_t t0 = 0, ms;

	if (drb_rfc3339_parse(str(m, "incident_start"), &t0) &&
	    drb_rfc3339_parse(str(m, "started_at"), &t0))
		t0 = 0;
	json_array_foreach(steps, i, s)
	{
		const json_t *calls = json_object_get(s, "call_offsets");
		json_t *d = NULL;

		if (json_is_string(json_object_get(s, "last_stale_at")) && t0 &&
		    !drb_rfc3339_parse(str(s, "last_stale_at"), &ms)) {
			d = json_pack("{s:s, s:s, s:f}", "step", str(s, "id"), "source", "result",
				      "last_stale_offset_s", (double)(ms - t0) / 1000.0);
		} else if (!strcmp(str(s, "action"), "dns.resolve") &&
			   !strcmp(str(s, "status"), "ok") && json_array_size(calls)) {
			d = json_pack("{s:s, s:s}", "step", str(s, "id"), "source", "polls");
			if (json_array_size(calls) >= 2)
				json_object_set(d, "last_stale_offset_s",
						json_array_get(calls, json_array_size(calls) - 2));
		}
		if (d && json_is_number(json_object_get(s, "end_offset_s")))
			json_object_set(d, "converged_offset_s",
					json_object_get(s, "end_offset_s"));
		if (d) {
			json_decref(dns);
			dns = d;
		}
	}
	json_array_foreach(steps, i, s) json_object_del(s, "call_offsets");
	if (dns)
		json_object_set_new(m, "dns", dns);
}

void drb_report_analyze(json_t *m)
{
	critical_path(m);
	dns_convergence(m);
}

/* ---- drawing ---- */

typedef struct chart {
	FILE *f;
	double t_min, t_max; /* the time axis, seconds from the report's zero */
	double x0, w;	     /* the plot area, pixels */
} chart;

static double X(const chart *c, double t)
{
	return c->x0 + (t - c->t_min) / (c->t_max - c->t_min) * c->w;
}

static void label(char *out, size_t n, double t)
{
	char d[32];

	drb_duration_format(fabs(t), d, sizeof(d));
	snprintf(out, n, "%s%s", t < 0 ? "-" : t > 0 ? "+" : "", t == 0 ? "0" : d);
}

static double nice_step(double span)
{
	static const double steps[] = {0.01, 0.02, 0.05, 0.1,  0.2,   0.5,   1,	    2,
				       5,    10,   15,	 30,   60,    120,   300,   600,
				       900,  1800, 3600, 7200, 10800, 21600, 43200, 86400};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (span / steps[i] <= TICK_TARGET)
			return steps[i];
	return 86400 * ceil(span / 86400 / TICK_TARGET);
}

/* A vertical marker across the rows with a label on top. */
static void marker(const chart *c, const char *cls, double t, double top, double bottom,
		   const char *color, const char *dash, const char *text, int row)
{
	double x = X(c, t);

	fprintf(c->f,
		"<g class=\"marker %s\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
		"stroke=\"%s\" stroke-width=\"1.5\"%s%s%s/>",
		cls, x, top - 4 - 13.0 * row, x, bottom, color, dash ? " stroke-dasharray=\"" : "",
		dash ? dash : "", dash ? "\"" : "");
	fprintf(c->f,
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\" text-anchor=\"%s\">",
		x + (x > c->x0 + c->w * 0.75 ? -3 : 3), top - 7 - 13.0 * row, color,
		x > c->x0 + c->w * 0.75 ? "end" : "start");
	drb_report_html_escape(c->f, text);
	fputs("</text></g>\n", c->f);
}

static const char *bar_color(const json_t *s)
{
	const char *st = str(s, "status");

	if (!strcmp(st, "failed"))
		return "#d9534f";
	if (!strcmp(st, "skipped") || !strcmp(st, "assumed_done"))
		return "#bbb";
	if (!strcmp(st, "started"))
		return "url(#interrupted)";
	if (json_is_true(json_object_get(s, "wait")))
		return "url(#waiting)";
	return "#5cb85c";
}

static void fmt_dur(double s, char *out, size_t n)
{
	drb_duration_format(s < 0 ? 0 : s, out, n);
}

/* "RTO 1m30s (target 15m: met)"; "RPO not measured" */
static void against(const json_t *m, const char *what, const char *k, char *out, size_t n)
{
	const json_t *tg = json_object_get(m, "targets");
	char key[24], got[32], want[32];
	const char *verdict = "";
	const json_t *v;

	snprintf(key, sizeof(key), "%s_s", k);
	if (!json_is_number(json_object_get(m, key))) {
		snprintf(out, n, "%s not measured", what);
		return;
	}
	fmt_dur(json_number_value(json_object_get(m, key)), got, sizeof(got));
	v = json_object_get(tg, k); /* met | missed | unknown (format v1.1) */
	if (json_is_string(v))
		verdict = json_string_value(v);
	snprintf(key, sizeof(key), "%s_met", k);
	if (!*verdict && json_is_boolean(json_object_get(tg, key)))
		verdict = json_is_true(json_object_get(tg, key)) ? "met" : "missed";
	snprintf(key, sizeof(key), "%s_s", k);
	if (!json_is_number(json_object_get(tg, key))) {
		snprintf(out, n, "%s %s (no target)", what, got);
		return;
	}
	fmt_dur(json_number_value(json_object_get(tg, key)), want, sizeof(want));
	if (!*verdict)
		verdict = json_number_value(json_object_get(m, key)) <=
				  json_number_value(json_object_get(tg, key))
			      ? "met"
			      : "missed";
	snprintf(out, n, "%s %s (target %s: %s)", what, got, want, verdict);
}

void drb_report_gantt(FILE *f, const json_t *m)
{
	const json_t *steps = json_object_get(m, "steps"), *rbs = json_object_get(m, "rollbacks");
	const json_t *tg = json_object_get(m, "targets"), *s, *dns = json_object_get(m, "dns");
	size_t i, rows = json_array_size(steps) + json_array_size(rbs), row = 0;
	const double row_h = 22, label_w = 230, width = 1000;
	double top;
	double bottom, t_end = num(m, "last_offset_s", 0), target = num(tg, "rto_s", -1), step;
	chart c = {f, 0, 0, label_w + 10, width - label_w - 40};
	char buf[256], b2[64];
	int target_shown;

	if (rows > MAX_CHART_ROWS) {
		fprintf(f, "<p>The run has %zu steps and rollbacks: too many to draw.</p>\n", rows);
		return;
	}
	/* the axis: from the incident (or the run's start) to the end, the RTO and, when near,
	 * the RTO target */
	c.t_min = fmin(0, num(m, "start_offset_s", 0));
	json_array_foreach(steps, i, s) c.t_min = fmin(c.t_min, num(s, "offset_s", 0));
	if (json_is_number(json_object_get(m, "rto_s")))
		t_end = fmax(t_end, json_number_value(json_object_get(m, "rto_s")));
	target_shown = target >= 0 && target <= 4 * fmax(t_end, 0.001);
	if (target_shown)
		t_end = fmax(t_end, target);
	c.t_max = c.t_min + fmax(t_end - c.t_min, 0.001) * 1.04;
	/* marker labels stack above the rows, one lane each, so none hides another */
	top = 24 + 13.0 * (double)(2 * (c.t_min < 0 || num(m, "start_offset_s", 0) > 0) +
				   json_is_number(json_object_get(m, "rollback_offset_s")) +
				   2 * (dns != NULL) + target_shown +
				   json_is_number(json_object_get(m, "rto_s")));
	bottom = top + row_h * (double)(rows ? rows : 1);
	fprintf(f,
		"<svg id=\"gantt\" class=\"gantt\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
		"font-family=\"sans-serif\">\n<title>Run ",
		width, bottom + 96, width, bottom + 96);
	drb_report_html_escape(f, str(m, "run"));
	fputs(
	    " as a Gantt chart</title>\n<defs>"
	    "<pattern id=\"waiting\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
	    "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f0ad4e\"/>"
	    "<rect width=\"3\" height=\"6\" fill=\"#f7d19a\"/></pattern>"
	    "<pattern id=\"interrupted\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
	    "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#999\"/>"
	    "<rect width=\"3\" height=\"6\" fill=\"#ddd\"/></pattern></defs>\n",
	    f);
	/* between the incident and the run: detection, before drbook could do anything */
	if (num(m, "start_offset_s", 0) > c.t_min)
		fprintf(f,
			"<rect class=\"detection\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" "
			"height=\"%.0f\" fill=\"#fdf2e3\"><title>from the incident to the run's "
			"start</title></rect>\n",
			X(&c, c.t_min), top, X(&c, num(m, "start_offset_s", 0)) - X(&c, c.t_min),
			bottom - top);
	/* time grid */
	step = nice_step(c.t_max - c.t_min);
	for (double t = ceil(c.t_min / step) * step; t <= c.t_max + 1e-9; t += step) {
		label(b2, sizeof(b2), t);
		fprintf(
		    f,
		    "<line class=\"tick\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
		    "stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" fill=\"#666\" "
		    "text-anchor=\"middle\">%s</text>\n",
		    X(&c, t), top, X(&c, t), bottom, X(&c, t), bottom + 14, b2);
	}
	/* rows: the steps in the order they started, then the compensations */
	json_array_foreach(steps, i, s)
	{
		double y = top + row_h * (double)row++, a = num(s, "offset_s", 0), e = end_of(m, s);
		int child = json_object_get(s, "parent") != NULL;
		int crit = json_is_true(json_object_get(s, "critical"));
		const json_t *r, *ap = json_object_get(s, "approval");
		size_t k;

		if (row % 2 == 0)
			fprintf(f,
				"<rect x=\"0\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
				"fill=\"#000\" fill-opacity=\"0.035\"/>\n",
				y, width, row_h);
		fprintf(f, "<g class=\"row step%s\" data-step=\"", crit ? " critical" : "");
		drb_report_html_escape(f, str(s, "id"));
		fprintf(f, "\"><text x=\"%.0f\" y=\"%.1f\" font-size=\"12\"%s>", child ? 22.0 : 8.0,
			y + 15, crit ? " font-weight=\"bold\"" : "");
		snprintf(buf, sizeof(buf), "%.34s%s", str(s, "id"),
			 strlen(str(s, "id")) > 34 ? "…" : "");
		drb_report_html_escape(f, buf);
		/* a bar is at least 2 px wide; a critical one is outlined by a 2 px stroke, so it
		 * is at least 6 px wide to keep its colour visible inside the outline */
		fprintf(f,
			"</text>\n<rect class=\"bar %s%s%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.0f\" rx=\"2\" fill=\"%s\"%s>",
			drb_report_token(str(s, "status")),
			json_is_true(json_object_get(s, "wait")) ? " wait" : "",
			crit ? " critical" : "", X(&c, a), y + 4,
			fmax(X(&c, e) - X(&c, a), crit ? 6.0 : 2.0),
			row_h - 8, bar_color(s), crit ? " stroke=\"#222\" stroke-width=\"2\"" : "");
		fmt_dur(e - a, b2, sizeof(b2));
		snprintf(buf, sizeof(buf), "%s (%s): %s, %s, %lld attempt(s)%s%s", str(s, "id"),
			 str(s, "action"), str(s, "status"), b2,
			 (long long)json_integer_value(json_object_get(s, "attempts")),
			 json_object_get(s, "error") ? ": " : "", str(s, "error"));
		fputs("<title>", f);
		drb_report_html_escape(f, buf);
		fputs("</title></rect>\n", f);
		/* retries: a red tick where an attempt failed, its backoff as a thin band */
		json_array_foreach(json_object_get(s, "retries"), k, r)
		{
			double t = num(r, "offset_s", 0), dl = num(r, "delay_s", 0);

			fprintf(
			    f,
			    "<rect class=\"backoff\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			    "height=\"4\" fill=\"#d9534f\" opacity=\"0.45\"/>"
			    "<line class=\"retry\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			    "stroke=\"#a00\" stroke-width=\"2\"><title>attempt %lld failed: ",
			    X(&c, t), y + row_h / 2 - 2, fmax(X(&c, t + dl) - X(&c, t), 1.0),
			    X(&c, t), y + 2, X(&c, t), y + row_h - 2,
			    (long long)json_integer_value(json_object_get(r, "attempt")));
			drb_report_html_escape(f, str(r, "error"));
			fputs("</title></line>\n", f);
		}
		if (ap) {
			double t = num(ap, "offset_s", 0), cy = y + row_h / 2;

			fprintf(
			    f,
			    "<path class=\"approval %s\" d=\"M%.1f %.1f l6 6 l-6 6 l-6 -6 z\" "
			    "fill=\"%s\" stroke=\"#fff\"><title>",
			    json_is_true(json_object_get(ap, "approved")) ? "approved" : "denied",
			    X(&c, t), cy - 6,
			    json_is_true(json_object_get(ap, "approved")) ? "#337ab7" : "#d9534f");
			snprintf(buf, sizeof(buf), "%s by %s (%s)%s%s",
				 json_is_true(json_object_get(ap, "approved")) ? "approved"
									       : "NOT approved",
				 str(ap, "approver"), str(ap, "how"),
				 *str(ap, "reason") ? ": " : "", str(ap, "reason"));
			drb_report_html_escape(f, buf);
			fputs("</title></path>\n", f);
		}
		fputs("</g>\n", f);
	}
	json_array_foreach(rbs, i, s)
	{
		double y = top + row_h * (double)row++, a = num(s, "offset_s", 0), e = end_of(m, s);

		if (row % 2 == 0)
			fprintf(f,
				"<rect x=\"0\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
				"fill=\"#000\" fill-opacity=\"0.035\"/>\n",
				y, width, row_h);
		fputs("<g class=\"row rollback\" data-step=\"rollback:", f);
		drb_report_html_escape(f, str(s, "id"));
		fprintf(f, "\"><text x=\"8\" y=\"%.1f\" font-size=\"12\" fill=\"#6f42c1\">undo ",
			y + 15);
		snprintf(buf, sizeof(buf), "%.30s", str(s, "id"));
		drb_report_html_escape(f, buf);
		fprintf(f,
			"</text>\n<rect class=\"bar rollback %s\" x=\"%.1f\" y=\"%.1f\" "
			"width=\"%.1f\" height=\"%.0f\" rx=\"2\" fill=\"%s\"><title>rollback of ",
			drb_report_token(str(s, "status")), X(&c, a), y + 4,
			fmax(X(&c, e) - X(&c, a), 2.0), row_h - 8,
			strcmp(str(s, "status"), "ok") ? "#d9534f" : "#6f42c1");
		drb_report_html_escape(f, str(s, "id"));
		fprintf(f, ": %s%s", drb_report_token(str(s, "status")),
			json_object_get(s, "error") ? ": " : "");
		drb_report_html_escape(f, str(s, "error"));
		fputs("</title></rect></g>\n", f);
	}
	/* markers over the rows; labels stack above the chart so they never overlap a bar */
	{
		int lane = 0;

		if (c.t_min < 0 || num(m, "start_offset_s", 0) > 0) {
			marker(&c, "incident", 0, top, bottom, "#555", "2 3", "incident", lane++);
			marker(&c, "run-start", num(m, "start_offset_s", 0), top, bottom, "#555",
			       "2 3", "run started", lane++);
		}
		if (json_is_number(json_object_get(m, "rollback_offset_s")))
			marker(&c, "rollback-begin", num(m, "rollback_offset_s", 0), top, bottom,
			       "#6f42c1", "4 3", "rollback begins", lane++);
		if (dns && json_is_number(json_object_get(dns, "last_stale_offset_s"))) {
			snprintf(buf, sizeof(buf), "last stale DNS answer %s",
				 (label(b2, sizeof(b2), num(dns, "last_stale_offset_s", 0)), b2));
			marker(&c, "dns-stale", num(dns, "last_stale_offset_s", 0), top, bottom,
			       "#17a2b8", "3 2", buf, lane++);
		}
		if (dns && json_is_number(json_object_get(dns, "converged_offset_s"))) {
			snprintf(buf, sizeof(buf), "DNS converged %s",
				 (label(b2, sizeof(b2), num(dns, "converged_offset_s", 0)), b2));
			marker(&c, "dns-converged", num(dns, "converged_offset_s", 0), top, bottom,
			       "#17a2b8", NULL, buf, lane++);
		}
		if (target_shown) {
			fmt_dur(target, b2, sizeof(b2));
			snprintf(buf, sizeof(buf), "RTO target %s", b2);
			marker(&c, "rto-target", target, top, bottom, "#e67e22", "6 4", buf,
			       lane++);
		}
		if (json_is_number(json_object_get(m, "rto_s"))) {
			against(m, "RTO", "rto", buf, sizeof(buf));
			marker(&c, "rto", json_number_value(json_object_get(m, "rto_s")), top,
			       bottom, strstr(buf, "missed") ? "#d9534f" : "#2e7d32", NULL, buf,
			       lane++);
		}
	}
	/* the figures and the legend under the axis */
	{
		double y = bottom + 34;
		static const struct {
			const char *fill, *text;
		} legend[] = {{"#5cb85c", "step ok"},	    {"#d9534f", "failed"},
			      {"url(#waiting)", "waiting"}, {"#6f42c1", "rollback"},
			      {"#bbb", "skipped"},	    {"url(#interrupted)", "never ended"}};
		double x = 8;

		fputs("<g class=\"legend\">", f);
		against(m, "RTO", "rto", buf, sizeof(buf));
		fprintf(f, "<text class=\"figure rto\" x=\"8\" y=\"%.0f\" font-size=\"12\">", y);
		drb_report_html_escape(f, buf);
		against(m, "RPO", "rpo", buf, sizeof(buf));
		fputs("</text>\n", f);
		fprintf(f, "<text class=\"figure rpo\" x=\"300\" y=\"%.0f\" font-size=\"12\">", y);
		drb_report_html_escape(f, buf);
		fputs("</text>\n", f);
		if (!target_shown && target >= 0) {
			fmt_dur(target, b2, sizeof(b2));
			fprintf(f,
				"<text class=\"figure rto-target-far\" x=\"600\" y=\"%.0f\" "
				"font-size=\"12\" fill=\"#e67e22\">RTO target %s: beyond the chart"
				"</text>\n",
				y, b2);
		}
		if (json_array_size(json_object_get(m, "critical_path"))) {
			fmt_dur(num(m, "critical_path_s", 0), b2, sizeof(b2));
			fprintf(f,
				"<text class=\"figure critical-path\" x=\"8\" y=\"%.0f\" "
				"font-size=\"12\">critical path (%s, outlined): ",
				y + 18, b2);
			json_array_foreach(json_object_get(m, "critical_path"), i, s)
			{
				if (i)
					fputs(" → ", f);
				drb_report_html_escape(f, json_string_value(s));
			}
			fputs("</text>\n", f);
		}
		for (i = 0; i < sizeof(legend) / sizeof(legend[0]); i++) {
			fprintf(
			    f,
			    "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"10\" fill=\"%s\"/>"
			    "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>\n",
			    x, y + 38, legend[i].fill, x + 16, y + 47, legend[i].text);
			x += 100;
		}
		fputs("</g>\n", f);
	}
	fputs("</svg>\n", f);
}
