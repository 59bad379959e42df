/* The aws.route53.* actions (REST-XML API 2013-04-01, one global endpoint signed for
 * us-east-1): read and upsert a record (optionally waiting for INSYNC), read a change, read
 * and update a health check. Identifiers go into URL paths, so each is checked against the
 * characters AWS uses before it is placed there. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <drbook/util.h>

#include "aws_int.h"

#define API "/2013-04-01"
#define XMLNS "https://route53.amazonaws.com/doc/2013-04-01/"
#define DEFAULT_WAIT_S 600.0 /* when the step gives no deadline */
#define MAX_VALUES 100

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

/* "Z123", "/hostedzone/Z123", "/change/C1" -> the bare id, checked: ids are letters, digits
 * and '-' (health checks are UUIDs). */
static int bare_id(const char *action, const char *arg, const char *in, const char *prefix,
		   char *out, size_t n, drb_err *err)
{
	size_t pl = strlen(prefix), len;

	if (!strncmp(in, prefix, pl))
		in += pl;
	len = strlen(in);
	if (len == 0 || len >= n)
		goto bad;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)in[i]) && in[i] != '-')
			goto bad;
	memcpy(out, in, len + 1);
	return 0;
bad:
	return drb_err_set(err, DRB_EINVAL, "%s: argument '%s' is not a Route 53 id", action, arg);
}

/* Route 53 names: lower-case, trailing dot, "\ooo" escapes decoded ("\052" is '*'). */
static void norm_name(const char *in, char *out, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; in[i] && k + 2 < n; i++) {
		char c = in[i];

		if (c == '\\' && isdigit((unsigned char)in[i + 1]) &&
		    isdigit((unsigned char)in[i + 2]) && isdigit((unsigned char)in[i + 3])) {
			c = (char)((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 +
				   (in[i + 3] - '0'));
			i += 3;
		}
		out[k++] = (char)tolower((unsigned char)c);
	}
	if (k == 0 || out[k - 1] != '.')
		out[k++] = '.';
	out[k] = '\0';
}

static int type_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 10)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isupper((unsigned char)t[i]) && !isdigit((unsigned char)t[i]))
			return 0;
	return 1;
}

