/* Tests for src/runbook/schedule.c: game-day schedules and their diagnostics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/runbook.h>

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/drb-sched-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Every field lands in the model; paths resolve against the schedule's folder; params become
 * -p strings (lists and maps as JSON, booleans as true/false). */
static void test_valid(void **state)
{
	const char *p =
	    write_file("gd.yaml", "version: 1\n"
				  "drills:\n"
				  "  - name: weekly\n"
				  "    runbook: region.yaml\n"
				  "    every: 168h\n"
				  "    params: { force: true, services: [api, auth], n: 2 }\n"
				  "    approve: [approve]\n"
				  "  - name: off\n"
				  "    runbook: /abs/x.yaml\n"
				  "    every: 1h30m\n"
				  "    yes: true\n"
				  "    enabled: false\n"
				  "    shadow: true\n");
	drb_schedule *s = NULL;
	drb_diags d;
	char want[128];

	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(s->n_drills, 2);
	snprintf(want, sizeof(want), "%s/region.yaml", dir);
	assert_string_equal(s->drills[0].runbook, want);
	assert_true(s->drills[0].every_s == 168 * 3600);
	assert_int_equal(s->drills[0].n_params, 3);
	assert_string_equal(s->drills[0].params[0], "force=true");
	assert_string_equal(s->drills[0].params[1], "services=[\"api\",\"auth\"]");
	assert_string_equal(s->drills[0].params[2], "n=2");
	assert_int_equal(s->drills[0].n_approve, 1);
	assert_true(s->drills[0].enabled);
	assert_string_equal(s->drills[1].runbook, "/abs/x.yaml");
	assert_true(s->drills[1].every_s == 5400);
	assert_true(s->drills[1].yes);
	assert_false(s->drills[1].enabled);
	assert_false(s->drills[0].shadow);
	assert_true(s->drills[1].shadow);
	drb_schedule_free(s);
	drb_diags_free(&d);
}

/* All problems of the file at once, each at its place. */
static void test_invalid(void **state)
{
	const char *p = write_file("bad.yaml", "version: 2\n"
					       "drills:\n"
					       "  - name: a\n"
					       "    runbook: x.yaml\n"
					       "    every: soon\n"
					       "  - name: a\n"
					       "    every: 1h\n"
					       "    colour: blue\n"
					       "    shadow: sometimes\n");
	drb_schedule *s = NULL;
	drb_diags d;

	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), DRB_EINVAL);
	assert_null(s);
	assert_int_equal(d.n, 6);
	assert_int_equal(d.v[0].pos.line, 1); /* version */
	assert_non_null(strstr(d.v[1].msg, "'every' must be a duration"));
	assert_int_equal(d.v[1].pos.line, 5);
	assert_non_null(strstr(d.v[2].msg, "'runbook' is required"));
	assert_int_equal(d.v[2].pos.line, 6);
	assert_non_null(strstr(d.v[3].msg, "duplicate drill name 'a' (first at 3:5)"));
	assert_int_equal(d.v[3].pos.col, 11);
	assert_non_null(strstr(d.v[4].msg, "unknown key 'colour'"));
	assert_non_null(strstr(d.v[5].msg, "drill 'shadow' must be true or false"));
	assert_int_equal(d.v[5].pos.line, 9);
	drb_diags_free(&d);
}

/* Files that are not schedules are refused cleanly. */
static void test_not_a_schedule(void **state)
{
	drb_schedule *s = NULL;
	drb_diags d;

	drb_diags_init(&d, "missing");
	assert_int_equal(drb_schedule_load(&s, "/nonexistent/gd.yaml", &d), DRB_ENOTFOUND);
	drb_diags_free(&d);
	drb_diags_init(&d, "list");
	assert_int_equal(drb_schedule_load(&s, write_file("l.yaml", "- a\n- b\n"), &d), DRB_EINVAL);
	assert_non_null(strstr(d.v[0].msg, "top level must be a mapping"));
	drb_diags_free(&d);
	drb_diags_init(&d, "empty");
	assert_int_equal(
	    drb_schedule_load(&s, write_file("e.yaml", "version: 1\ndrills: []\n"), &d),
	    DRB_EINVAL);
	assert_non_null(strstr(d.v[0].msg, "non-empty list"));
	drb_diags_free(&d);
}

