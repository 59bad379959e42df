/* The executor: runs a loaded runbook (preflight, steps, retries, timeouts, polling, fan-out,
 * approvals, rollback), plans it without changing anything, and resumes an interrupted run
 * from its audit log. Everything it does is written to the audit log first; the caller sees
 * the same events through a sink (live progress, --json). */
#ifndef DRBOOK_ENGINE_H
#define DRBOOK_ENGINE_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/audit.h>
#include <drbook/error.h>
#include <drbook/runbook.h>

/* Exit codes of DESIGN.md, decided by the engine for runs, mapped once by the CLI. */
enum {
	DRB_EXIT_OK = 0,
	DRB_EXIT_FAILED = 1, /* the run failed (rolled back where declared) / log tampered */
	DRB_EXIT_USAGE = 2,  /* usage or invalid runbook: nothing executed */
	DRB_EXIT_REFUSED = 3 /* refused before any change: preflight, guard, approval, lock */
};

typedef enum drb_run_mode { DRB_MODE_RUN = 0, DRB_MODE_PLAN } drb_run_mode;

/* Receives every event the engine logs (after it is in the audit log). data is borrowed. */
typedef struct drb_sink {
	void (*event)(void *ud, const char *ts, const char *event, const char *step,
		      const json_t *data);
	/* Asks the operator (approval on a terminal); returns 1 yes, 0 no, -1 no answer before
	 * timeout_s. NULL when there is no terminal. */
	int (*ask)(void *ud, const char *step, const char *message, double timeout_s);
	void *ud;
} drb_sink;

typedef struct drb_engine_opts {
	drb_run_mode mode;
	char *const *params_kv; /* "-p k=v" as given */
	size_t n_params_kv;
	int drill;		  /* --drill: visible to the runbook as `drill` */
	/* --shadow: run the runbook's shadow: section around the steps (setup, parameter
	 * overrides, teardown) and refuse every change to a resource that is not a shadow
	 * resource (docs/runbook-format.md "Shadow drills"); implies drill */
	int shadow;
	const char *audit_path;	  /* --audit; NULL: <runs_dir>/<run id>.jsonl */
	const char *runs_dir;	  /* NULL: ./drbook-runs */
	const unsigned char *key; /* HMAC key for the audit log, or NULL */
	size_t key_len;
	const drb_audit_signkey *sign_key; /* signs the log's head (borrowed), or NULL */
	/* s3://BUCKET/PREFIX: the log is copied to PREFIX/RUN_ID/ as the run goes (see
	 * docs/audit.md "Evidence in S3"); NULL: the one recorded in run.start (resume), or none */
	const char *evidence;
	/* resume: the runbook to use when the one recorded in run.start is not on this machine
	 * (fetched from the evidence bucket); it must have the recorded sha256. NULL: none. */
	const char *runbook_fallback;
	char *const *approve; /* --approve STEP (repeatable) */
	size_t n_approve;
	int yes;		    /* --yes: approve everything */
	const char *incident_start; /* RFC 3339: RTO is measured from here instead of run start */
	const char *lua_dir;	    /* the project's lua/ folder; NULL: built-in default */
	const char *gameday;	    /* the schedule's drill name, recorded in run.start */
	const drb_notify *notify;   /* run-level notifications besides the runbook's (borrowed) */
	size_t n_notify;
	int targets_required; /* a missed RTO or RPO target fails the run (game days) */
	/* with DRB_MODE_PLAN: a readiness check (drbook readiness): every preflight check runs
	 * (not only up to the first that fails), no step is planned, run.start's mode and
	 * run.mode say "readiness", and of the notifications only the caller's (notify above)
	 * are sent, never the runbook's own. */
	int readiness;
	/* resume only */
	char *const *assume_done;
	size_t n_assume_done;
	char *const *retry_steps;
	size_t n_retry_steps;
	drb_sink sink;
	volatile int *interrupt; /* set to 1 (e.g. by SIGINT) to stop the run; may be NULL */
} drb_engine_opts;

/* One line of a run's summary: a step, a for_each child or a readiness check, as it ended. */
typedef struct drb_step_line {
	char *id;
	char *error;	    /* why it failed, or NULL */
	const char *status; /* ok, failed, skipped, ... (static text) */
	long long duration_ms;
	int attempts;
} drb_step_line;

/* The summary as JSON: [{id, status, attempts, duration_ms, error?}] (new reference). */
json_t *drb_step_lines_json(const drb_step_line *v, size_t n);

