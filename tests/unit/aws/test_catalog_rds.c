/* The catalog additions for RDS, Application Auto Scaling, ECR and ECS task definitions against
 * recorded answers through a replaying seam (no network, no credentials): what goes on the wire
 * (Query lists as PARAM.MEMBER.N, tag maps as Tags.Tag.N.Key/Value, JSON 1.1 bodies), what is
 * refused before any call, the idempotent paths (an existing replica or snapshot is the answer, a
 * name taken by something else is not), paging and the order of events, JSON timestamps.
 * The answers follow the shapes of the AWS API references, written for these tests. */
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

#define RDS_NS "xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\""

static const char NOT_FOUND[] = "<ErrorResponse " RDS_NS "><Error><Type>Sender</Type>"
				"<Code>DBInstanceNotFound</Code><Message>DBInstance prod-db-r "
				"not found.</Message></Error><RequestId>r1</RequestId>"
				"</ErrorResponse>";

static const char REPLICA[] =
    "<CreateDBInstanceReadReplicaResponse " RDS_NS "><CreateDBInstanceReadReplicaResult>"
    "<DBInstance><DBInstanceIdentifier>prod-db-r</DBInstanceIdentifier>"
    "<DBInstanceStatus>creating</DBInstanceStatus><Engine>postgres</Engine>"
    "<DBInstanceClass>db.r6g.large</DBInstanceClass><MultiAZ>false</MultiAZ>"
    "<VpcSecurityGroups><VpcSecurityGroupMembership><VpcSecurityGroupId>sg-1"
    "</VpcSecurityGroupId><Status>active</Status></VpcSecurityGroupMembership>"
    "<VpcSecurityGroupMembership><VpcSecurityGroupId>sg-2</VpcSecurityGroupId>"
    "<Status>active</Status></VpcSecurityGroupMembership></VpcSecurityGroups>"
    "<DBSubnetGroup><DBSubnetGroupName>db-private</DBSubnetGroupName></DBSubnetGroup>"
    "<DBParameterGroups><DBParameterGroup><DBParameterGroupName>pg16-dr"
    "</DBParameterGroupName><ParameterApplyStatus>applying</ParameterApplyStatus>"
    "</DBParameterGroup></DBParameterGroups>"
    "<ReadReplicaSourceDBInstanceIdentifier>arn:aws:rds:us-east-1:1:db:prod-db"
    "</ReadReplicaSourceDBInstanceIdentifier>"
    "<DBInstanceArn>arn:aws:rds:eu-west-1:1:db:prod-db-r</DBInstanceArn>"
    "<TagList><Tag><Key>team</Key><Value>dr</Value></Tag></TagList>"
    "</DBInstance></CreateDBInstanceReadReplicaResult></CreateDBInstanceReadReplicaResponse>";

static int setup(void **state)
{
	(void)state;
	aws_env_isolate();
	return 0;
}

static const json_t *params_of_call(replay_seam *r, size_t i)
{
	return json_object_get(json_object_get(json_array_get(r->records, i), "request"), "params");
}

static const char *pstr(const json_t *p, const char *k)
{
	return json_string_value(json_object_get(p, k));
}

/* A new replica: looked up first (not there), then created with every placement argument
 * encoded as botocore does; the result reads security groups, groups and tags back. */
