/* Tests of src/providers/aws/credsrc.c: the credential sources that fetch, each against a
 * local emulator of its protocol (tests/tools/aws_cred_server.py on a free loopback port,
 * stopped by the teardown): IMDSv2 and its v1 fallback, the container endpoint and its URL
 * rules, credential_process and botocore's way of splitting its command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <drbook/aws.h>
#include <drbook/http.h>

#include "providers/aws/creds_int.h"
#include "test_server.h"

static test_server g_srv;

/* Posts a control command to the emulator (outside the code under test's paths). */
static json_t *srv_call(const char *method, const char *path, const char *body)
{
	char url[128];
	drb_http_req rq;
	drb_http_resp r;
	drb_err e = {0};
	json_t *j;
	json_error_t je;

	snprintf(url, sizeof(url), "%s%s", g_srv.base, path);
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.url = url;
	rq.body = body;
	rq.body_len = body ? strlen(body) : 0;
	assert_int_equal(drb_http_perform(&rq, &r, &e), 0);
	assert_int_equal(r.status, 200);
	j = json_loadb(r.body, r.body_len, 0, &je);
	drb_http_resp_free(&r);
	assert_non_null(j);
	return j;
}

static void srv_ctl(const char *body)
{
	json_decref(srv_call("POST", "/_ctl", body));
}

static long srv_count(const char *kind)
{
	json_t *j = srv_call("GET", "/_count", NULL);
	long n = (long)json_integer_value(json_object_get(j, kind));

	json_decref(j);
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (test_server_start(&g_srv, "tests/tools/aws_cred_server.py") != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_server_stop(&g_srv);
	return 0;
}

/* The command line is split as Python's shlex.split (what botocore uses), never by a
 * shell; expected values are shlex's own answers. */
static void test_shell_split(void **state)
{
	static const struct {
		const char *in;
		const char *out[4];
	} ok[] = {
	    {"a b  c", {"a", "b", "c", NULL}},
	    {"\"/opt/my tool/bin\" --x 'y z'", {"/opt/my tool/bin", "--x", "y z", NULL}},
	    {"a\\ b", {"a b", NULL}},
	    {"\"a\\\"b\" \"c\\d\"", {"a\"b", "c\\d", NULL}},
	    {"'' x", {"", "x", NULL}},
	    {"x\"y\"z", {"xyz", NULL}},
	    {"'a\\b'", {"a\\b", NULL}},
	    {"tool --json={\"a\":1} $HOME;rm", {"tool", "--json={a:1}", "$HOME;rm", NULL}},
	};
	static const char *const bad[] = {"\"open", "x\\", "   ", "'half", NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char **argv = NULL;
		drb_err e = {0};
		size_t k = 0;

		assert_int_equal(drb_awsc_shell_split(ok[i].in, &argv, &e), 0);
		for (; ok[i].out[k]; k++)
			assert_string_equal(argv[k], ok[i].out[k]);
		assert_null(argv[k]);
		drb_awsc_argv_free(argv);
	}
	for (int i = 0; bad[i]; i++) {
		char **argv = NULL;
		drb_err e = {0};

		assert_int_equal(drb_awsc_shell_split(bad[i], &argv, &e), DRB_EINVAL);
		assert_null(argv);
	}
	drb_awsc_argv_free(NULL);
}

/* The relative URI always goes to 169.254.170.2 (botocore offers no override); a full URI
 * over plain http only to loopback or the container hosts botocore allows. */
static void test_container_url_rules(void **state)
{
	static const char *const allowed[] = {"https://creds.example.com/x",
					      "http://127.0.0.1:8080/creds",
					      "http://127.9.9.9/c",
					      "http://localhost:1/c",
					      "http://[::1]:9/c",
					      "http://169.254.170.2/v2",
					      "http://169.254.170.23/v1/creds",
					      "http://[fd00:ec2::23]/c",
					      NULL};
	static const char *const refused[] = {"http://10.0.0.1/c",	 "http://169.254.169.254/",
					      "http://example.com/c",	 "http://[::2]/c",
					      "http://user@127.0.0.1/c", "ftp://127.0.0.1/c",
					      "http://128.0.0.1/c",	 NULL};
	char url[256];
	drb_err e = {0};

	(void)state;
	assert_int_equal(drb_awsc_container_url("/v2/credentials/abc", "http://127.0.0.1/x", url,
						sizeof(url), &e),
			 0);
	assert_string_equal(url, "http://169.254.170.2/v2/credentials/abc");
	for (int i = 0; allowed[i]; i++) {
		assert_int_equal(drb_awsc_container_url(NULL, allowed[i], url, sizeof(url), &e), 0);
		assert_string_equal(url, allowed[i]);
	}
	for (int i = 0; refused[i]; i++)
		assert_int_equal(drb_awsc_container_url(NULL, refused[i], url, sizeof(url), &e),
				 DRB_EINVAL);
}

/* IMDSv2: a token is fetched (TTL header), then the role, then its credentials. */
static void test_imds_v2(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	long tokens = srv_count("token");
	json_t *last;

	(void)state;
	memset(&c, 0, sizeof(c));
	srv_ctl("{\"imds\": \"v2\", \"expires_in\": 21600}");
	assert_int_equal(drb_awsc_imds_fetch(g_srv.base, 2, 1, 0, &c, &e), 0);
	assert_string_equal(c.access_key, "ASIAIMDS000000000001");
	assert_string_equal(c.secret_key, "secret-imds-1");
	assert_string_equal(c.session_token, "token-imds-1");
	assert_true(c.expiration > (long long)time(NULL) + 5 * 3600);
	assert_non_null(strstr(c.source, "drbook-instance-role"));
	assert_int_equal(srv_count("token"), tokens + 1);
	last = srv_call("GET", "/_last", NULL);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(last, "token"), "ttl")), "21600");
	json_decref(last);
	drb_aws_creds_clear(&c);
}

