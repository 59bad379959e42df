/* A run from start to end: parameters, lock, audit log, Lua state, preflight, the steps in
 * order, the failure policy (abort, rollback, continue), notifications and the final verdict
 * with RTO/RPO. Every provider call goes through the seam (seam.c). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <drbook/util.h>

#include "engine_int.h"

#define DRB_VERSION "0.1.0"

/* ---- rollback --------------------------------------------------------------------------- */

static int unit_newer_first(const void *pa, const void *pb)
{
	const drb_unit *a = pa, *b = pb;

	return a->order > b->order ? -1 : a->order < b->order;
}

/* Runs the compensations of completed units, the newest completed first (parallel branches
 * complete in any order; resume restores units in the order of their step.end records).
 * Returns the number that failed. */
static int rollback(drb_run *r, const char *reason)
{
	int failed = 0;
	json_t *d = json_pack("{s:s, s:I}", "reason", reason, "units", (json_int_t)r->n_units);
	drb_err e = {0};

	drb_emit(r, DRB_EV_ROLLBACK_BEGIN, NULL, d, &e);
	json_decref(d);
	pthread_mutex_lock(&r->mu);
	if (r->n_units > 1)
		qsort(r->units, r->n_units, sizeof(*r->units), unit_newer_first);
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < r->n_units; i++) {
		drb_unit *u = &r->units[i];
		const drb_step *s = u->step;
		const drb_call_spec *c = s->rollback;
		const drb_action *a;
		json_t *args = NULL, *res = NULL, *data;
		char chunk[512];
		double t0 = drb_mono_now();
		int rc;

		if (!c)
			continue;
		if (*r->cancel) {
			/* a second signal: the operator chose to leave the rest as it is */
			data = json_pack("{s:s, s:s}", "action", c->action, "reason",
					 "skipped: a second signal stopped the rollback");
			drb_emit(r, DRB_EV_ROLLBACK_SKIPPED, u->uid, data, &e);
			json_decref(data);
			failed++;
			continue;
		}
		drb_err_clear(&e);
		a = drb_engine_action(c->action);
		snprintf(chunk, sizeof(chunk), "%s:%d:%d (rollback)", r->rb->path, c->pos.line,
			 c->pos.col);
		drb_lua_lock(r->lua);
		rc = drb_bind(r, u->item ? (s->as ? s->as : "item") : NULL, u->item, u->result, &e);
		if (!rc)
			rc = drb_lua_interpolate(r->lua, c->with, chunk, &args, &e);
		drb_lua_unlock(r->lua);
		data = json_pack("{s:s, s:O?}", "action", c->action, "with", args);
		drb_emit(r, DRB_EV_ROLLBACK_START, u->uid, data, &e);
		json_decref(data);
		if (!rc && !a)
			rc = drb_err_set(&e, DRB_EINVAL, "unknown action '%s'", c->action);
		if (!rc) {
			drb_step tmp = *s;

			tmp.script = c->script;
			tmp.read_only = 0;
			drb_vars v = {u->item ? (s->as ? s->as : "item") : NULL, u->item, u->result};

			rc = drb_invoke(r, a, &tmp, u->uid, &v, args, drb_mono_now() + 600, &res, &e);
		}
		data = json_pack("{s:s, s:I, s:O?}", "status", rc ? "failed" : "ok", "duration_ms",
				 (json_int_t)llround((drb_mono_now() - t0) * 1000), "result", res);
		if (rc) {
			json_object_set_new(data, "error", json_string(e.msg));
			failed++;
		}
		drb_emit(r, DRB_EV_ROLLBACK_END, u->uid, data, &e);
		json_decref(data);
		json_decref(args);
		json_decref(res);
	}
	return failed;
}

const char *drb_target_verdict(double measured, double target)
{
	if (target < 0 || measured < 0)
		return "unknown";
	return measured <= target ? "met" : "missed";
}

/* ---- notifications ---------------------------------------------------------------------- */

/* run.start's mode and run.mode: run, plan or readiness. */
static const char *mode_name(const drb_engine_opts *o)
{
	if (o->mode != DRB_MODE_PLAN)
		return o->shadow ? "shadow" : "run";
	return o->readiness ? "readiness" : "plan";
}

/* The global `run`: {id, mode, started_at, incident_start, drill, event, status, error};
 * mode is run, shadow, plan or readiness (a preflight check may skip itself in a readiness check:
 * `when: run.mode ~= "readiness"`); event,
 * status and error only while a notification is built; at the end also rto_s, rpo_s (where
 * measured) and targets {rto, rpo} (met, missed or unknown), so a notification can say them. */
static void set_run_global(drb_run *r, const char *event, const char *status, const char *error)
{
	char started[32], incident[32];
	json_t *v;
	drb_err e = {0};

	drb_rfc3339_ms(r->t0_wall, started);
	if (r->incident_ms)
		drb_rfc3339_ms(r->incident_ms, incident);
	v = json_pack("{s:s, s:s, s:s, s:s?, s:b, s:s?, s:s?, s:s?}", "id", r->run_id, "mode",
		      mode_name(r->o), "started_at", started, "incident_start",
		      r->incident_ms ? incident : NULL, "drill", r->o->drill, "event", event,
		      "status", status, "error", error && *error ? error : NULL);
	if (v && status && r->end_info)
		json_object_update(v, r->end_info);
	if (v)
		drb_lua_set_global(r->lua, "run", v, &e);
	json_decref(v);
}

/* A notification tells people about the run; it does not change the system being recovered.
 * So it is sent in every phase of a run (also after a refused preflight, where the phase is
 * still read-only), it never counts as a change (a later guard failure stays a refusal,
 * exit 3), and a plan sends none (a plan calls no mutating action). */
static void notify(drb_run *r, const char *when, const char *status, const char *error)
{
	int saved_ro = r->phase_ro, saved_changed;
	json_t *e0, *red;

	if (r->o->mode == DRB_MODE_PLAN && !r->o->readiness)
		return;
	/* the error may quote a secret parameter: people get what the log gets */
	e0 = json_pack("{s:s?}", "error", error);
	red = e0 ? drb_redact(r, e0) : NULL;
	json_decref(e0);
	pthread_mutex_lock(&r->mu);
	saved_changed = r->changed;
	pthread_mutex_unlock(&r->mu);
	r->phase_ro = 0;
	/* the runbook's own, then the caller's (a game-day drill's, from its schedule) */
	for (size_t i = 0; i < r->rb->n_notify + r->o->n_notify; i++) {
		const drb_notify *n =
		    i < r->rb->n_notify ? &r->rb->notify[i] : &r->o->notify[i - r->rb->n_notify];
		const drb_action *a;
		json_t *args = NULL, *res = NULL;
		drb_step tmp = {0};
		drb_err e = {0};
		int hit = 0;
		char uid[64];

		for (size_t j = 0; j < n->n_on; j++)
			if (!strcmp(n->on[j], when))
				hit = 1;
		if (!hit || !(a = drb_engine_action(n->call.action)))
			continue;
		if (r->o->readiness && i < r->rb->n_notify)
			continue; /* a readiness check is not a run: the runbook's are not for it */
		if (i < r->rb->n_notify)
			snprintf(uid, sizeof(uid), "notify[%zu]", i + 1);
		else
			snprintf(uid, sizeof(uid), "gameday.notify[%zu]", i - r->rb->n_notify + 1);
		drb_lua_lock(r->lua);
		set_run_global(r, when, status, json_string_value(json_object_get(red, "error")));
		if (drb_lua_interpolate(r->lua, n->call.with, "notify", &args, &e) != 0)
			args = NULL;
		drb_lua_unlock(r->lua);
		tmp.id = uid;
		tmp.script = n->call.script;
		if (args &&
		    drb_invoke(r, a, &tmp, uid, NULL, args, drb_mono_now() + 60, &res, &e) == 0) {
			json_decref(res);
		} else {
			json_t *d = json_pack("{s:s, s:s}", "event", when, "error", e.msg);

			drb_emit(r, DRB_EV_NOTIFY_FAILED, uid, d, &e);
			json_decref(d);
		}
		json_decref(args);
	}
	r->phase_ro = saved_ro;
	pthread_mutex_lock(&r->mu);
	r->changed = saved_changed;
	pthread_mutex_unlock(&r->mu);
	json_decref(red);
}