static void test_read_replica_wire(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	const json_t *p;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 404, NOT_FOUND, NULL, 1);
	replay_seam_add(&r, 200, REPLICA, NULL, 1);
	assert_int_equal(
	    run_action(
		&r, "aws.rds.create_db_instance_read_replica",
		"{\"id\": \"prod-db-r\", \"source\": \"arn:aws:rds:us-east-1:1:db:prod-db\", "
		"\"source_region\": \"us-east-1\", \"region\": \"eu-west-1\", "
		"\"vpc_security_group_ids\": [\"sg-1\", \"sg-2\"], "
		"\"db_subnet_group\": \"db-private\", \"db_parameter_group\": \"pg16-dr\", "
		"\"multi_az\": \"false\", \"tags\": {\"team\": \"dr\", \"n\": 2}}",
		0, &res, &e),
	    0);
	assert_int_equal(r.calls, 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(r.records, 0), "operation")),
	    "DescribeDBInstances");
	p = params_of_call(&r, 1);
	assert_string_equal(pstr(p, "DBInstanceIdentifier"), "prod-db-r");
	assert_string_equal(pstr(p, "SourceDBInstanceIdentifier"),
			    "arn:aws:rds:us-east-1:1:db:prod-db");
	assert_string_equal(pstr(p, "VpcSecurityGroupIds.VpcSecurityGroupId.1"), "sg-1");
	assert_string_equal(pstr(p, "VpcSecurityGroupIds.VpcSecurityGroupId.2"), "sg-2");
	assert_string_equal(pstr(p, "DBSubnetGroupName"), "db-private");
	assert_string_equal(pstr(p, "DBParameterGroupName"), "pg16-dr");
	assert_true(json_is_false(json_object_get(p, "MultiAZ")));
	assert_string_equal(pstr(p, "Tags.Tag.1.Key"), "team");
	assert_string_equal(pstr(p, "Tags.Tag.1.Value"), "dr");
	assert_string_equal(pstr(p, "Tags.Tag.2.Key"), "n");
	assert_string_equal(pstr(p, "Tags.Tag.2.Value"), "2");
	assert_null(json_object_get(p, "SourceRegion"));
	assert_null(json_object_get(p, "PreSignedUrl"));
	assert_string_equal(json_string_value(json_object_get(res, "instance_class")),
			    "db.r6g.large");
	assert_int_equal(json_array_size(json_object_get(res, "vpc_security_group_ids")), 2);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(res, "vpc_security_group_ids"), 1)),
	    "sg-2");
	assert_string_equal(json_string_value(json_object_get(res, "db_subnet_group")),
			    "db-private");
	assert_string_equal(json_string_value(json_object_get(res, "db_parameter_group")),
			    "pg16-dr");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(res, "tags"), "team")), "dr");
	json_decref(res);
	replay_seam_free(&r);
}

/* An existing replica of the same source (named by identifier or ARN) is the answer: no
 * create. An instance by that name replicating something else is an error. */
static void test_read_replica_idempotent(void **state)
{
	static const char other[] =
	    "<DescribeDBInstancesResponse " RDS_NS "><DescribeDBInstancesResult><DBInstances>"
	    "<DBInstance><DBInstanceIdentifier>prod-db-r</DBInstanceIdentifier>"
	    "<DBInstanceStatus>available</DBInstanceStatus></DBInstance></DBInstances>"
	    "</DescribeDBInstancesResult></DescribeDBInstancesResponse>";
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, REPLICA, NULL, 1); /* any answer holding the DBInstance */
	replay_seam_add(&r, 200, other, NULL, 1);
	assert_int_equal(run_action(&r, "aws.rds.create_db_instance_read_replica",
				    "{\"id\": \"prod-db-r\", \"source\": \"prod-db\"}", 0, &res,
				    &e),
			 0);
	assert_int_equal(r.calls, 1);
	assert_string_equal(json_string_value(json_object_get(res, "id")), "prod-db-r");
	json_decref(res);
	res = NULL;
	assert_int_equal(run_action(&r, "aws.rds.create_db_instance_read_replica",
				    "{\"id\": \"prod-db-r\", \"source\": \"prod-db\"}", 0, &res,
				    &e),
			 DRB_ERR);
	assert_int_equal(r.calls, 2);
	assert_non_null(strstr(e.msg, "not a read replica of prod-db"));
	assert_null(res);
	replay_seam_free(&r);
}

/* Refused before any call: a source in another region by identifier, an ARN of another
 * region than source_region, tags that are not {key: string}, a list item not a string. */
