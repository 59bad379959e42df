/* Tests of src/providers/aws/errors.c and of how actions report AWS errors: every error shape
 * (Query, REST-XML, EC2, JSON 1.1, header only, empty), the code table (what is retried,
 * what is a denial, what is "not found") and the message format "svc Operation: Code:
 * message (request id X)" built from a recorded answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#include "replay_seam.h"

static int setup(void **state)
{
	(void)state;
	aws_env_isolate();
	return 0;
}

static void parse(long status, const char *body, const char *rid, const char *etype,
		  drb_aws_error *e)
{
	assert_int_equal(drb_aws_error_parse(status, body, body ? strlen(body) : 0, rid, etype, e),
			 0);
}

/* Query protocol (RDS, SNS, STS, CloudWatch) and Route 53's REST-XML with its namespace. */
static void test_parse_xml(void **state)
{
	drb_aws_error e;

	(void)state;
	parse(400,
	      "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>"
	      "Sender</Type><Code>InvalidDBInstanceState</Code><Message>Instance is not a read "
	      "replica.</Message></Error><RequestId>7c5a2b1e</RequestId></ErrorResponse>",
	      NULL, NULL, &e);
	assert_string_equal(e.code, "InvalidDBInstanceState");
	assert_string_equal(e.message, "Instance is not a read replica.");
	assert_string_equal(e.request_id, "7c5a2b1e");
	parse(404,
	      "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/"
	      "2013-04-01/\"><Error><Type>Sender</Type><Code>NoSuchHostedZone</Code><Message>No "
	      "hosted zone found with ID: Z1</Message></Error><RequestId>r53-id</RequestId>"
	      "</ErrorResponse>",
	      "hdr-id", NULL, &e);
	assert_string_equal(e.code, "NoSuchHostedZone");
	/* The header's request id is the one AWS documents; it wins over the body's. */
	assert_string_equal(e.request_id, "hdr-id");
}

