/* Tests for src/report/report.c: the model built from an audit log, and its renderings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/audit.h>
#include <drbook/report.h>

typedef struct fixture {
	char dir[64];
	char log[128];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	drb_audit *a = NULL;
	drb_err e = {0};
	json_t *d;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/drb-report-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/run.jsonl", f->dir);
	if (drb_audit_create(&a, f->log, "R1", NULL, 0, &e))
		return -1;
	d = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:{}, s:{s:f, s:f}}", "runbook", "rb.yaml",
		      "name", "promote", "mode", "run", "drill", 1, "operator", "ana", "host", "h1",
		      "params", "targets", "rto_s", 900.0, "rpo_s", 3600.0);
	drb_audit_append(a, "run.start", NULL, d, &e);
	json_decref(d);
	d = json_pack("{s:s}", "action", "aws.rds.promote_read_replica");
	drb_audit_append(a, "step.start", "promote", d, &e);
	json_decref(d);
	d = json_pack("{s:s, s:s, s:i}", "service", "rds", "operation", "PromoteReadReplica",
		      "status", 200);
	drb_audit_append(a, "call", "promote", d, &e);
	drb_audit_append(a, "call", "promote", d, &e);
	json_decref(d);
	d = json_pack("{s:s, s:i, s:i, s:s}", "status", "failed", "attempts", 2, "duration_ms",
		      1500, "error", "Throttling | rate exceeded");
	drb_audit_append(a, "step.end", "promote", d, &e);
	json_decref(d);
	d = json_pack("{s:s, s:i, s:f, s:s, s:{s:f, s:b}}", "status", "failed", "exit_code", 1,
		      "rpo_s", 12.0, "error", "step 'promote': Throttling", "targets", "rpo_s",
		      3600.0, "rpo_met", 1);
	drb_audit_append(a, "run.end", NULL, d, &e);
	json_decref(d);
	drb_audit_close(a);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	unlink(f->log);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The model holds the run's facts, one entry per step with its calls, and the events. */
static void test_model(void **state)
{
	fixture *f = *state;
	json_t *m = NULL, *s;
	drb_err e = {0};

	assert_int_equal(drb_report_build(f->log, NULL, 0, &m, &e), 0);
	assert_string_equal(json_string_value(json_object_get(m, "status")), "failed");
	assert_string_equal(json_string_value(json_object_get(m, "operator")), "ana");
	assert_true(json_is_true(json_object_get(json_object_get(m, "integrity"), "ok")));
	assert_int_equal(json_array_size(json_object_get(m, "steps")), 1);
	s = json_array_get(json_object_get(m, "steps"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "id")), "promote");
	assert_int_equal(json_integer_value(json_object_get(s, "calls")), 2);
	assert_int_equal(json_integer_value(json_object_get(s, "attempts")), 2);
	assert_true(json_number_value(json_object_get(m, "rpo_s")) == 12.0);
	/* run.start, step.start, step.end, run.end are shown; calls are not */
	assert_int_equal(json_array_size(json_object_get(m, "events")), 4);
	json_decref(m);
}

/* Markdown escapes table cells and states the targets; HTML escapes markup. */
static void test_render(void **state)
{
	fixture *f = *state;
	json_t *m = NULL;
	drb_err e = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	assert_int_equal(drb_report_build(f->log, NULL, 0, &m, &e), 0);
	out = open_memstream(&buf, &len);
	assert_int_equal(drb_report_write(m, DRB_REPORT_MD, out, &e), 0);
	fclose(out);
	assert_non_null(strstr(buf, "| promote | aws.rds.promote_read_replica | failed |"));
	assert_non_null(strstr(buf, "Throttling \\| rate exceeded"));
	assert_non_null(strstr(buf, "- **RPO**: 12s (target 1h: met)"));
	assert_non_null(strstr(buf, "- **Mode**: drill"));
	free(buf);
	buf = NULL;
	json_object_set_new(m, "name", json_string("<script>"));
	out = open_memstream(&buf, &len);
	assert_int_equal(drb_report_write(m, DRB_REPORT_HTML, out, &e), 0);
	fclose(out);
	assert_null(strstr(buf, "<script>"));
	assert_non_null(strstr(buf, "&lt;script&gt;"));
	free(buf);
	json_decref(m);
}