static void test_refused_before_sending(void **state)
{
	static const char *const bad[][2] = {
	    {"aws.rds.create_db_instance_read_replica",
	     "{\"id\": \"r\", \"source\": \"prod-db\", \"source_region\": \"us-west-2\"}"},
	    {"aws.rds.create_db_instance_read_replica",
	     "{\"id\": \"r\", \"source\": \"arn:aws:rds:us-east-1:1:db:prod-db\", "
	     "\"source_region\": \"us-west-2\"}"},
	    {"aws.rds.restore_db_instance_from_snapshot",
	     "{\"snapshot\": \"s\", \"target\": \"t\", \"tags\": {\"a\": [1]}}"},
	    {"aws.rds.restore_db_instance_from_snapshot",
	     "{\"snapshot\": \"s\", \"target\": \"t\", \"vpc_security_group_ids\": [1]}"},
	    {"aws.rds.restore_db_instance_from_snapshot",
	     "{\"snapshot\": \"s\", \"target\": \"t\", \"subnet_group\": \"a\", "
	     "\"db_subnet_group\": \"b\"}"},
	    {"aws.rds.modify_db_instance", "{\"id\": \"x\", \"apply_immediately\": true}"},
	    {"aws.rds.modify_db_instance", "{\"id\": \"x\", \"instance_clas\": \"db.t3.micro\"}"},
	    {"aws.rds.describe_events",
	     "{\"duration\": 5, \"start_time\": \"2026-01-01T00:00:00Z\"}"},
	    {"aws.rds.describe_events", "{\"duration\": 0}"},
	    {"aws.rds.describe_events", "{\"source_type\": \"db-thing\"}"},
	    {"aws.appautoscaling.register_scalable_target",
	     "{\"cluster\": \"c\", \"service\": \"s\", \"min_capacity\": 3, \"max_capacity\": 2}"},
	    {"aws.appautoscaling.register_scalable_target", "{\"min_capacity\": 3}"},
	    {"aws.appautoscaling.register_scalable_target",
	     "{\"service_namespace\": \"dynamodb\", \"resource_id\": \"table/t\"}"},
	    {"aws.appautoscaling.describe_scalable_targets",
	     "{\"resource_id\": \"service/c/s\", \"cluster\": \"c\", \"service\": \"s\"}"},
	    {"aws.ecr.describe_images", "{\"image_tag\": \"v1\"}"},
	};
	replay_seam r;
	json_t *res = NULL;

	(void)state;
	replay_seam_init(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		drb_err e = {0};

		assert_int_equal(run_action(&r, bad[i][0], bad[i][1], 0, &res, &e), DRB_EINVAL);
		assert_null(res);
		assert_true(e.msg[0]);
	}
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

/* modify: ApplyImmediately true unless told, an empty list sent as "PARAM=" as botocore
 * does; the pending class is read. */
static void test_modify(void **state)
{
	static const char ans[] =
	    "<ModifyDBInstanceResponse " RDS_NS "><ModifyDBInstanceResult><DBInstance>"
	    "<DBInstanceIdentifier>prod-db</DBInstanceIdentifier>"
	    "<DBInstanceStatus>modifying</DBInstanceStatus>"
	    "<DBInstanceClass>db.r6g.large</DBInstanceClass>"
	    "<PendingModifiedValues><DBInstanceClass>db.r6g.xlarge</DBInstanceClass>"
	    "</PendingModifiedValues><BackupRetentionPeriod>7</BackupRetentionPeriod>"
	    "</DBInstance></ModifyDBInstanceResult></ModifyDBInstanceResponse>";
	replay_seam r;
	json_t *res = NULL;
	const json_t *p;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, ans, NULL, 1);
	replay_seam_add(&r, 200, ans, NULL, 1);
	assert_int_equal(run_action(&r, "aws.rds.modify_db_instance",
				    "{\"id\": \"prod-db\", \"instance_class\": \"db.r6g.xlarge\", "
				    "\"backup_retention_days\": \"7\"}",
				    0, &res, &e),
			 0);
	p = params_of_call(&r, 0);
	assert_true(json_is_true(json_object_get(p, "ApplyImmediately")));
	assert_int_equal(json_integer_value(json_object_get(p, "BackupRetentionPeriod")), 7);
	assert_string_equal(json_string_value(json_object_get(res, "pending_instance_class")),
			    "db.r6g.xlarge");
	assert_string_equal(json_string_value(json_object_get(res, "status")), "modifying");
	json_decref(res);
	assert_int_equal(run_action(&r, "aws.rds.modify_db_instance",
				    "{\"id\": \"prod-db\", \"vpc_security_group_ids\": [], "
				    "\"apply_immediately\": false}",
				    0, &res, &e),
			 0);
	p = params_of_call(&r, 1);
	assert_string_equal(pstr(p, "VpcSecurityGroupIds"), "");
	assert_true(json_is_false(json_object_get(p, "ApplyImmediately")));
	json_decref(res);
	replay_seam_free(&r);
}

