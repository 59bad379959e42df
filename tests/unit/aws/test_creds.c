/* Tests of src/providers/aws/creds.c: the INI dialect of ~/.aws files, the credential chain
 * (order, refusals, the cache and its refresh windows, threads) and the resolution of region
 * and endpoint, each rule and each refusal. The environment is reset before every case so
 * the machine's own AWS settings cannot leak in. Temporary credentials come from
 * tests/tools/aws_cred_server.py (the container endpoint), started once on a free loopback
 * port and stopped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/aws.h>
#include <drbook/http.h>

#include "test_server.h"

static test_server g_srv;

static char g_dir[256];

static void write_file(const char *name, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", g_dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void clear_aws_env(void)
{
	static const char *const vars[] = {"AWS_ACCESS_KEY_ID",
					   "AWS_SECRET_ACCESS_KEY",
					   "AWS_SESSION_TOKEN",
					   "AWS_PROFILE",
					   "AWS_REGION",
					   "AWS_DEFAULT_REGION",
					   "AWS_ENDPOINT_URL",
					   "AWS_ENDPOINT_URL_RDS",
					   "AWS_ENDPOINT_URL_ROUTE_53",
					   "AWS_CONFIG_FILE",
					   "AWS_SHARED_CREDENTIALS_FILE",
					   "AWS_DEFAULT_PROFILE",
					   "AWS_SECURITY_TOKEN",
					   "AWS_ENDPOINT_URL_STS",
					   "AWS_ENDPOINT_URL_SSO",
					   "AWS_STS_REGIONAL_ENDPOINTS",
					   "AWS_WEB_IDENTITY_TOKEN_FILE",
					   "AWS_ROLE_ARN",
					   "AWS_ROLE_SESSION_NAME",
					   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
					   "AWS_CONTAINER_CREDENTIALS_FULL_URI",
					   "AWS_CONTAINER_AUTHORIZATION_TOKEN",
					   "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
					   "AWS_EC2_METADATA_SERVICE_ENDPOINT",
					   "AWS_EC2_METADATA_V1_DISABLED",
					   NULL};

	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	/* The chain ends at the EC2 instance metadata service, 169.254.169.254: off this
	 * machine. Cases that test it point AWS_EC2_METADATA_SERVICE_ENDPOINT at a local
	 * emulator and clear this. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	drb_aws_creds_reset();
}

static int setup(void **state)
{
	char p[512];

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/drb-creds-XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	clear_aws_env();
	/* HOME points at an empty folder: ~/.aws does not exist unless a case writes it. */
	setenv("HOME", g_dir, 1);
	snprintf(p, sizeof(p), "%s/credentials", g_dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/config", g_dir);
	setenv("AWS_CONFIG_FILE", p, 1);
	return 0;
}

