/* Tests for the schema half of src/core/args.c: the one argument checker validate and run
 * share, type names, suggestions, and schemas declared at run time (custom Lua actions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/action.h>
#include <drbook/util.h>

static const char *const colours[] = {"red", "green", "blue", NULL};
static const drb_action_schema schema = {
    .doc = "test",
    .args = (const drb_arg_spec[]){{"name", DRB_T_STRING, 1, NULL, NULL, "a name"},
				   {"count", DRB_T_INT, 0, "1", NULL, NULL},
				   {"ratio", DRB_T_NUMBER, 0, NULL, NULL, NULL},
				   {"force", DRB_T_BOOL, 0, NULL, NULL, NULL},
				   {"wait", DRB_T_DURATION, 0, NULL, NULL, NULL},
				   {"values", DRB_T_STRING | DRB_T_LIST, 0, NULL, NULL, NULL},
				   {"tags", DRB_T_MAP, 0, NULL, NULL, NULL},
				   {"colour", DRB_T_STRING, 0, NULL, colours, NULL},
				   {NULL, 0, 0, NULL, NULL, NULL}},
};

static int check(const char *args_json, drb_err *e)
{
	json_t *a = json_loads(args_json, 0, NULL);
	int rc;

	assert_non_null(a);
	drb_err_clear(e);
	rc = drb_args_check(&schema, a, e);
	json_decref(a);
	return rc;
}

/* Every accepted spelling of every type passes; null counts as absent. */
static void test_accepts(void **state)
{
	drb_err e;

	assert_int_equal(check("{\"name\": \"x\"}", &e), 0);
	assert_int_equal(check("{\"name\": \"x\", \"count\": 2, \"ratio\": 0.5, \"force\": "
			       "\"true\", \"wait\": \"1h30m\", \"values\": [\"a\"], \"tags\": {},"
			       " \"colour\": \"blue\"}",
			       &e),
			 0);
	assert_int_equal(check("{\"name\": \"x\", \"count\": \"7\", \"force\": false, \"wait\": "
			       "90, \"values\": \"a\", \"colour\": null}",
			       &e),
			 0);
	assert_int_equal(check("{\"name\": \"x\", \"count\": 3.0}", &e), 0);
}

/* Each refusal names the argument and what it got. */
static void test_refuses(void **state)
{
	static const struct {
		const char *args, *msg;
	} bad[] = {
	    {"{}", "argument 'name' is required"},
	    {"{\"name\": null}", "argument 'name' is required"},
	    {"{\"name\": \"x\", \"cuont\": 1}", "unknown argument 'cuont' (did you mean 'count'?)"},
	    {"{\"name\": \"x\", \"zzzzzz\": 1}", "unknown argument 'zzzzzz'"},
	    {"{\"name\": \"x\", \"count\": \"two\"}",
	     "argument 'count' must be an integer (got \"two\")"},
	    {"{\"name\": \"x\", \"count\": 2.5}", "argument 'count' must be an integer (got 2.5)"},
	    {"{\"name\": 3}", "argument 'name' must be a string (got 3)"},
	    {"{\"name\": \"x\", \"force\": \"yes\"}",
	     "argument 'force' must be true or false (got \"yes\")"},
	    {"{\"name\": \"x\", \"wait\": \"3x\"}",
	     "argument 'wait' must be a duration such as 90s, 15m or 1h (got \"3x\")"},
	    {"{\"name\": \"x\", \"wait\": -1}",
	     "argument 'wait' must be a duration such as 90s, 15m or 1h (got -1)"},
	    {"{\"name\": \"x\", \"values\": {}}",
	     "argument 'values' must be a string or a list (got a mapping)"},
	    {"{\"name\": \"x\", \"tags\": []}", "argument 'tags' must be a mapping (got a list)"},
	    {"{\"name\": \"x\", \"ratio\": \"1\"}",
	     "argument 'ratio' must be a number (got \"1\")"},
	    {"{\"name\": \"x\", \"colour\": \"Red\"}",
	     "argument 'colour' must be red, green or blue (got \"Red\")"},
	};
	drb_err e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(check(bad[i].args, &e), DRB_EINVAL);
		assert_string_equal(e.msg, bad[i].msg);
	}
	/* not a mapping at all */
	{
		json_t *a = json_pack("[i]", 1);

		assert_int_equal(drb_args_check(&schema, a, &e), DRB_EINVAL);
		json_decref(a);
	}
}

/* An open schema (an undeclared custom action) and no schema check nothing. */
static void test_open(void **state)
{
	drb_action_schema open = {.open = 1};
	json_t *a = json_pack("{s:i}", "anything", 1);
	drb_err e = {0};

	assert_int_equal(drb_args_check(&open, a, &e), 0);
	assert_int_equal(drb_args_check(NULL, a, &e), 0);
	json_decref(a);
}

