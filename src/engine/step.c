/* One step from start to end: when, interpolation, the action with retries and polling,
 * timeouts, assert, and the for_each fan-out on threads. Every start, retry and end is in the
 * audit log before the next thing happens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/http.h>
#include <drbook/util.h>

#include "engine_int.h"

#define DRB_DEFAULT_POLL_TIMEOUT 600.0 /* until: without timeout: or deadline: */
#define DRB_MAX_FANOUT 64

const char *drb_status_name(drb_step_status st)
{
	switch (st) {
	case DRB_ST_OK:
		return "ok";
	case DRB_ST_FAILED:
		return "failed";
	case DRB_ST_SKIPPED:
		return "skipped";
	case DRB_ST_ASSUMED:
		return "assumed_done";
	case DRB_ST_REFUSED:
		return "failed"; /* step.end statuses are ok, failed, skipped, assumed_done */
	}
	return "failed";
}

double drb_retry_delay(const drb_retry *p, int n, double unit_random)
{
	/* full jitter for exponential backoff (the HTTP client's arithmetic); fixed waits
	 * exactly initial */
	if (!p->exponential)
		return p->initial_s < p->max_s ? p->initial_s : p->max_s;
	return drb_backoff_delay(p->initial_s, p->max_s, n - 1, unit_random);
}

/* Sleeps up to s seconds, waking early for cancel or deadline. Returns 0 or the reason. */
static int wait_for(drb_run *r, double s, double deadline)
{
	if (r->replay)
		return 0; /* the recorded answers already hold what the wait waited for */
	return drb_sleep_until(drb_mono_now() + s, deadline, r->cancel);
}

/* The pause before the next check of an `until`: a fifth of the time already waited, at
 * least 100 ms, at most `every`. A condition that becomes true after t seconds of waiting is
 * seen by about 1.2 t (never more than `every` late), at the cost of a few more checks at the
 * start of a wait: 0.1 s, 0.1 s, ... growing by a fifth each time. */
static double poll_interval(double every, double waited)
{
	double d = waited * 0.2;

	if (d < 0.1)
		d = 0.1;
	return d < every ? d : every;
}

static int step_retryable(int code)
{
	switch (code) {
	case DRB_EINVAL:
	case DRB_EDENIED:
	case DRB_ELIMIT:
	case DRB_EINTEGRITY:
	case DRB_EINTERRUPTED:
	case DRB_ESHADOW:
		return 0;
	default:
		return 1;
	}
}

static const drb_action *find_action(drb_run *r, const char *name, drb_action *custom)
{
	const drb_action *a = drb_engine_action(name);
	int m;

	if (a)
		return a;
	drb_lua_lock(r->lua);
	m = drb_lua_custom_mode(r->lua, name);
	drb_lua_unlock(r->lua);
	if (m < 0)
		return NULL;
	memset(custom, 0, sizeof(*custom));
	custom->name = name;
	custom->mode = m ? DRB_ACT_MUT : DRB_ACT_RO;
	custom->schema = drb_lua_custom_schema(r->lua, name);
	return custom;
}

/* stop: the step's time budget (mono seconds, 0 = none): the expression ends there. */
static int eval_bool(drb_run *r, const drb_expr *e, const char *what, const char *as,
		     const json_t *item, const json_t *result, double stop, int *out, drb_err *err)
{
	char chunk[512];
	double was;
	int rc;

	snprintf(chunk, sizeof(chunk), "%s:%d:%d (%s)", r->rb->path, e->pos.line, e->pos.col, what);
	drb_lua_lock(r->lua);
	was = drb_lua_set_step_deadline(r->lua, stop);
	r->lua_ro = 1;
	rc = drb_bind(r, as, item, result, err);
	if (!rc)
		rc = drb_lua_eval_bool(r->lua, e->src, chunk, out, err);
	r->lua_ro = 0;
	drb_lua_set_step_deadline(r->lua, was);
	drb_lua_unlock(r->lua);
	if (rc)
		drb_err_prefix(err, "%s: ", what);
	return rc;
}

