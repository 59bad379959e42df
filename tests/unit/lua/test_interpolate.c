/* Tests for src/lua/interpolate.c: whole-value ${expr} keeps the type, everything else is
 * text; $${ is a literal; braces and quotes inside expressions; errors name the expression. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lua/lua_test.h"

static int setup_params(void **state)
{
	lt_fix *f = NULL;
	drb_err e = {0};
	json_t *p = NULL;
	int rc;

	if (lt_setup(state) != 0)
		return -1;
	f = *state;
	p = lt_json("{\"replica\":\"prod-db-eu\",\"desired\":2,\"max_lag\":60.0,"
		    "\"ratio\":0.25,\"services\":[\"api\",\"auth\"],\"tags\":{\"team\":\"dr\"},"
		    "\"drill\":true}");
	rc = drb_lua_set_global(f->L, "params", p, &e);
	json_decref(p);
	return rc == 0 ? 0 : -1;
}

/* Interpolates the template text and returns the result's compact text. */
static const char *interp(lt_fix *f, const char *tmpl_text)
{
	drb_err e = {0};
	json_t *t = lt_json(tmpl_text), *out = NULL;
	const char *s;

	if (drb_lua_interpolate(f->L, t, "rb.yaml:20:7", &out, &e) != 0)
		fprintf(stderr, "%s: %s\n", tmpl_text, e.msg);
	assert_non_null(out);
	s = lt_dump(out);
	json_decref(t);
	json_decref(out);
	return s;
}

/* Interpolation that must fail with code; returns the message. */
static const char *interp_fails(lt_fix *f, const char *tmpl_text, int code)
{
	static drb_err e;
	json_t *t = lt_json(tmpl_text), *out = NULL;
	int rc = drb_lua_interpolate(f->L, t, "rb.yaml:20:7", &out, &e);

	if (rc != code)
		fprintf(stderr, "%s: rc %d (%s)\n", tmpl_text, rc, e.msg);
	assert_int_equal(rc, code);
	assert_null(out);
	json_decref(t);
	return e.msg;
}

/* A string that is exactly one ${expr} keeps the value's type. */
static void test_whole_value_types(void **state)
{
	lt_fix *f = *state;

	assert_string_equal(interp(f, "\"${params.desired}\""), "2");
	assert_string_equal(interp(f, "\"${params.max_lag}\""), "60.0");
	assert_string_equal(interp(f, "\"${params.services}\""), "[\"api\",\"auth\"]");
	assert_string_equal(interp(f, "\"${params.tags}\""), "{\"team\":\"dr\"}");
	assert_string_equal(interp(f, "\"${params.drill}\""), "true");
	assert_string_equal(interp(f, "\"${params.missing}\""), "null");
	assert_string_equal(interp(f, "\"${params.replica}\""), "\"prod-db-eu\"");
	/* table constructors: nested braces, and braces inside string literals */
	assert_string_equal(interp(f, "\"${ {a=1} }\""), "{\"a\":1}");
	assert_string_equal(interp(f, "\"${ {a={b='}'}, c=\\\"{\\\"} }\""),
			    "{\"a\":{\"b\":\"}\"},\"c\":\"{\"}");
	assert_string_equal(interp(f, "\"${ #params.services + 1 }\""), "3");
}

/* Anything else is text: integers without ".0", floats with %.14g, booleans. */
static void test_concatenation(void **state)
{
	lt_fix *f = *state;

	assert_string_equal(interp(f, "\"Promote ${params.replica} in ${'eu' .. '-west-1'}?\""),
			    "\"Promote prod-db-eu in eu-west-1?\"");
	assert_string_equal(interp(f, "\"n=${params.desired} lag=${params.max_lag}s "
				      "r=${params.ratio} x=${0.1 + 0.2} d=${params.drill}\""),
			    "\"n=2 lag=60s r=0.25 x=0.3 d=true\"");
	assert_string_equal(interp(f, "\"${params.desired}${params.desired}\""), "\"22\"");
	assert_string_equal(interp(f, "\" ${params.desired}\""), "\" 2\"");
	assert_string_equal(interp(f, "\"${ '}' .. \\\"{\\\" }!\""), "\"}{!\"");
}