/* EC2-style <Response><Errors><Error> (moto uses it for some services) and S3's bare Error. */
static void test_parse_xml_other_shapes(void **state)
{
	drb_aws_error e;

	(void)state;
	parse(403,
	      "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not "
	      "authorized</Message></Error></Errors><RequestID>ec2-id</RequestID></Response>",
	      NULL, NULL, &e);
	assert_string_equal(e.code, "UnauthorizedOperation");
	assert_string_equal(e.request_id, "ec2-id");
	parse(403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>", NULL, NULL, &e);
	assert_string_equal(e.code, "AccessDenied");
	assert_string_equal(e.request_id, "");
}

/* JSON 1.1: "__type" with or without a namespace, "message" or "Message", header type. */
static void test_parse_json(void **state)
{
	drb_aws_error e;

	(void)state;
	parse(400,
	      "{\"__type\": \"com.amazonaws.ecs#ClusterNotFoundException\", \"message\": "
	      "\"Cluster not found.\"}",
	      "ecs-id", NULL, &e);
	assert_string_equal(e.code, "ClusterNotFoundException");
	assert_string_equal(e.message, "Cluster not found.");
	assert_string_equal(e.request_id, "ecs-id");
	parse(400, "{\"__type\": \"ThrottlingException\", \"Message\": \"Rate exceeded\"}", NULL,
	      NULL, &e);
	assert_string_equal(e.code, "ThrottlingException");
	assert_string_equal(e.message, "Rate exceeded");
	parse(400, "", NULL, "AccessDeniedException:http://internal.amazon.com/coral/", &e);
	assert_string_equal(e.code, "AccessDeniedException");
}

/* Nothing readable: the status stands in for the code. */
static void test_parse_fallback(void **state)
{
	drb_aws_error e;

	(void)state;
	parse(503, "", NULL, NULL, &e);
	assert_string_equal(e.code, "HTTP503");
	parse(502, "<html><body>Bad gateway", NULL, NULL, &e);
	assert_string_equal(e.code, "HTTP502");
	parse(500, "{\"not\": \"aws\"}", NULL, NULL, &e);
	assert_string_equal(e.code, "HTTP500");
	parse(400, NULL, NULL, NULL, &e);
	assert_string_equal(e.code, "HTTP400");
}

/* The code table. */
static void test_code_map(void **state)
{
	static const struct {
		const char *code;
		long status;
		int want;
	} t[] = {
	    {"Throttling", 400, DRB_ETRANSIENT},
	    {"ThrottlingException", 400, DRB_ETRANSIENT},
	    {"PriorRequestNotComplete", 400, DRB_ETRANSIENT},
	    {"RequestLimitExceeded", 503, DRB_ETRANSIENT},
	    {"TooManyRequestsException", 429, DRB_ETRANSIENT},
	    {"HTTP503", 503, DRB_ETRANSIENT},
	    {"InternalFailure", 500, DRB_ETRANSIENT},
	    {"AccessDenied", 403, DRB_EDENIED},
	    {"AccessDeniedException", 400, DRB_EDENIED},
	    {"UnauthorizedOperation", 403, DRB_EDENIED},
	    {"SignatureDoesNotMatch", 403, DRB_EDENIED},
	    {"InvalidClientTokenId", 403, DRB_EDENIED},
	    {"ExpiredToken", 400, DRB_EDENIED},
	    /* A denial is never retried, even if a proxy dressed it as a 5xx. */
	    {"AccessDenied", 503, DRB_EDENIED},
	    {"HTTP403", 403, DRB_EDENIED},
	    {"DBInstanceNotFound", 404, DRB_ENOTFOUND},
	    {"DBInstanceNotFoundFault", 400, DRB_ENOTFOUND},
	    {"ClusterNotFoundException", 400, DRB_ENOTFOUND},
	    {"NoSuchHostedZone", 404, DRB_ENOTFOUND},
	    {"NoSuchHealthCheck", 404, DRB_ENOTFOUND},
	    {"InvalidDBInstanceState", 400, DRB_ERR},
	    {"InvalidChangeBatch", 400, DRB_ERR},
	    {"HTTP400", 400, DRB_ERR},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = drb_aws_error_code(t[i].code, t[i].status);

		if (got != t[i].want)
			fail_msg("%s/%ld: got %d, want %d", t[i].code, t[i].status, got, t[i].want);
	}
	assert_true(drb_aws_is_throttle("Throttling"));
	assert_true(drb_aws_is_throttle("PriorRequestNotComplete"));
	assert_false(drb_aws_is_throttle("AccessDenied"));
	assert_false(drb_aws_is_throttle("throttling")); /* codes are case-sensitive */
	assert_false(drb_aws_is_throttle(NULL));
}

/* A DescribeDBInstances answer for prod-db-eu in `status`, a replica or not. */
static const char *describe_answer(const char *status, int replica)
{
	static char buf[4][1024];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, sizeof(buf[0]),
		 "<DescribeDBInstancesResponse><DescribeDBInstancesResult><DBInstances>"
		 "<DBInstance><DBInstanceIdentifier>prod-db-eu</DBInstanceIdentifier>"
		 "<DBInstanceStatus>%s</DBInstanceStatus><Engine>postgres</Engine>"
		 "<MultiAZ>false</MultiAZ>%s</DBInstance></DBInstances>"
		 "</DescribeDBInstancesResult></DescribeDBInstancesResponse>",
		 status,
		 replica ? "<ReadReplicaSourceDBInstanceIdentifier>arn:aws:rds:us-east-1:1:db:"
			   "prod-db</ReadReplicaSourceDBInstanceIdentifier>"
			 : "");
	return b;
}

/* An action's error: code, message and request id, in the documented format. */
static void test_action_error_message(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 400,
			"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidDBInstanceState"
			"</Code><Message>DB Instance is in state storage-full.</Message></Error>"
			"<RequestId>body-id</RequestId></ErrorResponse>",
			"req-123", 1);
	/* the promotion reads the instance: still a replica, nobody promoting it */
	replay_seam_add(&r, 200, describe_answer("storage-full", 1), "req-124", 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.promote_read_replica", "{\"id\": \"prod-db\"}", 0, &res, &e),
	    DRB_ERR);
	assert_null(res);
	assert_string_equal(e.msg, "rds PromoteReadReplica: InvalidDBInstanceState: DB Instance "
				   "is in state storage-full. (request id req-123)");
	assert_int_equal(e.cause, 400);
	replay_seam_free(&r);
}

/* Promotion is idempotent in effect: refused because the instance is already promoted, or
 * being promoted (a resume whose record of the first answer was lost), it reads the
 * instance until it is available and no longer a replica, and succeeds with it. */
