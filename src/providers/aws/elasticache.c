/* The aws.elasticache.* actions (ElastiCache Query API 2015-02-02): replication groups read,
 * created and modified. The cache is not replicated across regions but rebuilt on failover,
 * so create is idempotent in effect: a group that already exists (a retry, or a run resumed
 * after its request left) is read back and returned with created=false. Lists go on the wire
 * as NAME.MEMBER.N (SecurityGroupIds.SecurityGroupId.1), the model's locationName. */
#include <stdio.h>
#include <string.h>

#include "aws_int.h"

/* drb_awsi_call's message for a group that is already there */
#define EXISTS "elasticache CreateReplicationGroup: ReplicationGroupAlreadyExists:"

const aws_svc drb_awsi_elasticache = {
    "elasticache", "elasticache", "elasticache", "ELASTICACHE", AWS_QUERY, 0, "2015-02-02", NULL};

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

/* An Endpoint as {address, port}, or null when absent. */
static json_t *endpoint_json(xmlNode *n, const char *path)
{
	xmlNode *e = drb_awsx_child(n, path);

	if (!e)
		return json_null();
	return json_pack("{s:o, s:o}", "address", drb_awsx_str(e, "Address"), "port",
			 drb_awsx_int(e, "Port"));
}

static json_t *node_group_json(xmlNode *ng)
{
	json_t *o = json_object(), *members = json_array();
	xmlNode *m;
	int bad = !o || !members;

	for (m = drb_awsx_child(ng, "NodeGroupMembers/NodeGroupMember"); m && !bad;
	     m = drb_awsx_next(m)) {
		json_t *mo = json_object();

		if (!mo) {
			bad = 1;
			break;
		}
		drb_awsi_set(mo, "cluster_id", drb_awsx_str(m, "CacheClusterId"), &bad);
		drb_awsi_set(mo, "node_id", drb_awsx_str(m, "CacheNodeId"), &bad);
		drb_awsi_set(mo, "role", drb_awsx_str(m, "CurrentRole"), &bad);
		drb_awsi_set(mo, "az", drb_awsx_str(m, "PreferredAvailabilityZone"), &bad);
		drb_awsi_set(mo, "read_endpoint", endpoint_json(m, "ReadEndpoint"), &bad);
		if (json_array_append_new(members, mo) != 0)
			bad = 1;
	}
	if (bad) {
		json_decref(o);
		json_decref(members);
		return NULL;
	}
	drb_awsi_set(o, "id", drb_awsx_str(ng, "NodeGroupId"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(ng, "Status"), &bad);
	drb_awsi_set(o, "primary_endpoint", endpoint_json(ng, "PrimaryEndpoint"), &bad);
	drb_awsi_set(o, "reader_endpoint", endpoint_json(ng, "ReaderEndpoint"), &bad);
	drb_awsi_set(o, "members", members, &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* One ReplicationGroup as the catalog's group (the fields of the schema's group_fields). */
static json_t *group_json(xmlNode *g)
{
	json_t *o = json_object(), *ngs = json_array();
	xmlNode *ng;
	int bad = !o || !ngs;

	for (ng = drb_awsx_child(g, "NodeGroups/NodeGroup"); ng && !bad; ng = drb_awsx_next(ng)) {
		json_t *x = node_group_json(ng);

		if (!x || json_array_append_new(ngs, x) != 0)
			bad = 1;
	}
	if (bad) {
		json_decref(o);
		json_decref(ngs);
		return NULL;
	}
	drb_awsi_set(o, "id", drb_awsx_str(g, "ReplicationGroupId"), &bad);
	drb_awsi_set(o, "description", drb_awsx_str(g, "Description"), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(g, "Status"), &bad);
	drb_awsi_set(o, "engine", drb_awsx_str(g, "Engine"), &bad);
	drb_awsi_set(o, "node_type", drb_awsx_str(g, "CacheNodeType"), &bad);
	drb_awsi_set(o, "member_clusters", drb_awsx_list(g, "MemberClusters"), &bad);
	drb_awsi_set(o, "node_groups", ngs, &bad);
	/* The primary endpoint of a cluster-mode-disabled group is its one node group's; a
	 * cluster-mode-enabled group has a configuration endpoint instead. */
	drb_awsi_set(o, "primary_endpoint",
		     endpoint_json(g, "NodeGroups/NodeGroup/PrimaryEndpoint"), &bad);
	drb_awsi_set(o, "reader_endpoint", endpoint_json(g, "NodeGroups/NodeGroup/ReaderEndpoint"),
		     &bad);
	drb_awsi_set(o, "configuration_endpoint", endpoint_json(g, "ConfigurationEndpoint"), &bad);
	drb_awsi_set(o, "automatic_failover", drb_awsx_str(g, "AutomaticFailover"), &bad);
	drb_awsi_set(o, "multi_az", drb_awsx_str(g, "MultiAZ"), &bad);
	drb_awsi_set(o, "cluster_enabled", drb_awsx_bool(g, "ClusterEnabled"), &bad);
	drb_awsi_set(o, "arn", drb_awsx_str(g, "ARN"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* DescribeReplicationGroups of id (NULL: every group, all pages) into a JSON array. */
static int describe(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *A, const char *id,
		    json_t **groups, drb_err *err)
{
	json_t *p = json_object();
	int rc, bad = 0;

	*groups = NULL;
	if (p && id)
		drb_awsi_set(p, "ReplicationGroupId", json_string(id), &bad);
	if (!p || bad)
		rc = nomem(A, err);
	else
		rc = drb_awsi_pages(ctx, &drb_awsi_elasticache, ep,
				    &(const aws_pages){.operation = "DescribeReplicationGroups",
						       .token = "Marker",
						       .items = {"ReplicationGroups/ReplicationGroup"},
						       .from_xml = group_json,
						       .what = "replication groups"},
				    p, groups, err);
	json_decref(p);
	return rc;
}

int drb_awsi_ec_describe_rgs(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.elasticache.describe_replication_groups", *id = NULL;
	drb_aws_endpoint ep;
	json_t *groups = NULL;
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_elasticache, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "id", &id, err);
	if (rc == 0)
		rc = describe(ctx, &ep, A, id, &groups, err);
	if (rc != 0)
		return rc;
	*result = json_pack("{s:o}", "groups", groups);
	return *result ? 0 : nomem(A, err);
}

/* How one argument goes on the wire: a scalar as NAME, a list as NAME.MEMBER.N, a map (tags)
 * as NAME.MEMBER.N.Key / .Value. */
typedef struct ec_param {
	const char *arg, *name, *member;
} ec_param;

static const ec_param create_map[] = {
    {"id", "ReplicationGroupId", NULL},
    {"description", "ReplicationGroupDescription", NULL},
    {"engine", "Engine", NULL},
    {"engine_version", "EngineVersion", NULL},
    {"node_type", "CacheNodeType", NULL},
    {"num_cache_clusters", "NumCacheClusters", NULL},
    {"num_node_groups", "NumNodeGroups", NULL},
    {"replicas_per_node_group", "ReplicasPerNodeGroup", NULL},
    {"primary_cluster_id", "PrimaryClusterId", NULL},
    {"automatic_failover", "AutomaticFailoverEnabled", NULL},
    {"multi_az", "MultiAZEnabled", NULL},
    {"preferred_cache_cluster_azs", "PreferredCacheClusterAZs", "AvailabilityZone"},
    {"cache_parameter_group", "CacheParameterGroupName", NULL},
    {"cache_subnet_group", "CacheSubnetGroupName", NULL},
    {"security_group_ids", "SecurityGroupIds", "SecurityGroupId"},
    {"snapshot_name", "SnapshotName", NULL},
    {"port", "Port", NULL},
    {"transit_encryption", "TransitEncryptionEnabled", NULL},
    {"at_rest_encryption", "AtRestEncryptionEnabled", NULL},
    {"tags", "Tags", "Tag"},
    {NULL, NULL, NULL}};

static const ec_param modify_map[] = {{"id", "ReplicationGroupId", NULL},
				      {"description", "ReplicationGroupDescription", NULL},
				      {"apply_immediately", "ApplyImmediately", NULL},
				      {"node_type", "CacheNodeType", NULL},
				      {"engine_version", "EngineVersion", NULL},
				      {"primary_cluster_id", "PrimaryClusterId", NULL},
				      {"automatic_failover", "AutomaticFailoverEnabled", NULL},
				      {"multi_az", "MultiAZEnabled", NULL},
				      {"cache_parameter_group", "CacheParameterGroupName", NULL},
				      {"security_group_ids", "SecurityGroupIds", "SecurityGroupId"},
				      {"snapshot_retention_limit", "SnapshotRetentionLimit", NULL},
				      {NULL, NULL, NULL}};

/* The Query parameters of args by map, each converted by its schema type. */
static int build_params(const char *A, const ec_param *map, const json_t *args, json_t *p,
			drb_err *err)
{
	const drb_action *act = drb_aws_action(A);
	int bad = 0;

	for (const ec_param *m = map; m->arg && !bad; m++) {
		const drb_arg_spec *spec = drb_schema_arg(act->schema, m->arg);
		const json_t *v = json_object_get(args, m->arg), *x;
		char key[160];
		size_t i;

		/* absent: nothing sent, AWS's default applies */
		if (!v || json_is_null(v) || !spec)
			continue;
		if (json_is_array(v)) {
			json_array_foreach(v, i, x)
			{
				if (!json_is_string(x))
					return drb_err_set(err, DRB_EINVAL,
							   "%s: %s[%zu] is not a string", A, m->arg,
							   i + 1);
				snprintf(key, sizeof(key), "%s.%s.%zu", m->name, m->member, i + 1);
				drb_awsi_set(p, key, json_string(json_string_value(x)), &bad);
			}
		} else if (json_is_object(v)) {
			const char *k;

			i = 0;
			json_object_foreach((json_t *)v, k, x)
			{
				i++;
				if (!json_is_string(x))
					return drb_err_set(err, DRB_EINVAL,
							   "%s: %s.%.60s is not a string", A,
							   m->arg, k);
				snprintf(key, sizeof(key), "%s.%s.%zu.Key", m->name, m->member, i);
				drb_awsi_set(p, key, json_string(k), &bad);
				snprintf(key, sizeof(key), "%s.%s.%zu.Value", m->name, m->member,
					 i);
				drb_awsi_set(p, key, json_string(json_string_value(x)), &bad);
			}
		} else if (spec->type == DRB_T_BOOL) {
			drb_awsi_set(p, m->name,
				     json_boolean(json_is_true(v) ||
						  (json_is_string(v) &&
						   !strcmp(json_string_value(v), "true"))),
				     &bad);
		} else if (spec->type == DRB_T_INT) {
			long long n = 0;
			int rc = drb_arg_int_opt(args, m->arg, &n, err);

			if (rc != 0)
				return drb_err_prefix(err, "%s: ", A);
			drb_awsi_set(p, m->name, json_integer(n), &bad);
		} else if (json_is_string(v)) {
			drb_awsi_set(p, m->name, json_string(json_string_value(v)), &bad);
		}
	}
	return bad ? nomem(A, err) : 0;
}

/* Runs op (CreateReplicationGroup, ModifyReplicationGroup) and returns its group. */
static int group_call(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *A,
		      const char *op, const json_t *p, json_t **out, drb_err *err)
{
	aws_req rq = {.operation = op, .params = p};
	aws_resp resp;
	xmlNode *g;
	int rc;

	rc = drb_awsi_call(ctx, &drb_awsi_elasticache, ep, &rq, &resp, err);
	if (rc != 0)
		return rc;
	g = resp.doc ? drb_awsx_find(drb_awsx_root(resp.doc), "ReplicationGroup") : NULL;
	if (!g)
		rc = drb_err_set(err, DRB_EINVAL,
				 "elasticache %s: no replication group in the answer", op);
	else if (!(*out = group_json(g)))
		rc = nomem(A, err);
	drb_awsi_resp_free(&resp);
	return rc;
}

int drb_awsi_ec_create_rg(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.elasticache.create_replication_group", *id = NULL;
	drb_aws_endpoint ep;
	json_t *p = NULL, *g = NULL, *groups = NULL;
	int rc, created = 1;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_elasticache, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &id, err);
	if (rc != 0)
		return rc;
	p = json_object();
	if (!p)
		return nomem(A, err);
	rc = build_params(A, create_map, args, p, err);
	if (rc == 0 && !json_object_get(p, "ReplicationGroupDescription") &&
	    json_object_set_new(p, "ReplicationGroupDescription", json_string("drbook")) != 0)
		rc = nomem(A, err);
	if (rc == 0)
		rc = group_call(ctx, &ep, A, "CreateReplicationGroup", p, &g, err);
	if (rc != 0 && err && !strncmp(err->msg, EXISTS, strlen(EXISTS))) {
		/* Already there (an earlier attempt's request took effect): return it as it is
		 * now. Its settings are not compared with the arguments; modify changes them. */
		drb_err_clear(err);
		created = 0;
		rc = describe(ctx, &ep, A, id, &groups, err);
		if (rc == 0) {
			g = json_incref(json_array_get(groups, 0));
			if (!g)
				rc = drb_err_set(err, DRB_ENOTFOUND,
						 "%s: replication group %s exists but is not "
						 "described",
						 A, id);
		}
	}
	if (rc == 0) {
		if (json_object_set_new(g, "created", json_boolean(created)) != 0)
			rc = nomem(A, err);
	}
	if (rc == 0) {
		*result = g;
		g = NULL;
	}
	json_decref(g);
	json_decref(groups);
	json_decref(p);
	return rc;
}

int drb_awsi_ec_modify_rg(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.elasticache.modify_replication_group";
	drb_aws_endpoint ep;
	json_t *p = NULL;
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_elasticache, A, &ep, err);
	if (rc != 0)
		return rc;
	p = json_object();
	if (!p)
		return nomem(A, err);
	rc = build_params(A, modify_map, args, p, err);
	/* ApplyImmediately is a plain Boolean: always sent, false unless asked. */
	if (rc == 0 && !json_object_get(p, "ApplyImmediately") &&
	    json_object_set_new(p, "ApplyImmediately", json_false()) != 0)
		rc = nomem(A, err);
	if (rc == 0)
		rc = group_call(ctx, &ep, A, "ModifyReplicationGroup", p, result, err);
	json_decref(p);
	return rc;
}
