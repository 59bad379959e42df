/* Tests for src/engine/action_sleep.c: the wait, its argument checks, and that cancel and
 * the step's deadline end it early with the right code. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/action.h>
#include <drbook/util.h>

#include "engine/builtins.h"
#include "http/direct_seam.h"

typedef struct fixture {
	direct_seam seam;
	volatile int cancel;
	drb_action_ctx ctx;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	direct_seam_init(&f->seam);
	f->ctx.seam = &f->seam.seam;
	f->ctx.step_id = "nap";
	f->ctx.cancel = &f->cancel;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	direct_seam_free(&f->seam);
	free(f);
	return 0;
}

static int run(fixture *f, const char *args_json, json_t **result, drb_err *e)
{
	json_t *args = json_loads(args_json, 0, NULL);
	int rc;

	assert_non_null(args);
	*result = NULL;
	rc = drb_action_sleep.fn(&f->ctx, args, result, e);
	json_decref(args);
	return rc;
}

/* Seconds as a number or as a duration string; the result is an empty object; nothing
 * goes through the seam (nothing leaves the process). */
static void test_sleeps(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	double t0 = drb_mono_now();

	assert_int_equal(run(f, "{\"duration\": 0.2}", &r, &e), 0);
	assert_true(drb_mono_now() - t0 >= 0.2);
	assert_true(json_is_object(r));
	assert_int_equal(json_object_size(r), 0);
	json_decref(r);
	t0 = drb_mono_now();
	assert_int_equal(run(f, "{\"duration\": \"150ms\"}", &r, &e), 0);
	assert_true(drb_mono_now() - t0 >= 0.15);
	assert_true(drb_mono_now() - t0 < 1.0);
	json_decref(r);
	assert_int_equal(run(f, "{\"duration\": 0}", &r, &e), 0);
	json_decref(r);
	assert_int_equal(f->seam.calls, 0);
	assert_string_equal(drb_action_sleep.name, "sleep");
	assert_int_equal(drb_action_sleep.mode, DRB_ACT_RO);
	assert_string_equal(drb_action_sleep.positional[0], "duration");
}

/* Missing, malformed, negative and unknown arguments are refused before any wait. */
static void test_bad_args(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{}", &r, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "duration"));
	assert_int_equal(run(f, "{\"duration\": \"soon\"}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"duration\": -1}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"duration\": 1, \"durration\": 2}", &r, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "durration"));
	assert_null(r);
}

static void *cancel_later(void *arg)
{
	fixture *f = arg;

	drb_sleep_s(0.2);
	f->cancel = 1;
	return NULL;
}

/* A run being stopped interrupts a long sleep promptly. */
static void test_cancel(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	pthread_t t;
	double t0 = drb_mono_now(), took;

	assert_int_equal(pthread_create(&t, NULL, cancel_later, f), 0);
	assert_int_equal(run(f, "{\"duration\": \"10s\"}", &r, &e), DRB_EINTERRUPTED);
	took = drb_mono_now() - t0;
	pthread_join(t, NULL);
	assert_true(took >= 0.19);
	assert_true(took < 1.0);
	assert_null(r);
	assert_int_equal(drb_code_retryable(e.code), 0);
}

/* The step's deadline ends a sleep that would outlast it: DRB_ETIMEOUT at the deadline;
 * a deadline after the sleep's end does not matter. */
static void test_deadline(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	double t0 = drb_mono_now(), took;

	f->ctx.deadline = t0 + 0.3;
	assert_int_equal(run(f, "{\"duration\": 10}", &r, &e), DRB_ETIMEOUT);
	took = drb_mono_now() - t0;
	assert_true(took >= 0.29);
	assert_true(took < 1.0);
	assert_null(r);

	f->ctx.deadline = drb_mono_now() + 5;
	assert_int_equal(run(f, "{\"duration\": 0.1}", &r, &e), 0);
	json_decref(r);

	f->ctx.deadline = drb_mono_now() - 1; /* already passed */
	assert_int_equal(run(f, "{\"duration\": 1}", &r, &e), DRB_ETIMEOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sleeps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
