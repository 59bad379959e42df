/* The EC2, S3 and ElastiCache actions against recorded answers through a replaying seam (as
 * test_xml.c does for the first catalog): the answer shapes moto does not produce (a rule's
 * prefix in its three places, an EC2 answer in two pages, a revoke answered 200 with the rule
 * listed as unknown, ElastiCache's already-exists fault), the request as it goes on the wire
 * (EC2's flattened lists, S3's virtual-hosted address) and the S3 header answers. */
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

static const json_t *req_of(replay_seam *r, size_t i)
{
	return json_object_get(json_array_get(r->records, i), "request");
}

static const char *param(replay_seam *r, size_t i, const char *name)
{
	return json_string_value(json_object_get(json_object_get(req_of(r, i), "params"), name));
}

/* Queues an S3 answer whose fields are headers (HEAD, PUT). */
static void add_with_headers(replay_seam *r, long status, const char *headers_json)
{
	json_t *a =
	    json_pack("{s:i, s:s, s:n, s:i, s:o}", "status", (int)status, "body", "", "request_id",
		      "attempts", 1, "headers", json_loads(headers_json, 0, NULL));

	assert_non_null(a);
	r->answers[r->n_answers++] = a;
}

static const char REPLICATION[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ReplicationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Role>arn:aws:iam::111122223333:role/crr</Role>"
    "<Rule><ID>new</ID><Priority>2</Priority><Filter><Prefix>data/</Prefix></Filter>"
    "<Status>Enabled</Status><DeleteMarkerReplication><Status>Enabled</Status>"
    "</DeleteMarkerReplication><Destination><Bucket>arn:aws:s3:::dst-eu</Bucket>"
    "<Account>444455556666</Account><StorageClass>STANDARD_IA</StorageClass>"
    "<ReplicationTime><Status>Enabled</Status><Time><Minutes>15</Minutes></Time>"
    "</ReplicationTime></Destination></Rule>"
    "<Rule><ID>tagged</ID><Priority>1</Priority><Filter><And><Prefix>logs/</Prefix>"
    "<Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Status>Disabled</Status>"
    "<Destination><Bucket>arn:aws:s3:::dst-ap</Bucket></Destination></Rule>"
    "<Rule><ID>v1</ID><Prefix>old/</Prefix><Status>Enabled</Status>"
    "<Destination><Bucket>arn:aws:s3:::dst-v1</Bucket></Destination></Rule>"
    "</ReplicationConfiguration>";

static void test_s3_replication(void **state)
{
	replay_seam r;
	json_t *res = NULL, *rules, *x;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, REPLICATION, NULL, 1);
	assert_int_equal(run_action(&r, "aws.s3.get_bucket_replication",
				    "{\"bucket\": \"prod-assets\", \"region\": \"us-east-1\"}", 0,
				    &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(req_of(&r, 0), "url")),
			    "https://prod-assets.s3.us-east-1.amazonaws.com/?replication=");
	assert_string_equal(json_string_value(json_object_get(res, "role")),
			    "arn:aws:iam::111122223333:role/crr");
	rules = json_object_get(res, "rules");
	assert_int_equal(json_array_size(rules), 3);
	x = json_array_get(rules, 0);
	assert_string_equal(json_string_value(json_object_get(x, "prefix")), "data/");
	assert_int_equal(json_integer_value(json_object_get(x, "priority")), 2);
	assert_string_equal(json_string_value(json_object_get(x, "destination_bucket_name")),
			    "dst-eu");
	assert_string_equal(json_string_value(json_object_get(x, "destination_account")),
			    "444455556666");
	assert_string_equal(json_string_value(json_object_get(x, "replication_time")), "Enabled");
	assert_string_equal(json_string_value(json_object_get(x, "delete_marker_replication")),
			    "Enabled");
	x = json_array_get(rules, 1);
	assert_string_equal(json_string_value(json_object_get(x, "prefix")), "logs/");
	assert_string_equal(json_string_value(json_object_get(x, "status")), "Disabled");
	assert_true(json_is_null(json_object_get(x, "storage_class")));
	x = json_array_get(rules, 2);
	assert_string_equal(json_string_value(json_object_get(x, "prefix")), "old/");
	assert_true(json_is_null(json_object_get(x, "priority")));
	json_decref(res);
	replay_seam_free(&r);
}