/* A tampered log is still reported, marked not intact. */
static void test_tampered(void **state)
{
	fixture *f = *state;
	json_t *m = NULL;
	drb_err e = {0};
	char *text = NULL, *p;
	size_t n;
	FILE *io = fopen(f->log, "r+");

	assert_non_null(io);
	text = calloc(1, 65536);
	n = fread(text, 1, 65535, io);
	p = strstr(text, "\"ana\"");
	assert_non_null(p);
	p[1] = 'e';
	rewind(io);
	fwrite(text, 1, n, io);
	fclose(io);
	free(text);
	assert_int_equal(drb_report_build(f->log, NULL, 0, &m, &e), 0);
	assert_false(json_is_true(json_object_get(json_object_get(m, "integrity"), "ok")));
	json_decref(m);
}

/* A missing log is an error, not an empty report. */
static void test_missing(void **state)
{
	json_t *m = NULL;
	drb_err e = {0};

	assert_int_not_equal(drb_report_build("/nonexistent/run.jsonl", NULL, 0, &m, &e), 0);
	assert_null(m);
}

/* Writes a log of records {event, step, at (seconds after 12:00:00), data}: chained by
 * nothing (the report still reads a log that does not verify), timed exactly. */
typedef struct rec {
	const char *event, *step;
	double at;
	const char *data; /* JSON */
} rec;

static json_t *model_of(const rec *r, size_t n)
{
	char path[] = "/tmp/drb-report-timed-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	json_t *m = NULL;
	drb_err e = {0};

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fprintf(
		    f,
		    "{\"seq\":%zu,\"ts\":\"2026-01-01T12:%02d:%06.3fZ\",\"run\":\"R\",\"event\":"
		    "\"%s\",\"step\":%s%s%s,\"data\":%s,\"prev\":\"0\"}\n",
		    i + 1, (int)(r[i].at / 60), r[i].at - 60 * (int)(r[i].at / 60), r[i].event,
		    r[i].step ? "\"" : "", r[i].step ? r[i].step : "null", r[i].step ? "\"" : "",
		    r[i].data ? r[i].data : "{}");
	fclose(f);
	assert_int_equal(drb_report_build(path, NULL, 0, &m, &e), 0);
	unlink(path);
	return m;
}

static const char *path_str(const json_t *m, char *out, size_t n)
{
	size_t i;
	json_t *id;

	out[0] = '\0';
	json_array_foreach(json_object_get(m, "critical_path"), i, id) snprintf(
	    out + strlen(out), n - strlen(out), "%s%s", i ? "," : "", json_string_value(id));
	return out;
}

/* Parallel steps, read from the timestamps: the chain each step waited for, back from the
 * step that ended last; the shorter branch (c) is not on it. */
static void test_critical_path_by_timestamps(void **state)
{
	static const rec r[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"step.start", "a", 0.1, "{\"action\":\"sleep\"}"},
	    {"step.end", "a", 1.0, "{\"status\":\"ok\"}"},
	    {"step.start", "b", 1.01, "{\"action\":\"exec\"}"},
	    {"step.start", "c", 1.02, "{\"action\":\"exec\"}"},
	    {"step.end", "c", 1.5, "{\"status\":\"ok\"}"},
	    {"step.end", "b", 3.0, "{\"status\":\"ok\"}"},
	    {"step.start", "d", 3.01, "{\"action\":\"exec\"}"},
	    {"step.end", "d", 3.5, "{\"status\":\"ok\"}"},
	    {"run.end", NULL, 3.6, "{\"status\":\"succeeded\",\"rto_s\":3.6}"},
	};
	char buf[128];
	json_t *m = model_of(r, sizeof(r) / sizeof(r[0]));

	(void)state;
	assert_string_equal(path_str(m, buf, sizeof(buf)), "a,b,d");
	assert_true(fabs(json_number_value(json_object_get(m, "critical_path_s")) - 3.4) < 1e-6);
	json_decref(m);
}

/* A step that took 0 ms ends in the same millisecond as the one before it: the chain keeps
 * it (the later one in start order ran just before the next), as the e2e chart saw fail. */