static const char SNAP_EXISTS[] =
    "<ErrorResponse " RDS_NS "><Error><Type>Sender</Type><Code>DBSnapshotAlreadyExists</Code>"
    "<Message>Cannot create the snapshot because a snapshot with the identifier s1 already "
    "exists.</Message></Error><RequestId>r2</RequestId></ErrorResponse>";

#define SNAP_OF(inst)                                                                              \
	"<DescribeDBSnapshotsResponse " RDS_NS "><DescribeDBSnapshotsResult><DBSnapshots>"         \
	"<DBSnapshot><DBSnapshotIdentifier>s1</DBSnapshotIdentifier>"                              \
	"<DBInstanceIdentifier>" inst "</DBInstanceIdentifier><Status>available</Status>"          \
	"<SnapshotType>manual</SnapshotType>"                                                      \
	"<SnapshotCreateTime>2026-11-25T03:00:00.123Z</SnapshotCreateTime>"                        \
	"<DBSnapshotArn>arn:aws:rds:us-east-1:1:snapshot:s1</DBSnapshotArn>"                       \
	"<PercentProgress>100</PercentProgress><Encrypted>true</Encrypted>"                        \
	"</DBSnapshot></DBSnapshots></DescribeDBSnapshotsResult></DescribeDBSnapshotsResponse>"

/* The snapshot asked for exists: of the same instance it is the answer, of another the
 * AlreadyExists error stands. */
static void test_snapshot_idempotent(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 400, SNAP_EXISTS, NULL, 1);
	replay_seam_add(&r, 200, SNAP_OF("prod-db"), NULL, 1);
	replay_seam_add(&r, 400, SNAP_EXISTS, NULL, 1);
	replay_seam_add(&r, 200, SNAP_OF("other-db"), NULL, 1);
	assert_int_equal(run_action(&r, "aws.rds.create_db_snapshot",
				    "{\"snapshot\": \"s1\", \"instance\": \"prod-db\"}", 0, &res,
				    &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "id")), "s1");
	assert_string_equal(json_string_value(json_object_get(res, "instance")), "prod-db");
	assert_string_equal(json_string_value(json_object_get(res, "arn")),
			    "arn:aws:rds:us-east-1:1:snapshot:s1");
	assert_int_equal(json_integer_value(json_object_get(res, "percent_progress")), 100);
	assert_true(json_is_true(json_object_get(res, "encrypted")));
	assert_string_equal(pstr(params_of_call(&r, 1), "DBSnapshotIdentifier"), "s1");
	json_decref(res);
	res = NULL;
	assert_int_equal(run_action(&r, "aws.rds.create_db_snapshot",
				    "{\"snapshot\": \"s1\", \"instance\": \"prod-db\"}", 0, &res,
				    &e),
			 DRB_ERR);
	assert_non_null(strstr(e.msg, "DBSnapshotAlreadyExists"));
	assert_null(res);
	assert_int_equal(r.calls, 4);
	replay_seam_free(&r);
}

/* Events: every page (Marker), sorted oldest first, SourceType defaulted, categories as
 * EventCategories.EventCategory.N, the start time normalised to UTC. */
