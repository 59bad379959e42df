/* The one place the PostgreSQL provider talks to a server: connect with libpq (parameters
 * from conninfo.c), run an action's statements with PQexecParams, and turn what came back
 * into the JSON response the seam logs and a replay answers from. Messages from libpq and
 * the server are scrubbed of the connection's secrets before they go anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "pg_int.h"

#define MAX_ROWS 10000		     /* a result bigger than this is a runbook bug */
#define MAX_RESULT_BYTES (16u << 20) /* total text of the values of one result */
#define MAX_PARAMS 100

void drb_pgi_clean_message(const drb_pg_conninfo *ci, const char *in, char *out, size_t n)
{
	size_t len;

	snprintf(out, n, "%s", in ? in : "");
	/* libpq ends messages with a newline and indents continuation lines */
	len = strlen(out);
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = 0;
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	drb_pg_conninfo_redact(ci, out, n);
}

static void no_notices(void *arg, const char *message)
{
	/* libpq prints notices on stderr by default ("schema already exists, skipping") */
	(void)arg;
	(void)message;
}

static long long took_ms(double t0)
{
	return (long long)((drb_mono_now() - t0) * 1000 + 0.5);
}

static json_t *rows_of(const drb_pq_api *pq, const PGresult *res, int *too_big)
{
	int nr = pq->PQntuples(res), nf = pq->PQnfields(res);
	size_t bytes = 0;
	json_t *rows = json_array();

	*too_big = 0;
	if (!rows)
		return NULL;
	if (nr > MAX_ROWS) {
		*too_big = 1;
		return rows;
	}
	for (int r = 0; r < nr; r++) {
		json_t *row = json_object();

		if (!row || json_array_append_new(rows, row))
			goto nomem;
		for (int f = 0; f < nf; f++) {
			const char *text =
			    pq->PQgetisnull(res, r, f) ? NULL : pq->PQgetvalue(res, r, f);
			size_t len = text ? (size_t)pq->PQgetlength(res, r, f) : 0;
			json_t *v;

			bytes += len;
			if (bytes > MAX_RESULT_BYTES) {
				*too_big = 1;
				return rows;
			}
			v = drb_pg_value((unsigned)pq->PQftype(res, f), text, len);
			/* a repeated column name: the last one wins, as in a Lua table */
			if (!v || json_object_set_new(row, pq->PQfname(res, f), v))
				goto nomem;
		}
	}
	return rows;
nomem:
	json_decref(rows);
	return NULL;
}

static json_t *sql_error(const drb_pq_api *pq, const drb_pg_conninfo *ci, const PGresult *res,
			 const char *fallback)
{
	char msg[900], full[1024];
	const char *state = res ? pq->PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *prim = res ? pq->PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *hint = res ? pq->PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	if (prim && hint)
		snprintf(full, sizeof(full), "%s (hint: %s)", prim, hint);
	else
		snprintf(full, sizeof(full), "%s", prim ? prim : fallback);
	drb_pgi_clean_message(ci, full, msg, sizeof(msg));
	return json_pack("{s:s?, s:s}", "sqlstate", state, "message", msg);
}

/* One statement (wrapped in a READ ONLY transaction when asked). Returns 0 with *one set to
 * the statement's result object (which may hold an "error"), or a negative code when the
 * connection itself failed or a limit was hit. */
