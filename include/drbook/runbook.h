/* The runbook model (format v1) and its YAML loader. Loading validates every rule of the
 * format and reports all problems of a file as FILE:LINE:COL diagnostics before anything runs.
 * The model is plain data: it never calls Lua (beyond compiling expressions to check syntax)
 * and never calls providers. See docs/runbook-format.md. */
#ifndef DRBOOK_RUNBOOK_H
#define DRBOOK_RUNBOOK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/error.h>

#define DRB_RUNBOOK_MAX_BYTES (1024 * 1024) /* larger files are refused */
#define DRB_RUNBOOK_MAX_DEPTH 64            /* deeper YAML nesting is refused */
/* A for_each list may hold at most this many items: validate refuses a longer literal list
 * (a list parameter's default), the run a longer value (the step fails, DRB_ELIMIT). */
#define DRB_FOR_EACH_MAX 1000

typedef struct drb_pos {
	int line, col; /* 1-based; 0 when unknown */
} drb_pos;

/* Diagnostics: every problem found in one file, printed as "path:line:col: message". */
typedef struct drb_diag {
	drb_pos pos;
	char *msg;
} drb_diag;

typedef struct drb_diags {
	char *path; /* as given by the user */
	drb_diag *v;
	size_t n, cap;
} drb_diags;

