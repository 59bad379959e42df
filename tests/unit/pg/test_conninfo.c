/* Tests for src/providers/pg/conninfo.c: how a connections: entry becomes libpq keyword
 * arrays (sources, overrides, timeouts, deadline caps, the endpoint resolver) and that the
 * secrets met on the way never reach a message. No server needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/pg.h>
#include <drbook/util.h>

typedef struct fixture {
	json_t *conns;
	drb_action_ctx ctx;
	char dir[64];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/drb-pgci-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->conns = json_object();
	f->ctx.connections = f->conns;
	setenv("DRBT_DSN", "host=db.example port=6543 dbname=app user=app_user", 1);
	setenv("DRBT_PW", "s3cr3t-Pa55", 1);
	unsetenv("DRBT_UNSET");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/dsn", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/pw", f->dir);
	unlink(path);
	rmdir(f->dir);
	json_decref(f->conns);
	drb_pg_set_endpoint_resolver(NULL, NULL);
	free(f);
	return 0;
}

static void add_conn(fixture *f, const char *name, const char *spec_json)
{
	json_error_t je;
	json_t *spec = json_loads(spec_json, 0, &je);

	assert_non_null(spec);
	json_object_set_new(f->conns, name, spec);
}

static void write_file(fixture *f, const char *leaf, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, leaf);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* The value of keyword in our own arrays (not the expanded DSN), last one wins. */
static const char *param(const drb_pg_conninfo *ci, const char *key)
{
	const char *const *keys, *const *vals;
	const char *v = NULL;
	int expand;

	drb_pg_conninfo_params(ci, &keys, &vals, &expand);
	for (size_t i = (size_t)expand; keys[i]; i++)
		if (!strcmp(keys[i], key))
			v = vals[i];
	return v;
}

/* A DSN from the environment goes first as an expanded dbname; the spec's keys come after
 * it (so they override it), and our timeouts and name are always there. */
static void test_dsn_env_defaults(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	const char *const *keys, *const *vals;
	drb_err err = {0};
	int expand;

	add_conn(f, "db", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\",\"user\":\"other\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	drb_pg_conninfo_params(ci, &keys, &vals, &expand);
	assert_int_equal(expand, 1);
	assert_string_equal(keys[0], "dbname");
	assert_string_equal(vals[0], "host=db.example port=6543 dbname=app user=app_user");
	assert_string_equal(drb_pg_conninfo_get(ci, "host"), "db.example");
	assert_string_equal(drb_pg_conninfo_get(ci, "port"), "6543");
	assert_string_equal(drb_pg_conninfo_get(ci, "user"), "other");
	assert_string_equal(drb_pg_conninfo_get(ci, "dbname"), "app");
	assert_string_equal(param(ci, "connect_timeout"), "5");
	assert_string_equal(param(ci, "application_name"), "drbook");
	assert_string_equal(param(ci, "options"),
			    "-c statement_timeout=30000 -c TimeZone=UTC -c DateStyle=ISO");
	assert_null(param(ci, "password"));
	assert_string_equal(drb_pg_conninfo_describe(ci),
			    "connection 'db' (host=db.example port=6543 dbname=app user=other)");
	drb_pg_conninfo_free(ci);
}

/* Options already in the DSN are kept; ours follow them and so win for the same setting. */
static void test_dsn_options_merged(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};

	setenv("DRBT_DSN2", "postgresql://u@h/d?options=-c%20search_path%3Dapp", 1);
	add_conn(f, "db", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN2\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	assert_string_equal(param(ci, "options"), "-c search_path=app -c statement_timeout=30000 "
						  "-c TimeZone=UTC -c DateStyle=ISO");
	drb_pg_conninfo_free(ci);
}

/* Timeouts from the spec (durations or numbers); libpq's whole seconds with a floor of 2;
 * pg.promote's wait raises statement_timeout. */
static void test_timeouts(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};

	add_conn(f, "a",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"connect_timeout\":\"10s\",\"statement_timeout\":2.5}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "a", 0, &err), 0);
	assert_string_equal(param(ci, "connect_timeout"), "10");
	assert_non_null(strstr(param(ci, "options"), "statement_timeout=2500 "));
	drb_pg_conninfo_free(ci);
	ci = NULL;
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "a", 65, &err), 0);
	assert_non_null(strstr(param(ci, "options"), "statement_timeout=65000 "));
	drb_pg_conninfo_free(ci);
	ci = NULL;
	add_conn(f, "b",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"connect_timeout\":\"500ms\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "b", 0, &err), 0);
	assert_string_equal(param(ci, "connect_timeout"), "2");
	drb_pg_conninfo_free(ci);
	ci = NULL;
	add_conn(f, "c",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"statement_timeout\":\"soon\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "c", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "connection 'c'"));
	assert_null(ci);
}

/* The step's deadline caps both timeouts; a passed deadline refuses to connect at all. */
static void test_deadline(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};
	const char *st;
	long ms;

	add_conn(f, "db", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\"}");
	f->ctx.deadline = drb_mono_now() + 3;
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 60, &err), 0);
	assert_string_equal(param(ci, "connect_timeout"), "3");
	st = strstr(param(ci, "options"), "statement_timeout=");
	assert_non_null(st);
	ms = strtol(st + strlen("statement_timeout="), NULL, 10);
	assert_true(ms > 2000 && ms <= 3000);
	drb_pg_conninfo_free(ci);
	ci = NULL;
	f->ctx.deadline = drb_mono_now() - 1;
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), DRB_ETIMEOUT);
	assert_null(ci);
	f->ctx.deadline = 0;
}

