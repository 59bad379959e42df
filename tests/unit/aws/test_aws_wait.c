/* Tests of lua/drbook/aws_wait.lua (the Lua waits over the AWS actions), run in the real
 * sandbox with the module loaded from the project's lua/ folder and the actions replaced by
 * fakes that answer from a script: polling until the condition holds, the region passed
 * through, and a clear error naming what was last seen when the wait times out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/lua.h>

typedef struct fake {
	const char *answers[8]; /* JSON results in order, for whichever action is called */
	int next, calls, sleeps;
	json_t *last_args;
} fake;

static const drb_action A_RDS = {.name = "aws.rds.describe_db_instance", .mode = DRB_ACT_RO};
static const drb_action A_ECS = {.name = "aws.ecs.describe_service", .mode = DRB_ACT_RO};
static const drb_action A_CHG = {.name = "aws.route53.get_change", .mode = DRB_ACT_RO};
static const drb_action A_HC = {.name = "aws.route53.get_health_check_status", .mode = DRB_ACT_RO};
static const char *const sleep_pos[] = {"duration", NULL};
static const drb_action A_SLEEP = {.name = "sleep", .mode = DRB_ACT_RO, .positional = sleep_pos};

static int fake_invoke(void *ud, const drb_action *a, const json_t *args, json_t **result,
		       drb_err *err)
{
	fake *f = ud;

	if (a == &A_SLEEP) {
		f->sleeps++;
		*result = json_object();
		return 0;
	}
	f->calls++;
	json_decref(f->last_args);
	f->last_args = json_deep_copy(args);
	if (f->next >= 8 || !f->answers[f->next])
		return drb_err_set(err, DRB_EINVAL, "fake: no answer left");
	*result = json_loads(f->answers[f->next++], 0, NULL);
	return 0;
}

static drb_lua *new_lua(fake *f)
{
	drb_lua_opts o = {.lib_dir = DRB_SOURCE_DIR "/lua"};
	drb_lua *L = NULL;
	drb_err e = {0};
	const drb_action *all[] = {&A_RDS, &A_ECS, &A_CHG, &A_HC, &A_SLEEP};

	assert_int_equal(drb_lua_new(&L, &o, &e), 0);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		assert_int_equal(drb_lua_register_action(L, all[i], fake_invoke, f, &e), 0);
	return L;
}

/* A promotion ends when the instance is available and no longer a replica. */
static void test_instance_promoted(void **state)
{
	fake f = {.answers = {"{\"status\": \"modifying\", \"replica_source\": \"prod-db\"}",
			      "{\"status\": \"available\", \"replica_source\": \"prod-db\"}",
			      "{\"id\": \"prod-db-eu\", \"status\": \"available\"}"}};
	drb_lua *L;
	json_t *out = NULL;
	drb_err e = {0};

	(void)state;
	L = new_lua(&f);
	assert_int_equal(drb_lua_run(L,
				     "local w = require 'drbook.aws_wait'\n"
				     "return w.instance_available('prod-db-eu', {region = "
				     "'eu-west-1', promoted = true, every = 1})",
				     "t", &out, &e),
			 0);
	assert_int_equal(f.calls, 3);
	assert_int_equal(f.sleeps, 2);
	assert_string_equal(json_string_value(json_object_get(out, "id")), "prod-db-eu");
	assert_string_equal(json_string_value(json_object_get(f.last_args, "region")), "eu-west-1");
	assert_string_equal(json_string_value(json_object_get(f.last_args, "id")), "prod-db-eu");
	json_decref(out);
	json_decref(f.last_args);
	drb_lua_free(L);
}

/* A service is steady when running == desired, nothing pending and the rollout completed. */
static void test_service_steady(void **state)
{
	fake f = {.answers = {"{\"desired\": 2, \"running\": 2, \"pending\": 0, "
			      "\"rollout_state\": \"IN_PROGRESS\"}",
			      "{\"desired\": 2, \"running\": 1, \"pending\": 1, "
			      "\"rollout_state\": \"COMPLETED\"}",
			      "{\"desired\": 2, \"running\": 2, \"pending\": 0, "
			      "\"rollout_state\": \"COMPLETED\"}"}};
	drb_lua *L;
	json_t *out = NULL;
	drb_err e = {0};

	(void)state;
	L = new_lua(&f);
	assert_int_equal(drb_lua_run(L,
				     "return require('drbook.aws_wait').service_steady('prod-eu', "
				     "'api', {every = 1}).running",
				     "t", &out, &e),
			 0);
	assert_int_equal(json_integer_value(out), 2);
	assert_int_equal(f.calls, 3);
	json_decref(out);
	json_decref(f.last_args);
	drb_lua_free(L);
}

/* change_in_sync and health_check(false) (confirming an outage). */
static void test_change_and_health(void **state)
{
	fake f = {.answers = {"{\"status\": \"PENDING\"}", "{\"status\": \"INSYNC\"}",
			      "{\"healthy\": false, \"reporting\": 3, \"failing\": 3}"}};
	drb_lua *L;
	json_t *out = NULL;
	drb_err e = {0};

	(void)state;
	L = new_lua(&f);
	assert_int_equal(drb_lua_run(L,
				     "local w = require 'drbook.aws_wait'\n"
				     "local c = w.change_in_sync('C1', {every = 1})\n"
				     "local h = w.health_check('hc-1', false)\n"
				     "return c.status .. ' ' .. h.failing",
				     "t", &out, &e),
			 0);
	assert_string_equal(json_string_value(out), "INSYNC 3");
	json_decref(out);
	json_decref(f.last_args);
	drb_lua_free(L);
}

/* A wait that does not finish in time says what it waited for and what it last saw. */
static void test_timeout_message(void **state)
{
	fake f = {.answers = {"{\"status\": \"modifying\"}"}};
	drb_lua *L;
	json_t *out = NULL;
	drb_err e = {0};

	(void)state;
	L = new_lua(&f);
	assert_int_equal(drb_lua_run(L,
				     "return require('drbook.aws_wait').instance_available('db', "
				     "{timeout = 0})",
				     "t", &out, &e),
			 DRB_ESCRIPT);
	assert_non_null(strstr(e.msg, "instance db available: not reached within 0 s"));
	assert_non_null(strstr(e.msg, "last seen: status modifying"));
	json_decref(f.last_args);
	drb_lua_free(L);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_instance_promoted),
	    cmocka_unit_test(test_service_steady),
	    cmocka_unit_test(test_change_and_health),
	    cmocka_unit_test(test_timeout_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