static json_t *record_json(xmlNode *r)
{
	json_t *o = json_object();
	xmlNode *alias = drb_awsx_child(r, "AliasTarget");
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsi_set(o, "name", drb_awsx_str(r, "Name"), &bad);
	drb_awsi_set(o, "type", drb_awsx_str(r, "Type"), &bad);
	drb_awsi_set(o, "ttl", drb_awsx_int(r, "TTL"), &bad);
	if (alias) {
		json_t *v = json_array();

		if (v && json_array_append_new(v, drb_awsx_str(alias, "DNSName")) != 0)
			bad = 1;
		drb_awsi_set(o, "values", v, &bad);
		drb_awsi_set(o, "alias", json_true(), &bad);
	} else {
		json_t *v = json_array();
		xmlNode *rr;

		for (rr = drb_awsx_child(r, "ResourceRecords/ResourceRecord"); rr && v && !bad;
		     rr = drb_awsx_next(rr))
			if (json_array_append_new(v, drb_awsx_str(rr, "Value")) != 0)
				bad = 1;
		drb_awsi_set(o, "values", v, &bad);
	}
	drb_awsi_set(o, "set_identifier", drb_awsx_str(r, "SetIdentifier"), &bad);
	drb_awsi_set(o, "failover", drb_awsx_str(r, "Failover"), &bad);
	drb_awsi_set(o, "weight", drb_awsx_int(r, "Weight"), &bad);
	drb_awsi_set(o, "health_check_id", drb_awsx_str(r, "HealthCheckId"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int drb_awsi_r53_get_record(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.get_record", *zone_arg = NULL, *name = NULL, *type = NULL;
	const char *set_id = NULL;
	char zone[64], want[512], got[512], gtype[16];
	drb_aws_endpoint ep;
	drb_buf path, query;
	aws_req rq = {.operation = "ListResourceRecordSets", .method = "GET"};
	aws_resp resp = {0};
	xmlNode *r;
	int rc;

	*result = NULL;
	drb_buf_init(&path, 1024);
	drb_buf_init(&query, 2048);
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "zone_id", &zone_arg, err);
	if (rc == 0)
		rc = drb_arg_string(args, "name", &name, err);
	if (rc == 0)
		rc = drb_arg_string(args, "type", &type, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "set_identifier", &set_id, err);
	if (rc == 0)
		rc = bare_id(A, "zone_id", zone_arg, "/hostedzone/", zone, sizeof(zone), err);
	if (rc != 0)
		goto out;
	if (!type_ok(type) || !*name || strlen(name) > 400) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'type' must be a record type such as A or "
				 "CNAME and 'name' a DNS name",
				 A);
		goto out;
	}
	rc = drb_buf_printf(&path, API "/hostedzone/%s/rrset", zone);
	if (rc == 0)
		rc = drb_buf_puts(&query, "maxitems=100&name=");
	if (rc == 0)
		rc = drb_awsi_urlencode(&query, name);
	if (rc == 0)
		rc = drb_buf_printf(&query, "&type=%s", type);
	if (rc != 0) {
		rc = nomem(A, err);
		goto out;
	}
	rq.path = path.p;
	rq.query = query.p;
	rc = drb_awsi_call(ctx, &drb_awsi_route53, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	norm_name(name, want, sizeof(want));
	/* The API lists from (name, type) onwards: the first answer may be the next record, and
	 * a routing policy gives several records of one name and type (set_identifier picks). */
	for (r = drb_awsx_find(drb_awsx_root(resp.doc), "ResourceRecordSet"); r;
	     r = drb_awsx_next(r)) {
		char raw[512], sid[256];

		drb_awsx_text(r, "Name", raw, sizeof(raw));
		norm_name(raw, got, sizeof(got));
		drb_awsx_text(r, "Type", gtype, sizeof(gtype));
		if (strcmp(want, got) != 0 || strcmp(type, gtype) != 0) {
			r = NULL;
			break;
		}
		drb_awsx_text(r, "SetIdentifier", sid, sizeof(sid));
		if (!set_id || !strcmp(set_id, sid))
			break;
	}
	if (!r) {
		rc = drb_err_set(err, DRB_ENOTFOUND, "%s: no %s record named %s%s%s in zone %s", A,
				 type, want, set_id ? " with set identifier " : "",
				 set_id ? set_id : "", zone);
		goto out;
	}
	*result = record_json(r);
	if (!*result)
		rc = nomem(A, err);
out:
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	drb_buf_free(&query);
	return rc;
}

static json_t *change_json(xmlNode *ci)
{
	json_t *o = json_object();
	char id[128];
	const char *p = id;
	int bad = 0;

	if (!o)
		return NULL;
	drb_awsx_text(ci, "Id", id, sizeof(id));
	if (!strncmp(p, "/change/", 8))
		p += 8;
	drb_awsi_set(o, "change_id", json_string(p), &bad);
	drb_awsi_set(o, "status", drb_awsx_str(ci, "Status"), &bad);
	drb_awsi_set(o, "submitted_at", drb_awsx_str(ci, "SubmittedAt"), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Sends a request whose answer holds a ChangeInfo (ChangeResourceRecordSets, GetChange);
 * *out gets it as {change_id, status, submitted_at}. */
static int change_call(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *A,
		       const aws_req *rq, json_t **out, drb_err *err)
{
	aws_resp resp;
	xmlNode *ci;
	int rc;

	*out = NULL;
	rc = drb_awsi_call(ctx, &drb_awsi_route53, ep, rq, &resp, err);
	if (rc != 0)
		return rc;
	ci = drb_awsx_find(drb_awsx_root(resp.doc), "ChangeInfo");
	if (!ci)
		rc = drb_err_set(err, DRB_EINVAL, "route53 %s: no ChangeInfo in the answer",
				 rq->operation);
	else if (!(*out = change_json(ci)))
		rc = nomem(A, err);
	drb_awsi_resp_free(&resp);
	return rc;
}

/* GetChange for a bare id; *out gets {change_id, status, submitted_at}. */
static int get_change(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *A,
		      const char *id, json_t **out, drb_err *err)
{
	char path[128];
	aws_req rq = {.operation = "GetChange", .method = "GET", .path = path};

	snprintf(path, sizeof(path), API "/change/%s", id);
	return change_call(ctx, ep, A, &rq, out, err);
}

static int status_is(const json_t *change, const char *want)
{
	const char *s = json_string_value(json_object_get(change, "status"));

	return s && !strcmp(s, want);
}

int drb_awsi_r53_get_change(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.get_change", *arg = NULL;
	drb_aws_endpoint ep;
	char id[64];
	int rc;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &arg, err);
	if (rc == 0)
		rc = bare_id(A, "id", arg, "/change/", id, sizeof(id), err);
	if (rc == 0)
		rc = get_change(ctx, &ep, A, id, result, err);
	return rc;
}

/* The values argument: a list of strings (a single string is one value). */
static int values_arg(const char *A, const json_t *args, const json_t **list, drb_err *err)
{
	const json_t *v = json_object_get(args, "values"), *x;
	size_t i;

	if (json_is_string(v)) {
		*list = v;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > MAX_VALUES)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: argument 'values' must be a list of 1..%d strings", A,
				   MAX_VALUES);
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x) || !json_string_length(x))
			return drb_err_set(
			    err, DRB_EINVAL,
			    "%s: argument 'values' item %zu must be a non-empty string", A, i + 1);
	}
	*list = v;
	return 0;
}

