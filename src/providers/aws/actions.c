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
    FIELD("arn", S, "the instance's ARN (a cross-region replica's source names it)"),
    FIELD("instance_class", S, "db.r6g.large, ..."),
    FIELD("vpc_security_group_ids", DRB_T_LIST, "its VPC security groups"),
    FIELD("db_subnet_group", S, "its DB subnet group, or null"),
    FIELD("db_parameter_group", S, "its (first) DB parameter group, or null"),
    FIELD("backup_retention_days", I, "automated backup retention (0: none)"),
    FIELD("pending_instance_class", S, "an instance class change not applied yet, or null"),
    FIELD("tags", DRB_T_MAP, "tags as {key: value} (when RDS includes them in the answer)"),
    END};

/* Where a new or restored instance lands: without them AWS puts it in the default VPC
 * security group and subnet group, unreachable from the services (issue 11 point 6). */
#define RDS_PLACEMENT                                                                              \
	ARG("instance_class", S, 0, NULL, "DB instance class (db.r6g.large...)"),                  \
	    ARG("db_subnet_group", S, 0, NULL, "DB subnet group name (DBSubnetGroupName)"),        \
	    ARG("vpc_security_group_ids", DRB_T_LIST, 0, NULL,                                     \
		"VPC security group ids (VpcSecurityGroupIds)"),                                   \
	    ARG("db_parameter_group", S, 0, NULL,                                                  \
		"DB parameter group name (DBParameterGroupName)"),                                 \
	    ARG("multi_az", B, 0, NULL, "a Multi-AZ deployment (default: RDS's)"),                 \
	    ARG("tags", DRB_T_MAP, 0, NULL, "tags as {key: value}")
#define RDS_OLD_SUBNET_GROUP                                                                       \
	ARG("subnet_group", S, 0, NULL, "old name of db_subnet_group (give one of them)")

/* The fields of every snapshot-returning RDS action. */
static const drb_field_spec snapshot_fields[] = {
    FIELD("id", S, "DB snapshot identifier"),
    FIELD("status", S, "creating, available, copying, ..."),
    FIELD("instance", S, "the instance it was taken of"),
    FIELD("created_at", S, "RFC 3339 time, or null while creating"),
    FIELD("arn", S, "the snapshot's ARN (what a cross-region copy names as source)"),
    FIELD("type", S, "manual or automated"),
    FIELD("engine", S, "postgres, ..."),
    FIELD("percent_progress", I, "0..100"),
    FIELD("encrypted", B, "encrypted at rest"),
    FIELD("source_region", S, "a copy's source region, or null"),
    FIELD("source_snapshot", S, "a cross-region copy's source ARN, or null"),
    FIELD("tags", DRB_T_MAP, "tags as {key: value}"),
    END};

static const char *const rds_source_types[] = {
    "db-instance",	     "db-parameter-group", "db-security-group",
    "db-snapshot",	     "db-cluster",	   "db-cluster-snapshot",
    "custom-engine-version", "db-proxy",	   "blue-green-deployment",
    "db-shard-group",	     "zero-etl",	   NULL};

static const char *const aas_namespaces[] = {
    "ecs",	   "elasticmapreduce", "ec2",	     "appstream", "dynamodb",  "rds",
    "sagemaker",   "custom-resource",  "comprehend", "lambda",	  "cassandra", "kafka",
    "elasticache", "neptune",	       "workspaces", NULL};

/* Which scalable target: the same arguments for describe and register. */
#define AAS_TARGET                                                                                 \
	{"service_namespace", S, 0, "ecs", aas_namespaces, "the service the target belongs to"},   \
	    ARG("resource_id", S, 0, NULL,                                                         \
		"the resource (service/CLUSTER/SERVICE for ECS); or cluster and service"),         \
	    ARG("cluster", S, 0, NULL,                                                             \
		"ECS cluster name: with service, resource_id "                                     \
		"service/CLUSTER/SERVICE"),                                                        \
	    ARG("service", S, 0, NULL, "ECS service name (with cluster)"),                         \
	    ARG("scalable_dimension", S, 0, "ecs:service:DesiredCount",                            \
		"what scales (the default applies to service_namespace ecs only)")

