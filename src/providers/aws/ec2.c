/* The aws.ec2.* actions (EC2 Query API 2016-11-15): security groups read, and one ingress
 * rule authorized or revoked. EC2's Query dialect flattens lists as NAME.N (GroupId.1,
 * IpPermissions.1.IpRanges.1.CidrIp), with the member names capitalised from the model's
 * locationName; answers are <...Response> documents with <item> lists and camelCase names.
 * Authorizing a rule already there or revoking one not there succeeds with changed=false
 * (DESIGN.md "Effects in flight"). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aws_int.h"


const aws_svc drb_awsi_ec2 = {"ec2", "ec2", "ec2", "EC2", AWS_QUERY, 0, "2016-11-15", NULL};

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

/* Sets key (printf-formatted) to the string v in p. */
static void setf(json_t *p, int *bad, const char *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void setf(json_t *p, int *bad, const char *v, const char *fmt, ...)
{
	char key[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	drb_awsi_set(p, key, json_string(v), bad);
}

/* The strings of a list argument as NAME.1, NAME.2, ...; DRB_EINVAL naming the argument when
 * an item is not a string. */
static int put_list(const char *A, json_t *p, const json_t *list, const char *arg,
		    const char *prefix, int *bad, drb_err *err)
{
	size_t i;
	const json_t *v;

	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v))
			return drb_err_set(err, DRB_EINVAL, "%s: %s[%zu] is not a string", A, arg,
					   i + 1);
		setf(p, bad, json_string_value(v), "%s.%zu", prefix, i + 1);
	}
	return 0;
}

/* One IpPermission as the catalog's rule: protocol, ports (null when the protocol has none),
 * the IPv4 and IPv6 CIDRs, and the source groups' ids. */
