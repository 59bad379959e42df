/* A run from start to end: parameters, lock, audit log, Lua state, preflight, the steps in
 * order, the failure policy (abort, rollback, continue), notifications and the final verdict
 * with RTO/RPO. Also the seam through which every provider call is performed and logged. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <drbook/util.h>

#include "engine_int.h"

#define DRB_VERSION "0.1.0"

/* ---- events ---------------------------------------------------------------------------- */

/* The secrets are the leaves of the parameters declared `secret: true`: strings, and numbers
 * kept both as numbers and as their decimal text. A string holding a secret's text is hidden
 * whole; a number equal to a numeric secret is hidden. A number's text shorter than 4
 * characters is matched as a number only (it would hide every string holding a digit). */
static int leaks(const json_t *x, const json_t *secrets)
{
	size_t i;
	json_t *s;

	json_array_foreach(secrets, i, s)
	{
		if (json_is_string(x) && json_is_string(s) &&
		    strstr(json_string_value(x), json_string_value(s)))
			return 1;
		if (json_is_number(x) && json_is_number(s) &&
		    json_number_value(x) == json_number_value(s))
			return 1;
	}
	return 0;
}

static void redact_into(json_t *v, const json_t *secrets)
{
	size_t i;
	const char *k;
	json_t *x;

	if (json_is_object(v)) {
		void *tmp;

		json_object_foreach_safe(v, tmp, k, x)
		{
			if (leaks(x, secrets))
				json_object_set_new(v, k, json_string("***"));
			else
				redact_into(x, secrets);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			if (leaks(x, secrets))
				json_array_set_new(v, i, json_string("***"));
			else
				redact_into(x, secrets);
		}
	}
}

/* Adds the leaves of a secret parameter's value to secrets (see leaks()). */
static void add_secret(json_t *secrets, const json_t *v, int depth)
{
	size_t i;
	const char *k;
	json_t *x;

	if (depth > 64)
		return;
	if (json_is_string(v) && json_string_length(v) > 0) {
		json_array_append(secrets, (json_t *)v);
	} else if (json_is_number(v)) {
		char buf[64];

		json_array_append(secrets, (json_t *)v);
		if (json_is_integer(v))
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else
			snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		if (strlen(buf) >= 4)
			json_array_append_new(secrets, json_string(buf));
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) add_secret(secrets, x, depth + 1);
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) add_secret(secrets, x, depth + 1);
	}
}

json_t *drb_redact(drb_run *r, const json_t *v)
{
	json_t *c = json_deep_copy(v);

	if (c && r->secrets && json_array_size(r->secrets))
		redact_into(c, r->secrets);
	return c;
}

int drb_emit(drb_run *r, const char *event, const char *step, const json_t *data, drb_err *err)
{
	json_t *red = data ? drb_redact(r, data) : json_object();
	json_t *shown = NULL;
	char ts[32];
	int rc;

	if (!red)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	if (r->phase && step && json_is_object(red)) /* a shadow setup or teardown step's */
		json_object_set_new(red, "phase", json_string(r->phase));
	rc = r->audit ? drb_audit_append(r->audit, event, step, red, err) : 0;
	if (rc == DRB_ELIMIT) {
		/* an oversized answer: keep the record, drop the bulky part */
		json_object_set_new(red, "result", json_string("(too large for the audit log)"));
		json_object_set_new(red, "response", json_string("(too large for the audit log)"));
		rc = drb_audit_append(r->audit, event, step, red, err);
	}
	if (rc) {
		drb_err_prefix(err, "audit log: ");
		r->no_rollback = 1;
		if (!r->stop_reason[0]) /* the reason every later step reports */
			snprintf(r->stop_reason, sizeof(r->stop_reason),
				 "%s: nothing more may run unrecorded", err->msg);
		*r->cancel = 1; /* nothing may proceed unrecorded */
		goto out;
	}
	if (r->o->sink.event) {
		drb_rfc3339_ms(drb_wall_ms(), ts);
		shown = drb_audit_scrub(red);
		r->o->sink.event(r->o->sink.ud, ts, event, step, shown ? shown : red);
	}
	drb_evidence_after(r, event);
out:
	json_decref(shown);
	json_decref(red);
	return rc;
}

