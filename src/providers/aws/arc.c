/* The aws.arc.* actions: Route 53 Application Recovery Controller routing controls, the data
 * plane AWS recommends for failing over while a region's control planes are impaired. A
 * cluster answers on five regional endpoints; each request goes to them in turn until one
 * answers (AWS's guidance), signed for the endpoint's own region (service
 * route53-recovery-cluster, JSON 1.0, target ToggleCustomerAPI). */
#include <stdio.h>
#include <string.h>

#include "aws_int.h"

const aws_svc drb_awsi_arc = {"route53-recovery-cluster",
			      "route53-recovery-cluster",
			      "route53-recovery-cluster",
			      "ROUTE53_RECOVERY_CLUSTER",
			      AWS_JSON10,
			      0,
			      NULL,
			      "ToggleCustomerAPI"};

#define MAX_ENDPOINTS 16

/* One cluster endpoint: "https://HOST[:PORT][/PATH]" (its region from a host of the form
 * *.route53-recovery-cluster.REGION.amazonaws.com, else region_arg), or {url, region}. */
static int endpoint_of(const json_t *e, const char *region_arg, drb_aws_endpoint *ep, char *path,
		       size_t pathn, drb_err *err)
{
	const char *url =
	    json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "url"));
	const char *region = json_string_value(json_object_get(e, "region"));
	const char *host, *slash, *tag = ".route53-recovery-cluster.";
	const char *in;
	size_t hn;

	memset(ep, 0, sizeof(*ep));
	if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)))
		return drb_err_set(err, DRB_EINVAL,
				   "aws.arc: each cluster endpoint must be an http(s) URL or "
				   "{url, region}");
	host = strstr(url, "://") + 3;
	slash = strchr(host, '/');
	hn = slash ? (size_t)(slash - host) : strlen(host);
	if (hn == 0 || hn >= sizeof(ep->host) || (size_t)(host - url) + hn >= sizeof(ep->url))
		return drb_err_set(err, DRB_EINVAL, "aws.arc: endpoint '%.100s' is not a URL", url);
	memcpy(ep->url, url, (size_t)(host - url) + hn);
	memcpy(ep->host, host, hn);
	snprintf(path, pathn, "%s", slash && slash[1] ? slash : "/");
	if (!region && (in = strstr(ep->host, tag)) != NULL) {
		const char *r = in + strlen(tag), *dot = strchr(r, '.');
		size_t n = dot ? (size_t)(dot - r) : 0;

		if (n > 0 && n < sizeof(ep->region)) {
			memcpy(ep->region, r, n);
			ep->region[n] = '\0';
		}
	}
	if (region)
		snprintf(ep->region, sizeof(ep->region), "%s", region);
	if (!ep->region[0] && region_arg)
		snprintf(ep->region, sizeof(ep->region), "%s", region_arg);
	if (!ep->region[0])
		return drb_err_set(err, DRB_EINVAL,
				   "aws.arc: the region of endpoint '%.100s' is unknown: give "
				   "{url, region} or the region argument",
				   url);
	ep->custom = 1;
	return 0;
}

/* Sends op with body to each endpoint in turn until one answers; *endpoint names it. */
static int arc_call(drb_action_ctx *ctx, const json_t *args, const char *A, const char *op,
		    json_t *body, aws_resp *resp, const char **endpoint, drb_err *err)
{
	drb_aws_endpoint def, ep;
	const json_t *eps;
	const char *region_arg = NULL;
	char path[256], tried[600] = "";
	size_t i, n;
	int rc;

	rc = drb_awsi_begin(ctx, args, &drb_awsi_arc, A, &def, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "region", &region_arg, err);
	if (rc)
		return rc;
	eps = json_object_get(args, "cluster_endpoints");
	n = json_array_size(eps);
	if (!json_is_array(eps) || n == 0 || n > MAX_ENDPOINTS)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: cluster_endpoints must list 1 to %d endpoints", A,
				   MAX_ENDPOINTS);
	for (i = 0; i < n; i++) {
		aws_req rq = {.operation = op, .json = body};
		drb_err one = {0};

		if ((rc = endpoint_of(json_array_get(eps, i), region_arg, &ep, path, sizeof(path),
				      err)))
			return rc;
		rq.path = path;
		rc = drb_awsi_call(ctx, &drb_awsi_arc, &ep, &rq, resp, &one);
		if (rc == 0) {
			*endpoint =
			    json_is_string(json_array_get(eps, i))
				? json_string_value(json_array_get(eps, i))
				: json_string_value(json_object_get(json_array_get(eps, i), "url"));
			return 0;
		}
		/* An answer that is the caller's fault (denied, bad ARN) is the same everywhere;
		 * an endpoint that is down, slow or failing is why there are five. */
		if (rc != DRB_ETRANSIENT && rc != DRB_ETIMEOUT && rc != DRB_EIO && rc != DRB_ERR) {
			*err = one;
			return rc;
		}
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s (%s)",
			 i ? "; " : "", ep.host, ep.region);
		*err = one;
		if (ctx->cancel && *ctx->cancel)
			return rc;
	}
	drb_err_prefix(err, "%s: every cluster endpoint failed (%s); the last: ", A, tried);
	return rc;
}

static int result_of(const char *A, aws_resp *resp, const char *endpoint, const char *want,
		     json_t **result, drb_err *err)
{
	const char *state = json_string_value(json_object_get(resp->json, "RoutingControlState"));

	if (want)
		state = want; /* UpdateRoutingControlState answers {} */
	if (!state)
		return drb_err_set(err, DRB_EINVAL, "%s: the answer has no RoutingControlState", A);
	*result = json_pack("{s:s, s:s}", "state", state, "endpoint", endpoint);
	if (!*result)
		return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", A);
	return 0;
}

int drb_awsi_arc_get(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.arc.get_routing_control_state", *arn = NULL, *endpoint = "";
	aws_resp resp = {0};
	json_t *body = NULL;
	int rc;

	*result = NULL;
	rc = drb_arg_string(args, "routing_control_arn", &arn, err);
	if (rc == 0 && !(body = json_pack("{s:s}", "RoutingControlArn", arn)))
		rc = drb_err_set(err, DRB_ENOMEM, "%s: out of memory", A);
	if (rc == 0)
		rc = arc_call(ctx, args, A, "GetRoutingControlState", body, &resp, &endpoint, err);
	if (rc == 0)
		rc = result_of(A, &resp, endpoint, NULL, result, err);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}

int drb_awsi_arc_update(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.arc.update_routing_control_state", *arn = NULL, *state = NULL;
	const char *endpoint = "";
	aws_resp resp = {0};
	json_t *body = NULL;
	int rc;

	*result = NULL;
	rc = drb_arg_string(args, "routing_control_arn", &arn, err);
	if (rc == 0)
		rc = drb_arg_string(args, "state", &state, err);
	if (rc == 0 && !(body = json_pack("{s:s, s:s}", "RoutingControlArn", arn,
					  "RoutingControlState", state)))
		rc = drb_err_set(err, DRB_ENOMEM, "%s: out of memory", A);
	if (rc == 0)
		rc = arc_call(ctx, args, A, "UpdateRoutingControlState", body, &resp, &endpoint,
			      err);
	if (rc == 0)
		rc = result_of(A, &resp, endpoint, state, result, err);
	json_decref(body);
	drb_awsi_resp_free(&resp);
	return rc;
}