/* password_env is passed as its own keyword and scrubbed from any message; the description
 * never shows it. */
static void test_password_env_redacted(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};
	char msg[128];

	add_conn(f, "db",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"password_env\":\"DRBT_PW\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	assert_string_equal(param(ci, "password"), "s3cr3t-Pa55");
	assert_null(strstr(drb_pg_conninfo_describe(ci), "s3cr3t"));
	snprintf(msg, sizeof(msg), "s3cr3t-Pa55 was 's3cr3t-Pa55', twice");
	drb_pg_conninfo_redact(ci, msg, sizeof(msg));
	assert_string_equal(msg, "*** was '***', twice");
	drb_pg_conninfo_free(ci);
}

/* A password inside a URI is a secret in both its decoded and its written (percent-encoded)
 * forms, and the DSN is never part of the description. */
static void test_uri_password_redacted(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};
	char msg[256];

	setenv("DRBT_URI", "postgresql://admin:p%40ss%21word@10.0.0.5:5433/prod", 1);
	add_conn(f, "db", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_URI\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	assert_string_equal(drb_pg_conninfo_get(ci, "password"), "p@ss!word");
	assert_string_equal(drb_pg_conninfo_describe(ci),
			    "connection 'db' (host=10.0.0.5 port=5433 dbname=prod user=admin)");
	snprintf(msg, sizeof(msg), "bad URI postgresql://admin:p%%40ss%%21word@x; pw p@ss!word");
	drb_pg_conninfo_redact(ci, msg, sizeof(msg));
	assert_null(strstr(msg, "p%40ss"));
	assert_null(strstr(msg, "p@ss"));
	assert_string_equal(msg, "bad URI postgresql://admin:***@x; pw ***");
	drb_pg_conninfo_free(ci);
}

/* A DSN libpq cannot parse is refused without quoting it (libpq's own message would). */
static void test_bad_dsn_not_echoed(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};

	setenv("DRBT_BAD", "password=hunter2 host='unterminated", 1);
	add_conn(f, "db", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_BAD\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), DRB_EINVAL);
	assert_null(ci);
	assert_null(strstr(err.msg, "hunter2"));
	assert_non_null(strstr(err.msg, "not a valid libpq connection string"));
}

/* dsn_file and password_file: trimmed (an editor's newline is not part of the secret);
 * missing and empty files are clear errors naming the file, not its content. */
static void test_files(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};
	char spec[512];

	write_file(f, "dsn", "\n  postgresql://u@127.0.0.1:5999/x \n");
	write_file(f, "pw", "filepw\n");
	snprintf(spec, sizeof(spec),
		 "{\"kind\":\"postgres\",\"dsn_file\":\"%s/dsn\",\"password_file\":\"%s/pw\"}",
		 f->dir, f->dir);
	add_conn(f, "db", spec);
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	assert_string_equal(drb_pg_conninfo_get(ci, "port"), "5999");
	assert_string_equal(param(ci, "password"), "filepw");
	drb_pg_conninfo_free(ci);
	ci = NULL;

	snprintf(spec, sizeof(spec), "{\"kind\":\"postgres\",\"dsn_file\":\"%s/missing\"}", f->dir);
	add_conn(f, "missing", spec);
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "missing", 0, &err), DRB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "missing"));

	write_file(f, "pw", " \n");
	snprintf(spec, sizeof(spec),
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\",\"password_file\":\"%s/pw\"}",
		 f->dir);
	add_conn(f, "emptypw", spec);
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "emptypw", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "is empty"));
}