/* ---- the seam: every provider call is performed here and logged ------------------------ */

typedef struct step_seam {
	drb_seam base;
	drb_run *r;
	const char *uid;
} step_seam;

static int seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		     json_t **response, drb_err *err)
{
	step_seam *ss = (step_seam *)s;
	double t0 = drb_mono_now();
	json_t *resp = NULL, *data;
	drb_err logerr = {0};
	int rc;

	*response = NULL;
	if (ss->r->replay)
		rc = drb_replay_answer(ss->r, ss->uid, c, &resp, err);
	else
		rc = perform(arg, &resp, err);
	data = json_pack("{s:s, s:s, s:s?, s:O?, s:I}", "service", c->service, "operation",
			 c->operation, "region", c->region, "request", c->request, "latency_ms",
			 (json_int_t)llround((drb_mono_now() - t0) * 1000));
	if (resp) {
		json_object_set(data, "status", json_object_get(resp, "status"));
		json_object_set(data, "response", resp);
	}
	if (rc) {
		json_object_set_new(data, "error", json_string(err->msg));
		json_object_set_new(data, "code", json_string(drb_code_name(rc)));
	}
	if (drb_emit(ss->r, "call", ss->uid, data, &logerr) && !rc) {
		rc = DRB_EIO;
		*err = logerr;
	}
	json_decref(data);
	if (rc) {
		json_decref(resp);
		return rc;
	}
	*response = resp;
	return 0;
}

/* ---- invoking actions ------------------------------------------------------------------ */

int drb_action_mutates(const drb_action *a, const drb_step *s, const json_t *args)
{
	switch (a->mode) {
	case DRB_ACT_RO:
		return 0;
	case DRB_ACT_MUT:
		return 1;
	case DRB_ACT_DEPENDS:
		return a->mode_of ? a->mode_of(args) : 1;
	case DRB_ACT_STEP:
		return !(s && s->read_only);
	}
	return 1;
}

/* ---- the guard: what a call may change, checked before it is performed ---------------- */

int drb_shadow_name(const char *v)
{
	size_t n = strcspn(v, "?#"), start = 0;

	while (n > 0 && (v[n - 1] == '/' || v[n - 1] == '.'))
		n--;
	for (size_t i = 0; i < n; i++)
		if (v[i] == '/' || v[i] == ':')
			start = i + 1;
	return n - start > 6 &&
	       (!strncmp(v + start, "drill-", 6) || !strncmp(v + start, "drill.", 6));
}

/* Actions a shadow drill may run whatever their arguments: they change nothing outside
 * drbook (approval, sleep), reach people rather than the system being rehearsed (notify), or
 * are Lua whose every call is itself guarded here (lua, custom Lua actions). exec and a
 * mutating http.request are not among them: what they touch is not known, or is their url. */
static int shadow_exempt(const drb_action *a)
{
	return a == &drb_action_lua || a == &drb_action_approval || !a->fn ||
	       !strcmp(a->name, "sleep") || !strcmp(a->name, "notify");
}

/* The name a resource argument stands for: a connection's RDS instance when it names one
 * (pg actions take a connection), else the value itself. Borrowed. */
static const char *resource_name(const drb_run *r, const char *arg, const char *v)
{
	const json_t *spec = json_object_get(r->connections, v);
	const char *inst = json_string_value(json_object_get(spec, "rds_instance"));

	return !strcmp(arg, "connection") && inst ? inst : v;
}

