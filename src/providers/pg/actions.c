/* The pg.* actions of the action catalog. Each one checks its arguments, describes its SQL
 * to the seam (never a password or a parameter value), lets drb_pgi_perform run it, and
 * builds its result from the response alone, so that a replay answering from the audit log
 * gets the same result without a server. Choices that runbooks rely on are in docs/pg.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <drbook/pg.h>
#include <drbook/util.h>

#include "pg_int.h"

#define DEFAULT_PROMOTE_WAIT_S 60.0
#define MAX_CHECKS 200

static json_t *results_at(const json_t *resp, size_t i)
{
	return json_array_get(json_object_get(resp, "results"), i);
}

/* The first row of statement i's result, or NULL. */
static json_t *row0(const json_t *resp, size_t i)
{
	return json_array_get(json_object_get(results_at(resp, i), "rows"), 0);
}

static int nomem(drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "out of memory");
}

/* Everything the actions share: spec lookup, endpoint, request for the log, the seam call.
 * On success *resp is the caller's. SQL errors in the response are left to the caller. */
static int run(drb_action_ctx *ctx, const char *action, const char *conn, drb_pgi_stmt *stmts,
	       size_t n, double min_statement_s, int unreachable_ok, json_t **resp, drb_err *err)
{
	drb_pgi_job j;
	drb_call call = {.service = "pg", .operation = action + 3}; /* "pg.query" -> "query" */
	json_t *req = NULL, *sql = NULL;
	size_t nargs = 0;
	int rc;

	memset(&j, 0, sizeof(j));
	*resp = NULL;
	j.action = action;
	j.conn_name = conn;
	j.deadline = ctx->deadline;
	j.min_statement_s = min_statement_s;
	j.cancel = ctx->cancel;
	j.stmts = stmts;
	j.n_stmts = n;
	j.unreachable_ok = unreachable_ok;
	rc = drb_pgi_spec(ctx, conn, &j.spec, err);
	if (rc == 0)
		rc = drb_pgi_resolve(ctx, conn, j.spec, &j.ep, err);
	if (rc) {
		if (unreachable_ok && (rc == DRB_ETRANSIENT || rc == DRB_ETIMEOUT)) {
			/* the endpoint lookup failed the way an outage fails: that is an answer */
			*resp = json_pack("{s:i, s:b, s:{s:s}}", "status", 0, "reachable", 0,
					  "error", "message", err->msg);
			rc = *resp ? 0 : nomem(err);
			drb_err_clear(err);
		}
		goto out;
	}
	sql = n == 1 ? json_string(stmts[0].sql) : json_array();
	if (!sql)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (n > 1 && json_array_append_new(sql, json_string(stmts[i].sql)))
			goto oom;
		nargs += stmts[i].params ? json_array_size(stmts[i].params) : 0;
	}
	/* parameter values are data (they may be personal): only their number is logged */
	req =
	    json_pack("{s:s, s:O, s:I}", "connection", conn, "sql", sql, "args", (json_int_t)nargs);
	if (!req)
		goto oom;
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, drb_pgi_perform, &j, resp, err);
	if (rc == 0 && !json_is_object(*resp)) {
		json_decref(*resp);
		*resp = NULL;
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': the response is not an object",
				 conn);
	}
	goto out;
oom:
	rc = nomem(err);
out:
	drb_pg_conninfo_free(j.ci);
	drb_pgi_endpoint_free(&j.ep);
	json_decref(sql);
	json_decref(req);
	return rc;
}

/* Checks the arguments against the action's schema and reads connection. */
static int common_args(drb_action_ctx *ctx, const drb_action *a, const json_t *args,
		       const char **conn, drb_err *err)
{
	int rc = drb_args_check(a->schema, args, err);

	if (rc == 0)
		rc = drb_arg_string(args, "connection", conn, err);
	if (rc == 0 && ctx->read_only && a->mode == DRB_ACT_MUT)
		rc = drb_err_set(err, DRB_EDENIED,
				 "%s changes the database: refused in preflight "
				 "and plan",
				 a->name);
	return rc;
}

static int sql_args(const json_t *args, const char **sql, const json_t **params, drb_err *err)
{
	int rc = drb_arg_string(args, "sql", sql, err);

	*params = json_object_get(args, "args");
	if (rc == 0 && json_is_null(*params))
		*params = NULL;
	if (rc == 0 && *params && !json_is_array(*params))
		rc = drb_err_set(err, DRB_EINVAL, "argument 'args' must be a list");
	if (rc == 0 && !**sql)
		rc = drb_err_set(err, DRB_EINVAL, "argument 'sql' is empty");
	return rc;
}

/* ---- pg.query, pg.exec ---- */

static const char *const sql_positional[] = {"connection", "sql", "args...", NULL};

