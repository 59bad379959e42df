/* The aws.ecs.* actions (JSON 1.1, AmazonEC2ContainerServiceV20141113): describe and update a
 * service, list its tasks, stop a task, read a task definition (its images). ECS reports a missing
 * service as a "failure" in a 200 answer, not as an error: that is turned into DRB_ENOTFOUND here.
 */
#include <stdlib.h>
#include <string.h>

#include "aws_int.h"


static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

static json_t *num_or_null(const json_t *v)
{
	return json_is_integer(v) ? json_integer(json_integer_value(v)) : json_null();
}

static json_t *str_or_null(const json_t *v)
{
	return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

/* The services[0] of a DescribeServices/UpdateService answer, or a clear error. */
static int first_service(const char *A, const char *op, const json_t *answer, const char *cluster,
			 const char *service, const json_t **out, drb_err *err)
{
	const json_t *svc = json_array_get(json_object_get(answer, "services"), 0);
	const json_t *f = json_array_get(json_object_get(answer, "failures"), 0);

	if (!svc)
		svc = json_object_get(answer, "service");
	if (json_is_object(svc)) {
		*out = svc;
		return 0;
	}
	if (f) {
		const char *reason = json_string_value(json_object_get(f, "reason"));

		return drb_err_set(err,
				   reason && !strcmp(reason, "MISSING") ? DRB_ENOTFOUND : DRB_ERR,
				   "ecs %s: service %s in cluster %s: %s", op, service, cluster,
				   reason ? reason : "failed");
	}
	return drb_err_set(err, DRB_EINVAL, "%s: no service in the answer", A);
}

static json_t *service_json(const json_t *s)
{
	json_t *o = json_object();
	const json_t *deps = json_object_get(s, "deployments"), *d, *primary = NULL;
	size_t i;
	int bad = 0;

	if (!o)
		return NULL;
	json_array_foreach(deps, i, d)
	{
		const char *st = json_string_value(json_object_get(d, "status"));

		if (st && !strcmp(st, "PRIMARY"))
			primary = d;
	}
	drb_awsi_set(o, "status", str_or_null(json_object_get(s, "status")), &bad);
	drb_awsi_set(o, "desired", num_or_null(json_object_get(s, "desiredCount")), &bad);
	drb_awsi_set(o, "running", num_or_null(json_object_get(s, "runningCount")), &bad);
	drb_awsi_set(o, "pending", num_or_null(json_object_get(s, "pendingCount")), &bad);
	/* The primary deployment's rollout: COMPLETED once the service is steady. */
	drb_awsi_set(o, "rollout_state", str_or_null(json_object_get(primary, "rolloutState")),
		     &bad);
	drb_awsi_set(o, "deployments", json_integer((json_int_t)json_array_size(deps)), &bad);
	drb_awsi_set(o, "task_definition", str_or_null(json_object_get(s, "taskDefinition")), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int drb_awsi_ecs_describe(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.describe_service", *cluster = NULL, *service = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "DescribeServices"};
	aws_resp resp = {0};
	json_t *body = NULL;
	const json_t *svc;
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string(args, "service", &service, err);
	if (rc != 0)
		goto out;
	body = json_pack("{s:s, s:[s]}", "cluster", cluster, "services", service);
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc == 0)
		rc = first_service(A, rq.operation, resp.json, cluster, service, &svc, err);
	if (rc != 0)
		goto out;
	*result = service_json(svc);
	if (!*result)
		rc = nomem(A, err);
out:
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}

int drb_awsi_ecs_update(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.update_service", *cluster = NULL, *service = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "UpdateService"};
	aws_resp resp = {0};
	json_t *body = NULL, *o = NULL;
	const json_t *svc;
	long long desired = -1;
	int rc, force = -1, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string(args, "service", &service, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "desired_count", &desired, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "force_new_deployment", &force, err);
	if (rc != 0)
		goto out;
	if (desired < 0 && force < 0) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: give 'desired_count' or 'force_new_deployment' (or both)", A);
		goto out;
	}
	if (desired > 100000) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: 'desired_count' %lld is out of range", A,
				 desired);
		goto out;
	}
	body = json_pack("{s:s, s:s}", "cluster", cluster, "service", service);
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	if (desired >= 0)
		drb_awsi_set(body, "desiredCount", json_integer(desired), &bad);
	if (force >= 0)
		drb_awsi_set(body, "forceNewDeployment", json_boolean(force), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc == 0)
		rc = first_service(A, rq.operation, resp.json, cluster, service, &svc, err);
	if (rc != 0)
		goto out;
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "desired", num_or_null(json_object_get(svc, "desiredCount")), &bad);
	drb_awsi_set(o, "running", num_or_null(json_object_get(svc, "runningCount")), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}

