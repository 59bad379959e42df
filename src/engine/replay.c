/* Replay: re-run a recorded run's decisions offline. The runbook (the recorded one, or a
 * changed one given with --runbook) executes again in the sandbox with the recorded
 * parameters, but every provider call is answered by the seam from the log's call records
 * (the next unused record of the same step, service and operation), approvals are the recorded
 * ones, and nothing waits. Then each step's outcome is compared with the recorded one: a
 * reviewer sees whether the same answers lead to the same decisions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "engine_int.h"

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int code_of(const char *name)
{
	static const struct {
		const char *n;
		int c;
	} map[] = {
	    {"nomem", DRB_ENOMEM},
	    {"invalid", DRB_EINVAL},
	    {"not_found", DRB_ENOTFOUND},
	    {"timeout", DRB_ETIMEOUT},
	    {"transient", DRB_ETRANSIENT},
	    {"denied", DRB_EDENIED},
	    {"limit", DRB_ELIMIT},
	    {"script", DRB_ESCRIPT},
	    {"integrity", DRB_EINTEGRITY},
	    {"io", DRB_EIO},
	    {"interrupted", DRB_EINTERRUPTED},
	};

	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].n, name))
			return map[i].c;
	return DRB_ERR;
}

int drb_replay_answer(drb_run *r, const char *uid, const drb_call *c, json_t **response,
		      drb_err *err)
{
	size_t i;
	json_t *rec;

	*response = NULL;
	pthread_mutex_lock(&r->mu);
	json_array_foreach(r->recorded, i, rec)
	{
		const json_t *d = json_object_get(rec, "data");

		if (r->used[i] || strcmp(sget(rec, "event") ?: "", "call") ||
		    strcmp(sget(rec, "step") ?: "", uid) ||
		    strcmp(sget(d, "service") ?: "", c->service) ||
		    strcmp(sget(d, "operation") ?: "", c->operation))
			continue;
		r->used[i] = 1;
		pthread_mutex_unlock(&r->mu);
		if (sget(d, "error")) {
			drb_err_set(err, code_of(sget(d, "code")), "%s", sget(d, "error"));
			return err->code;
		}
		if (!json_object_get(d, "response"))
			return drb_err_set(err, DRB_EINVAL,
					   "replay: the recorded %s %s of step '%s' has no answer",
					   c->service, c->operation, uid);
		*response = json_deep_copy(json_object_get(d, "response"));
		return *response ? 0 : drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&r->mu);
	return drb_err_set(err, DRB_ENOTFOUND,
			   "replay: no recorded answer left for %s %s in step '%s' (the runbook "
			   "now makes a call the recorded run did not)",
			   c->service, c->operation, uid);
}

int drb_replay_approval(drb_run *r, const char *uid, json_t **result, drb_err *err)
{
	size_t i;
	json_t *rec;

	json_array_foreach(r->recorded, i, rec)
	{
		const json_t *d = json_object_get(rec, "data");

		if (strcmp(sget(rec, "event") ?: "", "approval") ||
		    strcmp(sget(rec, "step") ?: "", uid) || !json_object_get(d, "approved"))
			continue;
		if (json_is_true(json_object_get(d, "approved"))) {
			*result = json_pack("{s:s?, s:s?, s:s}", "approver", sget(d, "approver"),
					    "approved_at", sget(d, "approved_at"), "how", "replay");
			return 0;
		}
		return drb_err_set(err, DRB_EDENIED, "approval '%s' was not given: %s", uid,
				   sget(d, "reason") ?: "denied");
	}
	return drb_err_set(err, DRB_EDENIED, "replay: the recorded run has no approval for '%s'",
			   uid);
}

/* Compares the replayed outcome of each step with the recorded one. */
static json_t *compare(const json_t *recorded, const json_t *summary)
{
	json_t *diff = json_array(), *rec, *s;
	size_t i, j;

	json_array_foreach(recorded, i, rec)
	{
		const char *uid = sget(rec, "step"), *was, *now = NULL;

		if (!uid || strcmp(sget(rec, "event") ?: "", "step.end"))
			continue;
		was = sget(json_object_get(rec, "data"), "status");
		json_array_foreach(summary, j, s) if (!strcmp(sget(s, "id") ?: "", uid)) now =
		    sget(s, "status");
		if (!now || strcmp(now, was ?: ""))
			json_array_append_new(diff, json_pack("{s:s, s:s?, s:s}", "step", uid,
							      "recorded", was, "replayed",
							      now ? now : "not reached"));
	}
	json_array_foreach(summary, j, s)
	{
		int found = 0;

		json_array_foreach(recorded, i,
				   rec) if (!strcmp(sget(rec, "event") ?: "", "step.end") &&
					    !strcmp(sget(rec, "step") ?: "", sget(s, "id") ?: ""))
		    found = 1;
		if (!found)
			json_array_append_new(
			    diff, json_pack("{s:s?, s:s, s:s?}", "step", sget(s, "id"), "recorded",
					    "not reached", "replayed", sget(s, "status")));
	}
	return diff;
}