static void test_type_text(void **state)
{
	char b[128];

	drb_type_text(DRB_T_STRING | DRB_T_LIST, 1, b, sizeof(b));
	assert_string_equal(b, "a string or a list");
	drb_type_text(DRB_T_STRING | DRB_T_LIST, 0, b, sizeof(b));
	assert_string_equal(b, "string|list");
	drb_type_text(DRB_T_ANY, 0, b, sizeof(b));
	assert_string_equal(b, "any");
	drb_type_text(DRB_T_DURATION, 0, b, 4); /* truncated, still terminated */
	assert_true(strlen(b) < 4);
}

/* Declarations of custom actions: sorted arguments, checked values, clear refusals. */
static void test_from_json(void **state)
{
	static const struct {
		const char *decl, *msg;
	} bad[] = {
	    {"{\"mode\": \"ro\", \"args\": {\"x\": {\"type\": \"integer\"}}}",
	     "argument 'x': type must be string, int, number, bool, duration, list, map or any "
	     "(or several joined by |)"},
	    {"{\"mode\": \"ro\", \"args\": {\"x\": {\"type\": \"int\", \"requird\": true}}}",
	     "argument 'x': unknown key 'requird'"},
	    {"{\"mode\": \"ro\", \"args\": {\"x\": {\"type\": \"int\", \"default\": \"two\"}}}",
	     "default: argument 'x' must be an integer (got \"two\")"},
	    {"{\"mode\": \"ro\", \"args\": {\"x\": {\"enum\": [1]}}}",
	     "argument 'x': enum must be a list of strings"},
	    {"{\"mode\": \"ro\", \"args\": {\"x\": {}}, \"resource\": \"y\"}",
	     "resource 'y' is not a declared argument"},
	    {"{\"mode\": \"ro\", \"argz\": {}}", "declaration: unknown key 'argz'"},
	};
	drb_action_schema *s = NULL;
	json_t *d;
	drb_err e = {0};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = json_loads(bad[i].decl, 0, NULL);
		assert_non_null(d);
		assert_int_equal(drb_action_schema_from_json(d, &s, &e), DRB_EINVAL);
		assert_null(s);
		assert_string_equal(e.msg, bad[i].msg);
		json_decref(d);
	}
	d = json_loads("{\"mode\": \"mut\", \"doc\": \"d\", \"resource\": \"svc\", \"args\": {"
		       "\"svc\": {\"type\": \"string\", \"required\": true},"
		       "\"n\": {\"type\": \"int|string\", \"default\": 2},"
		       "\"tier\": {\"enum\": [\"a\", \"b\"]}},"
		       "\"result\": {\"ok\": {\"type\": \"bool\", \"doc\": \"fine\"}}}",
		       0, NULL);
	assert_int_equal(drb_action_schema_from_json(d, &s, &e), 0);
	assert_string_equal(s->args[0].name, "n");
	assert_string_equal(s->args[0].def, "2");
	assert_int_equal(s->args[0].type, DRB_T_INT | DRB_T_STRING);
	assert_string_equal(s->args[1].name, "svc");
	assert_int_equal(s->args[1].required, 1);
	assert_string_equal(s->args[2].choices[1], "b");
	assert_int_equal(s->args[2].type, DRB_T_ANY);
	assert_null(s->args[3].name);
	assert_string_equal(s->result[0].name, "ok");
	assert_int_equal(s->open, 0);
	{
		json_t *a = json_pack("{s:s, s:s}", "svc", "api", "tier", "c");

		assert_int_equal(drb_args_check(s, a, &e), DRB_EINVAL);
		assert_string_equal(e.msg, "argument 'tier' must be a or b (got \"c\")");
		json_decref(a);
	}
	drb_action_schema_free(s);
	json_decref(d);
	/* no args: open */
	d = json_pack("{s:s}", "mode", "ro");
	assert_int_equal(drb_action_schema_from_json(d, &s, &e), 0);
	assert_int_equal(s->open, 1);
	drb_action_schema_free(s);
	json_decref(d);
	drb_action_schema_free(NULL);
}

static void test_edit_distance(void **state)
{
	assert_int_equal(drb_edit_distance("desird_count", "desired_count", 2), 1);
	assert_int_equal(drb_edit_distance("abc", "xyz", 2), 3);
	assert_string_equal(drb_schema_suggest(&schema, "colour_"), "colour");
	assert_null(drb_schema_suggest(&schema, "nothing_like_it"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts),   cmocka_unit_test(test_refuses),
	    cmocka_unit_test(test_open),      cmocka_unit_test(test_type_text),
	    cmocka_unit_test(test_from_json), cmocka_unit_test(test_edit_distance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