static int shadow_ok(drb_run *r, const char *arg, const json_t *v)
{
	const char *name;
	int made;

	if (!json_is_string(v))
		return 0;
	name = resource_name(r, arg, json_string_value(v));
	if (drb_shadow_name(name))
		return 1;
	pthread_mutex_lock(&r->mu);
	made = json_object_get(r->shadow_made, name) != NULL;
	pthread_mutex_unlock(&r->mu);
	return made;
}

/* Refusals on this thread: a Lua script that catches one still fails its step (drb_invoke). */
static __thread int shadow_refusals;
static __thread char shadow_refusal[600];

/* In a shadow drill, a mutating call must name its resource (the schema's .resource
 * argument; a list: every item) and each must be a shadow resource: by its name, or because
 * this run's setup made it. Refused before anything is sent, recorded as shadow.violation. */
static int shadow_check(drb_run *r, const drb_action *a, const char *uid, const json_t *args,
			drb_err *err)
{
	const char *arg = a->schema ? a->schema->resource : NULL;
	const json_t *v = arg ? json_object_get(args, arg) : NULL;
	int ok = v != NULL;
	json_t *d;
	drb_err e = {0};

	if (shadow_exempt(a))
		return 0;
	if (json_is_array(v)) {
		size_t i;
		json_t *x;

		ok = json_array_size(v) > 0;
		json_array_foreach(v, i, x) ok = ok && shadow_ok(r, arg, x);
	} else if (v) {
		ok = shadow_ok(r, arg, v);
	}
	if (ok)
		return 0;
	if (!arg)
		drb_err_set(err, DRB_ESHADOW,
			    "shadow drill: %s changes something it does not name (no resource "
			    "argument): refused before it was sent",
			    a->name);
	else if (!v)
		drb_err_set(err, DRB_ESHADOW,
			    "shadow drill: %s without '%s': refused before it was sent", a->name,
			    arg);
	else
		drb_err_set(err, DRB_ESHADOW,
			    "shadow drill: %s on %s '%s', which is not a shadow resource (its "
			    "name does not start with drill- and this run's setup did not create "
			    "it): refused before it was sent",
			    a->name, arg,
			    json_is_string(v) ? resource_name(r, arg, json_string_value(v))
					      : "(a list)");
	d = json_pack("{s:s, s:s?, s:O?, s:s}", "action", a->name, "resource", arg, "value", v,
		      "error", err->msg);
	drb_emit(r, "shadow.violation", uid, d, &e);
	json_decref(d);
	shadow_refusals++;
	snprintf(shadow_refusal, sizeof(shadow_refusal), "%s", err->msg);
	return DRB_ESHADOW;
}

/* Setup's changes make their resources shadow resources for the rest of the run: the
 * resource argument's value, and the id and arn the answer gives. */
static void shadow_note_made(drb_run *r, const drb_action *a, const json_t *args,
			     const json_t *result)
{
	const char *arg = a->schema ? a->schema->resource : NULL;
	const char *keys[] = {"id", "arn"};
	json_t *v = arg ? json_object_get(args, arg) : NULL;

	pthread_mutex_lock(&r->mu);
	if (json_is_string(v))
		json_object_set_new(r->shadow_made, resource_name(r, arg, json_string_value(v)),
				    json_true());
	for (size_t i = 0; i < 2 && json_is_object(result); i++) {
		const char *x = json_string_value(json_object_get(result, keys[i]));

		if (x && *x)
			json_object_set_new(r->shadow_made, x, json_true());
	}
	pthread_mutex_unlock(&r->mu);
}

/* The one check before every action call (drb_invoke, and each call a Lua script makes):
 * preflight, plan and read-only Lua change nothing; a shadow drill changes nothing but
 * shadow resources. ctx names the read-only context for the message. */
static int guard(drb_run *r, const drb_action *a, const char *uid, const json_t *args, int mut,
		 int ro, const char *ctx, drb_err *err)
{
	if (!mut)
		return 0;
	if (ro)
		return drb_err_set(err, DRB_EDENIED, "%s is a mutating action: not allowed in %s",
				   a->name, r->o->mode == DRB_MODE_PLAN ? "plan" : ctx);
	if (r->shadow)
		return shadow_check(r, a, uid, args, err);
	return 0;
}