static void test_events(void **state)
{
	static const char page1[] =
	    "<DescribeEventsResponse " RDS_NS "><DescribeEventsResult><Marker>m2</Marker><Events>"
	    "<Event><SourceIdentifier>prod-db</SourceIdentifier><SourceType>db-instance"
	    "</SourceType><Date>2026-11-25T03:10:00Z</Date><Message>Multi-AZ instance failover "
	    "completed</Message><EventCategories><EventCategory>failover</EventCategory>"
	    "</EventCategories></Event></Events></DescribeEventsResult></DescribeEventsResponse>";
	static const char page2[] =
	    "<DescribeEventsResponse " RDS_NS "><DescribeEventsResult><Events>"
	    "<Event><SourceIdentifier>prod-db</SourceIdentifier><SourceType>db-instance"
	    "</SourceType><Date>2026-11-25T03:05:00.5Z</Date><Message>Multi-AZ instance "
	    "failover started</Message><EventCategories><EventCategory>failover</EventCategory>"
	    "<EventCategory>availability</EventCategory></EventCategories></Event></Events>"
	    "</DescribeEventsResult></DescribeEventsResponse>";
	replay_seam r;
	json_t *res = NULL, *ev;
	const json_t *p;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, page1, NULL, 1);
	replay_seam_add(&r, 200, page2, NULL, 1);
	assert_int_equal(run_action(&r, "aws.rds.describe_events",
				    "{\"source_identifier\": \"prod-db\", "
				    "\"start_time\": \"2026-11-25T04:00:00+01:00\", "
				    "\"event_categories\": [\"failover\"]}",
				    0, &res, &e),
			 0);
	ev = json_object_get(res, "events");
	assert_int_equal(json_array_size(ev), 2);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(ev, 0), "message")),
			       "started"));
	assert_int_equal(json_array_size(json_object_get(json_array_get(ev, 0), "categories")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 1), "source")),
			    "prod-db");
	p = params_of_call(&r, 0);
	assert_string_equal(pstr(p, "SourceType"), "db-instance");
	assert_string_equal(pstr(p, "StartTime"), "2026-11-25T03:00:00Z");
	assert_string_equal(pstr(p, "EventCategories.EventCategory.1"), "failover");
	assert_null(json_object_get(p, "Marker"));
	assert_string_equal(pstr(params_of_call(&r, 1), "Marker"), "m2");
	json_decref(res);
	replay_seam_free(&r);
}

/* Auto scaling: the JSON body (cluster + service as the ECS resource id, the default
 * dimension, SuspendedState), the target read back, epoch seconds as RFC 3339. */
static void test_register_scalable_target(void **state)
{
	static const char listed[] =
	    "{\"ScalableTargets\": [{\"ServiceNamespace\": \"ecs\", \"ResourceId\": "
	    "\"service/prod/api\", \"ScalableDimension\": \"ecs:service:DesiredCount\", "
	    "\"MinCapacity\": 6, \"MaxCapacity\": 10, \"RoleARN\": \"arn:aws:iam::1:role/x\", "
	    "\"CreationTime\": 1764000000.25, \"SuspendedState\": "
	    "{\"DynamicScalingInSuspended\": true}, \"ScalableTargetARN\": \"arn:t\"}]}";
	replay_seam r;
	json_t *res = NULL;
	const json_t *body, *req;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, "{\"ScalableTargetARN\": \"arn:t\"}", NULL, 1);
	replay_seam_add(&r, 200, listed, NULL, 1);
	assert_int_equal(run_action(&r, "aws.appautoscaling.register_scalable_target",
				    "{\"cluster\": \"prod\", \"service\": \"api\", "
				    "\"min_capacity\": 6, \"max_capacity\": \"10\", "
				    "\"dynamic_scaling_in_suspended\": true, "
				    "\"region\": \"eu-west-1\"}",
				    0, &res, &e),
			 0);
	req = json_object_get(json_array_get(r.records, 0), "request");
	assert_string_equal(json_string_value(json_object_get(req, "target")),
			    "AnyScaleFrontendService.RegisterScalableTarget");
	assert_string_equal(json_string_value(json_object_get(req, "url")),
			    "https://application-autoscaling.eu-west-1.amazonaws.com/");
	body = json_object_get(req, "body");
	assert_string_equal(pstr(body, "ResourceId"), "service/prod/api");
	assert_string_equal(pstr(body, "ScalableDimension"), "ecs:service:DesiredCount");
	assert_string_equal(pstr(body, "ServiceNamespace"), "ecs");
	assert_int_equal(json_integer_value(json_object_get(body, "MaxCapacity")), 10);
	assert_true(json_is_true(
	    json_object_get(json_object_get(body, "SuspendedState"), "DynamicScalingInSuspended")));
	assert_null(
	    json_object_get(json_object_get(body, "SuspendedState"), "ScheduledScalingSuspended"));
	assert_int_equal(json_integer_value(json_object_get(res, "min_capacity")), 6);
	assert_string_equal(json_string_value(json_object_get(res, "created_at")),
			    "2025-11-24T16:00:00Z");
	assert_true(json_is_true(json_object_get(res, "dynamic_scaling_in_suspended")));
	assert_true(json_is_false(json_object_get(res, "scheduled_scaling_suspended")));
	body = json_object_get(json_object_get(json_array_get(r.records, 1), "request"), "body");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(body, "ResourceIds"), 0)),
	    "service/prod/api");
	json_decref(res);
	replay_seam_free(&r);
}