int drb_engine_replay(const char *audit_path, const char *runbook, const drb_engine_opts *o,
		      drb_run_result *out, drb_err *err)
{
	json_t *records = NULL, *sd, *end = NULL, *rec;
	drb_runbook *rb = NULL;
	drb_engine_opts o2 = *o;
	drb_run r;
	int rc, inited = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->rto_s = out->rpo_s = -1;
	if ((rc = drb_audit_read(audit_path, &records, err)))
		goto out;
	sd = json_object_get(json_array_get(records, 0), "data");
	if (strcmp(sget(json_array_get(records, 0), "event") ?: "", "run.start")) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: not a drbook run log (no run.start)",
				 audit_path);
		goto out;
	}
	if (!strcmp(sget(sd, "mode") ?: "", "plan")) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is the log of a plan: nothing to replay",
				 audit_path);
		goto out;
	}
	if ((rc = drb_log_runbook(records, audit_path, runbook, &rb, err)))
		goto out;
	json_array_foreach(records, i, rec) if (!strcmp(sget(rec, "event") ?: "", "run.end")) end =
	    json_object_get(rec, "data");
	o2.drill = json_is_true(json_object_get(sd, "drill"));
	o2.mode = DRB_MODE_RUN;
	o2.incident_start = sget(sd, "incident_start");
	rc = drb_run_init(&r, rb, &o2, json_deep_copy(json_object_get(sd, "params")), err);
	inited = 1;
	if (rc)
		goto out;
	r.replay = 1;
	r.recorded = json_incref(records);
	r.used = calloc(json_array_size(records) + 1, 1);
	if (!r.used) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(r.run_id, sizeof(r.run_id), "%s", sget(json_array_get(records, 0), "run") ?: "");
	if (o->audit_path &&
	    (rc = drb_audit_create(&r.audit, o->audit_path, r.run_id, o->key, o->key_len, err)))
		goto out;
	{
		json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "replay_of", audit_path, "runbook",
				      rb->path, "runbook_sha256", rb->sha256, "mode", "replay");

		drb_emit(&r, "run.start", NULL, d, err);
		json_decref(d);
	}
	if ((rc = drb_run_body(&r, out, 1)))
		goto out;
	/* the replay's own clock means nothing: the recorded RTO stands */
	out->rto_s = end && json_is_number(json_object_get(end, "rto_s"))
			 ? json_number_value(json_object_get(end, "rto_s"))
			 : -1;
	out->plan = compare(records, out->steps);
	if (end && strcmp(out->status, sget(end, "status") ?: ""))
		json_array_append_new(out->plan,
				      json_pack("{s:s, s:s?, s:s}", "step", "(run)", "recorded",
						sget(end, "status"), "replayed", out->status));
	snprintf(out->status, sizeof(out->status), "%s",
		 json_array_size(out->plan) ? "diverged" : "identical");
	out->exit_code = json_array_size(out->plan) ? DRB_EXIT_FAILED : DRB_EXIT_OK;
out:
	if (inited) {
		json_decref(r.recorded);
		free(r.used);
		drb_run_fini(&r);
	}
	drb_runbook_free(rb);
	json_decref(records);
	return rc;
}
