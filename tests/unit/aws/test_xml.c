/* Tests of the AWS answer parsing (src/providers/aws/xml.c and the service files): each
 * action is run against recorded answers through a replaying seam, the way a replay of the
 * audit log runs them: no network, no credentials, the result built from the response
 * object alone. The answers follow the shapes of the AWS API references (namespaces
 * included), written for these tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#include "providers/aws/aws_int.h"
#include "replay_seam.h"

static const char DESCRIBE_PRIMARY[] =
    "<?xml version=\"1.0\"?>\n"
    "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\n"
    "  <DescribeDBInstancesResult>\n    <DBInstances>\n      <DBInstance>\n"
    "        <DBInstanceIdentifier>prod-db</DBInstanceIdentifier>\n"
    "        <DBInstanceStatus>available</DBInstanceStatus>\n"
    "        <Engine>postgres</Engine>\n        <MultiAZ>true</MultiAZ>\n"
    "        <AvailabilityZone>us-east-1a</AvailabilityZone>\n"
    "        <SecondaryAvailabilityZone>us-east-1b</SecondaryAvailabilityZone>\n"
    "        <Endpoint><Address>prod-db.abc.us-east-1.rds.amazonaws.com</Address>"
    "<Port>5432</Port><HostedZoneId>Z2R2ITUGPM61AM</HostedZoneId></Endpoint>\n"
    "        <ReadReplicaDBInstanceIdentifiers>\n"
    "          <ReadReplicaDBInstanceIdentifier>prod-db-analytics"
    "</ReadReplicaDBInstanceIdentifier>\n"
    "          <ReadReplicaDBInstanceIdentifier>arn:aws:rds:eu-west-1:1:db:prod-db-eu"
    "</ReadReplicaDBInstanceIdentifier>\n"
    "        </ReadReplicaDBInstanceIdentifiers>\n"
    "        <MasterUsername>dr</MasterUsername>\n"
    "      </DBInstance>\n    </DBInstances>\n  </DescribeDBInstancesResult>\n"
    "  <ResponseMetadata><RequestId>9135fff3-8509-11e0-bd9b-a7b1ece36d51</RequestId>"
    "</ResponseMetadata>\n</DescribeDBInstancesResponse>\n";

static const char DESCRIBE_REPLICA_CREATING[] =
    "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">"
    "<DescribeDBInstancesResult><DBInstances><DBInstance>"
    "<DBInstanceIdentifier>prod-db-eu</DBInstanceIdentifier>"
    "<DBInstanceStatus>creating</DBInstanceStatus><Engine>postgres</Engine>"
    "<MultiAZ>false</MultiAZ>"
    "<ReadReplicaSourceDBInstanceIdentifier>arn:aws:rds:us-east-1:1:db:prod-db"
    "</ReadReplicaSourceDBInstanceIdentifier><ReadReplicaDBInstanceIdentifiers/>"
    "</DBInstance></DBInstances></DescribeDBInstancesResult></DescribeDBInstancesResponse>";

static int setup(void **state)
{
	(void)state;
	aws_env_isolate();
	return 0;
}

/* Every field of the catalog, from a full answer; the call record says what went out. */
static void test_rds_describe_primary(void **state)
{
	replay_seam r;
	json_t *res = NULL, *rec;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, DESCRIBE_PRIMARY, "9135fff3", 1);
	assert_int_equal(run_action(&r, "aws.rds.describe_db_instance",
				    "{\"id\": \"prod-db\", \"region\": \"us-east-1\"}", 0, &res,
				    &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "id")), "prod-db");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "available");
	assert_string_equal(json_string_value(json_object_get(res, "engine")), "postgres");
	assert_true(json_is_true(json_object_get(res, "multi_az")));
	assert_string_equal(json_string_value(json_object_get(res, "az")), "us-east-1a");
	assert_string_equal(json_string_value(json_object_get(res, "secondary_az")), "us-east-1b");
	assert_string_equal(json_string_value(json_object_get(res, "endpoint")),
			    "prod-db.abc.us-east-1.rds.amazonaws.com");
	assert_int_equal(json_integer_value(json_object_get(res, "port")), 5432);
	assert_true(json_is_null(json_object_get(res, "replica_source")));
	assert_int_equal(json_array_size(json_object_get(res, "replicas")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(res, "replicas"), 0)),
			    "prod-db-analytics");
	assert_null(json_object_get(res, "MasterUsername"));
	rec = json_array_get(r.records, 0);
	assert_string_equal(json_string_value(json_object_get(rec, "service")), "rds");
	assert_string_equal(json_string_value(json_object_get(rec, "operation")),
			    "DescribeDBInstances");
	assert_string_equal(json_string_value(json_object_get(rec, "region")), "us-east-1");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "request"), "url")),
	    "https://rds.us-east-1.amazonaws.com/");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_object_get(rec, "request"), "params"),
				"DBInstanceIdentifier")),
			    "prod-db");
	json_decref(res);
	replay_seam_free(&r);
}

