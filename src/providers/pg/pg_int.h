/* Internals of the PostgreSQL provider shared by its files: the connection spec lookup split
 * from the secret reading (so that only the perform step, which a replay skips, touches
 * environment variables and files), and the statement runner behind every action. */
#ifndef DRB_PG_INT_H
#define DRB_PG_INT_H

#include <jansson.h>
#include <libpq-fe.h>

#include <drbook/action.h>
#include <drbook/pg.h>

/* The spec object of connection `name` (borrowed from ctx->connections), checked to be a
 * postgres connection with exactly one source. */
int drb_pgi_spec(const drb_action_ctx *ctx, const char *name, const json_t **spec, drb_err *err);

/* Where an rds_instance connection points; host NULL for the other kinds. */
typedef struct drb_pgi_endpoint {
	char *host;
	int port;
} drb_pgi_endpoint;

/* Asks the resolver for rds_instance connections; no-op (host NULL) for the others. */
int drb_pgi_resolve(drb_action_ctx *ctx, const char *name, const json_t *spec, drb_pgi_endpoint *ep,
		    drb_err *err);
void drb_pgi_endpoint_free(drb_pgi_endpoint *ep);

/* Builds the parameters from a checked spec and a resolved endpoint; reads the DSN and the
 * password (environment, files). deadline as in drb_action_ctx (0 = none). */
int drb_pgi_build(drb_pg_conninfo **out, const char *name, const json_t *spec,
		  const drb_pgi_endpoint *ep, double deadline, double min_statement_s,
		  drb_err *err);

/* ---- libpq, loaded on first use (libpq.c) ---- */

/* Every libpq function the provider calls; each is a member of drb_pq_api with the type the
 * build's <libpq-fe.h> gives it. A call of libpq not through this table fails to link
 * (drbook does not link libpq; see layercheck_pg). */
/* clang-format off */
#define DRB_PQ_FUNCS(X)                                                                        \
	X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams)                          \
	X(PQconnectionNeedsPassword) X(PQconninfoFree) X(PQconninfoParse) X(PQerrorMessage)    \
	X(PQexec) X(PQexecParams) X(PQfinish) X(PQfname) X(PQfreemem) X(PQftype)               \
	X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQnfields) X(PQntuples)                  \
	X(PQresultErrorField) X(PQresultStatus) X(PQsetNoticeProcessor) X(PQstatus)            \
	X(PQtransactionStatus)
/* clang-format on */

typedef struct drb_pq_api {
#define DRB_PQ_MEMBER(f) __typeof__(f) *f;
	DRB_PQ_FUNCS(DRB_PQ_MEMBER)
#undef DRB_PQ_MEMBER
} drb_pq_api;

/* Loads libpq the first time (thread-safe: pthread_once) and sets *out to its functions,
 * which stay valid for the life of the process. When it cannot be loaded: DRB_ERR naming
 * `action` (or whatever needed it), the library and the Debian package, every time. */
int drb_pgi_libpq(const drb_pq_api **out, const char *action, drb_err *err);

/* ---- the statement runner ---- */

#define DRB_PGI_READ_ONLY 1u  /* inside BEGIN READ ONLY ... ROLLBACK */
#define DRB_PGI_KEEP_GOING 2u /* an SQL error is recorded and the next statement still runs */
#define DRB_PGI_IF_TRUE 4u    /* runs only when the previous statement's first value is true */

typedef struct drb_pgi_stmt {
	const char *sql;
	const json_t *params; /* array of values or NULL; borrowed */
	unsigned flags;
} drb_pgi_stmt;

/* Everything perform needs; the action fills it, perform runs it. */
typedef struct drb_pgi_job {
	const char *action; /* "pg.query", for messages */
	const char *conn_name;
	const json_t *spec;  /* borrowed from the context */
	drb_pgi_endpoint ep; /* owned */
	double deadline;
	double min_statement_s;
	volatile int *cancel;
	const drb_pgi_stmt *stmts;
	size_t n_stmts;
	int unreachable_ok;   /* pg.fence: a failed connection is an answer, not an error */
	drb_pg_conninfo *ci;  /* set by perform, kept for redacting later messages */
	const drb_pq_api *pq; /* set by perform: libpq, loaded */
} drb_pgi_job;

/* The drb_perform_fn of every pg action. The response:
 *   {"status": 0 | 1 (a statement failed), "reachable": true,
 *    "results": [ {"command_tag", "rows_affected", "rows": [...], "took_ms"}
 *               | {"error": {"sqlstate", "message"}, "took_ms"} | {"skipped": true} ],
 *    "error": {"sqlstate", "message", "statement"} (the first error that stopped it)}
 * or, for unreachable_ok jobs whose connection failed, {"status": 0, "reachable": false,
 * "error": {"message"}}. Connection failures of other jobs are codes (DRB_ETRANSIENT,
 * DRB_EDENIED for authentication, DRB_ETIMEOUT) with a redacted message. */
int drb_pgi_perform(void *arg, json_t **response, drb_err *err);

/* Sets err from the response's "error" (code from the SQLSTATE) with the connection's name
 * as context; returns that code, or 0 when the response has no error. */
int drb_pgi_response_error(const json_t *resp, const char *conn_name, drb_err *err);

/* Replaces secrets and caps length: for messages that came from libpq or the server. */
void drb_pgi_clean_message(const drb_pg_conninfo *ci, const char *in, char *out, size_t n);

/* Text form of a JSON value as a query parameter: malloc'd, or NULL for JSON null (a SQL
 * NULL); *oom set when allocation failed. */
char *drb_pgi_param_text(const json_t *v, int *oom);

#endif