static void test_s3_head_and_put(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	add_with_headers(
	    &r, 200,
	    "{\"etag\": \"\\\"abc\\\"\", \"content-length\": \"12\", "
	    "\"last-modified\": \"Tue, 29 Feb 2028 23:59:58 GMT\", "
	    "\"x-amz-replication-status\": \"REPLICA\", \"x-amz-version-id\": \"v9\", "
	    "\"x-amz-meta-written-at\": \"2028-02-29\", \"content-type\": \"text/plain\"}");
	assert_int_equal(run_action(&r, "aws.s3.head_object",
				    "{\"bucket\": \"dst.eu\", \"key\": \"a b/c\", \"region\": "
				    "\"eu-west-1\", \"version_id\": \"v 9\"}",
				    0, &res, &e),
			 0);
	/* a dotted bucket goes path-style; the key and the version are percent-encoded */
	assert_string_equal(json_string_value(json_object_get(req_of(&r, 0), "url")),
			    "https://s3.eu-west-1.amazonaws.com/dst.eu/a%20b/c?versionId=v%209");
	assert_string_equal(json_string_value(json_object_get(req_of(&r, 0), "method")), "HEAD");
	assert_true(json_is_true(json_object_get(res, "exists")));
	assert_int_equal(json_integer_value(json_object_get(res, "size")), 12);
	assert_string_equal(json_string_value(json_object_get(res, "etag")), "abc");
	assert_string_equal(json_string_value(json_object_get(res, "last_modified")),
			    "2028-02-29T23:59:58Z");
	assert_string_equal(json_string_value(json_object_get(res, "replication_status")),
			    "REPLICA");
	assert_string_equal(json_string_value(json_object_get(res, "version_id")), "v9");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(res, "metadata"), "written-at")),
	    "2028-02-29");
	json_decref(res);
	replay_seam_free(&r);

	/* 404 to the object, 200 to the bucket: NotFound, or exists=false with missing_ok */
	replay_seam_init(&r);
	add_with_headers(&r, 404, "{}");
	add_with_headers(&r, 200, "{}");
	assert_int_equal(run_action(&r, "aws.s3.head_object",
				    "{\"bucket\": \"dst-eu\", \"key\": \"k\"}", 0, &res, &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "NotFound: no object 'k' in bucket dst-eu"));
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(r.records, 1), "operation")),
	    "HeadBucket");
	replay_seam_free(&r);
	replay_seam_init(&r);
	add_with_headers(&r, 404, "{}");
	add_with_headers(&r, 200, "{}");
	assert_int_equal(
	    run_action(&r, "aws.s3.head_object",
		       "{\"bucket\": \"dst-eu\", \"key\": \"k\", \"missing_ok\": true}", 0, &res,
		       &e),
	    0);
	assert_true(json_is_false(json_object_get(res, "exists")));
	assert_true(json_is_null(json_object_get(res, "etag")));
	json_decref(res);
	replay_seam_free(&r);
	/* 404 to both: the bucket is missing, whatever missing_ok says */
	replay_seam_init(&r);
	add_with_headers(&r, 404, "{}");
	add_with_headers(&r, 404, "{}");
	assert_int_equal(
	    run_action(&r, "aws.s3.head_object",
		       "{\"bucket\": \"dst-eu\", \"key\": \"k\", \"missing_ok\": true}", 0, &res,
		       &e),
	    DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "NoSuchBucket"));
	replay_seam_free(&r);

	replay_seam_init(&r);
	add_with_headers(&r, 200, "{\"etag\": \"\\\"e1\\\"\"}");
	assert_int_equal(run_action(&r, "aws.s3.put_object",
				    "{\"bucket\": \"src-us\", \"key\": \"m\", \"body\": \"x\"}", 0,
				    &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(res, "etag")), "e1");
	assert_true(json_is_null(json_object_get(res, "version_id")));
	assert_int_equal(json_integer_value(json_object_get(req_of(&r, 0), "bytes")), 1);
	json_decref(res);
	/* a mutating S3 action is refused in preflight, before anything is sent */
	{
		drb_action_ctx ctx;
		json_t *args = json_pack("{s:s, s:s}", "bucket", "src-us", "key", "m");

		memset(&ctx, 0, sizeof(ctx));
		ctx.seam = &r.seam;
		ctx.read_only = 1;
		assert_int_equal(aws_action("aws.s3.put_object")->fn(&ctx, args, &res, &e),
				 DRB_EDENIED);
		json_decref(args);
	}
	assert_int_equal(r.calls, 1);
	replay_seam_free(&r);
}

