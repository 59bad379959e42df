/* Tests for src/providers/pg/actions.c and run.c without a server: the action table, the
 * arguments each action accepts and refuses, what goes to the call log, and how results are
 * built from a response alone (a replaying seam answers without calling perform, as the
 * audit replay does). A live seam against a closed loopback port checks connection failures
 * through real libpq. The server-side behaviour is in tests/integration/test_pg_actions.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/pg.h>
#include <drbook/util.h>

typedef struct fixture {
	drb_seam seam;
	int calls;
	int live;	 /* call perform instead of answering */
	json_t *answer;	 /* the replayed response */
	json_t *request; /* the last call's request */
	char operation[64];
	json_t *conns;
	drb_action_ctx ctx;
} fixture;

static int seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		     json_t **response, drb_err *err)
{
	fixture *f = s->ud;

	f->calls++;
	assert_string_equal(c->service, "pg");
	snprintf(f->operation, sizeof(f->operation), "%s", c->operation);
	json_decref(f->request);
	f->request = json_deep_copy(c->request);
	if (f->live)
		return perform(arg, response, err);
	*response = json_deep_copy(f->answer);
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	json_error_t je;

	if (!f)
		return -1;
	f->seam.call = seam_call;
	f->seam.ud = f;
	/* DRBT_REPLAY_DSN is never set: a replay must not need the secret */
	f->conns = json_loads("{\"db\": {\"kind\": \"postgres\", \"dsn_env\": \"DRBT_REPLAY_DSN\"},"
			      " \"closed\": {\"kind\": \"postgres\", \"dsn_env\": \"DRBT_CLOSED\","
			      "  \"password_env\": \"DRBT_CLOSED_PW\"}}",
			      0, &je);
	if (!f->conns)
		return -1;
	unsetenv("DRBT_REPLAY_DSN");
	f->ctx.seam = &f->seam;
	f->ctx.connections = f->conns;
	f->ctx.step_id = "t";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	json_decref(f->answer);
	json_decref(f->request);
	json_decref(f->conns);
	free(f);
	return 0;
}

static const drb_action *action(const char *name)
{
	for (size_t i = 0; drb_pg_actions[i]; i++)
		if (!strcmp(drb_pg_actions[i]->name, name))
			return drb_pg_actions[i];
	fail_msg("no action %s", name);
	return NULL;
}

static void answer(fixture *f, const char *json)
{
	json_error_t je;

	json_decref(f->answer);
	f->answer = json_loads(json, 0, &je);
	if (!f->answer)
		fail_msg("bad test JSON at %d: %s", je.position, je.text);
}

/* Runs name with the JSON args; returns the code, *result the result or NULL. */
static int call(fixture *f, const char *name, const char *args_json, json_t **result, drb_err *err)
{
	json_error_t je;
	json_t *args = json_loads(args_json, 0, &je);
	int rc;

	assert_non_null(args);
	memset(err, 0, sizeof(*err));
	*result = NULL;
	rc = action(name)->fn(&f->ctx, args, result, err);
	json_decref(args);
	if (rc)
		assert_null(*result);
	return rc;
}

static void assert_json(const json_t *v, const char *want)
{
	json_error_t je;
	json_t *w = json_loads(want, JSON_DECODE_ANY, &je);

	assert_non_null(w);
	if (!json_equal(v, w)) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS);

		print_error("got  %s\nwant %s\n", s ? s : "NULL", want);
		free(s);
		fail();
	}
	json_decref(w);
}

/* The catalog's names, modes and Lua positional names: pg.query("db", sql, a, b) must map
 * to {connection, sql, args = {a, b}}. */