/* ---- the run ---------------------------------------------------------------------------- */

void drb_step_lines_free(drb_step_line *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		free(v[i].error);
	}
	free(v);
}

json_t *drb_step_lines_json(const drb_step_line *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:s*}", "id", v[i].id, "status",
				      v[i].status, "attempts", v[i].attempts, "duration_ms",
				      (json_int_t)v[i].duration_ms, "error", v[i].error);

		if (!o || json_array_append_new(a, o)) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

void drb_summary_add(drb_run *r, const char *id, const char *status, int attempts,
		     long long duration_ms, const char *error)
{
	json_t *o = NULL, *red = NULL;
	drb_step_line l = {.status = status, .duration_ms = duration_ms, .attempts = attempts};

	/* the summary is output: no secret parameter in it (a copy only when there are some) */
	if (json_array_size(r->secrets)) {
		o = json_pack("{s:s, s:s?}", "id", id, "error", error);
		red = o ? drb_redact(r, o) : NULL;
		if (!red)
			goto out;
		id = json_string_value(json_object_get(red, "id"));
		error = json_string_value(json_object_get(red, "error"));
	}
	l.id = strdup(id ? id : "");
	l.error = error ? strdup(error) : NULL;
	if (!l.id || (error && !l.error))
		goto out;
	pthread_mutex_lock(&r->mu);
	if (r->n_summary == r->cap_summary) {
		size_t cap = r->cap_summary ? 2 * r->cap_summary : 16;
		drb_step_line *v = realloc(r->summary, cap * sizeof(*v));

		if (v) {
			r->summary = v;
			r->cap_summary = cap;
		}
	}
	if (r->n_summary < r->cap_summary) {
		r->summary[r->n_summary++] = l;
		l.id = l.error = NULL;
	}
	pthread_mutex_unlock(&r->mu);
out:
	free(l.id);
	free(l.error);
	json_decref(o);
	json_decref(red);
}

void drb_run_result_free(drb_run_result *r)
{
	if (!r)
		return;
	drb_step_lines_free(r->steps, r->n_steps);
	json_decref(r->plan);
	json_decref(r->critical_path);
	json_decref(r->forecast);
	r->steps = NULL;
	r->n_steps = 0;
	r->plan = r->critical_path = r->forecast = NULL;
}

static void make_run_id(char *out, size_t n)
{
	unsigned char rnd[3] = {0};
	char ts[32];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd[0] = (unsigned char)getpid();
	drb_rfc3339_s(drb_wall_ms(), ts);
	/* 2026-11-25T16:39:06Z -> 20261125T163906Z-ab12cd */
	snprintf(out, n, "%.4s%.2s%.2sT%.2s%.2s%.2sZ-%02x%02x%02x", ts, ts + 5, ts + 8, ts + 11,
		 ts + 14, ts + 17, rnd[0], rnd[1], rnd[2]);
}

/* Lua print, one lua.print record per call, up to DRB_PRINT_STEP_MAX bytes per step (a lua
 * step's script or custom action, all its attempts) and DRB_PRINT_RUN_MAX per run: a script
 * printing in a loop must not fill the disk holding the log. Past a cap, one record says so
 * and the rest is dropped; the script itself goes on. Called under the Lua lock. */
#define DRB_PRINT_RUN_MAX ((size_t)8 * 1024 * 1024)
#define DRB_PRINT_STEP_MAX ((size_t)1024 * 1024)

static void print_to_log(void *ud, const char *line)
{
	drb_run *r = ud;
	size_t n = strlen(line), step_used = 0;
	const char *uid = drb_seam_lua_uid();
	json_t *d = NULL;
	drb_err e = {0};

	if (r->printed > DRB_PRINT_RUN_MAX)
		return;
	if (uid) {
		if (!r->print_steps && !(r->print_steps = json_object()))
			return;
		step_used = (size_t)json_integer_value(json_object_get(r->print_steps, uid));
		if (step_used > DRB_PRINT_STEP_MAX)
			return;
	}
	if (n > DRB_PRINT_RUN_MAX - r->printed) {
		r->printed = DRB_PRINT_RUN_MAX + 1;
		d = json_pack("{s:s, s:b}", "line",
			      "print output truncated: over 8 MiB in this run", "truncated", 1);
	} else if (uid && n > DRB_PRINT_STEP_MAX - step_used) {
		step_used = DRB_PRINT_STEP_MAX + 1;
		d = json_pack("{s:s, s:b}", "line",
			      "print output truncated: over 1 MiB in this step", "truncated", 1);
	} else {
		r->printed += n;
		step_used += n;
		d = json_pack("{s:s}", "line", line);
	}
	if (uid && json_object_set_new(r->print_steps, uid, json_integer((json_int_t)step_used))) {
		json_decref(d);
		return;
	}
	drb_emit(r, DRB_EV_LUA_PRINT, uid, d, &e);
	json_decref(d);
}

#define SIGNAL_REASON "interrupted by a signal"

/* ---- stop conditions (stop_when) --------------------------------------------------------- */

#define STOP_POLL_S 2.0	   /* between two checks of the alarms */
#define STOP_CALL_S 2.0	   /* one check's time budget: the watcher also watches signals */
#define STOP_DRILL_FAILS 3 /* a drill stops after this many checks in a row could not be made */

/* The alarms are the run's own bookkeeping, like the lease: the check is performed directly,
 * not logged as a call record every two seconds; its decisions are (stop_condition). */
static int stop_direct_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
			    json_t **response, drb_err *err)
{
	(void)s;
	(void)c;
	return perform(arg, response, err);
}

/* One stop_condition record: what the check decided for one alarm. */
static void stop_record(drb_run *r, const drb_stop_cond *sc, const char *state, const char *why,
			const char *error, const char *decision)
{
	json_t *d = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s}", "alarm", sc->alarm, "region",
			      sc->region, "state", state, "alarm_reason", why, "error", error,
			      "decision", decision);
	drb_err e = {0};

	if (d)
		drb_emit(r, DRB_EV_STOP_CONDITION, NULL, d, &e);
	json_decref(d);
}

/* Stops the run for a stop condition, while the conditions are armed (the steps run): 1 when
 * it did. */
