/* Internal state of one run, shared by the engine's files. Not a public interface. */
#ifndef DRB_ENGINE_INT_H
#define DRB_ENGINE_INT_H

#include <pthread.h>

#include <jansson.h>

#include <drbook/audit.h>
#include <drbook/engine.h>
#include <drbook/lua.h>

extern const drb_action drb_action_lua;
extern const drb_action drb_action_approval;

/* A completed step (or for_each child) whose rollback may have to run. */
typedef struct drb_unit {
	const drb_step *step;
	char *uid;    /* "promote" or "scale[2]" */
	json_t *item; /* for_each item or NULL */
	json_t *result;
	int64_t order; /* when it completed: rollback undoes the highest first */
} drb_unit;

/* What the log of an interrupted run says about one step uid (resume). */
typedef struct drb_prior {
	char *uid;
	int started, ended;
	char status[16];
	json_t *result;
	json_t *item;	   /* for_each child: its item (from step.start), or NULL */
	int64_t end_order; /* seq of its step.end record */
	int calls;	   /* call records since its last step.start: a request was answered */
} drb_prior;

typedef struct drb_run {
	const drb_runbook *rb;
	const drb_engine_opts *o;
	drb_lua *lua;
	drb_audit *audit;
	json_t *params;
	json_t *connections;
	json_t *secrets; /* array of secret parameter values, redacted from the log */
	char run_id[48];
	double t0;	      /* drb_mono_now() at start */
	int64_t t0_wall;      /* wall ms at start (or of the original start when resuming) */
	int64_t incident_ms;  /* --incident-start or 0 */
	double deadline;      /* run deadline (mono) or 0 */
	volatile int *cancel; /* &cancel_own: no new step starts, running actions stop */
	volatile int cancel_own;
	/* Stop signals: the caller counts them (o->interrupt); a watcher thread turns the first
	 * into a stop with the declared rollbacks and the second into skipping them. */
	const volatile int *signals;
	int signals_seen; /* protected by mu */
	int no_rollback;  /* a stop after which nothing more may run (the log failed) */
	/* stop_when: the same watcher thread polls the runbook's CloudWatch alarms while the
	 * steps run (stop_armed); stop_hit once one stopped the run. Protected by mu, except
	 * stop_seen and stop_fails (the one thread checking at a time owns them). */
	int stop_armed, stop_hit;
	double stop_next;		 /* drb_mono_now() of the next poll */
	char (*stop_seen)[32];		 /* per alarm: the state (or "error") last recorded */
	int stop_fails;			 /* checks in a row that could not be made */
	char stop_cond_reason[300];	 /* "stop condition NAME": run.end's reason */
	pthread_t watcher;
	int watching;
	volatile int watch_stop;
	/* the watcher sleeps on watch_cv (monotonic clock) between polls: the run's end wakes it
	 * instead of waiting out its tick */
	pthread_mutex_t watch_mu;
	pthread_cond_t watch_cv;
	int phase_ro;	  /* preflight or plan: mutating calls refused */
	int lua_ro;	  /* a read-only Lua entry is running (protected by the Lua lock) */
	size_t printed;	  /* bytes of Lua print logged so far (protected by the Lua lock) */
	json_t *print_steps; /* {uid: bytes printed} by each step's script (same lock), or NULL */
	double rpo_s;	  /* measured RPO, < 0 unknown */
	json_t *end_info; /* at the end: {rto_s, rpo_s, targets} for the `run` global */
	int changed;	  /* a mutating action ran: exit 3 is no longer possible */

	pthread_mutex_t mu; /* protects units, summary, changed, rpo_s */
	drb_unit *units;
	size_t n_units, cap_units;
	int64_t unit_order; /* the order of the last completed unit */
	drb_step_line *summary; /* the summary's lines (drb_summary_add) */
	size_t n_summary, cap_summary;

	/* replay: the recorded run's records, and which call records were used */
	int replay;
	json_t *recorded;
	char *used;

	/* resume */
	drb_prior *prior;
	size_t n_prior;
	int resuming;

	/* --shadow (run.c, "shadow drills"): every change must touch a shadow resource */
	int shadow;
	const char *phase;    /* "setup" or "teardown" while those run (their records say so) */
	int teardown_running; /* signals no longer stop anything (protected by mu) */
	json_t *shadow_made;  /* names setup's changes touched: {name: true} (protected by mu) */

	/* --evidence: the log's copy in S3 (evidence.c), or NULL */
	struct drb_evidence *evidence;
	char stop_reason[512]; /* why *cancel was set from inside the run, or "" */
} drb_run;