static void test_table(void **state)
{
	static const struct {
		const char *name;
		drb_action_mode mode;
		const char *pos;
	} want[] = {
	    {"pg.query", DRB_ACT_RO, "connection,sql,args..."},
	    {"pg.exec", DRB_ACT_MUT, "connection,sql,args..."},
	    {"pg.status", DRB_ACT_RO, "connection"},
	    {"pg.replication_lag", DRB_ACT_RO, "connection"},
	    {"pg.promote", DRB_ACT_MUT, "connection,wait"},
	    {"pg.fence", DRB_ACT_MUT, "connection"},
	    {"pg.unfence", DRB_ACT_MUT, "connection"},
	    {"pg.sentinel_write", DRB_ACT_MUT, "connection,note"},
	    {"pg.sentinel_check", DRB_ACT_RO, "connection,id"},
	    {"pg.validate", DRB_ACT_RO, "connection,checks"},
	};
	size_t n = 0;

	while (drb_pg_actions[n])
		n++;
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++) {
		const drb_action *a = action(want[i].name);
		char pos[128] = "";

		assert_int_equal(a->mode, want[i].mode);
		assert_non_null(a->fn);
		for (size_t k = 0; a->positional[k]; k++) {
			strncat(pos, k ? "," : "", sizeof(pos) - strlen(pos) - 1);
			strncat(pos, a->positional[k], sizeof(pos) - strlen(pos) - 1);
		}
		assert_string_equal(pos, want[i].pos);
	}
}

/* pg.query from a recorded response: rows as they were, and the request logs the SQL and
 * the number of arguments but not their values. No DSN is needed to replay. */
static void test_query_replayed(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"reachable\":true,\"results\":[{\"command_tag\":\"SELECT 2\","
		  "\"rows_affected\":2,\"rows\":[{\"x\":5},{\"x\":null}],\"took_ms\":1}]}");
	assert_int_equal(call(f, "pg.query",
			      "{\"connection\":\"db\",\"sql\":\"select $1::int as x\","
			      "\"args\":[\"private-value\"]}",
			      &r, &err),
			 0);
	assert_json(r, "{\"rows\":[{\"x\":5},{\"x\":null}],\"row_count\":2,"
		       "\"command_tag\":\"SELECT 2\"}");
	assert_json(f->request,
		    "{\"connection\":\"db\",\"sql\":\"select $1::int as x\",\"args\":1}");
	assert_string_equal(f->operation, "query");
	json_decref(r);
}

/* A recorded SQL error becomes the action's error, with the code from its SQLSTATE. */
static void test_sql_error_replayed(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f,
	       "{\"status\":1,\"reachable\":true,\"results\":[{\"error\":{\"sqlstate\":\"25006\","
	       "\"message\":\"cannot execute INSERT in a read-only transaction\"},\"took_ms\":0}],"
	       "\"error\":{\"sqlstate\":\"25006\",\"message\":\"cannot execute INSERT in a "
	       "read-only transaction\",\"statement\":0}}");
	assert_int_equal(call(f, "pg.query",
			      "{\"connection\":\"db\",\"sql\":\"insert into t values (1)\"}", &r,
			      &err),
			 DRB_EDENIED);
	assert_string_equal(err.msg, "connection 'db': cannot execute INSERT in a read-only "
				     "transaction (SQLSTATE 25006)");
}

/* pg.exec returns rows_affected; mutating actions are refused in preflight and plan before
 * any call is made. */
static void test_exec_and_read_only(void **state)
{
	static const char *const mut[][2] = {
	    {"pg.exec", "{\"connection\":\"db\",\"sql\":\"delete from t\"}"},
	    {"pg.promote", "{\"connection\":\"db\"}"},
	    {"pg.fence", "{\"connection\":\"db\"}"},
	    {"pg.sentinel_write", "{\"connection\":\"db\"}"},
	};
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"reachable\":true,\"results\":[{\"command_tag\":\"DELETE 3\","
		  "\"rows_affected\":3,\"rows\":[],\"took_ms\":2}]}");
	assert_int_equal(call(f, "pg.exec", mut[0][1], &r, &err), 0);
	assert_json(r, "{\"rows_affected\":3,\"command_tag\":\"DELETE 3\",\"rows\":[]}");
	json_decref(r);
	f->ctx.read_only = 1;
	f->calls = 0;
	for (size_t i = 0; i < sizeof(mut) / sizeof(mut[0]); i++) {
		assert_int_equal(call(f, mut[i][0], mut[i][1], &r, &err), DRB_EDENIED);
		assert_non_null(strstr(err.msg, "preflight"));
	}
	assert_int_equal(f->calls, 0);
	f->ctx.read_only = 0;
}