static int seam_note(drb_seam *s, const char *event, const json_t *data, drb_err *err)
{
	step_seam *ss = (step_seam *)s;

	return ss->r->replay ? 0 : drb_emit(ss->r, event, ss->uid, data, err);
}

static int call_provider(drb_run *r, const drb_action *a, const char *uid, const json_t *args,
			 double deadline, int ro, json_t **result, drb_err *err)
{
	step_seam seam = {{seam_call, NULL, seam_note}, r, uid};
	drb_action_ctx ctx = {
	    .seam = &seam.base,
	    .step_id = uid,
	    .connections = r->connections,
	    .drill = r->o->drill,
	    .read_only = ro,
	    .deadline = deadline,
	    .cancel = r->cancel,
	    .replay = r->replay,
	    .engine = r,
	};
	int rc = a->fn(&ctx, args, result, err);

	if (rc == 0 && r->shadow && r->phase && !strcmp(r->phase, "setup") && !ro)
		shadow_note_made(r, a, args, *result);
	return rc;
}

/* Calls from Lua scripts (aws.rds.x{...}, pg.query(...)) arrive here with the Lua lock held. */
typedef struct lua_call_ctx {
	const char *uid;
	double deadline;
} lua_call_ctx;
static __thread lua_call_ctx *lua_current;

static int lua_invoke(void *ud, const drb_action *a, const json_t *args, json_t **result,
		      drb_err *err)
{
	drb_run *r = ud;
	int ro = r->phase_ro || r->lua_ro;
	int rc;

	if ((rc = guard(r, a, lua_current ? lua_current->uid : "lua", args,
			drb_action_mutates(a, NULL, args), ro, "a read-only context", err)))
		return rc;
	rc = call_provider(r, a, lua_current ? lua_current->uid : "lua", args,
			   lua_current ? lua_current->deadline : r->deadline, ro, result, err);
	if (rc == 0 && drb_action_mutates(a, NULL, args)) {
		pthread_mutex_lock(&r->mu);
		r->changed = 1;
		pthread_mutex_unlock(&r->mu);
	}
	return rc;
}

int drb_invoke(drb_run *r, const drb_action *a, const drb_step *s, const char *uid,
	       const json_t *args, double deadline, json_t **result, drb_err *err)
{
	int mut = drb_action_mutates(a, s, args), rc;

	*result = NULL;
	/* the literals were checked by validate; this catches what ${ } produced */
	if ((rc = drb_args_check(a->schema, args, err)))
		return drb_err_prefix(err, "%s: ", a->name);
	if ((rc = guard(r, a, uid, args, mut, r->phase_ro, "preflight", err)))
		return rc;
	if (mut) {
		pthread_mutex_lock(&r->mu);
		r->changed = 1;
		pthread_mutex_unlock(&r->mu);
	}
	if (a == &drb_action_approval)
		return drb_approval(r, s, uid, args, result, err);
	if (a == &drb_action_lua || !a->fn) {
		lua_call_ctx lc = {uid, deadline};
		char chunk[512];
		const char *script = s ? s->script : NULL;
		int was_ro = r->lua_ro, refusals = shadow_refusals;

		if (!script)
			script = json_string_value(json_object_get(args, "script"));
		drb_lua_lock(r->lua);
		lua_current = &lc;
		r->lua_ro = !mut;
		if (a == &drb_action_lua) {
			if (!script) {
				rc = drb_err_set(err, DRB_EINVAL, "lua: no script");
			} else {
				snprintf(chunk, sizeof(chunk), "%s:%d:%d (script)", r->rb->path,
					 s ? s->script_pos.line : 0, s ? s->script_pos.col : 0);
				rc = drb_lua_run(r->lua, script, chunk, result, err);
			}
		} else {
			rc = drb_lua_call_custom(r->lua, a->name, args, result, err);
		}
		r->lua_ro = was_ro;
		lua_current = NULL;
		drb_lua_unlock(r->lua);
		if (shadow_refusals != refusals && rc != DRB_ESHADOW) {
			/* the script caught the refusal, or raised another error after it: the
			 * step still failed the drill's one rule */
			json_decref(*result);
			*result = NULL;
			rc = drb_err_set(err, DRB_ESHADOW, "%s", shadow_refusal);
		}
		return rc;
	}
	return call_provider(r, a, uid, args, deadline, !mut, result, err);
}