static int teardown(void **state)
{
	char p[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/credentials", g_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/config", g_dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/token", g_dir);
	unlink(p);
	rmdir(g_dir);
	clear_aws_env();
	return 0;
}

/* Sections, both key=value spacings, comments, CRLF, case-insensitive keys, last wins. */
static void test_ini_basics(void **state)
{
	const char *t =
	    "# comment\n; another\n[default]\naws_access_key_id=AK1\r\n"
	    "  \nAWS_Secret_Access_Key = s e c r e t  \n[profile x]\nregion =eu-west-1\n"
	    "region = eu-west-2\nempty =\n";
	drb_aws_ini *ini = NULL;
	drb_err e = {0};

	(void)state;
	assert_int_equal(drb_aws_ini_parse(t, strlen(t), &ini, &e), 0);
	assert_string_equal(drb_aws_ini_get(ini, "default", "aws_access_key_id"), "AK1");
	assert_string_equal(drb_aws_ini_get(ini, "default", "aws_secret_access_key"),
			    "s e c r e t");
	assert_string_equal(drb_aws_ini_get(ini, "profile x", "region"), "eu-west-2");
	assert_string_equal(drb_aws_ini_get(ini, "profile x", "empty"), "");
	assert_null(drb_aws_ini_get(ini, "Profile x", "region")); /* sections keep case */
	assert_null(drb_aws_ini_get(ini, "default", "region"));
	drb_aws_ini_free(ini);
	drb_aws_ini_free(NULL);
}

/* Indented lines continue a nested block ("s3 =") and are not settings of their own. */
static void test_ini_nested_block(void **state)
{
	const char *t = "[profile p]\ns3 =\n  max_concurrent_requests = 20\n\tregion = bad\n"
			"region = good\n";
	drb_aws_ini *ini = NULL;
	drb_err e = {0};

	(void)state;
	assert_int_equal(drb_aws_ini_parse(t, strlen(t), &ini, &e), 0);
	assert_string_equal(drb_aws_ini_get(ini, "profile p", "region"), "good");
	assert_null(drb_aws_ini_get(ini, "profile p", "max_concurrent_requests"));
	drb_aws_ini_free(ini);
}

/* Malformed lines are refused with their number and never their content (a secret). */
static void test_ini_refusals(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"aws_secret_access_key = TOPSECRET\n", "line 1: setting before any [section]"},
	    {"[default\nx=1\n", "line 1: section without ']'"},
	    {"[default]\nTOPSECRET\n", "line 2: expected 'key = value'"},
	    {"[default]\n= TOPSECRET\n", "line 2: empty key"},
	    {"  indented = TOPSECRET\n", "line 1: indented line outside a setting"},
	    {"[a] TOPSECRET\n", "line 1: text after ']'"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		drb_aws_ini *ini = NULL;
		drb_err e = {0};

		assert_int_equal(drb_aws_ini_parse(bad[i].text, strlen(bad[i].text), &ini, &e),
				 DRB_EINVAL);
		assert_null(ini);
		assert_string_equal(e.msg, bad[i].msg);
		assert_null(strstr(e.msg, "TOPSECRET"));
	}
	{
		drb_aws_ini *ini = NULL;
		drb_err e = {0};

		assert_int_equal(drb_aws_ini_parse("[a]\nk=v\0x\n", 10, &ini, &e), DRB_EINVAL);
		assert_non_null(strstr(e.msg, "NUL"));
	}
}

/* A missing file is an empty configuration, not an error. */
static void test_ini_missing_file(void **state)
{
	drb_aws_ini *ini = NULL;
	drb_err e = {0};
	char p[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/does-not-exist", g_dir);
	assert_int_equal(drb_aws_ini_load(p, &ini, &e), 0);
	assert_non_null(ini);
	assert_null(drb_aws_ini_get(ini, "default", "region"));
	drb_aws_ini_free(ini);
}

/* A malformed file is reported with its path. */
static void test_ini_load_error_names_path(void **state)
{
	drb_aws_ini *ini = NULL;
	drb_err e = {0};
	char p[512];

	(void)state;
	write_file("config", "oops\n");
	snprintf(p, sizeof(p), "%s/config", g_dir);
	assert_int_equal(drb_aws_ini_load(p, &ini, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, p));
	assert_non_null(strstr(e.msg, "line 1"));
}

/* The environment keys come first, with the session token. */
static void test_creds_env(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	write_file("credentials", "[default]\naws_access_key_id=FILE\naws_secret_access_key=F\n");
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	setenv("AWS_SESSION_TOKEN", "TOKEN", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKENV");
	assert_string_equal(c.secret_key, "SKENV");
	assert_string_equal(c.session_token, "TOKEN");
	assert_string_equal(c.source, "environment");
	drb_aws_creds_clear(&c);
	assert_null(c.access_key);
	assert_null(c.secret_key);
	drb_aws_creds_clear(NULL);
}

/* Half a pair in the environment is a configuration error, not a silent fallback. */
static void test_creds_env_half(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "AWS_ACCESS_KEY_ID"));
	assert_null(strstr(e.msg, "SKENV"));
}

