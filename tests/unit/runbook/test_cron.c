/* Tests for src/runbook/cron.c: Vixie cron syntax and semantics in UTC, and the refusals with
 * the offset of the problem. The differential test against croniter is
 * tests/e2e/test_cron_oracle.py; these pin the rules by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/runbook.h>

/* 2023-11-14T22:13:20Z, a Tuesday */
#define T0 1700000000

static int64_t next(const char *expr, int64_t after)
{
	drb_cron c;
	char msg[256];
	size_t off = 0;
	int64_t out = -1;

	assert_int_equal(drb_cron_parse(&c, expr, &off, msg, sizeof(msg)), 0);
	assert_int_equal(drb_cron_next(&c, after, &out), 0);
	return out;
}

static void refused(const char *expr, size_t want_off, const char *want_msg)
{
	drb_cron c;
	char msg[256] = "";
	size_t off = 99;

	assert_int_equal(drb_cron_parse(&c, expr, &off, msg, sizeof(msg)), DRB_EINVAL);
	if (!strstr(msg, want_msg))
		fail_msg("'%s': got '%s'", expr, msg);
	assert_int_equal(off, want_off);
}

/* Lists, ranges, steps, names in any case, 7 = Sunday; the next run is strictly later. */
static void test_syntax(void **state)
{
	(void)state;
	assert_int_equal(next("*/15 * * * *", 0), 900);
	assert_int_equal(next("*/15 * * * *", 900), 1800);     /* strictly after */
	assert_int_equal(next("0 3 * * SAT", T0), 1700276400); /* Sat 18 Nov 03:00 */
	assert_int_equal(next("0 3 * * sat", T0), 1700276400);
	assert_int_equal(next("0 0 * * 7", T0), next("0 0 * * 0", T0));
	assert_int_equal(next("0 0 * * 5-7", T0), 1700179200);	       /* Fri 17 Nov */
	assert_int_equal(next("15 10 * JAN-MAR/2 *", T0), 1704104100); /* 1 Jan 2024 10:15 */
	assert_int_equal(next("0 9-17/4 * * *", T0), 1700038800);      /* 15 Nov 09:00 */
	assert_int_equal(next("0 0 29 2 *", T0), 1709164800);	       /* 29 Feb 2024 */
	assert_int_equal(next("5,10 22 * * *", T0), 1700085900); /* 15 Nov 22:05 (22:13 passed) */
}

/* Vixie's day rule: when DOM and DOW are both restricted (neither starts with '*') a day
 * matches either; a field starting with '*' (also "*\/2") makes it "and". */
static void test_day_rule(void **state)
{
	(void)state;
	/* Friday 17 Nov comes before the 13th of December */
	assert_int_equal(next("0 0 13 * FRI", T0), 1700179200);
	/* "*\/2" is unrestricted: odd days that are Mondays (20 Nov is even: 27 Nov) */
	assert_int_equal(next("0 0 */2 * MON", T0), 1701043200);
	/* "1-31" is restricted: Monday or any day, so every day */
	assert_int_equal(next("0 0 1-31 * MON", T0), 1700006400);
}

static void test_refusals(void **state)
{
	drb_cron c;
	char msg[256];
	size_t off;

	(void)state;
	refused("0 25 * * *", 2, "hour value 25 is out of range 0-23");
	refused("0 3 * * FUNDAY", 8, "unknown day of week name (SUN-SAT)");
	refused("0 3 * FOO *", 6, "unknown month name (JAN-DEC)");
	refused("0 3 * *", 7, "5 fields");
	refused("0 3 * * * *", 10, "5 fields");
	refused("5/15 * * * *", 1, "a minute step needs a range or '*'");
	refused("*/0 * * * *", 2, "minute step 0 is out of range");
	refused("30-10 * * * *", 0, "range runs backwards");
	refused("0 0 30 2 *", 4, "never run");
	refused("0 0 31 4,6,9,11 *", 4, "never run");
	refused("0 0 1 1 ?", 8, "expected a day of week number or name");
	refused("1,,2 * * * *", 2, "expected a minute number");
	refused("", 0, "the minute field is missing");
	/* 31 only in some months is fine; 31 April or a Monday runs on Mondays */
	assert_int_equal(drb_cron_parse(&c, "0 0 31 * *", &off, msg, sizeof(msg)), 0);
	assert_int_equal(drb_cron_parse(&c, "0 0 31 4 MON", &off, msg, sizeof(msg)), 0);
}

/* 29 February that is a Sunday: years away, and found. */
static void test_far_away(void **state)
{
	(void)state;
	/* DOW "*\/7" is Sunday and starts with '*': "29 February and Sunday" */
	assert_int_equal(next("0 0 29 2 */7", T0), 1961625600); /* Sun 29 Feb 2032 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_day_rule),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_far_away),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