/* A replica still being created: no endpoint yet (null, not a crash), a source, no AZs. */
static void test_rds_describe_replica(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, DESCRIBE_REPLICA_CREATING, NULL, 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.describe_db_instance", "{\"id\": \"prod-db-eu\"}", 0, &res, &e),
	    0);
	assert_string_equal(json_string_value(json_object_get(res, "replica_source")),
			    "arn:aws:rds:us-east-1:1:db:prod-db");
	assert_true(json_is_false(json_object_get(res, "multi_az")));
	assert_true(json_is_null(json_object_get(res, "endpoint")));
	assert_true(json_is_null(json_object_get(res, "port")));
	assert_true(json_is_null(json_object_get(res, "secondary_az")));
	assert_int_equal(json_array_size(json_object_get(res, "replicas")), 0);
	json_decref(res);
	replay_seam_free(&r);
}

/* Snapshots across two pages (Marker), newest first whatever the time format. */
static void test_rds_snapshots_paged_sorted(void **state)
{
	static const char page1[] =
	    "<DescribeDBSnapshotsResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">"
	    "<DescribeDBSnapshotsResult><Marker>m-2</Marker><DBSnapshots>"
	    "<DBSnapshot><DBSnapshotIdentifier>old</DBSnapshotIdentifier>"
	    "<SnapshotCreateTime>2026-11-01T03:00:00Z</SnapshotCreateTime>"
	    "<Status>available</Status><SnapshotType>automated</SnapshotType></DBSnapshot>"
	    "<DBSnapshot><DBSnapshotIdentifier>newest</DBSnapshotIdentifier>"
	    "<SnapshotCreateTime>2026-11-24T03:00:00.512Z</SnapshotCreateTime>"
	    "<Status>creating</Status></DBSnapshot>"
	    "</DBSnapshots></DescribeDBSnapshotsResult></DescribeDBSnapshotsResponse>";
	static const char page2[] =
	    "<DescribeDBSnapshotsResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">"
	    "<DescribeDBSnapshotsResult><DBSnapshots>"
	    "<DBSnapshot><DBSnapshotIdentifier>middle</DBSnapshotIdentifier>"
	    "<SnapshotCreateTime>2026-11-20T03:00:00Z</SnapshotCreateTime>"
	    "<Status>available</Status></DBSnapshot>"
	    "</DBSnapshots></DescribeDBSnapshotsResult></DescribeDBSnapshotsResponse>";
	replay_seam r;
	json_t *res = NULL, *p2;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, page1, NULL, 1);
	replay_seam_add(&r, 200, page2, NULL, 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.describe_db_snapshots", "{\"id\": \"prod-db\"}", 0, &res, &e),
	    0);
	assert_int_equal(r.calls, 2);
	assert_true(json_is_array(res));
	assert_int_equal(json_array_size(res), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "snapshot")),
			    "newest");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "status")),
			    "creating");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "snapshot")),
			    "middle");
	assert_string_equal(json_string_value(json_object_get(json_array_get(res, 2), "snapshot")),
			    "old");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(res, 2), "created_at")),
	    "2026-11-01T03:00:00Z");
	p2 = json_object_get(json_object_get(json_array_get(r.records, 1), "request"), "params");
	assert_string_equal(json_string_value(json_object_get(p2, "Marker")), "m-2");
	json_decref(res);
	replay_seam_free(&r);
}

