/* Tests for src/lua/convert.c: JSON -> Lua -> JSON both ways, what is refused and why, and
 * drbook.json_encode / drbook.json_decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lua_test.h"

/* Sets v as the global x, reads it back with an expression and returns the text. */
static const char *round_trip(lt_fix *f, const char *text)
{
	drb_err e = {0};
	json_t *in = lt_json(text), *out = NULL;
	const char *s;

	assert_int_equal(drb_lua_set_global(f->L, "x", in, &e), 0);
	if (drb_lua_eval(f->L, "x", "t", &out, &e) != 0)
		fprintf(stderr, "%s: %s\n", text, e.msg);
	assert_non_null(out);
	s = lt_dump(out);
	json_decref(in);
	json_decref(out);
	return s;
}

/* Values that survive the trip unchanged: objects, arrays, integers (also above 2^53),
 * reals (an integral real stays a real), booleans, UTF-8 strings, nesting. */
static void test_round_trip(void **state)
{
	lt_fix *f = *state;
	static const char *const same[] = {
	    "{\"a\":1,\"b\":[1,2,3],\"c\":{\"d\":\"e\"}}",
	    "[1,2.5,\"x\",true,false]",
	    "9007199254740993",
	    "-9223372036854775808",
	    "60.0",
	    "0.1",
	    "\"h\\u00e9llo \\u2603\"",
	    "[[[]]]", /* an empty array comes back as {} only at the innermost level */
	    "{\"list\":[{\"id\":1},{\"id\":2}]}",
	    "[1,null,3]", /* a hole in the middle */
	};
	static const char *const want[] = {
	    NULL,     NULL, NULL, NULL, "60.0", NULL, "\"h\xc3\xa9llo \xe2\x98\x83\"",
	    "[[{}]]", NULL, NULL,
	};

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		assert_string_equal(round_trip(f, same[i]), want[i] ? want[i] : same[i]);
	/* documented losses: null object members vanish, trailing nulls in arrays too, an empty
	 * array becomes an empty object */
	assert_string_equal(round_trip(f, "{\"a\":null,\"b\":1}"), "{\"b\":1}");
	assert_string_equal(round_trip(f, "[1,null]"), "[1]");
	assert_string_equal(round_trip(f, "[]"), "{}");
	assert_string_equal(round_trip(f, "null"), "null");
}

/* In Lua, the values have the expected types. */
static void test_lua_types(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *v = lt_json("{\"i\":2,\"r\":60.0,\"s\":\"x\",\"t\":true,\"l\":[10,20],"
			    "\"n\":null}");
	int b = 0;

	assert_int_equal(drb_lua_set_global(f->L, "p", v, &e), 0);
	assert_int_equal(
	    drb_lua_eval_bool(f->L,
			      "math.type(p.i) == 'integer' and "
			      "math.type(p.r) == 'float' and p.s == 'x' and p.t == true "
			      "and p.l[1] == 10 and #p.l == 2 and p.n == nil",
			      "t", &b, &e),
	    0);
	assert_int_equal(b, 1);
	json_decref(v);
}

/* Lua values without a JSON form are refused with DRB_EINVAL and a reason. */
static void test_to_json_refusals(void **state)
{
	lt_fix *f = *state;
	static const struct {
		const char *expr, *why;
	} bad[] = {
	    {"print", "a function value"},
	    {"0/0", "NaN"},
	    {"math.huge", "infinite"},
	    {"{1, 2, a = 3}", "both integer and string keys"},
	    {"{[1] = 1, [100] = 2}", "sparse array"},
	    {"{[1.5] = 1}", "key of type number"},
	    {"{[true] = 1}", "key of type boolean"},
	    {"'\\xff\\xfe'", "not valid UTF-8"},
	    {"{a = {b = print}}", "key 'a': key 'b': a function value"},
	    {"(function() local t = {} t.self = t return t end)()", "cycle"},
	};
	drb_err e = {0};
	json_t *out = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(drb_lua_eval(f->L, bad[i].expr, "conv", &out, &e), DRB_EINVAL);
		if (!strstr(e.msg, bad[i].why))
			fprintf(stderr, "%s: %s\n", bad[i].expr, e.msg);
		assert_non_null(strstr(e.msg, bad[i].why));
		assert_null(out);
	}
}

/* Nesting deeper than 64 is refused in both directions with DRB_ELIMIT; the stack is left
 * as it was. */