static void test_critical_path_keeps_a_0ms_step(void **state)
{
	static const rec r[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"step.start", "a", 0.1, "{\"action\":\"sleep\"}"},
	    {"step.end", "a", 1.0, "{\"status\":\"ok\"}"},
	    {"step.start", "b", 1.0, "{\"action\":\"lua\"}"},
	    {"step.end", "b", 1.0, "{\"status\":\"ok\"}"},
	    {"step.start", "c", 1.0, "{\"action\":\"exec\"}"},
	    {"step.end", "c", 2.0, "{\"status\":\"ok\"}"},
	    {"run.end", NULL, 2.1, "{\"status\":\"succeeded\"}"},
	};
	char buf[128];
	json_t *m = model_of(r, sizeof(r) / sizeof(r[0]));

	(void)state;
	assert_string_equal(path_str(m, buf, sizeof(buf)), "a,b,c");
	json_decref(m);
}

/* With needs recorded, the chain follows them, even where timestamps would say otherwise. */
static void test_critical_path_by_needs(void **state)
{
	static const rec r[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"step.start", "a", 0.1, "{\"action\":\"exec\",\"needs\":[]}"},
	    {"step.start", "b", 0.1, "{\"action\":\"exec\",\"needs\":[]}"},
	    {"step.end", "b", 0.5, "{\"status\":\"ok\"}"},
	    {"step.end", "a", 2.0, "{\"status\":\"ok\"}"},
	    {"step.start", "c", 2.1, "{\"action\":\"exec\",\"needs\":[\"b\"]}"},
	    {"step.end", "c", 4.0, "{\"status\":\"ok\"}"},
	    {"run.end", NULL, 4.1, "{\"status\":\"succeeded\"}"},
	};
	char buf[128];
	json_t *m = model_of(r, sizeof(r) / sizeof(r[0]));

	(void)state;
	assert_string_equal(path_str(m, buf, sizeof(buf)), "b,c");
	json_decref(m);
}

/* Notifications are listed with their outcome, not drawn as steps that never ended; retries,
 * approvals and compensations land on their steps. */
static void test_notifications_retries_rollbacks(void **state)
{
	static const rec r[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"call", "notify[1]", 0.05, "{\"service\":\"slack\",\"status\":200}"},
	    {"step.start", "ask", 0.1, "{\"action\":\"approval\"}"},
	    {"approval", "ask", 5.0, "{\"approved\":true,\"approver\":\"ana\",\"how\":\"tty\"}"},
	    {"step.end", "ask", 5.0, "{\"status\":\"ok\"}"},
	    {"step.start", "promote", 5.1, "{\"action\":\"exec\"}"},
	    {"step.retry", "promote", 5.5,
	     "{\"attempt\":1,\"delay_s\":2.0,\"error\":\"Throttling\"}"},
	    {"step.end", "promote", 8.0, "{\"status\":\"failed\",\"error\":\"boom\"}"},
	    {"rollback.begin", NULL, 8.1, "{\"reason\":\"boom\"}"},
	    {"rollback.start", "ask", 8.2, "{}"},
	    {"rollback.end", "ask", 8.4, "{\"status\":\"ok\"}"},
	    {"call", "notify[2]", 8.5, "{\"service\":\"slack\",\"status\":500}"},
	    {"notify.failed", "notify[2]", 8.6, "{\"event\":\"failure\",\"error\":\"HTTP 500\"}"},
	    {"run.end", NULL, 8.7, "{\"status\":\"rolled_back\"}"},
	};
	json_t *m = model_of(r, sizeof(r) / sizeof(r[0])), *steps = json_object_get(m, "steps");
	json_t *notes = json_object_get(m, "notifications"), *s;

	(void)state;
	assert_int_equal(json_array_size(steps), 2); /* ask, promote: no notify rows */
	assert_int_equal(json_array_size(notes), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 0), "status")),
			    "sent");
	assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 1), "status")),
			    "failed");
	s = json_array_get(steps, 0);
	assert_true(json_is_true(json_object_get(s, "wait")));
	assert_true(json_is_true(json_object_get(json_object_get(s, "approval"), "approved")));
	s = json_array_get(steps, 1);
	assert_int_equal(json_array_size(json_object_get(s, "retries")), 1);
	assert_true(json_number_value(json_object_get(
			json_array_get(json_object_get(s, "retries"), 0), "delay_s")) == 2.0);
	s = json_array_get(json_object_get(m, "rollbacks"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "id")), "ask");
	assert_string_equal(json_string_value(json_object_get(s, "status")), "ok");
	assert_true(json_number_value(json_object_get(m, "rollback_offset_s")) > 8.0);
	json_decref(m);
}

