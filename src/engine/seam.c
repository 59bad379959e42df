/* The seam: every exchange of a run with the outside passes here. A provider call is first
 * guarded (nothing mutates in preflight, plan or read-only Lua; a shadow drill touches only
 * shadow resources), then performed (or, in a replay, answered from the log) and recorded
 * with secrets redacted; an approval is asked of the operator (or granted, or replayed).
 * What a step leaves in the run (its result for later expressions, the unit rollback may
 * undo, a measured RPO) is kept here too. run.c and step.c both call in; this file calls
 * neither. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "engine_int.h"

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

/* drb_redact's result for reading only: v itself (a new reference) when the run has no
 * secret parameter, which is most runs, so that every record is not deep-copied for
 * nothing. */
static json_t *redact_view(drb_run *r, const json_t *v)
{
	if (r->secrets && json_array_size(r->secrets))
		return drb_redact(r, v);
	return json_incref((json_t *)v);
}

/* A record's data that is about to get a field: a copy of its top level when it is shared
 * with the caller (the values stay shared, only the top-level object is new). */
static json_t *own_top(json_t *red)
{
	json_t *c;

	if (red->refcount == 1)
		return red;
	c = json_copy(red);
	json_decref(red);
	return c;
}

int drb_emit(drb_run *r, drb_event ev, const char *step, const json_t *data, drb_err *err)
{
	const char *event = drb_event_name(ev);
	json_t *red = data ? redact_view(r, data) : json_object();
	json_t *shown = NULL, *failed;
	char ts[32];
	int rc, hid = 1;

	if (red && r->phase && step && json_is_object(red)) { /* a shadow setup or teardown's */
		red = own_top(red);
		if (red)
			json_object_set_new(red, "phase", json_string(r->phase));
	}
	if (!red)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	rc = r->audit ? drb_audit_append_hid(r->audit, event, step, red, &hid, err) : 0;
	if (rc == DRB_ELIMIT && !(red = own_top(red)))
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
	if (rc == DRB_ELIMIT) {
		/* an oversized answer: keep the record, drop the bulky part */
		json_object_set_new(red, "result", json_string("(too large for the audit log)"));
		json_object_set_new(red, "response", json_string("(too large for the audit log)"));
		rc = drb_audit_append_hid(r->audit, event, step, red, &hid, err);
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
		/* the log's scrub found nothing to hide: the record is what may be shown */
		shown = hid ? drb_audit_scrub(red) : json_incref(red);
		r->o->sink.event(r->o->sink.ud, ts, event, step, shown ? shown : red);
	}
	if ((failed = drb_evidence_after(r, ev))) {
		/* the copy failed: recorded, and the run stops before its next step */
		drb_emit(r, DRB_EV_EVIDENCE_FAILED, NULL, failed, NULL);
		json_decref(failed);
		*r->cancel = 1;
	}
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
	if (drb_emit(ss->r, DRB_EV_CALL, ss->uid, data, &logerr) && !rc) {
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
	drb_emit(r, DRB_EV_SHADOW_VIOLATION, uid, d, &e);
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
	int ev = drb_event_of(event);

	if (ev < 0) /* a provider's note must be an event of the log's one list */
		return drb_err_set(err, DRB_EINVAL, "audit log: '%s' is not an event", event);
	return ss->r->replay ? 0 : drb_emit(ss->r, (drb_event)ev, ss->uid, data, err);
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

/* ---- approvals ------------------------------------------------------------------------- */

/* Approvals: a human says yes before a change. Granted by --approve STEP or --yes, or asked on
 * the terminal through the sink; with no terminal and no flag the run is refused at once (a
 * game-day schedule must say what it approves). Every decision is an "approval" event; a
 * replay answers with the recorded one. */
/* Steps of a graph run at the same time: one question on the terminal at a time. */
static pthread_mutex_t ask_mu = PTHREAD_MUTEX_INITIALIZER;

static int approval_listed(char *const *v, size_t n, const char *id, const char *uid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], id) || !strcmp(v[i], uid))
			return 1;
	return 0;
}

static int approval(drb_run *r, const drb_step *s, const char *uid, const json_t *args,
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
	} else if (approval_listed(r->o->approve, r->o->n_approve, id, uid)) {
		how = "--approve";
	} else if (r->o->sink.ask) {
		d = json_pack("{s:s, s:f, s:s}", "message", msg, "timeout_s", timeout, "state",
			      "asking");
		drb_emit(r, DRB_EV_APPROVAL, uid, d, err);
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
		rc = drb_emit(r, DRB_EV_APPROVAL, uid, d, err);
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
	drb_emit(r, DRB_EV_APPROVAL, uid, d, NULL);
	json_decref(d);
	return DRB_EDENIED;
}

int drb_invoke(drb_run *r, const drb_action *a, const drb_step *s, const char *uid,
	       const drb_vars *v, const json_t *args, double deadline, json_t **result,
	       drb_err *err)
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
		return approval(r, s, uid, args, result, err);
	if (a == &drb_action_lua || !a->fn) {
		lua_call_ctx lc = {uid, deadline};
		char chunk[512];
		const char *script = s ? s->script : NULL;
		int was_ro = r->lua_ro, refusals = shadow_refusals;
		double was_stop;

		if (!script)
			script = json_string_value(json_object_get(args, "script"));
		drb_lua_lock(r->lua);
		/* the script ends with the step's time budget, like the calls it makes */
		was_stop = drb_lua_set_step_deadline(r->lua, deadline);
		lua_current = &lc;
		r->lua_ro = !mut;
		rc = v ? drb_bind(r, v->as, v->item, v->result, err) : 0;
		if (rc == 0 && a != &drb_action_lua) {
			rc = drb_lua_call_custom(r->lua, a->name, args, result, err);
		} else if (rc == 0 && !script) {
			rc = drb_err_set(err, DRB_EINVAL, "lua: no script");
		} else if (rc == 0) {
			snprintf(chunk, sizeof(chunk), "%s:%d:%d (script)", r->rb->path,
				 s ? s->script_pos.line : 0, s ? s->script_pos.col : 0);
			rc = drb_lua_run(r->lua, script, chunk, result, err);
		}
		r->lua_ro = was_ro;
		lua_current = NULL;
		drb_lua_set_step_deadline(r->lua, was_stop);
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

void drb_secret_add(drb_run *r, const json_t *v)
{
	add_secret(r->secrets, v, 0);
}

const char *drb_seam_lua_uid(void)
{
	return lua_current ? lua_current->uid : NULL;
}

int drb_seam_lua_actions(drb_run *r, drb_err *err)
{
	int rc;

	for (size_t i = 0; drb_engine_action_at(i); i++) {
		const drb_action *a = drb_engine_action_at(i);

		if (a->fn && (rc = drb_lua_register_action(r->lua, a, lua_invoke, r, err)))
			return rc;
	}
	return 0;
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
