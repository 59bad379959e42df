/* Tests for src/providers/pg/values.c: PostgreSQL text values typed by column OID, query
 * parameters as text, and SQLSTATEs mapped to the codes the retry logic branches on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/pg.h>

#include "providers/pg/pg_int.h"

enum {
	O_BOOL = 16,
	O_INT8 = 20,
	O_INT2 = 21,
	O_INT4 = 23,
	O_TEXT = 25,
	O_JSON = 114,
	O_FLOAT4 = 700,
	O_FLOAT8 = 701,
	O_DATE = 1082,
	O_TS = 1114,
	O_TSTZ = 1184,
	O_NUMERIC = 1700,
	O_JSONB = 3802,
	O_UUID = 2950
};

/* Compares drb_pg_value(oid, text) with the JSON text `want` (exact type and value). */
static void check_value(unsigned oid, const char *text, const char *want)
{
	json_error_t je;
	json_t *w = json_loads(want, JSON_DECODE_ANY, &je);
	json_t *v = drb_pg_value(oid, text, text ? strlen(text) : 0);

	assert_non_null(w);
	assert_non_null(v);
	if (!json_equal(v, w) || json_typeof(v) != json_typeof(w)) {
		char *s = json_dumps(v, JSON_ENCODE_ANY);

		print_error("oid %u text %s: got %s, want %s\n", oid, text ? text : "NULL", s,
			    want);
		free(s);
		fail();
	}
	json_decref(v);
	json_decref(w);
}

/* Integers stay exact across the whole int8 range. */
static void test_integers(void **state)
{
	check_value(O_INT2, "-32768", "-32768");
	check_value(O_INT4, "42", "42");
	check_value(O_INT8, "9223372036854775807", "9223372036854775807");
	check_value(O_INT8, "-9223372036854775808", "-9223372036854775808");
}

/* Floats are numbers, except the values JSON cannot hold, which stay text. */
static void test_floats(void **state)
{
	check_value(O_FLOAT8, "1.5", "1.5");
	check_value(O_FLOAT4, "-0.25", "-0.25");
	check_value(O_FLOAT8, "1e+300", "1e300");
	check_value(O_FLOAT8, "NaN", "\"NaN\"");
	check_value(O_FLOAT8, "Infinity", "\"Infinity\"");
	check_value(O_FLOAT8, "-Infinity", "\"-Infinity\"");
}

/* numeric: whole numbers in 64 bits are integers, up to 15 significant digits numbers,
 * anything longer (or NaN) a string so that no digit is lost. */
static void test_numeric(void **state)
{
	check_value(O_NUMERIC, "15", "15");
	check_value(O_NUMERIC, "-7", "-7");
	check_value(O_NUMERIC, "12.50", "12.5");
	check_value(O_NUMERIC, "0.000123", "0.000123");
	check_value(O_NUMERIC, "123456789012.345", "123456789012.345");	      /* 15 digits */
	check_value(O_NUMERIC, "1234567890123.4500", "1234567890123.45");     /* 15 + zeros */
	check_value(O_NUMERIC, "1234567890123.456", "\"1234567890123.456\""); /* 16 digits */
	check_value(O_NUMERIC, "123456789012345678901234", "\"123456789012345678901234\"");
	check_value(O_NUMERIC, "NaN", "\"NaN\"");
	check_value(O_NUMERIC, "Infinity", "\"Infinity\"");
}

