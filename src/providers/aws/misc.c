/* The small Query-protocol actions: aws.sts.get_caller_identity (who are we, which account:
 * the first preflight of every runbook), aws.sns.publish, aws.cloudwatch.put_metric_data and
 * aws.cloudwatch.describe_alarms. */
#include <math.h>
#include <string.h>

#include "aws_int.h"

#define MAX_DIMENSIONS 30

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

int drb_awsi_sts_caller(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.sts.get_caller_identity";
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "GetCallerIdentity"};
	aws_resp resp = {0};
	json_t *o = NULL;
	xmlNode *r;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_sts, A, &ep, err);
	if (rc == 0)
		rc = drb_awsi_call(ctx, &drb_awsi_sts, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	r = drb_awsx_find(drb_awsx_root(resp.doc), "GetCallerIdentityResult");
	if (!r) {
		rc = drb_err_set(err, DRB_EINVAL, "sts GetCallerIdentity: no result in the answer");
		goto out;
	}
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "account", drb_awsx_str(r, "Account"), &bad);
	drb_awsi_set(o, "arn", drb_awsx_str(r, "Arn"), &bad);
	drb_awsi_set(o, "user_id", drb_awsx_str(r, "UserId"), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	drb_awsi_resp_free(&resp);
	return rc;
}

int drb_awsi_sns_publish(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.sns.publish", *topic = NULL, *subject = NULL, *message = NULL;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "Publish"};
	aws_resp resp = {0};
	json_t *p = NULL, *o = NULL;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_sns, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "topic_arn", &topic, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "subject", &subject, err);
	if (rc == 0)
		rc = drb_arg_string(args, "message", &message, err);
	if (rc != 0)
		goto out;
	/* SNS refuses subjects over 100 characters or with line breaks: say so before the
	 * call rather than after. */
	if (subject && (strlen(subject) > 100 || strpbrk(subject, "\r\n"))) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'subject' must be one line of at most 100 characters", A);
		goto out;
	}
	p = json_pack("{s:s, s:s}", "TopicArn", topic, "Message", message);
	if (p && subject)
		drb_awsi_set(p, "Subject", json_string(subject), &bad);
	if (!p || bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.params = p;
	rc = drb_awsi_call(ctx, &drb_awsi_sns, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "message_id",
		     drb_awsx_str(drb_awsx_find(drb_awsx_root(resp.doc), "MessageId"), NULL),
		     &bad);
	if (bad || json_is_null(json_object_get(o, "message_id"))) {
		rc = bad ? nomem(A, err)
			 : drb_err_set(err, DRB_EINVAL, "sns Publish: no MessageId in the answer");
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

int drb_awsi_cw_put_metric(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.cloudwatch.put_metric_data", *ns = NULL, *name = NULL, *unit = NULL;
	const json_t *value = json_object_get(args, "value"), *dims, *v;
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "PutMetricData"};
	aws_resp resp = {0};
	json_t *p = NULL;
	const char *k;
	int rc, bad = 0, i = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_cloudwatch, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "namespace", &ns, err);
	if (rc == 0)
		rc = drb_arg_string(args, "name", &name, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "unit", &unit, err);
	if (rc != 0)
		goto out;
	if (!json_is_number(value) || !isfinite(json_number_value(value))) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: argument 'value' must be a number", A);
		goto out;
	}
	dims = json_object_get(args, "dimensions");
	if (dims && !json_is_null(dims) &&
	    (!json_is_object(dims) || json_object_size(dims) > MAX_DIMENSIONS)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: argument 'dimensions' must be a map of at most %d "
				 "name: value pairs",
				 A, MAX_DIMENSIONS);
		goto out;
	}
	p = json_pack("{s:s, s:s, s:f}", "Namespace", ns, "MetricData.member.1.MetricName", name,
		      "MetricData.member.1.Value", json_number_value(value));
	if (p && unit)
		drb_awsi_set(p, "MetricData.member.1.Unit", json_string(unit), &bad);
	if (!p || bad) {
		rc = nomem(A, err);
		goto out;
	}
	json_object_foreach((json_t *)dims, k, v)
	{
		char key[96];

		if (!json_is_string(v) && !json_is_number(v)) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "%s: dimension '%.60s' must be a string or number", A, k);
			goto out;
		}
		i++;
		snprintf(key, sizeof(key), "MetricData.member.1.Dimensions.member.%d.Name", i);
		drb_awsi_set(p, key, json_string(k), &bad);
		snprintf(key, sizeof(key), "MetricData.member.1.Dimensions.member.%d.Value", i);
		if (json_is_string(v))
			drb_awsi_set(p, key, json_string(json_string_value(v)), &bad);
		else
			drb_awsi_set(p, key, json_deep_copy(v), &bad);
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rq.params = p;
	rc = drb_awsi_call(ctx, &drb_awsi_cloudwatch, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	*result = json_object();
	if (!*result)
		rc = nomem(A, err);
out:
	json_decref(p);
	drb_awsi_resp_free(&resp);
	return rc;
}

