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

static void redact_into(json_t *v, const json_t *secrets)
{
	size_t i;
	const char *k;
	json_t *x;

	if (json_is_object(v)) {
		void *tmp;

		json_object_foreach_safe(v, tmp, k, x)
		{
			if (json_is_string(x)) {
				json_t *s;

				json_array_foreach(secrets, i, s)
				{
					if (strstr(json_string_value(x), json_string_value(s))) {
						json_object_set_new(v, k, json_string("***"));
						break;
					}
				}
			} else {
				redact_into(x, secrets);
			}
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			if (json_is_string(x)) {
				size_t j;
				json_t *s;

				json_array_foreach(secrets, j, s)
				{
					if (strstr(json_string_value(x), json_string_value(s))) {
						json_array_set_new(v, i, json_string("***"));
						break;
					}
				}
			} else {
				redact_into(x, secrets);
			}
		}
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
	rc = r->audit ? drb_audit_append(r->audit, event, step, red, err) : 0;
	if (rc == DRB_ELIMIT) {
		/* an oversized answer: keep the record, drop the bulky part */
		json_object_set_new(red, "result", json_string("(too large for the audit log)"));
		json_object_set_new(red, "response", json_string("(too large for the audit log)"));
		rc = drb_audit_append(r->audit, event, step, red, err);
	}
	if (rc) {
		drb_err_prefix(err, "audit log: ");
		*r->cancel = 1; /* nothing may proceed unrecorded */
		goto out;
	}
	if (r->o->sink.event) {
		drb_rfc3339_ms(drb_wall_ms(), ts);
		shown = drb_audit_scrub(red);
		r->o->sink.event(r->o->sink.ud, ts, event, step, shown ? shown : red);
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

static int call_provider(drb_run *r, const drb_action *a, const char *uid, const json_t *args,
			 double deadline, int ro, json_t **result, drb_err *err)
{
	step_seam seam = {{seam_call, NULL}, r, uid};
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

	return a->fn(&ctx, args, result, err);
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

	if (drb_action_mutates(a, NULL, args) && ro)
		return drb_err_set(err, DRB_EDENIED, "%s is a mutating action: not allowed in %s",
				   a->name,
				   r->o->mode == DRB_MODE_PLAN ? "plan" : "a read-only context");
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
	if (mut && r->phase_ro)
		return drb_err_set(err, DRB_EDENIED, "%s is a mutating action: not allowed in %s",
				   a->name, r->o->mode == DRB_MODE_PLAN ? "plan" : "preflight");
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
		int was_ro = r->lua_ro;

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
		  const json_t *result)
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
	r->n_units++;
out:
	pthread_mutex_unlock(&r->mu);
}

/* ---- rollback --------------------------------------------------------------------------- */

/* Runs the compensations of completed units, newest first. Returns the number that failed. */
static int rollback(drb_run *r, const char *reason)
{
	int failed = 0;
	json_t *d = json_pack("{s:s, s:I}", "reason", reason, "units", (json_int_t)r->n_units);
	drb_err e = {0};

	drb_emit(r, "rollback.begin", NULL, d, &e);
	json_decref(d);
	for (size_t i = r->n_units; i-- > 0;) {
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

/* ---- notifications ---------------------------------------------------------------------- */

/* The global `run`: {id, started_at, incident_start, drill, event, status}; event and status
 * only while a notification is built. */
static void set_run_global(drb_run *r, const char *event, const char *status)
{
	char started[32], incident[32];
	json_t *v;
	drb_err e = {0};

	drb_rfc3339_ms(r->t0_wall, started);
	if (r->incident_ms)
		drb_rfc3339_ms(r->incident_ms, incident);
	v = json_pack("{s:s, s:s, s:s?, s:b, s:s?, s:s?}", "id", r->run_id, "started_at", started,
		      "incident_start", r->incident_ms ? incident : NULL, "drill", r->o->drill,
		      "event", event, "status", status);
	if (v)
		drb_lua_set_global(r->lua, "run", v, &e);
	json_decref(v);
}

/* A notification tells people about the run; it does not change the system being recovered.
 * So it is sent in every phase of a run (also after a refused preflight, where the phase is
 * still read-only), it never counts as a change (a later guard failure stays a refusal,
 * exit 3), and a plan sends none (a plan calls no mutating action). */
static void notify(drb_run *r, const char *when, const char *status)
{
	int saved_ro = r->phase_ro, saved_changed;

	if (r->o->mode == DRB_MODE_PLAN)
		return;
	pthread_mutex_lock(&r->mu);
	saved_changed = r->changed;
	pthread_mutex_unlock(&r->mu);
	r->phase_ro = 0;
	for (size_t i = 0; i < r->rb->n_notify; i++) {
		const drb_notify *n = &r->rb->notify[i];
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
		snprintf(uid, sizeof(uid), "notify[%zu]", i + 1);
		drb_lua_lock(r->lua);
		set_run_global(r, when, status);
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
}

/* ---- the run ---------------------------------------------------------------------------- */

void drb_run_result_free(drb_run_result *r)
{
	if (!r)
		return;
	json_decref(r->steps);
	json_decref(r->plan);
	r->steps = r->plan = NULL;
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

static void print_to_log(void *ud, const char *line)
{
	drb_run *r = ud;
	json_t *d = json_pack("{s:s}", "line", line);
	drb_err e = {0};

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
	r->cancel = o->interrupt ? o->interrupt : &r->cancel_own;
	r->t0 = drb_mono_now();
	r->t0_wall = drb_wall_ms();
	pthread_mutex_init(&r->mu, NULL);
	r->summary = json_array();
	r->secrets = json_array();
	r->connections = json_object();
	for (size_t i = 0; i < rb->n_params; i++) {
		json_t *v = json_object_get(params, rb->params[i].name);

		if (rb->params[i].secret && json_is_string(v) && json_string_length(v) > 0)
			json_array_append(r->secrets, v);
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
	for (size_t i = 0; i < r->n_units; i++) {
		free(r->units[i].uid);
		json_decref(r->units[i].item);
		json_decref(r->units[i].result);
	}
	free(r->units);
	for (size_t i = 0; i < r->n_prior; i++) {
		free(r->prior[i].uid);
		json_decref(r->prior[i].result);
	}
	free(r->prior);
	drb_lua_free(r->lua);
	drb_audit_close(r->audit);
	json_decref(r->summary);
	json_decref(r->secrets);
	json_decref(r->connections);
	json_decref(r->params);
	pthread_mutex_destroy(&r->mu);
}

static json_t *plan_steps(drb_run *r)
{
	json_t *plan = json_array();

	for (size_t i = 0; i < r->rb->n_steps; i++) {
		const drb_step *s = &r->rb->steps[i];
		const drb_action *a = drb_engine_action(s->action);
		json_t *args = NULL, *o;
		drb_err e = {0};
		int mut = 1;

		drb_lua_lock(r->lua);
		r->lua_ro = 1;
		if (!s->for_each.src && drb_lua_interpolate(r->lua, s->with, "plan", &args, &e))
			args = NULL;
		r->lua_ro = 0;
		drb_lua_unlock(r->lua);
		if (a)
			mut = drb_action_mutates(a, s, args ? args : s->with);
		o = json_pack("{s:s, s:s, s:O, s:b}", "id", s->id, "action", s->action, "with",
			      args ? args : s->with, "mutating", mut);
		if (!args && !s->for_each.src)
			json_object_set_new(o, "unresolved", json_string(e.msg));
		if (s->for_each.src)
			json_object_set_new(o, "for_each", json_string(s->for_each.src));
		if (s->when.src)
			json_object_set_new(o, "when", json_string(s->when.src));
		if (s->rollback)
			json_object_set_new(o, "rollback", json_string(s->rollback->action));
		json_array_append_new(plan, o);
		json_decref(args);
	}
	return plan;
}

/* Runs preflight (if any), then the steps, then decides the verdict and writes run.end. */
int drb_run_body(drb_run *r, drb_run_result *out, int do_preflight)
{
	const drb_runbook *rb = r->rb;
	const char *status = "succeeded";
	int exit_code = DRB_EXIT_OK, critical_failed = 0, rolled_failed = 0;
	drb_err err = {0}, first = {0};
	json_t *end;
	double rto = -1;

	drb_lua_lock(r->lua);
	set_run_global(r, NULL, NULL);
	drb_lua_unlock(r->lua);

	if (!r->resuming)
		notify(r, "start", NULL);
	r->phase_ro = 1;
	for (size_t i = 0; do_preflight && i < rb->n_preflight; i++) {
		drb_step_status st = drb_step_execute(r, &rb->preflight[i], &err);

		/* a check skipped by its when: passes; a non-critical one never refuses */
		if ((st == DRB_ST_FAILED || st == DRB_ST_REFUSED) && rb->preflight[i].critical) {
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			snprintf(first.msg, sizeof(first.msg), "preflight '%s' failed: %s",
				 rb->preflight[i].id, err.msg);
			goto verdict;
		}
	}
	if (r->o->mode == DRB_MODE_PLAN) {
		out->plan = plan_steps(r);
		json_t *d = json_pack("{s:O}", "steps", out->plan);
		drb_emit(r, "plan", NULL, d, &err);
		json_decref(d);
		goto verdict;
	}
	r->phase_ro = 0;
	for (size_t i = 0; i < rb->n_steps; i++) {
		const drb_step *s = &rb->steps[i];
		drb_on_failure pol = s->on_failure ? s->on_failure : rb->on_failure;
		drb_step_status st;

		if ((*r->cancel)) {
			drb_err_set(&err, DRB_EINTERRUPTED, "run interrupted");
			st = DRB_ST_FAILED;
		} else if (r->deadline > 0 && drb_mono_now() >= r->deadline) {
			char w[32];

			drb_duration_format(rb->deadline_s, w, sizeof(w));
			drb_err_set(&err, DRB_ETIMEOUT,
				    "run deadline of %s passed before step '%s'", w, s->id);
			st = DRB_ST_FAILED;
		} else {
			st = drb_step_execute(r, s, &err);
		}
		if (st == DRB_ST_OK || st == DRB_ST_SKIPPED || st == DRB_ST_ASSUMED)
			continue;
		if (!first.msg[0])
			snprintf(first.msg, sizeof(first.msg), "step '%s': %s", s->id, err.msg);
		if (st == DRB_ST_REFUSED && !r->changed) {
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			goto verdict;
		}
		if (!s->critical)
			continue;
		if (pol == DRB_ONF_CONTINUE && !(*r->cancel)) {
			critical_failed = 1;
			continue;
		}
		if (!r->changed && !critical_failed && !(*r->cancel) &&
		    err.cause == DRB_CAUSE_CHECK) {
			/* a guard said no before anything changed: refused, not failed */
			status = "refused";
			exit_code = DRB_EXIT_REFUSED;
			goto verdict;
		}
		exit_code = DRB_EXIT_FAILED; /* something changed: refusals ended above */
		if (pol == DRB_ONF_ROLLBACK && !(*r->cancel)) {
			rolled_failed = rollback(r, first.msg);
			status = rolled_failed ? "failed" : "rolled_back";
			if (rolled_failed)
				snprintf(first.msg + strlen(first.msg),
					 sizeof(first.msg) - strlen(first.msg),
					 "; %d rollback action(s) failed: needs a human",
					 rolled_failed);
		} else {
			status = "failed";
		}
		goto verdict;
	}
	if (critical_failed) {
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
	} else {
		int64_t from = r->incident_ms ? r->incident_ms : r->t0_wall;

		rto = (double)(drb_wall_ms() - from) / 1000.0;
	}
verdict:
	end = json_pack("{s:s, s:i, s:I}", "status", status, "exit_code", exit_code, "duration_ms",
			(json_int_t)(drb_wall_ms() - r->t0_wall));
	if (rto >= 0)
		json_object_set_new(end, "rto_s", json_real(rto));
	if (r->rpo_s >= 0)
		json_object_set_new(end, "rpo_s", json_real(r->rpo_s));
	if (rb->target_rto_s >= 0 || rb->target_rpo_s >= 0) {
		json_t *t = json_object();

		if (rb->target_rto_s >= 0) {
			json_object_set_new(t, "rto_s", json_real(rb->target_rto_s));
			if (rto >= 0)
				json_object_set_new(t, "rto_met",
						    json_boolean(rto <= rb->target_rto_s));
		}
		if (rb->target_rpo_s >= 0) {
			json_object_set_new(t, "rpo_s", json_real(rb->target_rpo_s));
			if (r->rpo_s >= 0)
				json_object_set_new(t, "rpo_met",
						    json_boolean(r->rpo_s <= rb->target_rpo_s));
		}
		json_object_set_new(end, "targets", t);
	}
	if (first.msg[0])
		json_object_set_new(end, "error", json_string(first.msg));
	if (r->o->mode != DRB_MODE_PLAN)
		notify(r, strcmp(status, "succeeded") ? "failure" : "success", status);
	if (r->o->mode != DRB_MODE_PLAN)
		notify(r, "end", status);
	if (drb_emit(r, "run.end", NULL, end, &err) && exit_code == DRB_EXIT_OK) {
		status = "failed";
		exit_code = DRB_EXIT_FAILED;
	}
	json_decref(end);
	snprintf(out->status, sizeof(out->status), "%s",
		 r->o->mode == DRB_MODE_PLAN && exit_code == 0 ? "planned" : status);
	out->exit_code = exit_code;
	out->rto_s = rto;
	out->rpo_s = r->rpo_s;
	out->target_rto_s = rb->target_rto_s;
	out->target_rpo_s = rb->target_rpo_s;
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

static int open_log(drb_run *r, const drb_engine_opts *o, drb_err *err)
{
	char path[4096];
	const char *dir = o->runs_dir ? o->runs_dir : "drbook-runs";

	if (o->audit_path)
		snprintf(path, sizeof(path), "%s", o->audit_path);
	else
		snprintf(path, sizeof(path), "%s/%s.jsonl", dir, r->run_id);
	return drb_audit_create(&r->audit, path, r->run_id, o->key, o->key_len, err);
}

int drb_engine_run(const drb_runbook *rb, const drb_engine_opts *o, drb_run_result *out,
		   drb_err *err)
{
	drb_run r;
	json_t *params = NULL, *start = NULL, *targets;
	char opbuf[256], host[256] = "unknown";
	int rc, lock_fd = -1;
	const char *lock_key = rb->lock ? rb->lock : rb->name;

	memset(out, 0, sizeof(*out));
	out->rto_s = out->rpo_s = -1;
	if ((rc = drb_runbook_bind_params(rb, o->params_kv, o->n_params_kv, &params, err)))
		return rc;
	rc = drb_run_init(&r, rb, o, params, err);
	params = NULL; /* owned by r */
	if (rc)
		goto out;
	make_run_id(r.run_id, sizeof(r.run_id));
	if (rb->deadline_s > 0)
		r.deadline = r.t0 + rb->deadline_s;
	if ((rc = open_log(&r, o, err)))
		goto out;
	gethostname(host, sizeof(host) - 1);
	targets = json_object();
	if (rb->target_rto_s >= 0)
		json_object_set_new(targets, "rto_s", json_real(rb->target_rto_s));
	if (rb->target_rpo_s >= 0)
		json_object_set_new(targets, "rpo_s", json_real(rb->target_rpo_s));
	start = json_pack("{s:s, s:s, s:s, s:s?, s:O, s:s, s:b, s:s, s:s, s:i, s:s, s:s, s:o}",
			  "runbook", rb->path, "runbook_sha256", rb->sha256, "name", rb->name,
			  "scenario", rb->scenario, "params", r.params, "mode",
			  o->mode == DRB_MODE_PLAN ? "plan" : "run", "drill", o->drill, "operator",
			  drb_operator(opbuf, sizeof(opbuf)), "host", host, "pid", (int)getpid(),
			  "version", DRB_VERSION, "lock", lock_key, "targets", targets);
	if (o->incident_start)
		json_object_set_new(start, "incident_start", json_string(o->incident_start));
	if (o->gameday)
		json_object_set_new(start, "gameday", json_string(o->gameday));
	{
		char abs[PATH_MAX];

		if (realpath(rb->path, abs))
			json_object_set_new(start, "runbook_path", json_string(abs));
	}
	if ((rc = drb_emit(&r, "run.start", NULL, start, err)))
		goto out;
	if (o->mode != DRB_MODE_PLAN &&
	    drb_lock_take(o->runs_dir ? o->runs_dir : "drbook-runs", lock_key, &lock_fd, err)) {
		json_t *end = json_pack("{s:s, s:i, s:s}", "status", "refused", "exit_code",
					DRB_EXIT_REFUSED, "error", err->msg);

		drb_emit(&r, "run.end", NULL, end, err);
		json_decref(end);
		out->exit_code = DRB_EXIT_REFUSED;
		snprintf(out->status, sizeof(out->status), "refused");
		snprintf(out->run_id, sizeof(out->run_id), "%s", r.run_id);
		snprintf(out->audit_path, sizeof(out->audit_path), "%s", drb_audit_path(r.audit));
		snprintf(out->error, sizeof(out->error), "%s", err->msg);
		out->steps = json_array();
		rc = 0;
		goto out;
	}
	rc = drb_run_body(&r, out, 1);
out:
	json_decref(start);
	json_decref(params);
	drb_lock_release(lock_fd);
	drb_run_fini(&r);
	return rc;
}