/* FailoverDBCluster: the writer is the member marked IsClusterWriter. */
static void test_rds_failover_cluster(void **state)
{
	static const char ans[] =
	    "<FailoverDBClusterResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">"
	    "<FailoverDBClusterResult><DBCluster><DBClusterIdentifier>aurora"
	    "</DBClusterIdentifier><Status>available</Status><DBClusterMembers>"
	    "<DBClusterMember><DBInstanceIdentifier>a-1</DBInstanceIdentifier>"
	    "<IsClusterWriter>false</IsClusterWriter></DBClusterMember>"
	    "<DBClusterMember><DBInstanceIdentifier>a-2</DBInstanceIdentifier>"
	    "<IsClusterWriter>true</IsClusterWriter></DBClusterMember>"
	    "</DBClusterMembers></DBCluster></FailoverDBClusterResult>"
	    "</FailoverDBClusterResponse>";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ans, NULL, 1);
	assert_int_equal(run_action(&r, "aws.rds.failover_db_cluster",
				    "{\"cluster\": \"aurora\", \"target\": \"a-2\"}", 0, &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "id")), "aurora");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "available");
	assert_string_equal(json_string_value(json_object_get(res, "writer")), "a-2");
	json_decref(res);
	replay_seam_free(&r);
}

static const char RRSETS[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
    "<ResourceRecordSets><ResourceRecordSet><Name>api.example.com.</Name><Type>CNAME</Type>"
    "<TTL>60</TTL><ResourceRecords><ResourceRecord><Value>api.us-east-1.example.com</Value>"
    "</ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets>"
    "<IsTruncated>true</IsTruncated><MaxItems>1</MaxItems>"
    "<NextRecordName>www.example.com.</NextRecordName><NextRecordType>A</NextRecordType>"
    "</ListResourceRecordSetsResponse>";

/* get_record: the match is by normalised name (case, trailing dot) and type; the request
 * is a GET on the zone's rrset with the name and type in the query. */
static void test_route53_get_record(void **state)
{
	replay_seam r;
	json_t *res = NULL, *req;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, RRSETS, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.get_record",
				    "{\"zone_id\": \"/hostedzone/Z1D633PJN98FT9\", "
				    "\"name\": \"API.example.com\", \"type\": \"CNAME\", "
				    "\"region\": \"eu-west-1\"}",
				    0, &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "name")), "api.example.com.");
	assert_string_equal(json_string_value(json_object_get(res, "type")), "CNAME");
	assert_int_equal(json_integer_value(json_object_get(res, "ttl")), 60);
	assert_string_equal(json_string_value(json_array_get(json_object_get(res, "values"), 0)),
			    "api.us-east-1.example.com");
	req = json_object_get(json_array_get(r.records, 0), "request");
	assert_string_equal(json_string_value(json_object_get(req, "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(req, "url")),
			    "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1D633PJN98FT9/"
			    "rrset?maxitems=100&name=API.example.com&type=CNAME");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(r.records, 0), "region")),
	    "us-east-1");
	json_decref(res);
	replay_seam_free(&r);
}

/* The API lists from the name onwards: a different next record means "not there". */
static void test_route53_get_record_missing(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, RRSETS, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.get_record",
				    "{\"zone_id\": \"Z1\", \"name\": \"aaa.example.com\", "
				    "\"type\": \"CNAME\"}",
				    0, &res, &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "no CNAME record named aaa.example.com."));
	replay_seam_free(&r);
}