/* AWS_PROFILE picks a section of the credentials file; default otherwise. */
static void test_creds_profiles(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	write_file("credentials", "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = "
				  "SKDEF\n\n[drill]\naws_access_key_id = AKDRILL\n"
				  "aws_secret_access_key = SKDRILL\naws_session_token = TOK\n");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKDEF");
	assert_null(c.session_token);
	assert_non_null(strstr(c.source, "profile default"));
	drb_aws_creds_clear(&c);
	setenv("AWS_PROFILE", "drill", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKDRILL");
	assert_string_equal(c.session_token, "TOK");
	drb_aws_creds_clear(&c);
}

/* A named profile (a connection's) wins over the environment keys, as --profile does. */
static void test_creds_named_profile_skips_env(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	write_file("config",
		   "[profile ops]\naws_access_key_id=AKCFG\naws_secret_access_key=SKCFG\n");
	assert_int_equal(drb_aws_creds_load("ops", &c, &e), 0);
	assert_string_equal(c.access_key, "AKCFG");
	assert_non_null(strstr(c.source, "config"));
	drb_aws_creds_clear(&c);
}

/* Nothing anywhere: denied, naming where it looked. */
static void test_creds_none(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EDENIED);
	assert_non_null(strstr(e.msg, "none found"));
	assert_non_null(strstr(e.msg, "credentials"));
	assert_null(c.access_key);
}

/* A profile with only half its pair is refused without printing the half it has. */
static void test_creds_profile_half(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	write_file("credentials", "[default]\naws_secret_access_key = HALFSECRET\n");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EINVAL);
	assert_null(strstr(e.msg, "HALFSECRET"));
	assert_non_null(strstr(e.msg, "only one"));
}

/* Region order: argument, connection, AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1. */
static void test_resolve_region_order(void **state)
{
	drb_aws_endpoint ep;
	drb_err e = {0};
	json_t *conn = json_pack("{s:s, s:s}", "kind", "aws", "region", "eu-central-1");

	(void)state;
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "us-east-1");
	assert_string_equal(ep.url, "https://rds.us-east-1.amazonaws.com");
	assert_string_equal(ep.host, "rds.us-east-1.amazonaws.com");
	assert_int_equal(ep.custom, 0);
	write_file("config",
		   "[default]\nregion = ap-southeast-1\n[profile p]\nregion = sa-east-1\n");
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "ap-southeast-1");
	setenv("AWS_PROFILE", "p", 1);
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "sa-east-1");
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "us-west-1");
	setenv("AWS_REGION", "us-west-2", 1);
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "us-west-2");
	assert_int_equal(drb_aws_resolve(conn, NULL, "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "eu-central-1");
	assert_int_equal(drb_aws_resolve(conn, "eu-west-1", "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.region, "eu-west-1");
	assert_string_equal(ep.url, "https://rds.eu-west-1.amazonaws.com");
	json_decref(conn);
}

/* Endpoint order: connection, AWS_ENDPOINT_URL_<SVC>, AWS_ENDPOINT_URL, profile. */
static void test_resolve_endpoint_order(void **state)
{
	drb_aws_endpoint ep;
	drb_err e = {0};
	json_t *conn = json_pack("{s:s}", "endpoint_url", "http://127.0.0.1:4001/");

	(void)state;
	write_file("config", "[default]\nendpoint_url = http://127.0.0.1:4004\n");
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.url, "http://127.0.0.1:4004");
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4003", 1);
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.url, "http://127.0.0.1:4003");
	setenv("AWS_ENDPOINT_URL_RDS", "http://LOCALHOST:4002", 1);
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.url, "http://LOCALHOST:4002");
	assert_string_equal(ep.host, "localhost:4002");
	/* Another service is not affected by the RDS override. */
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "ecs", "ECS", 0, &ep, &e), 0);
	assert_string_equal(ep.url, "http://127.0.0.1:4003");
	assert_int_equal(drb_aws_resolve(conn, "eu-west-1", "rds", "RDS", 0, &ep, &e), 0);
	assert_string_equal(ep.url, "http://127.0.0.1:4001");
	assert_string_equal(ep.host, "127.0.0.1:4001");
	assert_int_equal(ep.custom, 1);
	json_decref(conn);
}