int drb_bind(drb_run *r, const char *as, const json_t *item, const json_t *result, drb_err *err)
{
	int rc = drb_lua_set_result(r->lua, result, err);

	if (!rc && as)
		rc = drb_lua_set_global(r->lua, as, item ? item : json_null(), err);
	return rc;
}

void drb_unit_add(drb_run *r, const drb_step *s, const char *uid, const json_t *item,
		  const json_t *result, int64_t order)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_units == r->cap_units) {
		size_t cap = r->cap_units ? r->cap_units * 2 : 16;
		drb_unit *u = realloc(r->units, cap * sizeof(*u));

		if (!u)
			goto out;
		r->units = u;
		r->cap_units = cap;
	}
	r->units[r->n_units].step = s;
	r->units[r->n_units].uid = strdup(uid);
	r->units[r->n_units].item = item ? json_deep_copy(item) : NULL;
	r->units[r->n_units].result = result ? json_deep_copy(result) : NULL;
	r->units[r->n_units].order = order ? order : ++r->unit_order;
	if (order > r->unit_order)
		r->unit_order = order;
	r->n_units++;
out:
	pthread_mutex_unlock(&r->mu);
}

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

	drb_emit(r, "rollback.begin", NULL, d, &e);
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
			drb_emit(r, "rollback.skipped", u->uid, data, &e);
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
		drb_emit(r, "rollback.start", u->uid, data, &e);
		json_decref(data);
		if (!rc && !a)
			rc = drb_err_set(&e, DRB_EINVAL, "unknown action '%s'", c->action);
		if (!rc) {
			drb_step tmp = *s;

			tmp.script = c->script;
			tmp.read_only = 0;
			rc = drb_invoke(r, a, &tmp, u->uid, args, drb_mono_now() + 600, &res, &e);
		}
		data = json_pack("{s:s, s:I, s:O?}", "status", rc ? "failed" : "ok", "duration_ms",
				 (json_int_t)llround((drb_mono_now() - t0) * 1000), "result", res);
		if (rc) {
			json_object_set_new(data, "error", json_string(e.msg));
			failed++;
		}
		drb_emit(r, "rollback.end", u->uid, data, &e);
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

void drb_run_note_rpo(drb_run *r, const json_t *result)
{
	const json_t *rpo = json_is_object(result) ? json_object_get(result, "rpo_s") : NULL;

	if (!json_is_number(rpo))
		return;
	pthread_mutex_lock(&r->mu);
	r->rpo_s = json_number_value(rpo);
	pthread_mutex_unlock(&r->mu);
}

/* ---- notifications ---------------------------------------------------------------------- */

