/* Replay: re-run a recorded run's decisions offline. The runbook (the recorded one, or a
 * changed one given with --runbook) executes again in the sandbox with the recorded
 * parameters, but every provider call is answered by the seam from the log's call records
 * (the next unused record of the same step, service and operation), approvals are the recorded
 * ones, and nothing waits. Then each step's outcome is compared with the recorded one: a
 * reviewer sees whether the same answers lead to the same decisions. */
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

/* The replay's own step.end records, caught on their way to the caller's sink: the replayed
 * status and result of each step, by its id. */
typedef struct capture {
	drb_sink next;
	pthread_mutex_t mu;
	json_t *ends; /* {uid: step.end data}, owned */
} capture;

static void capture_event(void *ud, const char *ts, const char *event, const char *step,
			  const json_t *data)
{
	capture *c = ud;

	if (step && drb_event_of(event) == DRB_EV_STEP_END) {
		pthread_mutex_lock(&c->mu);
		json_object_set_new(c->ends, step, json_deep_copy(data));
		pthread_mutex_unlock(&c->mu);
	}
	if (c->next.event)
		c->next.event(c->next.ud, ts, event, step, data);
}

static int capture_ask(void *ud, const char *step, const char *message, double timeout_s)
{
	capture *c = ud;

	return c->next.ask ? c->next.ask(c->next.ud, step, message, timeout_s) : -1;
}

/* A value as the difference list shows it: strings as they are, the rest as compact JSON
 * (cut at 300 bytes). Returns a new string, or NULL for none. */
static json_t *shown(const json_t *v)
{
	char *txt;
	json_t *out;

	if (!v)
		return NULL;
	if (json_is_string(v))
		return json_incref((json_t *)v);
	txt = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!txt)
		return NULL;
	if (strlen(txt) > 300)
		memcpy(txt + 290, "...(cut)", 9);
	out = json_string(txt);
	free(txt);
	return out;
}

static void differ(json_t *diff, const char *step, const char *field, json_t *was, json_t *now)
{
	json_t *d = json_pack("{s:s, s:s, s:o?, s:o?}", "step", step, "field", field, "recorded",
			      was, "replayed", now);

	if (!json_object_get(d, "recorded"))
		json_object_set_new(d, "recorded", json_string("(none)"));
	if (!json_object_get(d, "replayed"))
		json_object_set_new(d, "replayed", json_string("(none)"));
	json_array_append_new(diff, d);
}

static json_t *number(double v)
{
	char buf[64];

	if (v < 0)
		return json_string("unknown");
	snprintf(buf, sizeof(buf), "%.3f", v);
	return json_string(buf);
}

/* Compares the replayed outcome of each step (status and result) with the recorded one. */
static json_t *compare(const json_t *recorded, const drb_step_line *summary, size_t n,
		       const json_t *ends)
{
	json_t *diff = json_array(), *rec;
	size_t i;

	json_array_foreach(recorded, i, rec)
	{
		const char *uid = sget(rec, "step"), *was, *now = NULL;
		const json_t *d = json_object_get(rec, "data"), *rw, *rn;

		if (!uid || drb_event_of(sget(rec, "event")) != DRB_EV_STEP_END)
			continue;
		was = sget(d, "status");
		for (size_t j = 0; j < n; j++)
			if (!strcmp(summary[j].id, uid))
				now = summary[j].status;
		if (!now || strcmp(now, was ?: "")) {
			differ(diff, uid, "status", json_string(was ?: "(none)"),
			       json_string(now ? now : "not reached"));
			continue;
		}
		rw = json_object_get(d, "result");
		rn = json_object_get(json_object_get(ends, uid), "result");
		if (json_is_null(rw))
			rw = NULL;
		if (json_is_null(rn))
			rn = NULL;
		/* an answer too large for the log was not kept: nothing to compare it with */
		if (json_is_string(rw) &&
		    !strcmp(json_string_value(rw), "(too large for the audit log)"))
			continue;
		if ((rw || rn) && !(rw && rn && json_equal(rw, rn)))
			differ(diff, uid, "result", shown(rw), shown(rn));
	}
	for (size_t j = 0; j < n; j++) {
		int found = 0;

		json_array_foreach(recorded, i,
				   rec) if (drb_event_of(sget(rec, "event")) == DRB_EV_STEP_END &&
					    !strcmp(sget(rec, "step") ?: "", summary[j].id))
		    found = 1;
		if (!found)
			differ(diff, summary[j].id, "status", json_string("not reached"),
			       json_string(summary[j].status));
	}
	return diff;
}

/* The run's verdict, RTO and RPO against the recorded run.end (each where both are known). */
static void compare_run(json_t *diff, const json_t *end, const drb_run_result *out)
{
	const json_t *rto = json_object_get(end, "rto_s"), *rpo = json_object_get(end, "rpo_s");

	if (!end)
		return;
	if (strcmp(out->status, sget(end, "status") ?: ""))
		differ(diff, "(run)", "status", json_string(sget(end, "status") ?: "(none)"),
		       json_string(out->status));
	/* the recorded RTO was measured a moment after its last step.end was written */
	if (json_is_number(rto) && out->rto_s >= 0 &&
	    fabs(json_number_value(rto) - out->rto_s) > 1.0)
		differ(diff, "(run)", "rto_s", number(json_number_value(rto)), number(out->rto_s));
	if (json_is_number(rpo) && out->rpo_s >= 0 &&
	    fabs(json_number_value(rpo) - out->rpo_s) > 0.001)
		differ(diff, "(run)", "rpo_s", number(json_number_value(rpo)), number(out->rpo_s));
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
	capture cap = {.ends = json_object()};

	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&cap.mu, NULL);
	out->rto_s = out->rpo_s = -1;
	if ((rc = drb_log_verify(audit_path, o->key, o->key_len, "replay", err)))
		goto out;
	if ((rc = drb_audit_read(audit_path, &records, err)))
		goto out;
	sd = json_object_get(json_array_get(records, 0), "data");
	if (drb_event_of(sget(json_array_get(records, 0), "event")) != DRB_EV_RUN_START) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: not a drbook run log (no run.start)",
				 audit_path);
		goto out;
	}
	if (!strcmp(sget(sd, "mode") ?: "", "plan")) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is the log of a plan: nothing to replay",
				 audit_path);
		goto out;
	}
	if ((rc = drb_log_runbook(records, audit_path, runbook, o->lua_dir, &rb, err)))
		goto out;
	json_array_foreach(records, i, rec) if (drb_event_of(sget(rec, "event")) == DRB_EV_RUN_END)
	    end = json_object_get(rec, "data");
	cap.next = o->sink;
	o2.sink.event = capture_event;
	o2.sink.ask = capture_ask;
	o2.sink.ud = &cap;
	o2.drill = json_is_true(json_object_get(sd, "drill"));
	o2.shadow = !strcmp(sget(sd, "mode") ?: "", "shadow"); /* setup and teardown replay too */
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

		drb_emit(&r, DRB_EV_RUN_START, NULL, d, err);
		json_decref(d);
	}
	if ((rc = drb_run_body(&r, out, 1)))
		goto out;
	out->plan = compare(records, out->steps, out->n_steps, cap.ends);
	compare_run(out->plan, end, out);
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
	json_decref(cap.ends);
	pthread_mutex_destroy(&cap.mu);
	return rc;
}