/* Route 53 is global: one host, and always us-east-1 whatever region is asked for. */
static void test_resolve_global(void **state)
{
	drb_aws_endpoint ep;
	drb_err e = {0};

	(void)state;
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "route53", "ROUTE_53", 1, &ep, &e), 0);
	assert_string_equal(ep.region, "us-east-1");
	assert_string_equal(ep.url, "https://route53.amazonaws.com");
}

/* Values that would change the host or what is signed are refused. */
static void test_resolve_refusals(void **state)
{
	static const char *const regions[] = {"eu-west-1.evil.com", "EU-WEST-1", "eu west", "-eu",
					      "eu-west-1/",	    NULL};
	static const char *const urls[] = {
	    "ftp://x", "http://h/path", "http://u:p@h", "http://h?x=1", "http://", "h:80", NULL};
	drb_aws_endpoint ep;
	drb_err e = {0};

	(void)state;
	for (int i = 0; regions[i]; i++)
		assert_int_equal(drb_aws_resolve(NULL, regions[i], "rds", "RDS", 0, &ep, &e),
				 DRB_EINVAL);
	for (int i = 0; urls[i]; i++) {
		json_t *c = json_pack("{s:s}", "endpoint_url", urls[i]);

		assert_int_equal(drb_aws_resolve(c, NULL, "rds", "RDS", 0, &ep, &e), DRB_EINVAL);
		json_decref(c);
	}
	{
		json_t *c = json_pack("{s:s}", "kind", "postgres");

		assert_int_equal(drb_aws_resolve(c, NULL, "rds", "RDS", 0, &ep, &e), DRB_EINVAL);
		assert_non_null(strstr(e.msg, "postgres"));
		json_decref(c);
	}
	{
		json_t *c = json_pack("{s:i}", "region", 3);

		assert_int_equal(drb_aws_resolve(c, NULL, "rds", "RDS", 0, &ep, &e), DRB_EINVAL);
		json_decref(c);
	}
}

/* /dev/null (CI's "no configuration") and a named file that does not exist are empty
 * files, as botocore reads them; the environment keys still work. */
