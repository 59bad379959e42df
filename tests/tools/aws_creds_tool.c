/* aws_creds_tool: what drbook's credential chain and endpoint resolution make of the current
 * environment and AWS files, for the botocore cross-checks (tests/integration/
 * test_aws_creds.py finds it as $BUILD/tests/aws_creds_tool). It never prints a secret: the
 * secret key and the session token appear as their SHA-256, which the test compares with
 * the hash of what botocore resolved.
 *
 *   aws_creds_tool creds [--profile P] [--region R] [--times N]
 *       {"access_key", "secret_sha256", "token_sha256" | null, "expiration", "source"}
 *       (resolved N times; the last result is printed)
 *   aws_creds_tool endpoint PREFIX ENV_ID regional|global|sts [REGION]
 *       {"url", "host", "region"}
 * Errors: "error: CODE: message" on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/aws.h>
#include <drbook/http.h>
#include <drbook/util.h>

static int creds(int argc, char **argv)
{
	const char *profile = NULL, *region = NULL;
	long times = 1;
	drb_aws_creds c;
	drb_err err = {0};
	char sk[65], tk[65];
	json_t *o;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--profile") && i + 1 < argc)
			profile = argv[++i];
		else if (!strcmp(argv[i], "--region") && i + 1 < argc)
			region = argv[++i];
		else if (!strcmp(argv[i], "--times") && i + 1 < argc)
			times = strtol(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "aws_creds_tool: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	for (long k = 0; k < times && rc == 0; k++) {
		drb_aws_creds_clear(&c);
		rc = drb_aws_creds_resolve(profile, region, &c, &err);
	}
	if (rc != 0) {
		fprintf(stderr, "error: %s: %s\n", drb_code_name(rc), err.msg);
		return 1;
	}
	drb_sha256_hex(c.secret_key, strlen(c.secret_key), sk);
	if (c.session_token)
		drb_sha256_hex(c.session_token, strlen(c.session_token), tk);
	o = json_pack("{s:s, s:s, s:s?, s:I, s:s}", "access_key", c.access_key, "secret_sha256", sk,
		      "token_sha256", c.session_token ? tk : NULL, "expiration",
		      (json_int_t)c.expiration, "source", c.source);
	drb_aws_creds_clear(&c);
	if (!o)
		return 1;
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return 0;
}

static int endpoint(int argc, char **argv)
{
	drb_aws_endpoint ep;
	drb_err err = {0};
	int kind;
	json_t *o;

	if (argc < 3) {
		fprintf(stderr, "usage: aws_creds_tool endpoint PREFIX ENV_ID KIND [REGION]\n");
		return 2;
	}
	kind = !strcmp(argv[2], "sts")	    ? DRB_AWS_STS
	       : !strcmp(argv[2], "global") ? DRB_AWS_GLOBAL
					    : DRB_AWS_REGIONAL;
	if (drb_aws_resolve(NULL, argc > 3 ? argv[3] : NULL, argv[0], argv[1], kind, &ep, &err) !=
	    0) {
		fprintf(stderr, "error: %s: %s\n", drb_code_name(err.code), err.msg);
		return 1;
	}
	o = json_pack("{s:s, s:s, s:s}", "url", ep.url, "host", ep.host, "region", ep.region);
	if (!o)
		return 1;
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: aws_creds_tool creds|endpoint ...\n");
		return 2;
	}
	if (drb_http_global_init() != 0)
		return 1;
	if (!strcmp(argv[1], "creds"))
		rc = creds(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "endpoint"))
		rc = endpoint(argc - 2, argv + 2);
	else
		rc = 2;
	drb_aws_creds_reset();
	drb_http_global_cleanup();
	return rc;
}