/* Wildcards come back escaped ("\052"); alias records give their target as the value. */
static void test_route53_wildcard_alias(void **state)
{
	static const char ans[] =
	    "<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/"
	    "2013-04-01/\"><ResourceRecordSets><ResourceRecordSet><Name>\\052.example.com."
	    "</Name><Type>A</Type><AliasTarget><HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId>"
	    "<DNSName>d111.cloudfront.net.</DNSName><EvaluateTargetHealth>false"
	    "</EvaluateTargetHealth></AliasTarget></ResourceRecordSet></ResourceRecordSets>"
	    "</ListResourceRecordSetsResponse>";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ans, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.get_record",
				    "{\"zone_id\": \"Z1\", \"name\": \"*.example.com\", "
				    "\"type\": \"A\"}",
				    0, &res, &e),
			 0);
	assert_true(json_is_true(json_object_get(res, "alias")));
	assert_true(json_is_null(json_object_get(res, "ttl")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(res, "values"), 0)),
			    "d111.cloudfront.net.");
	/* '*' travels percent-encoded in the query. */
	assert_non_null(
	    strstr(json_string_value(json_object_get(
		       json_object_get(json_array_get(r.records, 0), "request"), "url")),
		   "name=%2A.example.com"));
	json_decref(res);
	replay_seam_free(&r);
}

static const char CHANGE_PENDING[] =
    "<ChangeResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
    "<ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id><Status>PENDING</Status>"
    "<SubmittedAt>2026-11-25T16:39:06.123Z</SubmittedAt></ChangeInfo>"
    "</ChangeResourceRecordSetsResponse>";
static const char GET_CHANGE_PENDING[] =
    "<GetChangeResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo>"
    "<Id>/change/C2682N5HXP0BZ4</Id><Status>PENDING</Status></ChangeInfo>"
    "</GetChangeResponse>";
static const char GET_CHANGE_INSYNC[] =
    "<GetChangeResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo>"
    "<Id>/change/C2682N5HXP0BZ4</Id><Status>INSYNC</Status></ChangeInfo>"
    "</GetChangeResponse>";

/* upsert with wait polls GetChange until INSYNC; the values are XML-escaped in the body. */
static void test_route53_upsert_wait(void **state)
{
	replay_seam r;
	json_t *res = NULL, *req;
	drb_err e = {0};
	const char *body;

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, CHANGE_PENDING, NULL, 1);
	replay_seam_add(&r, 200, GET_CHANGE_PENDING, NULL, 1);
	replay_seam_add(&r, 200, GET_CHANGE_INSYNC, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.upsert_record",
				    "{\"zone_id\": \"Z1\", \"name\": \"api.example.com\", "
				    "\"type\": \"TXT\", \"ttl\": 30, \"wait\": true, "
				    "\"values\": [\"\\\"v=1 <a&b>\\\"\", \"x\"]}",
				    drb_mono_now() + 30, &res, &e),
			 0);
	assert_int_equal(r.calls, 3);
	assert_string_equal(json_string_value(json_object_get(res, "change_id")), "C2682N5HXP0BZ4");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "INSYNC");
	req = json_object_get(json_array_get(r.records, 0), "request");
	body = json_string_value(json_object_get(req, "body"));
	assert_non_null(strstr(body, "<Value>&quot;v=1 &lt;a&amp;b&gt;&quot;</Value>"));
	assert_non_null(strstr(body, "<TTL>30</TTL>"));
	assert_non_null(strstr(body, "<Action>UPSERT</Action>"));
	assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_array_get(r.records, 2), "request"), "url")),
			    "https://route53.amazonaws.com/2013-04-01/change/C2682N5HXP0BZ4");
	json_decref(res);
	replay_seam_free(&r);
}

