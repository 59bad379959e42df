/* The built-in `sleep` action: waits a duration (drb_sleep_until) so that a cancelled run or
 * the step's deadline ends the wait promptly instead of after the full duration. */
#include <drbook/action.h>
#include <drbook/util.h>

#include "builtins.h"

static int sleep_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	double duration = -1, end;
	int rc;

	*result = NULL;
	rc = drb_args_check(drb_action_sleep.schema, args, err);
	if (rc == 0)
		rc = drb_arg_duration_opt(args, "duration", &duration, err);
	if (rc != 0)
		goto out;
	if (duration < 0) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'duration' is required");
		goto out;
	}
	end = drb_mono_now() + duration;
	if (ctx->replay) {
		/* a replay does not wait; it only decides what the wait would have come to */
		if (ctx->deadline > 0 && end > ctx->deadline) {
			rc = drb_err_set(
			    err, DRB_ETIMEOUT,
			    "sleep: the step's deadline passed before the duration ended");
			goto out;
		}
		end = 0;
	}
	rc = drb_sleep_until(end, ctx->deadline, ctx->cancel);
	if (rc == DRB_EINTERRUPTED)
		rc = drb_err_set(err, rc, "sleep: cancelled");
	else if (rc == DRB_ETIMEOUT)
		rc = drb_err_set(err, rc,
				 "sleep: the step's deadline passed before the duration ended");
	if (rc != 0)
		goto out;
	*result = json_object();
	if (!*result)
		rc = drb_err_set(err, DRB_ENOMEM, "sleep: out of memory");
out:
	return rc;
}

static const char *const sleep_positional[] = {"duration", NULL};

const drb_action drb_action_sleep = {
    .name = "sleep",
    .mode = DRB_ACT_RO,
    .mode_of = NULL,
    .positional = sleep_positional,
    .fn = sleep_fn,
    .schema =
	&(const drb_action_schema){
	    .doc = "Waits (a cancelled run or the step's deadline ends the wait early)",
	    .args = (const drb_arg_spec[]){{"duration", DRB_T_DURATION, 1, NULL, NULL, "how long"},
					   {NULL, 0, 0, NULL, NULL, NULL}}},
};