static void test_promote_already_promoted_or_in_flight(void **state)
{
	static const char refused[] =
	    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidDBInstanceState</Code>"
	    "<Message>DB Instance prod-db-eu is not a read replica.</Message></Error>"
	    "</ErrorResponse>";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 400, refused, "req-1", 1);
	replay_seam_add(&r, 200, describe_answer("available", 0), "req-2", 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.promote_read_replica", "{\"id\": \"prod-db-eu\"}", 0, &res, &e),
	    0);
	assert_string_equal(json_string_value(json_object_get(res, "status")), "available");
	assert_true(json_is_null(json_object_get(res, "replica_source")));
	json_decref(res);
	res = NULL;
	replay_seam_free(&r);

	/* being promoted: modifying (still reported a replica), then done */
	replay_seam_init(&r);
	replay_seam_add(&r, 400, refused, "req-1", 1);
	replay_seam_add(&r, 200, describe_answer("modifying", 1), "req-2", 1);
	replay_seam_add(&r, 200, describe_answer("available", 0), "req-3", 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.promote_read_replica", "{\"id\": \"prod-db-eu\"}", 0, &res, &e),
	    0);
	assert_string_equal(json_string_value(json_object_get(res, "status")), "available");
	json_decref(res);
	res = NULL;
	replay_seam_free(&r);

	/* still being promoted when the step's budget runs out: a timeout, not a second ask */
	replay_seam_init(&r);
	replay_seam_add(&r, 400, refused, "req-1", 1);
	replay_seam_add(&r, 200, describe_answer("modifying", 1), "req-2", 1);
	assert_int_equal(run_action(&r, "aws.rds.promote_read_replica", "{\"id\": \"prod-db-eu\"}",
				    drb_mono_now() + 1.0, &res, &e),
			 DRB_ETIMEOUT);
	assert_null(res);
	assert_non_null(strstr(e.msg, "still being promoted"));
	replay_seam_free(&r);
}

/* The error codes actions return, one per class; attempts show when retries happened. */
static void test_action_error_codes(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 403,
			"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The "
			"request signature we calculated does not match</Message></Error>"
			"</ErrorResponse>",
			"sig-id", 1);
	replay_seam_add(&r, 400,
			"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded"
			"</Message></Error></ErrorResponse>",
			"thr-id", 4);
	replay_seam_add(&r, 503, "", NULL, 4);
	replay_seam_add(&r, 404,
			"<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
			"<Error><Code>NoSuchHealthCheck</Code><Message>No health check</Message>"
			"</Error></ErrorResponse>",
			NULL, 1);
	replay_seam_add(&r, 400,
			"{\"__type\": \"AccessDeniedException\", \"message\": \"User: x is not "
			"authorized to perform: ecs:UpdateService\"}",
			"ecs-id", 1);
	assert_int_equal(run_action(&r, "aws.sts.get_caller_identity", "{}", 0, &res, &e),
			 DRB_EDENIED);
	assert_non_null(strstr(e.msg, "sts GetCallerIdentity: SignatureDoesNotMatch: "));
	assert_non_null(strstr(e.msg, "(request id sig-id)"));
	assert_int_equal(
	    run_action(&r, "aws.rds.describe_db_instance", "{\"id\": \"x\"}", 0, &res, &e),
	    DRB_ETRANSIENT);
	assert_string_equal(e.msg, "rds DescribeDBInstances: Throttling: Rate exceeded (request id "
				   "thr-id; 4 attempts)");
	assert_int_equal(
	    run_action(&r, "aws.rds.describe_db_instance", "{\"id\": \"x\"}", 0, &res, &e),
	    DRB_ETRANSIENT);
	assert_string_equal(e.msg, "rds DescribeDBInstances: HTTP503: (no message) (4 attempts)");
	assert_int_equal(run_action(&r, "aws.route53.update_health_check",
				    "{\"id\": \"abc-1\", \"disabled\": true}", 0, &res, &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "route53 UpdateHealthCheck: NoSuchHealthCheck"));
	assert_int_equal(
	    run_action(&r, "aws.ecs.update_service",
		       "{\"cluster\": \"c\", \"service\": \"s\", \"desired_count\": 2}", 0, &res,
		       &e),
	    DRB_EDENIED);
	assert_non_null(strstr(e.msg,
			       "ecs UpdateService: AccessDeniedException: User: x is not "
			       "authorized to perform: ecs:UpdateService (request id ecs-id)"));
	assert_null(res);
	replay_seam_free(&r);
}

/* A failure before any answer (the seam's, e.g. no credentials) keeps its code and gets the
 * operation as context. */
static void test_seam_error_prefixed(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r); /* no answers: the seam fails */
	assert_int_equal(run_action(&r, "aws.sns.publish",
				    "{\"topic_arn\": \"arn:aws:sns:us-east-1:1:t\", \"message\": "
				    "\"m\"}",
				    0, &res, &e),
			 DRB_EINTEGRITY);
	assert_non_null(strstr(e.msg, "sns Publish: replay: no recorded answer left"));
	replay_seam_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_xml),
	    cmocka_unit_test(test_parse_xml_other_shapes),
	    cmocka_unit_test(test_parse_json),
	    cmocka_unit_test(test_parse_fallback),
	    cmocka_unit_test(test_code_map),
	    cmocka_unit_test(test_action_error_message),
	    cmocka_unit_test(test_promote_already_promoted_or_in_flight),
	    cmocka_unit_test(test_action_error_codes),
	    cmocka_unit_test(test_seam_error_prefixed),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