static int interpolate(drb_run *r, const drb_step *s, const json_t *tmpl, const char *as,
		       const json_t *item, const json_t *result, double stop, json_t **out,
		       drb_err *err)
{
	char chunk[512];
	double was;
	int rc;

	if (json_is_object(tmpl) && json_object_size(tmpl) == 0) {
		/* no with: nothing to fill in, no need of the Lua state */
		*out = json_object();
		return *out ? 0 : drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	snprintf(chunk, sizeof(chunk), "%s:%d:%d (with)", r->rb->path, s->with_pos.line,
		 s->with_pos.col);
	drb_lua_lock(r->lua);
	was = drb_lua_set_step_deadline(r->lua, stop);
	r->lua_ro = 1;
	rc = drb_bind(r, as, item, result, err);
	if (!rc)
		rc = drb_lua_interpolate(r->lua, tmpl, chunk, out, err);
	r->lua_ro = 0;
	drb_lua_set_step_deadline(r->lua, was);
	drb_lua_unlock(r->lua);
	return rc;
}

static void set_step_result(drb_run *r, const char *id, drb_step_status st, const json_t *result)
{
	drb_err e = {0};

	drb_lua_lock(r->lua);
	drb_lua_set_step(r->lua, id, drb_status_name(st), result, &e);
	drb_lua_unlock(r->lua);
}

static void summary_add(drb_run *r, const char *uid, drb_step_status st, int attempts, double dur,
			const char *error)
{
	drb_summary_add(r, uid, drb_status_name(st), attempts, llround(dur * 1000), error);
}

/* Ends a unit: logs step.end, records the result. */
static drb_step_status finish(drb_run *r, const drb_step *s, const char *uid, int top,
			      drb_step_status st, int attempts, double t0, const json_t *item,
			      json_t *result, const drb_err *cause, const json_t *extra)
{
	double dur = drb_mono_now() - t0;
	json_t *data = json_pack("{s:s, s:i, s:I}", "status", drb_status_name(st), "attempts",
				 attempts, "duration_ms", (json_int_t)llround(dur * 1000));
	drb_err e = {0};

	if (st == DRB_ST_FAILED || st == DRB_ST_REFUSED) {
		json_object_set_new(data, "error", json_string(cause->msg));
		json_object_set_new(data, "code", json_string(drb_code_name(cause->code)));
	}
	if (extra)
		json_object_update(data, (json_t *)extra);
	json_object_set(data, "result", result ? result : json_null());
	drb_emit(r, DRB_EV_STEP_END, uid, data, &e);
	json_decref(data);
	drb_run_note_rpo(r, result);
	if (top)
		set_step_result(r, s->id, st, result);
	summary_add(r, uid, st, attempts, dur,
		    (st == DRB_ST_FAILED || st == DRB_ST_REFUSED) ? cause->msg : NULL);
	(void)item;
	return st;
}

void drb_step_skip(drb_run *r, const drb_step *s, const char *reason)
{
	json_t *extra = json_pack("{s:s}", "reason", reason);
	drb_err none = {0};

	finish(r, s, s->id, 1, DRB_ST_SKIPPED, 0, drb_mono_now(), NULL, NULL, &none, extra);
	json_decref(extra);
}

/* Resume: a unit the interrupted run already finished, or decided at resume time. Returns 1
 * when handled (*st set), 0 when it must run. */
static int resume_unit(drb_run *r, const drb_step *s, const char *uid, int top, const json_t *item,
		       drb_step_status *st)
{
	drb_prior *p = drb_prior_find(r, uid);

	if (!p)
		return 0;
	if (p->ended && (!strcmp(p->status, "ok") || !strcmp(p->status, "skipped") ||
			 !strcmp(p->status, "assumed_done"))) {
		*st = !strcmp(p->status, "ok")	      ? DRB_ST_OK
		      : !strcmp(p->status, "skipped") ? DRB_ST_SKIPPED
						      : DRB_ST_ASSUMED;
		if (top)
			set_step_result(r, s->id, *st, p->result);
		drb_run_note_rpo(r, p->result); /* RPO is still measured after a resume */
		if (*st == DRB_ST_OK && !s->for_each.src)
			drb_unit_add(r, s, uid, item, p->result, p->end_order);
		summary_add(r, uid, *st, 0, 0, NULL);
		return 1;
	}
	if (!strcmp(p->status, "assumed_done") || !strcmp(p->status, "verified_done")) {
		drb_err none = {0};
		json_t *extra =
		    json_pack("{s:s}", "resumed",
			      !strcmp(p->status, "verified_done") ? "done_when" : "--assume-done");

		*st = finish(r, s, uid, top,
			     !strcmp(p->status, "verified_done") ? DRB_ST_OK : DRB_ST_ASSUMED, 0,
			     drb_mono_now(), item, NULL, &none, extra);
		json_decref(extra);
		return 1;
	}
	return 0; /* "rerun" */
}

/* Runs one unit: a plain step, or one for_each child (item != NULL). */
static drb_step_status run_unit(drb_run *r, const drb_step *s, const char *uid, int top,
				const json_t *item, json_t **result_out, drb_err *err)
{
	const char *as = s->as ? s->as : "item";
	double t0 = drb_mono_now(), deadline = 0, poll_end = 0;
	drb_action custom;
	const drb_action *a;
	json_t *args = NULL, *result = NULL, *start = NULL;
	drb_step_status st = DRB_ST_FAILED;
	drb_retry single = {.attempts = 1, .exponential = 1, .initial_s = 1, .max_s = 1};
	const drb_retry *policy = s->has_retry ? &s->retry : &single;
	int attempts = 0, mut, rc, ok, polls = 0;
	double wait_t0 = 0, iv, slept = 0, w0;
	json_t *waited = NULL;

	if (!item)
		as = NULL;
	if (r->resuming && resume_unit(r, s, uid, top, item, &st))
		return st;
	if (s->timeout_s > 0)
		deadline = t0 + s->timeout_s;
	if (r->deadline > 0 && (deadline == 0 || r->deadline < deadline))
		deadline = r->deadline;
	/* One budget for the whole step: every attempt, every retry's backoff and every poll of
	 * an until share it (an until without timeout or run deadline polls for
	 * DRB_DEFAULT_POLL_TIMEOUT, and its calls end there too). */
	if (s->until.src) {
		poll_end = deadline > 0 ? deadline : t0 + DRB_DEFAULT_POLL_TIMEOUT;
		deadline = poll_end;
	}

	if (s->when.src) {
		int go = 0;

		if (eval_bool(r, &s->when, "when", as, item, NULL, deadline, &go, err))
			goto failed;
		if (!go) {
			json_t *extra = json_pack("{s:s}", "reason", "when is false");

			st = finish(r, s, uid, top, DRB_ST_SKIPPED, 0, t0, item, NULL, err, extra);
			json_decref(extra);
			goto out;
		}
	}
	a = find_action(r, s->action, &custom);
	if (!a) {
		drb_err_set(err, DRB_EINVAL, "unknown action '%s'", s->action);
		goto failed;
	}
	if (interpolate(r, s, s->with, as, item, NULL, deadline, &args, err)) {
		drb_err_prefix(err, "with: ");
		goto failed;
	}
	mut = drb_action_mutates(a, s, args);
	start = json_pack("{s:s, s:O, s:b}", "action", s->action, "with", args, "mutating", mut);
	if (item)
		json_object_set(start, "item", (json_t *)item);
	if (drb_emit(r, DRB_EV_STEP_START, uid, start, err))
		goto failed;

	wait_t0 = drb_mono_now();
	for (;;) {
		attempts++;
		json_decref(result);
		result = NULL;
		drb_err_clear(err);
		rc = drb_invoke(r, a, s, uid, &(drb_vars){as, item, NULL}, args, deadline, &result,
				err);
		/* a read-only script that raises (assert(lag < max, "...")) is a check saying no */
		if (rc == DRB_ESCRIPT && a == &drb_action_lua && !mut)
			err->cause = DRB_CAUSE_CHECK;
		if (s->until.src)
			polls++;
		iv = poll_interval(s->every_s, drb_mono_now() - wait_t0);
		if (rc == 0 && s->until.src) {
			int met = 0;

			rc =
			    eval_bool(r, &s->until, "until", as, item, result, deadline, &met, err);
			if (rc == 0 && !met) {
				char w[32];

				if (drb_mono_now() + iv > poll_end) {
					drb_duration_format(poll_end - t0, w, sizeof(w));
					drb_err_set(err, DRB_ETIMEOUT,
						    "until: '%s' not met within %s", s->until.src,
						    w);
					err->cause = DRB_CAUSE_CHECK;
					goto failed;
				}
				w0 = drb_mono_now();
				rc = wait_for(r, iv, poll_end);
				slept += drb_mono_now() - w0;
				if (rc != 0) {
					drb_err_set(err, rc, "until: interrupted");
					goto failed;
				}
				attempts--; /* polling is not a retry */
				continue;
			}
		} else if (rc != 0 && s->until.src && drb_code_retryable(rc) &&
			   drb_mono_now() + iv <= poll_end) {
			/* a transient error while polling: keep polling */
			json_t *d = json_pack("{s:s}", "error", err->msg);
			int wrc;

			drb_emit(r, DRB_EV_STEP_POLL_ERROR, uid, d, err);
			json_decref(d);
			w0 = drb_mono_now();
			wrc = wait_for(r, iv, poll_end);
			slept += drb_mono_now() - w0;
			if (wrc == 0) {
				attempts--;
				continue;
			}
		}
		if (rc == 0 && s->assert_.src) {
			ok = 0;
			rc = eval_bool(r, &s->assert_, "assert", as, item, result, deadline, &ok,
				       err);
			if (rc == 0 && !ok) {
				rc = drb_err_set(err, DRB_ESCRIPT, "assert failed: %s",
						 s->assert_.src);
				err->cause = DRB_CAUSE_CHECK;
			}
		} else if (rc == 0 && !strcmp(s->action, "exec")) {
			json_t *code = json_object_get(result, "exit_code");

			if (json_integer_value(code) != 0)
				rc = drb_err_set(err, DRB_ESCRIPT, "exit code %lld",
						 (long long)json_integer_value(code));
		}
		if (rc == 0) {
			st = DRB_ST_OK;
			break;
		}
		if (rc == DRB_EDENIED && a == &drb_action_approval) {
			st = DRB_ST_REFUSED;
			break;
		}
		if (!step_retryable(rc) || attempts >= policy->attempts)
			goto failed;
		{
			double delay = drb_retry_delay(policy, attempts, drb_random_unit());
			json_t *d = NULL;
			drb_err e2 = {0};

			/* no retry is announced that the step's budget has no room for */
			if (deadline > 0 && drb_mono_now() + delay >= deadline) {
				size_t n = strlen(err->msg);

				snprintf(
				    err->msg + n, sizeof(err->msg) - n,
				    " (not retried: the step's time budget ends before attempt "
				    "%d could start)",
				    attempts + 1);
				goto failed;
			}
			d = json_pack("{s:i, s:s, s:f}", "attempt", attempts, "error", err->msg,
				      "delay_s", delay);
			drb_emit(r, DRB_EV_STEP_RETRY, uid, d, &e2);
			json_decref(d);
			if ((rc = wait_for(r, delay, deadline)) != 0)
				goto failed;
		}
	}
	/* the time an until waited for its condition, from the first check to the last */
	if (s->until.src && polls)
		waited = json_pack("{s:i, s:I, s:I}", "polls", polls, "wait_ms",
				   (json_int_t)llround((drb_mono_now() - wait_t0) * 1000),
				   "slept_ms", (json_int_t)llround(slept * 1000));
	if (st == DRB_ST_OK && mut)
		drb_unit_add(r, s, uid, item, result, 0);
	st = finish(r, s, uid, top, st, attempts, t0, item, result, err, waited);
	goto out;
failed:
	if (!err->code)
		drb_err_set(err, DRB_ERR, "failed");
	if (s->until.src && polls)
		waited = json_pack("{s:i, s:I, s:I}", "polls", polls, "wait_ms",
				   (json_int_t)llround((drb_mono_now() - wait_t0) * 1000),
				   "slept_ms", (json_int_t)llround(slept * 1000));
	st = finish(r, s, uid, top, DRB_ST_FAILED, attempts, t0, item, result, err, waited);
out:
	json_decref(waited);
	if (result_out) {
		*result_out = result;
		result = NULL;
	}
	json_decref(result);
	json_decref(args);
	json_decref(start);
	return st;
}

/* for_each: the parent evaluates the list, children run on up to max_parallel threads. */
typedef struct fanout {
	drb_run *r;
	const drb_step *s;
	json_t *items;
	size_t next, n;
	int stop; /* a child failed and the policy is not continue */
	int stop_on_failure;
	pthread_mutex_t mu;
	drb_step_status *st;
	json_t **results;
	drb_err *errs;
} fanout;

static void *fanout_worker(void *arg)
{
	fanout *f = arg;

	for (;;) {
		size_t i;
		char uid[256];

		pthread_mutex_lock(&f->mu);
		if (f->stop || f->next >= f->n || (*f->r->cancel)) {
			pthread_mutex_unlock(&f->mu);
			return NULL;
		}
		i = f->next++;
		pthread_mutex_unlock(&f->mu);
		snprintf(uid, sizeof(uid), "%s[%zu]", f->s->id, i + 1);
		f->st[i] = run_unit(f->r, f->s, uid, 0, json_array_get(f->items, i), &f->results[i],
				    &f->errs[i]);
		if (f->st[i] == DRB_ST_FAILED && f->stop_on_failure) {
			pthread_mutex_lock(&f->mu);
			f->stop = 1;
			pthread_mutex_unlock(&f->mu);
		}
	}
}

static drb_step_status run_fanout(drb_run *r, const drb_step *s, drb_err *err)
{
	fanout f = {.r = r, .s = s};
	pthread_t th[DRB_MAX_FANOUT];
	size_t nth = 0, width, failed = 0, done = 0;
	double t0 = drb_mono_now();
	json_t *results = NULL, *start = NULL, *failures = NULL, *extra = NULL;
	drb_step_status st = DRB_ST_FAILED;
	drb_on_failure pol = s->on_failure ? s->on_failure : r->rb->on_failure;
	char chunk[512];
	drb_prior *p;

	/* resume: a finished parent is restored as a whole */
	if (r->resuming && (p = drb_prior_find(r, s->id)) && p->ended &&
	    strcmp(p->status, "failed") != 0) {
		size_t idlen = strlen(s->id);

		resume_unit(r, s, s->id, 1, NULL, &st);
		/* its completed children may still have to be undone */
		for (size_t i = 0; s->rollback && i < r->n_prior; i++) {
			drb_prior *c = &r->prior[i];

			if (!strncmp(c->uid, s->id, idlen) && c->uid[idlen] == '[' && c->ended &&
			    !strcmp(c->status, "ok"))
				drb_unit_add(r, s, c->uid, c->item, c->result, c->end_order);
		}
		return st;
	}
	pthread_mutex_init(&f.mu, NULL);
	snprintf(chunk, sizeof(chunk), "%s:%d:%d (for_each)", r->rb->path, s->for_each.pos.line,
		 s->for_each.pos.col);
	drb_lua_lock(r->lua);
	r->lua_ro = 1;
	if (drb_bind(r, NULL, NULL, NULL, err) == 0)
		drb_lua_eval(r->lua, s->for_each.src, chunk, &f.items, err);
	r->lua_ro = 0;
	drb_lua_unlock(r->lua);
	if (!f.items)
		goto failed;
	if (json_is_object(f.items) && json_object_size(f.items) == 0) {
		json_decref(f.items);
		f.items = json_array();
	}
	if (!json_is_array(f.items)) {
		drb_err_set(err, DRB_EINVAL, "for_each: '%s' is not a list", s->for_each.src);
		goto failed;
	}
	f.n = json_array_size(f.items);
	if (f.n > DRB_FOR_EACH_MAX) {
		drb_err_set(err, DRB_ELIMIT,
			    "for_each: '%s' has %zu items, more than the %d allowed",
			    s->for_each.src, f.n, DRB_FOR_EACH_MAX);
		goto failed;
	}
	f.stop_on_failure = s->critical && pol != DRB_ONF_CONTINUE;
	f.st = calloc(f.n + 1, sizeof(*f.st));
	f.results = calloc(f.n + 1, sizeof(*f.results));
	f.errs = calloc(f.n + 1, sizeof(*f.errs));
	if (!f.st || !f.results || !f.errs) {
		drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto failed;
	}
	for (size_t i = 0; i < f.n; i++)
		f.st[i] = DRB_ST_SKIPPED;
	width = s->max_parallel > 0 ? (size_t)s->max_parallel : DRB_MAX_FANOUT;
	if (width > f.n)
		width = f.n;
	if (width > DRB_MAX_FANOUT)
		width = DRB_MAX_FANOUT;
	start = json_pack("{s:s, s:s, s:I, s:I}", "action", s->action, "for_each", s->for_each.src,
			  "items", (json_int_t)f.n, "max_parallel", (json_int_t)width);
	if (drb_emit(r, DRB_EV_STEP_START, s->id, start, err))
		goto failed;
	for (nth = 0; nth < width; nth++)
		if (pthread_create(&th[nth], NULL, fanout_worker, &f) != 0)
			break;
	if (nth == 0 && f.n > 0)
		fanout_worker(&f); /* no thread could start: run them here, one by one */
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);

	results = json_array();
	failures = json_array();
	for (size_t i = 0; i < f.n; i++) {
		json_array_append(results, f.results[i] ? f.results[i] : json_null());
		if (f.st[i] == DRB_ST_FAILED || f.st[i] == DRB_ST_REFUSED) {
			char uid[256];

			snprintf(uid, sizeof(uid), "%s[%zu]", s->id, i + 1);
			json_array_append_new(
			    failures, json_pack("{s:s, s:s}", "step", uid, "error", f.errs[i].msg));
			if (!failed++)
				*err = f.errs[i];
		}
		if (i < f.next)
			done++;
	}
	if (failed)
		drb_err_prefix(err, "%zu of %zu failed, first: ", failed, f.n);
	else if (done < f.n)
		drb_err_set(err, DRB_EINTERRUPTED, "stopped after %zu of %zu items", done, f.n);
	st = failed || done < f.n ? DRB_ST_FAILED : DRB_ST_OK;
	extra = json_pack("{s:O}", "failures", failures);
	st = finish(r, s, s->id, 1, st, (int)done, t0, NULL, results, err, extra);
	goto out;
failed:
	st = finish(r, s, s->id, 1, DRB_ST_FAILED, 0, t0, NULL, NULL, err, NULL);
out:
	for (size_t i = 0; f.results && i < f.n; i++)
		json_decref(f.results[i]);
	free(f.results);
	free(f.st);
	free(f.errs);
	json_decref(f.items);
	json_decref(results);
	json_decref(failures);
	json_decref(start);
	json_decref(extra);
	pthread_mutex_destroy(&f.mu);
	return st;
}