/* ECR: the host api.ecr.REGION, the image id in the body, timestamps; a missing image is
 * not_found with the AWS code in the message. */
static void test_ecr(void **state)
{
	static const char found[] =
	    "{\"imageDetails\": [{\"registryId\": \"1\", \"repositoryName\": \"api\", "
	    "\"imageDigest\": \"sha256:abc\", \"imageTags\": [\"v42\", \"latest\"], "
	    "\"imageSizeInBytes\": 1234, \"imagePushedAt\": 1764000000}]}";
	static const char missing[] =
	    "{\"__type\": \"ImageNotFoundException\", \"message\": \"The image with imageId "
	    "{imageDigest:'null', imageTag:'v0'} does not exist\"}";
	replay_seam r;
	json_t *res = NULL, *img;
	const json_t *req;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, found, NULL, 1);
	replay_seam_add(&r, 400, missing, NULL, 1);
	assert_int_equal(run_action(&r, "aws.ecr.describe_images",
				    "{\"repository\": \"api\", \"image_tag\": \"v42\", "
				    "\"region\": \"eu-west-1\"}",
				    0, &res, &e),
			 0);
	req = json_object_get(json_array_get(r.records, 0), "request");
	assert_string_equal(json_string_value(json_object_get(req, "url")),
			    "https://api.ecr.eu-west-1.amazonaws.com/");
	assert_string_equal(json_string_value(json_object_get(req, "target")),
			    "AmazonEC2ContainerRegistry_V20150921.DescribeImages");
	assert_string_equal(
	    pstr(json_array_get(json_object_get(json_object_get(req, "body"), "imageIds"), 0),
		 "imageTag"),
	    "v42");
	img = json_array_get(json_object_get(res, "images"), 0);
	assert_string_equal(json_string_value(json_object_get(img, "digest")), "sha256:abc");
	assert_int_equal(json_array_size(json_object_get(img, "tags")), 2);
	assert_string_equal(json_string_value(json_object_get(img, "pushed_at")),
			    "2025-11-24T16:00:00Z");
	assert_int_equal(json_integer_value(json_object_get(img, "size_bytes")), 1234);
	json_decref(res);
	res = NULL;
	assert_int_equal(run_action(&r, "aws.ecr.describe_images",
				    "{\"repository\": \"api\", \"image_tag\": \"v0\"}", 0, &res,
				    &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "ImageNotFoundException"));
	assert_null(res);
	replay_seam_free(&r);
}

/* A task definition's containers and size: ECS answers the task's cpu and memory as strings
 * ("256"), read as integers; a value that is not one is null; essential defaults to true. A
 * describe_service answer names its task definition. */