/* Credentials close to their end are stretched (botocore's static stability) instead of
 * being refreshed on every call while the service is impaired. */
static void test_imds_static_stability(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	long long now = (long long)time(NULL);

	(void)state;
	memset(&c, 0, sizeof(c));
	srv_ctl("{\"imds\": \"v2\", \"expires_in\": 60}");
	assert_int_equal(drb_awsc_imds_fetch(g_srv.base, 2, 1, 0, &c, &e), 0);
	assert_true(c.expiration >= now + 15 * 60 + 120);
	assert_true(c.expiration <= now + 15 * 60 + 600 + 5);
	drb_aws_creds_clear(&c);
	srv_ctl("{\"expires_in\": 21600}");
}

/* No token offered (404): IMDSv1, unless v1 is disabled; a closed port is "no credentials",
 * so the chain can go on. */
static void test_imds_v1_and_absent(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	memset(&c, 0, sizeof(c));
	srv_ctl("{\"imds\": \"v1\"}");
	assert_int_equal(drb_awsc_imds_fetch(g_srv.base, 2, 1, 0, &c, &e), 0);
	assert_string_equal(c.access_key, "ASIAIMDS000000000001");
	drb_aws_creds_clear(&c);
	assert_int_equal(drb_awsc_imds_fetch(g_srv.base, 2, 1, 1, &c, &e), DRB_EDENIED);
	assert_non_null(strstr(e.msg, "IMDSv1"));
	srv_ctl("{\"imds\": \"v2\", \"fail\": true}");
	assert_int_equal(drb_awsc_imds_fetch(g_srv.base, 2, 2, 0, &c, &e), DRB_ENOTFOUND);
	srv_ctl("{\"fail\": false}");
	assert_int_equal(drb_awsc_imds_fetch("http://127.0.0.1:1/", 1, 1, 0, &c, &e),
			 DRB_ENOTFOUND);
	assert_null(c.access_key);
}