static const drb_field_spec aas_target_fields[] = {
    FIELD("service_namespace", S, "ecs, ..."),
    FIELD("resource_id", S, "service/CLUSTER/SERVICE for ECS"),
    FIELD("scalable_dimension", S, "ecs:service:DesiredCount, ..."),
    FIELD("min_capacity", I, "auto scaling never goes below it"),
    FIELD("max_capacity", I, "auto scaling never goes above it"),
    FIELD("arn", S, "the scalable target's ARN"),
    FIELD("role_arn", S, "the service-linked role"),
    FIELD("created_at", S, "RFC 3339 time"),
    FIELD("dynamic_scaling_in_suspended", B, "scale-in by policies suspended"),
    FIELD("dynamic_scaling_out_suspended", B, "scale-out by policies suspended"),
    FIELD("scheduled_scaling_suspended", B, "scheduled actions suspended"),
    END};

#define AAS_SUSPEND                                                                                \
	ARG("dynamic_scaling_in_suspended", B, 0, NULL,                                            \
	    "suspend scale-in by scaling policies (default: unchanged)"),                          \
	    ARG("dynamic_scaling_out_suspended", B, 0, NULL,                                       \
		"suspend scale-out by scaling policies (default: unchanged)"),                     \
	    ARG("scheduled_scaling_suspended", B, 0, NULL,                                         \
		"suspend scheduled scaling actions (default: unchanged)")

static const drb_field_spec change_fields[] = {
    FIELD("change_id", S, "Route 53 change id (without /change/)"),
    FIELD("status", S, "PENDING or INSYNC"), FIELD("submitted_at", S, "RFC 3339 time"), END};

static const char *const task_status[] = {"RUNNING", "PENDING", "STOPPED", NULL};
static const char *const on_off[] = {"On", "Off", NULL};
static const char *const failover_roles[] = {"PRIMARY", "SECONDARY", NULL};
static const char *const alarm_states[] = {"OK", "ALARM", "INSUFFICIENT_DATA", NULL};

#define ARC_ENDPOINTS                                                                              \
	ARG("cluster_endpoints", DRB_T_LIST, 1, NULL,                                              \
	    "the cluster's endpoint URLs (or {url, region}), tried in turn until one answers; "    \
	    "each is signed for its own region (from the host name, else region)")

static const drb_field_spec arc_fields[] = {
    FIELD("state", S, "On or Off"), FIELD("endpoint", S, "the cluster endpoint that answered"),
    END};

/* EC2, S3 and ElastiCache rows (the seed's whole platform, DESIGN.md). */
static const drb_field_spec sg_rule_fields[] = {
    FIELD("group_id", S, "the security group"),
    FIELD("changed", B, "false when the rule was already there (authorize) or not there (revoke)"),
    END};

#define SG_RULE_ARGS                                                                               \
	ARG("group_id", S, 1, NULL, "security group id (sg-...)"),                                 \
	    ARG("protocol", S, 1, NULL, "tcp, udp, icmp, a protocol number, or -1 for all"),       \
	    ARG("from_port", I, 0, NULL, "first port (ICMP: the type); required for tcp and udp"), \
	    ARG("to_port", I, 0, NULL, "last port (ICMP: the code); required for tcp and udp"),    \
	    ARG("cidr", S, 0, NULL,                                                                \
		"source CIDR, IPv4 or IPv6 (exactly one of cidr, source_group_id)"),               \
	    ARG("source_group_id", S, 0, NULL, "source security group id"),                        \
	    ARG("description", S, 0, NULL, "the rule's description")