static void test_bool_json_null_text(void **state)
{
	check_value(O_BOOL, "t", "true");
	check_value(O_BOOL, "f", "false");
	check_value(O_JSONB, "{\"a\": [1, null, \"x\"]}", "{\"a\":[1,null,\"x\"]}");
	check_value(O_JSON, "42", "42");
	check_value(O_JSON, "{not json", "\"{not json\"");
	check_value(O_INT4, NULL, "null");
	check_value(O_TEXT, NULL, "null");
	check_value(O_TEXT, "hello", "\"hello\"");
	check_value(O_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		    "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
	check_value(O_DATE, "2026-11-25", "\"2026-11-25\"");
}

/* timestamptz in any offset comes out in UTC with milliseconds; timestamp without time zone
 * is read as UTC; what RFC 3339 cannot say (infinity, BC) stays as PostgreSQL wrote it. */
static void test_timestamps(void **state)
{
	check_value(O_TSTZ, "2026-11-25 16:39:06.123456+00", "\"2026-11-25T16:39:06.123Z\"");
	check_value(O_TSTZ, "2026-11-25 16:39:06+00", "\"2026-11-25T16:39:06.000Z\"");
	check_value(O_TSTZ, "2026-01-01 01:30:00+05:30", "\"2025-12-31T20:00:00.000Z\"");
	check_value(O_TSTZ, "2026-01-01 00:00:00.5-08", "\"2026-01-01T08:00:00.500Z\"");
	check_value(O_TSTZ, "infinity", "\"infinity\"");
	check_value(O_TSTZ, "0044-03-15 12:00:00+00 BC", "\"0044-03-15 12:00:00+00 BC\"");
	check_value(O_TS, "2026-05-06 07:08:09", "\"2026-05-06T07:08:09.000Z\"");
	check_value(O_TS, "2026-05-06 07:08:09.1", "\"2026-05-06T07:08:09.100Z\"");
	check_value(O_TS, "-infinity", "\"-infinity\"");
}

/* Malformed text for a typed column is passed on as text, never dropped or guessed. */
static void test_malformed_stays_text(void **state)
{
	check_value(O_INT4, "12abc", "\"12abc\"");
	check_value(O_INT8, "99999999999999999999", "\"99999999999999999999\"");
	check_value(O_BOOL, "yes", "\"yes\"");
	check_value(O_TSTZ, "2026-13-01 00:00:00+00", "\"2026-13-01 00:00:00+00\"");
}

/* Parameters: each JSON type has one text form PostgreSQL reads back; null is SQL NULL. */
static void test_param_text(void **state)
{
	static const struct {
		const char *json;
		const char *text;
	} cases[] = {
	    {"\"abc\"", "abc"},
	    {"5", "5"},
	    {"-9223372036854775808", "-9223372036854775808"},
	    {"0.5", "0.5"},
	    {"true", "true"},
	    {"false", "false"},
	    {"{\"a\":1}", "{\"a\":1}"},
	    {"[1,2]", "[1,2]"},
	};
	json_error_t je;
	int oom = 1;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, &je);
		char *t = drb_pgi_param_text(v, &oom);

		assert_int_equal(oom, 0);
		assert_non_null(t);
		assert_string_equal(t, cases[i].text);
		free(t);
		json_decref(v);
	}
	{
		json_t *n = json_null();

		assert_null(drb_pgi_param_text(n, &oom));
		assert_int_equal(oom, 0);
		json_decref(n);
	}
}

/* Only transient and timeout codes are retried: the mapping decides what a retry policy
 * does with a failed statement. */
static void test_sqlstate_codes(void **state)
{
	assert_int_equal(drb_pg_code_of_sqlstate("08006"), DRB_ETRANSIENT);
	assert_int_equal(drb_pg_code_of_sqlstate("40001"), DRB_ETRANSIENT);
	assert_int_equal(drb_pg_code_of_sqlstate("40P01"), DRB_ETRANSIENT);
	assert_int_equal(drb_pg_code_of_sqlstate("57P03"), DRB_ETRANSIENT);
	assert_int_equal(drb_pg_code_of_sqlstate("53300"), DRB_ETRANSIENT);
	assert_int_equal(drb_pg_code_of_sqlstate("57014"), DRB_ETIMEOUT);
	assert_int_equal(drb_pg_code_of_sqlstate("28P01"), DRB_EDENIED);
	assert_int_equal(drb_pg_code_of_sqlstate("42501"), DRB_EDENIED);
	assert_int_equal(drb_pg_code_of_sqlstate("25006"), DRB_EDENIED);
	assert_int_equal(drb_pg_code_of_sqlstate("3D000"), DRB_ENOTFOUND);
	assert_int_equal(drb_pg_code_of_sqlstate("42P01"), DRB_EINVAL);
	assert_int_equal(drb_pg_code_of_sqlstate("22012"), DRB_EINVAL);
	assert_int_equal(drb_pg_code_of_sqlstate("23505"), DRB_ERR);
	assert_int_equal(drb_pg_code_of_sqlstate(NULL), DRB_ERR);
	assert_int_equal(drb_pg_code_of_sqlstate("4"), DRB_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_integers),   cmocka_unit_test(test_floats),
	    cmocka_unit_test(test_numeric),    cmocka_unit_test(test_bool_json_null_text),
	    cmocka_unit_test(test_timestamps), cmocka_unit_test(test_malformed_stays_text),
	    cmocka_unit_test(test_param_text), cmocka_unit_test(test_sqlstate_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