static void test_ecs_task_definition(void **state)
{
	static const char td[] =
	    "{\"taskDefinition\": {\"taskDefinitionArn\": "
	    "\"arn:aws:ecs:eu-west-1:1:task-definition/api:7\", \"family\": \"api\", "
	    "\"revision\": 7, \"status\": \"ACTIVE\", \"cpu\": \"256\", \"memory\": "
	    "\"0.5GB\", \"containerDefinitions\": [{\"name\": \"api\", \"image\": "
	    "\"1.dkr.ecr.eu-west-1.amazonaws.com/drbook/api:1\", \"cpu\": 256, "
	    "\"memory\": 512}, {\"name\": \"log\", \"image\": \"fluent-bit:2\", "
	    "\"essential\": false}]}}";
	static const char svc[] =
	    "{\"services\": [{\"status\": \"ACTIVE\", \"desiredCount\": 1, "
	    "\"runningCount\": 1, \"pendingCount\": 0, \"taskDefinition\": "
	    "\"arn:aws:ecs:eu-west-1:1:task-definition/api:7\", \"deployments\": []}], "
	    "\"failures\": []}";
	replay_seam r;
	json_t *res = NULL;
	const json_t *req, *c;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, td, NULL, 1);
	replay_seam_add(&r, 200, svc, NULL, 1);
	assert_int_equal(run_action(&r, "aws.ecs.describe_task_definition",
				    "{\"task_definition\": \"api:7\", \"region\": \"eu-west-1\"}",
				    0, &res, &e),
			 0);
	req = json_object_get(json_array_get(r.records, 0), "request");
	assert_string_equal(json_string_value(json_object_get(req, "target")),
			    "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition");
	assert_string_equal(pstr(json_object_get(req, "body"), "taskDefinition"), "api:7");
	assert_int_equal(json_integer_value(json_object_get(res, "cpu")), 256);
	assert_true(json_is_null(json_object_get(res, "memory")));
	assert_int_equal(json_integer_value(json_object_get(res, "revision")), 7);
	assert_int_equal(json_array_size(json_object_get(res, "containers")), 2);
	c = json_array_get(json_object_get(res, "containers"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "image")),
			    "1.dkr.ecr.eu-west-1.amazonaws.com/drbook/api:1");
	assert_true(json_is_true(json_object_get(c, "essential")));
	c = json_array_get(json_object_get(res, "containers"), 1);
	assert_true(json_is_false(json_object_get(c, "essential")));
	assert_true(json_is_null(json_object_get(c, "cpu")));
	json_decref(res);
	res = NULL;
	assert_int_equal(run_action(&r, "aws.ecs.describe_service",
				    "{\"cluster\": \"prod-eu\", \"service\": \"api\"}", 0, &res,
				    &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "task_definition")),
			    "arn:aws:ecs:eu-west-1:1:task-definition/api:7");
	json_decref(res);
	replay_seam_free(&r);
}

/* The additions are in the table with their modes and the resource they touch. */
static void test_catalog_additions(void **state)
{
	static const struct {
		const char *name, *resource;
		drb_action_mode mode;
	} cat[] = {
	    {"aws.rds.describe_events", "source_identifier", DRB_ACT_RO},
	    {"aws.rds.create_db_instance_read_replica", "id", DRB_ACT_MUT},
	    {"aws.rds.modify_db_instance", "id", DRB_ACT_MUT},
	    {"aws.rds.create_db_snapshot", "snapshot", DRB_ACT_MUT},
	    {"aws.rds.copy_db_snapshot", "target", DRB_ACT_MUT},
	    {"aws.appautoscaling.describe_scalable_targets", "resource_id", DRB_ACT_RO},
	    {"aws.appautoscaling.register_scalable_target", "resource_id", DRB_ACT_MUT},
	    {"aws.ecr.describe_images", "repository", DRB_ACT_RO},
	    {"aws.ecs.describe_task_definition", "task_definition", DRB_ACT_RO},
	};
	static const char *const placement[] = {"vpc_security_group_ids",
						"db_subnet_group",
						"db_parameter_group",
						"instance_class",
						"multi_az",
						"tags",
						NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(cat) / sizeof(cat[0]); i++) {
		const drb_action *a = aws_action(cat[i].name);

		assert_non_null(a);
		assert_int_equal(a->mode, cat[i].mode);
		assert_non_null(a->fn);
		assert_non_null(drb_schema_arg(a->schema, "region"));
		assert_string_equal(a->schema->resource, cat[i].resource);
		assert_non_null(drb_schema_arg(a->schema, cat[i].resource));
	}
	for (int i = 0; placement[i]; i++) {
		assert_non_null(drb_schema_arg(
		    aws_action("aws.rds.restore_db_instance_from_snapshot")->schema, placement[i]));
		assert_non_null(drb_schema_arg(
		    aws_action("aws.rds.restore_db_instance_to_point_in_time")->schema,
		    placement[i]));
		assert_non_null(drb_schema_arg(
		    aws_action("aws.rds.create_db_instance_read_replica")->schema, placement[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_replica_wire),
	    cmocka_unit_test(test_read_replica_idempotent),
	    cmocka_unit_test(test_refused_before_sending),
	    cmocka_unit_test(test_modify),
	    cmocka_unit_test(test_snapshot_idempotent),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_register_scalable_target),
	    cmocka_unit_test(test_ecr),
	    cmocka_unit_test(test_ecs_task_definition),
	    cmocka_unit_test(test_catalog_additions),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