/* The routing-policy parts of a record (all optional; checked by upsert before). */
typedef struct r53_routing {
	const char *set_identifier, *failover, *health_check_id;
	long long weight; /* -1: none */
	const json_t *geolocation, *alias;
} r53_routing;

/* An element with escaped text, when text is set. */
static int xml_elem(drb_buf *b, const char *tag, const char *text)
{
	int rc = 0;

	if (!text)
		return 0;
	rc = drb_buf_printf(b, "<%s>", tag);
	if (rc == 0)
		rc = drb_awsi_xml_escape(b, text);
	if (rc == 0)
		rc = drb_buf_printf(b, "</%s>", tag);
	return rc;
}

static int change_body(drb_buf *b, const char *action, const char *name, const char *type,
		       long long ttl, const json_t *values, const char *comment,
		       const r53_routing *rt)
{
	int rc;

	rc = drb_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<ChangeResourceRecordSetsRequest xmlns=\"" XMLNS "\">"
			     "<ChangeBatch><Comment>");
	if (rc == 0)
		rc = drb_awsi_xml_escape(b, comment);
	if (rc == 0)
		rc = drb_buf_printf(b,
				    "</Comment><Changes><Change><Action>%s</Action>"
				    "<ResourceRecordSet><Name>",
				    action);
	if (rc == 0)
		rc = drb_awsi_xml_escape(b, name);
	if (rc == 0)
		rc = drb_buf_printf(b, "</Name><Type>%s</Type>", type);
	/* the order of Route 53's schema: SetIdentifier, Weight, GeoLocation, Failover, TTL,
	 * ResourceRecords, AliasTarget, HealthCheckId */
	if (rc == 0)
		rc = xml_elem(b, "SetIdentifier", rt->set_identifier);
	if (rc == 0 && rt->weight >= 0)
		rc = drb_buf_printf(b, "<Weight>%lld</Weight>", rt->weight);
	if (rc == 0 && rt->geolocation) {
		rc = drb_buf_puts(b, "<GeoLocation>");
		if (rc == 0)
			rc = xml_elem(
			    b, "ContinentCode",
			    json_string_value(json_object_get(rt->geolocation, "continent")));
		if (rc == 0)
			rc = xml_elem(
			    b, "CountryCode",
			    json_string_value(json_object_get(rt->geolocation, "country")));
		if (rc == 0)
			rc = xml_elem(
			    b, "SubdivisionCode",
			    json_string_value(json_object_get(rt->geolocation, "subdivision")));
		if (rc == 0)
			rc = drb_buf_puts(b, "</GeoLocation>");
	}
	if (rc == 0)
		rc = xml_elem(b, "Failover", rt->failover);
	if (rt->alias) {
		/* an alias has no TTL and no records of its own */
		if (rc == 0)
			rc = drb_buf_puts(b, "<AliasTarget>");
		if (rc == 0)
			rc = xml_elem(b, "HostedZoneId",
				      json_string_value(json_object_get(rt->alias, "zone_id")));
		if (rc == 0)
			rc = xml_elem(b, "DNSName",
				      json_string_value(json_object_get(rt->alias, "dns_name")));
		if (rc == 0)
			rc = drb_buf_printf(
			    b, "<EvaluateTargetHealth>%s</EvaluateTargetHealth></AliasTarget>",
			    json_is_true(json_object_get(rt->alias, "evaluate_target_health"))
				? "true"
				: "false");
		if (rc == 0)
			rc = xml_elem(b, "HealthCheckId", rt->health_check_id);
		if (rc == 0)
			rc = drb_buf_puts(b, "</ResourceRecordSet></Change></Changes>"
					     "</ChangeBatch></ChangeResourceRecordSetsRequest>");
		return rc;
	}
	if (rc == 0)
		rc = drb_buf_printf(b, "<TTL>%lld</TTL><ResourceRecords>", ttl);
	if (json_is_string(values)) {
		if (rc == 0)
			rc = drb_buf_puts(b, "<ResourceRecord><Value>");
		if (rc == 0)
			rc = drb_awsi_xml_escape(b, json_string_value(values));
		if (rc == 0)
			rc = drb_buf_puts(b, "</Value></ResourceRecord>");
	} else {
		size_t i;
		const json_t *v;

		json_array_foreach(values, i, v)
		{
			if (rc == 0)
				rc = drb_buf_puts(b, "<ResourceRecord><Value>");
			if (rc == 0)
				rc = drb_awsi_xml_escape(b, json_string_value(v));
			if (rc == 0)
				rc = drb_buf_puts(b, "</Value></ResourceRecord>");
		}
	}
	if (rc == 0)
		rc = drb_buf_puts(b, "</ResourceRecords>");
	if (rc == 0)
		rc = xml_elem(b, "HealthCheckId", rt->health_check_id);
	if (rc == 0)
		rc = drb_buf_puts(b, "</ResourceRecordSet></Change></Changes>"
				     "</ChangeBatch></ChangeResourceRecordSetsRequest>");
	return rc;
}