static const char SG_PAGE1[] =
    "<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    "<requestId>r1</requestId><securityGroupInfo><item><ownerId>1</ownerId>"
    "<groupId>sg-1</groupId><groupName>db</groupName><groupDescription>d</groupDescription>"
    "<vpcId>vpc-1</vpcId><ipPermissions><item><ipProtocol>tcp</ipProtocol>"
    "<fromPort>5432</fromPort><toPort>5432</toPort><groups><item><userId>1</userId>"
    "<groupId>sg-2</groupId></item></groups><ipRanges><item><cidrIp>10.0.0.0/8</cidrIp>"
    "</item></ipRanges><ipv6Ranges><item><cidrIpv6>2001:db8::/32</cidrIpv6></item>"
    "</ipv6Ranges><prefixListIds/></item></ipPermissions><ipPermissionsEgress/></item>"
    "</securityGroupInfo><nextToken>tok 2</nextToken></DescribeSecurityGroupsResponse>";
static const char SG_PAGE2[] =
    "<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    "<securityGroupInfo><item><groupId>sg-2</groupId><groupName>app</groupName>"
    "<ipPermissions/></item></securityGroupInfo></DescribeSecurityGroupsResponse>";

static void test_ec2_security_groups(void **state)
{
	replay_seam r;
	json_t *res = NULL, *g, *rule;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 200, SG_PAGE1, NULL, 1);
	replay_seam_add(&r, 200, SG_PAGE2, NULL, 1);
	assert_int_equal(run_action(&r, "aws.ec2.describe_security_groups",
				    "{\"group_ids\": [\"sg-1\", \"sg-2\"], \"vpc_id\": \"vpc-1\", "
				    "\"filters\": {\"tag:Name\": [\"a\", \"b\"]}, \"region\": "
				    "\"eu-west-1\"}",
				    0, &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(req_of(&r, 0), "url")),
			    "https://ec2.eu-west-1.amazonaws.com/");
	assert_string_equal(param(&r, 0, "GroupId.1"), "sg-1");
	assert_string_equal(param(&r, 0, "GroupId.2"), "sg-2");
	assert_string_equal(param(&r, 0, "Filter.1.Name"), "vpc-id");
	assert_string_equal(param(&r, 0, "Filter.1.Value.1"), "vpc-1");
	assert_string_equal(param(&r, 0, "Filter.2.Name"), "tag:Name");
	assert_string_equal(param(&r, 0, "Filter.2.Value.2"), "b");
	assert_null(param(&r, 0, "NextToken"));
	assert_string_equal(param(&r, 1, "NextToken"), "tok 2");
	assert_int_equal(json_array_size(json_object_get(res, "groups")), 2);
	g = json_array_get(json_object_get(res, "groups"), 0);
	rule = json_array_get(json_object_get(g, "ingress"), 0);
	assert_int_equal(json_integer_value(json_object_get(rule, "from_port")), 5432);
	assert_int_equal(json_array_size(json_object_get(rule, "cidrs")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(rule, "cidrs"), 1)),
			    "2001:db8::/32");
	assert_string_equal(json_string_value(json_array_get(json_object_get(rule, "groups"), 0)),
			    "sg-2");
	g = json_array_get(json_object_get(res, "groups"), 1);
	assert_true(json_is_null(json_object_get(g, "vpc_id")));
	assert_int_equal(json_array_size(json_object_get(g, "ingress")), 0);
	json_decref(res);
	replay_seam_free(&r);

	/* a list item that is not a string is refused before anything is sent */
	replay_seam_init(&r);
	assert_int_equal(
	    run_action(&r, "aws.ec2.describe_security_groups", "{\"group_ids\": [1]}", 0, &res, &e),
	    DRB_EINVAL);
	assert_non_null(strstr(e.msg, "group_ids[1]"));
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