/* The wait is bounded by the step's deadline: a change still PENDING is a timeout. */
static void test_route53_upsert_wait_deadline(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};
	double t0 = drb_mono_now();

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, CHANGE_PENDING, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.upsert_record",
				    "{\"zone_id\": \"Z1\", \"name\": \"a.example.com\", "
				    "\"type\": \"A\", \"values\": \"192.0.2.1\", \"wait\": true}",
				    t0 + 0.4, &res, &e),
			 DRB_ETIMEOUT);
	assert_non_null(strstr(e.msg, "still PENDING"));
	assert_true(drb_mono_now() - t0 < 2.0);
	assert_int_equal(r.calls, 1);
	replay_seam_free(&r);
}

/* Health: Route 53's rule (more than 18% of checkers healthy), no checker = not healthy. */
static void test_route53_health_status(void **state)
{
	static const char ans[] =
	    "<GetHealthCheckStatusResponse xmlns=\"https://route53.amazonaws.com/doc/"
	    "2013-04-01/\"><HealthCheckObservations>"
	    "<HealthCheckObservation><Region>us-east-1</Region><IPAddress>1.2.3.4</IPAddress>"
	    "<StatusReport><Status>Success: HTTP Status Code 200, OK</Status></StatusReport>"
	    "</HealthCheckObservation>"
	    "<HealthCheckObservation><Region>eu-west-1</Region><StatusReport><Status>"
	    "Failure: Connection timed out.</Status></StatusReport></HealthCheckObservation>"
	    "<HealthCheckObservation><Region>ap-southeast-1</Region><StatusReport><Status>"
	    "Failure: HTTP Status Code 503</Status></StatusReport></HealthCheckObservation>"
	    "</HealthCheckObservations></GetHealthCheckStatusResponse>";
	static const char none[] = "<GetHealthCheckStatusResponse><HealthCheckObservations/>"
				   "</GetHealthCheckStatusResponse>";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ans, NULL, 1);
	replay_seam_add(&r, 200, none, NULL, 1);
	assert_int_equal(run_action(&r, "aws.route53.get_health_check_status",
				    "{\"id\": \"abcdef11-2222-3333-4444-555555fedcba\"}", 0, &res,
				    &e),
			 0);
	assert_true(json_is_true(json_object_get(res, "healthy")));
	assert_int_equal(json_integer_value(json_object_get(res, "reporting")), 3);
	assert_int_equal(json_integer_value(json_object_get(res, "failing")), 2);
	json_decref(res);
	assert_int_equal(run_action(&r, "aws.route53.get_health_check_status",
				    "{\"id\": \"abcdef11-2222-3333-4444-555555fedcba\"}", 0, &res,
				    &e),
			 0);
	assert_true(json_is_false(json_object_get(res, "healthy")));
	assert_int_equal(json_integer_value(json_object_get(res, "reporting")), 0);
	json_decref(res);
	replay_seam_free(&r);
}