/* The routing arguments of upsert_record, checked against what Route 53 accepts together. */
static int routing_args(const char *A, const json_t *args, r53_routing *rt, drb_err *err)
{
	int rc;

	memset(rt, 0, sizeof(*rt));
	rt->weight = -1;
	rc = drb_arg_string_opt(args, "set_identifier", &rt->set_identifier, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "failover", &rt->failover, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "health_check_id", &rt->health_check_id, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "weight", &rt->weight, err);
	if (rc)
		return rc;
	rt->geolocation = json_object_get(args, "geolocation");
	rt->alias = json_object_get(args, "alias");
	if (json_is_null(rt->geolocation))
		rt->geolocation = NULL;
	if (json_is_null(rt->alias))
		rt->alias = NULL;
	if (rt->failover && strcmp(rt->failover, "PRIMARY") && strcmp(rt->failover, "SECONDARY"))
		return drb_err_set(err, DRB_EINVAL, "%s: 'failover' must be PRIMARY or SECONDARY",
				   A);
	if (rt->weight != -1 && (rt->weight < 0 || rt->weight > 255))
		return drb_err_set(err, DRB_EINVAL, "%s: 'weight' must be 0..255", A);
	if ((rt->failover || rt->weight >= 0 || rt->geolocation) && !rt->set_identifier)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: a failover, weighted or geolocation record needs "
				   "'set_identifier'",
				   A);
	if (!!rt->failover + (rt->weight >= 0) + !!rt->geolocation > 1)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: give one routing policy: failover, weight or geolocation",
				   A);
	if (rt->geolocation && (!json_is_object(rt->geolocation) ||
				!(json_is_string(json_object_get(rt->geolocation, "continent")) ||
				  json_is_string(json_object_get(rt->geolocation, "country")))))
		return drb_err_set(
		    err, DRB_EINVAL,
		    "%s: 'geolocation' must be {continent} or {country[, subdivision]}", A);
	if (rt->alias && (!json_is_object(rt->alias) ||
			  !json_is_string(json_object_get(rt->alias, "dns_name")) ||
			  !json_is_string(json_object_get(rt->alias, "zone_id"))))
		return drb_err_set(
		    err, DRB_EINVAL,
		    "%s: 'alias' must be {dns_name, zone_id[, evaluate_target_health]}", A);
	return 0;
}