static json_t *rule_json(xmlNode *perm)
{
	json_t *o = json_object(), *cidrs = json_array(), *groups = json_array();
	xmlNode *n;
	int bad = !o || !cidrs || !groups;

	for (n = drb_awsx_child(perm, "ipRanges/item"); n && !bad; n = drb_awsx_next(n))
		if (drb_awsx_child(n, "cidrIp"))
			bad |= json_array_append_new(cidrs, drb_awsx_str(n, "cidrIp")) != 0;
	for (n = drb_awsx_child(perm, "ipv6Ranges/item"); n && !bad; n = drb_awsx_next(n))
		if (drb_awsx_child(n, "cidrIpv6"))
			bad |= json_array_append_new(cidrs, drb_awsx_str(n, "cidrIpv6")) != 0;
	for (n = drb_awsx_child(perm, "groups/item"); n && !bad; n = drb_awsx_next(n))
		if (drb_awsx_child(n, "groupId"))
			bad |= json_array_append_new(groups, drb_awsx_str(n, "groupId")) != 0;
	if (bad) {
		json_decref(o);
		json_decref(cidrs);
		json_decref(groups);
		return NULL;
	}
	drb_awsi_set(o, "protocol", drb_awsx_str(perm, "ipProtocol"), &bad);
	drb_awsi_set(o, "from_port", drb_awsx_int(perm, "fromPort"), &bad);
	drb_awsi_set(o, "to_port", drb_awsx_int(perm, "toPort"), &bad);
	drb_awsi_set(o, "cidrs", cidrs, &bad);
	drb_awsi_set(o, "groups", groups, &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *rules_json(xmlNode *sg, const char *path)
{
	json_t *a = json_array();
	xmlNode *n;

	for (n = drb_awsx_child(sg, path); n && a; n = drb_awsx_next(n)) {
		json_t *r = rule_json(n);

		if (!r || json_array_append_new(a, r) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *group_json(xmlNode *sg)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "id", drb_awsx_str(sg, "groupId"), &bad);
	drb_awsi_set(o, "name", drb_awsx_str(sg, "groupName"), &bad);
	drb_awsi_set(o, "description", drb_awsx_str(sg, "groupDescription"), &bad);
	drb_awsi_set(o, "vpc_id", drb_awsx_str(sg, "vpcId"), &bad);
	drb_awsi_set(o, "owner_id", drb_awsx_str(sg, "ownerId"), &bad);
	drb_awsi_set(o, "ingress", rules_json(sg, "ipPermissions/item"), &bad);
	drb_awsi_set(o, "egress", rules_json(sg, "ipPermissionsEgress/item"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The request parameters of describe_security_groups, without NextToken. */
static int describe_params(const char *A, const json_t *args, json_t *p, drb_err *err)
{
	const json_t *filters = json_object_get(args, "filters"), *v;
	const char *vpc = NULL, *k;
	int rc, bad = 0, nf = 0;

	rc = put_list(A, p, json_object_get(args, "group_ids"), "group_ids", "GroupId", &bad, err);
	if (rc == 0)
		rc = put_list(A, p, json_object_get(args, "group_names"), "group_names",
			      "GroupName", &bad, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "vpc_id", &vpc, err);
	if (rc != 0)
		return rc;
	if (vpc) {
		nf++;
		setf(p, &bad, "vpc-id", "Filter.%d.Name", nf);
		setf(p, &bad, vpc, "Filter.%d.Value.1", nf);
	}
	json_object_foreach((json_t *)filters, k, v)
	{
		nf++;
		setf(p, &bad, k, "Filter.%d.Name", nf);
		if (json_is_string(v)) {
			setf(p, &bad, json_string_value(v), "Filter.%d.Value.1", nf);
		} else if (json_is_array(v) && json_array_size(v) > 0) {
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "Filter.%d.Value", nf);
			rc = put_list(A, p, v, "filters", prefix, &bad, err);
			if (rc != 0)
				return rc;
		} else {
			return drb_err_set(err, DRB_EINVAL,
					   "%s: filters.%.60s must be a string or a non-empty list "
					   "of strings",
					   A, k);
		}
	}
	return bad ? nomem(A, err) : 0;
}

int drb_awsi_ec2_describe_sgs(drb_action_ctx *ctx, const json_t *args, json_t **result,
			      drb_err *err)
{
	const char *A = "aws.ec2.describe_security_groups";
	drb_aws_endpoint ep;
	json_t *p = NULL, *groups = NULL;
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ec2, A, &ep, err);
	if (rc != 0)
		return rc;
	p = json_object();
	if (!p) {
		rc = nomem(A, err);
		goto out;
	}
	rc = describe_params(A, args, p, err);
	if (rc == 0)
		rc = drb_awsi_pages(ctx, &drb_awsi_ec2, &ep,
				    &(const aws_pages){.operation = "DescribeSecurityGroups",
						       .token = "NextToken",
						       .answer_token = "nextToken",
						       .items = {"securityGroupInfo/item"},
						       .from_xml = group_json,
						       .what = "security groups"},
				    p, &groups, err);
	if (rc != 0)
		goto out;
	*result = json_pack("{s:O}", "groups", groups);
	if (!*result)
		rc = nomem(A, err);
out:
	json_decref(p);
	json_decref(groups);
	return rc;
}

/* The one IpPermission of authorize/revoke: protocol, ports, and a CIDR (IPv4 or IPv6) or a
 * source group. */
static int permission_params(const char *A, const json_t *args, json_t *p, drb_err *err)
{
	const char *group = NULL, *proto = NULL, *cidr = NULL, *src = NULL, *desc = NULL;
	long long from = -1, to = -1;
	int rc, bad = 0, has_from = 0, has_to = 0;

	rc = drb_arg_string(args, "group_id", &group, err);
	if (rc == 0)
		rc = drb_arg_string(args, "protocol", &proto, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "cidr", &cidr, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "source_group_id", &src, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "description", &desc, err);
	if (rc == 0 && json_object_get(args, "from_port") &&
	    !json_is_null(json_object_get(args, "from_port"))) {
		rc = drb_arg_int_opt(args, "from_port", &from, err);
		has_from = 1;
	}
	if (rc == 0 && json_object_get(args, "to_port") &&
	    !json_is_null(json_object_get(args, "to_port"))) {
		rc = drb_arg_int_opt(args, "to_port", &to, err);
		has_to = 1;
	}
	if (rc != 0)
		return drb_err_prefix(err, "%s: ", A);
	if (!cidr == !src)
		return drb_err_set(err, DRB_EINVAL, "%s: give exactly one of cidr, source_group_id",
				   A);
	if ((!strcmp(proto, "tcp") || !strcmp(proto, "udp") || !strcmp(proto, "6") ||
	     !strcmp(proto, "17")) &&
	    (!has_from || !has_to))
		return drb_err_set(err, DRB_EINVAL, "%s: protocol %s needs from_port and to_port",
				   A, proto);
	if (has_from && has_to && from > to && from != -1)
		return drb_err_set(err, DRB_EINVAL, "%s: from_port %lld is above to_port %lld", A,
				   from, to);
	drb_awsi_set(p, "GroupId", json_string(group), &bad);
	drb_awsi_set(p, "IpPermissions.1.IpProtocol", json_string(proto), &bad);
	if (has_from)
		drb_awsi_set(p, "IpPermissions.1.FromPort", json_integer(from), &bad);
	if (has_to)
		drb_awsi_set(p, "IpPermissions.1.ToPort", json_integer(to), &bad);
	if (cidr && strchr(cidr, ':')) {
		drb_awsi_set(p, "IpPermissions.1.Ipv6Ranges.1.CidrIpv6", json_string(cidr), &bad);
		if (desc)
			drb_awsi_set(p, "IpPermissions.1.Ipv6Ranges.1.Description",
				     json_string(desc), &bad);
	} else if (cidr) {
		drb_awsi_set(p, "IpPermissions.1.IpRanges.1.CidrIp", json_string(cidr), &bad);
		if (desc)
			drb_awsi_set(p, "IpPermissions.1.IpRanges.1.Description", json_string(desc),
				     &bad);
	} else {
		drb_awsi_set(p, "IpPermissions.1.Groups.1.GroupId", json_string(src), &bad);
		if (desc)
			drb_awsi_set(p, "IpPermissions.1.Groups.1.Description", json_string(desc),
				     &bad);
	}
	return bad ? nomem(A, err) : 0;
}

/* authorize (revoke = 0) or revoke one ingress rule. The "nothing to do" answer (the rule is
 * already there / was not there) is success with changed=false. */
static int ingress(const char *A, const char *op, const char *nothing_code, int revoke,
		   drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	drb_aws_endpoint ep;
	aws_req rq = {.operation = op};
	aws_resp resp = {0};
	json_t *p = NULL;
	char pat[160], ret[8] = "";
	int rc, changed = 1;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_ec2, A, &ep, err);
	if (rc != 0)
		return rc;
	p = json_object();
	if (!p) {
		rc = nomem(A, err);
		goto out;
	}
	rc = permission_params(A, args, p, err);
	if (rc != 0)
		goto out;
	rq.params = p;
	rc = drb_awsi_call(ctx, &drb_awsi_ec2, &ep, &rq, &resp, err);
	/* drb_awsi_call's message: "ec2 OPERATION: CODE: message ..." */
	snprintf(pat, sizeof(pat), "ec2 %s: %s:", op, nothing_code);
	if (rc != 0 && err && !strncmp(err->msg, pat, strlen(pat))) {
		drb_err_clear(err);
		rc = 0;
		changed = 0;
	} else if (rc != 0) {
		goto out;
	} else if (resp.doc) {
		xmlNode *root = drb_awsx_root(resp.doc);

		/* Return false, or (revoke) the rule listed as unknown: nothing was changed. */
		if (drb_awsx_text(root, "return", ret, sizeof(ret)) == 0 && strcmp(ret, "true"))
			changed = 0;
		if (revoke && drb_awsx_child(root, "unknownIpPermissionSet/item"))
			changed = 0;
	}
	*result = json_pack("{s:s, s:b}", "group_id",
			    json_string_value(json_object_get(p, "GroupId")), "changed", changed);
	if (!*result)
		rc = nomem(A, err);
out:
	drb_awsi_resp_free(&resp);
	json_decref(p);
	return rc;
}

int drb_awsi_ec2_authorize_ingress(drb_action_ctx *ctx, const json_t *args, json_t **result,
				   drb_err *err)
{
	return ingress("aws.ec2.authorize_security_group_ingress", "AuthorizeSecurityGroupIngress",
		       "InvalidPermission.Duplicate", 0, ctx, args, result, err);
}

int drb_awsi_ec2_revoke_ingress(drb_action_ctx *ctx, const json_t *args, json_t **result,
				drb_err *err)
{
	return ingress("aws.ec2.revoke_security_group_ingress", "RevokeSecurityGroupIngress",
		       "InvalidPermission.NotFound", 1, ctx, args, result, err);
}