#define RG_FIELDS                                                                                  \
	FIELD("id", S, "replication group id"), FIELD("description", S, "its description"),        \
	    FIELD("status", S,                                                                     \
		  "creating, available, modifying, deleting, create-failed, snapshotting"),        \
	    FIELD("engine", S, "redis or valkey (null when the answer omits it)"),                 \
	    FIELD("node_type", S, "cache node type (cache.r6g.large, ...)"),                       \
	    FIELD("member_clusters", DRB_T_LIST, "the cache cluster ids of the group"),            \
	    FIELD("node_groups", DRB_T_LIST,                                                       \
		  "shards: {id, status, primary_endpoint, reader_endpoint, members: "              \
		  "[{cluster_id, node_id, role, az, read_endpoint}]}"),                            \
	    FIELD("primary_endpoint", DRB_T_MAP,                                                   \
		  "{address, port} of the first node group's primary (cluster mode disabled), "    \
		  "or null"),                                                                      \
	    FIELD("reader_endpoint", DRB_T_MAP,                                                    \
		  "{address, port} of the first node group's readers, or null"),                   \
	    FIELD("configuration_endpoint", DRB_T_MAP,                                             \
		  "{address, port} (cluster mode enabled), or null"),                              \
	    FIELD("automatic_failover", S, "enabled, disabled, enabling, disabling"),              \
	    FIELD("multi_az", S, "enabled or disabled"),                                           \
	    FIELD("cluster_enabled", B, "cluster mode (sharding) is on"),                          \
	    FIELD("arn", S, "the group's ARN")

static const drb_field_spec rg_fields[] = {RG_FIELDS, END};

static const drb_field_spec rg_create_fields[] = {
    RG_FIELDS, FIELD("created", B, "false when the group already existed (returned as it is)"),
    END};

