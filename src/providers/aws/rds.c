/* The aws.rds.* actions (RDS Query API 2014-10-31): describe, promote, reboot with failover,
 * cluster failover, snapshots (list, create, copy), the two restores, read replicas,
 * modify and events. Every instance-returning action gives the same fields (DESIGN.md
 * catalog v1, and where the instance lives) so runbooks can poll any of them the same way.
 * Lists and tags are sent as the botocore model says (PARAM.LOCATIONNAME.N,
 * Tags.Tag.N.Key/Value); the creating actions are idempotent in effect where RDS lets
 * drbook tell its own earlier effect from someone else's (replicas, snapshots), and the
 * restores are not (RDS does not say which snapshot an instance came from). */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "aws_int.h"


/* The text of each child's sub-element sub of drb_awsx_child(n, path), as a JSON array
 * (VpcSecurityGroups/VpcSecurityGroupMembership/VpcSecurityGroupId). */
static json_t *sub_list(xmlNode *n, const char *path, const char *sub)
{
	xmlNode *c = drb_awsx_child(n, path);
	json_t *a = json_array();

	for (c = c ? c->children : NULL; a && c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (json_array_append_new(a, drb_awsx_str(c, sub)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* A TagList (<Tag><Key/><Value/></Tag>...) as a {key: value} object. */
static json_t *tag_map(xmlNode *n, const char *path)
{
	xmlNode *c = drb_awsx_child(n, path);
	json_t *o = json_object();
	int bad = 0;

	for (c = c ? c->children : NULL; o && c && !bad; c = c->next) {
		char key[256];

		if (c->type != XML_ELEMENT_NODE || drb_awsx_text(c, "Key", key, sizeof(key)) != 0)
			continue;
		drb_awsi_set(o, key, drb_awsx_str(c, "Value"), &bad);
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The catalog's instance fields; absent values are null (replica_source nil when none). */
static json_t *instance_json(xmlNode *i)
{
	json_t *o = json_object();
	xmlNode *pg;
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "id", drb_awsx_str(i, "DBInstanceIdentifier"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(i, "DBInstanceStatus"), &bad);
	drb_awsi_set(o, "engine", drb_awsx_str(i, "Engine"), &bad);
	drb_awsi_set(o, "multi_az", drb_awsx_bool(i, "MultiAZ"), &bad);
	drb_awsi_set(o, "az", drb_awsx_str(i, "AvailabilityZone"), &bad);
	drb_awsi_set(o, "secondary_az", drb_awsx_str(i, "SecondaryAvailabilityZone"), &bad);
	drb_awsi_set(o, "endpoint", drb_awsx_str(i, "Endpoint/Address"), &bad);
	drb_awsi_set(o, "port", drb_awsx_int(i, "Endpoint/Port"), &bad);
	drb_awsi_set(o, "replica_source", drb_awsx_str(i, "ReadReplicaSourceDBInstanceIdentifier"),
		     &bad);
	drb_awsi_set(o, "replicas", drb_awsx_list(i, "ReadReplicaDBInstanceIdentifiers"), &bad);
	drb_awsi_set(o, "cluster", drb_awsx_str(i, "DBClusterIdentifier"), &bad);
	drb_awsi_set(o, "arn", drb_awsx_str(i, "DBInstanceArn"), &bad);
	drb_awsi_set(o, "instance_class", drb_awsx_str(i, "DBInstanceClass"), &bad);
	drb_awsi_set(o, "vpc_security_group_ids",
		     sub_list(i, "VpcSecurityGroups", "VpcSecurityGroupId"), &bad);
	drb_awsi_set(o, "db_subnet_group", drb_awsx_str(i, "DBSubnetGroup/DBSubnetGroupName"),
		     &bad);
	pg = drb_awsx_child(i, "DBParameterGroups/DBParameterGroup");
	drb_awsi_set(o, "db_parameter_group",
		     pg ? drb_awsx_str(pg, "DBParameterGroupName") : json_null(), &bad);
	drb_awsi_set(o, "backup_retention_days", drb_awsx_int(i, "BackupRetentionPeriod"), &bad);
	drb_awsi_set(o, "pending_instance_class",
		     drb_awsx_str(i, "PendingModifiedValues/DBInstanceClass"), &bad);
	drb_awsi_set(o, "tags", tag_map(i, "TagList"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The catalog's snapshot fields. */
static json_t *snapshot_json(xmlNode *s)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "id", drb_awsx_str(s, "DBSnapshotIdentifier"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(s, "Status"), &bad);
	drb_awsi_set(o, "instance", drb_awsx_str(s, "DBInstanceIdentifier"), &bad);
	drb_awsi_set(o, "created_at", drb_awsx_str(s, "SnapshotCreateTime"), &bad);
	drb_awsi_set(o, "arn", drb_awsx_str(s, "DBSnapshotArn"), &bad);
	drb_awsi_set(o, "type", drb_awsx_str(s, "SnapshotType"), &bad);
	drb_awsi_set(o, "engine", drb_awsx_str(s, "Engine"), &bad);
	drb_awsi_set(o, "percent_progress", drb_awsx_int(s, "PercentProgress"), &bad);
	drb_awsi_set(o, "encrypted", drb_awsx_bool(s, "Encrypted"), &bad);
	drb_awsi_set(o, "source_region", drb_awsx_str(s, "SourceRegion"), &bad);
	drb_awsi_set(o, "source_snapshot", drb_awsx_str(s, "SourceDBSnapshotIdentifier"), &bad);
	drb_awsi_set(o, "tags", tag_map(s, "TagList"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Runs one Query operation whose answer holds element elem (DBInstance, DBSnapshot) and
 * returns its fields as conv makes them. */
static int object_call(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *op,
		       const json_t *params, const char *elem, json_t *(*conv)(xmlNode *),
		       const char *id, json_t **result, drb_err *err)
{
	aws_req rq = {.operation = op, .params = params};
	aws_resp resp;
	xmlNode *x;
	int rc;

	rc = drb_awsi_call(ctx, &drb_awsi_rds, ep, &rq, &resp, err);
	if (rc != 0)
		return rc;
	x = drb_awsx_find(drb_awsx_root(resp.doc), elem);
	if (!x) {
		rc = drb_err_set(err, DRB_ENOTFOUND, "rds %s: no %s '%.100s' in the answer", op,
				 elem, id ? id : "");
		goto out;
	}
	*result = conv(x);
	if (!*result)
		rc = drb_err_set(err, DRB_ENOMEM, "rds %s: out of memory", op);
out:
	drb_awsi_resp_free(&resp);
	return rc;
}

static int instance_call(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *op,
			 const json_t *params, const char *id, json_t **result, drb_err *err)
{
	return object_call(ctx, ep, op, params, "DBInstance", instance_json, id, result, err);
}

/* Builds params from (name, value) pairs ending with NULL; values may be json_t* (stolen).
 * The helper keeps every action below to its own few lines. */
static json_t *params_of(int *bad, ...)
{
	json_t *p = json_object();
	va_list ap;
	const char *k;

	if (!p) {
		*bad = 1;
		return NULL;
	}
	va_start(ap, bad);
	while ((k = va_arg(ap, const char *)) != NULL)
		drb_awsi_set(p, k, va_arg(ap, json_t *), bad);
	va_end(ap);
	return p;
}

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

/* One argument as one Query parameter. member: a list argument is sent as
 * PARAM.MEMBER.N (the list's locationName in the botocore model), a tag map as
 * PARAM.Tag.N.Key / PARAM.Tag.N.Value; an empty list or map as "PARAM=" as botocore sends
 * it. */
typedef struct rds_param {
	const char *arg, *param, *member;
} rds_param;

#define RDS_MAX_PARAMS 16

/* The actions that differ only in their operation and in which argument becomes which
 * parameter: one row each. Values are converted by the argument's schema type; an absent
 * argument is left out, or sent as its schema default when it has one. */
typedef struct rds_op {
	const char *action, *operation;
	const char *id_arg;	       /* names the object in messages */
	rds_param map[RDS_MAX_PARAMS]; /* in request order; NULL-ended */
} rds_op;

/* Where a new or restored instance lands (DESIGN.md issue 11 point 6): the same
 * arguments for every action that creates or moves one. */
#define RDS_PLACEMENT                                                                              \
	{"instance_class", "DBInstanceClass", NULL},                                               \
	    {"db_subnet_group", "DBSubnetGroupName", NULL},                                        \
	    {"subnet_group", "DBSubnetGroupName", NULL},                                           \
	    {"vpc_security_group_ids", "VpcSecurityGroupIds", "VpcSecurityGroupId"},               \
	    {"db_parameter_group", "DBParameterGroupName", NULL}, {"multi_az", "MultiAZ", NULL},   \
	{                                                                                          \
		"tags", "Tags", "Tag"                                                              \
	}

enum {
	OP_DESCRIBE,
	OP_PROMOTE,
	OP_REBOOT,
	OP_RESTORE_SNAPSHOT,
	OP_RESTORE_PITR,
	OP_READ_REPLICA,
	OP_MODIFY,
	OP_CREATE_SNAPSHOT,
	OP_COPY_SNAPSHOT,
	OP_DELETE
};

static const rds_op ops[] = {
    [OP_DESCRIBE] = {"aws.rds.describe_db_instance",
		     "DescribeDBInstances",
		     "id",
		     {{"id", "DBInstanceIdentifier", NULL}}},
    [OP_PROMOTE] = {"aws.rds.promote_read_replica",
		    "PromoteReadReplica",
		    "id",
		    {{"id", "DBInstanceIdentifier", NULL},
		     {"backup_retention_days", "BackupRetentionPeriod", NULL}}},
    [OP_REBOOT] = {"aws.rds.reboot_db_instance",
		   "RebootDBInstance",
		   "id",
		   {{"id", "DBInstanceIdentifier", NULL},
		    {"force_failover", "ForceFailover", NULL}}},
    [OP_RESTORE_SNAPSHOT] = {"aws.rds.restore_db_instance_from_snapshot",
			     "RestoreDBInstanceFromDBSnapshot",
			     "target",
			     {{"target", "DBInstanceIdentifier", NULL},
			      {"snapshot", "DBSnapshotIdentifier", NULL},
			      {"availability_zone", "AvailabilityZone", NULL},
			      RDS_PLACEMENT}},
    /* RestoreTime and UseLatestRestorableTime are added by drb_awsi_rds_restore_pitr. */
    [OP_RESTORE_PITR] = {"aws.rds.restore_db_instance_to_point_in_time",
			 "RestoreDBInstanceToPointInTime",
			 "target",
			 {{"source", "SourceDBInstanceIdentifier", NULL},
			  {"target", "TargetDBInstanceIdentifier", NULL},
			  {"availability_zone", "AvailabilityZone", NULL},
			  RDS_PLACEMENT}},
    [OP_READ_REPLICA] = {"aws.rds.create_db_instance_read_replica",
			 "CreateDBInstanceReadReplica",
			 "id",
			 {{"id", "DBInstanceIdentifier", NULL},
			  {"source", "SourceDBInstanceIdentifier", NULL},
			  {"availability_zone", "AvailabilityZone", NULL},
			  {"kms_key_id", "KmsKeyId", NULL},
			  RDS_PLACEMENT}},
    [OP_MODIFY] = {"aws.rds.modify_db_instance",
		   "ModifyDBInstance",
		   "id",
		   {{"id", "DBInstanceIdentifier", NULL},
		    {"instance_class", "DBInstanceClass", NULL},
		    {"db_subnet_group", "DBSubnetGroupName", NULL},
		    {"vpc_security_group_ids", "VpcSecurityGroupIds", "VpcSecurityGroupId"},
		    {"apply_immediately", "ApplyImmediately", NULL},
		    {"db_parameter_group", "DBParameterGroupName", NULL},
		    {"backup_retention_days", "BackupRetentionPeriod", NULL},
		    {"multi_az", "MultiAZ", NULL},
		    {"allocated_storage", "AllocatedStorage", NULL},
		    {"deletion_protection", "DeletionProtection", NULL}}},
    [OP_CREATE_SNAPSHOT] = {"aws.rds.create_db_snapshot",
			    "CreateDBSnapshot",
			    "snapshot",
			    {{"snapshot", "DBSnapshotIdentifier", NULL},
			     {"instance", "DBInstanceIdentifier", NULL},
			     {"tags", "Tags", "Tag"}}},
    [OP_COPY_SNAPSHOT] = {"aws.rds.copy_db_snapshot",
			  "CopyDBSnapshot",
			  "target",
			  {{"source", "SourceDBSnapshotIdentifier", NULL},
			   {"target", "TargetDBSnapshotIdentifier", NULL},
			   {"kms_key_id", "KmsKeyId", NULL},
			   {"tags", "Tags", "Tag"},
			   {"copy_tags", "CopyTags", NULL}}},
    [OP_DELETE] = {"aws.rds.delete_db_instance",
		   "DeleteDBInstance",
		   "id",
		   {{"id", "DBInstanceIdentifier", NULL},
		    {"skip_final_snapshot", "SkipFinalSnapshot", NULL},
		    {"final_snapshot", "FinalDBSnapshotIdentifier", NULL},
		    {"delete_automated_backups", "DeleteAutomatedBackups", NULL}}},
};

/* The Query value of a scalar argument that passed its schema check ("true" -> true,
 * "5" -> 5). */
static json_t *param_value(const drb_arg_spec *a, const json_t *v)
{
	json_t *dflt = NULL, *out;

	if ((!v || json_is_null(v)) && a->def)
		v = dflt = json_loads(a->def, JSON_DECODE_ANY, NULL);
	if (!v || json_is_null(v))
		out = NULL;
	else if (a->type == DRB_T_BOOL)
		out = json_boolean(json_is_true(v) ||
				   (json_is_string(v) && !strcmp(json_string_value(v), "true")));
	else if (a->type == DRB_T_INT && json_is_string(v))
		out = json_integer(strtoll(json_string_value(v), NULL, 10));
	else if (a->type == DRB_T_INT && json_is_real(v))
		out = json_integer((json_int_t)json_real_value(v));
	else
		out = json_deep_copy(v);
	json_decref(dflt);
	return out;
}

/* A tag value as text: strings as given, integers and booleans spelt out ({env: 1}). */
static int tag_text(const json_t *v, char *tmp, size_t n, const char **out)
{
	if (json_is_string(v))
		*out = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(tmp, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(tmp, n, "%s", json_is_true(v) ? "true" : "false");
	else
		return -1;
	if (!json_is_string(v))
		*out = tmp;
	return 0;
}

/* Adds one argument's parameters to p. */
static int add_param(const char *action, const rds_param *m, const json_t *v, json_t *p,
		     drb_err *err)
{
	char key[160];
	int bad = 0;

	if (json_is_array(v)) {
		const json_t *e;
		size_t i;

		if (json_array_size(v) == 0)
			drb_awsi_set(p, m->param, json_string(""), &bad);
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e))
				return drb_err_set(err, DRB_EINVAL,
						   "%s: argument '%s' must be a list of strings "
						   "(item %zu is not)",
						   action, m->arg, i + 1);
			snprintf(key, sizeof(key), "%s.%s.%zu", m->param, m->member, i + 1);
			drb_awsi_set(p, key, json_string(json_string_value(e)), &bad);
		}
	} else if (json_is_object(v)) {
		const char *k;
		const json_t *e;
		size_t i = 0;

		if (json_object_size(v) == 0)
			drb_awsi_set(p, m->param, json_string(""), &bad);
		json_object_foreach((json_t *)v, k, e)
		{
			char tmp[64];
			const char *t = NULL;

			if (!*k || tag_text(e, tmp, sizeof(tmp), &t) != 0)
				return drb_err_set(err, DRB_EINVAL,
						   "%s: argument '%s': tag '%.100s' needs a "
						   "non-empty key and a string (or number) value",
						   action, m->arg, k);
			i++;
			snprintf(key, sizeof(key), "%s.%s.%zu.Key", m->param, m->member, i);
			drb_awsi_set(p, key, json_string(k), &bad);
			snprintf(key, sizeof(key), "%s.%s.%zu.Value", m->param, m->member, i);
			drb_awsi_set(p, key, json_string(t), &bad);
		}
	} else {
		drb_awsi_set(p, m->param, json_incref((json_t *)v), &bad);
	}
	return bad ? nomem(action, err) : 0;
}

/* The Query parameters of op from args (already checked against the action's schema). *out
 * is the caller's. */
static int op_params(const rds_op *op, const json_t *args, json_t **out, drb_err *err)
{
	const drb_action *a = drb_aws_action(op->action);
	json_t *p = json_object();
	int rc = 0;

	*out = NULL;
	if (!p)
		return nomem(op->action, err);
	if (json_object_get(args, "subnet_group") && json_object_get(args, "db_subnet_group") &&
	    !json_is_null(json_object_get(args, "subnet_group")) &&
	    !json_is_null(json_object_get(args, "db_subnet_group"))) {
		json_decref(p);
		return drb_err_set(err, DRB_EINVAL,
				   "%s: give 'db_subnet_group' or its old name 'subnet_group', "
				   "not both",
				   op->action);
	}
	for (size_t i = 0; rc == 0 && i < RDS_MAX_PARAMS && op->map[i].arg; i++) {
		const drb_arg_spec *spec = drb_schema_arg(a->schema, op->map[i].arg);
		const json_t *raw = json_object_get(args, op->map[i].arg);
		json_t *v;

		if (!spec)
			continue;
		if (op->map[i].member) {
			if (raw && !json_is_null(raw))
				rc = add_param(op->action, &op->map[i], raw, p, err);
			continue;
		}
		v = param_value(spec, raw);
		if (v)
			rc = add_param(op->action, &op->map[i], v, p, err);
		json_decref(v);
	}
	if (rc != 0) {
		json_decref(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int instance_action(const rds_op *op, drb_action_ctx *ctx, const json_t *args,
			   json_t **result, drb_err *err)
{
	drb_aws_endpoint ep;
	json_t *p = NULL;
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, op->action, &ep, err);
	if (rc == 0)
		rc = op_params(op, args, &p, err);
	if (rc == 0)
		rc = instance_call(ctx, &ep, op->operation, p,
				   json_string_value(json_object_get(args, op->id_arg)), result,
				   err);
	json_decref(p);
	return rc;
}

int drb_awsi_rds_describe(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return instance_action(&ops[OP_DESCRIBE], ctx, args, result, err);
}

/* PromoteReadReplica refused with InvalidDBInstanceState: the instance may already be
 * promoted, or being promoted by a request whose answer was lost (a crash, then resume). As
 * DESIGN.md's "effects in flight" asks, that is not a failure: the instance is read every 2 s
 * until it is available and no longer a replica (the result), within the step's time budget.
 * Still a replica and not being modified: the refusal stands (*err is kept). */
static int promote_settle(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	json_t *dargs = json_deep_copy(args), *r = NULL;
	drb_err first = *err, one = {0};
	int rc = 0;

	if (!dargs)
		return drb_err_set(err, DRB_ENOMEM, "aws.rds.promote_read_replica: out of memory");
	json_object_del(dargs, "backup_retention_days");
	for (;;) {
		const char *st;

		json_decref(r);
		r = NULL;
		if ((rc = instance_action(&ops[OP_DESCRIBE], ctx, dargs, &r, &one))) {
			*err = one;
			break;
		}
		st = json_string_value(json_object_get(r, "status"));
		if (json_is_null(json_object_get(r, "replica_source")) ||
		    !json_object_get(r, "replica_source")) {
			if (st && !strcmp(st, "available")) {
				*result = r;
				r = NULL;
				break;
			}
		} else if (!st || strcmp(st, "modifying")) {
			*err = first; /* a replica nobody is promoting: the refusal was real */
			rc = first.code ? first.code : DRB_ERR;
			break;
		}
		if ((ctx->cancel && *ctx->cancel) ||
		    (ctx->deadline > 0 && drb_mono_now() + 2.0 > ctx->deadline)) {
			rc = drb_err_set(err, DRB_ETIMEOUT,
					 "aws.rds.promote_read_replica: %s is still being promoted "
					 "(status %s) at the step's time limit",
					 json_string_value(json_object_get(args, "id")) ?: "?",
					 st ?: "?");
			break;
		}
		if (!ctx->replay)
			drb_sleep_s(2.0);
	}
	json_decref(r);
	json_decref(dargs);
	return rc;
}

int drb_awsi_rds_promote(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	int rc = instance_action(&ops[OP_PROMOTE], ctx, args, result, err);

	if (rc != 0 && strstr(err->msg, "InvalidDBInstanceState"))
		rc = promote_settle(ctx, args, result, err);
	return rc;
}

int drb_awsi_rds_reboot(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return instance_action(&ops[OP_REBOOT], ctx, args, result, err);
}

int drb_awsi_rds_restore_snapshot(drb_action_ctx *ctx, const json_t *args, json_t **result,
				  drb_err *err)
{
	return instance_action(&ops[OP_RESTORE_SNAPSHOT], ctx, args, result, err);
}

/* Deleting an instance that is already gone succeeds (status deleted): a teardown run twice,
 * or after a setup that failed half-way, has nothing more to do. */
int drb_awsi_rds_delete(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	int rc = instance_action(&ops[OP_DELETE], ctx, args, result, err);

	if (rc == DRB_ENOTFOUND) {
		drb_err_clear(err);
		*result =
		    json_pack("{s:s?, s:s}", "id", json_string_value(json_object_get(args, "id")),
			      "status", "deleted");
		rc = *result ? 0 : nomem("aws.rds.delete_db_instance", err);
	}
	return rc;
}

int drb_awsi_rds_failover_cluster(drb_action_ctx *ctx, const json_t *args, json_t **result,
				  drb_err *err)
{
	const char *A = "aws.rds.failover_db_cluster", *cluster = NULL, *target = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "FailoverDBCluster"};
	aws_resp resp = {0};
	json_t *p = NULL, *o = NULL;
	xmlNode *c, *m;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "target", &target, err);
	if (rc != 0)
		goto out;
	p = params_of(&bad, "DBClusterIdentifier", json_string(cluster), NULL);
	if (!bad && target)
		drb_awsi_set(p, "TargetDBInstanceIdentifier", json_string(target), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.params = p;
	rc = drb_awsi_call(ctx, &drb_awsi_rds, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	c = drb_awsx_find(drb_awsx_root(resp.doc), "DBCluster");
	if (!c) {
		rc = drb_err_set(err, DRB_ENOTFOUND,
				 "rds FailoverDBCluster: no cluster in the answer");
		goto out;
	}
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "id", drb_awsx_str(c, "DBClusterIdentifier"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(c, "Status"), &bad);
	drb_awsi_set(o, "writer", json_null(), &bad);
	for (m = drb_awsx_child(c, "DBClusterMembers/DBClusterMember"); m && !bad;
	     m = drb_awsx_next(m)) {
		char w[8];

		if (drb_awsx_text(m, "IsClusterWriter", w, sizeof(w)) == 0 && !strcmp(w, "true"))
			drb_awsi_set(o, "writer", drb_awsx_str(m, "DBInstanceIdentifier"), &bad);
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(p);
	drb_awsi_resp_free(&resp);
	return rc;
}

/* Newest first: the order a runbook picking a restore point wants. RFC 3339 strings in UTC
 * compare as text once their forms agree, but AWS sends fractions or not: compare parsed. */
static int by_created_desc(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const char *sx = json_string_value(json_object_get(x, "created_at"));
	const char *sy = json_string_value(json_object_get(y, "created_at"));
	int64_t mx = 0, my = 0;

	if (!sx || drb_rfc3339_parse(sx, &mx) != 0)
		mx = INT64_MIN;
	if (!sy || drb_rfc3339_parse(sy, &my) != 0)
		my = INT64_MIN;
	return mx < my ? 1 : mx > my ? -1 : 0;
}

/* One row of describe_db_snapshots' list (the restore-point view of a snapshot). */
static json_t *snapshot_row(xmlNode *s)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "snapshot", drb_awsx_str(s, "DBSnapshotIdentifier"), &bad);
	drb_awsi_set(o, "created_at", drb_awsx_str(s, "SnapshotCreateTime"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(s, "Status"), &bad);
	drb_awsi_set(o, "type", drb_awsx_str(s, "SnapshotType"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int drb_awsi_rds_snapshots(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.rds.describe_db_snapshots", *id = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL, *list = NULL, **items = NULL, *sorted = NULL;
	int rc, bad = 0;
	size_t i, n;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "id", &id, err);
	if (rc != 0)
		goto out;
	p = params_of(&bad, "MaxRecords", json_integer(100), NULL);
	if (!bad && id)
		drb_awsi_set(p, "DBInstanceIdentifier", json_string(id), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_pages(ctx, &drb_awsi_rds, &ep,
			    &(const aws_pages){.operation = "DescribeDBSnapshots", .token = "Marker",
					       .items = {"DBSnapshots/DBSnapshot"},
					       .from_xml = snapshot_row, .what = "snapshots"},
			    p, &list, err);
	if (rc != 0)
		goto out;
	n = json_array_size(list);
	items = calloc(n ? n : 1, sizeof(*items));
	sorted = json_array();
	if (!items || !sorted) {
		rc = nomem(A, err);
		goto out;
	}
	for (i = 0; i < n; i++)
		items[i] = json_array_get(list, i);
	qsort(items, n, sizeof(*items), by_created_desc);
	for (i = 0; i < n; i++)
		if (json_array_append(sorted, items[i]) != 0) {
			rc = nomem(A, err);
			goto out;
		}
	*result = sorted;
	sorted = NULL;
out:
	free(items);
	json_decref(sorted);
	json_decref(list);
	json_decref(p);
	return rc;
}

int drb_awsi_rds_restore_pitr(drb_action_ctx *ctx, const json_t *args, json_t **result,
			      drb_err *err)
{
	const rds_op *op = &ops[OP_RESTORE_PITR];
	const char *A = op->action, *target = NULL, *when = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL;
	int rc, bad = 0, latest = 0;
	int64_t ms;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "target", &target, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "restore_time", &when, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "latest", &latest, err);
	if (rc != 0)
		goto out;
	if (!!when == !!latest) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: give exactly one of 'restore_time' and 'latest: true'", A);
		goto out;
	}
	if (when && drb_rfc3339_parse(when, &ms) != 0) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'restore_time' must be an RFC 3339 time, e.g. "
				 "2026-11-25T16:39:06Z",
				 A);
		goto out;
	}
	rc = op_params(op, args, &p, err);
	if (rc != 0)
		goto out;
	if (when) {
		char t[32];

		/* AWS wants UTC with a Z; normalise offsets the runbook may use. */
		drb_rfc3339_s(ms, t);
		drb_awsi_set(p, "RestoreTime", json_string(t), &bad);
	}
	if (latest)
		drb_awsi_set(p, "UseLatestRestorableTime", json_true(), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = instance_call(ctx, &ep, op->operation, p, target, result, err);
out:
	json_decref(p);
	return rc;
}

/* The AWS error code in a message drb_awsi_call made ("rds Op: Code: message"). */
static int aws_code_is(const drb_err *e, const char *op, const char *code)
{
	char want[200];

	snprintf(want, sizeof(want), "rds %s: %s:", op, code);
	return !strncmp(e->msg, want, strlen(want));
}

/* "arn:aws:rds:REGION:ACCOUNT:db:NAME" -> NAME (and its region into region when given);
 * a plain identifier is itself. */
static const char *arn_name(const char *s, char *region, size_t n)
{
	const char *p = s;

	if (region && n)
		region[0] = '\0';
	if (strncmp(s, "arn:", 4) != 0)
		return s;
	for (int field = 0; field < 3 && p; field++) /* arn, partition, service */
		p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
	if (p && region && n) {
		const char *e = strchr(p, ':');
		size_t len = e ? (size_t)(e - p) : 0;

		snprintf(region, n, "%.*s", (int)(len < n ? len : n - 1), p);
	}
	p = strrchr(s, ':');
	return p ? p + 1 : s;
}

/* Whether the instance result r replicates source (an identifier or an ARN; RDS may report
 * either form). */
static int replicates(const json_t *r, const char *source)
{
	const char *rs = json_string_value(json_object_get(r, "replica_source"));

	if (!rs)
		return 0;
	if (!strcmp(rs, source))
		return 1;
	/* Two ARNs must be equal (the same name in two regions is two instances); an ARN and
	 * an identifier agree on the name. */
	if (!strncmp(rs, "arn:", 4) && !strncmp(source, "arn:", 4))
		return 0;
	return !strcmp(arn_name(rs, NULL, 0), arn_name(source, NULL, 0));
}

int drb_awsi_rds_read_replica(drb_action_ctx *ctx, const json_t *args, json_t **result,
			      drb_err *err)
{
	const rds_op *op = &ops[OP_READ_REPLICA];
	const char *A = op->action, *id = NULL, *source = NULL, *source_region = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL, *d = NULL, *existing = NULL;
	drb_err e2 = {0};
	char arn_region[64];
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &id, err);
	if (rc == 0)
		rc = drb_arg_string(args, "source", &source, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "source_region", &source_region, err);
	if (rc != 0)
		goto out;
	arn_name(source, arn_region, sizeof(arn_region));
	/* A replica in another region names its source by ARN: the identifier alone means an
	 * instance of this region. */
	if (source_region && strcmp(source_region, ep.region) != 0 && !arn_region[0]) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: a source in another region (%s) must be given as its ARN "
				 "(arn:aws:rds:%s:ACCOUNT:db:%s)",
				 A, source_region, source_region, source);
		goto out;
	}
	if (source_region && arn_region[0] && strcmp(source_region, arn_region) != 0) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'source_region' %s is not the region of the source ARN (%s)",
				 A, source_region, arn_region);
		goto out;
	}
	rc = op_params(op, args, &p, err);
	if (rc != 0)
		goto out;
	/* Idempotent in effect: a replica of this source under this name (a run that died
	 * after sending) is the answer, not an error; any other instance by that name is. */
	d = params_of(&bad, "DBInstanceIdentifier", json_string(id), NULL);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = instance_call(ctx, &ep, "DescribeDBInstances", d, id, &existing, &e2);
	if (rc == 0 && replicates(existing, source)) {
		*result = existing;
		existing = NULL;
		goto out;
	}
	if (rc == 0) {
		rc = drb_err_set(err, DRB_ERR,
				 "%s: an instance '%.100s' already exists and is not a read "
				 "replica of %.200s (its source: %.200s)",
				 A, id, source,
				 json_string_value(json_object_get(existing, "replica_source"))
				     ?: "none");
		goto out;
	}
	if (rc != DRB_ENOTFOUND) {
		*err = e2;
		goto out;
	}
	rc = instance_call(ctx, &ep, op->operation, p, id, result, err);
	if (rc != 0 && aws_code_is(err, op->operation, "DBInstanceAlreadyExists")) {
		/* Created meanwhile (two runs racing): the same check as above. */
		if (instance_call(ctx, &ep, "DescribeDBInstances", d, id, &existing, &e2) == 0 &&
		    replicates(existing, source)) {
			*result = existing;
			existing = NULL;
			rc = 0;
		}
	}
out:
	json_decref(existing);
	json_decref(d);
	json_decref(p);
	return rc;
}

int drb_awsi_rds_modify(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const rds_op *op = &ops[OP_MODIFY];
	size_t changes = 0;
	int rc;

	*result = NULL;
	/* The schema's own messages first (a misspelt argument is not "nothing to change"). */
	rc = drb_args_check(drb_aws_action(op->action)->schema, args, err);
	if (rc != 0)
		return drb_err_prefix(err, "%s: ", op->action);
	for (size_t i = 1; i < RDS_MAX_PARAMS && op->map[i].arg; i++) {
		const json_t *v = json_object_get(args, op->map[i].arg);

		if (v && !json_is_null(v) && strcmp(op->map[i].arg, "apply_immediately") != 0)
			changes++;
	}
	if (changes == 0)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: nothing to change: give at least one of instance_class, "
				   "multi_az, vpc_security_group_ids, db_subnet_group, "
				   "db_parameter_group, backup_retention_days, allocated_storage, "
				   "deletion_protection",
				   op->action);
	return instance_action(op, ctx, args, result, err);
}

/* DescribeDBSnapshots of one snapshot identifier: its fields, or DRB_ENOTFOUND. */
static int snapshot_lookup(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *id,
			   json_t **out, drb_err *err)
{
	int bad = 0, rc;
	json_t *p = params_of(&bad, "DBSnapshotIdentifier", json_string(id), NULL);

	if (bad) {
		json_decref(p);
		return nomem("rds DescribeDBSnapshots", err);
	}
	rc = object_call(ctx, ep, "DescribeDBSnapshots", p, "DBSnapshot", snapshot_json, id, out,
			 err);
	json_decref(p);
	return rc;
}

static int snapshot_action(const rds_op *op, drb_action_ctx *ctx, const json_t *args,
			   json_t **result, drb_err *err)
{
	const char *A = op->action, *id = NULL, *source = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL, *have = NULL, *src = NULL;
	drb_err e2 = {0};
	int rc, copy = op == &ops[OP_COPY_SNAPSHOT];

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, op->id_arg, &id, err);
	if (rc == 0)
		rc = drb_arg_string(args, copy ? "source" : "instance", &source, err);
	if (rc == 0)
		rc = op_params(op, args, &p, err);
	if (rc != 0)
		goto out;
	rc = object_call(ctx, &ep, op->operation, p, "DBSnapshot", snapshot_json, id, result, err);
	if (rc == 0 || !aws_code_is(err, op->operation, "DBSnapshotAlreadyExists"))
		goto out;
	/* Idempotent in effect: the snapshot a run that died after sending asked for is the
	 * answer. It is that one when it was taken of the same instance (a copy: of the
	 * source snapshot's instance); any other snapshot by that name stays an error. */
	if (snapshot_lookup(ctx, &ep, id, &have, &e2) != 0)
		goto out;
	{
		const char *inst = json_string_value(json_object_get(have, "instance"));
		const char *want = source;
		char src_region[64];

		if (copy) {
			arn_name(source, src_region, sizeof(src_region));
			want = NULL;
			if (!src_region[0] || !strcmp(src_region, ep.region)) {
				if (snapshot_lookup(ctx, &ep, arn_name(source, NULL, 0), &src,
						    &e2) == 0)
					want = json_string_value(json_object_get(src, "instance"));
			} else {
				const char *ss =
				    json_string_value(json_object_get(have, "source_snapshot"));

				if (ss && !strcmp(ss, source))
					want = inst;
			}
		}
		if (inst && want && !strcmp(inst, want)) {
			*result = have;
			have = NULL;
			rc = 0;
		}
	}
out:
	json_decref(src);
	json_decref(have);
	json_decref(p);
	return rc;
}

int drb_awsi_rds_create_snapshot(drb_action_ctx *ctx, const json_t *args, json_t **result,
				 drb_err *err)
{
	return snapshot_action(&ops[OP_CREATE_SNAPSHOT], ctx, args, result, err);
}

int drb_awsi_rds_copy_snapshot(drb_action_ctx *ctx, const json_t *args, json_t **result,
			       drb_err *err)
{
	return snapshot_action(&ops[OP_COPY_SNAPSHOT], ctx, args, result, err);
}

/* Oldest first, as RDS lists events; ties keep the order of the answer. */
typedef struct ev_item {
	json_t *ev;
	int64_t ms;
	size_t i;
} ev_item;

static int by_time_asc(const void *a, const void *b)
{
	const ev_item *x = a, *y = b;

	if (x->ms != y->ms)
		return x->ms < y->ms ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static json_t *event_json(xmlNode *e)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "time", drb_awsx_str(e, "Date"), &bad);
	drb_awsi_set(o, "message", drb_awsx_str(e, "Message"), &bad);
	drb_awsi_set(o, "categories", drb_awsx_list(e, "EventCategories"), &bad);
	drb_awsi_set(o, "source", drb_awsx_str(e, "SourceIdentifier"), &bad);
	drb_awsi_set(o, "source_type", drb_awsx_str(e, "SourceType"), &bad);
	drb_awsi_set(o, "source_arn", drb_awsx_str(e, "SourceArn"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The DescribeEvents parameters of args (checked against the schema). *out is the
 * caller's. */
static int events_params(const char *A, const json_t *args, json_t **out, drb_err *err)
{
	const char *sid = NULL, *stype = NULL, *start = NULL, *end = NULL;
	long long duration = -1;
	const json_t *cats = json_object_get(args, "event_categories");
	json_t *p = NULL;
	int rc, bad = 0;
	int64_t ms;
	char t[32];

	*out = NULL;
	rc = drb_arg_string_opt(args, "source_identifier", &sid, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "source_type", &stype, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "start_time", &start, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "end_time", &end, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "duration", &duration, err);
	if (rc != 0)
		return drb_err_prefix(err, "%s: ", A);
	if (duration >= 0 && (start || end))
		return drb_err_set(err, DRB_EINVAL,
				   "%s: give 'duration' (minutes back from now) or "
				   "'start_time'/'end_time', not both",
				   A);
	if (duration == 0 || duration > 20160)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: 'duration' is minutes, 1..20160 (RDS keeps 14 days of "
				   "events)",
				   A);
	/* RDS refuses a source identifier without its type: an instance unless told. */
	if (sid && !stype)
		stype = "db-instance";
	p = json_object();
	if (!p)
		return nomem(A, err);
	if (sid)
		drb_awsi_set(p, "SourceIdentifier", json_string(sid), &bad);
	if (stype)
		drb_awsi_set(p, "SourceType", json_string(stype), &bad);
	for (int k = 0; k < 2; k++) {
		const char *v = k ? end : start;

		if (!v)
			continue;
		if (drb_rfc3339_parse(v, &ms) != 0) {
			json_decref(p);
			return drb_err_set(err, DRB_EINVAL,
					   "%s: '%s' must be an RFC 3339 time, e.g. "
					   "2026-11-25T16:39:06Z",
					   A, k ? "end_time" : "start_time");
		}
		drb_rfc3339_s(ms, t);
		drb_awsi_set(p, k ? "EndTime" : "StartTime", json_string(t), &bad);
	}
	if (duration > 0)
		drb_awsi_set(p, "Duration", json_integer(duration), &bad);
	if (bad) {
		json_decref(p);
		return nomem(A, err);
	}
	if (cats && !json_is_null(cats)) {
		rds_param m = {"event_categories", "EventCategories", "EventCategory"};

		rc = add_param(A, &m, cats, p, err);
		if (rc != 0) {
			json_decref(p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

int drb_awsi_rds_events(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.rds.describe_events";
	drb_aws_endpoint ep;
	json_t *base = NULL, *list = NULL, *o = NULL;
	ev_item *items = NULL;
	int rc, bad = 0;
	size_t i, n;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = events_params(A, args, &base, err);
	if (rc != 0)
		goto out;
	drb_awsi_set(base, "MaxRecords", json_integer(100), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_pages(ctx, &drb_awsi_rds, &ep,
			    &(const aws_pages){.operation = "DescribeEvents", .token = "Marker",
					       .items = {"Events/Event"}, .from_xml = event_json,
					       .what = "events"},
			    base, &list, err);
	if (rc != 0)
		goto out;
	n = json_array_size(list);
	items = calloc(n ? n : 1, sizeof(*items));
	o = json_pack("{s:[]}", "events");
	if (!items || !o) {
		rc = nomem(A, err);
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *t;

		items[i].ev = json_array_get(list, i);
		items[i].i = i;
		t = json_string_value(json_object_get(items[i].ev, "time"));
		if (!t || drb_rfc3339_parse(t, &items[i].ms) != 0)
			items[i].ms = INT64_MIN;
	}
	qsort(items, n, sizeof(*items), by_time_asc);
	for (i = 0; i < n; i++)
		if (json_array_append(json_object_get(o, "events"), items[i].ev) != 0) {
			rc = nomem(A, err);
			goto out;
		}
	*result = o;
	o = NULL;
out:
	free(items);
	json_decref(o);
	json_decref(list);
	json_decref(base);
	return rc;
}