/* Arguments: misspelt keys, missing ones and wrong types are refused before any call. */
static void test_bad_arguments(void **state)
{
	static const char *const bad[][3] = {
	    {"pg.query", "{\"connection\":\"db\",\"sql\":\"select 1\",\"arg\":[1]}", "unknown"},
	    {"pg.query", "{\"connection\":\"db\"}", "'sql'"},
	    {"pg.query", "{\"sql\":\"select 1\"}", "'connection'"},
	    {"pg.query", "{\"connection\":\"db\",\"sql\":\"select 1\",\"args\":5}", "list"},
	    {"pg.query", "{\"connection\":\"db\",\"sql\":\"\"}", "empty"},
	    {"pg.status", "{\"connection\":7}", "string"},
	    {"pg.promote", "{\"connection\":\"db\",\"wait\":\"soon\"}", "duration"},
	    {"pg.promote", "{\"connection\":\"db\",\"timeout\":0}", "greater than 0"},
	    {"pg.sentinel_check", "{\"connection\":\"db\"}", "'id'"},
	    {"pg.validate", "{\"connection\":\"db\",\"checks\":[]}", "non-empty"},
	    {"pg.validate",
	     "{\"connection\":\"db\",\"checks\":[{\"name\":\"a\",\"sql\":\"select 1\"}]}",
	     "'expect' is required"},
	    {"pg.validate",
	     "{\"connection\":\"db\",\"checks\":[{\"name\":\"a\",\"sql\":\"select 1\","
	     "\"expect\":{\"min\":3,\"max\":1}}]}",
	     "check 1 'a': expect: min is greater"},
	    {"pg.validate",
	     "{\"connection\":\"db\",\"checks\":[{\"sql\":\"select 1\",\"expect\":1}]}", "'name'"},
	    {"pg.validate",
	     "{\"connection\":\"db\",\"checks\":[{\"name\":\"a\",\"sql\":\"select 1\","
	     "\"expect\":1,\"expected\":2}]}",
	     "unknown argument 'expected'"},
	};
	fixture *f = *state;
	json_t *r;
	drb_err err;

	f->calls = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = call(f, bad[i][0], bad[i][1], &r, &err);

		if (rc != DRB_EINVAL || !strstr(err.msg, bad[i][2]))
			fail_msg("%s %s: rc %d, message '%s', wanted '%s'", bad[i][0], bad[i][1],
				 rc, err.msg, bad[i][2]);
	}
	assert_int_equal(f->calls, 0);
	assert_int_equal(call(f, "pg.status", "{\"connection\":\"other\"}", &r, &err),
			 DRB_ENOTFOUND);
}

/* replication_lag on a standby: 0 when all received WAL is replayed, the age of the last
 * replayed transaction while WAL is pending, null when nothing was replayed yet. */
static void test_lag_standby(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":true,\"receive_lsn\":"
		  "\"0/3000060\",\"replay_lsn\":\"0/3000060\",\"lag_bytes\":0,\"last_replay_at\":"
		  "\"2026-01-01T00:00:00.000Z\",\"since_replay_s\":3600.5,\"replay_paused\":false,"
		  "\"receiver_status\":\"streaming\",\"replicas\":[]}]}]}");
	assert_int_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(json_object_get(r, "replay_lag_s"), "0");
	assert_json(json_object_get(r, "role"), "\"replica\"");
	json_decref(r);

	answer(f, "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":true,\"receive_lsn\":"
		  "\"0/3000100\",\"replay_lsn\":\"0/3000060\",\"lag_bytes\":160,\"last_replay_at\":"
		  "\"2026-01-01T00:00:00.000Z\",\"since_replay_s\":12.25,\"replay_paused\":true,"
		  "\"receiver_status\":\"streaming\",\"replicas\":[]}]}]}");
	assert_int_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(json_object_get(r, "replay_lag_s"), "12.25");
	assert_json(json_object_get(r, "lag_bytes"), "160");
	assert_json(json_object_get(r, "replay_paused"), "true");
	json_decref(r);

	answer(f,
	       "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":true,\"receive_lsn\":null,"
	       "\"replay_lsn\":\"0/3000060\",\"lag_bytes\":null,\"last_replay_at\":null,"
	       "\"since_replay_s\":null,\"replay_paused\":false,\"receiver_status\":null,"
	       "\"replicas\":[]}]}]}");
	assert_int_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(json_object_get(r, "replay_lag_s"), "null");
	json_decref(r);
}

