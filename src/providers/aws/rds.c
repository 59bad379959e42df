/* The aws.rds.* actions (RDS Query API 2014-10-31): describe, promote, reboot with failover,
 * cluster failover, snapshots and the two restores. Every instance-returning action gives
 * the same fields (DESIGN.md catalog v1) so runbooks can poll any of them the same way. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "aws_int.h"

#define MAX_PAGES 50

/* The catalog's instance fields; absent values are null (replica_source nil when none). */
static json_t *instance_json(xmlNode *i)
{
	json_t *o = json_object();
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
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Runs one Query operation whose answer holds a DBInstance and returns its fields. */
static int instance_call(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *op,
			 const json_t *params, const char *id, json_t **result, drb_err *err)
{
	aws_req rq = {.operation = op, .params = params};
	aws_resp resp;
	xmlNode *inst;
	int rc;

	rc = drb_awsi_call(ctx, &drb_awsi_rds, ep, &rq, &resp, err);
	if (rc != 0)
		return rc;
	inst = drb_awsx_find(xmlDocGetRootElement(resp.doc), "DBInstance");
	if (!inst) {
		rc = drb_err_set(err, DRB_ENOTFOUND,
				 "rds %s: no DB instance '%.100s' in the answer", op, id);
		goto out;
	}
	*result = instance_json(inst);
	if (!*result)
		rc = drb_err_set(err, DRB_ENOMEM, "rds %s: out of memory", op);
out:
	drb_awsi_resp_free(&resp);
	return rc;
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

/* The instance actions that differ only in their operation and in which argument becomes
 * which parameter: one row each. Values are converted by the argument's schema type; an
 * absent argument is left out, or sent as its schema default when it has one. */
typedef struct rds_op {
	const char *action, *operation;
	const char *id_arg;    /* names the instance in messages */
	const char *map[6][2]; /* {argument, Query parameter}, in request order; NULL-ended */
} rds_op;

static const rds_op ops[] = {
    {"aws.rds.describe_db_instance", "DescribeDBInstances", "id", {{"id", "DBInstanceIdentifier"}}},
    {"aws.rds.promote_read_replica",
     "PromoteReadReplica",
     "id",
     {{"id", "DBInstanceIdentifier"}, {"backup_retention_days", "BackupRetentionPeriod"}}},
    {"aws.rds.reboot_db_instance",
     "RebootDBInstance",
     "id",
     {{"id", "DBInstanceIdentifier"}, {"force_failover", "ForceFailover"}}},
    {"aws.rds.restore_db_instance_from_snapshot",
     "RestoreDBInstanceFromDBSnapshot",
     "target",
     {{"target", "DBInstanceIdentifier"},
      {"snapshot", "DBSnapshotIdentifier"},
      {"instance_class", "DBInstanceClass"},
      {"subnet_group", "DBSubnetGroupName"},
      {"multi_az", "MultiAZ"}}},
};

/* The Query value of an argument that passed its schema check ("true" -> true, "5" -> 5). */
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

static int instance_action(const rds_op *op, drb_action_ctx *ctx, const json_t *args,
			   json_t **result, drb_err *err)
{
	const drb_action *a = drb_aws_action(op->action);
	drb_aws_endpoint ep;
	json_t *p = NULL;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, op->action, &ep, err);
	if (rc != 0)
		return rc;
	p = json_object();
	for (size_t i = 0; p && !bad && i < 6 && op->map[i][0]; i++) {
		const drb_arg_spec *spec = drb_schema_arg(a->schema, op->map[i][0]);
		json_t *v = spec ? param_value(spec, json_object_get(args, op->map[i][0])) : NULL;

		if (v)
			drb_awsi_set(p, op->map[i][1], v, &bad);
	}
	if (!p || bad)
		rc = nomem(op->action, err);
	else
		rc = instance_call(ctx, &ep, op->operation, p,
				   json_string_value(json_object_get(args, op->id_arg)), result,
				   err);
	json_decref(p);
	return rc;
}

int drb_awsi_rds_describe(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return instance_action(&ops[0], ctx, args, result, err);
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
		if ((rc = instance_action(&ops[0], ctx, dargs, &r, &one))) {
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
	int rc = instance_action(&ops[1], ctx, args, result, err);

	if (rc != 0 && strstr(err->msg, "InvalidDBInstanceState"))
		rc = promote_settle(ctx, args, result, err);
	return rc;
}

int drb_awsi_rds_reboot(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	return instance_action(&ops[2], ctx, args, result, err);
}

int drb_awsi_rds_restore_snapshot(drb_action_ctx *ctx, const json_t *args, json_t **result,
				  drb_err *err)
{
	return instance_action(&ops[3], ctx, args, result, err);
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
	c = drb_awsx_find(xmlDocGetRootElement(resp.doc), "DBCluster");
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

int drb_awsi_rds_snapshots(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.rds.describe_db_snapshots", *id = NULL;
	drb_aws_endpoint ep;
	json_t *list = NULL, **items = NULL, *sorted = NULL;
	char marker[512] = "";
	int rc, bad = 0, page;
	size_t i, n;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "id", &id, err);
	if (rc != 0)
		goto out;
	list = json_array();
	if (!list) {
		rc = nomem(A, err);
		goto out;
	}
	for (page = 0; page < MAX_PAGES; page++) {
		aws_req rq = {.operation = "DescribeDBSnapshots"};
		aws_resp resp;
		json_t *p = params_of(&bad, "MaxRecords", json_integer(100), NULL);
		xmlNode *root, *s;

		if (!bad && id)
			drb_awsi_set(p, "DBInstanceIdentifier", json_string(id), &bad);
		if (!bad && marker[0])
			drb_awsi_set(p, "Marker", json_string(marker), &bad);
		if (bad) {
			json_decref(p);
			rc = nomem(A, err);
			goto out;
		}
		rq.params = p;
		rc = drb_awsi_call(ctx, &drb_awsi_rds, &ep, &rq, &resp, err);
		json_decref(p);
		if (rc != 0)
			goto out;
		root = xmlDocGetRootElement(resp.doc);
		s = drb_awsx_find(root, "DBSnapshots");
		for (s = s ? drb_awsx_child(s, "DBSnapshot") : NULL; s && !bad;
		     s = drb_awsx_next(s)) {
			json_t *o = json_object();

			if (!o) {
				bad = 1;
				break;
			}
			drb_awsi_set(o, "snapshot", drb_awsx_str(s, "DBSnapshotIdentifier"), &bad);
			drb_awsi_set(o, "created_at", drb_awsx_str(s, "SnapshotCreateTime"), &bad);
			drb_awsi_set(o, "status", drb_awsx_str(s, "Status"), &bad);
			drb_awsi_set(o, "type", drb_awsx_str(s, "SnapshotType"), &bad);
			if (json_array_append_new(list, o) != 0)
				bad = 1;
		}
		marker[0] = '\0';
		s = drb_awsx_find(root, "Marker");
		if (s)
			drb_awsx_text(s, NULL, marker, sizeof(marker));
		drb_awsi_resp_free(&resp);
		if (bad) {
			rc = nomem(A, err);
			goto out;
		}
		if (!marker[0])
			break;
	}
	if (page == MAX_PAGES) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: more than %d pages of snapshots", A,
				 MAX_PAGES);
		goto out;
	}
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
	return rc;
}

