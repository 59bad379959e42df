/* Resume: continue a run that was killed, from its audit log. Completed steps are not run
 * again (their results are restored); a step that started but did not end is re-run only when
 * that is known to be safe (idempotent: true, read-only, an approval, or its done_when says it
 * did not take effect); otherwise resume refuses with exit 3 and names the step that needs
 * --assume-done or --retry. The resumed run appends to the same log. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <drbook/util.h>

#include <drbook/exec.h>
#include "engine_int.h"

static int listed(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

drb_resume_decision drb_resume_decide(const drb_step *s, const drb_action *a, int assume_done,
				      int retry, const char **why)
{
	if (assume_done) {
		*why = "--assume-done";
		return DRB_RESUME_ASSUME_DONE;
	}
	if (retry) {
		*why = "--retry";
		return DRB_RESUME_RERUN;
	}
	if (s->done_when.src || s->done_when_call) {
		*why = "done_when";
		return DRB_RESUME_CHECK;
	}
	if (s->idempotent) {
		*why = "idempotent";
		return DRB_RESUME_RERUN;
	}
	if (a && (a->mode == DRB_ACT_RO || (a->mode == DRB_ACT_STEP && s->read_only))) {
		*why = "read-only: safe to repeat";
		return DRB_RESUME_RERUN;
	}
	if (a == &drb_action_approval) {
		*why = "approval: asked again";
		return DRB_RESUME_RERUN;
	}
	*why = "not idempotent";
	return DRB_RESUME_BLOCKED;
}

/* "scale[3]" -> the step "scale"; "promote" -> "promote". */
static const drb_step *step_of(const drb_runbook *rb, const char *uid)
{
	char id[256];

	snprintf(id, sizeof(id), "%s", uid);
	id[strcspn(id, "[")] = '\0';
	return drb_runbook_step(rb, id);
}

static int refuse(drb_run_result *out, const char *run_id, const char *path, int code,
		  const char *status, drb_err *err)
{
	out->exit_code = code;
	snprintf(out->status, sizeof(out->status), "%s", status);
	snprintf(out->run_id, sizeof(out->run_id), "%s", run_id ? run_id : "");
	snprintf(out->audit_path, sizeof(out->audit_path), "%s", path);
	snprintf(out->error, sizeof(out->error), "%s", err->msg);
	return 0;
}

/* 1 (err naming it) when an exec child recorded for step (or one of its for_each children
 * "step[N]") still runs on this machine: running the step again would start a second copy
 * beside it. The pid alone is not enough (pids are reused): host, boot and the kernel's start
 * time must all match. A child recorded on another host cannot be checked from here. */
static int child_still_runs(const json_t *records, const char *step, drb_err *err)
{
	char boot[64] = "", host[256] = "";
	size_t i, n = strlen(step);
	json_t *rec;

	drb_exec_boot_id(boot, sizeof(boot));
	gethostname(host, sizeof(host) - 1);
	json_array_foreach(records, i, rec)
	{
		const char *ev = json_string_value(json_object_get(rec, "event"));
		const char *id = json_string_value(json_object_get(rec, "step"));
		const json_t *d = json_object_get(rec, "data");
		int pid = (int)json_integer_value(json_object_get(d, "pid"));
		long long ticks = json_integer_value(json_object_get(d, "start_ticks"));

		if (!ev || drb_event_of(ev) != DRB_EV_EXEC_CHILD || !id || strncmp(id, step, n) ||
		    (id[n] && id[n] != '['))
			continue;
		if (pid <= 0 || ticks < 0 ||
		    strcmp(json_string_value(json_object_get(d, "boot_id")) ?: "", boot) ||
		    strcmp(json_string_value(json_object_get(d, "host")) ?: "", host) ||
		    drb_exec_start_ticks(pid) != ticks)
			continue;
		drb_err_set(err, DRB_EDENIED,
			    "--retry %s: its program '%s' (pid %d, step %s) still runs from the "
			    "interrupted run; running the step again would start a second copy. "
			    "Stop it first (kill -- -%d) or let it finish",
			    step, json_string_value(json_object_get(d, "program")) ?: "?", pid, id,
			    pid);
		return 1;
	}
	return 0;
}