static int stop_now(drb_run *r, const char *reason)
{
	int armed;

	pthread_mutex_lock(&r->mu);
	armed = r->stop_armed && !r->stop_hit && !*r->cancel; /* else stopped already */
	if (!armed) {
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	r->stop_hit = 1;
	snprintf(r->stop_cond_reason, sizeof(r->stop_cond_reason), "%s", reason);
	if (!r->stop_reason[0])
		snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", reason);
	*r->cancel = 1;
	pthread_mutex_unlock(&r->mu);
	return 1;
}

/* Checks every stop_when alarm once (one DescribeAlarms per region, through the catalog's
 * aws.cloudwatch.describe_alarms) and records a decision when an alarm's state changed since
 * the last record, when the check failed, and when it stops the run. A check that cannot be
 * made does not stop a run: the outage being recovered from may be what keeps CloudWatch
 * away. A drill stops after STOP_DRILL_FAILS such checks in a row: a rehearsal without its
 * safety net must not go on. Returns 1 when the run is to stop. */
static int stop_check(drb_run *r)
{
	const drb_runbook *rb = r->rb;
	const drb_action *a = drb_engine_action("aws.cloudwatch.describe_alarms");
	char *done = calloc(rb->n_stop_when + 1, 1);
	int stop = 0, failed = 0;

	if (!done || !a)
		goto out;
	for (size_t i = 0; i < rb->n_stop_when; i++) {
		const char *region = rb->stop_when[i].region;
		drb_seam seam = {stop_direct_call, NULL, NULL};
		drb_action_ctx ctx = {.seam = &seam,
				      .step_id = "stop_when",
				      .connections = r->connections,
				      .drill = r->o->drill,
				      .read_only = 1,
				      .deadline = drb_mono_now() + STOP_CALL_S,
				      .cancel = &r->watch_stop};
		json_t *args, *names = json_array(), *res = NULL, *alarms;
		drb_err e = {0};
		int rc;

		if (done[i])
			continue;
		/* every alarm of this region in one call */
		for (size_t j = i; names && j < rb->n_stop_when; j++)
			if (!strcmp(rb->stop_when[j].region ?: "", region ?: ""))
				json_array_append_new(names, json_string(rb->stop_when[j].alarm));
		args = json_pack("{s:o?, s:s?}", "alarm_names", names, "region", region);
		rc = args ? a->fn(&ctx, args, &res, &e)
			  : drb_err_set(&e, DRB_ENOMEM, "out of memory");
		json_decref(args);
		alarms = json_object_get(res, "alarms");
		for (size_t j = i; j < rb->n_stop_when; j++) {
			const drb_stop_cond *sc = &rb->stop_when[j];
			const json_t *hit = NULL, *al;
			const char *state = NULL, *why = NULL;
			char msg[400];
			size_t k;

			if (strcmp(sc->region ?: "", region ?: ""))
				continue;
			done[j] = 1;
			json_array_foreach(alarms, k, al)
			{
				const char *nm = json_string_value(json_object_get(al, "name"));

				if (nm && !strcmp(nm, sc->alarm))
					hit = al;
			}
			if (hit) {
				state = json_string_value(json_object_get(hit, "state"));
				why = json_string_value(json_object_get(hit, "reason"));
			}
			if (rc || !state) {
				failed = 1;
				if (rc)
					snprintf(msg, sizeof(msg), "%s", e.msg);
				else
					snprintf(msg, sizeof(msg),
						 "no alarm named '%s' in %s (DescribeAlarms)",
						 sc->alarm, region ?: "the default region");
				if (strcmp(r->stop_seen[j], "error"))
					stop_record(r, sc, NULL, NULL, msg, "continue");
				snprintf(r->stop_seen[j], sizeof(r->stop_seen[j]), "error");
				if (r->o->drill && r->stop_fails + 1 >= STOP_DRILL_FAILS && !stop) {
					char reason[300];

					snprintf(
					    reason, sizeof(reason),
					    "stop condition %s could not be checked (%d checks "
					    "in a row) in a drill",
					    sc->alarm, STOP_DRILL_FAILS);
					if (stop_now(r, reason)) {
						stop_record(r, sc, NULL, NULL, msg, "stop");
						stop = 1;
					}
				}
				continue;
			}
			if (!strcmp(state, "ALARM")) {
				char reason[300];

				snprintf(reason, sizeof(reason), "stop condition %s", sc->alarm);
				if (stop_now(r, reason)) {
					stop_record(r, sc, state, why, NULL, "stop");
					stop = 1;
				}
			} else if (strcmp(r->stop_seen[j], state)) {
				stop_record(r, sc, state, why, NULL, "continue");
			}
			snprintf(r->stop_seen[j], sizeof(r->stop_seen[j]), "%s", state);
		}
		json_decref(res);
	}
	r->stop_fails = failed ? r->stop_fails + 1 : 0;
out:
	free(done);
	return stop;
}

/* Turns the caller's signal count into the run's stop: the first signal stops new steps and
 * running actions (the declared rollbacks then run); a second one while they run skips the
 * rest. Polls: the signal handler itself may only set a counter. The same thread polls the
 * stop_when alarms while the steps run (every STOP_POLL_S). */
static void *signal_watcher(void *arg)
{
	drb_run *r = arg;

	while (!r->watch_stop) {
		int n = r->signals ? *r->signals : 0, check;

		pthread_mutex_lock(&r->mu);
		if (n > r->signals_seen && r->teardown_running) {
			/* a shadow drill's teardown runs to its end: its copies must go */
			r->signals_seen = n;
		} else if (n > r->signals_seen) {
			r->signals_seen = n;
			if (!r->stop_reason[0])
				snprintf(r->stop_reason, sizeof(r->stop_reason), SIGNAL_REASON);
			*r->cancel = 1;
		}
		check = r->stop_armed == 2 && !r->stop_hit && drb_mono_now() >= r->stop_next;
		pthread_mutex_unlock(&r->mu);
		if (check) {
			stop_check(r);
			pthread_mutex_lock(&r->mu);
			r->stop_next = drb_mono_now() + STOP_POLL_S;
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_lock(&r->watch_mu);
		if (!r->watch_stop)
			drb_cond_wait_s(&r->watch_cv, &r->watch_mu, 0.02); /* the tick */
		pthread_mutex_unlock(&r->watch_mu);
	}
	return NULL;
}

/* 1 when the run was stopped by one signal only, and nothing else forbids compensating: the
 * declared rollbacks run (with the stop flag cleared for them; a second signal sets it). A
 * stop condition runs them whatever the on_failure policy says (DESIGN.md v1.1), unless a
 * signal came too. */
static int rollback_after_signal(drb_run *r)
{
	int yes;

	pthread_mutex_lock(&r->mu);
	yes = r->signals_seen == 1 && !r->no_rollback && !strcmp(r->stop_reason, SIGNAL_REASON);
	if (r->stop_hit) /* a stop condition came first, and no signal since */
		yes = r->signals_seen == 0 && !r->no_rollback;
	if (yes)
		*r->cancel = 0;
	pthread_mutex_unlock(&r->mu);
	return yes;
}

/* Sets up everything a run needs except the audit log. */
int drb_run_init(drb_run *r, const drb_runbook *rb, const drb_engine_opts *o, json_t *params,
		 drb_err *err)
{
	drb_lua_opts lo = {0};
	json_t *drill = o->drill ? json_true() : json_false();
	int rc;

	memset(r, 0, sizeof(*r));
	drb_engine_providers_init();
	r->rb = rb;
	r->o = o;
	r->params = params;
	r->rpo_s = -1;
	r->cancel = &r->cancel_own;
	r->signals = o->interrupt;
	r->t0 = drb_mono_now();
	r->t0_wall = drb_wall_ms();
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->watch_mu, NULL);
	drb_cond_init_mono(&r->watch_cv);
	if (rb->n_stop_when && o->mode != DRB_MODE_PLAN) {
		r->stop_seen = calloc(rb->n_stop_when, sizeof(*r->stop_seen));
		if (!r->stop_seen)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	if ((r->signals || r->stop_seen) &&
	    pthread_create(&r->watcher, NULL, signal_watcher, r) == 0)
		r->watching = 1;
	r->shadow = o->shadow;
	r->shadow_made = json_object();
	r->secrets = json_array();
	r->connections = json_object();
	for (size_t i = 0; i < rb->n_params; i++) {
		json_t *v = json_object_get(params, rb->params[i].name);

		if (rb->params[i].secret)
			drb_secret_add(r, v);
	}
	for (size_t i = 0; i < rb->n_conns; i++)
		json_object_set(r->connections, rb->conns[i].name, rb->conns[i].spec);
	if (o->incident_start && drb_rfc3339_parse(o->incident_start, &r->incident_ms))
		return drb_err_set(err, DRB_EINVAL, "--incident-start '%s' is not an RFC 3339 time",
				   o->incident_start);
	lo.lib_dir = o->lua_dir ? o->lua_dir : DRB_LUA_DIR;
	lo.runbook_dir = rb->dir;
	lo.print = print_to_log;
	lo.print_ud = r;
	/* a signal or the run's deadline ends any Lua, also code that catches its errors */
	lo.cancel = r->cancel;
	lo.stop_at = &r->deadline;
	if ((rc = drb_lua_new(&r->lua, &lo, err)))
		return rc;
	{
		json_t *steps = json_object();

		rc = drb_lua_set_global(r->lua, "steps", steps, err);
		json_decref(steps);
		if (rc)
			return rc;
	}
	if ((rc = drb_lua_set_global(r->lua, "params", params, err)) ||
	    (rc = drb_lua_set_global(r->lua, "drill", drill, err)))
		return rc;
	if ((rc = drb_seam_lua_actions(r, err)))
		return rc;
	for (size_t i = 0; i < rb->n_lua_modules; i++)
		if ((rc = drb_lua_require(r->lua, rb->lua_modules[i], err)))
			return drb_err_prefix(err, "lua module '%s': ", rb->lua_modules[i]);
	return 0;
}

void drb_run_fini(drb_run *r)
{
	if (r->watching) {
		pthread_mutex_lock(&r->watch_mu);
		r->watch_stop = 1;
		pthread_cond_signal(&r->watch_cv);
		pthread_mutex_unlock(&r->watch_mu);
		pthread_join(r->watcher, NULL);
		r->watching = 0;
	}
	for (size_t i = 0; i < r->n_units; i++) {
		free(r->units[i].uid);
		json_decref(r->units[i].item);
		json_decref(r->units[i].result);
	}
	free(r->units);
	for (size_t i = 0; i < r->n_prior; i++) {
		free(r->prior[i].uid);
		json_decref(r->prior[i].result);
		json_decref(r->prior[i].item);
	}
	free(r->prior);
	free(r->stop_seen);
	drb_lua_free(r->lua);
	drb_audit_close(r->audit);
	drb_evidence_close(r->evidence);
	drb_step_lines_free(r->summary, r->n_summary);
	json_decref(r->print_steps);
	json_decref(r->shadow_made);
	json_decref(r->end_info);
	json_decref(r->secrets);
	json_decref(r->connections);
	json_decref(r->params);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->watch_cv);
	pthread_mutex_destroy(&r->watch_mu);
}

/* Plan: evaluates src read-only (expression, or a with: template when tmpl is set) with the
 * for_each variable bound; NULL when it cannot be known before the run (the reason in e). */
static json_t *plan_eval(drb_run *r, const drb_step *s, const char *src, const json_t *tmpl,
			 const json_t *item, const char *what, drb_err *e)
{
	json_t *v = NULL;
	char chunk[512];
	int rc;

	snprintf(chunk, sizeof(chunk), "%s:%d:%d (plan %s)", r->rb->path, s->pos.line, s->pos.col,
		 what);
	drb_err_clear(e);
	drb_lua_lock(r->lua);
	r->lua_ro = 1;
	rc = drb_bind(r, item ? (s->as ? s->as : "item") : NULL, item, NULL, e);
	if (!rc && tmpl)
		rc = drb_lua_interpolate(r->lua, tmpl, chunk, &v, e);
	else if (!rc)
		rc = drb_lua_eval(r->lua, src, chunk, &v, e);
	r->lua_ro = 0;
	drb_lua_unlock(r->lua);
	if (rc) {
		json_decref(v);
		return NULL;
	}
	return v ? v : json_null();
}

/* One unit of the plan (a step, or one for_each item): its arguments, its when decision and
 * the rollback it would have, each evaluated where it can be before the run. */
static void plan_unit(drb_run *r, const drb_step *s, const json_t *item, json_t *o)
{
	const drb_action *a = drb_engine_action(s->action);
	json_t *args, *w;
	drb_err e;

	args = plan_eval(r, s, NULL, s->with, item, "with", &e);
	json_object_set_new(o, "mutating",
			    json_boolean(a ? drb_action_mutates(a, s, args ? args : s->with) : 1));
	json_object_set(o, "with", args ? args : s->with);
	if (!args)
		json_object_set_new(o, "unresolved", json_string(e.msg));
	if (s->when.src) {
		w = plan_eval(r, s, s->when.src, NULL, item, "when", &e);
		json_object_set_new(
		    o, "when_result",
		    !w ? json_string("unknown")
		       : json_string(json_is_true(w) || (!json_is_false(w) && !json_is_null(w))
					 ? "run"
					 : "skip"));
		json_decref(w);
	}
	if (s->rollback) {
		json_t *rw = plan_eval(r, s, NULL, s->rollback->with, item, "rollback", &e);
		json_t *rb = json_pack("{s:s, s:O}", "action", s->rollback->action, "with",
				       rw ? rw : s->rollback->with);

		if (!rw)
			json_object_set_new(rb, "unresolved", json_string(e.msg));
		json_object_set_new(o, "rollback", rb);
		json_decref(rw);
	}
	json_decref(args);
}

/* What plan shows of every step: needs, arguments, the expanded for_each items, when
 * decisions, rollbacks; and the critical path of the graph. */
static json_t *plan_steps(drb_run *r, json_t **critical)
{
	const drb_runbook *rb = r->rb;
	json_t *plan = json_array();
	size_t *path = NULL, n_path = 0;

	for (size_t i = 0; i < rb->n_steps; i++) {
		const drb_step *s = &rb->steps[i];
		json_t *o =
		    json_pack("{s:s, s:s, s:[]}", "id", s->id, "action", s->action, "needs");

		for (size_t d = 0; d < s->n_deps; d++)
			json_array_append_new(json_object_get(o, "needs"),
					      json_string(rb->steps[s->deps[d]].id));
		if (s->when.src)
			json_object_set_new(o, "when", json_string(s->when.src));
		if (s->for_each.src) {
			drb_err e;
			json_t *items =
			    plan_eval(r, s, s->for_each.src, NULL, NULL, "for_each", &e);

			json_object_set_new(o, "for_each", json_string(s->for_each.src));
			if (items && json_is_object(items) && !json_object_size(items)) {
				json_decref(items);
				items = json_array();
			}
			plan_unit(r, s, NULL, o); /* as written, for the step as a whole */
			json_object_del(o, "when_result");
			if (json_array_size(items) > DRB_FOR_EACH_MAX) {
				/* the run fails this step: no children are listed */
				json_object_set_new(
				    o, "items_over_cap",
				    json_integer((json_int_t)json_array_size(items)));
			} else if (json_is_array(items)) {
				json_t *kids = json_array(), *it;
				size_t k;

				json_array_foreach(items, k, it)
				{
					json_t *c = json_pack("{s:O}", "item", it);

					plan_unit(r, s, it, c);
					json_array_append_new(kids, c);
				}
				json_object_set(o, "items", items);
				json_object_set_new(o, "children", kids);
				json_object_del(o, "with");
				json_object_del(o, "unresolved");
				json_object_del(o, "rollback");
			} else {
				json_object_set_new(o, "items_unresolved",
						    json_string(items ? "not a list" : e.msg));
			}
			json_decref(items);
		} else {
			plan_unit(r, s, NULL, o);
		}
		json_array_append_new(plan, o);
	}
	*critical = json_array();
	if (drb_runbook_critical_path(rb, &path, &n_path) == 0)
		for (size_t k = 0; k < n_path; k++)
			json_array_append_new(*critical, json_string(rb->steps[path[k]].id));
	free(path);
	return plan;
}

/* ---- the step graph -------------------------------------------------------------------- */

/* What stopped the steps, for the verdict. */
typedef struct gstop {
	int stop;	     /* a step failed (or was refused) and no new step may start */
	int refuse;	     /* ... by a refusal or a guard before any change: exit 3 */
	drb_on_failure pol;  /* the failure policy of that step */
	int critical_failed; /* a critical step failed under on_failure: continue */
} gstop;

enum { G_PENDING = 0, G_RUNNING, G_DONE };

typedef struct graph graph;

typedef struct gjob {
	graph *g;
	size_t i;
	pthread_t th;
	int threaded;
	drb_err *err; /* the running step's error: owned from its start until the main thread
		       * has applied the failure policy (one per running step, not per step) */
} gjob;

struct graph {
	drb_run *r;
	pthread_mutex_t mu; /* protects st, finished, n_finished */
	pthread_cond_t cv;
	unsigned char *state;	/* main thread only */
	unsigned char *blocked; /* skipped because a need did not end ok */
	drb_step_status *st;
	gjob *jobs;
	size_t *finished; /* ended, not yet looked at by the main thread */
	size_t n_finished;
	size_t running;
	/* Main thread only: what each step still waits for, who waits for it, and the steps
	 * that wait for nothing more, lowest index first. A step starts when it reaches the
	 * top of that heap, so the work per step does not grow with the number of steps. */
	size_t *waiting;	/* needs not ended yet */
	size_t *rdep_at, *rdep; /* the steps that need step i: rdep[rdep_at[i]..rdep_at[i+1]) */
	size_t *ready, n_ready; /* a min-heap of pending steps whose needs have all ended */
};

static void *graph_worker(void *arg)
{
	gjob *j = arg;
	graph *g = j->g;
	drb_step_status st = drb_step_execute(g->r, &g->r->rb->steps[j->i], j->err);

	pthread_mutex_lock(&g->mu);
	g->st[j->i] = st;
	g->finished[g->n_finished++] = j->i;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static void ready_push(graph *g, size_t i)
{
	size_t k = g->n_ready++;

	while (k > 0 && g->ready[(k - 1) / 2] > i) {
		g->ready[k] = g->ready[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	g->ready[k] = i;
}

static size_t ready_pop(graph *g)
{
	size_t top = g->ready[0], last = g->ready[--g->n_ready], k = 0;

	for (;;) {
		size_t c = 2 * k + 1;

		if (c >= g->n_ready)
			break;
		if (c + 1 < g->n_ready && g->ready[c + 1] < g->ready[c])
			c++;
		if (last <= g->ready[c])
			break;
		g->ready[k] = g->ready[c];
		k = c;
	}
	if (g->n_ready)
		g->ready[k] = last;
	return top;
}

/* Step i has ended (or will never start): the steps that need it may be ready now. */
static void graph_done(graph *g, size_t i)
{
	g->state[i] = G_DONE;
	for (size_t k = g->rdep_at[i]; k < g->rdep_at[i + 1]; k++)
		if (--g->waiting[g->rdep[k]] == 0)
			ready_push(g, g->rdep[k]);
}

/* The counters and the reverse edges of the graph, and the steps that need nothing. */
static int graph_index(graph *g, const drb_runbook *rb)
{
	size_t n = rb->n_steps, edges = 0;

	for (size_t i = 0; i < n; i++)
		edges += rb->steps[i].n_deps;
	g->waiting = calloc(n + 1, sizeof(*g->waiting));
	g->rdep_at = calloc(n + 2, sizeof(*g->rdep_at));
	g->rdep = calloc(edges + 1, sizeof(*g->rdep));
	g->ready = calloc(n + 1, sizeof(*g->ready));
	if (!g->waiting || !g->rdep_at || !g->rdep || !g->ready)
		return -1;
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < rb->steps[i].n_deps; d++)
			g->rdep_at[rb->steps[i].deps[d] + 2]++;
	for (size_t i = 2; i < n + 2; i++)
		g->rdep_at[i] += g->rdep_at[i - 1];
	/* rdep_at[i + 1] is now where step i's list starts; filling moves it to its end */
	for (size_t i = 0; i < n; i++) {
		g->waiting[i] = rb->steps[i].n_deps;
		for (size_t d = 0; d < rb->steps[i].n_deps; d++)
			g->rdep[g->rdep_at[rb->steps[i].deps[d] + 1]++] = i;
		if (!g->waiting[i])
			ready_push(g, i);
	}
	return 0;
}

static int status_passes(drb_step_status st)
{
	return st == DRB_ST_OK || st == DRB_ST_SKIPPED || st == DRB_ST_ASSUMED;
}

/* The failure policy, applied to a step that ended (the v1 rules, step by step). */
static void graph_ended(drb_run *r, graph *g, size_t i, const drb_err *err, gstop *x,
			drb_err *first)
{
	const drb_step *s = &r->rb->steps[i];
	drb_on_failure pol = s->on_failure ? s->on_failure : r->rb->on_failure;
	drb_step_status st = g->st[i];
	int changed;

	graph_done(g, i);
	if (status_passes(st))
		return;
	if (!first->msg[0] && *r->cancel && r->stop_reason[0] && !strstr(err->msg, r->stop_reason))
		/* stopped from outside the step (a signal, a lost lease, the log): say why first */
		snprintf(first->msg, sizeof(first->msg), "step '%s': %s (%s)", s->id,
			 r->stop_reason, err->msg);
	else if (!first->msg[0])
		snprintf(first->msg, sizeof(first->msg), "step '%s': %s", s->id, err->msg);
	if (x->stop)
		return; /* the first failure decides */
	if (err->code == DRB_ESHADOW) {
		/* whatever the step's policy: a drill that reached for production stops, and
		 * undoes what it did */
		x->stop = 1;
		x->pol = DRB_ONF_ROLLBACK;
		return;
	}
	pthread_mutex_lock(&r->mu);
	changed = r->changed;
	pthread_mutex_unlock(&r->mu);
	if (st == DRB_ST_REFUSED && !changed) {
		x->stop = x->refuse = 1;
		x->pol = pol;
		return;
	}
	if (!s->critical)
		return;
	if (pol == DRB_ONF_CONTINUE && !(*r->cancel)) {
		x->critical_failed = 1;
		return;
	}
	x->stop = 1;
	x->pol = pol;
	/* an operator's signal is no step's failure: the runbook's policy decides, not that of
	 * whichever step it happened to cut short first */
	pthread_mutex_lock(&r->mu);
	if (*r->cancel && !strcmp(r->stop_reason, SIGNAL_REASON))
		x->pol = r->rb->on_failure;
	pthread_mutex_unlock(&r->mu);
	/* a guard said no before anything changed: refused, not failed */
	if (!changed && !x->critical_failed && !(*r->cancel) && err->cause == DRB_CAUSE_CHECK)
		x->refuse = 1;
}

/* 1: step i may start; -1: never (a step it needs did not end ok). Called once every step
 * it needs has ended. A step without needs follows the step before it, whatever its end (v1:
 * on_failure: continue goes on with the next step). */
static int graph_ready(const drb_run *r, const graph *g, size_t i, const char **why)
{
	const drb_step *s = &r->rb->steps[i];

	for (size_t d = 0; s->needs_set && d < s->n_deps; d++) {
		size_t k = s->deps[d];

		if (g->blocked[k] || !status_passes(g->st[k])) {
			*why = r->rb->steps[k].id;
			return -1;
		}
	}
	return 1;
}

/* Runs the steps as a graph: every step whose needs have ended starts at once, at most
 * max_parallel at a time, each on a thread of its own (one that runs alone runs on this
 * thread), lowest index first; the main thread alone decides what starts and applies the
 * failure policy. After a failure that stops the
 * run, no step starts and the running ones are waited for. */
static void run_graph(drb_run *r, gstop *x, drb_err *first)
{
	const drb_runbook *rb = r->rb;
	size_t n = rb->n_steps, width = rb->max_parallel > 0 ? (size_t)rb->max_parallel : 8;
	graph g;

	memset(&g, 0, sizeof(g));
	g.r = r;
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	g.state = calloc(n + 1, 1);
	g.blocked = calloc(n + 1, 1);
	g.st = calloc(n + 1, sizeof(*g.st));
	g.jobs = calloc(n + 1, sizeof(*g.jobs));
	g.finished = calloc(n + 1, sizeof(*g.finished));
	if (!g.state || !g.blocked || !g.st || !g.jobs || !g.finished || graph_index(&g, rb)) {
		snprintf(first->msg, sizeof(first->msg), "out of memory");
		x->stop = 1;
		x->pol = DRB_ONF_ABORT;
		goto out;
	}
	for (;;) {
		/* what ended, in the order it ended */
		pthread_mutex_lock(&g.mu);
		while (g.n_finished) {
			size_t i = g.finished[0];

			memmove(g.finished, g.finished + 1, --g.n_finished * sizeof(*g.finished));
			pthread_mutex_unlock(&g.mu);
			if (g.jobs[i].threaded)
				pthread_join(g.jobs[i].th, NULL);
			g.running--;
			graph_ended(r, &g, i, g.jobs[i].err, x, first);
			free(g.jobs[i].err);
			g.jobs[i].err = NULL;
			pthread_mutex_lock(&g.mu);
		}
		pthread_mutex_unlock(&g.mu);

		while (!x->stop && g.n_ready && g.running < width) {
			size_t i = ready_pop(&g);
			const drb_step *s = &rb->steps[i];
			const char *why = NULL;

			if (graph_ready(r, &g, i, &why) < 0) {
				char reason[300];

				snprintf(reason, sizeof(reason), "needs '%s', which did not end ok",
					 why);
				drb_step_skip(r, s, reason);
				g.st[i] = DRB_ST_SKIPPED;
				g.blocked[i] = 1;
				graph_done(&g, i); /* a step waiting for this one may be ready now */
				continue;
			}
			if (*r->cancel || (r->deadline > 0 && drb_mono_now() >= r->deadline)) {
				drb_err e = {0};

				if (*r->cancel) {
					drb_err_set(&e, DRB_EINTERRUPTED, "%s",
						    r->stop_reason[0] ? r->stop_reason
								      : "run interrupted");
				} else {
					char w[32];

					drb_duration_format(rb->deadline_s, w, sizeof(w));
					drb_err_set(&e, DRB_ETIMEOUT,
						    "run deadline of %s passed before step '%s'", w,
						    s->id);
				}
				g.st[i] = DRB_ST_FAILED; /* not started: no step.end */
				graph_ended(r, &g, i, &e, x, first);
				continue;
			}
			g.jobs[i].err = calloc(1, sizeof(*g.jobs[i].err));
			if (!g.jobs[i].err) {
				drb_err e = {0};

				drb_err_set(&e, DRB_ENOMEM, "out of memory");
				g.st[i] = DRB_ST_FAILED; /* not started: no step.end */
				graph_ended(r, &g, i, &e, x, first);
				continue;
			}
			g.state[i] = G_RUNNING;
			g.running++;
			g.jobs[i].g = &g;
			g.jobs[i].i = i;
			/* The only step that can run now runs on this thread: nothing could start
			 * beside it before it ends, and a thread of its own would cost its creation
			 * and two cross-CPU wake-ups (most of a trivial step's time). */
			g.jobs[i].threaded =
			    (g.n_ready > 0 || g.running > 1) &&
			    pthread_create(&g.jobs[i].th, NULL, graph_worker, &g.jobs[i]) == 0;
			if (!g.jobs[i].threaded)
				graph_worker(&g.jobs[i]); /* no thread: run it here */
		}
		if (!g.running)
			break; /* nothing runs and nothing could start: the end */
		pthread_mutex_lock(&g.mu);
		while (!g.n_finished)
			pthread_cond_wait(&g.cv, &g.mu);
		pthread_mutex_unlock(&g.mu);
	}
out:
	for (size_t i = 0; g.jobs && i < n; i++)
		free(g.jobs[i].err);
	free(g.state);
	free(g.blocked);
	free(g.st);
	free(g.jobs);
	free(g.finished);
	free(g.waiting);
	free(g.rdep_at);
	free(g.rdep);
	free(g.ready);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

/* With targets_required (game-day drills), a run that recovered too slowly or lost too much
 * failed: says which target was missed into why. Unknown measures miss nothing. */
static int missed_target(const drb_runbook *rb, double rto, double rpo, char *why, size_t n)
{
	char got[32], want[32];

	if (rb->target_rto_s >= 0 && rto > rb->target_rto_s) {
		drb_duration_format(rto, got, sizeof(got));
		drb_duration_format(rb->target_rto_s, want, sizeof(want));
		snprintf(why, n, "RTO %s missed its target of %s", got, want);
		return 1;
	}
	if (rb->target_rpo_s >= 0 && rpo > rb->target_rpo_s) {
		drb_duration_format(rpo, got, sizeof(got));
		drb_duration_format(rb->target_rpo_s, want, sizeof(want));
		snprintf(why, n, "RPO %s missed its target of %s", got, want);
		return 1;
	}
	return 0;
}

/* One check of a readiness check's own (not a preflight step): a readiness.check record and
 * a line of the summary, as a step would have. */
static void readiness_record(drb_run *r, const char *id, double t0, const char *detail,
			     const char *error)
{
	json_t *d = json_pack("{s:s, s:b, s:s?, s:s?}", "check", id, "ok", !error, "detail", detail,
			      "error", error);
	drb_err e = {0};

	if (d)
		drb_emit(r, DRB_EV_READINESS_CHECK, NULL, d, &e);
	drb_summary_add(r, id, error ? "failed" : "ok", 1, llround((drb_mono_now() - t0) * 1000),
			error);
	json_decref(d);
}

/* The checks a readiness check adds to the runbook's preflight: the lease table
 * (DRBOOK_LEASE_TABLE) and the evidence bucket (DRBOOK_EVIDENCE) answer, when configured: a
 * failover would be refused without them. Read-only. Returns 1 when one failed (first says
 * why, unless a preflight check already did). */
static int readiness_infra(drb_run *r, drb_err *first)
{
	const char *ev = r->o->evidence ? r->o->evidence : getenv("DRBOOK_EVIDENCE");
	char holders[1024];
	drb_err e = {0};
	double t0 = drb_mono_now();
	int rc, bad = 0;

	rc = drb_lease_probe(r->rb, holders, sizeof(holders), &e);
	if (rc != 1) {
		readiness_record(r, "lease-table", t0, rc ? NULL : holders, rc ? e.msg : NULL);
		if (rc && !first->msg[0])
			snprintf(first->msg, sizeof(first->msg),
				 "readiness 'lease-table' failed: %s", e.msg);
		bad |= rc != 0;
	}
	if (ev && *ev) {
		drb_err_clear(&e);
		t0 = drb_mono_now();
		rc = drb_evidence_probe(ev, &e);
		readiness_record(r, "evidence-bucket", t0, rc ? NULL : ev, rc ? e.msg : NULL);
		if (rc && !first->msg[0])
			snprintf(first->msg, sizeof(first->msg),
				 "readiness 'evidence-bucket' failed: %s", e.msg);
		bad |= rc != 0;
	}
	return bad;
}

/* ---- shadow drills ----------------------------------------------------------------------- */

/* Runs the shadow setup steps one after the other (before preflight: the overridden
 * parameters point the checks at the copies setup makes). Returns 0, or -1 with the reason in
 * first when one did not end ok. */
static int shadow_setup(drb_run *r, drb_err *first)
{
	const drb_runbook *rb = r->rb;
	int failed = 0;
	json_t *d = json_pack("{s:I}", "steps", (json_int_t)rb->n_shadow_setup);
	drb_err e = {0};

	drb_emit(r, DRB_EV_SHADOW_SETUP_BEGIN, NULL, d, &e);
	json_decref(d);
	r->phase = "setup";
	for (size_t i = 0; i < rb->n_shadow_setup && !failed; i++) {
		drb_step_status st;

		drb_err_clear(&e);
		if (*r->cancel) {
			snprintf(first->msg, sizeof(first->msg), "shadow setup: %s",
				 r->stop_reason[0] ? r->stop_reason : "run interrupted");
			failed = 1;
			break;
		}
		st = drb_step_execute(r, &rb->shadow_setup[i], &e);
		if (!status_passes(st)) {
			snprintf(first->msg, sizeof(first->msg), "shadow setup step '%s': %s",
				 rb->shadow_setup[i].id, e.msg);
			failed = 1;
		}
	}
	r->phase = NULL;
	pthread_mutex_lock(&r->mu);
	d = json_pack("{s:s, s:o}", "status", failed ? "failed" : "ok", "made",
		      json_deep_copy(r->shadow_made));
	pthread_mutex_unlock(&r->mu);
	drb_emit(r, DRB_EV_SHADOW_SETUP_END, NULL, d, &e);
	json_decref(d);
	return failed ? -1 : 0;
}

/* Runs every teardown step, whatever happened before (also after a failure, a rollback, a
 * refusal or a signal: signals no longer stop anything, the run's deadline no longer
 * applies; each step's own timeout bounds it). A failed teardown step does not stop the
 * others: each removes what it can. Returns how many failed; their reasons go to why. */
static int shadow_teardown(drb_run *r, const char *after, char *why, size_t n)
{
	const drb_runbook *rb = r->rb;
	int failed = 0;
	json_t *d;
	drb_err e = {0};

	if (r->no_rollback) {
		/* the log failed: nothing may run unrecorded, not even this */
		snprintf(why, n, "shadow teardown skipped: %s", r->stop_reason);
		return (int)rb->n_shadow_teardown;
	}
	pthread_mutex_lock(&r->mu);
	r->teardown_running = 1;
	*r->cancel = 0;
	pthread_mutex_unlock(&r->mu);
	r->deadline = 0;
	r->phase_ro = 0;
	d = json_pack("{s:s, s:I}", "after", after, "steps", (json_int_t)rb->n_shadow_teardown);
	drb_emit(r, DRB_EV_SHADOW_TEARDOWN_BEGIN, NULL, d, &e);
	json_decref(d);
	r->phase = "teardown";
	for (size_t i = 0; i < rb->n_shadow_teardown; i++) {
		drb_step_status st;

		drb_err_clear(&e);
		pthread_mutex_lock(&r->mu);
		*r->cancel = r->no_rollback; /* only a failed log stops a teardown */
		pthread_mutex_unlock(&r->mu);
		st = drb_step_execute(r, &rb->shadow_teardown[i], &e);
		if (!status_passes(st)) {
			size_t used = strlen(why);

			if (!failed)
				snprintf(why, n, "shadow teardown step '%s': %s",
					 rb->shadow_teardown[i].id, e.msg);
			else if (used < n)
				snprintf(why + used, n - used, "; step '%s': %s",
					 rb->shadow_teardown[i].id, e.msg);
			failed++;
		}
	}
	r->phase = NULL;
	d = json_pack("{s:s, s:i}", "status", failed ? "failed" : "ok", "failed", failed);
	drb_emit(r, DRB_EV_SHADOW_TEARDOWN_END, NULL, d, &e);
	json_decref(d);
	return failed;
}

/* Runs preflight (if any), then the steps, then decides the verdict and writes run.end. */
int drb_run_body(drb_run *r, drb_run_result *out, int do_preflight)
{
	const drb_runbook *rb = r->rb;
	const char *status = "succeeded";
	int exit_code = DRB_EXIT_OK, critical_failed = 0, rolled_failed = 0, shadow_begun = 0;
	drb_err err = {0}, first = {0};
	json_t *end;
	double rto = -1;

	drb_lua_lock(r->lua);
	set_run_global(r, NULL, NULL, NULL);
	drb_lua_unlock(r->lua);

	if (!r->resuming)
		notify(r, "start", NULL, NULL);
	if (r->shadow && r->o->mode != DRB_MODE_PLAN) {
		shadow_begun = 1;
		if (shadow_setup(r, &first)) {
			status = "failed";
			exit_code = DRB_EXIT_FAILED;
			goto verdict;
		}
	}
	r->phase_ro = 1;
	for (size_t i = 0; do_preflight && i < rb->n_preflight; i++) {
		drb_step_status st = drb_step_execute(r, &rb->preflight[i], &err);

		/* a check skipped by its when: passes; a non-critical one never refuses */
		if ((st == DRB_ST_FAILED || st == DRB_ST_REFUSED) && rb->preflight[i].critical) {
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			/* stopped from outside (a signal): say so, as a step's failure does */
			int why =
			    *r->cancel && r->stop_reason[0] && !strstr(err.msg, r->stop_reason);

			if (!first.msg[0])
				snprintf(first.msg, sizeof(first.msg),
					 "preflight '%s' failed: %s%s%s%s", rb->preflight[i].id,
					 err.msg, why ? " (" : "", why ? r->stop_reason : "",
					 why ? ")" : "");
			if (!r->o->readiness) /* readiness: every check says what it sees */
				goto verdict;
		}
	}
	if (r->o->readiness && readiness_infra(r, &first)) {
		status = "refused";
		exit_code = DRB_EXIT_REFUSED;
	}
	if (exit_code != DRB_EXIT_OK || r->o->readiness)
		goto verdict;
	if (r->o->mode == DRB_MODE_PLAN) {
		out->plan = plan_steps(r, &out->critical_path);
		json_t *d = json_pack("{s:O, s:O}", "steps", out->plan, "critical_path",
				      out->critical_path);
		drb_emit(r, DRB_EV_PLAN, NULL, d, &err);
		json_decref(d);
		goto verdict;
	}
	r->phase_ro = 0;
	if (r->stop_seen && !r->replay) {
		/* an alarm already in ALARM: the run does not start (nothing changed yet) */
		pthread_mutex_lock(&r->mu);
		r->stop_armed = 1; /* the first check, here; then the watcher's (2) */
		pthread_mutex_unlock(&r->mu);
		if (stop_check(r)) {
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			snprintf(first.msg, sizeof(first.msg),
				 "%s: the alarm is in ALARM before any step started",
				 r->stop_cond_reason);
			goto verdict;
		}
		pthread_mutex_lock(&r->mu);
		r->stop_armed = 2;
		r->stop_next = drb_mono_now() + STOP_POLL_S;
		pthread_mutex_unlock(&r->mu);
	}
	{
		gstop x = {0};
		int stop_hit;

		run_graph(r, &x, &first);
		pthread_mutex_lock(&r->mu);
		r->stop_armed = 0;
		stop_hit = r->stop_hit;
		pthread_mutex_unlock(&r->mu);
		if (stop_hit) {
			/* whatever the steps did: the stop condition decides, and undoes */
			x.stop = 1;
			x.refuse = 0;
			x.pol = DRB_ONF_ROLLBACK;
			if (!first.msg[0])
				snprintf(first.msg, sizeof(first.msg), "%s", r->stop_cond_reason);
		}
		if (x.refuse && r->changed) {
			/* a step running beside it changed something: no longer a refusal */
			x.refuse = 0;
			if (x.pol == DRB_ONF_CONTINUE)
				x.pol = DRB_ONF_ABORT;
		}
		critical_failed = x.critical_failed;
		if (x.refuse) {
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			goto verdict;
		}
		if (x.stop) {
			exit_code = DRB_EXIT_FAILED; /* something changed: refusals ended above */
			if (x.pol == DRB_ONF_ROLLBACK &&
			    (!(*r->cancel) || rollback_after_signal(r))) {
				rolled_failed = rollback(r, first.msg);
				status = rolled_failed ? "failed" : "rolled_back";
				if (rolled_failed)
					snprintf(first.msg + strlen(first.msg),
						 sizeof(first.msg) - strlen(first.msg),
						 "; %d rollback action(s) failed or were skipped: "
						 "needs a human",
						 rolled_failed);
			} else {
				status = "failed";
			}
			goto verdict;
		}
	}
	if (critical_failed) {
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
	} else {
		int64_t from = r->incident_ms ? r->incident_ms : r->t0_wall;

		/* a replay's own clock means nothing: its RTO comes from the recorded times */
		rto = r->replay ? drb_replay_rto(r) : (double)(drb_wall_ms() - from) / 1000.0;
	}
	if (r->o->targets_required && exit_code == DRB_EXIT_OK &&
	    missed_target(rb, rto, r->rpo_s, first.msg, sizeof(first.msg))) {
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
	}
verdict:
	if (shadow_begun) {
		char why[sizeof(first.msg)] = "";

		if (shadow_teardown(r, status, why, sizeof(why))) {
			/* the copies may still be there: not a success, and not a clean refusal */
			size_t used = strlen(first.msg);

			status = "failed";
			exit_code = DRB_EXIT_FAILED;
			snprintf(first.msg + used, sizeof(first.msg) - used,
				 "%s%s; drill resources may be left behind: needs a human",
				 used ? "; " : "", why);
		}
	}
	if (r->no_rollback && exit_code != DRB_EXIT_FAILED) {
		/* a record could not be written (a step.end, say): the run did not succeed,
		 * whatever its steps did, because its log does not say everything it did */
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
		snprintf(first.msg, sizeof(first.msg), "%s", r->stop_reason);
	}
	end = json_pack("{s:s, s:i, s:I}", "status", status, "exit_code", exit_code, "duration_ms",
			(json_int_t)(drb_wall_ms() - r->t0_wall));
	if (rto >= 0)
		json_object_set_new(end, "rto_s", json_real(rto));
	if (r->rpo_s >= 0)
		json_object_set_new(end, "rpo_s", json_real(r->rpo_s));
	{
		/* targets: the verdicts, and the targets themselves where the runbook sets them */
		json_t *t =
		    json_pack("{s:s, s:s}", "rto", drb_target_verdict(rto, rb->target_rto_s), "rpo",
			      drb_target_verdict(r->rpo_s, rb->target_rpo_s));

		if (rb->target_rto_s >= 0)
			json_object_set_new(t, "rto_s", json_real(rb->target_rto_s));
		if (rb->target_rpo_s >= 0)
			json_object_set_new(t, "rpo_s", json_real(rb->target_rpo_s));
		json_object_set_new(end, "targets", t);
		r->end_info = json_pack("{s:O}", "targets", t);
		if (rto >= 0)
			json_object_set_new(r->end_info, "rto_s", json_real(rto));
		if (r->rpo_s >= 0)
			json_object_set_new(r->end_info, "rpo_s", json_real(r->rpo_s));
	}
	if (first.msg[0])
		json_object_set_new(end, "error", json_string(first.msg));
	if (r->stop_cond_reason[0])
		json_object_set_new(end, "reason", json_string(r->stop_cond_reason));
	/* notify() itself sends nothing in a plan, only the caller's in a readiness check */
	notify(r, strcmp(status, "succeeded") ? "failure" : "success", status, first.msg);
	notify(r, "end", status, first.msg);
	if (drb_emit(r, DRB_EV_RUN_END, NULL, end, &err) && exit_code == DRB_EXIT_OK) {
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
		snprintf(first.msg, sizeof(first.msg), "the run's end could not be recorded: %s",
			 err.msg);
	}
	json_decref(end);
	if (r->evidence && r->stop_reason[0] && !first.msg[0]) {
		/* the run did its work but its evidence is not where it was promised: not a
		 * silent success (docs/audit.md "Evidence in S3") */
		exit_code = DRB_EXIT_FAILED;
		snprintf(first.msg, sizeof(first.msg), "%s", r->stop_reason);
	}
	snprintf(out->status, sizeof(out->status), "%s",
		 r->o->mode == DRB_MODE_PLAN && exit_code == 0 ? "planned" : status);
	out->exit_code = exit_code;
	out->rto_s = rto;
	out->rpo_s = r->rpo_s;
	out->target_rto_s = rb->target_rto_s;
	out->target_rpo_s = rb->target_rpo_s;
	snprintf(out->rto_verdict, sizeof(out->rto_verdict), "%s",
		 drb_target_verdict(rto, rb->target_rto_s));
	snprintf(out->rpo_verdict, sizeof(out->rpo_verdict), "%s",
		 drb_target_verdict(r->rpo_s, rb->target_rpo_s));
	snprintf(out->run_id, sizeof(out->run_id), "%s", r->run_id);
	snprintf(out->audit_path, sizeof(out->audit_path), "%s",
		 r->audit ? drb_audit_path(r->audit) : "");
	/* the summary moves to the result */
	pthread_mutex_lock(&r->mu);
	out->steps = r->summary;
	out->n_steps = r->n_summary;
	r->summary = NULL;
	r->n_summary = r->cap_summary = 0;
	pthread_mutex_unlock(&r->mu);
	if (first.msg[0]) {
		json_t *e = json_pack("{s:s}", "error", first.msg),
		       *red = e ? drb_redact(r, e) : NULL;

		snprintf(out->error, sizeof(out->error), "%s",
			 json_string_value(json_object_get(red, "error")) ?: "");
		json_decref(e);
		json_decref(red);
	}
	return 0;
}

/* run.start's parameters: a secret one is "***" whole, whatever its type (a new object). */
static json_t *params_shown(const drb_run *r)
{
	json_t *p = json_deep_copy(r->params);

	for (size_t i = 0; p && i < r->rb->n_params; i++)
		if (r->rb->params[i].secret && json_object_get(p, r->rb->params[i].name))
			json_object_set_new(p, r->rb->params[i].name, json_string("***"));
	return p;
}

static int open_log(drb_run *r, const drb_engine_opts *o, drb_err *err)
{
	char path[4096];
	const char *dir = o->runs_dir ? o->runs_dir : "drbook-runs";
	int rc;

	if (o->audit_path)
		snprintf(path, sizeof(path), "%s", o->audit_path);
	else
		snprintf(path, sizeof(path), "%s/%s.jsonl", dir, r->run_id);
	if ((rc = drb_audit_create(&r->audit, path, r->run_id, o->key, o->key_len, err)))
		return rc;
	return o->sign_key ? drb_audit_sign_with(r->audit, o->sign_key, err) : 0;
}

int drb_engine_run(const drb_runbook *rb, const drb_engine_opts *o, drb_run_result *out,
		   drb_err *err)
{
	drb_run r;
	json_t *params = NULL, *start = NULL, *targets, *leases;
	char opbuf[256], host[256] = "unknown";
	int rc, refused = 0;
	drb_lockset *locks = NULL;
	drb_err lock_err;

	memset(out, 0, sizeof(*out));
	memset(&lock_err, 0, sizeof(lock_err));
	out->rto_s = out->rpo_s = -1;
	if (o->shadow && !rb->has_shadow)
		return drb_err_set(err, DRB_EINVAL,
				   "%s has no shadow: section: --shadow needs one (setup, params, "
				   "teardown; see docs/runbook-format.md)",
				   rb->path);
	if ((rc = drb_runbook_bind_params(rb, o->params_kv, o->n_params_kv, &params, err)))
		return rc;
	/* a shadow drill points the steps at its copies, whatever -p said */
	if (o->shadow && rb->shadow_params)
		json_object_update(params, rb->shadow_params);
	rc = drb_run_init(&r, rb, o, params, err);
	params = NULL; /* owned by r */
	if (rc)
		goto out;
	make_run_id(r.run_id, sizeof(r.run_id));
	if (rb->deadline_s > 0)
		r.deadline = r.t0 + rb->deadline_s;
	if ((rc = open_log(&r, o, err)))
		goto out;
	/* taken before run.start so that it records what it holds; a refusal is logged below */
	if (o->mode != DRB_MODE_PLAN &&
	    drb_run_lock_take(&locks, rb, NULL, o->shadow, r.run_id, r.cancel, &lock_err))
		refused = 1;
	gethostname(host, sizeof(host) - 1);
	targets = json_object();
	if (rb->target_rto_s >= 0)
		json_object_set_new(targets, "rto_s", json_real(rb->target_rto_s));
	if (rb->target_rpo_s >= 0)
		json_object_set_new(targets, "rpo_s", json_real(rb->target_rpo_s));
	start = json_pack("{s:s, s:s, s:s, s:s?, s:o, s:s, s:b, s:s, s:s, s:i, s:s, s:o, s:o}",
			  "runbook", rb->path, "runbook_sha256", rb->sha256, "name", rb->name,
			  "scenario", rb->scenario, "params", params_shown(&r), "mode",
			  mode_name(o), "drill", o->drill || o->shadow, "operator",
			  drb_operator(opbuf, sizeof(opbuf)), "host", host, "pid", (int)getpid(),
			  "version", DRB_VERSION, "lock", drb_run_lock_keys(rb, o->shadow), "targets",
			  targets);
	if (locks && (leases = drb_lockset_leases(locks)))
		json_object_set_new(start, "lease", leases);
	if (o->incident_start)
		json_object_set_new(start, "incident_start", json_string(o->incident_start));
	if (o->gameday)
		json_object_set_new(start, "gameday", json_string(o->gameday));
	if (o->evidence && o->mode != DRB_MODE_PLAN) {
		if ((rc = drb_evidence_open(&r.evidence, o->evidence, r.run_id,
					    drb_audit_path(r.audit), err)))
			goto out;
		json_object_set_new(start, "evidence", json_string(drb_evidence_base(r.evidence)));
	}
	{
		char abs[PATH_MAX];

		if (realpath(rb->path, abs))
			json_object_set_new(start, "runbook_path", json_string(abs));
	}
	if ((rc = drb_emit(&r, DRB_EV_RUN_START, NULL, start, err)))
		goto out;
	/* before any change: a run whose evidence cannot leave the machine is refused */
	if (!refused && r.evidence &&
	    (drb_evidence_ship_runbook(r.evidence, rb->path, &lock_err) ||
	     drb_evidence_ship(r.evidence, &lock_err))) {
		refused = 1;
		drb_evidence_close(r.evidence); /* no more tries: the refusal says why */
		r.evidence = NULL;
	}
	if (refused) {
		json_t *end = json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "status", "refused",
					"exit_code", DRB_EXIT_REFUSED, "error", lock_err.msg,
					"targets", "rto", "unknown", "rpo", "unknown");

		*err = lock_err;
		drb_emit(&r, DRB_EV_RUN_END, NULL, end, err);
		json_decref(end);
		out->exit_code = DRB_EXIT_REFUSED;
		snprintf(out->status, sizeof(out->status), "refused");
		snprintf(out->run_id, sizeof(out->run_id), "%s", r.run_id);
		snprintf(out->audit_path, sizeof(out->audit_path), "%s", drb_audit_path(r.audit));
		snprintf(out->error, sizeof(out->error), "%s", lock_err.msg);
		rc = 0;
		goto out;
	}
	rc = drb_run_body(&r, out, 1);
out:
	json_decref(start);
	json_decref(params);
	drb_lockset_release(locks);
	drb_run_fini(&r);
	return rc;
}