/* ---- evidence (evidence.c) ---------------------------------------------------------------- */
typedef struct drb_evidence drb_evidence;
/* Splits s3://BUCKET/PREFIX (PREFIX may be empty; trailing slashes dropped). DRB_EINVAL. */
int drb_evidence_parse(const char *url, char *bucket, size_t bcap, char *prefix, size_t pcap,
		       drb_err *err);
/* Ships log_path to URL's PREFIX/RUN_ID/audit.jsonl. *out is the caller's. */
int drb_evidence_open(drb_evidence **out, const char *url, const char *run_id, const char *log_path,
		      drb_err *err);
/* "s3://BUCKET/PREFIX" (without the run id), borrowed. */
const char *drb_evidence_base(const drb_evidence *ev);
/* Uploads the whole log as it is now (thread-safe). Errors of the S3 call, already retried
 * by the client (throttling, 5xx, timeouts). */
int drb_evidence_ship(drb_evidence *ev, drb_err *err);
/* Uploads the runbook as PREFIX/RUN_ID/runbook.yaml. */
int drb_evidence_ship_runbook(drb_evidence *ev, const char *runbook_path, drb_err *err);
void drb_evidence_close(drb_evidence *ev); /* NULL is fine */
/* The hook after a record: ships the log after run.start, step.end and run.end. When the
 * copy fails, sets the run's stop reason and returns the data of the evidence.failed record
 * the caller writes before stopping the run (new; NULL when there is nothing to record). */
json_t *drb_evidence_after(drb_run *r, drb_event ev);

/* err.cause of a step whose check said no (assert false, until not met, a read-only lua
 * step raising an error): before any change,
 * such a failure is a refusal (a guard), where an action's error is a failure. Negative:
 * providers put an errno, CURLcode or HTTP status there (CURLcode 1 is a garbage answer,
 * a failure, never a guard). */
#define DRB_CAUSE_CHECK (-1)

/* Status of a finished step. */
typedef enum drb_step_status {
	DRB_ST_OK = 0,
	DRB_ST_FAILED,
	DRB_ST_SKIPPED,
	DRB_ST_ASSUMED,
	DRB_ST_REFUSED /* approval denied, guard refused: exit 3 if nothing changed yet */
} drb_step_status;

const char *drb_status_name(drb_step_status st);

/* Adds a line to the run's summary (under r->mu); id and error are copied, error may be
 * NULL; status is static text. Secret parameters are redacted from both. */
void drb_summary_add(drb_run *r, const char *id, const char *status, int attempts,
		     long long duration_ms, const char *error);

/* Frees n lines and the array. */
void drb_step_lines_free(drb_step_line *v, size_t n);

/* ---- the seam (seam.c) ------------------------------------------------------------------ */

/* Writes an event to the audit log, then to the sink. data may be NULL; it is borrowed. */
int drb_emit(drb_run *r, drb_event ev, const char *step, const json_t *data, drb_err *err);

/* Adds the leaves of a secret parameter's value to the run's secrets (never logged). */
void drb_secret_add(drb_run *r, const json_t *v);

/* Registers every action with a provider function as a Lua function of the run's state, each
 * call going through the seam. */
int drb_seam_lua_actions(drb_run *r, drb_err *err);

/* The uid of the step whose Lua (script or custom action) runs on this thread, or NULL (an
 * expression). Called under the Lua lock. */
const char *drb_seam_lua_uid(void);