static int run_stmt(drb_pgi_job *j, PGconn *conn, const drb_pgi_stmt *st, json_t **one,
		    drb_err *err)
{
	const drb_pq_api *pq = j->pq;
	const char *vals[MAX_PARAMS] = {0};
	char *owned[MAX_PARAMS] = {0};
	size_t np = st->params ? json_array_size(st->params) : 0;
	PGresult *res = NULL;
	json_t *o = NULL, *rows = NULL;
	double t0 = drb_mono_now();
	char msg[900];
	int rc = 0, too_big = 0, in_tx = 0;

	*one = NULL;
	if (np > MAX_PARAMS) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: more than %d query arguments", j->action,
				 MAX_PARAMS);
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		int oom;

		owned[i] = drb_pgi_param_text(json_array_get(st->params, i), &oom);
		if (oom) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		vals[i] = owned[i];
	}
	if (st->flags & DRB_PGI_READ_ONLY) {
		res = pq->PQexec(conn, "BEGIN READ ONLY");
		if (pq->PQresultStatus(res) != PGRES_COMMAND_OK) {
			o = json_pack("{s:o}", "error",
				      sql_error(pq, j->ci, res, pq->PQerrorMessage(conn)));
			goto done;
		}
		in_tx = 1;
		pq->PQclear(res);
	}
	/* PQexecParams: values never enter the SQL text, and one statement only (a "; COMMIT;
	 * INSERT ..." cannot escape the READ ONLY transaction) */
	res = pq->PQexecParams(conn, st->sql, (int)np, NULL, vals, NULL, NULL, 0);
	switch (pq->PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		rows = rows_of(pq, res, &too_big);
		if (!rows)
			goto nomem;
		if (too_big) {
			rc = drb_err_set(err, DRB_ELIMIT,
					 "%s: the result is larger than %d rows or %u MiB: add a "
					 "LIMIT or select less",
					 j->action, MAX_ROWS, MAX_RESULT_BYTES >> 20);
			goto out;
		}
		/* fall through */
	case PGRES_COMMAND_OK: {
		const char *n = pq->PQcmdTuples(res);

		o = json_pack("{s:s, s:I, s:o}", "command_tag", pq->PQcmdStatus(res),
			      "rows_affected", (json_int_t)(n && *n ? strtoll(n, NULL, 10) : 0),
			      "rows", rows ? rows : json_array());
		rows = NULL;
		break;
	}
	case PGRES_EMPTY_QUERY:
		o = json_pack("{s:{s:s}}", "error", "message", "the SQL statement is empty");
		break;
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
		rc = drb_err_set(err, DRB_EINVAL, "%s: COPY is not supported", j->action);
		goto out;
	default:
		if (pq->PQstatus(conn) == CONNECTION_BAD) {
			drb_pgi_clean_message(j->ci, pq->PQerrorMessage(conn), msg, sizeof(msg));
			rc = drb_err_set(err, DRB_ETRANSIENT, "%s: lost the connection: %s",
					 drb_pg_conninfo_describe(j->ci), msg);
			goto out;
		}
		o = json_pack("{s:o}", "error",
			      sql_error(pq, j->ci, res, pq->PQerrorMessage(conn)));
		break;
	}
	if (o && in_tx && !json_object_get(o, "error") &&
	    pq->PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		/* a COMMIT or ROLLBACK as the statement: the read-only guarantee is gone */
		json_object_set_new(
		    o, "error",
		    json_pack("{s:s}", "message",
			      "the statement ended the READ ONLY transaction: "
			      "COMMIT, ROLLBACK and the like are not allowed here"));
	}
done:
	if (!o)
		goto nomem;
	json_object_set_new(o, "took_ms", json_integer(took_ms(t0)));
	*one = o;
	o = NULL;
	goto out;
nomem:
	rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	pq->PQclear(res);
	if (in_tx && pq->PQtransactionStatus(conn) != PQTRANS_IDLE) {
		/* ROLLBACK, not COMMIT: whatever slipped past READ ONLY is not kept */
		res = pq->PQexec(conn, "ROLLBACK");
		pq->PQclear(res);
	}
	for (size_t i = 0; i < np && i < MAX_PARAMS; i++)
		free(owned[i]);
	json_decref(rows);
	json_decref(o);
	return rc;
}

/* Why a connection failed, as a code: authentication is a refusal, a timeout a timeout, the
 * rest (refused, reset, starting up) worth retrying. */
static int connect_code(const drb_pq_api *pq, PGconn *conn, const char *msg)
{
	if (pq->PQconnectionNeedsPassword(conn) || strstr(msg, "authentication failed") ||
	    strstr(msg, "no pg_hba.conf entry") || strstr(msg, "does not exist"))
		return strstr(msg, "database") && strstr(msg, "does not exist") ? DRB_ENOTFOUND
										: DRB_EDENIED;
	if (strstr(msg, "timeout expired"))
		return DRB_ETIMEOUT;
	return DRB_ETRANSIENT;
}