/* replication_lag on a primary: the replicas, and the worst of them at the top; an idle,
 * caught-up replica's null replay_lag counts as 0; no replicas -> null. */
static void test_lag_primary(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f,
	       "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":false,\"receive_lsn\":null,"
	       "\"replay_lsn\":null,\"lag_bytes\":null,\"last_replay_at\":null,\"since_replay_s\":"
	       "null,"
	       "\"replay_paused\":null,\"receiver_status\":null,\"replicas\":["
	       "{\"application_name\":\"a\",\"state\":\"streaming\",\"lag_bytes\":0,\"replay_lag_"
	       "s\":null},"
	       "{\"application_name\":\"b\",\"state\":\"streaming\",\"lag_bytes\":4096,\"replay_"
	       "lag_s\":2.5}"
	       "]}]}]}");
	assert_int_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(json_object_get(r, "role"), "\"primary\"");
	assert_json(json_object_get(r, "lag_bytes"), "4096");
	assert_json(json_object_get(r, "replay_lag_s"), "2.5");
	assert_json(
	    json_object_get(json_array_get(json_object_get(r, "replicas"), 0), "replay_lag_s"),
	    "0");
	/* the recorded response itself was not edited */
	assert_json(
	    json_object_get(
		json_array_get(
		    json_object_get(
			json_array_get(
			    json_object_get(
				json_array_get(json_object_get(f->answer, "results"), 0), "rows"),
			    0),
			"replicas"),
		    0),
		"replay_lag_s"),
	    "null");
	json_decref(r);

	answer(f,
	       "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":false,\"replicas\":[]}]}]}");
	assert_int_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(json_object_get(r, "lag_bytes"), "null");
	assert_json(json_object_get(r, "replay_lag_s"), "null");
	json_decref(r);
}

/* promote: promoted with took_ms of the pg_promote statement; already a primary is an
 * answer (promoted=false), not an error; a wait that ran out is a timeout. */