/* Runs one top-level step (or for_each fan-out) to its end, logging it. */
drb_step_status drb_step_execute(drb_run *r, const drb_step *s, drb_err *err);

/* Whether this call of a changes anything: its mode, decided by the arguments (http.request)
 * or by the step's read_only: (lua, exec; s may be NULL: then mutating). */
int drb_action_mutates(const drb_action *a, const drb_step *s, const json_t *args);

/* What a step's or a rollback's Lua script sees besides params and steps: the for_each item
 * under its `as` name, and `result`. drb_invoke binds them under the Lua lock the script runs
 * under, so for_each children running side by side never read each other's item. */
typedef struct drb_vars {
	const char *as; /* NULL: no item */
	const json_t *item;
	const json_t *result;
} drb_vars;

/* Invokes an action with interpolated arguments (checks read-only rules, builds the ctx); an
 * approval asks the operator (or grants it per --approve/--yes, or replays it). v (may be
 * NULL: nothing bound) is what a Lua script sees. */
int drb_invoke(drb_run *r, const drb_action *a, const drb_step *s, const char *uid,
	       const drb_vars *v, const json_t *args, double deadline, json_t **result,
	       drb_err *err);

/* Takes the run lock for key; returns 0 and an fd, or DRB_EDENIED when held elsewhere. */
typedef struct drb_lockset drb_lockset;
/* Takes every key (duplicates once, in sorted order) or none: on refusal DRB_EDENIED with a
 * message naming the key and its holder. holder is a one-line note left for the refused ("run
 * R (operator O on host H, pid P)"). With DRBOOK_LEASE_TABLE each key is also a DynamoDB
 * lease (see aws.h), renewed by a thread until release; a lease lost sets *cancel. *out is the
 * caller's to release. */
int drb_lockset_take(drb_lockset **out, const char *const *keys, size_t n, const char *run_id,
		     const char *holder, volatile int *cancel, drb_err *err);
/* With DRBOOK_LEASE_TABLE, the leases held: [{key, token, table}] (new), else NULL. */
json_t *drb_lockset_leases(const drb_lockset *ls);
/* The held keys, sorted (a new array, the caller's). */
json_t *drb_lockset_keys(const drb_lockset *ls);
void drb_lockset_release(drb_lockset *ls); /* accepts NULL */
/* The lock keys of a run of rb (a new array): the runbook's lock: keys, else its name; a
 * shadow drill's are the same keys under "shadow:", so that a drill never holds off a real
 * failover (it changes only its own copies), and two drills of one runbook exclude each other. */
json_t *drb_run_lock_keys(const drb_runbook *rb, int shadow);
/* Takes the locks of a run of rb: the keys recorded in its run.start (resume; a string or a
 * list), else drb_run_lock_keys. */
int drb_run_lock_take(drb_lockset **out, const drb_runbook *rb, const json_t *recorded,
		      int shadow, const char *run_id, volatile int *cancel, drb_err *err);
/* Readiness: with DRBOOK_LEASE_TABLE, reads (never writes) the lease of each of rb's lock
 * keys: 0 and out says who holds what, or the call's error; 1 when no table is configured. */
int drb_lease_probe(const drb_runbook *rb, char *out, size_t cap, drb_err *err);
/* Readiness: lists an empty prefix of the evidence bucket (read-only): 0 or the error. */
int drb_evidence_probe(const char *url, drb_err *err);
/* The machine-wide lock folder (see lock.c); 0 or DRB_EINVAL. */
int drb_lock_dir(char *buf, size_t cap, drb_err *err);

/* Binds the for_each variable, the item and `result` for expressions (Lua lock held). */
int drb_bind(drb_run *r, const char *as, const json_t *item, const json_t *result, drb_err *err);

/* Records a completed unit for rollback. order: when it completed (resume passes the seq of
 * its step.end record), or 0: now. */
void drb_unit_add(drb_run *r, const drb_step *s, const char *uid, const json_t *item,
		  const json_t *result, int64_t order);