/* "$${" is a literal "${"; a lone "$" or "$$" stays as it is. */
static void test_escape(void **state)
{
	lt_fix *f = *state;

	assert_string_equal(interp(f, "\"$${x}\""), "\"${x}\"");
	assert_string_equal(interp(f, "\"cost $${a} and ${1}\""), "\"cost ${a} and 1\"");
	assert_string_equal(interp(f, "\"a $ b $$ c $\""), "\"a $ b $$ c $\"");
	assert_string_equal(interp(f, "\"no expressions\""), "\"no expressions\"");
}

/* Objects and arrays are walked; other scalars are copied. */
static void test_walk(void **state)
{
	lt_fix *f = *state;

	assert_string_equal(
	    interp(f, "{\"id\":\"${params.replica}\",\"n\":5,\"t\":true,\"z\":null,"
		      "\"l\":[\"${1}\",{\"b\":\"x${2}\"}],\"svc\":\"${params.services[2]}\"}"),
	    "{\"id\":\"prod-db-eu\",\"l\":[1,{\"b\":\"x2\"}],\"n\":5,"
	    "\"svc\":\"auth\",\"t\":true,\"z\":null}");
}

/* Errors name the expression and the place. */
static void test_errors(void **state)
{
	lt_fix *f = *state;
	const char *m;

	m = interp_fails(f, "{\"a\":\"x-${params.nope}\"}", DRB_ESCRIPT);
	assert_non_null(strstr(m, "rb.yaml:20:7"));
	assert_non_null(strstr(m, "expression 'params.nope' is nil in a string"));
	m = interp_fails(f, "\"x-${params.tags}\"", DRB_ESCRIPT);
	assert_non_null(strstr(m, "expression 'params.tags' is a table in a string"));
	m = interp_fails(f, "\"${ 1 + }\"", DRB_ESCRIPT);
	assert_non_null(strstr(m, "expression ' 1 + '"));
	assert_non_null(strstr(m, "rb.yaml:20:7"));
	m = interp_fails(f, "[\"ok\", \"${nil .. 1} tail\"]", DRB_ESCRIPT);
	assert_non_null(strstr(m, "attempt to concatenate"));
	m = interp_fails(f, "\"${params.replica\"", DRB_EINVAL);
	assert_non_null(strstr(m, "unterminated"));
	m = interp_fails(f, "\"${ '}' \"", DRB_EINVAL);
	assert_non_null(strstr(m, "unterminated"));
	m = interp_fails(f, "\"a ${} b\"", DRB_EINVAL);
	assert_non_null(strstr(m, "empty expression"));
	m = interp_fails(f, "\"${print}\"", DRB_EINVAL);
	assert_non_null(strstr(m, "expression 'print': a function value"));
}

static int loop_attempt(void *arg)
{
	lt_fix *f = arg;
	drb_err e = {0};
	json_t *t = lt_json("[\"${(function() while true do end end)()}\"]"), *out = NULL;
	int rc = drb_lua_interpolate(f->L, t, "rb.yaml:20:7", &out, &e);

	json_decref(t);
	json_decref(out);
	return rc == DRB_ELIMIT && out == NULL && strstr(e.msg, "instruction limit exceeded");
}

/* The template is one entry with one budget; an endless loop ends within a second. */
static void test_limit(void **state)
{
	lt_fix *f = *state;

	assert_true(lt_stops_within_1s(loop_attempt, f));
	assert_string_equal(interp(f, "\"${1}\""), "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_whole_value_types, setup_params, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_concatenation, setup_params, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_escape, setup_params, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_walk, setup_params, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup_params, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_limit, setup_params, lt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