/* One alarm of a DescribeAlarms answer as the catalog gives it. */
static json_t *alarm_of(xmlNode *m)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "name", drb_awsx_str(m, "AlarmName"), &bad);
	drb_awsi_set(o, "state", drb_awsx_str(m, "StateValue"), &bad);
	drb_awsi_set(o, "reason", drb_awsx_str(m, "StateReason"), &bad);
	drb_awsi_set(o, "updated_at", drb_awsx_str(m, "StateUpdatedTimestamp"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* aws.cloudwatch.describe_alarms: metric and composite alarms by name (at most 100) and/or
 * state. Also what the stop_when watcher calls (src/engine/run.c), through the same row. */
int drb_awsi_cw_describe_alarms(drb_action_ctx *ctx, const json_t *args, json_t **result,
				drb_err *err)
{
	const char *A = "aws.cloudwatch.describe_alarms", *state = NULL;
	const json_t *names = json_object_get(args, "alarm_names"), *v;
	drb_aws_endpoint ep;
	json_t *p = NULL, *all = NULL, *list = NULL, *o = NULL;
	int rc, bad = 0;
	size_t i;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_cloudwatch, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "state_value", &state, err);
	if (rc != 0)
		goto out;
	if (names && !json_is_null(names) &&
	    (!json_is_array(names) || json_array_size(names) > 100)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: argument 'alarm_names' must be a list of at most 100 names",
				 A);
		goto out;
	}
	json_array_foreach(names, i, v)
	{
		if (!json_is_string(v) || !*json_string_value(v)) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "%s: alarm_names[%zu] must be a non-empty string", A,
					 i + 1);
			goto out;
		}
	}
	/* without AlarmTypes CloudWatch leaves composite alarms out */
	p = json_pack("{s:s, s:s, s:i}", "AlarmTypes.member.1", "MetricAlarm",
		      "AlarmTypes.member.2", "CompositeAlarm", "MaxRecords", 100);
	json_array_foreach(names, i, v)
	{
		char key[48];

		snprintf(key, sizeof(key), "AlarmNames.member.%zu", i + 1);
		drb_awsi_set(p, key, json_string(json_string_value(v)), &bad);
	}
	if (p && state)
		drb_awsi_set(p, "StateValue", json_string(state), &bad);
	if (!p || bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_pages(ctx, &drb_awsi_cloudwatch, &ep,
			    &(const aws_pages){.operation = "DescribeAlarms", .token = "NextToken",
					       .items = {"MetricAlarms/member",
							 "CompositeAlarms/member"},
					       .from_xml = alarm_of, .what = "alarms"},
			    p, &all, err);
	if (rc != 0)
		goto out;
	/* the state filter holds also where an endpoint ignores StateValue beside AlarmNames
	 * (moto does) */
	list = json_array();
	if (!list) {
		rc = nomem(A, err);
		goto out;
	}
	json_array_foreach(all, i, v)
	{
		const char *st = json_string_value(json_object_get(v, "state"));

		if ((!state || (st && !strcmp(st, state))) &&
		    json_array_append(list, (json_t *)v) != 0) {
			rc = nomem(A, err);
			goto out;
		}
	}
	o = json_pack("{s:O}", "alarms", list);
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
out:
	json_decref(list);
	json_decref(all);
	json_decref(p);
	return rc;
}