static int sql_action(drb_action_ctx *ctx, const drb_action *a, const json_t *args, json_t **result,
		      drb_err *err)
{
	const char *conn = NULL, *sql = NULL;
	const json_t *params = NULL, *one;
	drb_pgi_stmt st;
	json_t *resp = NULL, *r = NULL;
	int ro = a->mode == DRB_ACT_RO, rc;

	*result = NULL;
	rc = common_args(ctx, a, args, &conn, err);
	if (rc == 0)
		rc = sql_args(args, &sql, &params, err);
	if (rc)
		goto out;
	st = (drb_pgi_stmt){sql, params, ro ? DRB_PGI_READ_ONLY : 0};
	rc = run(ctx, a->name, conn, &st, 1, 0, 0, &resp, err);
	if (rc == 0)
		rc = drb_pgi_response_error(resp, conn, err);
	if (rc)
		goto out;
	one = results_at(resp, 0);
	if (ro)
		r = json_pack("{s:O, s:I, s:O}", "rows", json_object_get(one, "rows"), "row_count",
			      (json_int_t)json_array_size(json_object_get(one, "rows")),
			      "command_tag", json_object_get(one, "command_tag"));
	else
		r = json_pack("{s:O, s:O, s:O}", "rows_affected",
			      json_object_get(one, "rows_affected"), "command_tag",
			      json_object_get(one, "command_tag"), "rows",
			      json_object_get(one, "rows"));
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': the response has no result",
				 conn);
		goto out;
	}
	*result = r;
out:
	json_decref(resp);
	return rc;
}

static const drb_action act_query, act_exec, act_status, act_lag, act_promote, act_fence,
    act_unfence, act_sentinel_write, act_sentinel_check, act_validate;

static int query_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return sql_action(ctx, &act_query, args, result, err);
}

static int exec_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return sql_action(ctx, &act_exec, args, result, err);
}

/* ---- schemas ---- */

#define CONN                                                                                       \
	{                                                                                          \
		"connection", DRB_T_STRING, 1, NULL, NULL,                                         \
		    "a postgres connection from connections:"                                      \
	}
#define ARGS_END                                                                                   \
	{                                                                                          \
		NULL, 0, 0, NULL, NULL, NULL                                                       \
	}
#define FIELDS_END                                                                                 \
	{                                                                                          \
		NULL, 0, NULL                                                                      \
	}