/* An id that could change the URL path never reaches the seam. */
static void test_route53_ids_checked(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	assert_int_equal(run_action(&r, "aws.route53.get_health_check_status",
				    "{\"id\": \"../hostedzone/Z1\"}", 0, &res, &e),
			 DRB_EINVAL);
	assert_int_equal(run_action(&r, "aws.route53.get_record",
				    "{\"zone_id\": \"Z1?x=1\", \"name\": \"a\", \"type\": \"A\"}",
				    0, &res, &e),
			 DRB_EINVAL);
	assert_int_equal(run_action(&r, "aws.route53.get_record",
				    "{\"zone_id\": \"Z1\", \"name\": \"a\", \"type\": \"A&x\"}", 0,
				    &res, &e),
			 DRB_EINVAL);
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

static const char ECS_SERVICES[] =
    "{\"services\": [{\"serviceName\": \"api\", \"status\": \"ACTIVE\", \"desiredCount\": 6,"
    " \"runningCount\": 4, \"pendingCount\": 2, \"deployments\": ["
    "{\"id\": \"ecs-svc/1\", \"status\": \"ACTIVE\", \"rolloutState\": \"COMPLETED\"},"
    "{\"id\": \"ecs-svc/2\", \"status\": \"PRIMARY\", \"rolloutState\": \"IN_PROGRESS\"}]}],"
    " \"failures\": []}";

/* describe_service: counts and the PRIMARY deployment's rollout state; JSON 1.1 target. */
static void test_ecs_describe(void **state)
{
	replay_seam r;
	json_t *res = NULL, *req;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ECS_SERVICES, NULL, 1);
	assert_int_equal(run_action(&r, "aws.ecs.describe_service",
				    "{\"cluster\": \"prod-eu\", \"service\": \"api\", "
				    "\"region\": \"eu-west-1\"}",
				    0, &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "status")), "ACTIVE");
	assert_int_equal(json_integer_value(json_object_get(res, "desired")), 6);
	assert_int_equal(json_integer_value(json_object_get(res, "running")), 4);
	assert_int_equal(json_integer_value(json_object_get(res, "pending")), 2);
	assert_string_equal(json_string_value(json_object_get(res, "rollout_state")),
			    "IN_PROGRESS");
	req = json_object_get(json_array_get(r.records, 0), "request");
	assert_string_equal(json_string_value(json_object_get(req, "target")),
			    "AmazonEC2ContainerServiceV20141113.DescribeServices");
	assert_string_equal(json_string_value(json_object_get(req, "url")),
			    "https://ecs.eu-west-1.amazonaws.com/");
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(json_object_get(req, "body"), "services"), 0)),
			    "api");
	json_decref(res);
	replay_seam_free(&r);
}

/* A missing service comes as a "failure" in a 200 answer: not found. */
static void test_ecs_missing(void **state)
{
	static const char ans[] =
	    "{\"services\": [], \"failures\": [{\"arn\": \"arn:aws:ecs:eu-west-1:1:service/"
	    "nope\", \"reason\": \"MISSING\"}]}";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ans, NULL, 1);
	assert_int_equal(run_action(&r, "aws.ecs.describe_service",
				    "{\"cluster\": \"prod-eu\", \"service\": \"nope\"}", 0, &res,
				    &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "MISSING"));
	replay_seam_free(&r);
}

/* list_tasks follows nextToken. */
static void test_ecs_list_tasks_paged(void **state)
{
	replay_seam r;
	json_t *res = NULL, *body2;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(
	    &r, 200, "{\"taskArns\": [\"arn:t/1\", \"arn:t/2\"], \"nextToken\": \"n2\"}", NULL, 1);
	replay_seam_add(&r, 200, "{\"taskArns\": [\"arn:t/3\"]}", NULL, 1);
	assert_int_equal(run_action(&r, "aws.ecs.list_tasks",
				    "{\"cluster\": \"prod-eu\", \"service\": \"api\"}", 0, &res,
				    &e),
			 0);
	assert_int_equal(json_array_size(json_object_get(res, "tasks")), 3);
	body2 = json_object_get(json_object_get(json_array_get(r.records, 1), "request"), "body");
	assert_string_equal(json_string_value(json_object_get(body2, "nextToken")), "n2");
	assert_string_equal(json_string_value(json_object_get(body2, "serviceName")), "api");
	json_decref(res);
	replay_seam_free(&r);
}

