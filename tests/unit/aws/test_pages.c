/* Listings read every page (drb_awsi_pages), against recorded answers through a replaying
 * seam: the JSON protocols (ECS ListTasks, ECR DescribeImages, Application Auto Scaling
 * DescribeScalableTargets) and the Query protocol's two item lists of one answer (CloudWatch
 * DescribeAlarms); RDS, EC2 and ElastiCache pages are in test_xml.c, test_catalog_rds.c and
 * test_infra_xml.c. Each next request carries the token of the answer before it, the items
 * of all pages come back in order (through the action's mapping where it has one), an empty
 * token ends the listing, and an error on a later page is the action's error with nothing
 * half-returned. */
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

static int setup(void **state)
{
	(void)state;
	aws_env_isolate();
	return 0;
}

/* The JSON body field name of the i-th recorded request, or NULL. */
static const json_t *body_field(replay_seam *r, size_t i, const char *name)
{
	const json_t *req = json_object_get(json_array_get(r->records, i), "request");

	return json_object_get(json_object_get(req, "body"), name);
}

static void test_ecs_list_tasks_pages(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e;
	const json_t *tasks;

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, "{\"taskArns\":[\"t1\",\"t2\"],\"nextToken\":\"p2\"}", "r1", 1);
	replay_seam_add(&r, 200, "{\"taskArns\":[\"t3\"],\"nextToken\":\"p3\"}", "r2", 1);
	replay_seam_add(&r, 200, "{\"taskArns\":[\"t4\"],\"nextToken\":\"\"}", "r3", 1);
	assert_int_equal(run_action(&r, "aws.ecs.list_tasks",
				    "{\"cluster\":\"prod-us\",\"service\":\"api\"}", 0, &res, &e),
			 0);
	assert_int_equal(r.calls, 3);
	assert_null(body_field(&r, 0, "nextToken"));
	assert_string_equal(json_string_value(body_field(&r, 1, "nextToken")), "p2");
	assert_string_equal(json_string_value(body_field(&r, 2, "nextToken")), "p3");
	/* the other fields go with every page */
	assert_string_equal(json_string_value(body_field(&r, 2, "serviceName")), "api");
	assert_string_equal(json_string_value(body_field(&r, 2, "cluster")), "prod-us");
	tasks = json_object_get(res, "tasks");
	assert_int_equal(json_array_size(tasks), 4);
	assert_string_equal(json_string_value(json_array_get(tasks, 0)), "t1");
	assert_string_equal(json_string_value(json_array_get(tasks, 3)), "t4");
	json_decref(res);
	replay_seam_free(&r);
}

static void test_ecr_images_mapped_across_pages(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e;
	const json_t *imgs;

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200,
			"{\"imageDetails\":[{\"imageDigest\":\"sha256:a\",\"imageTags\":[\"v1\"]}],"
			"\"nextToken\":\"n\"}",
			"r1", 1);
	replay_seam_add(&r, 200, "{\"imageDetails\":[{\"imageDigest\":\"sha256:b\"}]}", "r2", 1);
	assert_int_equal(
	    run_action(&r, "aws.ecr.describe_images", "{\"repository\":\"api\"}", 0, &res, &e), 0);
	assert_int_equal(r.calls, 2);
	assert_string_equal(json_string_value(body_field(&r, 1, "nextToken")), "n");
	imgs = json_object_get(res, "images");
	assert_int_equal(json_array_size(imgs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(imgs, 1), "digest")),
			    "sha256:b");
	json_decref(res);
	replay_seam_free(&r);
}

static void test_error_on_a_later_page(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e;

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200,
			"{\"ScalableTargets\":[{\"ResourceId\":\"service/c/api\",\"MinCapacity\":2}],"
			"\"NextToken\":\"x\"}",
			"r1", 1);
	replay_seam_add(&r, 400,
			"{\"__type\":\"ValidationException\",\"message\":\"bad token\"}", "r2", 1);
	assert_int_not_equal(run_action(&r, "aws.appautoscaling.describe_scalable_targets",
					"{\"cluster\":\"c\",\"service\":\"api\"}", 0, &res, &e),
			     0);
	assert_null(res);
	assert_string_equal(json_string_value(body_field(&r, 1, "NextToken")), "x");
	assert_non_null(strstr(e.msg, "DescribeScalableTargets"));
	assert_non_null(strstr(e.msg, "bad token"));
	replay_seam_free(&r);
}

static const char *query_param(replay_seam *r, size_t i, const char *name)
{
	const json_t *req = json_object_get(json_array_get(r->records, i), "request");

	return json_string_value(json_object_get(json_object_get(req, "params"), name));
}

#define CW_NS "xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\""

static void test_cloudwatch_alarms_two_lists_two_pages(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e;
	const json_t *alarms;

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200,
			"<DescribeAlarmsResponse " CW_NS "><DescribeAlarmsResult><MetricAlarms>"
			"<member><AlarmName>a-ok</AlarmName><StateValue>OK</StateValue></member>"
			"<member><AlarmName>a-bad</AlarmName><StateValue>ALARM</StateValue>"
			"</member></MetricAlarms><NextToken>t 2</NextToken>"
			"</DescribeAlarmsResult></DescribeAlarmsResponse>",
			"r1", 1);
	replay_seam_add(&r, 200,
			"<DescribeAlarmsResponse " CW_NS "><DescribeAlarmsResult><MetricAlarms/>"
			"<CompositeAlarms><member><AlarmName>c-bad</AlarmName>"
			"<StateValue>ALARM</StateValue></member></CompositeAlarms>"
			"</DescribeAlarmsResult></DescribeAlarmsResponse>",
			"r2", 1);
	assert_int_equal(run_action(&r, "aws.cloudwatch.describe_alarms",
				    "{\"state_value\":\"ALARM\"}", 0, &res, &e),
			 0);
	assert_int_equal(r.calls, 2);
	assert_null(query_param(&r, 0, "NextToken"));
	assert_string_equal(query_param(&r, 1, "NextToken"), "t 2");
	assert_string_equal(query_param(&r, 1, "AlarmTypes.member.2"), "CompositeAlarm");
	/* moto ignores StateValue beside names: the filter holds in drbook too */
	alarms = json_object_get(res, "alarms");
	assert_int_equal(json_array_size(alarms), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(alarms, 0), "name")),
			    "a-bad");
	assert_string_equal(json_string_value(json_object_get(json_array_get(alarms, 1), "name")),
			    "c-bad");
	json_decref(res);
	replay_seam_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ecs_list_tasks_pages),
	    cmocka_unit_test(test_ecr_images_mapped_across_pages),
	    cmocka_unit_test(test_error_on_a_later_page),
	    cmocka_unit_test(test_cloudwatch_alarms_two_lists_two_pages),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
