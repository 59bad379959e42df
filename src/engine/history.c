/* A run's history, as its audit log tells it: the one interface through which resume (what
 * each step did before the run was killed) and replay (the recorded answers, approvals and
 * times) reach a log. The engine asks here, never resume.c or replay.c. */
#include <math.h>
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
	    {"shadow_violation", DRB_ESHADOW},
	};

	for (size_t i = 0; name && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].n, name))
			return map[i].c;
	return DRB_ERR;
}

/* ---- resume: the prior record of each step ---- */

drb_prior *drb_prior_find(drb_run *r, const char *uid)
{
	for (size_t i = 0; i < r->n_prior; i++)
		if (!strcmp(r->prior[i].uid, uid))
			return &r->prior[i];
	return NULL;
}

drb_prior *drb_prior_get(drb_run *r, const char *uid)
{
	drb_prior *p = drb_prior_find(r, uid), *v;

	if (p)
		return p;
	v = realloc(r->prior, (r->n_prior + 1) * sizeof(*v));
	if (!v)
		return NULL;
	r->prior = v;
	p = &r->prior[r->n_prior++];
	memset(p, 0, sizeof(*p));
	p->uid = strdup(uid);
	return p;
}

/* ---- replay: recorded answers, approvals and times ---- */

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
					    "approved_at", sget(d, "approved_at"), "how",
					    sget(d, "how") ?: "replay");
			return 0;
		}
		return drb_err_set(err, DRB_EDENIED, "approval '%s' was not given: %s", uid,
				   sget(d, "reason") ?: "denied");
	}
	return drb_err_set(err, DRB_EDENIED, "replay: the recorded run has no approval for '%s'",
			   uid);
}

static int reached(const drb_run *r, const char *uid)
{
	for (size_t j = 0; j < r->n_summary; j++)
		if (!strcmp(r->summary[j].id, uid))
			return 1;
	return 0;
}

double drb_replay_rto(drb_run *r)
{
	const json_t *start = json_array_get(r->recorded, 0), *rec;
	int64_t from = 0, to = 0, t;
	size_t i;

	if (drb_rfc3339_parse(sget(start, "ts") ?: "", &from))
		return -1;
	to = from;
	if (r->incident_ms)
		from = r->incident_ms;
	pthread_mutex_lock(&r->mu);
	json_array_foreach(r->recorded, i, rec)
	{
		if (drb_event_of(sget(rec, "event")) == DRB_EV_STEP_END &&
		    !drb_rfc3339_parse(sget(rec, "ts") ?: "", &t) && t > to &&
		    reached(r, sget(rec, "step") ?: ""))
			to = t;
	}
	pthread_mutex_unlock(&r->mu);
	return (double)(to - from) / 1000.0;
}

/* ---- the log a run is resumed or replayed from ---- */

int drb_log_runbook(const json_t *records, const char *audit_path, const char *override,
		    const char *lua_dir, drb_runbook **rb, drb_err *err)
{
	const json_t *sd = json_object_get(json_array_get(records, 0), "data");
	const char *path = override,
		   *sha = json_string_value(json_object_get(sd, "runbook_sha256"));
	drb_diags diags;
	int rc = 0;

	*rb = NULL;
	if (!path)
		path = json_string_value(json_object_get(sd, "runbook_path"));
	if (!path)
		path = json_string_value(json_object_get(sd, "runbook"));
	if (!path || !sha)
		return drb_err_set(err, DRB_EINVAL, "%s: run.start lacks the runbook", audit_path);
	drb_diags_init(&diags, path);
	if (drb_engine_load(path, lua_dir, rb, &diags)) {
		rc = drb_err_set(err, DRB_EINVAL, "runbook %s does not load (%zu problems%s%s)",
				 path, diags.n, diags.n ? ", first: " : "",
				 diags.n ? diags.v[0].msg : "");
		goto out;
	}
	if (!override && strcmp((*rb)->sha256, sha)) {
		rc = drb_err_set(
		    err, DRB_EINVAL,
		    "runbook %s changed since the run started (sha256 %.12s, now %.12s): "
		    "restore the original",
		    path, sha, (*rb)->sha256);
		drb_runbook_free(*rb);
		*rb = NULL;
	}
out:
	drb_diags_free(&diags);
	return rc;
}

int drb_log_verify(const char *audit_path, const unsigned char *key, size_t key_len,
		   const char *verb, drb_err *err)
{
	/* nothing is trusted before the chain is: a tampered log is refused */
	drb_verify_result vr;
	int rc;

	memset(&vr, 0, sizeof(vr));
	if ((rc = drb_audit_verify(audit_path, key, key_len, &vr, err)))
		return rc;
	if (vr.kind != DRB_VERIFY_OK && vr.kind != DRB_VERIFY_TRUNCATED)
		return drb_err_set(err, DRB_EINTEGRITY, "%s:%ld: %s: refusing to %s", audit_path,
				   vr.line, vr.msg, verb);
	return 0;
}