/* STS, SNS and CloudWatch Query answers. */
static void test_query_small_actions(void **state)
{
	static const char sts[] =
	    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
	    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/dr</Arn>"
	    "<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>"
	    "</GetCallerIdentityResult></GetCallerIdentityResponse>";
	static const char sns[] =
	    "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>"
	    "<MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>"
	    "</PublishResponse>";
	static const char cw[] =
	    "<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
	    "<ResponseMetadata><RequestId>x</RequestId></ResponseMetadata>"
	    "</PutMetricDataResponse>";
	replay_seam r;
	json_t *res = NULL, *p;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, sts, NULL, 1);
	replay_seam_add(&r, 200, sns, NULL, 1);
	replay_seam_add(&r, 200, cw, NULL, 1);
	assert_int_equal(run_action(&r, "aws.sts.get_caller_identity", "{}", 0, &res, &e), 0);
	assert_string_equal(json_string_value(json_object_get(res, "account")), "123456789012");
	assert_string_equal(json_string_value(json_object_get(res, "arn")),
			    "arn:aws:iam::123456789012:user/dr");
	json_decref(res);
	assert_int_equal(run_action(&r, "aws.sns.publish",
				    "{\"topic_arn\": \"arn:aws:sns:us-east-1:1:alerts\", "
				    "\"subject\": \"drill\", \"message\": \"hi\"}",
				    0, &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "message_id")),
			    "94f20ce6-13c5-43a0-9a9e-ca52d816e90b");
	json_decref(res);
	assert_int_equal(run_action(&r, "aws.cloudwatch.put_metric_data",
				    "{\"namespace\": \"drbook\", \"name\": \"rto_s\", "
				    "\"value\": 0.1, \"unit\": \"Seconds\", "
				    "\"dimensions\": {\"runbook\": \"x\", \"n\": 2}}",
				    0, &res, &e),
			 0);
	assert_int_equal(json_object_size(res), 0);
	p = json_object_get(json_object_get(json_array_get(r.records, 2), "request"), "params");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(r.records, 2), "service")),
	    "cloudwatch");
	assert_true(json_real_value(json_object_get(p, "MetricData.member.1.Value")) == 0.1);
	assert_string_equal(
	    json_string_value(json_object_get(p, "MetricData.member.1.Dimensions.member.1.Name")),
	    "runbook");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_array_get(r.records, 2), "request"), "url")),
			    "https://monitoring.us-east-1.amazonaws.com/");
	json_decref(res);
	replay_seam_free(&r);
}

/* A 200 that is not XML is an invalid answer, not a crash or an empty result. */
static void test_malformed_answer(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, "<DescribeDBInstancesResponse><unclosed>", NULL, 1);
	replay_seam_add(&r, 200, "{not json", NULL, 1);
	assert_int_equal(
	    run_action(&r, "aws.rds.describe_db_instance", "{\"id\": \"x\"}", 0, &res, &e),
	    DRB_EINVAL);
	assert_non_null(strstr(e.msg, "invalid XML answer"));
	assert_int_equal(run_action(&r, "aws.ecs.describe_service",
				    "{\"cluster\": \"c\", \"service\": \"s\"}", 0, &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "invalid JSON answer"));
	replay_seam_free(&r);
}

/* External entities are never fetched or expanded: an answer cannot read local files. */
static void test_xml_no_external_entities(void **state)
{
	char buf[256];
	xmlDoc *doc = NULL;
	drb_err e = {0};
	static const char xxe[] =
	    "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">"
	    "<!ENTITY y SYSTEM \"http://127.0.0.1:1/x\">]><r><Code>&x;&y;</Code></r>";

	(void)state;
	assert_int_equal(drb_awsx_parse(xxe, strlen(xxe), &doc, &e), 0);
	drb_awsx_text(drb_awsx_find(drb_awsx_root(doc), "Code"), NULL, buf, sizeof(buf));
	assert_null(strstr(buf, "root:"));
	drb_awsx_free(doc);
}

/* Every action of DESIGN.md's catalog v1 is there with its mode; misspelt arguments and
 * mutating actions in a read-only context are refused before any call. */