int drb_awsi_ecs_list_tasks(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.list_tasks", *cluster = NULL, *service = NULL, *dstatus = NULL;
	drb_aws_endpoint ep;
	json_t *body = NULL, *tasks = NULL;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "service", &service, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "desired_status", &dstatus, err);
	if (rc != 0)
		goto out;
	body = json_pack("{s:s}", "cluster", cluster);
	if (body && service)
		drb_awsi_set(body, "serviceName", json_string(service), &bad);
	if (body && dstatus)
		drb_awsi_set(body, "desiredStatus", json_string(dstatus), &bad);
	if (!body || bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_pages(ctx, &drb_awsi_ecs, &ep,
			    &(const aws_pages){.operation = "ListTasks", .token = "nextToken",
					       .items = {"taskArns"}, .what = "tasks"},
			    body, &tasks, err);
	if (rc != 0)
		goto out;
	*result = json_pack("{s:O}", "tasks", tasks);
	if (!*result)
		rc = nomem(A, err);
out:
	json_decref(tasks);
	json_decref(body);
	return rc;
}

int drb_awsi_ecs_stop_task(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.stop_task", *cluster = NULL, *task = NULL;
	const char *reason = "stopped by drbook";
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "StopTask"};
	aws_resp resp = {0};
	json_t *body = NULL, *o = NULL;
	const json_t *t;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string(args, "task", &task, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "reason", &reason, err);
	if (rc != 0)
		goto out;
	body = json_pack("{s:s, s:s, s:s}", "cluster", cluster, "task", task, "reason", reason);
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	t = json_object_get(resp.json, "task");
	if (!json_is_object(t)) {
		rc = drb_err_set(err, DRB_EINVAL, "ecs StopTask: no task in the answer");
		goto out;
	}
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "task", str_or_null(json_object_get(t, "taskArn")), &bad);
	drb_awsi_set(o, "last_status", str_or_null(json_object_get(t, "lastStatus")), &bad);
	drb_awsi_set(o, "desired_status", str_or_null(json_object_get(t, "desiredStatus")), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}

/* The result of CreateService/DeleteService: the service's arn, status and counts. */
static int service_result(const char *A, const json_t *svc, json_t **result, drb_err *err)
{
	json_t *o = json_object();
	int bad = !o;

	if (o) {
		drb_awsi_set(o, "arn", str_or_null(json_object_get(svc, "serviceArn")), &bad);
		drb_awsi_set(o, "status", str_or_null(json_object_get(svc, "status")), &bad);
		drb_awsi_set(o, "desired", num_or_null(json_object_get(svc, "desiredCount")), &bad);
		drb_awsi_set(o, "running", num_or_null(json_object_get(svc, "runningCount")), &bad);
	}
	if (bad) {
		json_decref(o);
		return nomem(A, err);
	}
	*result = o;
	return 0;
}

/* With `like`, the new service copies an existing one's task definition, launch type and
 * network configuration (a shadow copy of a production service runs what it runs, where it
 * runs); the arguments given win. The existing service is only read (DescribeServices). */
int drb_awsi_ecs_create(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.create_service", *cluster = NULL, *service = NULL;
	const char *taskdef = NULL, *launch = NULL, *like = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "CreateService"}, lq = {.operation = "DescribeServices"};
	aws_resp resp = {0}, lresp = {0};
	json_t *body = NULL, *lbody = NULL;
	const json_t *subnets = json_object_get(args, "subnets"),
		     *groups = json_object_get(args, "security_groups"), *svc, *model = NULL;
	long long desired = 1;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string(args, "service", &service, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "task_definition", &taskdef, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "like", &like, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "desired_count", &desired, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "launch_type", &launch, err);
	if (rc != 0)
		goto out;
	if (desired < 0 || desired > 100000) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: 'desired_count' %lld is out of range", A,
				 desired);
		goto out;
	}
	if (!taskdef && !like) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: give 'task_definition' or 'like'", A);
		goto out;
	}
	if (like) {
		lbody = json_pack("{s:s, s:[s]}", "cluster", cluster, "services", like);
		if (!lbody) {
			rc = nomem(A, err);
			goto out;
		}
		lq.json = lbody;
		rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &lq, &lresp, err);
		if (rc == 0)
			rc = first_service(A, lq.operation, lresp.json, cluster, like, &model, err);
		if (rc != 0)
			goto out;
		if (!taskdef)
			taskdef = json_string_value(json_object_get(model, "taskDefinition"));
		if (!launch)
			launch = json_string_value(json_object_get(model, "launchType"));
		if (!taskdef) {
			rc = drb_err_set(err, DRB_EINVAL, "%s: service %s has no task definition",
					 A, like);
			goto out;
		}
	}
	body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "cluster", cluster, "serviceName", service,
			 "taskDefinition", taskdef, "desiredCount", (json_int_t)desired,
			 "launchType", launch ? launch : "FARGATE");
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	if (!json_array_size(subnets) && !json_array_size(groups) &&
	    json_is_object(json_object_get(model, "networkConfiguration")))
		drb_awsi_set(body, "networkConfiguration",
			     json_deep_copy(json_object_get(model, "networkConfiguration")), &bad);
	else if (json_array_size(subnets) || json_array_size(groups)) {
		json_t *vpc = json_object();

		drb_awsi_set(vpc, "subnets",
			     json_is_array(subnets) ? json_deep_copy(subnets) : json_array(), &bad);
		if (json_is_array(groups))
			drb_awsi_set(vpc, "securityGroups", json_deep_copy(groups), &bad);
		drb_awsi_set(body, "networkConfiguration",
			     json_pack("{s:o}", "awsvpcConfiguration", vpc), &bad);
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc == 0)
		rc = first_service(A, rq.operation, resp.json, cluster, service, &svc, err);
	if (rc == 0)
		rc = service_result(A, svc, result, err);
