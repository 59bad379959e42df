/* Tests for src/engine/registry.c: every action of the catalog has a complete schema, and
 * the schemas hold together (a resource names an argument, names are unique, enums apply to
 * strings, defaults fit their types). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/engine.h>

static void test_every_action_has_a_schema(void **state)
{
	const drb_action *a;
	size_t n = 0;

	for (size_t i = 0; (a = drb_engine_action_at(i)); i++, n++) {
		const drb_action_schema *s = a->schema;

		if (!s || !s->doc || s->open)
			fail_msg("%s: no complete schema", a->name);
		assert_ptr_equal(drb_engine_action(a->name), a);
		assert_ptr_equal(drb_engine_action_schema(NULL, a->name), s);
		if (s->resource && !drb_schema_arg(s, s->resource))
			fail_msg("%s: resource '%s' is not an argument", a->name, s->resource);
		for (const drb_arg_spec *x = s->args; x && x->name; x++) {
			if (!x->type || !x->doc)
				fail_msg("%s.%s: no type or doc", a->name, x->name);
			if (drb_schema_arg(s, x->name) != x)
				fail_msg("%s.%s: declared twice", a->name, x->name);
			if (x->choices && !(x->type & DRB_T_STRING))
				fail_msg("%s.%s: choices on a non-string", a->name, x->name);
			if (x->def) {
				/* a default is text: a value of the argument's type */
				json_t *v = json_loads(x->def, JSON_DECODE_ANY, NULL);
				drb_err e = {0};

				if (!v)
					v = json_string(x->def);
				if (drb_arg_check(x, v, &e))
					fail_msg("%s.%s: default: %s", a->name, x->name, e.msg);
				json_decref(v);
			}
		}
		for (const drb_field_spec *f = s->result; f && f->name; f++)
			if (!f->type || !f->doc)
				fail_msg("%s result %s: no type or doc", a->name, f->name);
	}
	assert_true(n >= 33); /* DESIGN.md catalog v1 */
	assert_null(drb_engine_action("no.such.action"));
	assert_null(drb_engine_action_schema(NULL, "no.such.action"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_action_has_a_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
