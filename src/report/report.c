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
	if (drb_event_of(event) == DRB_EV_RUN_START) {
		snprintf(out, n, "run %s: %s%s", str(d, "name"), str(d, "mode"),
			 json_is_true(json_object_get(d, "drill")) ? " (drill)" : "");
	} else if (drb_event_of(event) == DRB_EV_STEP_START) {
		if (glyphs)
			return 0;
		snprintf(out, n, "start  %s (%s)", step, str(d, "action"));
	} else if (drb_event_of(event) == DRB_EV_STEP_END) {
		const char *st = str(d, "status");
		char dur[32];

		drb_duration_format((double)json_integer_value(json_object_get(d, "duration_ms")) /
					1000.0,
				    dur, sizeof(dur));
		if (!strcmp(st, "ok") && json_is_integer(json_object_get(d, "wait_ms"))) {
			char w[32];

			/* an until: how long it waited for its condition, and how many checks */
			drb_duration_format(
			    (double)json_integer_value(json_object_get(d, "wait_ms")) / 1000.0, w,
			    sizeof(w));
			snprintf(out, n, "%s %-28s %s (waited %s, %lld checks)", ok, step, dur, w,
				 (long long)json_integer_value(json_object_get(d, "polls")));
		} else if (!strcmp(st, "ok")) {
			snprintf(out, n, "%s %-28s %s", ok, step, dur);
		} else if (!strcmp(st, "skipped"))
			snprintf(out, n, "%s %-28s skipped (%s)", skip, step, str(d, "reason"));
		else if (!strcmp(st, "assumed_done"))
			snprintf(out, n, "%s %-28s assumed done", skip, step);
		else
			snprintf(out, n, "%s %-28s %s after %lld attempt(s): %s", bad, step, dur,
				 (long long)json_integer_value(json_object_get(d, "attempts")),
				 str(d, "error"));
	} else if (drb_event_of(event) == DRB_EV_STEP_RETRY) {
		snprintf(out, n, "  retry  %s attempt %lld failed: %s (next in %.1fs)", step,
			 (long long)json_integer_value(json_object_get(d, "attempt")),
			 str(d, "error"), json_number_value(json_object_get(d, "delay_s")));
	} else if (drb_event_of(event) == DRB_EV_APPROVAL) {
		if (!strcmp(str(d, "state"), "asking"))
			return 0;
		if (json_is_true(json_object_get(d, "approved")))
			snprintf(out, n, "  approved %s by %s (%s)", step, str(d, "approver"),
				 str(d, "how"));
		else
			snprintf(out, n, "  NOT approved %s: %s", step, str(d, "reason"));
	} else if (drb_event_of(event) == DRB_EV_ROLLBACK_BEGIN) {
		snprintf(out, n, "rolling back: %s", str(d, "reason"));
	} else if (drb_event_of(event) == DRB_EV_ROLLBACK_END) {
		snprintf(out, n, "  rollback %s: %s%s%s", step, str(d, "status"),
			 json_object_get(d, "error") ? " " : "", str(d, "error"));
	} else if (drb_event_of(event) == DRB_EV_RUN_RESUME) {
		snprintf(out, n, "resuming run");
	} else if (drb_event_of(event) == DRB_EV_RESUME_REFUSED) {
		snprintf(out, n, "resume refused: %s", str(d, "error"));
	} else if (drb_event_of(event) == DRB_EV_LUA_PRINT) {
		snprintf(out, n, "  | %s", str(d, "line"));
	} else if (drb_event_of(event) == DRB_EV_NOTIFY_FAILED) {
		snprintf(out, n, "  notification %s failed: %s", step, str(d, "error"));
	} else if (drb_event_of(event) == DRB_EV_RUN_END) {
		snprintf(out, n, "run %s (exit %lld)%s%s", str(d, "status"),
			 (long long)json_integer_value(json_object_get(d, "exit_code")),
			 json_object_get(d, "error") ? ": " : "", str(d, "error"));
	} else if (drb_event_of(event) == DRB_EV_AUDIT_REPAIRED) {
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

static json_t *find_by_id(json_t *list, const char *uid)
{
	size_t i;
	json_t *s;

	json_array_foreach(list, i, s) if (!strcmp(str(s, "id"), uid)) return s;
	return NULL;
}

static json_t *step_entry(json_t *steps, const char *uid)
{
	json_t *s = find_by_id(steps, uid);
	const char *br = strchr(uid, '[');

	if (s)
		return s;
	s = json_pack("{s:s, s:s, s:i, s:i}", "id", uid, "status", "started", "attempts", 0,
		      "calls", 0);
	if (br && br > uid) /* a for_each child: "scale[2]" belongs to "scale" */
		json_object_set_new(s, "parent", json_stringn(uid, (size_t)(br - uid)));
	json_array_append_new(steps, s);
	return s;
}

/* Appends v (stolen) to the array member k of o, creating it. */
static void push(json_t *o, const char *k, json_t *v)
{
	json_t *a = json_object_get(o, k);

	if (!a) {
		a = json_array();
		json_object_set_new(o, k, a);
	}
	json_array_append_new(a, v);
}

int drb_report_build(const char *path, const unsigned char *key, size_t key_len, json_t **out,
		     drb_err *err)
{
	drb_verify_result vr;
	json_t *recs = NULL, *m = NULL, *steps, *events, *rec, *rollbacks, *notes;
	int64_t t0 = 0;
	double last_off = 0;
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
	rollbacks = json_array();
	notes = json_array();
	json_object_set_new(m, "steps", steps);
	json_object_set_new(m, "events", events);
	json_object_set_new(m, "rollbacks", rollbacks);
	json_object_set_new(m, "notifications", notes);
	json_array_foreach(recs, i, rec)
	{
		const char *ev = str(rec, "event"), *ts = str(rec, "ts");
		const char *uid = json_string_value(json_object_get(rec, "step"));
		json_t *d = json_object_get(rec, "data"), *s;
		double off;
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
		off = offset_s(ts, t0);
		if (off > last_off)
			last_off = off;
		/* a notification is not a step: its calls have no step.start */
		s = uid ? find_by_id(steps, uid) : NULL;
		if (drb_event_of(ev) == DRB_EV_RUN_START) {
			json_object_set_new(m, "runbook", json_string(str(d, "runbook")));
			json_object_set_new(m, "name", json_string(str(d, "name")));
			json_object_set(m, "scenario", json_object_get(d, "scenario"));
			json_object_set_new(m, "mode", json_string(str(d, "mode")));
			json_object_set(m, "drill", json_object_get(d, "drill"));
			json_object_set_new(m, "operator", json_string(str(d, "operator")));
			json_object_set_new(m, "host", json_string(str(d, "host")));
			json_object_set_new(m, "started_at", json_string(ts));
			json_object_set_new(m, "start_offset_s", json_real(off));
			json_object_set(m, "params", json_object_get(d, "params"));
			json_object_set(m, "targets", json_object_get(d, "targets"));
			if (json_object_get(d, "gameday"))
				json_object_set(m, "gameday", json_object_get(d, "gameday"));
		} else if (drb_event_of(ev) == DRB_EV_RUN_END) {
			json_object_set_new(m, "ended_at", json_string(ts));
			json_object_set_new(m, "end_offset_s", json_real(off));
			json_object_set_new(m, "status", json_string(str(d, "status")));
			json_object_set(m, "exit_code", json_object_get(d, "exit_code"));
			json_object_set(m, "error", json_object_get(d, "error"));
			json_object_set(m, "rto_s", json_object_get(d, "rto_s"));
			json_object_set(m, "rpo_s", json_object_get(d, "rpo_s"));
			if (json_object_get(d, "targets")) {
				/* run.end's verdicts over run.start's aims; both kept */
				json_t *t = json_object();

				json_object_update(t, json_object_get(m, "targets"));
				json_object_update(t, json_object_get(d, "targets"));
				json_object_set_new(m, "targets", t);
			}
		} else if (uid && drb_event_of(ev) == DRB_EV_STEP_START) {
			const char *action = str(d, "action");

			s = step_entry(steps, uid);
			json_object_set_new(s, "action", json_string(action));
			json_object_set_new(s, "started_at", json_string(ts));
			json_object_set_new(s, "offset_s", json_real(off));
			if (json_is_array(json_object_get(d, "needs")))
				json_object_set(s, "needs", json_object_get(d, "needs"));
			/* waiting, not working: a sleep, a human, a poll until something holds */
			if (!strcmp(action, "sleep") || !strcmp(action, "approval") ||
			    json_object_get(d, "until"))
				json_object_set_new(s, "wait", json_true());
		} else if (uid && drb_event_of(ev) == DRB_EV_STEP_END) {
			const json_t *res = json_object_get(d, "result");

			s = step_entry(steps, uid);
			json_object_set_new(s, "status", json_string(str(d, "status")));
			json_object_set_new(s, "ended_at", json_string(ts));
			json_object_set_new(s, "end_offset_s", json_real(off));
			if (!json_object_get(s, "offset_s")) /* skipped before it started */
				json_object_set_new(s, "offset_s", json_real(off));
			json_object_set(s, "duration_ms", json_object_get(d, "duration_ms"));
			json_object_set(s, "attempts", json_object_get(d, "attempts"));
			if (json_object_get(d, "wait_ms")) {
				json_object_set(s, "wait_ms", json_object_get(d, "wait_ms"));
				json_object_set(s, "polls", json_object_get(d, "polls"));
			}
			if (json_object_get(d, "error"))
				json_object_set(s, "error", json_object_get(d, "error"));
			if (json_is_string(json_object_get(res, "last_stale_at")))
				json_object_set(s, "last_stale_at",
						json_object_get(res, "last_stale_at"));
		} else if (s && drb_event_of(ev) == DRB_EV_CALL) {
			json_object_set_new(
			    s, "calls",
			    json_integer(json_integer_value(json_object_get(s, "calls")) + 1));
			push(s, "call_offsets", json_real(off));
		} else if (uid && drb_event_of(ev) == DRB_EV_CALL) {
			/* each send of a notification is one call */
			json_array_append_new(notes,
					      json_pack("{s:s, s:s, s:f, s:s}", "id", uid, "ts", ts,
							"offset_s", off, "status", "sent"));
		} else if (s && drb_event_of(ev) == DRB_EV_STEP_RETRY) {
			push(s, "retries",
			     json_pack("{s:f, s:O?, s:O?, s:s}", "offset_s", off, "attempt",
				       json_object_get(d, "attempt"), "delay_s",
				       json_object_get(d, "delay_s"), "error", str(d, "error")));
		} else if (s && drb_event_of(ev) == DRB_EV_APPROVAL) {
			if (!strcmp(str(d, "state"), "asking"))
				json_object_set_new(s, "asked_offset_s", json_real(off));
			else
				json_object_set_new(
				    s, "approval",
				    json_pack("{s:f, s:b, s:s, s:s, s:s}", "offset_s", off,
					      "approved",
					      json_is_true(json_object_get(d, "approved")),
					      "approver", str(d, "approver"), "how", str(d, "how"),
					      "reason", str(d, "reason")));
		} else if (drb_event_of(ev) == DRB_EV_ROLLBACK_BEGIN) {
			json_object_set_new(m, "rollback_offset_s", json_real(off));
			json_object_set_new(m, "rollback_reason", json_string(str(d, "reason")));
		} else if (uid && drb_event_of(ev) == DRB_EV_ROLLBACK_START) {
			json_array_append_new(rollbacks,
					      json_pack("{s:s, s:f, s:s}", "id", uid, "offset_s",
							off, "status", "started"));
		} else if (uid && drb_event_of(ev) == DRB_EV_ROLLBACK_END) {
			json_t *r = find_by_id(rollbacks, uid);

			if (!r) {
				r = json_pack("{s:s, s:f}", "id", uid, "offset_s", off);
				json_array_append_new(rollbacks, r);
			}
			json_object_set_new(r, "status", json_string(str(d, "status")));
			json_object_set_new(r, "end_offset_s", json_real(off));
			if (json_object_get(d, "error"))
				json_object_set(r, "error", json_object_get(d, "error"));
		} else if (uid && drb_event_of(ev) == DRB_EV_NOTIFY_FAILED) {
			json_t *n = json_array_get(notes, json_array_size(notes) - 1);

			/* the failure of the send just recorded, or one that never got to a call */
			if (!n || strcmp(str(n, "id"), uid) || strcmp(str(n, "status"), "sent")) {
				n = json_pack("{s:s, s:s, s:f}", "id", uid, "ts", ts, "offset_s",
					      off);
				json_array_append_new(notes, n);
			}
			json_object_set_new(n, "status", json_string("failed"));
			json_object_set_new(n, "error", json_string(str(d, "error")));
		}
		if (drb_report_event_text(ev, uid, d, 0, text, sizeof(text)))
			json_array_append_new(events, json_pack("{s:s, s:f, s:s, s:s?, s:s}", "ts",
								ts, "offset_s", off, "event", ev,
								"step", uid, "text", text));
	}
	if (!json_object_get(m, "status"))
		json_object_set_new(m, "status", json_string("interrupted (no run.end)"));
	json_object_set_new(m, "last_offset_s", json_real(last_off));
	drb_report_analyze(m);
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

/* run.end targets.rto / .rpo: met, missed or unknown (logs before format v1.1 have
 * rto_met / rpo_met booleans). */
static const char *met(const json_t *targets, const char *k)
{
	const char *v = json_string_value(json_object_get(targets, k));
	const json_t *old;
	char oldk[16];

	if (v)
		return !strcmp(v, "missed") ? "MISSED" : v;
	snprintf(oldk, sizeof(oldk), "%s_met", k);
	old = json_object_get(targets, oldk);
	return json_is_true(old) ? "met" : json_is_false(old) ? "MISSED" : "";
}

const char drb_report_css[] =
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.failed{color:#b00}"
    ".ok,.succeeded{color:#070}.refused{color:#a60}svg text{font-family:sans-serif}";

const char *drb_report_token(const char *s)
{
	const char *p = s;

	for (; p && *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return "other";
	return s && *s ? s : "other";
}

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

/* A table of timed entries ({id, offset_s, status, error}): the run's notifications, its
 * rollback. Nothing when there are none. */
static void event_table(FILE *f, int is_html, const char *title, const char *first,
			const json_t *rows)
{
	void (*esc)(FILE *, const char *) = is_html ? drb_report_html_escape : md;
	size_t i;
	json_t *s;

	if (!json_array_size(rows))
		return;
	if (is_html)
		fprintf(f,
			"<h2>%s</h2>\n<table><tr><th>%s</th><th>at</th><th>status</th>"
			"<th>error</th></tr>\n",
			title, first);
	else
		fprintf(f, "\n## %s\n\n| %s | at | status | error |\n|---|---|---|---|\n", title,
			first);
	json_array_foreach(rows, i, s)
	{
		fputs(is_html ? "<tr><td>" : "| ", f);
		esc(f, str(s, "id"));
		fprintf(f,
			is_html ? "</td><td>+%.1fs</td><td class=\"%s\">%s</td><td>"
				: " | +%.1fs | %.0s%s | ",
			json_number_value(json_object_get(s, "offset_s")),
			drb_report_token(str(s, "status")), drb_report_token(str(s, "status")));
		esc(f, str(s, "error"));
		fputs(is_html ? "</td></tr>\n" : " |\n", f);
	}
	if (is_html)
		fputs("</table>\n", f);
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
		fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>Run ", drb_report_css);
		drb_report_html_escape(f, str(m, "run"));
		fputs(": ", f);
		drb_report_html_escape(f, str(m, "name"));
		fputs("</h1>\n<ul class=\"summary\">\n", f);
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
			 *met(tg, "rto") ? ": " : "", met(tg, "rto"));
		ITEM("RTO", line);
		snprintf(line, sizeof(line), "%s (target %s%s%s)", rpo, trpo,
			 *met(tg, "rpo") ? ": " : "", met(tg, "rpo"));
		ITEM("RPO", line);
	}
	ITEM("Audit log", json_is_true(json_object_get(integ, "ok")) ? "intact" : "NOT INTACT");
	ITEM("Integrity", str(integ, "message"));
	if (json_array_size(json_object_get(m, "critical_path"))) {
		char line[1024] = "", d[32];
		const json_t *id;

		json_array_foreach(json_object_get(m, "critical_path"), i, id)
		    snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s",
			     i ? " -> " : "", json_string_value(id));
		drb_duration_format(json_number_value(json_object_get(m, "critical_path_s")), d,
				    sizeof(d));
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " (%s)", d);
		ITEM("Critical path", line);
	}
	if (json_object_get(m, "dns")) {
		const json_t *dns = json_object_get(m, "dns");
		char line[256];

		if (json_is_number(json_object_get(dns, "last_stale_offset_s")))
			snprintf(line, sizeof(line),
				 "last stale answer at +%.1fs, converged at +%.1fs (%s)",
				 json_number_value(json_object_get(dns, "last_stale_offset_s")),
				 json_number_value(json_object_get(dns, "converged_offset_s")),
				 str(dns, "step"));
		else
			snprintf(line, sizeof(line),
				 "no stale answer seen; converged at +%.1fs (%s)",
				 json_number_value(json_object_get(dns, "converged_offset_s")),
				 str(dns, "step"));
		ITEM("DNS", line);
	}
#undef ITEM
	if (is_html) {
		fputs("</ul>\n<h2>Chart</h2>\n", f);
		drb_report_gantt(f, m);
	}
	event_table(f, is_html, "Notifications", "notification",
		    json_object_get(m, "notifications"));
	event_table(f, is_html, "Rollback", "compensation of", json_object_get(m, "rollbacks"));
	if (is_html)
		fputs("<h2>Steps</h2>\n<table><tr><th>step</th><th>action</th><th>status</th>"
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
			fprintf(f, "<tr class=\"%s\"><td>", drb_report_token(str(s, "status")));
			drb_report_html_escape(f, str(s, "id"));
			fputs("</td><td>", f);
			drb_report_html_escape(f, str(s, "action"));
			fprintf(f,
				"</td><td>%s</td><td>%s</td><td>%s</td><td>%lld</td><td>%lld</td>"
				"<td>",
				drb_report_token(str(s, "status")), start, dur,
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