static void test_dev_null(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	drb_aws_endpoint ep;

	(void)state;
	setenv("AWS_CONFIG_FILE", "/dev/null", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EDENIED);
	assert_int_equal(drb_aws_resolve(NULL, NULL, "rds", "RDS", 0, &ep, &e), 0);
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKENV");
	drb_aws_creds_clear(&c);
	setenv("AWS_CONFIG_FILE", "/nonexistent/drbook/config", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/tmp", 1); /* a folder: empty too */
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
}

/* The file variables are expanded as botocore does: $VAR, ${VAR}, a leading ~. */
static void test_file_path_expansion(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	write_file("credentials", "[default]\naws_access_key_id=AKX\naws_secret_access_key=S\n");
	setenv("DRB_TEST_DIR", g_dir, 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "$DRB_TEST_DIR/credentials", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKX");
	drb_aws_creds_clear(&c);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "${DRB_TEST_DIR}/credentials", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/credentials", 1); /* HOME is g_dir */
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
	unsetenv("DRB_TEST_DIR");
}

/* botocore's token variable order and AWS_DEFAULT_PROFILE before AWS_PROFILE. */
static void test_env_details(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	setenv("AWS_SESSION_TOKEN", "SESSION", 1);
	setenv("AWS_SECURITY_TOKEN", "SECURITY", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.session_token, "SECURITY");
	drb_aws_creds_clear(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	write_file("credentials", "[a]\naws_access_key_id=AKA\naws_secret_access_key=S\n"
				  "[b]\naws_access_key_id=AKB\naws_secret_access_key=S\n");
	setenv("AWS_PROFILE", "a", 1);
	setenv("AWS_DEFAULT_PROFILE", "b", 1);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	assert_string_equal(c.access_key, "AKB");
	drb_aws_creds_clear(&c);
}

/* assume-role configurations botocore refuses are refused before any request: both
 * sources, neither, a missing or looping source_profile, an unknown credential_source,
 * mfa_serial (drbook cannot prompt), a web identity without a role. */
static void test_assume_role_refusals(void **state)
{
	static const struct {
		const char *config, *msg;
	} bad[] = {
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = y\n"
	     "credential_source = Environment\n[profile y]\naws_access_key_id=A\n"
	     "aws_secret_access_key=S\n",
	     "both source_profile and credential_source"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\n", "neither source_profile"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = ghost\n",
	     "'ghost' referenced in profile 'x' does not exist"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = y\n"
	     "[profile y]\nrole_arn = arn:aws:iam::1:role/q\nsource_profile = x\n",
	     "loop"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n", "loop"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Shell\n",
	     "'Shell' in profile 'x' is not valid"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Environment\n"
	     "mfa_serial = arn:aws:iam::1:mfa/me\n",
	     "cannot ask for an MFA code"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\ncredential_source = Environment\n",
	     "no credentials found in credential_source Environment"},
	    {"[profile x]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = y\n"
	     "[profile y]\nregion = eu-west-1\n",
	     "source profile 'y' must have credentials"},
	    {"[profile x]\nweb_identity_token_file = /tmp/t\n", "no role ARN"},
	    {"[profile x]\nsso_account_id = 1\n", "missing sso_role_name, sso_start_url, "
						  "sso_region"},
	    {"[profile x]\nsso_account_id = 1\nsso_session = s\n", "sso-session 's' does not "
								   "exist"},
	    {"[profile x]\nsso_account_id = 1\nsso_role_name = r\nsso_session = s\n"
	     "sso_region = us-east-1\n[sso-session s]\nsso_start_url = https://a\n"
	     "sso_region = eu-west-1\n",
	     "inconsistent"},
	    {"[profile x]\nsso_account_id = 1\nsso_role_name = r\n"
	     "sso_start_url = https://a\nsso_region = eu-west-1\n",
	     "aws sso login"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		drb_aws_creds c;
		drb_err e = {0};

		write_file("config", bad[i].config);
		assert_true(drb_aws_creds_load("x", &c, &e) < 0);
		if (!strstr(e.msg, bad[i].msg))
			fail_msg("case %zu: '%s' not in '%s'", i, bad[i].msg, e.msg);
		assert_null(c.access_key);
	}
}

/* The chain's order: an assume-role profile comes before the profile's own keys; a
 * profile's keys before the container endpoint; the container endpoint before IMDS; an
 * explicit profile ignores the environment's web identity settings. */
static void test_chain_order(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "%s/container/creds", g_srv.base);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	write_file("credentials", "[p]\naws_access_key_id=AKP\naws_secret_access_key=S\n");
	assert_int_equal(drb_aws_creds_load("p", &c, &e), 0);
	assert_string_equal(c.access_key, "AKP");
	drb_aws_creds_clear(&c);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0); /* default: no keys */
	assert_string_equal(c.source, "container endpoint");
	assert_string_equal(c.access_key, "ASIACONT000000000001");
	drb_aws_creds_clear(&c);
	/* The environment's web identity applies to the default chain only. */
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(drb_aws_creds_load("p", &c, &e), 0);
	assert_string_equal(c.access_key, "AKP");
	drb_aws_creds_clear(&c);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EINVAL); /* no AWS_ROLE_ARN */
	assert_non_null(strstr(e.msg, "role ARN"));
}

