/* The AWS provider's action table: every aws.* action with its mode, its implementation (in
 * the service files) and its schema (arguments, result fields, the resource it touches).
 * drb_awsi_begin checks a call's arguments against the row of its action, so the service
 * files hold only what differs between actions: the request and the reading of the answer. */
#include <stddef.h>
#include <string.h>

#include "aws_int.h"

/* Every AWS action also takes these two (drb_awsi_begin reads them). */
#define COMMON                                                                                     \
	ARG("region", S, 0, NULL,                                                                  \
	    "AWS region; default: the connection's region, else AWS_REGION"),                      \
	    ARG("connection", S, 0, NULL,                                                          \
		"an aws connection from connections: (region, endpoint_url, profile)"),            \
	{                                                                                          \
		NULL, 0, 0, NULL, NULL, NULL                                                       \
	}
#define ARG(name, type, req, def, doc)                                                             \
	{                                                                                          \
		name, type, req, def, NULL, doc                                                    \
	}
#define FIELD(name, type, doc)                                                                     \
	{                                                                                          \
		name, type, doc                                                                    \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, NULL                                                                      \
	}
#define S DRB_T_STRING
#define I DRB_T_INT
#define B DRB_T_BOOL

/* The fields of every instance-returning RDS action (DESIGN.md catalog v1). */
static const drb_field_spec instance_fields[] = {
    FIELD("id", S, "DB instance identifier"),
    FIELD("status", S, "available, modifying, creating, rebooting, ..."),
    FIELD("engine", S, "postgres, aurora-postgresql, ..."),
    FIELD("multi_az", B, "has a synchronous standby in another AZ"),
    FIELD("az", S, "availability zone of the primary"),
    FIELD("secondary_az", S, "availability zone of the Multi-AZ standby, or null"),
    FIELD("endpoint", S, "host name, or null while creating"),
    FIELD("port", I, "port, or null while creating"),
    FIELD("replica_source", S, "the instance this one replicates, null when not a replica"),
    FIELD("replicas", DRB_T_LIST, "identifiers of this instance's read replicas"),
    FIELD("cluster", S, "Aurora cluster identifier, or null"),
    END};

static const drb_field_spec change_fields[] = {
    FIELD("change_id", S, "Route 53 change id (without /change/)"),
    FIELD("status", S, "PENDING or INSYNC"), FIELD("submitted_at", S, "RFC 3339 time"), END};

static const char *const task_status[] = {"RUNNING", "PENDING", "STOPPED", NULL};
static const char *const on_off[] = {"On", "Off", NULL};
static const char *const failover_roles[] = {"PRIMARY", "SECONDARY", NULL};

#define ARC_ENDPOINTS                                                                              \
	ARG("cluster_endpoints", DRB_T_LIST, 1, NULL,                                              \
	    "the cluster's endpoint URLs (or {url, region}), tried in turn until one answers; "    \
	    "each is signed for its own region (from the host name, else region)")

static const drb_field_spec arc_fields[] = {
    FIELD("state", S, "On or Off"), FIELD("endpoint", S, "the cluster endpoint that answered"),
    END};