static void test_promote(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":true}]},"
		  "{\"rows\":[{\"promoted\":true}],\"took_ms\":812},{\"rows\":[{\"in_recovery\":"
		  "false}]}]}");
	assert_int_equal(
	    call(f, "pg.promote", "{\"connection\":\"db\",\"wait\":\"30s\"}", &r, &err), 0);
	assert_json(r, "{\"promoted\":true,\"already_primary\":false,\"in_recovery\":false,"
		       "\"waited\":true,\"took_ms\":812}");
	assert_json(f->request,
		    "{\"connection\":\"db\",\"sql\":[\"SELECT pg_is_in_recovery() AS "
		    "in_recovery\",\"SELECT pg_promote($1::boolean, $2::integer) AS promoted\","
		    "\"SELECT pg_is_in_recovery() AS in_recovery\"],\"args\":2}");
	json_decref(r);

	answer(f,
	       "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":false}]},{\"skipped\":true},"
	       "{\"rows\":[{\"in_recovery\":false}]}]}");
	assert_int_equal(call(f, "pg.promote", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(r, "{\"promoted\":false,\"already_primary\":true,\"in_recovery\":false,"
		       "\"took_ms\":0}");
	json_decref(r);

	answer(f, "{\"status\":0,\"results\":[{\"rows\":[{\"in_recovery\":true}]},"
		  "{\"rows\":[{\"promoted\":false}],\"took_ms\":5000},{\"rows\":[{\"in_recovery\":"
		  "true}]}]}");
	assert_int_equal(call(f, "pg.promote", "{\"connection\":\"db\",\"wait\":5}", &r, &err),
			 DRB_ETIMEOUT);
	assert_non_null(strstr(err.msg, "still in recovery after 5 s"));
}

/* fence: an unreachable server is fenced=false, reachable=false and no error; a server that
 * refuses ALTER SYSTEM (not a superuser) is an error. */
static void test_fence(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f,
	       "{\"status\":0,\"reachable\":false,\"error\":{\"message\":\"connection refused\"}}");
	assert_int_equal(call(f, "pg.fence", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(r, "{\"fenced\":false,\"reachable\":false,\"method\":\"settings\",\"error\":"
		       "\"connection refused\"}");
	json_decref(r);

	answer(f, "{\"status\":0,\"reachable\":true,\"results\":[{\"command_tag\":\"ALTER SYSTEM\","
		  "\"rows\":[]},{\"rows\":[{\"pg_reload_conf\":true}]},{\"rows\":[{\"terminated\":"
		  "3}]}]}");
	assert_int_equal(call(f, "pg.fence", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_json(
	    r, "{\"fenced\":true,\"reachable\":true,\"method\":\"settings\",\"terminated\":3}");
	json_decref(r);

	answer(f,
	       "{\"status\":1,\"reachable\":true,\"results\":[{\"error\":{\"sqlstate\":\"42501\","
	       "\"message\":\"must be superuser to execute ALTER SYSTEM command\"}}],"
	       "\"error\":{\"sqlstate\":\"42501\",\"message\":\"must be superuser to execute "
	       "ALTER SYSTEM command\",\"statement\":0}}");
	assert_int_equal(call(f, "pg.fence", "{\"connection\":\"db\"}", &r, &err), DRB_EDENIED);
	assert_non_null(strstr(err.msg, "superuser"));
}

/* sentinel_write: a fresh 32-hex id per call, in the request as a count (it is the first
 * parameter), and the row as recorded; sentinel_check: no table means not present. */
static void test_sentinel(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f,
	       "{\"status\":0,\"results\":[{\"rows\":[]},{\"rows\":[]},{\"rows\":[{\"id\":\"abc\","
	       "\"written_at\":\"2026-01-01T00:00:00.000Z\"}]},{\"rows\":[{\"lsn\":\"0/"
	       "30001A0\"}]}]}");
	assert_int_equal(
	    call(f, "pg.sentinel_write", "{\"connection\":\"db\",\"note\":\"drill\"}", &r, &err),
	    0);
	assert_json(r, "{\"id\":\"abc\",\"written_at\":\"2026-01-01T00:00:00.000Z\","
		       "\"lsn\":\"0/30001A0\"}");
	assert_json(json_object_get(f->request, "args"), "2");
	json_decref(r);

	answer(f, "{\"status\":1,\"results\":[{\"error\":{\"sqlstate\":\"42P01\",\"message\":"
		  "\"relation \\\"drbook.sentinel\\\" does not exist\"}}],\"error\":{\"sqlstate\":"
		  "\"42P01\",\"message\":\"relation does not exist\",\"statement\":0}}");
	assert_int_equal(
	    call(f, "pg.sentinel_check", "{\"connection\":\"db\",\"id\":\"abc\"}", &r, &err), 0);
	assert_json(r, "{\"present\":false,\"id\":\"abc\"}");
	json_decref(r);

	answer(f, "{\"status\":0,\"results\":[{\"rows\":[{\"id\":\"abc\",\"written_at\":"
		  "\"2026-01-01T00:00:00.000Z\"}]}]}");
	assert_int_equal(
	    call(f, "pg.sentinel_check", "{\"connection\":\"db\",\"id\":\"abc\"}", &r, &err), 0);
	assert_json(
	    r, "{\"present\":true,\"id\":\"abc\",\"written_at\":\"2026-01-01T00:00:00.000Z\"}");
	json_decref(r);
}

/* validate reports every failing check, each with expected, got and error (null for a plain
 * mismatch), and passes the ones that match. */
static void test_validate_all_failures(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"results\":["
		  "{\"rows\":[{\"n\":5}]},"
		  "{\"rows\":[{\"n\":2}]},"
		  "{\"error\":{\"sqlstate\":\"42601\",\"message\":\"syntax error\"}},"
		  "{\"rows\":[]},"
		  "{\"rows\":[{\"ok\":\"t\",\"other\":1}]}]}");
	assert_int_equal(call(f, "pg.validate",
			      "{\"connection\":\"db\",\"checks\":["
			      "{\"name\":\"count\",\"sql\":\"select 5\",\"expect\":{\"min\":1}},"
			      "{\"name\":\"two\",\"sql\":\"select 2\",\"expect\":3},"
			      "{\"name\":\"broken\",\"sql\":\"selec\",\"expect\":1},"
			      "{\"name\":\"empty\",\"sql\":\"select 1 where false\",\"expect\":1},"
			      "{\"name\":\"flag\",\"sql\":\"select 't'\",\"expect\":true}]}",
			      &r, &err),
			 0);
	assert_json(json_object_get(r, "passed"), "false");
	assert_json(json_object_get(r, "failures"),
		    "[{\"name\":\"two\",\"expected\":3,\"got\":2,\"error\":null},"
		    "{\"name\":\"broken\",\"expected\":1,\"got\":null,"
		    "\"error\":\"syntax error (SQLSTATE 42601)\"},"
		    "{\"name\":\"empty\",\"expected\":1,\"got\":null,"
		    "\"error\":\"the query returned no rows\"}]");
	assert_json(json_object_get(r, "results"),
		    "[{\"name\":\"count\",\"ok\":true,\"got\":5},{\"name\":\"two\",\"ok\":false,"
		    "\"got\":2},{\"name\":\"broken\",\"ok\":false,\"got\":null},"
		    "{\"name\":\"empty\",\"ok\":false,\"got\":null},"
		    "{\"name\":\"flag\",\"ok\":true,\"got\":\"t\"}]");
	assert_int_equal(json_array_size(json_object_get(f->request, "sql")), 5);
	json_decref(r);
}

/* A response that is not what perform makes (a corrupt replay) is an error, not a crash. */
static void test_malformed_response(void **state)
{
	fixture *f = *state;
	json_t *r;
	drb_err err;

	answer(f, "{\"status\":0,\"results\":[]}");
	assert_int_not_equal(call(f, "pg.status", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_int_not_equal(call(f, "pg.promote", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_int_not_equal(call(f, "pg.replication_lag", "{\"connection\":\"db\"}", &r, &err), 0);
	assert_int_not_equal(call(f, "pg.validate",
				  "{\"connection\":\"db\",\"checks\":[{\"name\":"
				  "\"a\",\"sql\":\"select 1\",\"expect\":1}]}",
				  &r, &err),
			     0);
}

static int closed_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t n = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(s >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(s); /* bound, never listened: connecting is refused */
	return port;
}

/* Through real libpq: a refused connection is transient (worth a retry) and names the
 * connection without its password; pg.fence turns it into reachable=false. */
static void test_live_unreachable(void **state)
{
	fixture *f = *state;
	char dsn[128];
	json_t *r;
	drb_err err;

	snprintf(dsn, sizeof(dsn), "postgresql://u:pw-in-uri@127.0.0.1:%d/db", closed_port());
	setenv("DRBT_CLOSED", dsn, 1);
	setenv("DRBT_CLOSED_PW", "pw-in-env", 1);
	f->live = 1;
	assert_int_equal(call(f, "pg.status", "{\"connection\":\"closed\"}", &r, &err),
			 DRB_ETRANSIENT);
	assert_non_null(strstr(err.msg, "connection 'closed' (host=127.0.0.1"));
	assert_non_null(strstr(err.msg, "cannot connect"));
	assert_null(strstr(err.msg, "pw-in"));
	assert_int_equal(call(f, "pg.fence", "{\"connection\":\"closed\"}", &r, &err), 0);
	assert_json(json_object_get(r, "reachable"), "false");
	assert_json(json_object_get(r, "fenced"), "false");
	assert_null(strstr(json_string_value(json_object_get(r, "error")), "pw-in"));
	json_decref(r);
	f->ctx.cancel = &(volatile int){1};
	assert_int_equal(call(f, "pg.status", "{\"connection\":\"closed\"}", &r, &err),
			 DRB_EINTERRUPTED);
	f->ctx.cancel = NULL;
	f->live = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_query_replayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sql_error_replayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exec_and_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lag_standby, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lag_primary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_promote, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sentinel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_validate_all_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_response, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_unreachable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
