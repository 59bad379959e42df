/* Tests for pg.validate's comparison (drb_pg_expect_match in src/providers/pg/values.c):
 * each kind of expectation, the documented coercions between numbers, strings and booleans,
 * and the refusal of expectations that mean nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/pg.h>

static int match(const char *expect, const char *got)
{
	json_error_t je;
	json_t *e = json_loads(expect, JSON_DECODE_ANY, &je),
	       *g = json_loads(got, JSON_DECODE_ANY, &je);
	drb_err err = {0};
	int rc;

	assert_non_null(e);
	assert_non_null(g);
	rc = drb_pg_expect_match(e, g, &err);
	json_decref(e);
	json_decref(g);
	return rc;
}

/* Numbers compare by value: integer and real alike, numeric strings too (big numerics come
 * back as strings). Integers beyond 2^53 compare exactly. */
static void test_numbers(void **state)
{
	assert_int_equal(match("42", "42"), 1);
	assert_int_equal(match("42", "42.0"), 1);
	assert_int_equal(match("42.5", "42.5"), 1);
	assert_int_equal(match("42", "\"42.000\""), 1);
	assert_int_equal(match("42", "43"), 0);
	assert_int_equal(match("42", "\"forty-two\""), 0);
	assert_int_equal(match("1", "true"), 0);
	assert_int_equal(match("0", "null"), 0);
	assert_int_equal(match("9007199254740993", "9007199254740992"), 0);
	assert_int_equal(match("9007199254740993", "9007199254740993"), 1);
}

/* Ranges: either bound or both, inclusive; non-numbers never fall inside. */
static void test_ranges(void **state)
{
	assert_int_equal(match("{\"min\": 1}", "1"), 1);
	assert_int_equal(match("{\"min\": 1}", "0.99"), 0);
	assert_int_equal(match("{\"max\": 10}", "10"), 1);
	assert_int_equal(match("{\"max\": 10}", "11"), 0);
	assert_int_equal(match("{\"min\": 0, \"max\": 5}", "\"3\""), 1);
	assert_int_equal(match("{\"min\": 0, \"max\": 5}", "null"), 0);
	assert_int_equal(match("{\"min\": 0, \"max\": 5}", "\"x\""), 0);
	assert_int_equal(match("{\"min\": 0, \"max\": 5}", "true"), 0);
}

/* Booleans: the same boolean, or PostgreSQL's and JSON's spellings as strings. */
static void test_booleans(void **state)
{
	assert_int_equal(match("true", "true"), 1);
	assert_int_equal(match("true", "false"), 0);
	assert_int_equal(match("true", "\"t\""), 1);
	assert_int_equal(match("false", "\"FALSE\""), 1);
	assert_int_equal(match("false", "\"no\""), 0);
	assert_int_equal(match("true", "1"), 0);
}

/* Strings: exact for strings; a number or boolean matches its text form. */
static void test_strings(void **state)
{
	assert_int_equal(match("\"ok\"", "\"ok\""), 1);
	assert_int_equal(match("\"ok\"", "\"OK\""), 0);
	assert_int_equal(match("\"42\"", "42"), 1);
	assert_int_equal(match("\"42.5\"", "42.5"), 1);
	assert_int_equal(match("\"abc\"", "42"), 0);
	assert_int_equal(match("\"true\"", "true"), 1);
	assert_int_equal(match("\"t\"", "false"), 0);
	assert_int_equal(match("\"\"", "null"), 0);
}

static void test_null(void **state)
{
	assert_int_equal(match("null", "null"), 1);
	assert_int_equal(match("null", "0"), 0);
	assert_int_equal(match("null", "\"\""), 0);
}

/* Expectations that mean nothing are errors, not silent mismatches. */
static void test_invalid_expectations(void **state)
{
	assert_int_equal(match("[1, 2]", "1"), DRB_EINVAL);
	assert_int_equal(match("{}", "1"), DRB_EINVAL);
	assert_int_equal(match("{\"min\": 1, \"maxx\": 2}", "1"), DRB_EINVAL);
	assert_int_equal(match("{\"min\": \"1\"}", "1"), DRB_EINVAL);
	assert_int_equal(match("{\"min\": 5, \"max\": 1}", "3"), DRB_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers),  cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_booleans), cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_null),     cmocka_unit_test(test_invalid_expectations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