void drb_diags_init(drb_diags *d, const char *path);
void drb_diags_add(drb_diags *d, drb_pos pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void drb_diags_sort(drb_diags *d); /* by line, then column; stable */
/* Writes each diagnostic as "path:line:col: msg\n" (sorted) to f. */
void drb_diags_print(const drb_diags *d, void *file /* FILE* */);
void drb_diags_free(drb_diags *d);

typedef enum drb_param_type {
	DRB_PT_STRING,
	DRB_PT_INT,
	DRB_PT_BOOL,
	DRB_PT_DURATION, /* value is a number of seconds */
	DRB_PT_LIST,
	DRB_PT_MAP
} drb_param_type;

typedef struct drb_param {
	char *name;
	drb_param_type type;
	json_t *def;       /* typed default (durations as seconds), NULL when none */
	int required;      /* no default and required: true (or no default at all) */
	int secret;        /* value redacted in logs and output */
	json_t *choices;   /* array of allowed values or NULL */
	char *description; /* or NULL */
	drb_pos pos;
} drb_param;

typedef enum drb_on_failure {
	DRB_ONF_INHERIT = 0, /* step: use the run's policy; run: same as abort */
	DRB_ONF_ABORT,
	DRB_ONF_ROLLBACK,
	DRB_ONF_CONTINUE
} drb_on_failure;

typedef struct drb_retry {
	int attempts;      /* total attempts, >= 1 (1 = no retry) */
	int exponential;   /* backoff: exponential (1) or fixed (0) */
	double initial_s;  /* first delay */
	double max_s;      /* cap on any delay */
} drb_retry;

/* A Lua expression with the place it was written. src NULL when absent. */
typedef struct drb_expr {
	char *src;
	drb_pos pos;
} drb_expr;

/* An action invocation: used for rollback:, done_when: (map form) and notify entries. */
typedef struct drb_call_spec {
	char *action;
	json_t *with;   /* template: strings may hold ${ } (object, never NULL once loaded) */
	char *script;   /* lua action only, or NULL */
	drb_expr assert_;
	drb_pos pos;
} drb_call_spec;

typedef struct drb_step {
	char *id;
	drb_pos pos;
	char *action;
	json_t *with;        /* template object (never NULL once loaded; {} when absent) */
	drb_pos with_pos;
	char *script;        /* step-level script: for the lua action */
	drb_pos script_pos;
	drb_expr assert_;    /* after the action: must hold */
	drb_expr when;       /* before: skip the step when false */
	drb_expr until;      /* polling: repeat the action every `every` until true */
	drb_expr for_each;   /* an expression yielding a list: fan-out */
	drb_expr done_when;  /* string form: read-only expression telling resume it took effect */
	drb_call_spec *done_when_call; /* map form {action, with, assert}, or NULL */
	double every_s;      /* 0 when unset (default 5s with until) */
	double timeout_s;    /* 0 when unset */
	int has_retry;
	drb_retry retry;
	drb_on_failure on_failure;
	drb_call_spec *rollback; /* or NULL */
	char *as;            /* loop variable name, default "item" */
	int max_parallel;    /* 0 when unset: all at once up to the engine's cap */
	int idempotent;      /* default 0 */
	int read_only;       /* for lua and exec; default 0 */
	int read_only_set;   /* read_only was written */
	int critical;        /* default 1 */
	/* The graph (format v1.1). needs: as written, or NULL when absent; needs_set says it
	 * was written (needs: [] starts at once). deps: what the step waits for, resolved by
	 * the loader into indices of drb_runbook.steps: the needs, or without needs: the step
	 * written before it (none for the first). Preflight checks have neither. */
	char **needs;
	size_t n_needs;
	int needs_set;
	size_t *deps;
	size_t n_deps;
} drb_step;

typedef struct drb_connection {
	char *name;
	char *kind;   /* "postgres" or "aws" */
	json_t *spec; /* the whole mapping as written (minus secrets, which are never inline) */
	drb_pos pos;
} drb_connection;

typedef struct drb_notify {
	char **on;        /* events: "start", "success", "failure", "end" */
	size_t n_on;
	drb_call_spec call;
} drb_notify;

/* One stop condition (stop_when:): a CloudWatch alarm that, in state ALARM, stops the run. */
typedef struct drb_stop_cond {
	char *alarm;  /* alarm name */
	char *region; /* or NULL: the AWS default region (AWS_REGION) */
	drb_pos pos;
} drb_stop_cond;
#define DRB_STOP_WHEN_MAX 100 /* one DescribeAlarms call takes at most 100 names */

typedef struct drb_runbook {
	char *path;        /* as given */
	char *dir;         /* folder of the file: Lua modules may load from here */
	char sha256[65];   /* of the file's bytes */
	int version;
	char *name;
	char *description; /* or NULL */
	char *scenario;    /* or NULL */
	double target_rto_s, target_rpo_s; /* -1 when unset */
	drb_param *params;
	size_t n_params;
	drb_connection *conns;
	size_t n_conns;
	char **lua_modules;
	size_t n_lua_modules;
	drb_step *preflight;
	size_t n_preflight;
	drb_step *steps;
	size_t n_steps;
	drb_on_failure on_failure; /* DRB_ONF_ABORT when unset */
	double deadline_s;         /* 0 when unset */
	char **locks;              /* run lock keys (lock:), or none: the engine uses the name */
	size_t n_locks;
	int max_parallel;          /* steps running at once (runbook level), default 8 */
	drb_notify *notify;
	size_t n_notify;
	drb_stop_cond *stop_when;  /* stop_when: alarms watched while the run lives */
	size_t n_stop_when;
	/* shadow: (format v1.1), what `run --shadow` adds: setup steps making throwaway copies,
	 * parameter overrides pointing the steps at them, teardown steps that always run.
	 * has_shadow is 0 when the runbook has no shadow: section (then --shadow is refused). */
	int has_shadow;
	drb_step *shadow_setup;
	size_t n_shadow_setup;
	json_t *shadow_params; /* name -> value typed as the parameter is; NULL without shadow: */
	drb_step *shadow_teardown;
	size_t n_shadow_teardown;
} drb_runbook;

/* Lock keys (and a runbook's name, the default key) name lock files and DynamoDB items:
 * 1 to DRB_LOCK_KEY_MAX bytes of text without control characters. Returns 1 when key is one. */
#define DRB_LOCK_KEY_MAX 80
#define DRB_LOCK_KEYS_MAX 32
int drb_runbook_lock_key_ok(const char *key);

/* How the loader learns which action names exist and whether they mutate: the caller (the
 * engine's registry) answers. action_mode(): 0 read-only, 1 mutating, 2 decided at run time
 * from the arguments (http.request: GET/HEAD are read-only), 3 mutating unless the step says
 * read_only: true (lua, exec), -1 unknown action. */
typedef struct drb_load_opts {
	int (*action_mode)(void *ud, const char *name);
	void *ud;
	/* The action's schema (borrowed; must outlive the load), or NULL when unknown: then
	 * its with: is not checked. When set, every literal in with: (step, rollback,
	 * done_when, notify) is checked against it: unknown and missing required arguments,
	 * wrong types, bad durations, values outside the choices. May be NULL. */
	const drb_action_schema *(*action_schema)(void *ud, const char *name);
	/* The largest file accepted, in bytes; 0: DRB_RUNBOOK_MAX_BYTES (1 MiB). The CLI sets
	 * it from DRBOOK_RUNBOOK_MAX_BYTES (benchmarks load 10,000-step runbooks). */
	size_t max_bytes;
} drb_load_opts;

/* Loads and validates a runbook. Returns 0 and *out (the caller's; drb_runbook_free), or
 * DRB_EINVAL with every problem in diags (diags must be initialised by the caller; the loader
 * appends). I/O problems (missing file, too large, binary) are reported as diagnostics at 0:0
 * too, and return DRB_EINVAL or DRB_ENOTFOUND. opts may be NULL: then action names are not
 * checked. */
int drb_runbook_load(drb_runbook **out, const char *path, const drb_load_opts *opts,
		     drb_diags *diags);
/* Same from memory; name is used in diagnostics and as path; dir may be NULL. */
int drb_runbook_load_buffer(drb_runbook **out, const char *name, const char *buf, size_t len,
			    const drb_load_opts *opts, drb_diags *diags);
void drb_runbook_free(drb_runbook *rb);

/* Finds a step by id in preflight or steps; NULL when none. Borrowed. */
const drb_step *drb_runbook_step(const drb_runbook *rb, const char *id);

/* The critical path of the step graph: the longest chain of steps each waiting for the one
 * before it (by number of steps; ties: the chain ending first in file order). Returns 0 and
 * *path (the caller's to free(); indices into rb->steps, first step first) and *n, or
 * DRB_ENOMEM. An empty runbook gives an empty path. */
int drb_runbook_critical_path(const drb_runbook *rb, size_t **path, size_t *n);

/* Builds the typed parameter object from defaults and "-p key=value" overrides: values are
 * converted to the declared type (int, bool true/false/yes/no, duration -> seconds, list as
 * comma-separated or JSON, map as JSON), unknown keys and missing required values refused.
 * Returns 0 and *out (the caller's), or DRB_EINVAL naming the parameter. */
int drb_runbook_bind_params(const drb_runbook *rb, char *const *kv, size_t n_kv, json_t **out,
			    drb_err *err);

/* Compiles a Lua expression ("return (" src ")") or chunk without running it; used by the
 * loader, also handy for tests. Returns 0 or DRB_EINVAL with Lua's message in err. */
int drb_runbook_check_expr(const char *src, drb_err *err);
int drb_runbook_check_chunk(const char *src, drb_err *err);

/* A cron expression "MIN HOUR DOM MON DOW", in UTC, with Vixie cron's semantics: lists,
 * ranges, steps (N-M/S, * /S), names JAN-DEC and SUN-SAT (any case), 0 and 7 both Sunday;
 * when DOM and DOW are both restricted (neither starts with '*') a day matches either. */
typedef struct drb_cron {
	uint64_t minute; /* bit i: minute i matches */
	uint32_t hour, dom;
	uint16_t month; /* bits 1-12 */
	uint8_t dow;	/* bits 0-6, 0 = Sunday */
	int dom_star, dow_star;
} drb_cron;

/* Parses expr into *out. Returns 0, or DRB_EINVAL with a message in msg (n bytes) and the
 * byte offset of the problem in *err_off. An expression that can never run (30 February) is
 * refused too. */
int drb_cron_parse(drb_cron *out, const char *expr, size_t *err_off, char *msg, size_t n);
/* The first instant (seconds since the epoch, a whole minute) strictly after after_s at which
 * c runs. Returns 0, or DRB_ENOTFOUND when there is none (not for a parsed expression). */
int drb_cron_next(const drb_cron *c, int64_t after_s, int64_t *out_s);

/* A game-day schedule: the drills to rehearse, when, when never, and who hears of the
 * outcome (docs/gameday.md).
 *
 *   version: 1
 *   blackout:                                       # no drill starts inside these windows
 *     - { cron: "0 8 * * MON-FRI", duration: 10h, reason: business hours }
 *     - { from: "2026-12-20T00:00:00Z", until: "2027-01-04T00:00:00Z", reason: freeze }
 *   drills:
 *     - name: region-failover-weekly
 *       runbook: ../runbooks/region-failover.yaml   # relative to the schedule file
 *       cron: "0 3 * * SAT"                         # or every: 168h
 *       params: { force: true }                     # as -p key=value
 *       approve: [approve]                          # or yes: true
 *       notify: [{ channel: pagerduty, severity: error, on: [failure] }]
 *       enabled: true
 */

/* A window in which no drill may start: recurring (each time cron runs, for duration_s) or
 * one-off ([from_s, until_s)). */
typedef struct drb_blackout {
	int recurring;
	drb_cron cron;
	double duration_s;
	int64_t from_s, until_s; /* one-off only; seconds since the epoch */
	char *reason;		 /* or NULL */
	drb_pos pos;
} drb_blackout;

typedef struct drb_drill {
	char *name;	/* unique, [A-Za-z0-9][A-Za-z0-9_.-]* */
	char *runbook;	/* resolved against the schedule's folder */
	double every_s; /* > 0 with every:, 0 with cron: */
	int has_cron;	/* cron: given (then every_s is 0) */
	drb_cron cron;
	char *cron_src;	   /* as written, or NULL */
	double catch_up_s; /* cron: how late a firing may still be run (default 2h) */
	char **params;	   /* "key=value" strings, as -p takes them */
	size_t n_params;
	char **approve; /* approval step ids granted to this drill */
	size_t n_approve;
	int yes;		 /* every approval granted */
	int enabled;		 /* default 1 */
	int shadow;		 /* run as a shadow drill (run --shadow): production untouched */
	drb_blackout *blackouts; /* the drill's own windows (the schedule's apply too) */
	size_t n_blackouts;
	drb_notify *notify; /* run-level notifications the drill's run sends (action notify) */
	size_t n_notify;
	drb_pos pos;
} drb_drill;

typedef struct drb_schedule {
	char *path;
	drb_drill *drills;
	size_t n_drills;
	drb_blackout *blackouts; /* windows for every drill */
	size_t n_blackouts;
} drb_schedule;

/* Loads and validates a schedule; problems go to diags (FILE:LINE:COL). Returns 0 and *out
 * (the caller's; drb_schedule_free), or DRB_EINVAL / DRB_ENOTFOUND. The drills' runbooks are
 * not loaded here. */
int drb_schedule_load(drb_schedule **out, const char *path, drb_diags *diags);
void drb_schedule_free(drb_schedule *s);

/* Whether drill d is due at now_s (seconds) given the start of its newest run (last_s, 0 when
 * it never ran). Returns 1 when due (*at_s: since when), 0 when not (*at_s: when it will be,
 * 0 for never: disabled). every: due when never run or last run every_s ago or more. cron:
 * due when a firing f has passed with last_s < f and now_s - f <= catch_up_s. Blackouts are
 * not considered here (drb_schedule_blackout). */
int drb_schedule_due(const drb_drill *d, int64_t last_s, int64_t now_s, int64_t *at_s);

/* The blackout window (the schedule's or the drill's; d may be NULL) that now_s falls in, and
 * in *until_s when no window holds any more (windows that touch are followed). NULL when
 * none. Borrowed from s or d. */
const drb_blackout *drb_schedule_blackout(const drb_schedule *s, const drb_drill *d, int64_t now_s,
					  int64_t *until_s);

#endif
