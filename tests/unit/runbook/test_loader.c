/* Tests for src/runbook: the model built from valid runbooks (fields, positions, types,
 * defaults), YAML scalar typing, anchors, the ${ } scanner, expression checks, diagnostics
 * and binding -p parameters. The invalid corpus is in test_corpus.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/runbook.h>

#include "runbook/actions.h"
#include "runbook/runbook_int.h"

#define CORPUS DRB_SOURCE_DIR "/tests/corpus"

typedef struct fixture {
	drb_runbook *rb;
	drb_diags d;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	drb_diags_init(&f->d, "test.yaml");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	drb_runbook_free(f->rb);
	drb_diags_free(&f->d);
	free(f);
	return 0;
}

static void print_diags(const drb_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %d:%d: %s\n", d->v[i].pos.line, d->v[i].pos.col, d->v[i].msg);
}

/* Loads a file that must be valid: no diagnostic at all. */
static drb_runbook *load_ok(fixture *f, const char *path)
{
	int rc = drb_runbook_load(&f->rb, path, &test_opts, &f->d);

	if (rc || f->d.n)
		print_diags(&f->d);
	assert_int_equal(rc, 0);
	assert_int_equal(f->d.n, 0);
	assert_non_null(f->rb);
	return f->rb;
}

static drb_runbook *load_text_ok(fixture *f, const char *text)
{
	int rc =
	    drb_runbook_load_buffer(&f->rb, "test.yaml", text, strlen(text), &test_opts, &f->d);

	if (rc || f->d.n)
		print_diags(&f->d);
	assert_int_equal(rc, 0);
	assert_int_equal(f->d.n, 0);
	return f->rb;
}

static void assert_json(const json_t *got, const char *want_json)
{
	json_error_t e;
	json_t *want = json_loads(want_json, JSON_DECODE_ANY, &e);
	char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(want);
	if (!json_equal(got, want))
		fprintf(stderr, "got %s, want %s\n", g ? g : "NULL", want_json);
	assert_true(json_equal(got, want));
	free(g);
	json_decref(want);
}

/* The example of DESIGN.md loads, and every field lands where the engine will look. */
static void test_design_example(void **state)
{
	fixture *f = *state;
	const drb_runbook *rb = load_ok(f, CORPUS "/valid/region-failover.yaml");
	const drb_step *s;

	assert_int_equal(rb->version, 1);
	assert_string_equal(rb->name, "region-failover");
	assert_string_equal(rb->description, "Fail the platform over from us-east-1 to eu-west-1");
	assert_string_equal(rb->scenario, "region-outage");
	assert_string_equal(rb->path, CORPUS "/valid/region-failover.yaml");
	assert_string_equal(rb->dir, CORPUS "/valid");
	assert_int_equal(strlen(rb->sha256), 64);
	assert_true(rb->target_rto_s == 900 && rb->target_rpo_s == 3600);
	assert_int_equal(rb->on_failure, DRB_ONF_ROLLBACK);
	assert_true(rb->deadline_s == 0);
	assert_int_equal(rb->n_locks, 0);

	assert_int_equal(rb->n_params, 5);
	assert_string_equal(rb->params[0].name, "replica");
	assert_int_equal(rb->params[0].type, DRB_PT_STRING);
	assert_json(rb->params[0].def, "\"prod-db-eu\"");
	assert_int_equal(rb->params[2].type, DRB_PT_LIST);
	assert_json(rb->params[2].def, "[\"api\",\"auth\",\"training\",\"content\",\"payment\","
				       "\"ai-ml\"]");
	assert_int_equal(rb->params[3].type, DRB_PT_INT);
	assert_true(json_is_integer(rb->params[3].def));
	assert_int_equal(rb->params[4].type, DRB_PT_DURATION);
	assert_json(rb->params[4].def, "60");
	assert_int_equal(rb->params[4].required, 0);
	assert_int_equal(rb->params[4].pos.line, 13);
	assert_int_equal(rb->params[4].pos.col, 3);

	assert_int_equal(rb->n_conns, 1);
	assert_string_equal(rb->conns[0].name, "dr_db");
	assert_string_equal(rb->conns[0].kind, "postgres");
	assert_json(rb->conns[0].spec, "{\"kind\":\"postgres\",\"dsn_env\":\"DR_DB_DSN\"}");

	assert_int_equal(rb->n_preflight, 1);
	s = &rb->preflight[0];
	assert_string_equal(s->id, "replica-available");
	assert_int_equal(s->pos.line, 17);
	assert_int_equal(s->pos.col, 5);
	assert_string_equal(s->assert_.src, "result.status == \"available\"");
	assert_int_equal(s->assert_.pos.line, 20);
	assert_int_equal(s->assert_.pos.col, 13);
	assert_json(s->with, "{\"id\":\"${params.replica}\",\"region\":\"${params.dr_region}\"}");
	assert_int_equal(s->with_pos.line, 19);
	assert_int_equal(s->with_pos.col, 11);

	assert_int_equal(rb->n_steps, 6);
	s = drb_runbook_step(rb, "promote");
	assert_non_null(s);
	assert_ptr_equal(s, &rb->steps[2]);
	assert_string_equal(s->action, "aws.rds.promote_read_replica");
	assert_int_equal(s->has_retry, 1);
	assert_int_equal(s->retry.attempts, 5);
	assert_int_equal(s->retry.exponential, 1);
	assert_true(s->retry.initial_s == 2 && s->retry.max_s == 30);
	assert_true(s->timeout_s == 600);
	assert_int_equal(s->critical, 1);
	assert_int_equal(s->idempotent, 0);
	assert_int_equal(s->on_failure, DRB_ONF_INHERIT);

	s = drb_runbook_step(rb, "scale");
	assert_string_equal(s->for_each.src, "params.services");
	assert_string_equal(s->as, "svc");
	assert_int_equal(s->max_parallel, 6);
	assert_non_null(s->rollback);
	assert_string_equal(s->rollback->action, "aws.ecs.update_service");
	assert_json(s->rollback->with, "{\"cluster\":\"prod-eu\",\"service\":\"${svc}\","
				       "\"desired_count\":1,\"region\":\"${params.dr_region}\"}");

	s = drb_runbook_step(rb, "wait-promoted");
	assert_string_equal(s->until.src,
			    "result.status == \"available\" and result.replica_source == nil");
	assert_true(s->every_s == 10 && s->timeout_s == 1200);
	assert_int_equal(s->has_retry, 0);

	s = drb_runbook_step(rb, "verify");
	assert_string_equal(s->action, "lua");
	assert_non_null(strstr(s->script, "pg.query(\"dr_db\""));
	assert_int_equal(s->script_pos.line, 51);
	assert_int_equal(s->script_pos.col, 13);
	assert_string_equal(s->as, "item");
	assert_json(s->with, "{}");

	assert_null(drb_runbook_step(rb, "nope"));
	assert_non_null(drb_runbook_step(rb, "replica-available"));
}