/* Ends a step that does not run because a step it needs did not end ok: step.end with status
 * skipped and the reason. */
void drb_step_skip(drb_run *r, const drb_step *s, const char *reason);

/* A step's result that carries rpo_s sets the run's RPO (also a result restored by resume). */
void drb_run_note_rpo(drb_run *r, const json_t *result);

/* "met", "missed" or "unknown" (no target, or not measured: < 0). */
const char *drb_target_verdict(double measured, double target);

/* Whether a resource name is a shadow resource by its name alone: its last component (after
 * the last '/' or ':'; a URL's query or fragment and a trailing '/' or '.' dropped) starts
 * with "drill-" or "drill." (a DNS name whose first label is drill). */
int drb_shadow_name(const char *v);

/* Returns a copy of v with secret parameter values replaced by "***". */
json_t *drb_redact(drb_run *r, const json_t *v);

/* Delay before attempt n+1 (n >= 1): exponential with full jitter (unit_random in [0,1)
 * scales min(max, initial * 2^(n-1))), or fixed at initial. */
double drb_retry_delay(const drb_retry *p, int n, double unit_random);

/* What resume does with a step (or for_each child) that started but did not end. */
typedef enum drb_resume_decision {
	DRB_RESUME_ASSUME_DONE, /* --assume-done: record it, do not run it */
	DRB_RESUME_RERUN,	/* --retry, idempotent, read-only, approval */
	DRB_RESUME_CHECK,	/* evaluate done_when first */
	DRB_RESUME_BLOCKED	/* cannot tell: the operator must decide */
} drb_resume_decision;

/* Pure decision from the step, its action (NULL if custom) and the operator's flags. why gets
 * a static reason string. */
drb_resume_decision drb_resume_decide(const drb_step *s, const drb_action *a, int assume_done,
				      int retry, const char **why);

/* Wires providers to each other through the engine (RDS endpoints for pg). Idempotent. */
void drb_engine_providers_init(void);

/* Run lifecycle, shared by run and resume (run.c). */
int drb_run_init(drb_run *r, const drb_runbook *rb, const drb_engine_opts *o, json_t *params,
		 drb_err *err);
int drb_run_body(drb_run *r, drb_run_result *out, int do_preflight);
void drb_run_fini(drb_run *r);

/* ---- a run's history, from its log (history.c) ---------------------------------------- */

/* Resume: the prior record for uid, or NULL; drb_prior_get adds an empty one when missing
 * (NULL when out of memory). */
drb_prior *drb_prior_find(drb_run *r, const char *uid);
drb_prior *drb_prior_get(drb_run *r, const char *uid);

/* Replay: the recorded answer of the next call of step uid to the same service and
 * operation (or its recorded error). */
int drb_replay_answer(drb_run *r, const char *uid, const drb_call *c, json_t **response,
		      drb_err *err);
/* Replay: the recorded approval decision for uid. */
int drb_replay_approval(drb_run *r, const char *uid, json_t **result, drb_err *err);

/* Reads the run.start record of a log and loads its runbook (or runbook_override) with
 * drb_engine_load: shared by resume and replay. */
int drb_log_runbook(const json_t *records, const char *audit_path, const char *runbook_override,
		    const char *lua_dir, drb_runbook **rb, drb_err *err);

/* Verifies a log's chain (and its MACs when key is set) before resume or replay use it:
 * DRB_EINTEGRITY naming the line and the reason ("refusing to <verb>") when it is not
 * intact; a last line cut short (an interrupted run) is accepted. */
int drb_log_verify(const char *audit_path, const unsigned char *key, size_t key_len,
		   const char *verb, drb_err *err);

/* Replay: the RTO the replayed run would have had, from the recorded timestamps: from the
 * incident start (or the recorded run.start) to the last recorded step.end of a step the
 * replay reached. */
double drb_replay_rto(drb_run *r);

/* Resume: evaluates a step's done_when (string or call form) read-only. */
int drb_step_done_when(drb_run *r, const drb_step *s, int *done, drb_err *err);

#endif