/* every: due when never run or every_s after the last run. cron: due from a firing on, when
 * there was no run since it and it is at most catch_up old; otherwise at the next firing. */
static void test_due(void **state)
{
	const char *p = write_file(
	    "due.yaml", "version: 1\n"
			"drills:\n"
			"  - { name: e, runbook: x.yaml, every: 1h }\n"
			"  - { name: c, runbook: x.yaml, cron: \"0 3 * * *\" }\n"
			"  - { name: k, runbook: x.yaml, cron: \"0 3 * * *\",\n"
			"      catch_up: 30m }\n"
			"  - { name: off, runbook: x.yaml, every: 1h, enabled: false }\n");
	drb_schedule *s = NULL;
	drb_diags d;
	int64_t at = -1;
	const int64_t day = 1700006400; /* 2023-11-15T00:00:00Z */
	const int64_t f3 = day + 3 * 3600;

	(void)state;
	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), 0);
	assert_int_equal(s->drills[1].has_cron, 1);
	assert_string_equal(s->drills[1].cron_src, "0 3 * * *");
	assert_true(s->drills[1].catch_up_s == 7200);
	assert_true(s->drills[2].catch_up_s == 1800);
	/* every */
	assert_int_equal(drb_schedule_due(&s->drills[0], 0, day, &at), 1);
	assert_int_equal(drb_schedule_due(&s->drills[0], day - 1800, day, &at), 0);
	assert_int_equal(at, day + 1800);
	assert_int_equal(drb_schedule_due(&s->drills[0], day - 3600, day, &at), 1);
	/* cron: before the firing, never run: not due, due at 03:00 */
	assert_int_equal(drb_schedule_due(&s->drills[1], 0, f3 - 60, &at), 0);
	assert_int_equal(at, f3);
	/* at and after the firing, within catch_up, never run or run before: due */
	assert_int_equal(drb_schedule_due(&s->drills[1], 0, f3, &at), 1);
	assert_int_equal(at, f3);
	assert_int_equal(drb_schedule_due(&s->drills[1], f3 - 86400, f3 + 3600, &at), 1);
	/* run since the firing: next day */
	assert_int_equal(drb_schedule_due(&s->drills[1], f3 + 5, f3 + 3600, &at), 0);
	assert_int_equal(at, f3 + 86400);
	/* the firing is older than catch_up: missed, wait for the next */
	assert_int_equal(drb_schedule_due(&s->drills[1], 0, f3 + 7201, &at), 0);
	assert_int_equal(at, f3 + 86400);
	assert_int_equal(drb_schedule_due(&s->drills[2], 0, f3 + 1801, &at), 0);
	assert_int_equal(drb_schedule_due(&s->drills[2], 0, f3 + 1800, &at), 1);
	/* disabled: never */
	assert_int_equal(drb_schedule_due(&s->drills[3], 0, day, &at), 0);
	assert_int_equal(at, 0);
	drb_schedule_free(s);
	drb_diags_free(&d);
}

/* Blackouts: one-off [from, until), recurring [firing, firing + duration), the schedule's for
 * every drill and a drill's for itself; windows that touch are followed to their end. */
