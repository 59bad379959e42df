/* Reports read back from an audit log: a model (JSON) of the run's timeline, and its
 * rendering as Markdown, HTML or JSON. The one-line text of each event is shared with the
 * CLI's live progress (drb_report_event_text), so a report reads like the run looked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/audit.h>
#include <drbook/report.h>
#include <drbook/util.h>

#include "report_int.h"

static const char *str(const json_t *d, const char *k)
{
	const char *s = json_string_value(json_object_get(d, k));

	return s ? s : "";
}

int drb_report_event_text(const char *event, const char *step, const json_t *d, int glyphs,
			  char *out, size_t n)
{
	const char *ok = glyphs ? "\x1b[32m✓\x1b[0m" : "ok";
	const char *bad = glyphs ? "\x1b[31m✗\x1b[0m" : "FAILED";
	const char *skip = glyphs ? "\x1b[33m-\x1b[0m" : "skipped";

	if (!step)
		step = "";
	if (!strcmp(event, "run.start")) {
		snprintf(out, n, "run %s: %s%s", str(d, "name"), str(d, "mode"),
			 json_is_true(json_object_get(d, "drill")) ? " (drill)" : "");
	} else if (!strcmp(event, "step.start")) {
		if (glyphs)
			return 0;
		snprintf(out, n, "start  %s (%s)", step, str(d, "action"));
	} else if (!strcmp(event, "step.end")) {
		const char *st = str(d, "status");
		char dur[32];

		drb_duration_format((double)json_integer_value(json_object_get(d, "duration_ms")) /
					1000.0,
				    dur, sizeof(dur));
		if (!strcmp(st, "ok"))
			snprintf(out, n, "%s %-28s %s", ok, step, dur);
		else if (!strcmp(st, "skipped"))
			snprintf(out, n, "%s %-28s skipped (%s)", skip, step, str(d, "reason"));
		else if (!strcmp(st, "assumed_done"))
			snprintf(out, n, "%s %-28s assumed done", skip, step);
		else
			snprintf(out, n, "%s %-28s %s after %lld attempt(s): %s", bad, step, dur,
				 (long long)json_integer_value(json_object_get(d, "attempts")),
				 str(d, "error"));
	} else if (!strcmp(event, "step.retry")) {
		snprintf(out, n, "  retry  %s attempt %lld failed: %s (next in %.1fs)", step,
			 (long long)json_integer_value(json_object_get(d, "attempt")),
			 str(d, "error"), json_number_value(json_object_get(d, "delay_s")));
	} else if (!strcmp(event, "approval")) {
		if (!strcmp(str(d, "state"), "asking"))
			return 0;
		if (json_is_true(json_object_get(d, "approved")))
			snprintf(out, n, "  approved %s by %s (%s)", step, str(d, "approver"),
				 str(d, "how"));
		else
			snprintf(out, n, "  NOT approved %s: %s", step, str(d, "reason"));
	} else if (!strcmp(event, "rollback.begin")) {
		snprintf(out, n, "rolling back: %s", str(d, "reason"));
	} else if (!strcmp(event, "rollback.end")) {
		snprintf(out, n, "  rollback %s: %s%s%s", step, str(d, "status"),
			 json_object_get(d, "error") ? " " : "", str(d, "error"));
	} else if (!strcmp(event, "run.resume")) {
		snprintf(out, n, "resuming run");
	} else if (!strcmp(event, "resume.refused")) {
		snprintf(out, n, "resume refused: %s", str(d, "error"));
	} else if (!strcmp(event, "lua.print")) {
		snprintf(out, n, "  | %s", str(d, "line"));
	} else if (!strcmp(event, "notify.failed")) {
		snprintf(out, n, "  notification %s failed: %s", step, str(d, "error"));
	} else if (!strcmp(event, "run.end")) {
		snprintf(out, n, "run %s (exit %lld)%s%s", str(d, "status"),
			 (long long)json_integer_value(json_object_get(d, "exit_code")),
			 json_object_get(d, "error") ? ": " : "", str(d, "error"));
	} else if (!strcmp(event, "audit.repaired")) {
		snprintf(out, n, "audit log repaired: %s", str(d, "reason"));
	} else {
		return 0;
	}
	return 1;
}

static double offset_s(const char *ts, int64_t t0)
{
	int64_t ms;

	if (drb_rfc3339_parse(ts, &ms))
		return 0;
	return (double)(ms - t0) / 1000.0;
}

static json_t *step_entry(json_t *steps, const char *uid)
{
	size_t i;
	json_t *s;

	json_array_foreach(steps, i, s) if (!strcmp(str(s, "id"), uid)) return s;
	s = json_pack("{s:s, s:s, s:i, s:i}", "id", uid, "status", "started", "attempts", 0,
		      "calls", 0);
	json_array_append_new(steps, s);
	return s;
}

int drb_report_build(const char *path, const unsigned char *key, size_t key_len, json_t **out,
		     drb_err *err)
{
	drb_verify_result vr;
	json_t *recs = NULL, *m = NULL, *steps, *events, *rec;
	int64_t t0 = 0;
	size_t i;
	int rc;

	*out = NULL;
	memset(&vr, 0, sizeof(vr));
	if ((rc = drb_audit_verify(path, key, key_len, &vr, err)))
		return rc;
	if ((rc = drb_audit_read(path, &recs, err))) {
		drb_err_prefix(err, "%s (integrity: %s): ", path, vr.msg);
		return rc;
	}
	/* an interrupted last write (a crash) leaves every complete record trustworthy */
	m = json_pack("{s:s, s:{s:b, s:i, s:I, s:s}}", "log", path, "integrity", "ok",
		      vr.kind == DRB_VERIFY_OK || vr.kind == DRB_VERIFY_TRUNCATED, "kind",
		      (int)vr.kind, "line", (json_int_t)vr.line, "message", vr.msg);
	steps = json_array();
	events = json_array();
	json_object_set_new(m, "steps", steps);
	json_object_set_new(m, "events", events);
	json_array_foreach(recs, i, rec)
	{
		const char *ev = str(rec, "event"), *ts = str(rec, "ts");
		const char *uid = json_string_value(json_object_get(rec, "step"));
		json_t *d = json_object_get(rec, "data"), *s;
		char text[2048];

		if (i == 0) {
			/* offsets count from the incident when the run knew it, as RTO does */
			if (drb_rfc3339_parse(str(d, "incident_start"), &t0))
				drb_rfc3339_parse(ts, &t0);
			json_object_set_new(m, "run", json_string(str(rec, "run")));
			if (json_object_get(d, "incident_start"))
				json_object_set(m, "incident_start",
						json_object_get(d, "incident_start"));
		}
		if (!strcmp(ev, "run.start")) {
			json_object_set_new(m, "runbook", json_string(str(d, "runbook")));
			json_object_set_new(m, "name", json_string(str(d, "name")));
			json_object_set(m, "scenario", json_object_get(d, "scenario"));
			json_object_set_new(m, "mode", json_string(str(d, "mode")));
			json_object_set(m, "drill", json_object_get(d, "drill"));
			json_object_set_new(m, "operator", json_string(str(d, "operator")));
			json_object_set_new(m, "host", json_string(str(d, "host")));
			json_object_set_new(m, "started_at", json_string(ts));
			json_object_set(m, "params", json_object_get(d, "params"));
			json_object_set(m, "targets", json_object_get(d, "targets"));
		} else if (!strcmp(ev, "run.end")) {
			json_object_set_new(m, "ended_at", json_string(ts));
			json_object_set_new(m, "status", json_string(str(d, "status")));
			json_object_set(m, "exit_code", json_object_get(d, "exit_code"));
			json_object_set(m, "error", json_object_get(d, "error"));
			json_object_set(m, "rto_s", json_object_get(d, "rto_s"));
			json_object_set(m, "rpo_s", json_object_get(d, "rpo_s"));
			if (json_object_get(d, "targets"))
				json_object_set(m, "targets", json_object_get(d, "targets"));
		} else if (uid && !strcmp(ev, "step.start")) {
			s = step_entry(steps, uid);
			json_object_set_new(s, "action", json_string(str(d, "action")));
			json_object_set_new(s, "started_at", json_string(ts));
			json_object_set_new(s, "offset_s", json_real(offset_s(ts, t0)));
		} else if (uid && !strcmp(ev, "step.end")) {
			s = step_entry(steps, uid);
			json_object_set_new(s, "status", json_string(str(d, "status")));
			json_object_set_new(s, "ended_at", json_string(ts));
			json_object_set(s, "duration_ms", json_object_get(d, "duration_ms"));
			json_object_set(s, "attempts", json_object_get(d, "attempts"));
			if (json_object_get(d, "error"))
				json_object_set(s, "error", json_object_get(d, "error"));
		} else if (uid && !strcmp(ev, "call")) {
			s = step_entry(steps, uid);
			json_object_set_new(
			    s, "calls",
			    json_integer(json_integer_value(json_object_get(s, "calls")) + 1));
		}
		if (drb_report_event_text(ev, uid, d, 0, text, sizeof(text)))
			json_array_append_new(events,
					      json_pack("{s:s, s:f, s:s, s:s?, s:s}", "ts", ts,
							"offset_s", offset_s(ts, t0), "event", ev,
							"step", uid, "text", text));
	}
	if (!json_object_get(m, "status"))
		json_object_set_new(m, "status", json_string("interrupted (no run.end)"));
	*out = m;
	json_decref(recs);
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