static void test_depth_limits(void **state)
{
	lt_fix *f = *state;
	lua_State *S = drb_lua_state(f->L);
	drb_err e = {0};
	json_t *deep = json_array(), *cur = deep, *out = NULL;
	int top = lua_gettop(S);

	for (int i = 0; i < 70; i++) {
		json_t *next = json_array();

		json_array_append_new(cur, next);
		cur = next;
	}
	assert_int_equal(drb_lua_set_global(f->L, "deep", deep, &e), DRB_ELIMIT);
	assert_non_null(strstr(e.msg, "nesting deeper than 64"));
	assert_int_equal(lua_gettop(S), top);
	assert_int_equal(drb_lua_eval(f->L,
				      "(function() local t = {} for i = 1, 70 do "
				      "t = {t} end return t end)()",
				      "conv", &out, &e),
			 DRB_ELIMIT);
	assert_non_null(strstr(e.msg, "deeper than 64"));
	/* 64 levels are still fine */
	assert_int_equal(drb_lua_eval(f->L,
				      "(function() local t = {} for i = 1, 63 do "
				      "t = {t} end return t end)()",
				      "conv", &out, &e),
			 0);
	json_decref(out);
	assert_int_equal(lua_gettop(S), top);
	json_decref(deep);
}

/* drb_lua_to_json works on any stack slot without touching the stack. */
static void test_to_json_direct(void **state)
{
	lt_fix *f = *state;
	lua_State *S = drb_lua_state(f->L);
	drb_err e = {0};
	json_t *out = NULL;
	int top = lua_gettop(S);

	lua_newtable(S);
	lua_pushinteger(S, 7);
	lua_setfield(S, -2, "n");
	lua_pushliteral(S, "after");
	assert_int_equal(drb_lua_to_json(S, -2, &out, &e), 0);
	assert_string_equal(lt_dump(out), "{\"n\":7}");
	json_decref(out);
	assert_int_equal(lua_gettop(S), top + 2);
	lua_settop(S, top);
}

/* The JSON copy of a value counts each reference again: one 1 MiB string held 20 times (a
 * table shared by two keys, each holding it 10 times) is refused, the same string once is
 * not; keys count too. */
static void test_size_cap(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *out = NULL;

	assert_int_equal(drb_lua_run(f->L,
				     "local s = string.rep('x', 1024 * 1024)\n"
				     "local t = {}\n"
				     "for i = 1, 10 do t[i] = s end\n"
				     "return {a = t, b = t}",
				     "t", &out, &e),
			 DRB_ELIMIT);
	assert_null(out);
	assert_non_null(strstr(e.msg, "the value is too large to convert to JSON: over 16 MiB"));
	assert_int_equal(strncmp(e.msg, "t: return value: key '", 22), 0);
	assert_int_equal(drb_lua_run(f->L,
				     "local s = string.rep('x', 1024 * 1024)\n"
				     "return {a = s, b = {s, s, s}}",
				     "t", &out, &e),
			 0);
	assert_int_equal(json_string_length(json_object_get(out, "a")), 1024 * 1024);
	json_decref(out);
	assert_int_equal(
	    drb_lua_run(f->L,
			"local t = {}\n"
			"for i = 1, 17 do t[string.rep('k', 1024 * 1024 - 8) .. i] = 1 "
			"end\n"
			"return t",
			"t", &out, &e),
	    DRB_ELIMIT);
	assert_null(out);
}

/* json_encode / json_decode from Lua: keys sorted, integers kept, errors catchable. */
static void test_json_functions(void **state)
{
	lt_fix *f = *state;
	drb_err e = {0};
	json_t *out = NULL;

	assert_int_equal(
	    drb_lua_run(f->L,
			"local s = drbook.json_encode({b = 1, a = {1, 2, 3}, c = 1.5})\n"
			"local t = drbook.json_decode('{\"x\": [1, 2, {\"y\": null}], "
			"\"big\": 9007199254740993}')\n"
			"local ok1, e1 = pcall(drbook.json_decode, '{\"x\": ')\n"
			"local ok2, e2 = pcall(drbook.json_encode, {f = print})\n"
			"local ok3 = pcall(drbook.json_decode, string.rep('[', 100) .. "
			"string.rep(']', 100))\n"
			"return {s, t.x[3].y == nil, math.type(t.big), t.big, ok1, "
			"e1:match('json_decode') ~= nil, ok2, e2:match('function') ~= nil,"
			" ok3, drbook.json_encode(nil), drbook.json_decode('3')}",
			"t", &out, &e),
	    0);
	assert_string_equal(lt_dump(out), "[\"{\\\"a\\\":[1,2,3],\\\"b\\\":1,\\\"c\\\":1.5}\",true,"
					  "\"integer\",9007199254740993,false,true,false,true,"
					  "false,\"null\",3]");
	json_decref(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_lua_types, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_to_json_refusals, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_depth_limits, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_to_json_direct, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_json_functions, lt_setup, lt_teardown),
	    cmocka_unit_test_setup_teardown(test_size_cap, lt_setup, lt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