/* Every field of the format, with anchors: values, defaults and alias copies. */
static void test_every_field(void **state)
{
	fixture *f = *state;
	const drb_runbook *rb = load_ok(f, CORPUS "/valid/every-field.yaml");
	const drb_step *s;

	assert_true(rb->target_rto_s == 120 && rb->target_rpo_s == 0);
	assert_true(rb->deadline_s == 3600);
	assert_int_equal(rb->n_locks, 1);
	assert_string_equal(rb->locks[0], "prod-eu-failover");
	assert_int_equal(rb->n_stop_when, 2);
	assert_string_equal(rb->stop_when[0].alarm, "api-5xx-rate");
	assert_string_equal(rb->stop_when[0].region, "eu-west-1");
	assert_string_equal(rb->stop_when[1].alarm, "payments p99 > 2s");
	assert_null(rb->stop_when[1].region);
	assert_int_equal(rb->n_lua_modules, 2);
	assert_string_equal(rb->lua_modules[1], "site.checks-v2");

	assert_int_equal(rb->n_params, 9);
	assert_json(rb->params[0].choices, "[\"prod-eu\",\"prod-us\"]");
	assert_string_equal(rb->params[0].description, "ECS cluster");
	assert_json(rb->params[2].def, "false");
	assert_json(rb->params[3].def, "90");
	assert_true(json_is_integer(rb->params[3].def));
	assert_true(json_is_real(rb->params[4].def) && json_real_value(rb->params[4].def) == 0.5);
	assert_json(rb->params[5].def, "[\"api\",\"auth\"]");
	assert_json(rb->params[6].def, "{\"team\":\"sre\"}");
	assert_string_equal(rb->params[7].name, "token");
	assert_int_equal(rb->params[7].required, 1);
	assert_int_equal(rb->params[7].secret, 1);
	assert_null(rb->params[7].def);
	assert_int_equal(rb->params[8].required, 0); /* required: false, no default */

	assert_int_equal(rb->n_conns, 3);
	assert_string_equal(rb->conns[2].kind, "aws");
	assert_json(json_object_get(rb->conns[0].spec, "statement_timeout"), "30");

	assert_int_equal(rb->n_preflight, 3);
	assert_int_equal(rb->preflight[1].read_only, 1);
	assert_int_equal(rb->preflight[1].read_only_set, 1);
	assert_string_equal(rb->preflight[1].script, "return 1");

	s = drb_runbook_step(rb, "gate");
	/* "$${" stays in the template: the engine turns it into a literal "${" */
	assert_json(s->with, "{\"message\":\"Cost is $${not interpolated}, go?\","
			     "\"timeout\":\"15m\"}");
	s = drb_runbook_step(rb, "scale");
	assert_int_equal(s->critical, 0);
	assert_int_equal(s->idempotent, 1);
	assert_int_equal(s->on_failure, DRB_ONF_ROLLBACK);
	assert_string_equal(s->when.src, "not params.force");
	assert_true(json_equal(s->with, s->rollback->with)); /* *scale_args copied the anchor */
	s = drb_runbook_step(rb, "post");
	assert_json(json_object_get(s->with, "body"),
		    "{\"a\":\"${ ({x = 1}).x }\",\"b\":[\"${'}' .. '{'}\",\"plain\"]}");

	s = drb_runbook_step(rb, "wait");
	assert_true(s->every_s == 5); /* until without every */
	assert_int_equal(s->has_retry, 1);
	assert_int_equal(s->retry.attempts, 3);
	assert_int_equal(s->retry.exponential, 1);
	assert_true(s->retry.initial_s == 1 && s->retry.max_s == 60);

	s = drb_runbook_step(rb, "promote");
	assert_int_equal(s->retry.exponential, 0);
	assert_true(s->retry.initial_s == 0.25 && s->retry.max_s == 2);
	assert_int_equal(s->on_failure, DRB_ONF_ABORT);
	assert_non_null(s->done_when_call);
	assert_string_equal(s->done_when_call->action, "pg.status");
	assert_string_equal(s->done_when_call->assert_.src, "not result.in_recovery");
	assert_null(s->done_when.src);

	s = drb_runbook_step(rb, "sentinel");
	assert_string_equal(s->done_when.src, "steps.sentinel.result ~= nil");
	assert_int_equal(s->on_failure, DRB_ONF_CONTINUE);

	s = drb_runbook_step(rb, "script-in-with");
	assert_null(s->script);
	assert_true(s->every_s == 1);

	s = drb_runbook_step(rb, "run-tool");
	assert_int_equal(s->read_only, 0);
	assert_int_equal(s->read_only_set, 1);

	assert_int_equal(rb->n_notify, 2);
	assert_int_equal(rb->notify[0].n_on, 2);
	assert_string_equal(rb->notify[0].on[1], "end");
	assert_string_equal(rb->notify[1].call.action, "aws.sns.publish");
	assert_string_equal(rb->notify[1].on[0], "failure");
}