static const char *met(const json_t *targets, const char *k)
{
	const json_t *v = json_object_get(targets, k);

	return json_is_true(v) ? "met" : json_is_false(v) ? "MISSED" : "";
}

const char drb_report_css[] =
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.failed{color:#b00}"
    ".ok,.succeeded{color:#070}.refused{color:#a60}svg text{font-family:sans-serif}";

void drb_report_html_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* Escapes the characters that would break a Markdown table cell. */
static void md(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

int drb_report_write(const json_t *m, drb_report_format fmt, FILE *f, drb_err *err)
{
	const json_t *tg = json_object_get(m, "targets"), *integ = json_object_get(m, "integrity");
	char rto[32], rpo[32], trto[32], trpo[32];
	size_t i;
	json_t *s;
	int is_html = fmt == DRB_REPORT_HTML;
	void (*esc)(FILE *, const char *) = is_html ? drb_report_html_escape : md;

	if (fmt == DRB_REPORT_JSON) {
		if (json_dumpf(m, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
			return drb_err_set(err, DRB_EIO, "cannot write the report");
		fputc('\n', f);
		return 0;
	}
	fmt_s(json_object_get(m, "rto_s"), rto, sizeof(rto));
	fmt_s(json_object_get(m, "rpo_s"), rpo, sizeof(rpo));
	fmt_s(json_object_get(tg, "rto_s"), trto, sizeof(trto));
	fmt_s(json_object_get(tg, "rpo_s"), trpo, sizeof(trpo));
	if (is_html) {
		fputs("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>drbook run ", f);
		drb_report_html_escape(f, str(m, "run"));
		fputs(
		    "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
		    "collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
		    ".failed{color:#b00}.ok{color:#070}</style></head><body>\n<h1>Run ",
		    f);
		drb_report_html_escape(f, str(m, "run"));
		fputs(": ", f);
		drb_report_html_escape(f, str(m, "name"));
		fputs("</h1>\n<ul>\n", f);
	} else {
		fprintf(f, "# Run %s: %s\n\n", str(m, "run"), str(m, "name"));
	}
#define ITEM(label, val)                                                                           \
	do {                                                                                       \
		fputs(is_html ? "<li><b>" : "- **", f);                                            \
		fputs(label, f);                                                                   \
		fputs(is_html ? "</b>: " : "**: ", f);                                             \
		esc(f, val);                                                                       \
		fputs(is_html ? "</li>\n" : "\n", f);                                              \
	} while (0)
	ITEM("Outcome", str(m, "status"));
	if (json_object_get(m, "error"))
		ITEM("Error", str(m, "error"));
	ITEM("Runbook", str(m, "runbook"));
	ITEM("Mode", json_is_true(json_object_get(m, "drill")) ? "drill" : str(m, "mode"));
	ITEM("Operator", str(m, "operator"));
	ITEM("Host", str(m, "host"));
	ITEM("Started", str(m, "started_at"));
	ITEM("Ended", str(m, "ended_at"));
	{
		char line[128];

		snprintf(line, sizeof(line), "%s (target %s%s%s)", rto, trto,
			 *met(tg, "rto_met") ? ": " : "", met(tg, "rto_met"));
		ITEM("RTO", line);
		snprintf(line, sizeof(line), "%s (target %s%s%s)", rpo, trpo,
			 *met(tg, "rpo_met") ? ": " : "", met(tg, "rpo_met"));
		ITEM("RPO", line);
	}
	ITEM("Audit log", json_is_true(json_object_get(integ, "ok")) ? "intact" : "NOT INTACT");
	ITEM("Integrity", str(integ, "message"));
#undef ITEM
	if (is_html)
		fputs(
		    "</ul>\n<h2>Steps</h2>\n<table><tr><th>step</th><th>action</th><th>status</th>"
		    "<th>start</th><th>duration</th><th>attempts</th><th>calls</th><th>error</th>"
		    "</tr>\n",
		    f);
	else
		fputs(
		    "\n## Steps\n\n| step | action | status | start | duration | attempts | calls "
		    "| error |\n|---|---|---|---|---|---|---|---|\n",
		    f);
	json_array_foreach(json_object_get(m, "steps"), i, s)
	{
		char start[32], dur[32];

		snprintf(start, sizeof(start), "+%.1fs",
			 json_number_value(json_object_get(s, "offset_s")));
		if (json_is_integer(json_object_get(s, "duration_ms")))
			drb_duration_format(
			    (double)json_integer_value(json_object_get(s, "duration_ms")) / 1000.0,
			    dur, sizeof(dur));
		else
			snprintf(dur, sizeof(dur), "-");
		if (is_html) {
			fprintf(f, "<tr class=\"%s\"><td>", str(s, "status"));
			drb_report_html_escape(f, str(s, "id"));
			fputs("</td><td>", f);
			drb_report_html_escape(f, str(s, "action"));
			fprintf(f,
				"</td><td>%s</td><td>%s</td><td>%s</td><td>%lld</td><td>%lld</td>"
				"<td>",
				str(s, "status"), start, dur,
				(long long)json_integer_value(json_object_get(s, "attempts")),
				(long long)json_integer_value(json_object_get(s, "calls")));
			drb_report_html_escape(f, str(s, "error"));
			fputs("</td></tr>\n", f);
		} else {
			fputs("| ", f);
			md(f, str(s, "id"));
			fputs(" | ", f);
			md(f, str(s, "action"));
			fprintf(f, " | %s | %s | %s | %lld | %lld | ", str(s, "status"), start, dur,
				(long long)json_integer_value(json_object_get(s, "attempts")),
				(long long)json_integer_value(json_object_get(s, "calls")));
			md(f, str(s, "error"));
			fputs(" |\n", f);
		}
	}
	fputs(is_html ? "</table>\n<h2>Timeline</h2>\n<pre>\n" : "\n## Timeline\n\n```\n", f);
	json_array_foreach(json_object_get(m, "events"), i, s)
	{
		char line[2300];

		snprintf(line, sizeof(line), "%.12s +%8.3fs  %s\n", str(s, "ts") + 11,
			 json_number_value(json_object_get(s, "offset_s")), str(s, "text"));
		if (is_html)
			drb_report_html_escape(f, line);
		else
			fputs(line, f);
	}
	fputs(is_html ? "</pre>\n</body></html>\n" : "```\n", f);
	return ferror(f) ? drb_err_set(err, DRB_EIO, "cannot write the report") : 0;
}