/* The container endpoint: the authorization token is sent as is; a wrong one, a line
 * break in it, or a failing endpoint is an error after botocore's 3 attempts. */
static void test_container(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	char url[128];

	(void)state;
	memset(&c, 0, sizeof(c));
	snprintf(url, sizeof(url), "%s/container/creds", g_srv.base);
	srv_ctl("{\"auth_token\": \"Bearer TOPSECRET\"}");
	assert_int_equal(drb_awsc_container_fetch(url, "Bearer TOPSECRET", &c, &e), 0);
	assert_string_equal(c.access_key, "ASIACONT000000000001");
	assert_string_equal(c.session_token, "token-container-1");
	assert_true(c.expiration > 0);
	drb_aws_creds_clear(&c);
	assert_int_equal(drb_awsc_container_fetch(url, "wrong", &c, &e), DRB_ETRANSIENT);
	assert_non_null(strstr(e.msg, "401"));
	assert_null(strstr(e.msg, "TOPSECRET"));
	assert_int_equal(drb_awsc_container_fetch(url, "a\r\nX-Evil: 1", &c, &e), DRB_EINVAL);
	srv_ctl("{\"auth_token\": null}");
}

/* credential_process: JSON Version 1 with or without Expiration; every failure says why
 * (the process's stderr included, as botocore does) and never prints its stdout. */
static void test_process(void **state)
{
	static const struct {
		const char *cmd;
		int rc;
		const char *msg;
	} bad[] = {
	    {"sh -c 'echo token expired, log in >&2; echo TOPSECRET; exit 2'", DRB_EDENIED,
	     "exited with 2: token expired, log in"},
	    {"sh -c 'echo {\\\"Version\\\": \\\"1\\\", \\\"AccessKeyId\\\": \\\"A\\\", "
	     "\\\"SecretAccessKey\\\": \\\"TOPSECRET\\\"}'",
	     DRB_EINVAL, "Version"},
	    {"sh -c 'echo {\\\"Version\\\": 1, \\\"SecretAccessKey\\\": \\\"TOPSECRET\\\"}'",
	     DRB_EINVAL, "AccessKeyId"},
	    {"sh -c 'echo TOPSECRET not json'", DRB_EINVAL, "not a JSON object"},
	    {"/nonexistent/drbook-helper", DRB_EIO, "cannot run"},
	    {"sh -c 'head -c 70000 /dev/zero | tr \"\\\\0\" x'", DRB_ELIMIT, "output over"},
	    {"\"unclosed", DRB_EINVAL, "closing quotation"},
	};
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(drb_awsc_process_fetch(
			     "sh -c 'printf \"%s\" \"{\\\"Version\\\": 1, "
			     "\\\"AccessKeyId\\\": \\\"AKPROC\\\", \\\"SecretAccessKey\\\": "
			     "\\\"S\\\", \\\"Expiration\\\": \\\"2099-01-01T00:00:00Z\\\"}\"'",
			     &c, &e),
			 0);
	assert_string_equal(c.access_key, "AKPROC");
	assert_null(c.session_token);
	assert_int_equal(c.expiration, 4070908800LL);
	drb_aws_creds_clear(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(drb_awsc_process_fetch(bad[i].cmd, &c, &e), bad[i].rc);
		assert_non_null(strstr(e.msg, bad[i].msg));
		assert_null(strstr(e.msg, "TOPSECRET"));
		assert_null(c.access_key);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shell_split),
	    cmocka_unit_test(test_container_url_rules),
	    cmocka_unit_test(test_imds_v2),
	    cmocka_unit_test(test_imds_static_stability),
	    cmocka_unit_test(test_imds_v1_and_absent),
	    cmocka_unit_test(test_container),
	    cmocka_unit_test(test_process),
	};
	int rc;

	drb_http_global_init();
	rc = cmocka_run_group_tests(tests, setup, teardown);
	drb_http_global_cleanup();
	return rc;
}
