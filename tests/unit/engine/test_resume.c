/* Tests for the resume decision of src/engine/resume.c: what happens to a step that started
 * but did not end, for every combination of flags and step properties. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/engine_int.h"

static const drb_action ro = {.name = "aws.rds.describe_db_instance", .mode = DRB_ACT_RO};
static const drb_action mut = {.name = "aws.rds.promote_read_replica", .mode = DRB_ACT_MUT};
static const drb_action stepmode = {.name = "exec", .mode = DRB_ACT_STEP};

static drb_resume_decision decide(const drb_step *s, const drb_action *a, int assume, int retry)
{
	const char *why = NULL;
	drb_resume_decision d = drb_resume_decide(s, a, assume, retry, &why);

	assert_non_null(why);
	return d;
}

/* A plain mutating step with no flag cannot be guessed: the operator decides. */
static void test_mutating_step_is_blocked(void **state)
{
	drb_step s = {.id = "promote"};

	assert_int_equal(decide(&s, &mut, 0, 0), DRB_RESUME_BLOCKED);
	assert_int_equal(decide(&s, &stepmode, 0, 0), DRB_RESUME_BLOCKED);
	assert_int_equal(decide(&s, NULL, 0, 0), DRB_RESUME_BLOCKED); /* custom Lua action */
}

/* The operator's flags win over everything, --assume-done first. */
static void test_flags_win(void **state)
{
	drb_step s = {.id = "promote", .idempotent = 1};

	assert_int_equal(decide(&s, &mut, 1, 0), DRB_RESUME_ASSUME_DONE);
	assert_int_equal(decide(&s, &mut, 0, 1), DRB_RESUME_RERUN);
	assert_int_equal(decide(&s, &mut, 1, 1), DRB_RESUME_ASSUME_DONE);
}

/* done_when is consulted before idempotent: a check is better than a repeat. */
static void test_done_when_checked_first(void **state)
{
	drb_step s = {.id = "promote", .idempotent = 1};
	drb_call_spec call = {.action = "aws.rds.describe_db_instance"};

	s.done_when.src = "true";
	assert_int_equal(decide(&s, &mut, 0, 0), DRB_RESUME_CHECK);
	s.done_when.src = NULL;
	s.done_when_call = &call;
	assert_int_equal(decide(&s, &mut, 0, 0), DRB_RESUME_CHECK);
}

/* Steps that are safe to repeat are re-run without asking. */
static void test_safe_steps_rerun(void **state)
{
	drb_step idem = {.id = "scale", .idempotent = 1};
	drb_step plain = {.id = "look"};
	drb_step ro_exec = {.id = "check", .read_only = 1};

	assert_int_equal(decide(&idem, &mut, 0, 0), DRB_RESUME_RERUN);
	assert_int_equal(decide(&plain, &ro, 0, 0), DRB_RESUME_RERUN);
	assert_int_equal(decide(&ro_exec, &stepmode, 0, 0), DRB_RESUME_RERUN);
	assert_int_equal(decide(&plain, &drb_action_approval, 0, 0), DRB_RESUME_RERUN);
}

/* Step retry delays: exponential full jitter stays within min(max, initial * 2^(n-1)) and
 * reaches it with the largest random; fixed waits exactly initial. */
static void test_retry_delay_bounds(void **state)
{
	drb_retry exp = {.attempts = 10, .exponential = 1, .initial_s = 2, .max_s = 30};
	drb_retry fixed = {.attempts = 3, .exponential = 0, .initial_s = 1.5, .max_s = 60};

	for (int n = 1; n <= 8; n++) {
		double ceiling = 2.0 * (double)(1 << (n - 1));

		if (ceiling > 30)
			ceiling = 30;
		assert_true(drb_retry_delay(&exp, n, 0.0) == 0.0);
		assert_true(drb_retry_delay(&exp, n, 0.5) <= ceiling * 0.5 + 1e-9);
		assert_true(drb_retry_delay(&exp, n, 0.999999) <= ceiling);
		assert_true(drb_retry_delay(&exp, n, 0.999999) > ceiling * 0.99);
	}
	assert_true(drb_retry_delay(&exp, 20, 0.999999) <= 30.0);
	assert_true(drb_retry_delay(&fixed, 1, 0.3) == 1.5);
	assert_true(drb_retry_delay(&fixed, 5, 0.9) == 1.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutating_step_is_blocked),
		cmocka_unit_test(test_flags_win),
		cmocka_unit_test(test_done_when_checked_first),
		cmocka_unit_test(test_safe_steps_rerun),
		cmocka_unit_test(test_retry_delay_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