/* What a finished (or refused) run looked like, for the summary the CLI prints. */
typedef struct drb_run_result {
	int exit_code;	 /* DRB_EXIT_* */
	char status[16]; /* succeeded, failed, rolled_back, refused, planned */
	char run_id[48];
	char audit_path[4096];
	double rto_s, rpo_s; /* measured; < 0 when unknown */
	double target_rto_s, target_rpo_s;
	char rto_verdict[8], rpo_verdict[8]; /* met, missed or unknown (run.end targets) */
	/* the summary, in the order the steps ended (a C array, not JSON: a 10,000-step run's
	 * would be 5.6 MB as jansson objects); drb_run_result_free frees it */
	drb_step_line *steps;
	size_t n_steps;
	/* plan mode: array of {id, action, needs, with, mutating, when, when_result, rollback,
	 * for_each, items, children: [{item, with, mutating, when_result, rollback}]} */
	json_t *plan;
	json_t *critical_path; /* plan mode: the ids of the graph's critical path */
	json_t *forecast;      /* plan: the RTO forecast (drb_report_forecast), set by the CLI */
	char error[1024];      /* why the run did not succeed, or "" */
} drb_run_result;

void drb_run_result_free(drb_run_result *r);

/* Runs (or plans) rb. Returns 0 when the run could be carried out to a verdict (which is in
 * out->exit_code, possibly failed or refused), or a negative code when it could not even start
 * (bad parameters: DRB_EINVAL -> exit 2; audit log not writable: DRB_EIO). */
int drb_engine_run(const drb_runbook *rb, const drb_engine_opts *o, drb_run_result *out,
		   drb_err *err);

/* Continues the interrupted run recorded in audit_path (see docs/cli.md "resume"). */
int drb_engine_resume(const char *audit_path, const drb_engine_opts *o, drb_run_result *out,
		      drb_err *err);

/* Replays the run recorded in audit_path offline (see docs/cli.md "replay"): the log is
 * verified first (chain, and MACs with o->key): DRB_EINTEGRITY, naming the line, when it is
 * not intact, and nothing runs. Then the runbook (runbook, or the recorded one when NULL) runs
 * against the recorded answers without waiting. out->status is "identical" or "diverged",
 * out->plan lists the differences {step, field (status|result|rto_s|rpo_s), recorded,
 * replayed}, and exit_code is 0 or 1. o->audit_path, when set, receives the replay's own log. */
int drb_engine_replay(const char *audit_path, const char *runbook, const drb_engine_opts *o,
		      drb_run_result *out, drb_err *err);

/* Downloads the evidence of one run, url = s3://BUCKET/PREFIX/RUN_ID: its audit.jsonl to
 * runs_dir/RUN_ID.jsonl (NULL runs_dir: ./drbook-runs; the file must not exist yet) and, when
 * the bucket has it, its runbook.yaml to runs_dir/RUN_ID.runbook.yaml (else runbook_out is "").
 * base_out gets s3://BUCKET/PREFIX, where a resumed run keeps shipping. DRB_EINVAL for a bad
 * URL or an existing local log, DRB_ENOTFOUND when the bucket has no such log, else the S3
 * call's error. See docs/audit.md "Evidence in S3". */
int drb_evidence_fetch(const char *url, const char *runs_dir, char *log_out, size_t log_cap,
		       char *runbook_out, size_t rb_cap, char *base_out, size_t base_cap,
		       drb_err *err);

/* Downloads the newest past runs' logs under url = s3://BUCKET/PREFIX (the runs shipped
 * with --evidence there: PREFIX/RUN_ID/audit.jsonl) into dir as RUN_ID.jsonl, at most max
 * of them, newest run id first (run ids begin with their start time). *fetched counts them.
 * Read-only for the bucket. The listing's or a download's error is returned; what was
 * downloaded before it stays in dir. */
int drb_evidence_fetch_runs(const char *url, const char *dir, size_t max, size_t *fetched,
			    drb_err *err);

/* Loads and checks a runbook as every command must: its Lua modules first (lua_dir: the
 * engine's own Lua library, NULL the built-in default), so that the custom actions they
 * define are checked like the registry's. Returns 0 and *out (the caller's), or DRB_EINVAL
 * with the problems added to d (the caller's, initialised; every problem of the file). */
int drb_engine_load(const char *path, const char *lua_dir, drb_runbook **out, drb_diags *d);

/* The action registry: built-ins and providers. NULL when unknown. */
const drb_action *drb_engine_action(const char *name);
/* For drb_load_opts.action_mode: answers for registry actions (ud unused: may be NULL). */
int drb_engine_action_mode(void *ud, const char *name);
/* For drb_load_opts.action_schema: the registry action's schema, NULL when unknown. */
const drb_action_schema *drb_engine_action_schema(void *ud, const char *name);
/* Iterates the registry: returns the i-th action or NULL past the end. */
const drb_action *drb_engine_action_at(size_t i);

#endif
