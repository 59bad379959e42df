/* The aws.appautoscaling.* actions (Application Auto Scaling, JSON 1.1,
 * AnyScaleFrontendService): read and register scalable targets, so that a failover that
 * scales a service can also raise its minimum (auto scaling would otherwise undo the new
 * desired count) and put it back on rollback. RegisterScalableTarget creates or updates:
 * sending it again with the same values changes nothing (idempotent in effect). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <drbook/util.h>

#include "aws_int.h"

#define ECS_DIMENSION "ecs:service:DesiredCount"

static const aws_svc aas = {"application-autoscaling",
			    "application-autoscaling",
			    "application-autoscaling",
			    "APPLICATION_AUTO_SCALING",
			    AWS_JSON,
			    0,
			    NULL,
			    "AnyScaleFrontendService"};

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

static json_t *str_or_null(const json_t *v)
{
	return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

static json_t *bool_of(const json_t *v)
{
	return json_boolean(json_is_true(v));
}

/* A JSON 1.1 timestamp (epoch seconds, maybe with a fraction) as RFC 3339, or null. */
static json_t *epoch_text(const json_t *v)
{
	char t[32];

	if (!json_is_number(v))
		return json_null();
	drb_rfc3339_s((int64_t)llround(json_number_value(v) * 1000.0), t);
	return json_string(t);
}

static json_t *target_json(const json_t *t)
{
	json_t *o = json_object();
	const json_t *ss = json_object_get(t, "SuspendedState");
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "service_namespace", str_or_null(json_object_get(t, "ServiceNamespace")),
		     &bad);
	drb_awsi_set(o, "resource_id", str_or_null(json_object_get(t, "ResourceId")), &bad);
	drb_awsi_set(o, "scalable_dimension", str_or_null(json_object_get(t, "ScalableDimension")),
		     &bad);
	drb_awsi_set(o, "min_capacity",
		     json_incref(json_object_get(t, "MinCapacity")) ?: json_null(), &bad);
	drb_awsi_set(o, "max_capacity",
		     json_incref(json_object_get(t, "MaxCapacity")) ?: json_null(), &bad);
	drb_awsi_set(o, "arn", str_or_null(json_object_get(t, "ScalableTargetARN")), &bad);
	drb_awsi_set(o, "role_arn", str_or_null(json_object_get(t, "RoleARN")), &bad);
	drb_awsi_set(o, "created_at", epoch_text(json_object_get(t, "CreationTime")), &bad);
	drb_awsi_set(o, "dynamic_scaling_in_suspended",
		     bool_of(json_object_get(ss, "DynamicScalingInSuspended")), &bad);
	drb_awsi_set(o, "dynamic_scaling_out_suspended",
		     bool_of(json_object_get(ss, "DynamicScalingOutSuspended")), &bad);
	drb_awsi_set(o, "scheduled_scaling_suspended",
		     bool_of(json_object_get(ss, "ScheduledScalingSuspended")), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The target's namespace, resource id and dimension from the arguments: resource_id, or
 * cluster + service for ECS ("service/CLUSTER/SERVICE"). need: the resource is required
 * (register). rid is filled; *dim NULL when none applies (describe without a filter). */
static int target_key(const char *A, const json_t *args, int need, const char **ns, char *rid,
		      size_t n, const char **dim, drb_err *err)
{
	const char *res = NULL, *cluster = NULL, *service = NULL;
	int rc;

	*ns = "ecs";
	*dim = NULL;
	rid[0] = '\0';
	rc = drb_arg_string_opt(args, "service_namespace", ns, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "resource_id", &res, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "service", &service, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "scalable_dimension", dim, err);
	if (rc != 0)
		return drb_err_prefix(err, "%s: ", A);
	if (res && (cluster || service))
		return drb_err_set(err, DRB_EINVAL,
				   "%s: give 'resource_id' or 'cluster' and 'service', not both",
				   A);
	if (!!cluster != !!service)
		return drb_err_set(err, DRB_EINVAL, "%s: give both 'cluster' and 'service'", A);
	if (cluster && strcmp(*ns, "ecs") != 0)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: 'cluster' and 'service' name an ECS service: use "
				   "'resource_id' for service_namespace %s",
				   A, *ns);
	if (cluster && (strchr(cluster, '/') || strchr(service, '/')))
		return drb_err_set(err, DRB_EINVAL,
				   "%s: 'cluster' and 'service' are names, not ARNs (or use "
				   "resource_id: service/CLUSTER/SERVICE)",
				   A);
	if (cluster)
		snprintf(rid, n, "service/%s/%s", cluster, service);
	else if (res)
		snprintf(rid, n, "%s", res);
	if (need && !rid[0])
		return drb_err_set(err, DRB_EINVAL,
				   "%s: give 'resource_id' (service/CLUSTER/SERVICE for ECS) or "
				   "'cluster' and 'service'",
				   A);
	if (!*dim && !strcmp(*ns, "ecs"))
		*dim = ECS_DIMENSION;
	if (need && !*dim)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: 'scalable_dimension' is required for service_namespace %s",
				   A, *ns);
	return 0;
}

