/* The action interface shared by the engine and the providers. An action takes JSON
 * arguments (the interpolated `with:`) and returns a JSON result. Every call that leaves the
 * process goes through the seam in the context: in a live run the seam performs the call and
 * reports it to the audit log; in a replay it answers from the recorded log. Providers never
 * see the engine, only this header. */
#ifndef DRBOOK_ACTION_H
#define DRBOOK_ACTION_H

#include <jansson.h>

#include <drbook/error.h>

/* One outgoing call as the audit log records it. All members are borrowed. request must be
 * already redacted by the provider (no Authorization header, no password). */
typedef struct drb_call {
	const char *service;   /* "rds", "route53", "pg", "http", ... */
	const char *operation; /* "PromoteReadReplica", "query", "GET" ... */
	const char *region;    /* or NULL */
	const json_t *request; /* redacted request description */
} drb_call;

/* Performs the call for real. On success *response is a new object the seam takes: it must
 * hold "status" (HTTP status or 0) and whatever the provider needs to parse the answer again
 * in a replay (e.g. "body"); the seam adds latency_ms. Errors that happen before any answer
 * (connection refused, timeout) are returned as codes. */
typedef int (*drb_perform_fn)(void *arg, json_t **response, drb_err *err);

typedef struct drb_seam drb_seam;
struct drb_seam {
	/* Runs perform (or, in replay, finds the recorded answer), logs a "call" event and hands
	 * *response to the caller (the caller's to json_decref). */
	int (*call)(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		    json_t **response, drb_err *err);
	void *ud;
	/* Records a fact while a call runs, before its answer (an exec child's pid, so that a
	 * resume after a crash can tell whether it still runs). data is borrowed. A failure
	 * means the fact is not recorded: the caller must undo what it started and fail.
	 * NULL, or a no-op in a replay, when nothing records. */
	int (*note)(drb_seam *s, const char *event, const json_t *data, drb_err *err);
};

/* Context of one action invocation, owned by the engine, borrowed by the action. */
typedef struct drb_action_ctx {
	drb_seam *seam;
	const char *step_id;	   /* for messages */
	const json_t *connections; /* the runbook's connections: name -> spec object */
	int drill;		   /* --drill */
	int read_only;		   /* preflight/plan: mutating calls are refused */
	double deadline;	   /* drb_mono_now() value after which to give up; 0 = none */
	volatile int *cancel;	   /* set to 1 when the run is being stopped; may be NULL */
	int replay;		   /* replaying a log: the seam answers; do not wait or sleep */
	void *engine;		   /* opaque; for the engine's own built-ins */
} drb_action_ctx;

typedef int (*drb_action_fn)(drb_action_ctx *ctx, const json_t *args, json_t **result,
			     drb_err *err);

typedef enum drb_action_mode {
	DRB_ACT_RO = 0,	     /* read-only: allowed in preflight and plan */
	DRB_ACT_MUT = 1,     /* mutating */
	DRB_ACT_DEPENDS = 2, /* decided at run time by mode_of(args) (http.request) */
	DRB_ACT_STEP = 3     /* mutating unless the step says read_only: true (lua, exec) */
} drb_action_mode;

typedef struct drb_action {
	const char *name; /* "aws.rds.promote_read_replica" */
	drb_action_mode mode;
	int (*mode_of)(const json_t *args); /* for DRB_ACT_DEPENDS: 0 ro, 1 mut; may be NULL */
	/* Names for positional arguments when called from Lua as f(a, b, ...) instead of
	 * f{...}; NULL-terminated; a last name ending in "..." collects the rest into a list. */
	const char *const *positional;
	drb_action_fn fn;
	/* When called from Lua, return this field of the result instead of the whole result
	 * (pg.query(...) returns its rows); NULL returns the whole result. */
	const char *lua_returns;
} drb_action;

/* Small helpers for actions reading their arguments. Each returns 0, or DRB_EINVAL naming
 * the argument ("argument 'id' must be a string"). Optional getters leave *out untouched
 * when the argument is absent or null. */
int drb_arg_string(const json_t *args, const char *name, const char **out, drb_err *err);
int drb_arg_string_opt(const json_t *args, const char *name, const char **out, drb_err *err);
int drb_arg_int_opt(const json_t *args, const char *name, long long *out, drb_err *err);
int drb_arg_bool_opt(const json_t *args, const char *name, int *out, drb_err *err);
/* Numbers are seconds; strings are durations ("90s"). */
int drb_arg_duration_opt(const json_t *args, const char *name, double *out, drb_err *err);
/* Builds an action's result from a (live or replayed) seam response: a new object with the
 * members of resp named in keys (NULL-terminated; absent ones are left out). The member
 * `required` must be an integer in resp, else DRB_EINVAL ("ACTION: the response has no X").
 * *result is the caller's. */
int drb_result_pick(const json_t *resp, const char *const *keys, const char *required,
		    const char *action, json_t **result, drb_err *err);

/* Refuses arguments not in the NULL-terminated list: a misspelt key is an error. */
int drb_args_known(const json_t *args, const char *const *names, drb_err *err);

#endif