/* The global `run`: {id, started_at, incident_start, drill, event, status, error}; event,
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
	v = json_pack("{s:s, s:s, s:s?, s:b, s:s?, s:s?, s:s?}", "id", r->run_id, "started_at",
		      started, "incident_start", r->incident_ms ? incident : NULL, "drill",
		      r->o->drill, "event", event, "status", status, "error",
		      error && *error ? error : NULL);
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

	if (r->o->mode == DRB_MODE_PLAN)
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
		if (args && drb_invoke(r, a, &tmp, uid, args, drb_mono_now() + 60, &res, &e) == 0) {
			json_decref(res);
		} else {
			json_t *d = json_pack("{s:s, s:s}", "event", when, "error", e.msg);

			drb_emit(r, "notify.failed", uid, d, &e);
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

void drb_run_result_free(drb_run_result *r)
{
	if (!r)
		return;
	json_decref(r->steps);
	json_decref(r->plan);
	json_decref(r->critical_path);
	r->steps = r->plan = r->critical_path = NULL;
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

/* Lua print, one lua.print record per call, up to DRB_PRINT_RUN_MAX bytes per run: a script
 * printing in a loop must not fill the disk holding the log. Past the cap, one record says
 * so and the rest is dropped; the script itself goes on. Called under the Lua lock. */
#define DRB_PRINT_RUN_MAX ((size_t)8 * 1024 * 1024)

static void print_to_log(void *ud, const char *line)
{
	drb_run *r = ud;
	size_t n = strlen(line);
	json_t *d = NULL;
	drb_err e = {0};

	if (r->printed > DRB_PRINT_RUN_MAX)
		return;
	if (n > DRB_PRINT_RUN_MAX - r->printed) {
		r->printed = DRB_PRINT_RUN_MAX + 1;
		d = json_pack("{s:s, s:b}", "line",
			      "print output truncated: over 8 MiB in this run", "truncated", 1);
	} else {
		r->printed += n;
		d = json_pack("{s:s}", "line", line);
	}
	drb_emit(r, "lua.print", NULL, d, &e);
	json_decref(d);
}

const char *drb_operator(char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	const char *u = getenv("SUDO_USER");

	if (u && *u)
		return u;
	if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res) {
		snprintf(buf, n, "%s", res->pw_name);
		return buf;
	}
	return "unknown";
}
#define SIGNAL_REASON "interrupted by a signal"

/* Turns the caller's signal count into the run's stop: the first signal stops new steps and
 * running actions (the declared rollbacks then run); a second one while they run skips the
 * rest. Polls: the signal handler itself may only set a counter. */