drb_step_status drb_step_execute(drb_run *r, const drb_step *s, drb_err *err)
{
	drb_err_clear(err);
	if (s->for_each.src)
		return run_fanout(r, s, err);
	return run_unit(r, s, s->id, 1, NULL, NULL, err);
}

/* Used by the resume decision for done_when (string or call form). */
int drb_step_done_when(drb_run *r, const drb_step *s, int *done, drb_err *err);
int drb_step_done_when(drb_run *r, const drb_step *s, int *done, drb_err *err)
{
	*done = 0;
	if (s->done_when.src)
		return eval_bool(r, &s->done_when, "done_when", NULL, NULL, NULL, 0, done, err);
	if (s->done_when_call) {
		const drb_call_spec *c = s->done_when_call;
		drb_action custom;
		const drb_action *a = find_action(r, c->action, &custom);
		json_t *args = NULL, *result = NULL;
		int rc;

		if (!a)
			return drb_err_set(err, DRB_EINVAL, "done_when: unknown action '%s'",
					   c->action);
		if ((rc = interpolate(r, s, c->with, NULL, NULL, NULL, 0, &args, err)))
			return rc;
		r->phase_ro = 1;
		rc = drb_invoke(r, a, s, s->id, NULL, args, drb_mono_now() + 60, &result, err);
		r->phase_ro = 0;
		if (rc == 0 && c->assert_.src)
			rc = eval_bool(r, &c->assert_, "done_when", NULL, NULL, result, 0, done,
				       err);
		else if (rc == 0)
			*done = 1;
		json_decref(args);
		json_decref(result);
		return rc;
	}
	return 0;
}