static const drb_action_schema query_schema = {
    .doc = "A query in a READ ONLY transaction; from Lua pg.query(conn, sql, ...) returns rows",
    .args =
	(const drb_arg_spec[]){CONN,
			       {"sql", DRB_T_STRING, 1, NULL, NULL, "one statement; $1, $2 ..."},
			       {"args", DRB_T_LIST, 0, NULL, NULL, "values of $1, $2 ..."},
			       ARGS_END},
    .result = (const drb_field_spec[]){{"rows", DRB_T_LIST, "list of tables (column: value)"},
				       {"row_count", DRB_T_INT, "number of rows"},
				       {"command_tag", DRB_T_STRING, "e.g. SELECT 1"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema exec_schema = {
    .doc = "A statement that changes the database",
    .args = query_schema.args,
    .result = (const drb_field_spec[]){{"rows_affected", DRB_T_INT, "rows changed"},
				       {"command_tag", DRB_T_STRING, "e.g. UPDATE 3"},
				       {"rows", DRB_T_LIST, "rows of a RETURNING clause"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema status_schema = {
    .doc = "Role and position of a server",
    .args = (const drb_arg_spec[]){CONN, ARGS_END},
    .result = (const drb_field_spec[]){{"in_recovery", DRB_T_BOOL, "a standby"},
				       {"timeline", DRB_T_INT, "current timeline"},
				       {"lsn", DRB_T_STRING, "current (or replayed) WAL position"},
				       {"server_version", DRB_T_STRING, "e.g. 15.8"},
				       {"server_version_num", DRB_T_INT, "e.g. 150008"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema lag_schema = {
    .doc = "Replication lag, on a standby (its own) or a primary (its worst replica's)",
    .args = (const drb_arg_spec[]){CONN, ARGS_END},
    .result =
	(const drb_field_spec[]){
	    {"replay_lag_s", DRB_T_NUMBER, "seconds behind (0 when caught up; null when unknown)"},
	    {"lag_bytes", DRB_T_INT,
	     "WAL bytes received but not replayed (primary: worst replica)"},
	    {"receive_lsn", DRB_T_STRING, "standby: last WAL position received"},
	    {"replay_lsn", DRB_T_STRING, "standby: last WAL position replayed"},
	    {"in_recovery", DRB_T_BOOL, "a standby"},
	    {"role", DRB_T_STRING, "primary or replica"},
	    {"last_replay_at", DRB_T_STRING,
	     "standby: commit time of the last replayed transaction"},
	    {"replay_paused", DRB_T_BOOL, "standby: replay is paused"},
	    {"receiver_status", DRB_T_STRING, "standby: the WAL receiver's status"},
	    {"replicas", DRB_T_LIST, "primary: one entry per connected replica"},
	    FIELDS_END},
    .resource = "connection"};
static const drb_action_schema promote_schema = {
    .doc = "Promotes a standby (pg_promote); an already promoted server is not an error",
    .args = (const drb_arg_spec[]){CONN,
				   {"wait", DRB_T_BOOL | DRB_T_DURATION, 0, "true", NULL,
				    "wait for the end of recovery (or how long to wait)"},
				   {"timeout", DRB_T_DURATION, 0, "60s", NULL, "how long to wait"},
				   ARGS_END},
    .result = (const drb_field_spec[]){{"promoted", DRB_T_BOOL, "this call promoted it"},
				       {"already_primary", DRB_T_BOOL, "it was a primary already"},
				       {"in_recovery", DRB_T_BOOL, "still a standby"},
				       {"took_ms", DRB_T_INT, "time the promotion took"},
				       FIELDS_END},
    .resource = "connection"};
static const char *const fence_methods[] = {"settings", "roles", NULL};
#define FENCE_ARGS                                                                                 \
	CONN,                                                                                      \
	    {"method",                                                                             \
	     DRB_T_STRING,                                                                         \
	     0,                                                                                    \
	     "settings",                                                                           \
	     fence_methods,                                                                        \
	     "settings: the server's default_transaction_read_only (ALTER SYSTEM, superuser); "    \
	     "roles: the roles in `roles` may not log in (works on RDS)"},                         \
	{                                                                                          \
		"roles", DRB_T_LIST, 0, NULL, NULL,                                                \
		    "the application's roles (method roles); never the connection's own role"      \
	}
static const drb_action_schema fence_schema = {
    .doc = "Fences an old primary: no new writes from the application, its sessions ended",
    .args = (const drb_arg_spec[]){FENCE_ARGS, ARGS_END},
    .result = (const drb_field_spec[]){{"fenced", DRB_T_BOOL, "the server is fenced"},
				       {"reachable", DRB_T_BOOL, "false: the server was down"},
				       {"method", DRB_T_STRING, "settings or roles"},
				       {"terminated", DRB_T_INT, "client sessions ended"},
				       {"error", DRB_T_STRING, "why it was unreachable"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema unfence_schema = {
    .doc = "Undoes pg.fence (the same method and roles): writes and logins allowed again",
    .args = (const drb_arg_spec[]){FENCE_ARGS, ARGS_END},
    .result = (const drb_field_spec[]){{"unfenced", DRB_T_BOOL, "the fence is lifted"},
				       {"method", DRB_T_STRING, "settings or roles"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema sentinel_write_schema = {
    .doc = "Writes a sentinel row (drbook.sentinel) to measure RPO later",
    .args = (const drb_arg_spec[]){CONN,
				   {"note", DRB_T_STRING, 0, NULL, NULL, "stored with the row"},
				   ARGS_END},
    .result = (const drb_field_spec[]){{"id", DRB_T_STRING, "the sentinel's id"},
				       {"written_at", DRB_T_STRING, "commit time, RFC 3339"},
				       {"lsn", DRB_T_STRING, "WAL position after the commit"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema sentinel_check_schema = {
    .doc = "Whether a sentinel row is present (after a failover or a restore)",
    .args = (const drb_arg_spec[]){CONN,
				   {"id", DRB_T_STRING, 1, NULL, NULL, "from pg.sentinel_write"},
				   ARGS_END},
    .result = (const drb_field_spec[]){{"present", DRB_T_BOOL, "the row is there"},
				       {"id", DRB_T_STRING, "the id asked for"},
				       {"written_at", DRB_T_STRING, "when present"},
				       FIELDS_END},
    .resource = "connection"};
static const drb_action_schema validate_schema = {
    .doc = "Read-only checks of restored data: each query's first value against expect",
    .args = (const drb_arg_spec[]){CONN,
				   {"checks", DRB_T_LIST, 1, NULL, NULL,
				    "list of {name, sql, expect, args}"},
				   ARGS_END},
    .result = (const drb_field_spec[]){{"passed", DRB_T_BOOL, "every check passed"},
				       {"failures", DRB_T_LIST, "{name, expected, got, error}"},
				       {"results", DRB_T_LIST, "{name, ok, got} per check"},
				       FIELDS_END},
    .resource = "connection"};

static const drb_action act_query = {.name = "pg.query",
				     .mode = DRB_ACT_RO,
				     .positional = sql_positional,
				     .fn = query_fn,
				     .lua_returns = "rows",
				     .schema = &query_schema};
static const drb_action act_exec = {.name = "pg.exec",
				    .mode = DRB_ACT_MUT,
				    .positional = sql_positional,
				    .fn = exec_fn,
				    .schema = &exec_schema};

/* ---- pg.status ---- */

static const char *const conn_positional[] = {"connection", NULL};

/* The timeline: on a primary the current WAL file's name starts with it; on a standby (where
 * pg_walfile_name() is refused) the one its WAL receiver streams, else the one of the last
 * restartpoint. */
static const char status_sql[] =
    "SELECT pg_is_in_recovery() AS in_recovery,"
    " (CASE WHEN pg_is_in_recovery()"
    "   THEN coalesce(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn())"
    "   ELSE pg_current_wal_lsn() END)::text AS lsn,"
    " CASE WHEN pg_is_in_recovery()"
    "   THEN coalesce((SELECT received_tli::bigint FROM pg_stat_wal_receiver),"
    "                 (SELECT timeline_id::bigint FROM pg_control_checkpoint()))"
    "   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint"
    " END AS timeline,"
    " current_setting('server_version') AS server_version,"
    " current_setting('server_version_num')::int AS server_version_num";

static int status_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL;
	drb_pgi_stmt st = {status_sql, NULL, 0};
	json_t *resp = NULL, *row;
	int rc;

	*result = NULL;
	rc = drb_args_check(act_status.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = run(ctx, "pg.status", conn, &st, 1, 0, 0, &resp, err);
	if (rc == 0)
		rc = drb_pgi_response_error(resp, conn, err);
	if (rc)
		goto out;
	row = row0(resp, 0);
	if (!json_is_object(row)) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': pg.status returned no row",
				 conn);
		goto out;
	}
	*result = json_deep_copy(row);
	if (!*result)
		rc = nomem(err);
out:
	json_decref(resp);
	return rc;
}

/* ---- pg.replication_lag ---- */

static const char lag_sql[] =
    "SELECT pg_is_in_recovery() AS in_recovery,"
    " pg_last_wal_receive_lsn()::text AS receive_lsn,"
    " pg_last_wal_replay_lsn()::text AS replay_lsn,"
    " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint"
    "   AS lag_bytes,"
    " pg_last_xact_replay_timestamp() AS last_replay_at,"
    " extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
    "   AS since_replay_s,"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused,"
    " (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,"
    " (SELECT coalesce(json_agg(json_build_object("
    "     'application_name', application_name, 'client_addr', client_addr::text,"
    "     'state', state, 'sync_state', sync_state, 'sent_lsn', sent_lsn::text,"
    "     'flush_lsn', flush_lsn::text, 'replay_lsn', replay_lsn::text,"
    "     'lag_bytes', pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery()"
    "         THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, replay_lsn)::bigint,"
    "     'replay_lag_s', extract(epoch FROM replay_lag)::float8)"
    "   ORDER BY application_name), '[]'::json) FROM pg_stat_replication) AS replicas";

/* On a standby: 0 when everything received is replayed (caught up: an idle primary writes
 * no transactions, so the age of the last one says nothing), otherwise the age of the last
 * replayed transaction (commit time on the primary's clock), null when none was replayed
 * since the standby started. */
static json_t *standby_lag(const json_t *row)
{
	const json_t *bytes = json_object_get(row, "lag_bytes");
	const json_t *since = json_object_get(row, "since_replay_s");

	if (json_is_integer(bytes) && json_integer_value(bytes) <= 0)
		return json_integer(0);
	if (json_is_number(since))
		return json_real(json_number_value(since) > 0 ? json_number_value(since) : 0);
	return json_null();
}

/* On a primary: the worst replica, null without replicas. A replica's replay_lag is null when
 * it is caught up and the primary idle: 0 then. */
static int primary_lag(json_t *r, json_t *replicas)
{
	json_t *worst_bytes = json_null(), *worst_s = json_null(), *rep;
	size_t i;
	int bad = 0;

	json_array_foreach(replicas, i, rep)
	{
		json_t *b = json_object_get(rep, "lag_bytes"),
		       *s = json_object_get(rep, "replay_lag_s");

		if (json_is_null(s) && json_is_integer(b) && json_integer_value(b) <= 0) {
			bad |= json_object_set_new(rep, "replay_lag_s", json_integer(0));
			s = json_object_get(rep, "replay_lag_s");
		}
		if (json_is_integer(b) &&
		    (json_is_null(worst_bytes) ||
		     json_integer_value(b) > json_integer_value(worst_bytes))) {
			json_decref(worst_bytes);
			worst_bytes = json_incref(b);
		}
		if (json_is_number(s) &&
		    (json_is_null(worst_s) || json_number_value(s) > json_number_value(worst_s))) {
			json_decref(worst_s);
			worst_s = json_incref(s);
		}
	}
	bad |= json_object_set_new(r, "lag_bytes", worst_bytes);
	bad |= json_object_set_new(r, "replay_lag_s", worst_s);
	return bad ? DRB_ENOMEM : 0;
}

static int lag_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL;
	drb_pgi_stmt st = {lag_sql, NULL, 0};
	json_t *resp = NULL, *row, *r = NULL, *replicas;
	int rc;

	*result = NULL;
	rc = drb_args_check(act_lag.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = run(ctx, "pg.replication_lag", conn, &st, 1, 0, 0, &resp, err);
	if (rc == 0)
		rc = drb_pgi_response_error(resp, conn, err);
	if (rc)
		goto out;
	row = row0(resp, 0);
	if (!json_is_object(row)) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': no row", conn);
		goto out;
	}
	replicas = json_object_get(row, "replicas");
	if (json_is_true(json_object_get(row, "in_recovery"))) {
		r = json_pack("{s:b, s:s, s:O, s:O, s:O, s:o, s:O, s:O, s:O, s:O}", "in_recovery",
			      1, "role", "replica", "receive_lsn",
			      json_object_get(row, "receive_lsn"), "replay_lsn",
			      json_object_get(row, "replay_lsn"), "lag_bytes",
			      json_object_get(row, "lag_bytes"), "replay_lag_s", standby_lag(row),
			      "last_replay_at", json_object_get(row, "last_replay_at"),
			      "replay_paused", json_object_get(row, "replay_paused"),
			      "receiver_status", json_object_get(row, "receiver_status"),
			      "replicas", replicas ? replicas : json_null());
	} else {
		r = json_pack("{s:b, s:s, s:n, s:n, s:O}", "in_recovery", 0, "role", "primary",
			      "receive_lsn", "replay_lsn", "replicas",
			      json_is_array(replicas) ? replicas : json_null());
		if (r && json_is_array(replicas)) {
			/* the response is the log's: edit a copy */
			json_t *copy = json_deep_copy(replicas);

			if (!copy || json_object_set_new(r, "replicas", copy) ||
			    primary_lag(r, copy)) {
				json_decref(r);
				r = NULL;
			}
		}
	}
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': incomplete answer", conn);
		goto out;
	}
	*result = r;
out:
	json_decref(resp);
	return rc;
}

/* ---- pg.promote ---- */

static const char *const promote_positional[] = {"connection", "wait", NULL};

static int promote_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL;
	const json_t *w = json_object_get(args, "wait");
	double secs = DEFAULT_PROMOTE_WAIT_S;
	int wait = 1, rc, isecs;
	json_t *params = NULL, *resp = NULL, *r = NULL, *before, *promoted, *after;
	drb_pgi_stmt st[3];

	*result = NULL;
	rc = drb_args_check(act_promote.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0 && ctx->read_only)
		rc = drb_err_set(err, DRB_EDENIED,
				 "pg.promote changes the database: refused in preflight and plan");
	if (rc == 0)
		rc = drb_arg_duration_opt(args, "timeout", &secs, err);
	/* wait: true/false, or how long to wait (a duration) */
	if (rc == 0 &&
	    (json_is_boolean(w) || (json_is_string(w) && (!strcmp(json_string_value(w), "true") ||
							  !strcmp(json_string_value(w), "false")))))
		rc = drb_arg_bool_opt(args, "wait", &wait, err);
	else if (rc == 0 && w && !json_is_null(w))
		rc = drb_arg_duration_opt(args, "wait", &secs, err);
	if (rc)
		goto out;
	if (!(secs > 0)) {
		rc = drb_err_set(err, DRB_EINVAL, "the promotion wait must be greater than 0");
		goto out;
	}
	if (ctx->deadline > 0 && secs > ctx->deadline - drb_mono_now())
		secs = ctx->deadline - drb_mono_now();
	isecs = secs < 1 ? 1 : secs > 86400 ? 86400 : (int)ceil(secs);
	params = json_pack("[b, i]", wait, isecs);
	if (!params) {
		rc = nomem(err);
		goto out;
	}
	st[0] = (drb_pgi_stmt){"SELECT pg_is_in_recovery() AS in_recovery", NULL, 0};
	st[1] = (drb_pgi_stmt){"SELECT pg_promote($1::boolean, $2::integer) AS promoted", params,
			       DRB_PGI_IF_TRUE};
	st[2] = (drb_pgi_stmt){"SELECT pg_is_in_recovery() AS in_recovery", NULL, 0};
	/* pg_promote waits inside the statement: statement_timeout must outlast the wait */
	rc = run(ctx, "pg.promote", conn, st, 3, isecs + 5, 0, &resp, err);
	if (rc == 0)
		rc = drb_pgi_response_error(resp, conn, err);
	if (rc)
		goto out;
	before = json_object_get(row0(resp, 0), "in_recovery");
	promoted = json_object_get(row0(resp, 1), "promoted");
	after = json_object_get(row0(resp, 2), "in_recovery");
	if (!json_is_boolean(before) || !json_is_boolean(after)) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': incomplete answer", conn);
		goto out;
	}
	if (json_is_false(before)) {
		/* Already a primary: not an error, so that a retried or resumed promote step does
		 * not fail a failover that took effect; runbooks that must be the ones to promote
		 * assert result.promoted. */
		r = json_pack("{s:b, s:b, s:b, s:i}", "promoted", 0, "already_primary", 1,
			      "in_recovery", 0, "took_ms", 0);
	} else if (wait && (!json_is_true(promoted) || json_is_true(after))) {
		rc = drb_err_set(err, DRB_ETIMEOUT,
				 "connection '%s': promotion requested but the server was still in "
				 "recovery after %d s",
				 conn, isecs);
		goto out;
	} else {
		r = json_pack("{s:b, s:b, s:b, s:b, s:O}", "promoted", json_is_false(after),
			      "already_primary", 0, "in_recovery", json_is_true(after), "waited",
			      wait, "took_ms", json_object_get(results_at(resp, 1), "took_ms"));
	}
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': incomplete answer", conn);
		goto out;
	}
	*result = r;
out:
	json_decref(params);
	json_decref(resp);
	return rc;
}

/* ---- pg.fence and pg.unfence ---- */

/* The roles to fence, as one JSON array text (the statements read it with
 * json_array_elements_text, so no role name is ever spliced into SQL as text), plus one
 * ALTER ROLE statement per role, its name quoted as an identifier. */
typedef struct fence_plan {
	const char *method;
	char *roles_json;
	char **alter; /* n_roles statements */
	size_t n_roles;
} fence_plan;

static void fence_plan_free(fence_plan *f)
{
	for (size_t i = 0; i < f->n_roles; i++)
		free(f->alter[i]);
	free(f->alter);
	free(f->roles_json);
}

/* "ALTER ROLE "na""me" NOLOGIN": the identifier quoted as quote_ident does. NULL when out
 * of memory (never a cut statement). */
static char *alter_role(const char *role, const char *what)
{
	drb_buf b;
	int rc;

	drb_buf_init(&b, 4096);
	rc = drb_buf_puts(&b, "ALTER ROLE \"");
	for (const char *p = role; rc == 0 && *p; p++)
		rc = *p == '"' ? drb_buf_puts(&b, "\"\"") : drb_buf_append(&b, p, 1);
	if (rc == 0)
		rc = drb_buf_printf(&b, "\" %s", what);
	if (rc) {
		drb_buf_free(&b);
		return NULL;
	}
	return drb_buf_steal(&b);
}

static int fence_plan_make(const json_t *args, const char *action, int undo, fence_plan *f,
			   drb_err *err)
{
	const json_t *roles = json_object_get(args, "roles");
	size_t i;
	json_t *v;
	int rc;

	memset(f, 0, sizeof(*f));
	f->method = "settings";
	if ((rc = drb_arg_string_opt(args, "method", &f->method, err)))
		return rc;
	if (!f->method)
		f->method = "settings";
	if (strcmp(f->method, "roles")) {
		if (roles && !json_is_null(roles))
			return drb_err_set(err, DRB_EINVAL,
					   "%s: roles is for method roles (method is %s)", action,
					   f->method);
		return 0;
	}
	if (!json_is_array(roles) || !json_array_size(roles))
		return drb_err_set(
		    err, DRB_EINVAL,
		    "%s: method roles needs roles, a list of the application's roles", action);
	f->alter = calloc(json_array_size(roles), sizeof(*f->alter));
	if (!f->alter)
		return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
	json_array_foreach(roles, i, v)
	{
		const char *name = json_string_value(v);

		if (!name || !*name || strlen(name) > 63)
			return drb_err_set(err, DRB_EINVAL,
					   "%s: roles[%zu] must be a role name (1 to 63 bytes)",
					   action, i);
		f->alter[i] = alter_role(name, undo ? "LOGIN" : "NOLOGIN");
		if (!f->alter[i])
			return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
		f->n_roles++;
	}
	f->roles_json = json_dumps(roles, JSON_COMPACT);
	if (!f->roles_json)
		return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
	return 0;
}

/* Ends client sessions (the aggregate's filter only sees rows that passed WHERE: never our
 * own backend, never a WAL sender); with roles, only theirs. */
#define TERMINATE_SQL                                                                              \
	"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated"              \
	" FROM pg_stat_activity"                                                                   \
	" WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
#define TERMINATE_ROLES_SQL                                                                        \
	TERMINATE_SQL " AND usename IN (SELECT json_array_elements_text($1::json))"

static int fence_common(drb_action_ctx *ctx, const drb_action *act, int undo, const json_t *args,
			json_t **result, drb_err *err)
{
	const char *conn = NULL;
	json_t *resp = NULL, *r = NULL, *params = NULL;
	drb_pgi_stmt *st = NULL;
	fence_plan f;
	size_t n = 0, last;
	int rc;

	*result = NULL;
	memset(&f, 0, sizeof(f));
	rc = drb_args_check(act->schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = fence_plan_make(args, act->name, undo, &f, err);
	if (rc == 0 && ctx->read_only)
		rc = drb_err_set(err, DRB_EDENIED,
				 "%s changes the database: refused in preflight and plan",
				 act->name);
	if (rc)
		goto out;
	st = calloc(f.n_roles + 3, sizeof(*st));
	if (!st || (f.roles_json && !(params = json_pack("[s]", f.roles_json)))) {
		rc = drb_err_set(err, DRB_ENOMEM, "%s: out of memory", act->name);
		goto out;
	}
	if (f.n_roles) {
		for (size_t i = 0; i < f.n_roles; i++)
			st[n++] = (drb_pgi_stmt){f.alter[i], NULL, 0};
		if (!undo)
			st[n++] = (drb_pgi_stmt){TERMINATE_ROLES_SQL, params, 0};
	} else {
		st[n++] =
		    (drb_pgi_stmt){undo ? "ALTER SYSTEM RESET default_transaction_read_only"
					: "ALTER SYSTEM SET default_transaction_read_only = on",
				   NULL, 0};
		st[n++] = (drb_pgi_stmt){"SELECT pg_reload_conf()", NULL, 0};
		if (!undo)
			st[n++] = (drb_pgi_stmt){TERMINATE_SQL, NULL, 0};
	}
	last = n - 1;
	rc = run(ctx, act->name, conn, st, n, 0, !undo, &resp, err);
	if (rc)
		goto out;
	if (json_is_false(json_object_get(resp, "reachable"))) {
		/* the old primary being down is the usual case in a region outage: an answer */
		r = json_pack("{s:b, s:b, s:s, s:O}", "fenced", 0, "reachable", 0, "method",
			      f.method, "error",
			      json_object_get(json_object_get(resp, "error"), "message"));
	} else {
		rc = drb_pgi_response_error(resp, conn, err);
		if (rc)
			goto out;
		if (undo)
			r = json_pack("{s:b, s:s}", "unfenced", 1, "method", f.method);
		else
			r = json_pack("{s:b, s:b, s:s, s:O}", "fenced", 1, "reachable", 1, "method",
				      f.method, "terminated",
				      json_object_get(row0(resp, last), "terminated"));
	}
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': incomplete answer", conn);
		goto out;
	}
	*result = r;
out:
	free(st);
	fence_plan_free(&f);
	json_decref(params);
	json_decref(resp);
	return rc;
}

static int fence_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return fence_common(ctx, &act_fence, 0, args, result, err);
}

static int unfence_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return fence_common(ctx, &act_unfence, 1, args, result, err);
}

/* ---- pg.sentinel_write, pg.sentinel_check ---- */

static const char *const sw_positional[] = {"connection", "note", NULL};

static int sentinel_write_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL, *note = NULL;
	unsigned char raw[16];
	char id[33];
	json_t *params = NULL, *resp = NULL, *row, *r = NULL;
	drb_pgi_stmt st[4];
	int rc;

	*result = NULL;
	rc = drb_args_check(act_sentinel_write.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "note", &note, err);
	if (rc == 0 && ctx->read_only)
		rc = drb_err_set(err, DRB_EDENIED,
				 "pg.sentinel_write changes the database: refused "
				 "in preflight and plan");
	if (rc)
		goto out;
	/* the id is made here, not in perform, so that it is in the logged request */
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		rc = drb_err_set(err, DRB_ERR, "no random bytes for the sentinel id");
		goto out;
	}
	drb_hex(raw, sizeof(raw), id);
	params = json_pack("[s, s?]", id, note);
	if (!params) {
		rc = nomem(err);
		goto out;
	}
	st[0] = (drb_pgi_stmt){"CREATE SCHEMA IF NOT EXISTS drbook", NULL, 0};
	st[1] = (drb_pgi_stmt){"CREATE TABLE IF NOT EXISTS drbook.sentinel (id text PRIMARY KEY,"
			       " written_at timestamptz NOT NULL, note text)",
			       NULL, 0};
	st[2] = (drb_pgi_stmt){"INSERT INTO drbook.sentinel (id, written_at, note)"
			       " VALUES ($1, clock_timestamp(), $2) RETURNING id, written_at",
			       params, 0};
	/* after the commit: a standby whose replay_lsn reached this has the row */
	st[3] = (drb_pgi_stmt){"SELECT pg_current_wal_lsn()::text AS lsn", NULL, 0};
	rc = run(ctx, "pg.sentinel_write", conn, st, 4, 0, 0, &resp, err);
	if (rc == 0)
		rc = drb_pgi_response_error(resp, conn, err);
	if (rc)
		goto out;
	row = row0(resp, 2);
	r = json_pack("{s:O, s:O, s:O}", "id", json_object_get(row, "id"), "written_at",
		      json_object_get(row, "written_at"), "lsn",
		      json_object_get(row0(resp, 3), "lsn"));
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "connection '%s': incomplete answer", conn);
		goto out;
	}
	*result = r;
out:
	json_decref(params);
	json_decref(resp);
	return rc;
}

static const char *const sc_positional[] = {"connection", "id", NULL};

static int sentinel_check_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL, *id = NULL, *state;
	json_t *params = NULL, *resp = NULL, *row, *r = NULL;
	drb_pgi_stmt st;
	int rc;

	*result = NULL;
	rc = drb_args_check(act_sentinel_check.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &id, err);
	if (rc)
		goto out;
	params = json_pack("[s]", id);
	if (!params) {
		rc = nomem(err);
		goto out;
	}
	st = (drb_pgi_stmt){"SELECT id, written_at FROM drbook.sentinel WHERE id = $1", params,
			    DRB_PGI_READ_ONLY};
	rc = run(ctx, "pg.sentinel_check", conn, &st, 1, 0, 0, &resp, err);
	if (rc)
		goto out;
	state = json_string_value(json_object_get(json_object_get(resp, "error"), "sqlstate"));
	if (state && (!strcmp(state, "42P01") || !strcmp(state, "3F000"))) {
		/* no sentinel table (a restore from before the first write): not there */
		r = json_pack("{s:b, s:s}", "present", 0, "id", id);
	} else {
		rc = drb_pgi_response_error(resp, conn, err);
		if (rc)
			goto out;
		row = row0(resp, 0);
		r = row ? json_pack("{s:b, s:s, s:O}", "present", 1, "id", id, "written_at",
				    json_object_get(row, "written_at"))
			: json_pack("{s:b, s:s}", "present", 0, "id", id);
	}
	if (!r) {
		rc = nomem(err);
		goto out;
	}
	*result = r;
out:
	json_decref(params);
	json_decref(resp);
	return rc;
}

/* ---- pg.validate ---- */

static const char *const val_positional[] = {"connection", "checks", NULL};
static const char *const check_known[] = {"name", "sql", "expect", "args", NULL};

static int check_args(const json_t *checks, drb_err *err)
{
	const json_t *c;
	size_t i;
	drb_err e2 = {0};

	if (!json_is_array(checks) || json_array_size(checks) == 0)
		return drb_err_set(err, DRB_EINVAL, "argument 'checks' must be a non-empty list");
	if (json_array_size(checks) > MAX_CHECKS)
		return drb_err_set(err, DRB_ELIMIT, "more than %d checks", MAX_CHECKS);
	json_array_foreach(checks, i, c)
	{
		const char *name = NULL, *sql = NULL;
		const json_t *params = NULL, *expect = json_object_get(c, "expect");
		int rc;

		if (!json_is_object(c))
			return drb_err_set(err, DRB_EINVAL,
					   "check %zu must be a table {name, sql, "
					   "expect}",
					   i + 1);
		rc = drb_args_known(c, check_known, err);
		if (rc == 0)
			rc = drb_arg_string(c, "name", &name, err);
		if (rc == 0)
			rc = sql_args(c, &sql, &params, err);
		if (rc == 0 && !expect)
			rc = drb_err_set(err, DRB_EINVAL,
					 "'expect' is required (null expects NULL)");
		/* an invalid expectation is the runbook's bug: say so before running anything */
		if (rc == 0 && drb_pg_expect_match(expect, json_null(), &e2) < 0)
			rc = drb_err_set(err, DRB_EINVAL, "%s", e2.msg);
		if (rc)
			return drb_err_prefix(err, "check %zu%s%s%s: ", i + 1, name ? " '" : "",
					      name ? name : "", name ? "'" : "");
	}
	return 0;
}

static int validate_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *conn = NULL;
	const json_t *checks = json_object_get(args, "checks"), *c;
	drb_pgi_stmt *st = NULL;
	json_t *resp = NULL, *failures = NULL, *results = NULL, *r = NULL;
	size_t i, n = 0;
	int rc;

	*result = NULL;
	rc = drb_args_check(act_validate.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "connection", &conn, err);
	if (rc == 0)
		rc = check_args(checks, err);
	if (rc)
		goto out;
	n = json_array_size(checks);
	st = calloc(n, sizeof(*st));
	failures = json_array();
	results = json_array();
	if (!st || !failures || !results)
		goto oom;
	json_array_foreach(checks, i, c)
	{
		const json_t *p = json_object_get(c, "args");

		st[i] = (drb_pgi_stmt){json_string_value(json_object_get(c, "sql")),
				       json_is_array(p) ? p : NULL,
				       DRB_PGI_READ_ONLY | DRB_PGI_KEEP_GOING};
	}
	rc = run(ctx, "pg.validate", conn, st, n, 0, 0, &resp, err);
	if (rc)
		goto out;
	json_array_foreach(checks, i, c)
	{
		const json_t *one = results_at(resp, i), *e = json_object_get(one, "error");
		const json_t *expect = json_object_get(c, "expect");
		json_t *row = row0(resp, i), *got = NULL, *why = NULL;
		const char *k;
		json_t *v;
		int ok = 0;

		if (!one) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "connection '%s': no answer for check %zu", conn, i + 1);
			goto out;
		}
		json_object_foreach(row, k, v)
		{
			got = v; /* the first column */
			break;
		}
		if (e) {
			const char *state = json_string_value(json_object_get(e, "sqlstate"));
			char msg[1100];

			snprintf(msg, sizeof(msg), "%s%s%s%s",
				 json_string_value(json_object_get(e, "message")),
				 state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
			why = json_string(msg);
		} else if (!row) {
			why = json_string("the query returned no rows");
		} else if (!got) {
			why = json_string("the query returned no columns");
		} else {
			ok = drb_pg_expect_match(expect, got, err) == 1;
		}
		if (json_array_append_new(results, json_pack("{s:O, s:b, s:O?}", "name",
							     json_object_get(c, "name"), "ok", ok,
							     "got", got)))
			goto oom;
		if (!ok && json_array_append_new(
			       failures, json_pack("{s:O, s:O, s:O, s:o?}", "name",
						   json_object_get(c, "name"), "expected", expect,
						   "got", got ? got : json_null(), "error", why)))
			goto oom;
	}
	r = json_pack("{s:b, s:O, s:O}", "passed", json_array_size(failures) == 0, "failures",
		      failures, "results", results);
	if (!r)
		goto oom;
	*result = r;
	goto out;
oom:
	rc = nomem(err);
out:
	free(st);
	json_decref(failures);
	json_decref(results);
	json_decref(resp);
	return rc;
}

/* ---- the table ---- */

static const drb_action act_status = {.name = "pg.status",
				      .mode = DRB_ACT_RO,
				      .positional = conn_positional,
				      .fn = status_fn,
				      .schema = &status_schema};
static const drb_action act_lag = {.name = "pg.replication_lag",
				   .mode = DRB_ACT_RO,
				   .positional = conn_positional,
				   .fn = lag_fn,
				   .schema = &lag_schema};
static const drb_action act_promote = {.name = "pg.promote",
				       .mode = DRB_ACT_MUT,
				       .positional = promote_positional,
				       .fn = promote_fn,
				       .schema = &promote_schema};
static const drb_action act_fence = {.name = "pg.fence",
				     .mode = DRB_ACT_MUT,
				     .positional = conn_positional,
				     .fn = fence_fn,
				     .schema = &fence_schema};
static const drb_action act_unfence = {.name = "pg.unfence",
				       .mode = DRB_ACT_MUT,
				       .positional = conn_positional,
				       .fn = unfence_fn,
				       .schema = &unfence_schema};
static const drb_action act_sentinel_write = {.name = "pg.sentinel_write",
					      .mode = DRB_ACT_MUT,
					      .positional = sw_positional,
					      .fn = sentinel_write_fn,
					      .schema = &sentinel_write_schema};
static const drb_action act_sentinel_check = {.name = "pg.sentinel_check",
					      .mode = DRB_ACT_RO,
					      .positional = sc_positional,
					      .fn = sentinel_check_fn,
					      .schema = &sentinel_check_schema};
static const drb_action act_validate = {.name = "pg.validate",
					.mode = DRB_ACT_RO,
					.positional = val_positional,
					.fn = validate_fn,
					.schema = &validate_schema};

const drb_action *const drb_pg_actions[] = {
    &act_query,	  &act_exec,	       &act_status,	    &act_lag,	   &act_promote, &act_fence,
    &act_unfence, &act_sentinel_write, &act_sentinel_check, &act_validate, NULL,
};