static void test_blackout(void **state)
{
	const char *p = write_file(
	    "bo.yaml", "version: 1\n"
		       "blackout:\n"
		       "  - { cron: \"0 9 * * MON-FRI\", duration: 8h, reason: office }\n"
		       "  - { from: \"2023-11-17T17:00:00Z\", until: \"2023-11-18T00:00:00Z\" }\n"
		       "drills:\n"
		       "  - { name: a, runbook: x.yaml, every: 1h }\n"
		       "  - name: b\n"
		       "    runbook: x.yaml\n"
		       "    every: 1h\n"
		       "    blackout: [{ cron: \"0 0 * * *\", duration: 2h, reason: backups }]\n");
	drb_schedule *s = NULL;
	drb_diags d;
	int64_t until = 0;
	const int64_t wed = 1700006400; /* 2023-11-15T00:00:00Z, Wednesday */
	const drb_blackout *b;

	(void)state;
	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), 0);
	assert_int_equal(s->n_blackouts, 2);
	/* Wednesday 10:00: office hours until 17:00 */
	b = drb_schedule_blackout(s, &s->drills[0], wed + 10 * 3600, &until);
	assert_non_null(b);
	assert_string_equal(b->reason, "office");
	assert_int_equal(until, wed + 17 * 3600);
	/* 08:59 and 17:00: free */
	assert_null(drb_schedule_blackout(s, &s->drills[0], wed + 9 * 3600 - 60, &until));
	assert_null(drb_schedule_blackout(s, &s->drills[0], wed + 17 * 3600, &until));
	/* Saturday 10:00: no office */
	assert_null(drb_schedule_blackout(s, &s->drills[0], wed + 3 * 86400 + 10 * 3600, &until));
	/* Friday 10:00: office to 17:00, then the one-off window to midnight, touching */
	b = drb_schedule_blackout(s, &s->drills[0], wed + 2 * 86400 + 10 * 3600, &until);
	assert_non_null(b);
	assert_int_equal(until, wed + 3 * 86400);
	/* 01:00: only drill b's backups window */
	assert_null(drb_schedule_blackout(s, &s->drills[0], wed + 3600, &until));
	b = drb_schedule_blackout(s, &s->drills[1], wed + 3600, &until);
	assert_non_null(b);
	assert_string_equal(b->reason, "backups");
	assert_int_equal(until, wed + 7200);
	drb_schedule_free(s);
	drb_diags_free(&d);
}

/* A drill's notifications become run-level notify entries (on failure by default); wrong
 * channels, severities and events are refused at their place. */
static void test_notify(void **state)
{
	char p[128], bad[128];

	snprintf(p, sizeof(p), "%s",
		 write_file("n.yaml",
			    "version: 1\n"
			    "drills:\n"
			    "  - name: a\n"
			    "    runbook: x.yaml\n"
			    "    every: 1h\n"
			    "    notify: { channel: pagerduty }\n"
			    "  - name: b\n"
			    "    runbook: x.yaml\n"
			    "    every: 1h\n"
			    "    notify:\n"
			    "      - { channel: slack, severity: info, on: [success, end] }\n"));
	snprintf(bad, sizeof(bad), "%s",
		 write_file("nb.yaml",
			    "version: 1\n"
			    "drills:\n"
			    "  - name: a\n"
			    "    runbook: x.yaml\n"
			    "    every: 1h\n"
			    "    notify: { channel: email, severity: loud, on: [later] }\n"));
	drb_schedule *s = NULL;
	drb_diags d;
	const drb_notify *n;

	(void)state;
	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), 0);
	assert_int_equal(s->drills[0].n_notify, 1);
	n = &s->drills[0].notify[0];
	assert_string_equal(n->call.action, "notify");
	assert_int_equal(n->n_on, 1);
	assert_string_equal(n->on[0], "failure");
	assert_string_equal(json_string_value(json_object_get(n->call.with, "channel")),
			    "pagerduty");
	assert_string_equal(json_string_value(json_object_get(n->call.with, "severity")), "error");
	assert_non_null(strstr(json_string_value(json_object_get(n->call.with, "text")),
			       "game-day drill a: ${run.status}"));
	n = &s->drills[1].notify[0];
	assert_int_equal(n->n_on, 2);
	assert_string_equal(n->on[1], "end");
	drb_schedule_free(s);
	drb_diags_free(&d);
	drb_diags_init(&d, bad);
	assert_int_equal(drb_schedule_load(&s, bad, &d), DRB_EINVAL);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.v[0].pos.line, 6);
	assert_int_equal(d.v[0].pos.col, 24);
	assert_non_null(strstr(d.v[0].msg, "slack, pagerduty or sns"));
	assert_non_null(strstr(d.v[1].msg, "info, warning, error or critical"));
	assert_non_null(strstr(d.v[2].msg, "start, success, failure, end"));
	drb_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),	   cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_not_a_schedule), cmocka_unit_test(test_due),
	    cmocka_unit_test(test_blackout),	   cmocka_unit_test(test_notify),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