/* Plain scalars are typed by the YAML 1.2 core rules; quoted ones always stay strings. */
static void test_scalar_typing(void **state)
{
	fixture *f = *state;
	const drb_runbook *rb =
	    load_text_ok(f, "version: 1\nname: t\nsteps: [{id: a, action: sleep}]\nparams:\n"
			    "  m:\n    type: map\n    default:\n"
			    "      q: \"1\"\n      i: 1\n      n: -7\n      r: 1.5\n      e: 1e3\n"
			    "      t: true\n      T: True\n      U: TRUE\n      F: False\n"
			    "      z: ~\n      nl: null\n      empty:\n      qt: 'true'\n"
			    "      hex: 0x10\n      word: yes\n      big: 99999999999999999999\n"
			    "      tagged: !!str 12\n      inf: .inf\n");

	assert_json(rb->params[0].def,
		    "{\"q\":\"1\",\"i\":1,\"n\":-7,\"r\":1.5,\"e\":1000.0,\"t\":true,\"T\":true,"
		    "\"U\":true,\"F\":false,\"z\":null,\"nl\":null,\"empty\":null,\"qt\":\"true\","
		    "\"hex\":\"0x10\",\"word\":\"yes\",\"big\":1e20,\"tagged\":\"12\","
		    "\"inf\":\".inf\"}");
	assert_true(json_is_real(json_object_get(rb->params[0].def, "e")));
	assert_true(json_is_integer(json_object_get(rb->params[0].def, "i")));
}

/* An alias is a copy of its anchor: the same value may be used at several places, and a
 * later anchor with the same name replaces the earlier one. */
