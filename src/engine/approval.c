/* Approvals: a human says yes before a change. Granted by --approve STEP or --yes, or asked on
 * the terminal through the sink; with no terminal and no flag the run is refused at once (a
 * game-day schedule must say what it approves). Every decision is an "approval" event. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "engine_int.h"

/* Steps of a graph run at the same time: one question on the terminal at a time. */
static pthread_mutex_t ask_mu = PTHREAD_MUTEX_INITIALIZER;

static int listed(char *const *v, size_t n, const char *id, const char *uid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], id) || !strcmp(v[i], uid))
			return 1;
	return 0;
}

int drb_approval(drb_run *r, const drb_step *s, const char *uid, const json_t *args,
		 json_t **result, drb_err *err)
{
	const char *msg = "Proceed?";
	const char *id = s && s->id ? s->id : uid;
	double timeout = 900;
	const char *how = NULL, *approver = NULL;
	char ts[32], who[256];
	json_t *d;
	int answer = -2, rc;

	if ((rc = drb_args_check(drb_action_approval.schema, args, err)) ||
	    (rc = drb_arg_string_opt(args, "message", &msg, err)) ||
	    (rc = drb_arg_duration_opt(args, "timeout", &timeout, err)))
		return rc;
	if (r->replay)
		return drb_replay_approval(r, uid, result, err);
	if (r->o->yes) {
		how = "--yes";
	} else if (listed(r->o->approve, r->o->n_approve, id, uid)) {
		how = "--approve";
	} else if (r->o->sink.ask) {
		d = json_pack("{s:s, s:f, s:s}", "message", msg, "timeout_s", timeout, "state",
			      "asking");
		drb_emit(r, "approval", uid, d, err);
		json_decref(d);
		pthread_mutex_lock(&ask_mu);
		answer = r->o->sink.ask(r->o->sink.ud, uid, msg, timeout);
		pthread_mutex_unlock(&ask_mu);
		if (answer == 1)
			how = "terminal";
	}
	approver = drb_operator(who, sizeof(who));
	drb_rfc3339_ms(drb_wall_ms(), ts);
	if (how) {
		d = json_pack("{s:s, s:b, s:s, s:s, s:s}", "message", msg, "approved", 1,
			      "approver", approver, "how", how, "approved_at", ts);
		rc = drb_emit(r, "approval", uid, d, err);
		json_decref(d);
		if (rc)
			return rc;
		*result = json_pack("{s:s, s:s, s:s}", "approver", approver, "approved_at", ts,
				    "how", how);
		return 0;
	}
	if (answer == -2)
		drb_err_set(
		    err, DRB_EDENIED,
		    "approval '%s' needed and no terminal to ask: pass --approve %s or --yes", id,
		    id);
	else if (answer == -1)
		drb_err_set(err, DRB_EDENIED, "approval '%s' timed out: no answer", id);
	else
		drb_err_set(err, DRB_EDENIED, "approval '%s' denied by %s", id, approver);
	d = json_pack("{s:s, s:b, s:s, s:s}", "message", msg, "approved", 0, "reason", err->msg,
		      "at", ts);
	drb_emit(r, "approval", uid, d, NULL);
	json_decref(d);
	return DRB_EDENIED;
}