int drb_awsi_r53_upsert(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.upsert_record", *zone_arg = NULL, *name = NULL, *type = NULL;
	const char *comment = "drbook";
	const json_t *values = NULL;
	char zone[64], path[128], id[64];
	drb_aws_endpoint ep;
	drb_buf body;
	aws_req rq = {.operation = "ChangeResourceRecordSets", .method = "POST", .path = path};
	json_t *o = NULL;
	long long ttl = 300;
	int rc, wait = 0;
	double delay = 1.0, give_up;
	r53_routing rt;

	*result = NULL;
	drb_buf_init(&body, (size_t)256 << 10);
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "zone_id", &zone_arg, err);
	if (rc == 0)
		rc = drb_arg_string(args, "name", &name, err);
	if (rc == 0)
		rc = drb_arg_string(args, "type", &type, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "ttl", &ttl, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "wait", &wait, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "comment", &comment, err);
	if (rc == 0)
		rc = routing_args(A, args, &rt, err);
	if (rc == 0 && !(rt.alias && !json_object_get(args, "values")))
		rc = values_arg(A, args, &values, err);
	if (rc == 0)
		rc = bare_id(A, "zone_id", zone_arg, "/hostedzone/", zone, sizeof(zone), err);
	if (rc != 0)
		goto out;
	if (!type_ok(type) || !*name || strlen(name) > 400) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: 'type' must be a record type such as A or "
				 "CNAME and 'name' a DNS name",
				 A);
		goto out;
	}
	if (ttl < 0 || ttl > 2147483647) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: 'ttl' must be 0..2147483647 seconds", A);
		goto out;
	}
	if (change_body(&body, "UPSERT", name, type, ttl, values, comment, &rt) != 0) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: the change is too large", A);
		goto out;
	}
	snprintf(path, sizeof(path), API "/hostedzone/%s/rrset/", zone);
	rq.body = body.p;
	rc = change_call(ctx, &ep, A, &rq, &o, err);
	if (rc != 0)
		goto out;
	/* Route 53 applies a change to all its servers within about a minute; waiting turns
	 * "submitted" into "answered everywhere", bounded by the step's deadline. */
	give_up = drb_mono_now() + DEFAULT_WAIT_S;
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(o, "change_id")));
	while (wait && !status_is(o, "INSYNC")) {
		json_t *next = NULL;

		if (ctx->deadline <= 0 && drb_mono_now() >= give_up) {
			rc = drb_err_set(err, DRB_ETIMEOUT, "%s: change %s not INSYNC after %.0f s",
					 A, id, DEFAULT_WAIT_S);
			goto out;
		}
		rc = drb_awsi_sleep(ctx, delay, A, err);
		if (rc == DRB_ETIMEOUT)
			drb_err_set(err, rc,
				    "%s: change %s still %s when the step's deadline passed", A, id,
				    json_string_value(json_object_get(o, "status")));
		if (rc == 0)
			rc = get_change(ctx, &ep, A, id, &next, err);
		if (rc != 0)
			goto out;
		json_decref(o);
		o = next;
		delay = delay * 2 > 5 ? 5 : delay * 2;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	drb_buf_free(&body);
	return rc;
}

/* DELETE needs the record exactly as it is: it is read first (get_record's arguments), and a
 * record that is not there is already deleted (a teardown may run twice). */
int drb_awsi_r53_delete(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.delete_record", *zone_arg = NULL;
	const char *comment = "drbook";
	char zone[64], path[128];
	drb_aws_endpoint ep;
	drb_buf body;
	aws_req rq = {.operation = "ChangeResourceRecordSets", .method = "POST", .path = path};
	json_t *cur = NULL, *o = NULL;
	r53_routing rt;
	int rc, bad = 0;

	*result = NULL;
	drb_buf_init(&body, (size_t)256 << 10);
	memset(&rt, 0, sizeof(rt));
	rt.weight = -1;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "zone_id", &zone_arg, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "comment", &comment, err);
	if (rc == 0)
		rc = bare_id(A, "zone_id", zone_arg, "/hostedzone/", zone, sizeof(zone), err);
	if (rc == 0)
		rc = drb_awsi_r53_get_record(ctx, args, &cur, err);
	if (rc == DRB_ENOTFOUND) {
		o = json_pack("{s:b}", "deleted", 0);
		rc = o ? 0 : nomem(A, err);
		if (rc == 0)
			drb_err_clear(err);
		goto done;
	}
	if (rc != 0)
		goto out;
	if (json_is_true(json_object_get(cur, "alias"))) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: %s is an alias record: not deleted", A,
				 json_string_value(json_object_get(cur, "name")));
		goto out;
	}
	rt.set_identifier = json_string_value(json_object_get(cur, "set_identifier"));
	rt.failover = json_string_value(json_object_get(cur, "failover"));
	rt.health_check_id = json_string_value(json_object_get(cur, "health_check_id"));
	if (json_is_integer(json_object_get(cur, "weight")))
		rt.weight = json_integer_value(json_object_get(cur, "weight"));
	if (change_body(&body, "DELETE", json_string_value(json_object_get(cur, "name")),
			json_string_value(json_object_get(cur, "type")),
			json_integer_value(json_object_get(cur, "ttl")),
			json_object_get(cur, "values"), comment, &rt) != 0) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: the change is too large", A);
		goto out;
	}
	snprintf(path, sizeof(path), API "/hostedzone/%s/rrset/", zone);
	rq.body = body.p;
	rc = change_call(ctx, &ep, A, &rq, &o, err);
	if (rc != 0)
		goto out;
	drb_awsi_set(o, "deleted", json_true(), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
done:
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(cur);
	drb_buf_free(&body);
	return rc;
}