static void srv_ctl(const char *body)
{
	char url[128];
	drb_http_req rq;
	drb_http_resp r;
	drb_err e = {0};

	snprintf(url, sizeof(url), "%s/_ctl", g_srv.base);
	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.url = url;
	rq.body = body;
	rq.body_len = strlen(body);
	assert_int_equal(drb_http_perform(&rq, &r, &e), 0);
	assert_int_equal(r.status, 200);
	drb_http_resp_free(&r);
}

static long srv_count(void)
{
	char url[128];
	drb_http_req rq;
	drb_http_resp r;
	drb_err e = {0};
	json_t *j;
	json_error_t je;
	long n;

	snprintf(url, sizeof(url), "%s/_count", g_srv.base);
	memset(&rq, 0, sizeof(rq));
	rq.url = url;
	assert_int_equal(drb_http_perform(&rq, &r, &e), 0);
	j = json_loadb(r.body, r.body_len, 0, &je);
	n = (long)json_integer_value(json_object_get(j, "container"));
	json_decref(j);
	drb_http_resp_free(&r);
	return n;
}

static void use_container(void)
{
	char url[128];

	snprintf(url, sizeof(url), "%s/container/creds", g_srv.base);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
}

/* More than 15 minutes left: cached, one fetch for many calls. Within 15 minutes
 * (advisory): refreshed on the next call; a failed advisory refresh keeps the current
 * credentials. */
static void test_refresh_advisory(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};
	long n0;

	(void)state;
	use_container();
	srv_ctl("{\"expires_in\": 3600, \"fail\": false}");
	n0 = srv_count();
	for (int i = 0; i < 5; i++) {
		assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
		drb_aws_creds_clear(&c);
	}
	assert_int_equal(srv_count(), n0 + 1);
	drb_aws_creds_reset();
	srv_ctl("{\"expires_in\": 720}"); /* 12 min: inside the advisory window */
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0); /* refreshed */
	drb_aws_creds_clear(&c);
	assert_int_equal(srv_count(), n0 + 3);
	srv_ctl("{\"fail\": true, \"rotate\": true}");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0); /* refresh failed: kept */
	assert_string_equal(c.access_key, "ASIACONT000000000001");
	drb_aws_creds_clear(&c);
	srv_ctl("{\"fail\": false}");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0); /* refreshed: rotated */
	assert_string_equal(c.access_key, "ASIACONT000000000002");
	drb_aws_creds_clear(&c);
}

/* Within 10 minutes (mandatory) every caller waits for the refresh, and its failure is
 * the caller's error; credentials that arrive already expired are refused. */
static void test_refresh_mandatory(void **state)
{
	drb_aws_creds c;
	drb_err e = {0};

	(void)state;
	use_container();
	srv_ctl("{\"expires_in\": 540, \"fail\": false}"); /* 9 min */
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
	srv_ctl("{\"fail\": true}");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_ETRANSIENT);
	assert_non_null(strstr(e.msg, "container credentials"));
	assert_null(c.access_key);
	srv_ctl("{\"fail\": false, \"expires_in\": -60}");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), DRB_EDENIED);
	assert_non_null(strstr(e.msg, "already expired"));
	srv_ctl("{\"expires_in\": 21600}");
}

typedef struct thr_arg {
	int rc;
	char ak[64];
} thr_arg;

static void *thr_load(void *p)
{
	thr_arg *a = p;
	drb_aws_creds c;
	drb_err e = {0};

	a->rc = drb_aws_creds_load(NULL, &c, &e);
	if (a->rc == 0)
		snprintf(a->ak, sizeof(a->ak), "%s", c.access_key);
	drb_aws_creds_clear(&c);
	return NULL;
}

/* Parallel steps: 8 threads that all find the credentials in the mandatory window cause
 * exactly one refresh and all get the refreshed keys. */