/* The interrupted step's request was answered (a call record): the provider took it and may
 * still be carrying it out (an RDS promotion takes minutes), so running the step again now
 * would ask for it twice. Its done_when is asked again, every `every` (2 s unless set), until
 * it says done or the step's timeout (10 minutes unless set) or the run's deadline passes, as
 * DESIGN.md's "effects in flight" says. */
static int wait_in_flight(drb_run *r, const drb_step *s, int *done, drb_err *err)
{
	double every = s->every_s > 0 ? s->every_s : 2.0;
	double end = drb_mono_now() + (s->timeout_s > 0 ? s->timeout_s : 600.0);
	int rc = 0;

	if (r->deadline > 0 && r->deadline < end)
		end = r->deadline;
	*done = 0;
	while (!*done && drb_mono_now() + every <= end && !(r->cancel && *r->cancel)) {
		for (double t = 0; t < every && !(r->cancel && *r->cancel); t += 0.1)
			drb_sleep_s(0.1);
		if ((rc = drb_step_done_when(r, s, done, err)))
			return rc;
	}
	return 0;
}

int drb_engine_resume(const char *audit_path, const drb_engine_opts *o, drb_run_result *out,
		      drb_err *err)
{
	json_t *records = NULL, *first, *sd, *rec, *decisions = NULL, *blocked = NULL, *leases;
	drb_runbook *rb = NULL;
	drb_run r;
	drb_engine_opts o2 = *o;
	drb_lockset *locks = NULL;
	int rc, inited = 0, any_step = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->rto_s = out->rpo_s = -1;
	if ((rc = drb_log_verify(audit_path, o->key, o->key_len, "resume", err)))
		goto out;
	if ((rc = drb_audit_read(audit_path, &records, err)))
		goto out;
	first = json_array_get(records, 0);
	sd = json_object_get(first, "data");
	if (!first ||
	    drb_event_of(json_string_value(json_object_get(first, "event"))) != DRB_EV_RUN_START) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: not a drbook run log (no run.start)",
				 audit_path);
		goto out;
	}
	json_array_foreach(records, i, rec)
	{
		const char *ev = json_string_value(json_object_get(rec, "event"));

		if (ev && drb_event_of(ev) == DRB_EV_RUN_END) {
			drb_err_set(err, DRB_EDENIED,
				    "run %s already ended (%s): nothing to resume",
				    json_string_value(json_object_get(first, "run")),
				    json_string_value(
					json_object_get(json_object_get(rec, "data"), "status"))
					?: "?");
			rc = refuse(out, json_string_value(json_object_get(first, "run")),
				    audit_path, DRB_EXIT_REFUSED, "refused", err);
			goto out;
		}
		if (ev && drb_event_of(ev) == DRB_EV_ROLLBACK_BEGIN) {
			drb_err_set(err, DRB_EDENIED,
				    "run was rolling back when it stopped: check the rollback "
				    "actions in the log by hand; resume will not guess");
			rc = refuse(out, json_string_value(json_object_get(first, "run")),
				    audit_path, DRB_EXIT_REFUSED, "refused", err);
			goto out;
		}
	}
	if (!strcmp(json_string_value(json_object_get(sd, "mode")) ?: "", "plan")) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is the log of a plan: nothing to resume",
				 audit_path);
		goto out;
	}
	if (!strcmp(json_string_value(json_object_get(sd, "mode")) ?: "", "shadow")) {
		/* a rehearsal has nothing to finish: what matters is that its copies go away */
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s is the log of a shadow drill: it is not resumed; remove what "
				 "its setup created (its shadow.setup step.end records list them) "
				 "and run the drill again",
				 audit_path);
		goto out;
	}
	{
		/* on another machine the recorded runbook may be missing: use the copy fetched
		 * from the evidence bucket, if it is the same file (sha256) */
		const char *rp = json_string_value(json_object_get(sd, "runbook_path")),
			   *sha = json_string_value(json_object_get(sd, "runbook_sha256")),
			   *fb = o->runbook_fallback && (!rp || access(rp, R_OK) != 0)
				     ? o->runbook_fallback
				     : NULL;

		if ((rc = drb_log_runbook(records, audit_path, fb, o->lua_dir, &rb, err)))
			goto out;
		if (fb && (!sha || strcmp(rb->sha256, sha))) {
			rc = drb_err_set(
			    err, DRB_EINVAL,
			    "runbook %s from the evidence bucket is not the one the run "
			    "started with (sha256 differs)",
			    fb);
			goto out;
		}
	}
	o2.drill = json_is_true(json_object_get(sd, "drill"));
	o2.mode = DRB_MODE_RUN;
	if (json_is_string(json_object_get(sd, "incident_start")))
		o2.incident_start = json_string_value(json_object_get(sd, "incident_start"));
	rc = drb_run_init(&r, rb, &o2, json_deep_copy(json_object_get(sd, "params")), err);
	inited = 1;
	if (rc)
		goto out;
	r.resuming = 1;
	snprintf(r.run_id, sizeof(r.run_id), "%s",
		 json_string_value(json_object_get(first, "run")));
	{
		int64_t ms;

		if (drb_rfc3339_parse(json_string_value(json_object_get(first, "ts")), &ms) == 0)
			r.t0_wall = ms;
	}
	if (rb->deadline_s > 0)
		r.deadline = r.t0 + rb->deadline_s - (double)(drb_wall_ms() - r.t0_wall) / 1000.0;

	/* what the log says happened */
	json_array_foreach(records, i, rec)
	{
		const char *ev = json_string_value(json_object_get(rec, "event"));
		const char *uid = json_string_value(json_object_get(rec, "step"));
		json_t *d = json_object_get(rec, "data");
		drb_prior *p;

		if (!ev || !uid)
			continue;
		if (drb_event_of(ev) == DRB_EV_CALL && (p = drb_prior_find(&r, uid)) != NULL) {
			p->calls++;
			continue;
		}
		if (drb_event_of(ev) == DRB_EV_STEP_START || drb_event_of(ev) == DRB_EV_STEP_END) {
			const drb_step *s = step_of(rb, uid);

			if (!s) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "the log names step '%s' that the runbook lacks",
						 uid);
				goto out;
			}
			if (!(p = drb_prior_get(&r, uid))) {
				rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
				goto out;
			}
			if (s >= rb->steps && s < rb->steps + rb->n_steps)
				any_step = 1;
			if (drb_event_of(ev) == DRB_EV_STEP_START) {
				p->started = 1;
				p->ended = 0;
				p->calls = 0;
				json_decref(p->item);
				p->item = json_incref(json_object_get(d, "item"));
			} else {
				p->end_order = json_integer_value(json_object_get(rec, "seq"));
				p->ended = 1;
				snprintf(p->status, sizeof(p->status), "%s",
					 json_string_value(json_object_get(d, "status"))
					     ?: "failed");
				json_decref(p->result);
				p->result = json_incref(json_object_get(d, "result"));
			}
		}
	}
	for (i = 0; i < o->n_assume_done; i++)
		if (!drb_prior_find(&r, o->assume_done[i])) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "--assume-done %s: that step did not start in this run",
					 o->assume_done[i]);
			goto out;
		}
	for (i = 0; i < o->n_retry_steps; i++)
		if (!drb_prior_find(&r, o->retry_steps[i])) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "--retry %s: that step did not start in this run",
					 o->retry_steps[i]);
			goto out;
		}
	for (i = 0; i < o->n_retry_steps; i++)
		if (child_still_runs(records, o->retry_steps[i], err)) {
			rc = refuse(out, r.run_id, audit_path, DRB_EXIT_REFUSED, "refused", err);
			goto out;
		}

	/* units completed from now on are newer than every one in the log */
	r.unit_order = (int64_t)json_array_size(records) + 1;
	if ((rc = drb_audit_open_append(&r.audit, audit_path, o->key, o->key_len, err)) ||
	    (o->sign_key && (rc = drb_audit_sign_with(r.audit, o->sign_key, err))))
		goto out;
	{
		/* keep shipping where the run shipped (or where --evidence says) */
		const char *ev =
		    o->evidence ? o->evidence : json_string_value(json_object_get(sd, "evidence"));

		if (ev && !strcmp(ev, "none"))
			ev = NULL; /* the operator's explicit choice to go on without a copy */
		if (ev && (rc = drb_evidence_open(&r.evidence, ev, r.run_id, audit_path, err)))
			goto out;
	}
	if (drb_run_lock_take(&locks, rb, json_object_get(sd, "lock"), 0, r.run_id, r.cancel, err)) {
		rc = refuse(out, r.run_id, audit_path, DRB_EXIT_REFUSED, "refused", err);
		goto out;
	}
	/* results of finished top-level steps, so done_when checks can see them */
	for (i = 0; i < r.n_prior; i++) {
		drb_prior *p = &r.prior[i];
		const drb_step *s = drb_runbook_step(rb, p->uid);

		if (s && p->ended && strcmp(p->status, "failed")) {
			drb_lua_lock(r.lua);
			drb_lua_set_step(r.lua, s->id, p->status, p->result, err);
			drb_lua_unlock(r.lua);
		}
	}
	decisions = json_object();
	blocked = json_array();
	for (i = 0; i < r.n_prior; i++) {
		drb_prior *p = &r.prior[i];
		const drb_step *s = step_of(rb, p->uid);
		const drb_action *a = drb_engine_action(s->action);
		const char *why;
		int done = 0;

		if (p->ended && strcmp(p->status, "failed"))
			continue;
		if (s->for_each.src && !strchr(p->uid, '['))
			continue; /* the children decide */
		switch (drb_resume_decide(s, a, listed(o->assume_done, o->n_assume_done, p->uid),
					  listed(o->retry_steps, o->n_retry_steps, p->uid), &why)) {
		case DRB_RESUME_ASSUME_DONE:
			snprintf(p->status, sizeof(p->status), "assumed_done");
			break;
		case DRB_RESUME_RERUN:
			snprintf(p->status, sizeof(p->status), "rerun");
			break;
		case DRB_RESUME_CHECK:
			rc = drb_step_done_when(&r, s, &done, err);
			if (rc == 0 && !done && p->calls > 0) {
				rc = wait_in_flight(&r, s, &done, err);
				if (rc == 0 && done) {
					snprintf(p->status, sizeof(p->status), "verified_done");
					why = "done_when: took effect (was in flight)";
					break;
				}
			}
			if (rc) {
				drb_err_prefix(err, "step '%s': done_when: ", p->uid);
				json_array_append_new(
				    blocked,
				    json_pack("{s:s, s:s}", "step", p->uid, "error", err->msg));
				continue;
			}
			snprintf(p->status, sizeof(p->status), done ? "verified_done" : "rerun");
			why = done ? "done_when: took effect" : "done_when: did not take effect";
			break;
		case DRB_RESUME_BLOCKED:
			json_array_append_new(blocked, json_pack("{s:s}", "step", p->uid));
			continue;
		}
		p->ended = 0;
		json_object_set_new(decisions, p->uid, json_string(why));
	}
	if (json_array_size(blocked)) {
		json_t *b0 = json_array_get(blocked, 0), *d;
		const char *uid = json_string_value(json_object_get(b0, "step"));
		const char *e = json_string_value(json_object_get(b0, "error"));

		if (e)
			drb_err_set(err, DRB_EDENIED, "cannot resume: %s", e);
		else
			drb_err_set(
			    err, DRB_EDENIED,
			    "step '%s' started but did not finish and is not idempotent: "
			    "check whether it took effect, then resume with --assume-done %s "
			    "or --retry %s",
			    uid, uid, uid);
		d = json_pack("{s:O, s:s}", "blocked", blocked, "error", err->msg);
		drb_emit(&r, DRB_EV_RESUME_REFUSED, NULL, d, NULL);
		json_decref(d);
		rc = refuse(out, r.run_id, audit_path, DRB_EXIT_REFUSED, "refused", err);
		goto out;
	}
	{
		char opbuf[256];
		json_t *d;

		d = json_pack("{s:O, s:i, s:s}", "decisions", decisions, "pid", (int)getpid(),
			      "operator", drb_operator(opbuf, sizeof(opbuf)));
		if (d && (leases = drb_lockset_leases(locks)))
			json_object_set_new(d, "lease", leases);
		rc = drb_emit(&r, DRB_EV_RUN_RESUME, NULL, d, err);
		json_decref(d);
		if (rc)
			goto out;
	}
	rc = drb_run_body(&r, out, !any_step);
out:
	json_decref(records);
	json_decref(decisions);
	json_decref(blocked);
	drb_lockset_release(locks);
	if (inited)
		drb_run_fini(&r);
	drb_runbook_free(rb);
	return rc;
}
