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
	const char *p = write_file("gd.yaml", "version: 1\n"
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
					      "    enabled: false\n");
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
					       "    colour: blue\n");
	drb_schedule *s = NULL;
	drb_diags d;

	drb_diags_init(&d, p);
	assert_int_equal(drb_schedule_load(&s, p, &d), DRB_EINVAL);
	assert_null(s);
	assert_int_equal(d.n, 5);
	assert_int_equal(d.v[0].pos.line, 1); /* version */
	assert_non_null(strstr(d.v[1].msg, "'every' must be a duration"));
	assert_int_equal(d.v[1].pos.line, 5);
	assert_non_null(strstr(d.v[2].msg, "'runbook' is required"));
	assert_int_equal(d.v[2].pos.line, 6);
	assert_non_null(strstr(d.v[3].msg, "duplicate drill name 'a' (first at 3:5)"));
	assert_int_equal(d.v[3].pos.col, 11);
	assert_non_null(strstr(d.v[4].msg, "unknown key 'colour'"));
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
	assert_int_equal(drb_schedule_load(&s, write_file("e.yaml", "version: 1\ndrills: []\n"), &d),
			 DRB_EINVAL);
	assert_non_null(strstr(d.v[0].msg, "non-empty list"));
	drb_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_not_a_schedule),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