int drb_awsi_rds_restore_pitr(drb_action_ctx *ctx, const json_t *args, json_t **result,
			      drb_err *err)
{
	const char *A = "aws.rds.restore_db_instance_to_point_in_time";
	const char *source = NULL, *target = NULL, *when = NULL, *cls = NULL, *subnet = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL;
	int rc, bad = 0, latest = 0, multi = -1;
	int64_t ms;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_rds, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "source", &source, err);
	if (rc == 0)
		rc = drb_arg_string(args, "target", &target, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "restore_time", &when, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "latest", &latest, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "instance_class", &cls, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "subnet_group", &subnet, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "multi_az", &multi, err);
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
	p = params_of(&bad, "SourceDBInstanceIdentifier", json_string(source),
		      "TargetDBInstanceIdentifier", json_string(target), NULL);
	if (!bad && when) {
		char t[32];

		/* AWS wants UTC with a Z; normalise offsets the runbook may use. */
		drb_rfc3339_s(ms, t);
		drb_awsi_set(p, "RestoreTime", json_string(t), &bad);
	}
	if (!bad && latest)
		drb_awsi_set(p, "UseLatestRestorableTime", json_true(), &bad);
	if (!bad && cls)
		drb_awsi_set(p, "DBInstanceClass", json_string(cls), &bad);
	if (!bad && subnet)
		drb_awsi_set(p, "DBSubnetGroupName", json_string(subnet), &bad);
	if (!bad && multi >= 0)
		drb_awsi_set(p, "MultiAZ", json_boolean(multi), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = instance_call(ctx, &ep, "RestoreDBInstanceToPointInTime", p, target, result, err);
out:
	json_decref(p);
	return rc;
}