/* Every target DescribeScalableTargets lists for ns (and rid and dim when given), in a
 * new array. */
static int list_targets(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *A,
			const char *ns, const char *rid, const char *dim, json_t **out,
			drb_err *err)
{
	json_t *body = json_pack("{s:s}", "ServiceNamespace", ns);
	int rc, bad = 0;

	*out = NULL;
	if (body && rid[0])
		drb_awsi_set(body, "ResourceIds", json_pack("[s]", rid), &bad);
	if (body && dim)
		drb_awsi_set(body, "ScalableDimension", json_string(dim), &bad);
	if (!body || bad)
		rc = nomem(A, err);
	else
		rc = drb_awsi_pages(ctx, &aas, ep,
				    &(const aws_pages){.operation = "DescribeScalableTargets",
						       .token = "NextToken",
						       .items = {"ScalableTargets"},
						       .from_json = target_json,
						       .what = "scalable targets"},
				    body, out, err);
	json_decref(body);
	return rc;
}

int drb_awsi_aas_describe(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.appautoscaling.describe_scalable_targets", *ns, *dim;
	drb_aws_endpoint ep;
	json_t *list = NULL;
	char rid[1700];
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &aas, A, &ep, err);
	if (rc == 0)
		rc = target_key(A, args, 0, &ns, rid, sizeof(rid), &dim, err);
	if (rc == 0)
		rc = list_targets(ctx, &ep, A, ns, rid, dim, &list, err);
	if (rc != 0)
		return rc;
	*result = json_pack("{s:o}", "targets", list);
	return *result ? 0 : nomem(A, err);
}

int drb_awsi_aas_register(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	static const char *const suspend[][2] = {
	    {"dynamic_scaling_in_suspended", "DynamicScalingInSuspended"},
	    {"dynamic_scaling_out_suspended", "DynamicScalingOutSuspended"},
	    {"scheduled_scaling_suspended", "ScheduledScalingSuspended"}};
	const char *A = "aws.appautoscaling.register_scalable_target", *ns, *dim;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "RegisterScalableTarget"};
	aws_resp resp = {0};
	json_t *body = NULL, *ss = NULL, *list = NULL;
	const json_t *tags = json_object_get(args, "tags"), *v;
	const char *k;
	long long minc = -1, maxc = -1;
	char rid[1700];
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &aas, A, &ep, err);
	if (rc == 0)
		rc = target_key(A, args, 1, &ns, rid, sizeof(rid), &dim, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "min_capacity", &minc, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "max_capacity", &maxc, err);
	if (rc != 0)
		goto out;
	if ((minc < 0 && !json_is_null(json_object_get(args, "min_capacity")) &&
	     json_object_get(args, "min_capacity")) ||
	    (maxc < 0 && !json_is_null(json_object_get(args, "max_capacity")) &&
	     json_object_get(args, "max_capacity"))) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: capacities must be 0 or more", A);
		goto out;
	}
	if (minc >= 0 && maxc >= 0 && minc > maxc) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'min_capacity' %lld is above 'max_capacity' %lld", A, minc,
				 maxc);
		goto out;
	}
	body = json_pack("{s:s, s:s, s:s}", "ServiceNamespace", ns, "ResourceId", rid,
			 "ScalableDimension", dim);
	ss = json_object();
	if (!body || !ss) {
		rc = nomem(A, err);
		goto out;
	}
	if (minc >= 0)
		drb_awsi_set(body, "MinCapacity", json_integer(minc), &bad);
	if (maxc >= 0)
		drb_awsi_set(body, "MaxCapacity", json_integer(maxc), &bad);
	for (size_t i = 0; i < sizeof(suspend) / sizeof(suspend[0]); i++) {
		int b = -1;

		rc = drb_arg_bool_opt(args, suspend[i][0], &b, err);
		if (rc != 0)
			goto out;
		if (b >= 0)
			drb_awsi_set(ss, suspend[i][1], json_boolean(b), &bad);
	}
	if (json_object_size(ss))
		drb_awsi_set(body, "SuspendedState", json_incref(ss), &bad);
	if (json_is_object(tags) && json_object_size(tags)) {
		json_t *tm = json_object();

		json_object_foreach((json_t *)tags, k, v)
		{
			if (!json_is_string(v)) {
				json_decref(tm);
				rc = drb_err_set(err, DRB_EINVAL,
						 "%s: argument 'tags': the value of '%.100s' must "
						 "be a string",
						 A, k);
				goto out;
			}
			drb_awsi_set(tm, k, json_incref((json_t *)v), &bad);
		}
		drb_awsi_set(body, "Tags", tm, &bad);
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &aas, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	/* The answer holds only the ARN: read the target back for its fields. */
	rc = list_targets(ctx, &ep, A, ns, rid, dim, &list, err);
	if (rc != 0)
		goto out;
	if (json_array_size(list) == 0) {
		rc = drb_err_set(err, DRB_ENOTFOUND,
				 "%s: the target %s (%s) is not listed after registering it", A,
				 rid, dim);
		goto out;
	}
	*result = json_incref(json_array_get(list, 0));
out:
	json_decref(list);
	json_decref(ss);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}
