/* Tests for src/report/report.c: the model built from an audit log, and its renderings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
		cmocka_unit_test(test_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
