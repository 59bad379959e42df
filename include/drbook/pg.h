/* The PostgreSQL provider (libpq): the pg.* actions of the action catalog, how a runbook's
 * `connections:` entry becomes libpq connection parameters, and the pure pieces (value
 * conversion, validation comparisons, redaction) that the actions are built from. Every SQL
 * round trip goes through the seam of the action context; see docs/pg.md. */
#ifndef DRBOOK_PG_H
#define DRBOOK_PG_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/error.h>

/* pg.query, pg.exec, pg.status, pg.replication_lag, pg.promote, pg.fence,
 * pg.sentinel_write, pg.sentinel_check, pg.validate; NULL-terminated. The engine lists them
 * in its registry. */
extern const drb_action *const drb_pg_actions[];

/* ---- connections ------------------------------------------------------------------------ */

/* Looks up the endpoint of an RDS instance (a connection with rds_instance:). The engine wires
 * it to aws.rds.describe_db_instance. On success *host is malloc'd (the caller frees it) and
 * *port is the port; otherwise a negative drb_code with err set. region may be NULL (the
 * AWS provider's default). */
typedef int (*drb_pg_endpoint_fn)(void *ud, drb_action_ctx *ctx, const char *instance,
				  const char *region, char **host, int *port, drb_err *err);

/* Sets the process-wide resolver (NULL unsets it). Call it once before any run starts: it is
 * read without a lock. Without a resolver, rds_instance connections fail with DRB_EINVAL. */
void drb_pg_set_endpoint_resolver(drb_pg_endpoint_fn fn, void *ud);

#define DRB_PG_CONNECT_TIMEOUT_S 5.0	/* connect_timeout when the spec has none */
#define DRB_PG_STATEMENT_TIMEOUT_S 30.0 /* statement_timeout when the spec has none */

/* libpq parameters for one named connection, and the secrets to keep out of every message. */
typedef struct drb_pg_conninfo drb_pg_conninfo;

/* Builds the parameters of connection `name` from ctx->connections (kind postgres): the DSN
 * from dsn_env / dsn_file (passed to libpq as an expanded dbname, first, so that the spec's
 * user, dbname, sslmode and password override it), or host and port from the endpoint
 * resolver for rds_instance; then connect_timeout, application_name=drbook and
 * options "-c statement_timeout=MS -c TimeZone=UTC -c DateStyle=ISO" (appended to any options
 * in the DSN). Timeouts come from the spec (defaults above); statement_timeout is raised to at
 * least min_statement_s (pg.promote waits inside a statement) and both are capped by the time
 * left before ctx->deadline (DRB_ETIMEOUT when none is left). *out is the caller's to free
 * with drb_pg_conninfo_free. Errors name the connection, the variable or the file, never a
 * value: DRB_ENOTFOUND (no such connection), DRB_EINVAL (wrong kind, variable unset, DSN not
 * parseable, no resolver), DRB_EIO/DRB_ENOTFOUND (files). */
int drb_pg_conninfo_build(drb_pg_conninfo **out, drb_action_ctx *ctx, const char *name,
			  double min_statement_s, drb_err *err);
void drb_pg_conninfo_free(drb_pg_conninfo *ci);

/* The keyword/value arrays for PQconnectdbParams(keys, vals, expand); borrowed from ci,
 * NULL-terminated. *expand is 1 when the first entry is a DSN to expand. */
void drb_pg_conninfo_params(const drb_pg_conninfo *ci, const char *const **keys,
			    const char *const **vals, int *expand);
/* The value libpq will use for keyword among our own entries (the DSN's fields are resolved
 * too): the last non-empty one, or NULL. Borrowed. Never call it for "password" in a message. */
const char *drb_pg_conninfo_get(const drb_pg_conninfo *ci, const char *keyword);
/* "connection 'dr_db' (host=... port=... dbname=... user=...)": safe to show (no password). */
const char *drb_pg_conninfo_describe(const drb_pg_conninfo *ci);
/* Replaces every occurrence of a secret of ci (the passwords, in plain and URI-encoded form)
 * in the NUL-terminated msg (capacity n) with "***", in place. ci may be NULL (no-op). */
void drb_pg_conninfo_redact(const drb_pg_conninfo *ci, char *msg, size_t n);

/* ---- pure helpers (tested without a server) ---------------------------------------------- */

/* One PostgreSQL value in text format as JSON, by the column's type OID: int2/int4/int8 ->
 * integer; float4/float8 -> number (NaN and infinities -> string); numeric -> integer when it
 * is a whole number within 64 bits, number when it has at most 15 significant digits, string
 * otherwise; bool -> boolean; json/jsonb -> decoded; timestamptz and timestamp -> RFC 3339
 * UTC with milliseconds (timestamp without time zone is taken as UTC; infinity stays a
 * string); NULL (text == NULL) -> null; everything else -> string. Returns a new reference, or
 * NULL when out of memory. */
json_t *drb_pg_value(unsigned int type_oid, const char *text, size_t len);

/* The drb_code for an SQLSTATE: connection problems, serialization failures, shutdowns and
 * resource shortages are DRB_ETRANSIENT; query_canceled (statement_timeout) DRB_ETIMEOUT;
 * authentication, privilege and read-only-transaction errors DRB_EDENIED; syntax and
 * undefined objects DRB_EINVAL; invalid_catalog_name DRB_ENOTFOUND; otherwise DRB_ERR. */
int drb_pg_code_of_sqlstate(const char *sqlstate);

/* pg.validate's comparison of a check's first value `got` with `expect`:
 *   {min=, max=} (either or both): got is a number (or a numeric string) in [min, max];
 *   number: got is numerically equal (a numeric string counts: 42 matches "42.0");
 *   boolean: got is the same boolean, or the string t/true/f/false (any case);
 *   string: got is the same string, or a number/boolean whose text form equals it
 *           ("42" matches 42, "true" matches true);
 *   null: got is null.
 * Returns 1 when it matches, 0 when it does not, DRB_EINVAL (err set) when expect itself is
 * not a valid expectation (a list, an object with other keys, min > max). */
int drb_pg_expect_match(const json_t *expect, const json_t *got, drb_err *err);

#endif