static void test_catalog(void **state)
{
	static const struct {
		const char *name;
		drb_action_mode mode;
	} cat[] = {
	    {"aws.sts.get_caller_identity", DRB_ACT_RO},
	    {"aws.rds.describe_db_instance", DRB_ACT_RO},
	    {"aws.rds.promote_read_replica", DRB_ACT_MUT},
	    {"aws.rds.reboot_db_instance", DRB_ACT_MUT},
	    {"aws.rds.failover_db_cluster", DRB_ACT_MUT},
	    {"aws.rds.describe_db_snapshots", DRB_ACT_RO},
	    {"aws.rds.restore_db_instance_to_point_in_time", DRB_ACT_MUT},
	    {"aws.rds.restore_db_instance_from_snapshot", DRB_ACT_MUT},
	    {"aws.route53.get_record", DRB_ACT_RO},
	    {"aws.route53.upsert_record", DRB_ACT_MUT},
	    {"aws.route53.get_health_check_status", DRB_ACT_RO},
	    {"aws.route53.update_health_check", DRB_ACT_MUT},
	    {"aws.ecs.describe_service", DRB_ACT_RO},
	    {"aws.ecs.update_service", DRB_ACT_MUT},
	    {"aws.ecs.list_tasks", DRB_ACT_RO},
	    {"aws.ecs.stop_task", DRB_ACT_MUT},
	    {"aws.sns.publish", DRB_ACT_MUT},
	    {"aws.cloudwatch.put_metric_data", DRB_ACT_MUT},
	};
	replay_seam r;
	drb_action_ctx ctx;
	json_t *res = NULL, *args;
	drb_err e = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cat) / sizeof(cat[0]); i++) {
		const drb_action *a = aws_action(cat[i].name);

		assert_non_null(a);
		assert_int_equal(a->mode, cat[i].mode);
		assert_non_null(a->fn);
		assert_null(a->positional);
	}
	replay_seam_init(&r);
	assert_int_equal(run_action(&r, "aws.rds.describe_db_instance",
				    "{\"id\": \"x\", \"regoin\": \"eu-west-1\"}", 0, &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "regoin"));
	memset(&ctx, 0, sizeof(ctx));
	ctx.seam = &r.seam;
	ctx.read_only = 1;
	args = json_pack("{s:s}", "id", "x");
	assert_int_equal(aws_action("aws.rds.promote_read_replica")->fn(&ctx, args, &res, &e),
			 DRB_EDENIED);
	assert_non_null(strstr(e.msg, "mutating"));
	json_decref(args);
	/* A connection that does not exist is named. */
	assert_int_equal(run_action(&r, "aws.sts.get_caller_identity", "{\"connection\": \"nope\"}",
				    0, &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "nope"));
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

/* A deadline already passed: no call at all. */
static void test_deadline_passed(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	assert_int_equal(run_action(&r, "aws.rds.describe_db_instance", "{\"id\": \"x\"}",
				    drb_mono_now() - 1, &res, &e),
			 DRB_ETIMEOUT);
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rds_describe_primary),
	    cmocka_unit_test(test_rds_describe_replica),
	    cmocka_unit_test(test_rds_snapshots_paged_sorted),
	    cmocka_unit_test(test_rds_failover_cluster),
	    cmocka_unit_test(test_route53_get_record),
	    cmocka_unit_test(test_route53_get_record_missing),
	    cmocka_unit_test(test_route53_wildcard_alias),
	    cmocka_unit_test(test_route53_upsert_wait),
	    cmocka_unit_test(test_route53_upsert_wait_deadline),
	    cmocka_unit_test(test_route53_health_status),
	    cmocka_unit_test(test_route53_ids_checked),
	    cmocka_unit_test(test_ecs_describe),
	    cmocka_unit_test(test_ecs_missing),
	    cmocka_unit_test(test_ecs_list_tasks_paged),
	    cmocka_unit_test(test_query_small_actions),
	    cmocka_unit_test(test_malformed_answer),
	    cmocka_unit_test(test_xml_no_external_entities),
	    cmocka_unit_test(test_catalog),
	    cmocka_unit_test(test_deadline_passed),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