static void test_refresh_threads(void **state)
{
	pthread_t t[8];
	thr_arg a[8];
	drb_aws_creds c;
	drb_err e = {0};
	long n0;

	(void)state;
	use_container();
	srv_ctl("{\"expires_in\": 540, \"fail\": false}");
	assert_int_equal(drb_aws_creds_load(NULL, &c, &e), 0);
	drb_aws_creds_clear(&c);
	srv_ctl("{\"expires_in\": 21600, \"rotate\": true}");
	n0 = srv_count();
	memset(a, 0, sizeof(a));
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thr_load, &a[i]), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].rc, 0);
		assert_string_equal(a[i].ak, a[0].ak);
	}
	assert_string_not_equal(a[0].ak, "ASIACONT000000000001");
	assert_int_equal(srv_count(), n0 + 1);
}

/* STS endpoints as botocore resolves them (the integration test compares the whole table
 * with botocore itself). */
static void test_resolve_sts(void **state)
{
	static const struct {
		const char *mode, *region, *url, *signing;
	} t[] = {
	    {NULL, "eu-west-1", "https://sts.eu-west-1.amazonaws.com", "eu-west-1"},
	    {NULL, "us-east-1", "https://sts.us-east-1.amazonaws.com", "us-east-1"},
	    {NULL, NULL, "https://sts.amazonaws.com", "us-east-1"},
	    {NULL, "aws-global", "https://sts.amazonaws.com", "us-east-1"},
	    {NULL, "cn-north-1", "https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1"},
	    {"legacy", "eu-west-1", "https://sts.amazonaws.com", "us-east-1"},
	    {"legacy", "ap-east-1", "https://sts.ap-east-1.amazonaws.com", "ap-east-1"},
	    {"regional", "us-east-1", "https://sts.us-east-1.amazonaws.com", "us-east-1"},
	};
	drb_aws_endpoint ep;
	drb_err e = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].mode)
			setenv("AWS_STS_REGIONAL_ENDPOINTS", t[i].mode, 1);
		else
			unsetenv("AWS_STS_REGIONAL_ENDPOINTS");
		assert_int_equal(
		    drb_aws_resolve(NULL, t[i].region, "sts", "STS", DRB_AWS_STS, &ep, &e), 0);
		assert_string_equal(ep.url, t[i].url);
		assert_string_equal(ep.region, t[i].signing);
	}
	setenv("AWS_STS_REGIONAL_ENDPOINTS", "sometimes", 1);
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "sts", "STS", DRB_AWS_STS, &ep, &e),
			 DRB_EINVAL);
	unsetenv("AWS_STS_REGIONAL_ENDPOINTS");
	write_file("config", "[default]\nsts_regional_endpoints = legacy\n");
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "sts", "STS", DRB_AWS_STS, &ep, &e), 0);
	assert_string_equal(ep.url, "https://sts.amazonaws.com");
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566", 1);
	assert_int_equal(drb_aws_resolve(NULL, "eu-west-1", "sts", "STS", DRB_AWS_STS, &ep, &e), 0);
	assert_string_equal(ep.url, "http://127.0.0.1:4566");
	assert_string_equal(ep.region, "eu-west-1");
}

static int group_setup(void **state)
{
	(void)state;
	return test_server_start(&g_srv, "tests/tools/aws_cred_server.py");
}

static int group_teardown(void **state)
{
	(void)state;
	test_server_stop(&g_srv);
	drb_aws_creds_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ini_basics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ini_nested_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ini_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ini_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ini_load_error_names_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_env_half, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_profiles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_named_profile_skips_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_none, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_creds_profile_half, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_region_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_endpoint_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_global, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dev_null, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_file_path_expansion, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_details, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_assume_role_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refresh_advisory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refresh_mandatory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refresh_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resolve_sts, setup, teardown),
	};
	int rc;

	drb_http_global_init();
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	drb_http_global_cleanup();
	return rc;
}