int drb_awsi_r53_hc_status(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.get_health_check_status", *arg = NULL;
	char id[80], path[160];
	drb_aws_endpoint ep;
	aws_req rq = {.operation = "GetHealthCheckStatus", .method = "GET", .path = path};
	aws_resp resp = {0};
	json_t *o = NULL;
	xmlNode *obs;
	long long reporting = 0, failing = 0;
	int rc, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &arg, err);
	if (rc == 0)
		rc = bare_id(A, "id", arg, "/healthcheck/", id, sizeof(id), err);
	if (rc != 0)
		goto out;
	snprintf(path, sizeof(path), API "/healthcheck/%s/status", id);
	rc = drb_awsi_call(ctx, &drb_awsi_route53, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	obs = drb_awsx_find(drb_awsx_root(resp.doc), "HealthCheckObservation");
	for (; obs; obs = drb_awsx_next(obs)) {
		char st[256];

		reporting++;
		drb_awsx_text(obs, "StatusReport/Status", st, sizeof(st));
		if (strncasecmp(st, "Success", 7) != 0)
			failing++;
	}
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	/* Route 53 itself calls an endpoint healthy when more than 18% of its checkers
	 * report it healthy; no observation at all is not healthy. */
	drb_awsi_set(
	    o, "healthy",
	    json_boolean(reporting > 0 && (double)(reporting - failing) / (double)reporting > 0.18),
	    &bad);
	drb_awsi_set(o, "reporting", json_integer(reporting), &bad);
	drb_awsi_set(o, "failing", json_integer(failing), &bad);
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

int drb_awsi_r53_hc_update(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *A = "aws.route53.update_health_check", *arg = NULL;
	char id[80], path[160], body[512];
	drb_aws_endpoint ep;
	aws_req rq = {
	    .operation = "UpdateHealthCheck", .method = "POST", .path = path, .body = body};
	aws_resp resp = {0};
	json_t *o = NULL;
	xmlNode *hc;
	int rc, bad = 0, disabled = -1, inverted = -1;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &drb_awsi_route53, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "id", &arg, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "disabled", &disabled, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "inverted", &inverted, err);
	if (rc == 0)
		rc = bare_id(A, "id", arg, "/healthcheck/", id, sizeof(id), err);
	if (rc != 0)
		goto out;
	if (disabled < 0 && inverted < 0) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: give 'disabled' or 'inverted' (or both)", A);
		goto out;
	}
	snprintf(path, sizeof(path), API "/healthcheck/%s", id);
	/* The schema is a sequence: Inverted comes before Disabled. */
	snprintf(
	    body, sizeof(body),
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<UpdateHealthCheckRequest xmlns=\"" XMLNS "\">%s%s%s%s%s%s"
	    "</UpdateHealthCheckRequest>",
	    inverted >= 0 ? "<Inverted>" : "", inverted >= 0 ? (inverted ? "true" : "false") : "",
	    inverted >= 0 ? "</Inverted>" : "", disabled >= 0 ? "<Disabled>" : "",
	    disabled >= 0 ? (disabled ? "true" : "false") : "", disabled >= 0 ? "</Disabled>" : "");
	rc = drb_awsi_call(ctx, &drb_awsi_route53, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	hc = drb_awsx_find(drb_awsx_root(resp.doc), "HealthCheck");
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "id", hc ? drb_awsx_str(hc, "Id") : json_string(id), &bad);
	if (hc) {
		drb_awsi_set(o, "disabled", drb_awsx_bool(hc, "HealthCheckConfig/Disabled"), &bad);
		drb_awsi_set(o, "inverted", drb_awsx_bool(hc, "HealthCheckConfig/Inverted"), &bad);
	}
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