static const drb_field_spec head_fields[] = {
    FIELD("exists", B, "true; false only with missing_ok when the object is missing"),
    FIELD("size", I, "bytes"),
    FIELD("etag", S, "the ETag, without quotes"),
    FIELD("last_modified", S, "RFC 3339 time"),
    FIELD("version_id", S, "version id, or null when the bucket is not versioned"),
    FIELD("replication_status", S,
	  "PENDING, COMPLETED, FAILED (source) or REPLICA (destination); null when not replicated"),
    FIELD("content_type", S, "Content-Type"),
    FIELD("storage_class", S, "null for STANDARD"),
    FIELD("metadata", DRB_T_MAP, "user metadata (x-amz-meta-*), names in lower case"),
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
			      ARG("availability_zone", S, 0, NULL, "default: RDS chooses"),
			      RDS_PLACEMENT, RDS_OLD_SUBNET_GROUP, COMMON},
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
					    ARG("availability_zone", S, 0, NULL,
						"default: RDS chooses"),
					    RDS_PLACEMENT, RDS_OLD_SUBNET_GROUP, COMMON},
	     .result = instance_fields,
	     .result_doc = "the new instance, as aws.rds.describe_db_instance",
	     .resource = "target"}},
    {.name = "aws.rds.describe_events",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_rds_events,
     .schema =
	 &(const drb_action_schema){
	     .doc = "RDS events of a source, oldest first (DescribeEvents): a failover RDS "
		    "made by itself, a reboot, a backup",
	     .args = (const drb_arg_spec
			  []){ARG("source_identifier", S, 0, NULL,
				  "the instance (or snapshot, cluster...) the events are about; "
				  "default: every source"),
			      {"source_type", S, 0, NULL, rds_source_types,
			       "the kind of source; default db-instance when source_identifier is "
			       "given"},
			      ARG("duration", I, 0, NULL,
				  "minutes back from now, 1..20160 (default: RDS's 60)"),
			      ARG("start_time", S, 0, NULL, "RFC 3339 time (instead of duration)"),
			      ARG("end_time", S, 0, NULL, "RFC 3339 time (default: now)"),
			      ARG("event_categories", DRB_T_LIST, 0, NULL,
				  "only these categories: failover, availability, failure, ..."),
			      COMMON},
	     .result = (const drb_field_spec[]){FIELD("events", DRB_T_LIST,
						      "{time, message, categories, source, "
						      "source_type, source_arn}, oldest first"),
						END},
	     .resource = "source_identifier"}},
    {.name = "aws.rds.create_db_instance_read_replica",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_read_replica,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Creates a read replica of an instance, here or from another region "
		    "(CreateDBInstanceReadReplica); an existing replica of the same source "
		    "under that name is the answer",
	     .args = (const drb_arg_spec
			  []){ARG("id", S, 1, NULL, "identifier of the new replica"),
			      ARG("source", S, 1, NULL,
				  "the instance to replicate: its identifier, or its ARN when it "
				  "is in another region"),
			      ARG("source_region", S, 0, NULL,
				  "the source's region when it is not this one (checked against "
				  "the ARN)"),
			      ARG("availability_zone", S, 0, NULL, "default: RDS chooses"),
			      ARG("kms_key_id", S, 0, NULL,
				  "KMS key in this region (needed for an encrypted source in "
				  "another region)"),
			      RDS_PLACEMENT, COMMON},
	     .result = instance_fields,
	     .result_doc = "the new replica, as aws.rds.describe_db_instance",
	     .resource = "id"}},
    {.name = "aws.rds.modify_db_instance",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_modify,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Changes an instance's class, Multi-AZ, network, parameter group or "
		    "backups (ModifyDBInstance); the same values again change nothing",
	     .args = (const drb_arg_spec
			  []){ARG("id", S, 1, NULL, "DB instance identifier"),
			      ARG("apply_immediately", B, 0, "true",
				  "apply now (false: in the next maintenance window, AWS's own "
				  "default)"),
			      ARG("instance_class", S, 0, NULL, "new DB instance class"),
			      ARG("multi_az", B, 0, NULL, "add or remove the Multi-AZ standby"),
			      ARG("vpc_security_group_ids", DRB_T_LIST, 0, NULL,
				  "the VPC security groups (replaces the list)"),
			      ARG("db_subnet_group", S, 0, NULL, "move to this DB subnet group"),
			      ARG("db_parameter_group", S, 0, NULL, "DB parameter group name"),
			      ARG("backup_retention_days", I, 0, NULL,
				  "automated backup retention, 0..35 (0 turns backups off)"),
			      ARG("allocated_storage", I, 0, NULL, "storage in GiB"),
			      ARG("deletion_protection", B, 0, NULL, "refuse deletion"), COMMON},
	     .result = instance_fields,
	     .result_doc = "the instance, as aws.rds.describe_db_instance (changes not yet "
			   "applied show in pending_instance_class and the status)",
	     .resource = "id"}},
    {.name = "aws.rds.create_db_snapshot",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_create_snapshot,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Takes a manual snapshot of an instance (CreateDBSnapshot); an existing "
		    "snapshot of the same instance under that name is the answer",
	     .args = (const drb_arg_spec[]){ARG("snapshot", S, 1, NULL,
						"identifier of the new snapshot"),
					    ARG("instance", S, 1, NULL, "the DB instance"),
					    ARG("tags", DRB_T_MAP, 0, NULL, "tags as {key: value}"),
					    COMMON},
	     .result = snapshot_fields,
	     .resource = "snapshot"}},
    {.name = "aws.rds.copy_db_snapshot",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_copy_snapshot,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Copies a snapshot, also from another region into this one "
		    "(CopyDBSnapshot); an existing copy of the same source is the answer",
	     .args = (const drb_arg_spec
			  []){ARG("source", S, 1, NULL,
				  "the snapshot to copy: its identifier, or its ARN when it is in "
				  "another region"),
			      ARG("target", S, 1, NULL, "identifier of the copy"),
			      ARG("kms_key_id", S, 0, NULL,
				  "KMS key in this region (needed to copy an encrypted snapshot "
				  "across regions)"),
			      ARG("copy_tags", B, 0, NULL, "copy the source's tags"),
			      ARG("tags", DRB_T_MAP, 0, NULL, "tags as {key: value}"), COMMON},
	     .result = snapshot_fields,
	     .result_doc = "the copy",
	     .resource = "target"}},
    {.name = "aws.rds.delete_db_instance",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_rds_delete,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Deletes an instance (DeleteDBInstance); one already gone is not an error",
	     .args = (const drb_arg_spec[]){ARG("id", S, 1, NULL, "DB instance identifier"),
					    ARG("skip_final_snapshot", B, 0, "true",
						"delete without a final snapshot"),
					    ARG("final_snapshot", S, 0, NULL,
						"the final snapshot's identifier (with "
						"skip_final_snapshot: false)"),
					    ARG("delete_automated_backups", B, 0, NULL,
						"default: RDS's"),
					    COMMON},
	     .result = instance_fields,
	     .result_doc = "the instance as it is being deleted (status deleting), or {id, "
			   "status = \"deleted\"} when it was already gone",
	     .resource = "id"}},
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
    {.name = "aws.route53.delete_record",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_r53_delete,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Deletes a record set as it is now (read with ListResourceRecordSets, then "
		    "ChangeResourceRecordSets DELETE); a record that is not there is not an "
		    "error (deleted: false)",
	     .args = (const drb_arg_spec[]){ARG("zone_id", S, 1, NULL,
						"hosted zone id (Z123 or /hostedzone/Z123)"),
					    ARG("name", S, 1, NULL, "record name"),
					    ARG("type", S, 1, NULL,
						"record type: A, AAAA, CNAME, ..."),
					    ARG("set_identifier", S, 0, NULL,
						"with a routing policy: which record of the name"),
					    ARG("comment", S, 0,
						"drbook", "the change batch's comment"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("deleted", B, "false when there was no such record"),
		     FIELD("change_id", S, "Route 53 change id (without /change/), when deleted"),
		     FIELD("status", S, "PENDING or INSYNC, when deleted"),
		     FIELD("submitted_at", S, "RFC 3339 time, when deleted"), END},
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
		     FIELD("deployments", I, "number of deployments"),
		     FIELD("task_definition", S,
			   "the task definition's ARN (aws.ecs.describe_task_definition)"),
		     END},
	     .resource = "service"}},
    {.name = "aws.ecs.describe_task_definition",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ecs_describe_task_definition,
     .schema =
	 &(const drb_action_schema){
	     .doc = "A task definition's containers, images and size (DescribeTaskDefinition), "
		    "such as what a recovery region must be able to pull",
	     .args = (const drb_arg_spec[]){ARG("task_definition", S, 1, NULL,
						"family, family:revision or ARN"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("arn", S, "the task definition's ARN"), FIELD("family", S, "its family"),
		     FIELD("revision", I, "its revision"), FIELD("status", S, "ACTIVE or INACTIVE"),
		     FIELD("cpu", I, "task CPU units (1024 = 1 vCPU), or null"),
		     FIELD("memory", I, "task memory in MiB, or null"),
		     FIELD("containers", DRB_T_LIST,
			   "{name, image, cpu, memory, essential} per container definition"),
		     END},
	     .resource = "task_definition"}},
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
    {.name = "aws.ecs.create_service",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ecs_create,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Creates a service running a task definition, or a copy of another "
		    "service (CreateService)",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("service", S, 1, NULL, "the new service's name"),
					    ARG("like", S, 0, NULL,
						"an existing service of the cluster whose task "
						"definition, launch type and network configuration "
						"the new one copies (only read)"),
					    ARG("task_definition", S, 0, NULL,
						"family, family:revision or ARN (required without "
						"like)"),
					    ARG("desired_count", I, 0, "1", "tasks to run"),
					    ARG("launch_type", S, 0, NULL,
						"FARGATE or EC2; default: like's, else FARGATE"),
					    ARG("subnets", DRB_T_LIST, 0, NULL,
						"awsvpc subnets (Fargate needs them on AWS)"),
					    ARG("security_groups", DRB_T_LIST, 0, NULL,
						"awsvpc security groups"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){FIELD("arn", S, "the service's ARN"),
					  FIELD("status", S, "ACTIVE, ..."),
					  FIELD("desired", I, "desired task count"),
					  FIELD("running", I, "running tasks"), END},
	     .resource = "service"}},
    {.name = "aws.ecs.delete_service",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ecs_delete,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Deletes a service (DeleteService); one already gone is not an error",
	     .args = (const drb_arg_spec[]){ARG("cluster", S, 1, NULL, "cluster name or ARN"),
					    ARG("service", S, 1, NULL, "service name or ARN"),
					    ARG("force", B, 0, "true",
						"delete even when it still runs tasks"),
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("arn", S, "the service's ARN, or null"),
						FIELD("status", S,
						      "DRAINING, INACTIVE, or MISSING when it was "
						      "already gone"),
						FIELD("desired", I, "desired task count"),
						FIELD("running", I, "running tasks"), END},
	     .resource = "service"}},
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
    {.name = "aws.cloudwatch.describe_alarms",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_cw_describe_alarms,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Metric and composite alarms with their state (DescribeAlarms)",
	     .args = (const drb_arg_spec[]){ARG("alarm_names", DRB_T_LIST, 0, NULL,
						"only these alarms (at most 100 names; default: "
						"every alarm)"),
					    {"state_value", S, 0, NULL, alarm_states,
					     "only alarms in this state"},
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("alarms", DRB_T_LIST,
						      "the alarms: {name, state (OK, ALARM or "
						      "INSUFFICIENT_DATA), reason, updated_at}"),
						END},
	     .resource = "alarm_names"}},
    {.name = "aws.ec2.describe_security_groups",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ec2_describe_sgs,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Security groups and their rules (DescribeSecurityGroups, all pages)",
	     .args = (const drb_arg_spec[]){ARG("group_ids", DRB_T_LIST, 0, NULL,
						"security group ids (sg-...)"),
					    ARG("group_names", DRB_T_LIST, 0, NULL,
						"security group names (default VPC)"),
					    ARG("vpc_id", S, 0, NULL,
						"only the groups of this VPC (filter vpc-id)"),
					    ARG("filters", DRB_T_MAP, 0, NULL,
						"more filters: name: value or [values] "
						"(group-name, tag:Name, ...)"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("groups", DRB_T_LIST,
			   "{id, name, description, vpc_id, owner_id, ingress, egress}; each rule "
			   "{protocol, from_port, to_port, cidrs, groups} (ports null for -1; "
			   "groups: "
			   "source group ids)"),
		     END},
	     .resource = "group_ids"}},
    {.name = "aws.ec2.authorize_security_group_ingress",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ec2_authorize_ingress,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Adds one ingress rule to a security group (AuthorizeSecurityGroupIngress); "
		    "a rule already there is success with changed=false",
	     .args = (const drb_arg_spec[]){SG_RULE_ARGS, COMMON},
	     .result = sg_rule_fields,
	     .resource = "group_id"}},
    {.name = "aws.ec2.revoke_security_group_ingress",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ec2_revoke_ingress,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Removes one ingress rule from a security group (RevokeSecurityGroupIngress); "
		    "a rule not there is success with changed=false",
	     .args = (const drb_arg_spec[]){SG_RULE_ARGS, COMMON},
	     .result = sg_rule_fields,
	     .resource = "group_id"}},
    {.name = "aws.s3.get_bucket_replication",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_s3_get_replication,
     .schema =
	 &(const drb_action_schema){
	     .doc = "A bucket's replication configuration (GetBucketReplication); none: code "
		    "not_found, message ReplicationConfigurationNotFoundError",
	     .args = (const drb_arg_spec[]){ARG("bucket", S, 1, NULL, "bucket name"), COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("role", S, "the IAM role S3 replicates with"),
		     FIELD("rules", DRB_T_LIST,
			   "{id, status (Enabled|Disabled), priority, prefix, destination_bucket "
			   "(ARN), destination_bucket_name, destination_account, storage_class, "
			   "delete_marker_replication, replication_time}"),
		     END},
	     .resource = "bucket"}},
    {.name = "aws.s3.head_object",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_s3_head_object,
     .schema =
	 &(const drb_action_schema){
	     .doc = "An object's size, ETag, version, replication status and metadata "
		    "(HeadObject); missing: code not_found (NotFound), or exists=false with "
		    "missing_ok; a missing bucket is always not_found (NoSuchBucket)",
	     .args = (const drb_arg_spec[]){ARG("bucket", S, 1, NULL, "bucket name"),
					    ARG("key", S, 1, NULL, "object key"),
					    ARG("version_id", S, 0, NULL,
						"a version (default: the current one)"),
					    ARG("missing_ok", B, 0, "false",
						"a missing object is a result (exists=false) "
						"instead of an error: for an "
						"until that waits for replication"),
					    COMMON},
	     .result = head_fields,
	     .resource = "bucket"}},
    {.name = "aws.s3.put_object",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_s3_put_object,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Writes an object (PutObject, with Content-MD5) such as a replication marker",
	     .args = (const drb_arg_spec[]){ARG("bucket", S, 1, NULL, "bucket name"),
					    ARG("key", S, 1, NULL, "object key"),
					    ARG("body", S, 0, "", "the object's content (text)"),
					    ARG("content_type", S, 0,
						"application/octet-stream", "Content-Type"),
					    ARG("metadata", DRB_T_MAP, 0, NULL,
						"user metadata name: value (x-amz-meta-*; "
						"printable ASCII, at most 2 KB)"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("etag", S, "the new object's ETag, without quotes"),
		     FIELD("version_id", S,
			   "its version id, or null when the bucket is not versioned"),
		     END},
	     .resource = "bucket"}},
    {.name = "aws.elasticache.describe_replication_groups",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ec_describe_rgs,
     .schema =
	 &(const drb_action_schema){
	     .doc = "ElastiCache replication groups (DescribeReplicationGroups, all pages); "
		    "an unknown id: code not_found (ReplicationGroupNotFoundFault)",
	     .args = (const drb_arg_spec[]){ARG("id", S, 0, NULL,
						"replication group id (default: every group)"),
					    COMMON},
	     .result =
		 (const drb_field_spec[]){
		     FIELD("groups", DRB_T_LIST,
			   "the groups: {id, description, status, engine, node_type, "
			   "member_clusters, node_groups, primary_endpoint, reader_endpoint, "
			   "configuration_endpoint, automatic_failover, multi_az, cluster_enabled, "
			   "arn} as aws.elasticache.create_replication_group returns one"),
		     END},
	     .resource = "id"}},
    {.name = "aws.elasticache.create_replication_group",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ec_create_rg,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Creates a replication group (CreateReplicationGroup); one already there is "
		    "returned as it is with created=false",
	     .args = (const drb_arg_spec
			  []){ARG("id", S, 1, NULL, "replication group id"),
			      ARG("description", S, 0, "drbook", "its description"),
			      ARG("engine", S, 0, NULL, "redis or valkey (default: AWS's, redis)"),
			      ARG("engine_version", S, 0, NULL, "default: the engine's latest"),
			      ARG("node_type", S, 0, NULL,
				  "cache node type (cache.r6g.large, ...)"),
			      ARG("num_cache_clusters", I, 0, NULL,
				  "nodes, primary included (cluster mode disabled)"),
			      ARG("num_node_groups", I, 0, NULL, "shards (cluster mode enabled)"),
			      ARG("replicas_per_node_group", I, 0, NULL, "replicas of each shard"),
			      ARG("primary_cluster_id", S, 0, NULL,
				  "build the group around this cluster"),
			      ARG("automatic_failover", B, 0, NULL, "AutomaticFailoverEnabled"),
			      ARG("multi_az", B, 0, NULL, "MultiAZEnabled"),
			      ARG("preferred_cache_cluster_azs", DRB_T_LIST, 0, NULL,
				  "availability zones of the nodes, in order"),
			      ARG("cache_parameter_group", S, 0, NULL,
				  "cache parameter group name"),
			      ARG("cache_subnet_group", S, 0, NULL,
				  "cache subnet group name (the VPC)"),
			      ARG("security_group_ids", DRB_T_LIST, 0, NULL,
				  "VPC security group ids"),
			      ARG("snapshot_name", S, 0, NULL, "seed the group from this snapshot"),
			      ARG("port", I, 0, NULL, "default: the engine's (6379)"),
			      ARG("transit_encryption", B, 0, NULL, "TransitEncryptionEnabled"),
			      ARG("at_rest_encryption", B, 0, NULL, "AtRestEncryptionEnabled"),
			      ARG("tags", DRB_T_MAP, 0, NULL, "key: value tags"),
			      COMMON},
	     .result = rg_create_fields,
	     .resource = "id"}},
    {.name = "aws.elasticache.modify_replication_group",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_ec_modify_rg,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Changes a replication group's settings (ModifyReplicationGroup); an unknown "
		    "id: code not_found",
	     .args = (const drb_arg_spec
			  []){ARG("id", S, 1, NULL, "replication group id"),
			      ARG("apply_immediately", B, 0, "false",
				  "apply now rather than in the next maintenance window"),
			      ARG("node_type", S, 0, NULL, "scale to this cache node type"),
			      ARG("engine_version", S, 0, NULL, "upgrade to this version"),
			      ARG("description", S, 0, NULL, "new description"),
			      ARG("primary_cluster_id", S, 0, NULL,
				  "make this cluster the primary"),
			      ARG("automatic_failover", B, 0, NULL, "AutomaticFailoverEnabled"),
			      ARG("multi_az", B, 0, NULL, "MultiAZEnabled"),
			      ARG("cache_parameter_group", S, 0, NULL,
				  "cache parameter group name"),
			      ARG("security_group_ids", DRB_T_LIST, 0, NULL,
				  "VPC security group ids"),
			      ARG("snapshot_retention_limit", I, 0, NULL,
				  "days of automatic snapshots"),
			      COMMON},
	     .result = rg_fields,
	     .result_doc = "the group, as an item of aws.elasticache.describe_replication_groups",
	     .resource = "id"}},
    {.name = "aws.appautoscaling.describe_scalable_targets",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_aas_describe,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Application Auto Scaling targets: a service's minimum and maximum "
		    "(DescribeScalableTargets)",
	     .args = (const drb_arg_spec[]){AAS_TARGET, COMMON},
	     .result = (const drb_field_spec[]){FIELD("targets", DRB_T_LIST,
						      "the targets (all pages), each with the "
						      "fields of register_scalable_target; empty "
						      "when none is registered"),
						END},
	     .resource = "resource_id"}},
    {.name = "aws.appautoscaling.register_scalable_target",
     .mode = DRB_ACT_MUT,
     .fn = drb_awsi_aas_register,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Registers or updates a scalable target's minimum and maximum "
		    "(RegisterScalableTarget), so auto scaling cannot undo a failover's scaling",
	     .args = (const drb_arg_spec[]){AAS_TARGET,
					    ARG("min_capacity", I, 0, NULL,
						"new minimum (required for a new target)"),
					    ARG("max_capacity", I, 0, NULL,
						"new maximum (required for a new target)"),
					    AAS_SUSPEND,
					    ARG("tags", DRB_T_MAP, 0, NULL,
						"tags as {key: value} (a new target only)"),
					    COMMON},
	     .result = aas_target_fields,
	     .result_doc = "the target as registered (read back)",
	     .resource = "resource_id"}},
    {.name = "aws.ecr.describe_images",
     .mode = DRB_ACT_RO,
     .fn = drb_awsi_ecr_describe_images,
     .schema =
	 &(const drb_action_schema){
	     .doc = "Images of an ECR repository, or one by tag or digest (DescribeImages): a "
		    "missing repository or image is not_found (RepositoryNotFoundException, "
		    "ImageNotFoundException in the message)",
	     .args = (const drb_arg_spec[]){ARG("repository", S, 1, NULL, "repository name"),
					    ARG("image_tag", S, 0, NULL,
						"only the image so tagged"),
					    ARG("image_digest", S, 0, NULL,
						"only the image with this digest (sha256:...)"),
					    ARG("registry_id", S, 0,
						NULL, "the registry's account id (default: yours)"),
					    COMMON},
	     .result = (const drb_field_spec[]){FIELD("images", DRB_T_LIST,
						      "{digest, tags, pushed_at (RFC 3339), "
						      "size_bytes} (all pages)"),
						END},
	     .resource = "repository"}},
    {.name = NULL},
};

const drb_action *drb_aws_action(const char *name)
{
	for (const drb_action *a = drb_aws_actions; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}