/* DNS convergence: a result's last_stale_at, else a dns.resolve step polled until the answer
 * changed (its last call but one saw the stale answer); absent when nothing was resolved. */
static void test_dns_convergence(void **state)
{
	static const rec polls[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"step.start", "dns", 1.0, "{\"action\":\"dns.resolve\"}"},
	    {"call", "dns", 1.1, "{}"},
	    {"call", "dns", 11.1, "{}"},
	    {"call", "dns", 21.1, "{}"},
	    {"step.end", "dns", 21.2, "{\"status\":\"ok\"}"},
	    {"run.end", NULL, 22, "{\"status\":\"succeeded\"}"},
	};
	static const rec result[] = {
	    {"run.start", NULL, 0, "{\"name\":\"x\"}"},
	    {"step.start", "check", 1.0, "{\"action\":\"lua\"}"},
	    {"step.end", "check", 30.0,
	     "{\"status\":\"ok\",\"result\":{\"last_stale_at\":\"2026-01-01T12:00:25Z\"}}"},
	    {"run.end", NULL, 31, "{\"status\":\"succeeded\"}"},
	};
	json_t *m = model_of(polls, sizeof(polls) / sizeof(polls[0]));
	const json_t *d = json_object_get(m, "dns");

	(void)state;
	assert_non_null(d);
	assert_true(fabs(json_number_value(json_object_get(d, "last_stale_offset_s")) - 11.1) <
		    1e-6);
	assert_true(fabs(json_number_value(json_object_get(d, "converged_offset_s")) - 21.2) <
		    1e-6);
	assert_null(
	    json_object_get(json_array_get(json_object_get(m, "steps"), 0), "call_offsets"));
	json_decref(m);
	m = model_of(result, sizeof(result) / sizeof(result[0]));
	d = json_object_get(m, "dns");
	assert_non_null(d);
	assert_true(json_number_value(json_object_get(d, "last_stale_offset_s")) == 25.0);
	json_decref(m);
	m = model_of(result, 1);
	assert_null(json_object_get(m, "dns"));
	json_decref(m);
}

/* A log someone edited may carry markup in any string: the HTML report writes none of it. */
static void test_html_injection(void **state)
{
	static const rec r[] = {
	    {"run.start", NULL, 0, "{\"name\":\"<img src=x onerror=alert(1)>\"}"},
	    {"step.start", "<b>x</b>", 0.1, "{\"action\":\"<i>\"}"},
	    {"step.end", "<b>x</b>", 1.0, "{\"status\":\"ok\\\" onclick=\\\"alert(1)\"}"},
	    {"rollback.start", "<b>x</b>", 1.1, "{}"},
	    {"rollback.end", "<b>x</b>", 1.2, "{\"status\":\"<script>\"}"},
	    {"call", "notify[1]", 1.3, "{}"},
	    {"notify.failed", "notify[1]", 1.4, "{\"error\":\"<script>alert(1)</script>\"}"},
	    {"run.end", NULL, 2, "{\"status\":\"<script>\",\"targets\":{\"rto\":\"<svg>\"}}"},
	};
	json_t *m = model_of(r, sizeof(r) / sizeof(r[0]));
	drb_err e = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(drb_report_write(m, DRB_REPORT_HTML, out, &e), 0);
	fclose(out);
	assert_null(strstr(buf, "<script"));
	assert_null(strstr(buf, "<img"));
	assert_null(strstr(buf, "<b>x"));
	assert_null(strstr(buf, "<i>"));
	assert_null(strstr(buf, "onclick=\""));
	assert_int_equal(strstr(buf, "<svg") == strstr(buf, "<svg id=\"gantt\""), 1);
	free(buf);
	json_decref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_model, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_render, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_critical_path_by_timestamps),
	    cmocka_unit_test(test_critical_path_keeps_a_0ms_step),
	    cmocka_unit_test(test_critical_path_by_needs),
	    cmocka_unit_test(test_notifications_retries_rollbacks),
	    cmocka_unit_test(test_dns_convergence),
	    cmocka_unit_test(test_html_injection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