static void test_anchors(void **state)
{
	fixture *f = *state;
	const drb_runbook *rb = load_text_ok(
	    f, "version: 1\nname: t\n"
	       "params:\n  a: {type: list, default: &l [x, y]}\n  b: {type: list, default: *l}\n"
	       "  c: {type: list, default: &l [z]}\n  d: {type: list, default: *l}\n"
	       "steps:\n  - &s {id: one, action: sleep, with: {duration: 1s}}\n"
	       "  - {id: two, action: sleep, with: *s}\n");

	assert_json(rb->params[1].def, "[\"x\",\"y\"]");
	assert_json(rb->params[3].def, "[\"z\"]");
	assert_json(rb->steps[1].with, "{\"id\":\"one\",\"action\":\"sleep\","
				       "\"with\":{\"duration\":\"1s\"}}");
}

/* Nesting of exactly the maximum depth is fine; one more level is refused. */
static void test_depth_limit(void **state)
{
	fixture *f = *state;
	char buf[512];
	int n = DRB_RUNBOOK_MAX_DEPTH - 3; /* root, params, p are three levels */

	snprintf(buf, sizeof(buf),
		 "version: 1\nname: t\nsteps: [{id: a, action: sleep}]\n"
		 "params:\n  p:\n    type: list\n    default: %.*s%.*s\n",
		 n, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", n,
		 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	load_text_ok(f, buf);
	drb_runbook_free(f->rb);
	f->rb = NULL;
	snprintf(buf, sizeof(buf),
		 "version: 1\nname: t\nsteps: [{id: a, action: sleep}]\n"
		 "params:\n  p:\n    type: list\n    default: %.*s%.*s\n",
		 n + 1, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		 n + 1, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	assert_int_equal(drb_runbook_load_buffer(&f->rb, "t", buf, strlen(buf), &test_opts, &f->d),
			 DRB_EINVAL);
	assert_int_equal(f->d.n, 1);
	assert_string_equal(f->d.v[0].msg, "nesting deeper than 64 levels");
	assert_int_equal(f->d.v[0].pos.line, 7);
	assert_int_equal(f->d.v[0].pos.col, 14 + n);
}

/* The five problems of one file come back from one load, sorted by position. */
static void test_all_errors_in_one_run(void **state)
{
	fixture *f = *state;
	static const char *const want[] = {
	    "parameter 'desired': 'default' must be an integer",
	    "unknown key 'retires' in step 'promote' (did you mean 'retry'?)",
	    "step 'scale': 'max_parallel' must be an integer between 1 and 64",
	    "duplicate step id 'promote' (first defined at 7:5)",
	    "step 'promote': unterminated '${' in with.duration (write '$${' for a literal '${')",
	};

	assert_int_equal(
	    drb_runbook_load(&f->rb, CORPUS "/invalid/five-errors.yaml", &test_opts, &f->d),
	    DRB_EINVAL);
	assert_null(f->rb);
	assert_int_equal(f->d.n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(f->d.v[i].msg, want[i]);
		if (i)
			assert_true(f->d.v[i - 1].pos.line < f->d.v[i].pos.line);
	}
}

/* Preflight is read-only by rule: every mutating action of the catalog, an approval, and
 * lua or exec without read_only: true are refused there, each with its place; read-only
 * actions, read_only: true and http.request (judged when called) are accepted. */
static void test_preflight_read_only_rule(void **state)
{
	fixture *f = *state;
	char text[1024];

	for (size_t i = 0; i < sizeof(test_actions) / sizeof(test_actions[0]); i++) {
		const char *name = test_actions[i].name;
		int mode = test_actions[i].mode, rc;

		snprintf(text, sizeof(text),
			 "version: 1\nname: pf\npreflight:\n  - id: check\n    action: %s\n%s"
			 "steps:\n  - id: s\n    action: sleep\n    with: { duration: 0s }\n",
			 name, strcmp(name, "lua") ? "" : "    script: return 1\n");
		drb_diags_free(&f->d);
		drb_diags_init(&f->d, "test.yaml");
		rc = drb_runbook_load_buffer(&f->rb, "test.yaml", text, strlen(text), &test_opts,
					     &f->d);
		drb_runbook_free(f->rb);
		f->rb = NULL;
		if (mode == 0 || mode == 2) {
			if (rc != 0)
				print_diags(&f->d);
			assert_int_equal(rc, 0);
			continue;
		}
		if (rc != DRB_EINVAL || f->d.n != 1)
			fail_msg("%s in preflight: rc %d, %zu diagnostics", name, rc, f->d.n);
		assert_int_equal(f->d.v[0].pos.line, 5);
		assert_int_equal(f->d.v[0].pos.col, 13);
		if (!strcmp(name, "approval"))
			assert_non_null(strstr(f->d.v[0].msg, "cannot ask for approval"));
		else if (mode == 1)
			assert_non_null(strstr(f->d.v[0].msg, "uses mutating action"));
		else
			assert_non_null(strstr(f->d.v[0].msg, "without read_only: true"));
	}
	/* read_only: true makes lua and exec acceptable */
	load_text_ok(f, "version: 1\nname: pf\npreflight:\n  - id: check\n    action: exec\n"
			"    read_only: true\n    with: { argv: [\"true\"] }\nsteps:\n  - id: s\n"
			"    action: sleep\n    with: { duration: 0s }\n");
}

/* Without opts the loader cannot know action names, so it does not judge them. */
static void test_no_opts_skips_action_names(void **state)
{
	fixture *f = *state;
	const char *text = "version: 1\nname: t\npreflight: [{id: p, action: custom.thing}]\n"
			   "steps: [{id: a, action: made.up}]\n";

	assert_int_equal(drb_runbook_load_buffer(&f->rb, "t", text, strlen(text), NULL, &f->d), 0);
	assert_string_equal(f->rb->steps[0].action, "made.up");
	drb_runbook_free(f->rb);
	f->rb = NULL;
	assert_int_equal(
	    drb_runbook_load_buffer(&f->rb, "t", text, strlen(text), &test_opts, &f->d),
	    DRB_EINVAL);
	assert_int_equal(f->d.n, 2);
}

/* Expressions compile as "return (src\n)" and are never run; chunks compile as they are. */
static void test_check_expr_and_chunk(void **state)
{
	drb_err e;

	assert_int_equal(drb_runbook_check_expr("result.status == \"available\"", &e), 0);
	assert_int_equal(drb_runbook_check_expr("os.exit(1)", &e), 0); /* compiled, not run */
	assert_int_equal(drb_runbook_check_expr("a =", &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "expression:1:"));
	/* an expression cannot smuggle a statement past the closing parenthesis */
	assert_int_equal(drb_runbook_check_expr("1) os.exit(", &e), DRB_EINVAL);
	assert_int_equal(drb_runbook_check_expr("", &e), DRB_EINVAL);
	/* a trailing comment is fine, as it is when the engine evaluates the expression */
	assert_int_equal(drb_runbook_check_expr("result.ok -- the answer says so", &e), 0);
	assert_int_equal(drb_runbook_check_chunk("local x = 1\nreturn x", &e), 0);
	assert_int_equal(drb_runbook_check_chunk("if x then", &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "script:1:"));
	/* text only: precompiled bytecode is refused */
	assert_int_equal(drb_runbook_check_chunk("\x1bLua", &e), DRB_EINVAL);
}

static void test_edit_distance(void **state)
{
	assert_int_equal(drb_edit_distance("retry", "retry", 2), 0);
	assert_int_equal(drb_edit_distance("retires", "retry", 3), 3);
	assert_int_equal(drb_edit_distance("retires", "retry", 2), 3); /* cap + 1 */
	assert_int_equal(drb_edit_distance("tiemout", "timeout", 2), 2);
	assert_int_equal(drb_edit_distance("", "ab", 2), 2);
	assert_int_equal(drb_edit_distance("abcdefgh", "a", 2), 3);
}

/* Diagnostics print sorted as path:line:col: message, and sorting is stable. */
static void test_diags_print(void **state)
{
	drb_diags d;
	char *out = NULL;
	size_t len = 0;
	FILE *mem;

	drb_diags_init(&d, "rb.yaml");
	drb_diags_add(&d, (drb_pos){3, 1}, "third %d", 3);
	drb_diags_add(&d, (drb_pos){1, 9}, "first");
	drb_diags_add(&d, (drb_pos){3, 1}, "third again");
	drb_diags_add(&d, (drb_pos){0, 0}, "file");
	mem = open_memstream(&out, &len);
	assert_non_null(mem);
	drb_diags_print(&d, mem);
	fclose(mem);
	assert_string_equal(out, "rb.yaml:0:0: file\nrb.yaml:1:9: first\nrb.yaml:3:1: third 3\n"
				 "rb.yaml:3:1: third again\n");
	free(out);
	drb_diags_sort(&d);
	assert_string_equal(d.v[2].msg, "third 3");
	assert_string_equal(d.v[3].msg, "third again");
	drb_diags_free(&d);
	drb_diags_free(&d); /* twice is harmless */
	drb_runbook_free(NULL);
}

/* ---- drb_runbook_bind_params ---- */

static const char *PARAMS_RB =
    "version: 1\nname: p\nsteps: [{id: a, action: sleep}]\nparams:\n"
    "  region: {type: string, default: eu-west-1, choices: [eu-west-1, ap-southeast-1]}\n"
    "  desired: {type: int, default: 2}\n"
    "  force: {type: bool, default: false}\n"
    "  lag: {type: duration, default: 60s}\n"
    "  services: {type: list, default: [api]}\n"
    "  tags: {type: map, default: {}}\n"
    "  token: {type: string, secret: true}\n"
    "  note: {type: string, required: false}\n";

static int bind(fixture *f, char *const *kv, size_t n, json_t **out, drb_err *e)
{
	if (!f->rb)
		load_text_ok(f, PARAMS_RB);
	drb_err_clear(e);
	return drb_runbook_bind_params(f->rb, kv, n, out, e);
}

/* Defaults fill what -p does not give; each type converts from its command-line spelling. */
static void test_bind_params_types(void **state)
{
	fixture *f = *state;
	char *kv[] = {"token=s3cr3t",
		      "desired=4",
		      "force=yes",
		      "lag=1m30s",
		      "services=api, auth ,ai-ml",
		      "tags={\"team\":\"sre\"}",
		      "region=ap-southeast-1"};
	json_t *out = NULL;
	drb_err e;

	assert_int_equal(bind(f, kv, 7, &out, &e), 0);
	assert_json(out, "{\"region\":\"ap-southeast-1\",\"desired\":4,\"force\":true,\"lag\":90,"
			 "\"services\":[\"api\",\"auth\",\"ai-ml\"],\"tags\":{\"team\":\"sre\"},"
			 "\"token\":\"s3cr3t\",\"note\":null}");
	json_decref(out);

	{
		char *kv2[] = {"token=x", "lag=2.5",	"services=[\"a\",1]",
			       "force=0", "desired=-3", "desired=5"};

		assert_int_equal(bind(f, kv2, 6, &out, &e), 0);
		assert_json(json_object_get(out, "lag"), "2.5");
		assert_json(json_object_get(out, "services"), "[\"a\",1]");
		assert_json(json_object_get(out, "force"), "false");
		assert_json(json_object_get(out, "desired"), "5"); /* the last -p wins */
		assert_json(json_object_get(out, "region"), "\"eu-west-1\"");
		json_decref(out);
	}
	{
		char *kv3[] = {"token=", "services="};

		assert_int_equal(bind(f, kv3, 2, &out, &e), 0);
		assert_json(json_object_get(out, "token"), "\"\"");
		assert_json(json_object_get(out, "services"), "[]");
		json_decref(out);
	}
}

/* Every refusal names the parameter and what was expected. */
static void test_bind_params_errors(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *kv;
		const char *msg;
	} bad[] = {
	    {"regoin=x", "unknown parameter 'regoin'"},
	    {"desired=2x", "parameter 'desired' must be an integer, got '2x'"},
	    {"desired=", "parameter 'desired' must be an integer, got ''"},
	    {"desired=99999999999999999999", "parameter 'desired' must be an integer, got "
					     "'99999999999999999999'"},
	    {"force=maybe", "parameter 'force' must be true, false, yes, no, 1 or 0, got 'maybe'"},
	    {"lag=-5s", "parameter 'lag' must be a duration (like 90s or 15m, or seconds), got "
			"'-5s'"},
	    {"lag=soon", "parameter 'lag' must be a duration (like 90s or 15m, or seconds), got "
			 "'soon'"},
	    {"services=[1,", "parameter 'services' must be a JSON array or a comma-separated list"},
	    {"tags=[1]", "parameter 'tags' must be a JSON object"},
	    {"region=us-east-1", "parameter 'region' must be one of [\"eu-west-1\","
				 "\"ap-southeast-1\"], got 'us-east-1'"},
	    {"noequals", "invalid parameter 'noequals': use -p NAME=VALUE"},
	    {"=x", "invalid parameter '=x': use -p NAME=VALUE"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *kv[] = {"token=t", (char *)bad[i].kv};
		json_t *out = NULL;
		drb_err e;

		assert_int_equal(bind(f, kv, 2, &out, &e), DRB_EINVAL);
		assert_null(out);
		assert_string_equal(e.msg, bad[i].msg);
	}
	{
		json_t *out = NULL;
		drb_err e;

		assert_int_equal(bind(f, NULL, 0, &out, &e), DRB_EINVAL);
		assert_null(out);
		assert_string_equal(e.msg,
				    "missing required parameter 'token' (pass -p token=VALUE)");
	}
}

/* A runbook without params binds to an empty object; the loader's typed default survives
 * binding unchanged (durations stay seconds). */
static void test_bind_params_empty(void **state)
{
	fixture *f = *state;
	json_t *out = NULL;
	drb_err e;

	load_text_ok(f, "version: 1\nname: t\nsteps: [{id: a, action: sleep}]\n");
	assert_int_equal(drb_runbook_bind_params(f->rb, NULL, 0, &out, &e), 0);
	assert_json(out, "{}");
	json_decref(out);
}

/* Every prefix of a valid runbook is some kind of input: none may crash or leak (ASan). */
/* needs: resolves into deps (a step without needs follows the one before it; needs: []
 * none), and the critical path is the longest chain. */
static void test_needs_graph(void **state)
{
	fixture *f = *state;
	const char *text = "version: 1\nname: g\nmax_parallel: 3\nsteps:\n"
			   "  - { id: a, action: sleep }\n"
			   "  - { id: b, action: sleep }\n"
			   "  - { id: c, action: sleep, needs: [] }\n"
			   "  - { id: d, action: sleep, needs: [c, b] }\n"
			   "  - { id: e, action: sleep, needs: [c] }\n";
	drb_runbook *rb = load_text_ok(f, text);
	size_t *path = NULL, n = 0;

	assert_int_equal(rb->max_parallel, 3);
	assert_int_equal(rb->steps[0].n_deps, 0);
	assert_int_equal(rb->steps[1].n_deps, 1);
	assert_int_equal(rb->steps[1].deps[0], 0);
	assert_false(rb->steps[1].needs_set);
	assert_true(rb->steps[2].needs_set);
	assert_int_equal(rb->steps[2].n_deps, 0);
	assert_int_equal(rb->steps[3].n_deps, 2);
	assert_int_equal(rb->steps[3].deps[0], 2);
	assert_int_equal(rb->steps[3].deps[1], 1);
	assert_int_equal(drb_runbook_critical_path(rb, &path, &n), 0);
	assert_int_equal(n, 3); /* a -> b -> d */
	assert_int_equal(path[0], 0);
	assert_int_equal(path[1], 1);
	assert_int_equal(path[2], 3);
	free(path);
}

/* The default runbook-level max_parallel is 8. */
static void test_max_parallel_default(void **state)
{
	fixture *f = *state;
	drb_runbook *rb =
	    load_text_ok(f, "version: 1\nname: g\nsteps:\n  - { id: a, action: sleep }\n");

	assert_int_equal(rb->max_parallel, 8);
}

/* shadow: lands in the model: setup and teardown steps in order, overrides typed as their
 * parameters (a duration in seconds); a runbook without it has has_shadow 0. */
static void test_shadow_section(void **state)
{
	fixture *f = *state;
	drb_runbook *rb =
	    load_text_ok(f, "version: 1\n"
			    "name: s\n"
			    "params:\n"
			    "  svc: { type: string, default: api }\n"
			    "  wait: { type: duration, default: 1m }\n"
			    "  list: { type: list, default: [a] }\n"
			    "steps:\n"
			    "  - { id: a, action: sleep, with: { duration: 1ms } }\n"
			    "shadow:\n"
			    "  setup:\n"
			    "    - { id: mk, action: sleep, with: { duration: 1ms } }\n"
			    "    - { id: mk2, action: sleep, with: { duration: 1ms } }\n"
			    "  params: { svc: drill-api, wait: 90s, list: [drill-a, drill-b] }\n"
			    "  teardown:\n"
			    "    - { id: rm, action: sleep, with: { duration: 1ms } }\n");

	assert_int_equal(rb->has_shadow, 1);
	assert_int_equal(rb->n_shadow_setup, 2);
	assert_string_equal(rb->shadow_setup[0].id, "mk");
	assert_string_equal(rb->shadow_setup[1].id, "mk2");
	assert_int_equal(rb->n_shadow_teardown, 1);
	assert_string_equal(rb->shadow_teardown[0].id, "rm");
	assert_json(rb->shadow_params, "{\"svc\": \"drill-api\", \"wait\": 90, \"list\": "
				       "[\"drill-a\", \"drill-b\"]}");
	assert_ptr_equal(drb_runbook_step(rb, "rm"), &rb->shadow_teardown[0]);
	drb_runbook_free(f->rb);
	f->rb = NULL;
	rb = load_text_ok(f, "version: 1\nname: g\nsteps:\n  - { id: a, action: sleep }\n");
	assert_int_equal(rb->has_shadow, 0);
	assert_null(rb->shadow_params);
}

typedef struct refs {
	char got[256];
} refs;

static int refs_cb(void *ud, const char *name, size_t n, size_t off)
{
	refs *r = ud;

	(void)off;
	snprintf(r->got + strlen(r->got), sizeof(r->got) - strlen(r->got), "%.*s;", (int)n, name);
	return 0;
}

/* steps.Y references: dotted and bracketed forms; strings, comments, fields named steps and
 * computed keys are not references. */
static void test_lua_refs(void **state)
{
	refs r = {""};

	(void)state;
	drb_expr_refs("steps.a.result and steps [\"b-c\"].x or steps['d'] and t.steps.e and "
		      "steps[name] and \"steps.f\" and [[steps.g]] -- steps.h\n and mysteps.i "
		      "--[[ steps.j ]] and steps . k",
		      "steps", refs_cb, &r);
	assert_string_equal(r.got, "a;b-c;d;k;");
}

static void test_truncated_inputs(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	drb_err e;

	assert_int_equal(
	    drb_file_read(CORPUS "/valid/every-field.yaml", DRB_RUNBOOK_MAX_BYTES, &buf, &len, &e),
	    0);
	for (size_t n = 0; n <= len; n += 3) {
		drb_runbook *rb = NULL;
		drb_diags d;
		int rc;

		drb_diags_init(&d, "prefix");
		rc = drb_runbook_load_buffer(&rb, "prefix", buf, n, &test_opts, &d);
		assert_true((rc == 0) == (d.n == 0));
		assert_true((rc == 0) == (rb != NULL));
		drb_runbook_free(rb);
		drb_diags_free(&d);
	}
	free(buf);
}

static void assert_same_steps(const drb_step *a, const drb_step *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(a[i].id, b[i].id);
		assert_string_equal(a[i].action, b[i].action);
		assert_true(json_equal(a[i].with, b[i].with));
		assert_int_equal(a[i].pos.line, b[i].pos.line);
		assert_int_equal(a[i].pos.col, b[i].pos.col);
		assert_int_equal(a[i].with_pos.line, b[i].with_pos.line);
		assert_int_equal(a[i].with_pos.col, b[i].with_pos.col);
		assert_int_equal(a[i].n_deps, b[i].n_deps);
	}
}

/* A UTF-8 BOM before the first key (what some editors write) is accepted, and the file
 * loads into the same model, positions included, as without it; errors keep their place. */
static void test_utf8_bom(void **state)
{
	fixture *f = *state;
	char *plain = NULL, *bom = NULL;
	size_t len = 0;
	drb_runbook *rb = NULL;
	drb_diags d;
	drb_err e;
	const char *bad = "version: 1\nname: x\nsteps:\n  - id: a\n    action: nope.nothing\n";
	char badbom[128];
	int n;

	assert_int_equal(drb_file_read(CORPUS "/valid/every-field.yaml", DRB_RUNBOOK_MAX_BYTES,
				       &plain, &len, &e),
			 0);
	bom = malloc(len + 3);
	assert_non_null(bom);
	memcpy(bom, "\xEF\xBB\xBF", 3);
	memcpy(bom + 3, plain, len);
	load_ok(f, CORPUS "/valid/every-field.yaml");
	drb_diags_init(&d, "bom.yaml");
	assert_int_equal(drb_runbook_load_buffer(&rb, "bom.yaml", bom, len + 3, &test_opts, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(rb->name, f->rb->name);
	assert_int_equal(rb->n_params, f->rb->n_params);
	assert_int_equal(rb->n_conns, f->rb->n_conns);
	assert_int_equal(rb->n_preflight, f->rb->n_preflight);
	assert_int_equal(rb->n_steps, f->rb->n_steps);
	assert_same_steps(rb->preflight, f->rb->preflight, rb->n_preflight);
	assert_same_steps(rb->steps, f->rb->steps, rb->n_steps);
	drb_runbook_free(rb);
	rb = NULL;
	drb_diags_free(&d);

	n = snprintf(badbom, sizeof(badbom), "\xEF\xBB\xBF%s", bad);
	drb_diags_init(&d, "bom.yaml");
	assert_int_not_equal(
	    drb_runbook_load_buffer(&rb, "bom.yaml", badbom, (size_t)n, &test_opts, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].pos.line, 5);
	assert_int_equal(d.v[0].pos.col, 13);
	drb_diags_free(&d);
	free(bom);
	free(plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_design_example, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scalar_typing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_anchors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_all_errors_in_one_run, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_preflight_read_only_rule, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_opts_skips_action_names, setup, teardown),
	    cmocka_unit_test(test_check_expr_and_chunk),
	    cmocka_unit_test(test_edit_distance),
	    cmocka_unit_test(test_diags_print),
	    cmocka_unit_test_setup_teardown(test_bind_params_types, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bind_params_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bind_params_empty, setup, teardown),
	    cmocka_unit_test(test_truncated_inputs),
	    cmocka_unit_test_setup_teardown(test_needs_graph, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_parallel_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shadow_section, setup, teardown),
	    cmocka_unit_test(test_lua_refs),
	    cmocka_unit_test_setup_teardown(test_utf8_bom, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
