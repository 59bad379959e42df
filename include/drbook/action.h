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

/* Value types of arguments and result fields, as bits: an argument may take several (a
 * Route 53 `values` is a string or a list). */
enum {
	DRB_T_STRING = 1 << 0,
	DRB_T_INT = 1 << 1,	 /* an integer, or a string of one ("2") */
	DRB_T_NUMBER = 1 << 2,	 /* any finite number */
	DRB_T_BOOL = 1 << 3,	 /* true/false, or the strings "true"/"false" */
	DRB_T_DURATION = 1 << 4, /* seconds as a number >= 0, or a duration string ("90s") */
	DRB_T_LIST = 1 << 5,
	DRB_T_MAP = 1 << 6,
	DRB_T_ANY = (1 << 7) - 1
};

/* One argument an action takes. All members are static text, or, in a schema built by
 * drb_action_schema_from_json (custom Lua actions), owned by that schema. */
typedef struct drb_arg_spec {
	const char *name;	    /* NULL ends a list */
	unsigned type;		    /* DRB_T_* bits */
	int required;		    /* 1: validate and run refuse the step without it */
	const char *def;	    /* what the action assumes when absent, as text; or NULL */
	const char *const *choices; /* the allowed string values, NULL-terminated; or NULL */
	const char *doc;	    /* one line */
} drb_arg_spec;

/* One field of an action's result. */
typedef struct drb_field_spec {
	const char *name; /* NULL ends a list */
	unsigned type;
	const char *doc;
} drb_field_spec;

/* What an action takes and returns: the source of `drbook actions`, docs/actions.md and the
 * `with:` checks of validate (literals) and run (interpolated values). */
typedef struct drb_action_schema {
	const char *doc;	      /* one line */
	const drb_arg_spec *args;     /* NULL-name-terminated; NULL: takes no arguments */
	const drb_field_spec *result; /* NULL-name-terminated; NULL: an empty result */
	const char *result_doc;	      /* how to read the result when fields do not say it all */
	const char *resource;	      /* the argument naming what the action touches, or NULL */
	int open;		      /* 1: arguments are not checked (undeclared custom action) */
} drb_action_schema;

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
	/* Borrowed: static for the catalog (every action there has one); a custom Lua action's
	 * lives as long as its drb_lua. NULL: arguments are not checked. */
	const drb_action_schema *schema;
} drb_action;

/* Checks args (an object or NULL) against s: unknown argument ("unknown argument 'x' (did
 * you mean 'y'?)"), wrong type ("argument 'x' must be an integer (got "two")"), value not
 * among the choices ("argument 'x' must be a, b or c (got "d")"), missing required argument
 * ("argument 'x' is required"). Returns 0 or DRB_EINVAL naming the first problem. A null
 * value counts as absent. validate applies the same rules to literals (drb_arg_check). */
int drb_args_check(const drb_action_schema *s, const json_t *args, drb_err *err);
/* Checks one value against its spec (type and choices). 0 or DRB_EINVAL as above. */
int drb_arg_check(const drb_arg_spec *a, const json_t *v, drb_err *err);
/* The spec of argument name in s, or NULL. Borrowed from s. */
const drb_arg_spec *drb_schema_arg(const drb_action_schema *s, const char *name);
/* The closest argument name to name in s (a likely misspelling), or NULL. */
const char *drb_schema_suggest(const drb_action_schema *s, const char *name);
/* Builds a schema from a declaration (a custom Lua action's, converted to JSON):
 *   {doc, resource, args: {NAME: {type, required, default, enum, doc}}, result: {NAME: {type,
 *   doc}}, mode}   (mode is read by the caller; type: string|int|number|bool|duration|list|
 *   map|any, several joined by "|"). Without args the schema is open (arguments unchecked).
 * Arguments and fields are sorted by name. Unknown keys, unknown types, a default that does
 * not fit its type and a resource that is not an argument are DRB_EINVAL. *out is the
 * caller's (drb_action_schema_free). */
int drb_action_schema_from_json(const json_t *decl, drb_action_schema **out, drb_err *err);
void drb_action_schema_free(drb_action_schema *s); /* only for schemas built above; NULL ok */
/* "an integer", "a string or a list": for messages and the catalog. Writes at most n bytes. */
void drb_type_text(unsigned type, int article, char *buf, size_t n);

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