static void *signal_watcher(void *arg)
{
	drb_run *r = arg;
	const struct timespec tick = {0, 20 * 1000 * 1000};

	while (!r->watch_stop) {
		int n = *r->signals;

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
		pthread_mutex_unlock(&r->mu);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

/* 1 when the run was stopped by one signal only, and nothing else forbids compensating: the
 * declared rollbacks run (with the stop flag cleared for them; a second signal sets it). */
static int rollback_after_signal(drb_run *r)
{
	int yes;

	pthread_mutex_lock(&r->mu);
	yes = r->signals_seen == 1 && !r->no_rollback && !strcmp(r->stop_reason, SIGNAL_REASON);
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
	if (r->signals && pthread_create(&r->watcher, NULL, signal_watcher, r) == 0)
		r->watching = 1;
	r->summary = json_array();
	r->shadow = o->shadow;
	r->shadow_made = json_object();
	r->secrets = json_array();
	r->connections = json_object();
	for (size_t i = 0; i < rb->n_params; i++) {
		json_t *v = json_object_get(params, rb->params[i].name);

		if (rb->params[i].secret)
			add_secret(r->secrets, v, 0);
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
	for (size_t i = 0; drb_engine_action_at(i); i++) {
		const drb_action *a = drb_engine_action_at(i);

		if (a->fn && (rc = drb_lua_register_action(r->lua, a, lua_invoke, r, err)))
			return rc;
	}
	for (size_t i = 0; i < rb->n_lua_modules; i++)
		if ((rc = drb_lua_require(r->lua, rb->lua_modules[i], err)))
			return drb_err_prefix(err, "lua module '%s': ", rb->lua_modules[i]);
	return 0;
}

void drb_run_fini(drb_run *r)
{
	if (r->watching) {
		r->watch_stop = 1;
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
	drb_lua_free(r->lua);
	drb_audit_close(r->audit);
	drb_evidence_close(r->evidence);
	json_decref(r->summary);
	json_decref(r->shadow_made);
	json_decref(r->end_info);
	json_decref(r->secrets);
	json_decref(r->connections);
	json_decref(r->params);
	pthread_mutex_destroy(&r->mu);
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
			if (json_is_array(items)) {
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
} gjob;

struct graph {
	drb_run *r;
	pthread_mutex_t mu; /* protects st, finished, n_finished */
	pthread_cond_t cv;
	unsigned char *state;	/* main thread only */
	unsigned char *blocked; /* skipped because a need did not end ok */
	drb_step_status *st;
	drb_err *errs;
	gjob *jobs;
	size_t *finished; /* ended, not yet looked at by the main thread */
	size_t n_finished;
	size_t running;
};

static void *graph_worker(void *arg)
{
	gjob *j = arg;
	graph *g = j->g;
	drb_step_status st = drb_step_execute(g->r, &g->r->rb->steps[j->i], &g->errs[j->i]);

	pthread_mutex_lock(&g->mu);
	g->st[j->i] = st;
	g->finished[g->n_finished++] = j->i;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static int status_passes(drb_step_status st)
{
	return st == DRB_ST_OK || st == DRB_ST_SKIPPED || st == DRB_ST_ASSUMED;
}

/* The failure policy, applied to a step that ended (the v1 rules, step by step). */
static void graph_ended(drb_run *r, graph *g, size_t i, gstop *x, drb_err *first)
{
	const drb_step *s = &r->rb->steps[i];
	drb_on_failure pol = s->on_failure ? s->on_failure : r->rb->on_failure;
	drb_step_status st = g->st[i];
	const drb_err *err = &g->errs[i];
	int changed;

	g->state[i] = G_DONE;
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
	/* a guard said no before anything changed: refused, not failed */
	if (!changed && !x->critical_failed && !(*r->cancel) && err->cause == DRB_CAUSE_CHECK)
		x->refuse = 1;
}

/* 1: step i may start; 0: not yet; -1: never (a step it needs did not end ok). A step
 * without needs follows the step before it, whatever its end (v1: on_failure: continue goes
 * on with the next step). */
static int graph_ready(const drb_run *r, const graph *g, size_t i, const char **why)
{
	const drb_step *s = &r->rb->steps[i];

	for (size_t d = 0; d < s->n_deps; d++)
		if (g->state[s->deps[d]] != G_DONE)
			return 0;
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
 * max_parallel at a time, each on a thread of its own; the main thread alone decides what
 * starts and applies the failure policy. After a failure that stops the run, no step starts
 * and the running ones are waited for. */
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
	g.errs = calloc(n + 1, sizeof(*g.errs));
	g.jobs = calloc(n + 1, sizeof(*g.jobs));
	g.finished = calloc(n + 1, sizeof(*g.finished));
	if (!g.state || !g.blocked || !g.st || !g.errs || !g.jobs || !g.finished) {
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
			graph_ended(r, &g, i, x, first);
			pthread_mutex_lock(&g.mu);
		}
		pthread_mutex_unlock(&g.mu);

		for (size_t i = 0; !x->stop && i < n && g.running < width; i++) {
			const drb_step *s = &rb->steps[i];
			const char *why = NULL;
			int ready;

			if (g.state[i] != G_PENDING || !(ready = graph_ready(r, &g, i, &why)))
				continue;
			if (ready < 0) {
				char reason[300];

				snprintf(reason, sizeof(reason), "needs '%s', which did not end ok",
					 why);
				drb_step_skip(r, s, reason);
				g.st[i] = DRB_ST_SKIPPED;
				g.blocked[i] = 1;
				g.state[i] = G_DONE;
				i = (size_t)-1; /* a step waiting for this one may be ready now */
				continue;
			}
			if (*r->cancel || (r->deadline > 0 && drb_mono_now() >= r->deadline)) {
				if (*r->cancel) {
					drb_err_set(&g.errs[i], DRB_EINTERRUPTED, "%s",
						    r->stop_reason[0] ? r->stop_reason
								      : "run interrupted");
				} else {
					char w[32];

					drb_duration_format(rb->deadline_s, w, sizeof(w));
					drb_err_set(&g.errs[i], DRB_ETIMEOUT,
						    "run deadline of %s passed before step '%s'", w,
						    s->id);
				}
				g.st[i] = DRB_ST_FAILED; /* not started: no step.end */
				graph_ended(r, &g, i, x, first);
				i = (size_t)-1;
				continue;
			}
			g.state[i] = G_RUNNING;
			g.running++;
			g.jobs[i].g = &g;
			g.jobs[i].i = i;
			g.jobs[i].threaded =
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
	free(g.state);
	free(g.blocked);
	free(g.st);
	free(g.errs);
	free(g.jobs);
	free(g.finished);
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

	drb_emit(r, "shadow.setup.begin", NULL, d, &e);
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
	drb_emit(r, "shadow.setup.end", NULL, d, &e);
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
	drb_emit(r, "shadow.teardown.begin", NULL, d, &e);
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
	drb_emit(r, "shadow.teardown.end", NULL, d, &e);
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

			snprintf(first.msg, sizeof(first.msg), "preflight '%s' failed: %s%s%s%s",
				 rb->preflight[i].id, err.msg, why ? " (" : "",
				 why ? r->stop_reason : "", why ? ")" : "");
			goto verdict;
		}
	}
	if (r->o->mode == DRB_MODE_PLAN) {
		out->plan = plan_steps(r, &out->critical_path);
		json_t *d = json_pack("{s:O, s:O}", "steps", out->plan, "critical_path",
				      out->critical_path);
		drb_emit(r, "plan", NULL, d, &err);
		json_decref(d);
		goto verdict;
	}
	r->phase_ro = 0;
	{
		gstop x = {0};

		run_graph(r, &x, &first);
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
		/* a record could not be written (a step.end, say): the run did not succeed, whatever
		 * its steps did, because its log does not say everything it did */
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
	if (r->o->mode != DRB_MODE_PLAN)
		notify(r, strcmp(status, "succeeded") ? "failure" : "success", status, first.msg);
	if (r->o->mode != DRB_MODE_PLAN)
		notify(r, "end", status, first.msg);
	if (drb_emit(r, "run.end", NULL, end, &err) && exit_code == DRB_EXIT_OK) {
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
	out->steps = json_incref(r->summary);
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

/* run.start's "lock": the keys the run takes (a new array). */
static json_t *lock_keys(const drb_runbook *rb)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < rb->n_locks; i++)
		json_array_append_new(a, json_string(rb->locks[i]));
	if (a && !rb->n_locks)
		json_array_append_new(a, json_string(rb->name));
	return a;
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
	    drb_run_lock_take(&locks, rb, NULL, r.run_id, r.cancel, &lock_err))
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
			  o->mode == DRB_MODE_PLAN ? "plan"
			  : o->shadow		   ? "shadow"
						   : "run",
			  "drill", o->drill || o->shadow, "operator",
			  drb_operator(opbuf, sizeof(opbuf)), "host", host, "pid", (int)getpid(),
			  "version", DRB_VERSION, "lock", lock_keys(rb), "targets", targets);
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
	if ((rc = drb_emit(&r, "run.start", NULL, start, err)))
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
		drb_emit(&r, "run.end", NULL, end, err);
		json_decref(end);
		out->exit_code = DRB_EXIT_REFUSED;
		snprintf(out->status, sizeof(out->status), "refused");
		snprintf(out->run_id, sizeof(out->run_id), "%s", r.run_id);
		snprintf(out->audit_path, sizeof(out->audit_path), "%s", drb_audit_path(r.audit));
		snprintf(out->error, sizeof(out->error), "%s", lock_err.msg);
		out->steps = json_array();
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