static void test_ec2_revoke_unknown(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	/* AWS may answer a revoke of a rule that is not there with 200, the rule listed as
	 * unknown: nothing changed. */
	replay_seam_init(&r);
	replay_seam_add(&r, 200,
			"<RevokeSecurityGroupIngressResponse xmlns=\"http://ec2.amazonaws.com/doc/"
			"2016-11-15/\"><return>true</return><unknownIpPermissionSet><item>"
			"<ipProtocol>tcp</ipProtocol></item></unknownIpPermissionSet>"
			"</RevokeSecurityGroupIngressResponse>",
			NULL, 1);
	assert_int_equal(run_action(&r, "aws.ec2.revoke_security_group_ingress",
				    "{\"group_id\": \"sg-1\", \"protocol\": \"-1\", \"cidr\": "
				    "\"2001:db8::/32\"}",
				    0, &res, &e),
			 0);
	assert_true(json_is_false(json_object_get(res, "changed")));
	assert_string_equal(param(&r, 0, "IpPermissions.1.Ipv6Ranges.1.CidrIpv6"), "2001:db8::/32");
	assert_null(param(&r, 0, "IpPermissions.1.FromPort"));
	json_decref(res);
	replay_seam_free(&r);

	/* tcp without ports: refused before anything is sent */
	replay_seam_init(&r);
	assert_int_equal(run_action(&r, "aws.ec2.authorize_security_group_ingress",
				    "{\"group_id\": \"sg-1\", \"protocol\": \"tcp\", \"cidr\": "
				    "\"10.0.0.0/8\"}",
				    0, &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "needs from_port and to_port"));
	assert_int_equal(r.calls, 0);
	replay_seam_free(&r);
}

static const char RG_EXISTS[] =
    "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error>"
    "<Type>Sender</Type><Code>ReplicationGroupAlreadyExists</Code><Message>Replication group "
    "already exists</Message></Error><RequestId>x</RequestId></ErrorResponse>";
static const char RG_DESCRIBE[] =
    "<DescribeReplicationGroupsResponse xmlns=\"http://elasticache.amazonaws.com/doc/"
    "2015-02-02/\"><DescribeReplicationGroupsResult><ReplicationGroups><ReplicationGroup>"
    "<ReplicationGroupId>cache-eu</ReplicationGroupId><Status>modifying</Status>"
    "<MemberClusters><ClusterId>cache-eu-001</ClusterId><ClusterId>cache-eu-002</ClusterId>"
    "</MemberClusters><NodeGroups><NodeGroup><NodeGroupId>0001</NodeGroupId>"
    "<PrimaryEndpoint><Address>master.x</Address><Port>6379</Port></PrimaryEndpoint>"
    "<ReaderEndpoint><Address>replica.x</Address><Port>6379</Port></ReaderEndpoint>"
    "</NodeGroup></NodeGroups><AutomaticFailover>enabling</AutomaticFailover>"
    "<ClusterEnabled>false</ClusterEnabled><CacheNodeType>cache.m7g.large</CacheNodeType>"
    "</ReplicationGroup></ReplicationGroups></DescribeReplicationGroupsResult>"
    "</DescribeReplicationGroupsResponse>";

static void test_elasticache_exists(void **state)
{
	replay_seam r;
	json_t *res = NULL;
	drb_err e = {0};

	(void)state;
	replay_seam_init(&r);
	replay_seam_add(&r, 400, RG_EXISTS, "x", 1);
	replay_seam_add(&r, 200, RG_DESCRIBE, NULL, 1);
	assert_int_equal(run_action(&r, "aws.elasticache.create_replication_group",
				    "{\"id\": \"cache-eu\", \"num_cache_clusters\": \"2\", "
				    "\"preferred_cache_cluster_azs\": [\"eu-west-1a\", "
				    "\"eu-west-1b\"], \"transit_encryption\": \"true\"}",
				    0, &res, &e),
			 0);
	assert_string_equal(param(&r, 0, "ReplicationGroupDescription"), "drbook");
	assert_string_equal(param(&r, 0, "PreferredCacheClusterAZs.AvailabilityZone.2"),
			    "eu-west-1b");
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(req_of(&r, 0), "params"), "NumCacheClusters")),
			 2);
	assert_true(json_is_true(
	    json_object_get(json_object_get(req_of(&r, 0), "params"), "TransitEncryptionEnabled")));
	assert_string_equal(param(&r, 1, "ReplicationGroupId"), "cache-eu");
	assert_true(json_is_false(json_object_get(res, "created")));
	assert_string_equal(json_string_value(json_object_get(res, "status")), "modifying");
	assert_int_equal(json_array_size(json_object_get(res, "member_clusters")), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(res, "reader_endpoint"), "address")),
	    "replica.x");
	assert_true(json_is_null(json_object_get(res, "configuration_endpoint")));
	assert_true(json_is_null(json_object_get(res, "engine")));
	json_decref(res);
	replay_seam_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_s3_replication),	cmocka_unit_test(test_s3_head_and_put),
	    cmocka_unit_test(test_ec2_security_groups), cmocka_unit_test(test_ec2_revoke_unknown),
	    cmocka_unit_test(test_elasticache_exists),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