static int first_true(const json_t *one)
{
	const json_t *row = json_array_get(json_object_get(one, "rows"), 0);
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)row, k, v) return json_is_true(v);
	return 0;
}

int drb_pgi_perform(void *arg, json_t **response, drb_err *err)
{
	drb_pgi_job *j = arg;
	const drb_pq_api *pq = NULL;
	const char *const *keys, *const *vals;
	PGconn *conn = NULL;
	json_t *resp = NULL, *results = NULL, *one = NULL, *stop = NULL;
	char msg[900];
	int rc = 0, expand;

	*response = NULL;
	if (j->cancel && *j->cancel) {
		rc = drb_err_set(err, DRB_EINTERRUPTED, "%s: the run is being stopped", j->action);
		goto out;
	}
	/* here, not in the action: a replay answers from the log and never needs libpq */
	rc = drb_pgi_libpq(&pq, j->action, err);
	if (rc)
		goto out;
	j->pq = pq;
	drb_pg_conninfo_free(j->ci);
	j->ci = NULL;
	rc = drb_pgi_build(&j->ci, j->conn_name, j->spec, &j->ep, j->deadline, j->min_statement_s,
			   err);
	if (rc)
		goto out;
	drb_pg_conninfo_params(j->ci, &keys, &vals, &expand);
	conn = pq->PQconnectdbParams(keys, vals, expand);
	if (!conn) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (pq->PQstatus(conn) != CONNECTION_OK) {
		drb_pgi_clean_message(j->ci, pq->PQerrorMessage(conn), msg, sizeof(msg));
		if (j->unreachable_ok) {
			resp = json_pack("{s:i, s:b, s:{s:s}}", "status", 0, "reachable", 0,
					 "error", "message", msg);
			if (!resp)
				goto nomem;
			goto done;
		}
		rc = drb_err_set(err, connect_code(pq, conn, msg), "%s: cannot connect: %s",
				 drb_pg_conninfo_describe(j->ci), msg);
		goto out;
	}
	pq->PQsetNoticeProcessor(conn, no_notices, NULL);
	results = json_array();
	if (!results)
		goto nomem;
	for (size_t i = 0; i < j->n_stmts; i++) {
		const drb_pgi_stmt *st = &j->stmts[i];

		if ((st->flags & DRB_PGI_IF_TRUE) &&
		    (i == 0 || !first_true(json_array_get(results, i - 1)))) {
			if (json_array_append_new(results, json_pack("{s:b}", "skipped", 1)))
				goto nomem;
			continue;
		}
		rc = run_stmt(j, conn, st, &one, err);
		if (rc)
			goto out;
		if (json_array_append(results, one))
			goto nomem;
		if (json_object_get(one, "error") && !(st->flags & DRB_PGI_KEEP_GOING)) {
			stop = json_deep_copy(json_object_get(one, "error"));
			if (!stop ||
			    json_object_set_new(stop, "statement", json_integer((json_int_t)i)))
				goto nomem;
			break;
		}
		json_decref(one);
		one = NULL;
	}
	resp = json_pack("{s:i, s:b, s:O}", "status", stop ? 1 : 0, "reachable", 1, "results",
			 results);
	if (!resp || (stop && json_object_set(resp, "error", stop)))
		goto nomem;
done:
	*response = resp;
	resp = NULL;
	goto out;
nomem:
	rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	if (conn)
		pq->PQfinish(conn);
	json_decref(one);
	json_decref(stop);
	json_decref(results);
	json_decref(resp);
	return rc;
}

int drb_pgi_response_error(const json_t *resp, const char *conn_name, drb_err *err)
{
	const json_t *e = json_object_get(resp, "error");
	const char *state, *msg;

	if (!e)
		return 0;
	state = json_string_value(json_object_get(e, "sqlstate"));
	msg = json_string_value(json_object_get(e, "message"));
	if (state)
		return drb_err_set(err, drb_pg_code_of_sqlstate(state),
				   "connection '%s': %s (SQLSTATE %s)", conn_name,
				   msg ? msg : "error", state);
	return drb_err_set(err, DRB_EINVAL, "connection '%s': %s", conn_name, msg ? msg : "error");
}