const drb_action drb_aws_actions[] = {
    {.name = "aws.sts.get_caller_identity",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_sts_caller,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Who the credentials belong to (STS GetCallerIdentity)",
	     .args = (const drb_arg_spec[]){COMMON},
	     .result =
		 (const drb_field_spec[]){FIELD("account", S, "AWS account id"),
					  FIELD("arn", S, "ARN of the caller"),
					  FIELD("user_id", S, "unique id of the caller"), END}}},
    {.name = "aws.rds.describe_db_instance",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_rds_describe,
     .schema =
	 &(const drb_action_schema){
	     .doc = "One RDS DB instance (DescribeDBInstances)",
	     .args =
		 (const drb_arg_spec[]){ARG("id", S, 1, NULL, "DB instance identifier"), COMMON},
	     .result = instance_fields,
	     .resource = "id"}},
    {.name = "aws.rds.promote_read_replica",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_promote,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Promotes a read replica to a standalone instance (PromoteReadReplica); an "
		    "instance already promoted, or being promoted, is waited for, not a failure",
	     .args =
		 (const drb_arg_spec[]){
		     ARG("id", S, 1, NULL, "the read replica's identifier"),
		     ARG("backup_retention_days", I, 0, NULL,
			 "backup retention of the promoted instance (default: unchanged)"),
		     COMMON},
	     .result = instance_fields,
	     .result_doc = "the instance, as aws.rds.describe_db_instance",
	     .resource = "id"}},
    {.name = "aws.rds.reboot_db_instance",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_reboot,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Reboots an instance, optionally failing over to its Multi-AZ standby",
	     .args = (const drb_arg_spec[]){ARG("id", S, 1, NULL, "DB instance identifier"),
					    ARG("force_failover", B, 0, "false",
						"fail over to the standby (Multi-AZ only)"),
					    COMMON},
	     .result = instance_fields,
	     .result_doc = "the instance, as aws.rds.describe_db_instance",
	     .resource = "id"}},
    {.name = "aws.rds.failover_db_cluster",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_failover_cluster,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Fails an Aurora cluster over to another instance (FailoverDBCluster)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "DB cluster identifier"),
					    ARG("target", S, 0, NULL,
						"instance to promote (default: RDS chooses)"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){FIELD("id", S, "cluster identifier"),
					  FIELD("status", S, "cluster status"),
					  FIELD("writer", S, "the writer instance, or null"), END},
	     .resource = "cluster"}},
    {.name = "aws.rds.describe_db_snapshots",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_rds_snapshots,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Snapshots of an instance (or all), newest first (DescribeDBSnapshots)",
	     .args = (const drb_arg_spec[]){ARG("id", S, 0, NULL,
						"DB instance identifier (default: every instance)"),
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("snapshot", S, "snapshot identifier"),
						FIELD("created_at", S, "RFC 3339 time"),
						FIELD("status", S, "available, creating, ..."),
						FIELD("type", S, "manual or automated"), END},
	     .result_doc = "a list, newest first, of items with these fields",
	     .resource = "id"}},
    {.name = "aws.rds.restore_db_instance_to_point_in_time",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_restore_pitr,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Restores an instance to a point in time into a new instance",
	     .args = (const drb_arg_spec
			  []){ARG("source", S, 1, NULL, "the instance to restore from"),
			      ARG("target", S, 1, NULL, "identifier of the new instance"),
			      ARG("restore_time", S, 0, NULL,
				  "RFC 3339 time to restore to (exactly one of "
				  "restore_time, latest)"),
			      ARG("latest", B, 0, "false", "restore to the latest restorable time"),
			      ARG("instance_class", S, 0, NULL, "default: the source's"),
			      ARG("subnet_group", S, 0, NULL, "DB subnet group name"),
			      ARG("multi_az", B, 0, NULL, "default: RDS's"), COMMON},
	     .result = instance_fields,
	     .result_doc = "the new instance, as aws.rds.describe_db_instance",
	     .resource = "target"}},
    {.name = "aws.rds.restore_db_instance_from_snapshot",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_restore_snapshot,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Restores a snapshot into a new instance (RestoreDBInstanceFromDBSnapshot)",
	     .args = (const drb_arg_spec[]){ARG("snapshot", S, 1, NULL, "snapshot identifier"),
					    ARG("target", S, 1, NULL,
						"identifier of the new instance"),
					    ARG("instance_class", S, 0, NULL,
						"default: the snapshot's"),
					    ARG("subnet_group", S, 0, NULL, "DB subnet group name"),
					    ARG("multi_az", B, 0, NULL, "default: RDS's"), COMMON},
	     .result = instance_fields,
	     .result_doc = "the new instance, as aws.rds.describe_db_instance",
	     .resource = "target"}},
    {.name = "aws.route53.get_record",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_r53_get_record,
     .schema =
	 &(const drb_action_schema){
	     .doc = "One record set of a hosted zone (ListResourceRecordSets)",
	     .args = (const drb_arg_spec
			  []){ARG("zone_id", S, 1, NULL,
				  "hosted zone id (Z123 or /hostedzone/Z123)"),
			      ARG("name", S, 1, NULL, "record name"),
			      ARG("type", S, 1, NULL, "record type: A, AAAA, CNAME, ..."),
			      ARG("set_identifier", S, 0, NULL,
				  "with a routing policy: which record of the name"),
			      COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("name", S, "record name, with the trailing dot"),
		     FIELD("type", S, "record type"),
		     FIELD("ttl", I, "TTL in seconds (null for an alias)"),
		     FIELD("values", DRB_T_LIST, "the values (an alias: its DNS name)"),
		     FIELD("alias", B, "present and true for an alias record"),
		     FIELD("set_identifier", S, "routing policy set identifier, or null"),
		     FIELD("failover", S, "PRIMARY or SECONDARY for a failover record, or null"),
		     FIELD("weight", I, "a weighted record's weight, or null"),
		     FIELD("health_check_id", S, "the health check deciding it, or null"), END},
	     .resource = "name"}},
    {.name = "aws.route53.upsert_record",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_r53_upsert,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Creates or replaces a record set (ChangeResourceRecordSets UPSERT)",
	     .args = (const drb_arg_spec[]){ARG("zone_id", S, 1, NULL, "hosted zone id"),
					    ARG("name", S, 1, NULL, "record name"),
					    ARG("type", S, 1, NULL, "record type"),
					    ARG("ttl", I, 0, "300", "TTL in seconds"),
					    ARG("values", S | DRB_T_LIST, 0, NULL,
						"the values (one string or a list); required "
						"unless alias"),
					    ARG("set_identifier", S, 0, NULL,
						"routing policy set identifier (needed with "
						"failover, weight, geolocation)"),
					    {"failover", S, 0, NULL, failover_roles,
					     "PRIMARY or SECONDARY (failover routing)"},
					    ARG("health_check_id", S, 0,
						NULL, "the health check that decides the record"),
					    ARG("weight", I, 0, NULL, "0..255 (weighted routing)"),
					    ARG("geolocation", DRB_T_MAP, 0, NULL,
						"{continent} or {country[, subdivision]}"),
					    ARG("alias", DRB_T_MAP, 0, NULL,
						"{dns_name, zone_id[, evaluate_target_health]}: "
						"an alias instead of values"),
					    ARG("wait", B, 0, "false",
						"wait until the change is INSYNC"),
					    ARG("comment", S, 0,
						"drbook", "the change batch's comment"),
					    COMMON},
	     .result = change_fields,
	     .resource = "name"}},
    {.name = "aws.route53.get_change",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_r53_get_change,
     .schema =
	 &(const drb_action_schema){
	     .doc = "The state of a Route 53 change (GetChange)",
	     .args = (const drb_arg_spec[]){ARG("id", S, 1, NULL,
						"change id (C123 or /change/C123)"),
					    COMMON},
	     .result = change_fields,
	     .resource = "id"}},
    {.name = "aws.route53.get_health_check_status",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_r53_hc_status,
     .schema =
	 &(const drb_action_schema){
	     .doc = "What Route 53's checkers report for a health check (GetHealthCheckStatus)",
	     .args = (const drb_arg_spec[]){ARG("id", S, 1, NULL, "health check id"), COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("healthy", B, "more than 18% of the checkers report success"),
		     FIELD("reporting", I, "checkers reporting"),
		     FIELD("failing", I, "checkers reporting a failure"), END},
	     .resource = "id"}},
    {.name = "aws.route53.update_health_check",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_r53_hc_update,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Disables or inverts a health check (UpdateHealthCheck)",
	     .args = (const drb_arg_spec
			  []){ARG("id", S, 1, NULL, "health check id"),
			      ARG("disabled", B, 0, NULL,
				  "disable the check (give disabled, inverted or both)"),
			      ARG("inverted", B, 0, NULL, "invert the check"), COMMON},
	     .result =
		 (const drb_field_spec[]){FIELD("id", S, "health check id"),
					  FIELD("disabled", B, "as now configured"),
					  FIELD("inverted", B, "as now configured"), END},
	     .resource = "id"}},
    {.name = "aws.arc.get_routing_control_state",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_arc_get,
     .schema =
	 &(const drb_action_schema){
	     .doc = "A routing control's state from the ARC cluster's data plane "
		    "(GetRoutingControlState)",
	     .args = (const drb_arg_spec[]){ARG("routing_control_arn", S, 1, NULL,
						"the routing control"),
					    ARC_ENDPOINTS, COMMON},
	     .result = arc_fields,
	     .resource = "routing_control_arn"}},
    {.name = "aws.arc.update_routing_control_state",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_arc_update,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Turns a routing control On or Off through the ARC cluster's data plane "
		    "(UpdateRoutingControlState): no us-east-1 control plane needed",
	     .args = (const drb_arg_spec[]){ARG("routing_control_arn", S, 1, NULL,
						"the routing control"),
					    {"state", S, 1, NULL, on_off, "On or Off"},
					    ARC_ENDPOINTS,
					    COMMON},
	     .result = arc_fields,
	     .resource = "routing_control_arn"}},
    {.name = "aws.ecs.describe_service",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ecs_describe,
     .schema =
	 &(const drb_action_schema){
	     .doc = "An ECS service's counts and rollout (DescribeServices)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("service", S, 1, NULL, "service name or ARN"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("status", S, "ACTIVE, DRAINING or INACTIVE"),
		     FIELD("desired", I, "desired task count"),
		     FIELD("running", I, "running tasks"), FIELD("pending", I, "pending tasks"),
		     FIELD("rollout_state", S,
			   "the primary deployment's: IN_PROGRESS, COMPLETED, FAILED"),
		     FIELD("deployments", I, "number of deployments"), END},
	     .resource = "service"}},
    {.name = "aws.ecs.update_service",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ecs_update,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Scales a service or forces a new deployment (UpdateService)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("service", S, 1, NULL, "service name or ARN"),
					    ARG("desired_count", I, 0, NULL,
						"new desired count (give it, force_new_deployment "
						"or both)"),
					    ARG("force_new_deployment", B, 0, NULL,
						"replace every task with a new one"),
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("desired", I, "desired task count"),
						FIELD("running", I, "running tasks"), END},
	     .resource = "service"}},
    {.name = "aws.ecs.list_tasks",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ecs_list_tasks,
     .schema =
	 &(const drb_action_schema){
	     .doc = "The tasks of a cluster or service (ListTasks)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("service", S, 0, NULL, "only this service's tasks"),
					    {"desired_status", S, 0, "RUNNING", task_status,
					     "tasks with this desired status"},
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("tasks", DRB_T_LIST, "task ARNs"), END},
	     .resource = "service"}},
    {.name = "aws.ecs.stop_task",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ecs_stop_task,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Stops one task; its service replaces it (StopTask)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("task", S, 1, NULL, "task ARN or id"),
					    ARG("reason", S, 0, "stopped by drbook",
						"shown in the task's stopped reason"),
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("task", S, "task ARN"),
						FIELD("last_status", S, "RUNNING, STOPPED, ..."),
						FIELD("desired_status", S, "STOPPED"), END},
	     .resource = "task"}},
    {.name = "aws.sns.publish",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_sns_publish,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Publishes a message to an SNS topic (Publish)",
	     .args = (const drb_arg_spec[]){ARG("topic_arn", S, 1, NULL, "topic ARN"),
					    ARG("subject", S, 0, NULL,
						"one line of at most 100 characters"),
					    ARG("message", S, 1, NULL, "message text"), COMMON},
	     .result = (const drb_field_spec[]){FIELD("message_id", S, "SNS message id"), END},
	     .resource = "topic_arn"}},
    {.name = "aws.cloudwatch.put_metric_data",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_cw_put_metric,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Puts one data point of a custom metric (PutMetricData)",
	     .args = (const drb_arg_spec[]){ARG("namespace", S, 1, NULL, "metric namespace"),
					    ARG("name", S, 1, NULL, "metric name"),
					    ARG("value", DRB_T_NUMBER, 1, NULL, "the value"),
					    ARG("unit", S, 0, NULL, "Seconds, Count, Percent, ..."),
					    ARG("dimensions", DRB_T_MAP, 0, NULL,
						"name: value pairs (at most 30)"),
					    COMMON},
	     .resource = "namespace"}},
    {.name = NULL},
};

const drb_action *drb_aws_action(const char *name)
{
	for (const drb_action *a = drb_aws_actions; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}