out:
	json_decref(body);
	json_decref(lbody);
	drb_awsi_resp_free(&resp);
	drb_awsi_resp_free(&lresp);
	return rc;
}

/* Deleting a service that is already gone succeeds (status MISSING): a teardown run twice, or
 * after a setup that failed half-way, has nothing more to do. */
int drb_awsi_ecs_delete(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.ecs.delete_service", *cluster = NULL, *service = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "DeleteService"};
	aws_resp resp = {0};
	json_t *body = NULL;
	const json_t *svc;
	int rc, force = 1;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "cluster", &cluster, err);
	if (rc == 0)
		rc = drb_arg_string(args, "service", &service, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "force", &force, err);
	if (rc != 0)
		goto out;
	body = json_pack("{s:s, s:s, s:b}", "cluster", cluster, "service", service, "force", force);
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc == DRB_ENOTFOUND) {
		drb_err_clear(err);
		*result = json_pack("{s:n, s:s, s:i, s:i}", "arn", "status", "MISSING", "desired",
				    0, "running", 0);
		rc = *result ? 0 : nomem(A, err);
		goto out;
	}
	if (rc == 0)
		rc = first_service(A, rq.operation, resp.json, cluster, service, &svc, err);
	if (rc == 0)
		rc = service_result(A, svc, result, err);
out:
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}

/* One container of a task definition: what a recovery region must be able to pull. */
static json_t *container_json(const json_t *c)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "name", str_or_null(json_object_get(c, "name")), &bad);
	drb_awsi_set(o, "image", str_or_null(json_object_get(c, "image")), &bad);
	drb_awsi_set(o, "cpu", num_or_null(json_object_get(c, "cpu")), &bad);
	drb_awsi_set(o, "memory", num_or_null(json_object_get(c, "memory")), &bad);
	drb_awsi_set(o, "essential", json_boolean(!json_is_false(json_object_get(c, "essential"))),
		     &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ECS answers a task's cpu and memory as strings ("256", "0.25 vCPU" is only accepted on
 * input): the integer, or null when it is not one. */
static json_t *units_or_null(const json_t *v)
{
	const char *s = json_string_value(v);
	char *end = NULL;
	long long n;

	if (json_is_integer(v))
		return json_integer(json_integer_value(v));
	if (!s || !*s)
		return json_null();
	n = strtoll(s, &end, 10);
	return (*end == '\0' && n >= 0) ? json_integer(n) : json_null();
}

int drb_awsi_ecs_describe_task_definition(drb_action_ctx *ctx, const json_t *args, json_t **result,
					  drb_err *err)
{
	const char *A = "aws.ecs.describe_task_definition", *td = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "DescribeTaskDefinition"};
	aws_resp resp = {0};
	json_t *body = NULL, *o = NULL, *list = NULL;
	const json_t *t, *c;
	size_t i;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ecs, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "task_definition", &td, err);
	if (rc != 0)
		goto out;
	body = json_pack("{s:s}", "taskDefinition", td);
	if (!body) {
		rc = nomem(A, err);
		goto out;
	}
	rq.json = body;
	rc = drb_awsi_call(ctx, &drb_awsi_ecs, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	t = json_object_get(resp.json, "taskDefinition");
	if (!json_is_object(t)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: no taskDefinition in the answer", A);
		goto out;
	}
	o = json_object();
	list = json_array();
	if (!o || !list) {
		rc = nomem(A, err);
		goto out;
	}
	json_array_foreach(json_object_get(t, "containerDefinitions"), i, c)
	{
		json_t *one = container_json(c);

		if (!one || json_array_append_new(list, one)) {
			rc = nomem(A, err);
			goto out;
		}
	}
	drb_awsi_set(o, "arn", str_or_null(json_object_get(t, "taskDefinitionArn")), &bad);
	drb_awsi_set(o, "family", str_or_null(json_object_get(t, "family")), &bad);
	drb_awsi_set(o, "revision", num_or_null(json_object_get(t, "revision")), &bad);
	drb_awsi_set(o, "status", str_or_null(json_object_get(t, "status")), &bad);
	drb_awsi_set(o, "cpu", units_or_null(json_object_get(t, "cpu")), &bad);
	drb_awsi_set(o, "memory", units_or_null(json_object_get(t, "memory")), &bad);
	drb_awsi_set(o, "containers", list, &bad);
	list = NULL;
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(list);
	json_decref(o);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}