/* Configuration mistakes are refused with the connection and the variable named. */
static void test_spec_errors(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};

	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "nope", 0, &err), DRB_ENOTFOUND);
	add_conn(f, "aws", "{\"kind\":\"aws\",\"region\":\"eu-west-1\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "aws", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "not a postgres connection"));
	add_conn(f, "unset", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_UNSET\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "unset", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "DRBT_UNSET"));
	assert_non_null(strstr(err.msg, "connection 'unset'"));
	add_conn(f, "two", "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\",\"dsn_file\":\"/x\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "two", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "exactly one"));
	add_conn(f, "pw2",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"password_env\":\"DRBT_PW\",\"password_file\":\"/x\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "pw2", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "not both"));
	assert_null(ci);
}

static int fake_calls;

static int fake_resolver(void *ud, drb_action_ctx *ctx, const char *instance, const char *region,
			 char **host, int *port, drb_err *err)
{
	fake_calls++;
	assert_string_equal((const char *)ud, "ud");
	if (!strcmp(instance, "gone"))
		return drb_err_set(err, DRB_ENOTFOUND, "DBInstanceNotFound: %s", instance);
	if (!strcmp(instance, "creating")) {
		*host = NULL;
		*port = 0;
		return 0;
	}
	assert_string_equal(region, "eu-west-1");
	*host = strdup("prod-db-eu.abc.eu-west-1.rds.amazonaws.com");
	*port = 5432;
	return 0;
}

/* rds_instance: no resolver is a clear error; with one, host and port come from it, dbname
 * defaults to postgres, and its errors are passed on with the connection named. */
static void test_rds_instance(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};

	add_conn(f, "rds",
		 "{\"kind\":\"postgres\",\"rds_instance\":\"prod-db-eu\","
		 "\"region\":\"eu-west-1\",\"user\":\"admin\",\"sslmode\":\"verify-full\"}");
	add_conn(f, "gone", "{\"kind\":\"postgres\",\"rds_instance\":\"gone\"}");
	add_conn(f, "creating", "{\"kind\":\"postgres\",\"rds_instance\":\"creating\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "rds", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "rds_instance"));
	drb_pg_set_endpoint_resolver(fake_resolver, "ud");
	fake_calls = 0;
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "rds", 0, &err), 0);
	assert_int_equal(fake_calls, 1);
	assert_string_equal(param(ci, "host"), "prod-db-eu.abc.eu-west-1.rds.amazonaws.com");
	assert_string_equal(param(ci, "port"), "5432");
	assert_string_equal(param(ci, "dbname"), "postgres");
	assert_string_equal(param(ci, "user"), "admin");
	assert_string_equal(param(ci, "sslmode"), "verify-full");
	drb_pg_conninfo_free(ci);
	ci = NULL;
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "gone", 0, &err), DRB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "connection 'gone': DBInstanceNotFound"));
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "creating", 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "no endpoint"));
	assert_null(ci);
}

/* Redaction at the edges: a secret at the very start and end, back to back, a buffer that
 * fills up (cut, never leaking), and NULL conninfo as a no-op. */
static void test_redact_edges(void **state)
{
	fixture *f = *state;
	drb_pg_conninfo *ci = NULL;
	drb_err err = {0};
	char msg[64], tiny[8];

	setenv("DRBT_PW2", "ab", 1);
	add_conn(f, "db",
		 "{\"kind\":\"postgres\",\"dsn_env\":\"DRBT_DSN\","
		 "\"password_env\":\"DRBT_PW2\"}");
	assert_int_equal(drb_pg_conninfo_build(&ci, &f->ctx, "db", 0, &err), 0);
	snprintf(msg, sizeof(msg), "ababxab");
	drb_pg_conninfo_redact(ci, msg, sizeof(msg));
	assert_string_equal(msg, "******x***");
	snprintf(tiny, sizeof(tiny), "xababab");
	drb_pg_conninfo_redact(ci, tiny, sizeof(tiny));
	assert_null(strstr(tiny, "ab"));
	assert_int_equal(strlen(tiny), 7);
	drb_pg_conninfo_free(ci);
	snprintf(msg, sizeof(msg), "ab");
	drb_pg_conninfo_redact(NULL, msg, sizeof(msg));
	assert_string_equal(msg, "ab");
	drb_pg_conninfo_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dsn_env_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_options_merged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_password_env_redacted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_uri_password_redacted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_dsn_not_echoed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spec_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rds_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redact_edges, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
