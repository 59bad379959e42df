/* The one path every AWS request takes: arguments common to all actions (region,
 * connection), the redacted description for the audit log, the seam, and inside the seam's
 * perform the credentials, SigV4 signature and drb_http_perform_retry. The answer is read back
 * from the seam's response object only, so a replayed run parses exactly what was recorded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <drbook/http.h>
#include <drbook/util.h>

#include "aws_int.h"

#define AWS_MAX_RESPONSE ((size_t)4 << 20)
#define AWS_S3_MAX_RESPONSE ((size_t)256 << 20) /* an evidence object: a whole audit log */
#define AWS_TIMEOUT_S 30.0
#define AWS_RETRY_CAP_S 20.0
#define AWS_ATTEMPTS 4

const aws_svc drb_awsi_rds = {"rds", "rds", "rds", "RDS", AWS_QUERY, 0, "2014-10-31", NULL};
const aws_svc drb_awsi_sns = {"sns", "sns", "sns", "SNS", AWS_QUERY, 0, "2010-03-31", NULL};
/* STS's endpoint follows sts_regional_endpoints (DRB_AWS_STS in the global field). */
const aws_svc drb_awsi_sts = {"sts",	 "sts",	      "sts",	    "STS",
			      AWS_QUERY, DRB_AWS_STS, "2011-06-15", NULL};
const aws_svc drb_awsi_cloudwatch = {
    "cloudwatch", "monitoring", "monitoring", "CLOUDWATCH", AWS_QUERY, 0, "2010-08-01", NULL};
const aws_svc drb_awsi_ecs = {"ecs",	"ecs", "ecs", "ECS",
			      AWS_JSON, 0,     NULL,  "AmazonEC2ContainerServiceV20141113"};
const aws_svc drb_awsi_dynamodb = {"dynamodb", "dynamodb", "dynamodb", "DYNAMODB",
				   AWS_JSON10, 0,	   NULL,       "DynamoDB_20120810"};
const aws_svc drb_awsi_route53 = {"route53",   "route53", "route53", "ROUTE_53",
				  AWS_RESTXML, 1,	  NULL,	     NULL};
const aws_svc drb_awsi_s3 = {"s3", "s3", "s3", "S3", AWS_S3, 0, NULL, NULL};

/* ---- encoding ---------------------------------------------------------------------------- */

static int encode(drb_buf *b, const char *s, int form)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
		unsigned char c = *p;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			rc = drb_buf_append(b, p, 1);
		} else if (c == ' ' && form) {
			rc = drb_buf_append(b, "+", 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			rc = drb_buf_append(b, e, 3);
		}
	}
	return rc;
}

int drb_awsi_urlencode(drb_buf *b, const char *s)
{
	return encode(b, s, 0);
}

int drb_awsi_formencode(drb_buf *b, const char *s)
{
	return encode(b, s, 1);
}

int drb_awsi_xml_escape(drb_buf *b, const char *s)
{
	int rc = 0;

	for (const char *p = s; *p && rc == 0; p++) {
		switch (*p) {
		case '&':
			rc = drb_buf_puts(b, "&amp;");
			break;
		case '<':
			rc = drb_buf_puts(b, "&lt;");
			break;
		case '>':
			rc = drb_buf_puts(b, "&gt;");
			break;
		case '"':
			rc = drb_buf_puts(b, "&quot;");
			break;
		case '\'':
			rc = drb_buf_puts(b, "&apos;");
			break;
		default:
			rc = drb_buf_append(b, p, 1);
		}
	}
	return rc;
}

/* A Query parameter's value as text: strings as they are, integers in decimal, reals with
 * enough digits to round-trip, booleans "true"/"false". */
static int param_text(const json_t *v, char *tmp, size_t n, const char **out)
{
	if (json_is_string(v)) {
		*out = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(tmp, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = tmp;
	} else if (json_is_real(v)) {
		/* Shortest of 15 or 17 digits that reads back the same: 0.1, not 0.1000..01. */
		snprintf(tmp, n, "%.15g", json_real_value(v));
		if (strtod(tmp, NULL) != json_real_value(v))
			snprintf(tmp, n, "%.17g", json_real_value(v));
		*out = tmp;
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v) ? "true" : "false";
	} else {
		return -1;
	}
	return 0;
}

static int query_body(const aws_svc *svc, const aws_req *rq, drb_buf *b)
{
	const char *k;
	const json_t *v;
	int rc;

	rc = drb_buf_puts(b, "Action=");
	if (rc == 0)
		rc = drb_awsi_formencode(b, rq->operation);
	if (rc == 0)
		rc = drb_buf_puts(b, "&Version=");
	if (rc == 0)
		rc = drb_awsi_formencode(b, svc->api_version);
	json_object_foreach((json_t *)rq->params, k, v)
	{
		char tmp[64];
		const char *t = NULL;

		if (rc != 0)
			break;
		if (param_text(v, tmp, sizeof(tmp), &t) != 0)
			return DRB_EINVAL;
		rc = drb_buf_puts(b, "&");
		if (rc == 0)
			rc = drb_awsi_formencode(b, k);
		if (rc == 0)
			rc = drb_buf_puts(b, "=");
		if (rc == 0)
			rc = drb_awsi_formencode(b, t);
	}
	return rc;
}

/* ---- the perform callback ----------------------------------------------------------------- */

typedef struct aws_job {
	const aws_svc *svc;
	const drb_aws_endpoint *ep;
	const char *operation;
	const char *method;
	char *url;
	const char *path;
	const char *query;
	const char *body; /* may be NULL */
	size_t body_len;
	const char *content_type;
	const char *content_md5;
	const json_t *extra_headers; /* AWS_S3: signed x-amz-* headers, or NULL */
	char target[200];
	double timeout_s;
	double retry_cap_s;
	double deadline; /* the step's, drb_mono_now() time or 0: shared by all attempts */
	const volatile int *cancel;
} aws_job;

/* The HTTP client retries 5xx and 429 by itself; this adds the throttling codes AWS sends
 * with a 400 (Query "Throttling", Route 53 "PriorRequestNotComplete", JSON
 * "ThrottlingException"). Denials and every other 4xx are answered at once. */
static int classify(void *ud, const drb_http_resp *r)
{
	drb_aws_error e;

	(void)ud;
	if (r->status < 400)
		return 0;
	drb_aws_error_parse(r->status, r->body, r->body_len, NULL,
			    json_string_value(json_object_get(r->headers, "x-amzn-errortype")), &e);
	return drb_aws_is_throttle(e.code);
}

static void wipe_headers(char **h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (h[i]) {
			OPENSSL_cleanse(h[i], strlen(h[i]));
			free(h[i]);
		}
	}
}

static const char *header(const json_t *h, const char *name)
{
	return json_string_value(json_object_get(h, name));
}

static int aws_perform(void *arg, json_t **response, drb_err *err)
{
	const aws_job *j = arg;
	drb_aws_creds cr;
	drb_sigv4_creds sc;
	drb_sigv4_header in[4 + AWS_S3_MAX_EXTRA_HEADERS];
	drb_sigv4_req sr;
	drb_sigv4_out so;
	drb_http_req hr;
	drb_http_resp resp;
	drb_http_retry pol;
	char *hl[12 + AWS_S3_MAX_EXTRA_HEADERS] = {0};
	size_t nin = 0, nh = 0, i;
	int rc, attempts = 0, bad = 0;
	json_t *r = NULL, *hdrs = NULL;
	const char *rid;

	*response = NULL;
	memset(&so, 0, sizeof(so));
	memset(&resp, 0, sizeof(resp));
	memset(&sr, 0, sizeof(sr));
	memset(&hr, 0, sizeof(hr));
	memset(&pol, 0, sizeof(pol));
	/* Credentials are read here, not before the seam: a replay never needs them. Any STS
	 * call the chain makes (assume-role, web identity) uses this call's region, as
	 * botocore's client does; one that fetches them is not recorded (it is not the
	 * runbook's call, and its answer is a secret). */
	memset(&cr, 0, sizeof(cr));
	rc = drb_aws_creds_resolve(j->ep->profile, j->ep->region_default ? NULL : j->ep->region,
				   &cr, err);
	if (rc != 0)
		goto out;
	sc.access_key = cr.access_key;
	sc.secret_key = cr.secret_key;
	sc.session_token = cr.session_token;
	in[nin++] = (drb_sigv4_header){"Host", j->ep->host};
	if (j->content_type)
		in[nin++] = (drb_sigv4_header){"Content-Type", j->content_type};
	if (j->target[0])
		in[nin++] = (drb_sigv4_header){"X-Amz-Target", j->target};
	if (j->content_md5)
		in[nin++] = (drb_sigv4_header){"Content-MD5", j->content_md5};
	if (j->extra_headers) {
		const char *hk;
		const json_t *hv;

		json_object_foreach((json_t *)j->extra_headers, hk, hv)
		{
			if (nin >= sizeof(in) / sizeof(in[0]) || !json_is_string(hv)) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "%s %s: too many headers or a header that is not "
						 "a string",
						 j->svc->name, j->operation);
				goto out;
			}
			in[nin++] = (drb_sigv4_header){hk, json_string_value(hv)};
		}
	}
	sr.method = j->method;
	sr.path = j->path;
	sr.query = j->query;
	sr.headers = in;
	sr.n_headers = nin;
	sr.body = j->body;
	sr.body_len = j->body_len;
	sr.region = j->ep->region;
	sr.service = j->svc->signing;
	sr.normalize_path = j->svc->proto != AWS_S3;
	sr.add_content_sha256 = j->svc->proto == AWS_S3;
	rc = drb_sigv4_sign(&sr, &sc, &so, err);
	if (rc != 0) {
		drb_err_prefix(err, "signing: ");
		goto out;
	}
	for (i = 0; i < nin + so.n_headers && nh + 1 < sizeof(hl) / sizeof(hl[0]); i++) {
		const drb_sigv4_header *h = i < nin ? &in[i] : &so.headers[i - nin];
		size_t n = strlen(h->name) + strlen(h->value) + 3;

		hl[nh] = malloc(n);
		if (!hl[nh]) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(hl[nh++], n, "%s: %s", h->name, h->value);
	}
	hr.method = j->method;
	hr.url = j->url;
	hr.headers = (const char *const *)hl;
	hr.body = j->body;
	hr.body_len = j->body_len;
	hr.timeout_s = j->timeout_s;
	hr.connect_timeout_s = j->timeout_s < 5 ? j->timeout_s : 5;
	hr.max_response = j->svc->proto == AWS_S3 ? AWS_S3_MAX_RESPONSE : AWS_MAX_RESPONSE;
	hr.cancel = j->cancel;
	hr.deadline = j->deadline;
	pol.max_attempts = AWS_ATTEMPTS;
	pol.cap_s = j->retry_cap_s;
	pol.classify = classify;
	rc = drb_http_perform_retry(&hr, &pol, &resp, &attempts, err);
	if (rc != 0)
		goto out;
	rid = header(resp.headers, "x-amzn-requestid");
	if (!rid)
		rid = header(resp.headers, "x-amz-request-id");
	r = json_object();
	hdrs = json_object();
	if (!r || !hdrs) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	/* Only headers the parser needs: the rest (cookies, server details) is noise. S3
	 * answers an object's HEAD and PUT in headers: those and its user metadata are kept. */
	{
		static const char *const keep[] = {"content-type", "x-amzn-errortype",
						   "retry-after", NULL};
		static const char *const keep_s3[] = {"etag",
						      "last-modified",
						      "content-length",
						      "x-amz-version-id",
						      "x-amz-replication-status",
						      "x-amz-delete-marker",
						      "x-amz-storage-class",
						      NULL};
		const char *hk;
		json_t *hv;

		for (i = 0; keep[i]; i++)
			if (header(resp.headers, keep[i]))
				drb_awsi_set(hdrs, keep[i],
					     json_string(header(resp.headers, keep[i])), &bad);
		for (i = 0; j->svc->proto == AWS_S3 && keep_s3[i]; i++)
			if (header(resp.headers, keep_s3[i]))
				drb_awsi_set(hdrs, keep_s3[i],
					     json_string(header(resp.headers, keep_s3[i])), &bad);
		if (j->svc->proto == AWS_S3)
			json_object_foreach(resp.headers, hk, hv)
			{
				if (!strncmp(hk, "x-amz-meta-", 11) && json_is_string(hv))
					drb_awsi_set(hdrs, hk, json_string(json_string_value(hv)),
						     &bad);
			}
	}
	drb_awsi_set(r, "status", json_integer(resp.status), &bad);
	drb_awsi_set(r, "body", drb_http_json_text(resp.body, resp.body_len), &bad);
	drb_awsi_set(r, "request_id", rid ? json_string(rid) : json_null(), &bad);
	drb_awsi_set(r, "attempts", json_integer(attempts), &bad);
	drb_awsi_set(r, "headers", hdrs, &bad);
	hdrs = NULL;
	if (bad) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	*response = r;
	r = NULL;
out:
	json_decref(r);
	json_decref(hdrs);
	drb_http_resp_free(&resp);
	wipe_headers(hl, nh);
	drb_sigv4_out_free(&so);
	drb_aws_creds_clear(&cr);
	return rc;
}

/* ---- the call ------------------------------------------------------------------------------ */

void drb_awsi_resp_free(aws_resp *r)
{
	if (!r)
		return;
	json_decref(r->raw);
	drb_awsx_free(r->doc);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static json_t *redacted_request(const aws_job *j, const aws_req *rq)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return NULL;
	/* Only what identifies the request: never a header (Authorization, the session
	 * token and the date-bound signature stay out of the log). */
	drb_awsi_set(o, "method", json_string(j->method), &bad);
	drb_awsi_set(o, "url", json_string(j->url), &bad);
	if (j->svc->proto == AWS_QUERY)
		drb_awsi_set(o, "params", rq->params ? json_deep_copy(rq->params) : json_object(),
			     &bad);
	else if (j->svc->proto == AWS_JSON || j->svc->proto == AWS_JSON10) {
		drb_awsi_set(o, "target", json_string(j->target), &bad);
		drb_awsi_set(o, "body", json_deep_copy(rq->json), &bad);
	} else if (j->svc->proto == AWS_S3)
		drb_awsi_set(o, "bytes", json_integer((json_int_t)j->body_len), &bad);
	else if (rq->body)
		drb_awsi_set(o, "body", json_string(rq->body), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int answer_error(const aws_svc *svc, const aws_req *rq, const json_t *raw, long status,
			drb_err *err)
{
	const json_t *b = json_object_get(raw, "body"), *h = json_object_get(raw, "headers");
	const char *rid = json_string_value(json_object_get(raw, "request_id"));
	json_int_t attempts = json_integer_value(json_object_get(raw, "attempts"));
	drb_aws_error e;
	char tail[200] = "";
	int code;

	drb_aws_error_parse(status, json_string_value(b), json_string_length(b), rid,
			    header(h, "x-amzn-errortype"), &e);
	code = drb_aws_error_code(e.code, status);
	if (e.request_id[0] && attempts > 1)
		snprintf(tail, sizeof(tail), " (request id %s; %" JSON_INTEGER_FORMAT " attempts)",
			 e.request_id, attempts);
	else if (e.request_id[0])
		snprintf(tail, sizeof(tail), " (request id %s)", e.request_id);
	else if (attempts > 1)
		snprintf(tail, sizeof(tail), " (%" JSON_INTEGER_FORMAT " attempts)", attempts);
	drb_err_set(err, code, "%s %s: %s: %s%s", svc->name, rq->operation, e.code,
		    e.message[0] ? e.message : "(no message)", tail);
	if (err)
		err->cause = status;
	return code;
}

int drb_awsi_call(drb_action_ctx *ctx, const aws_svc *svc, const drb_aws_endpoint *ep,
		  const aws_req *rq, aws_resp *out, drb_err *err)
{
	aws_job j;
	drb_buf url, body;
	drb_call call;
	json_t *req = NULL, *raw = NULL, *bj;
	int rc = 0;

	memset(&j, 0, sizeof(j));
	memset(out, 0, sizeof(*out));
	drb_buf_init(&url, 8192);
	drb_buf_init(&body, (size_t)1 << 20);
	j.svc = svc;
	j.ep = ep;
	j.operation = rq->operation;
	j.timeout_s = AWS_TIMEOUT_S;
	j.retry_cap_s = AWS_RETRY_CAP_S;
	j.cancel = ctx->cancel;
	if (ctx->deadline > 0) {
		double left = ctx->deadline - drb_mono_now();

		if (left <= 0) {
			rc = drb_err_set(err, DRB_ETIMEOUT, "%s %s: the step's deadline passed",
					 svc->name, rq->operation);
			goto out;
		}
		if (left < j.timeout_s)
			j.timeout_s = left;
		j.deadline = ctx->deadline;
		/* Backoff must not sleep past the deadline the step set. */
		if (left / AWS_ATTEMPTS < j.retry_cap_s)
			j.retry_cap_s = left / AWS_ATTEMPTS > 0.05 ? left / AWS_ATTEMPTS : 0.05;
	}
	rc = drb_buf_puts(&url, ep->url);
	if (svc->proto == AWS_RESTXML || svc->proto == AWS_S3) {
		j.method = rq->method ? rq->method : "GET";
		j.path = rq->path;
		j.query = rq->query && *rq->query ? rq->query : NULL;
		if (rc == 0)
			rc = drb_buf_puts(&url, rq->path);
		if (rc == 0 && j.query)
			rc = drb_buf_printf(&url, "?%s", j.query);
		if (svc->proto == AWS_S3)
			j.extra_headers = rq->extra_headers;
		if (rq->body && svc->proto == AWS_S3) {
			j.body = rq->body;
			j.body_len = rq->body_len;
			j.content_type = rq->content_type;
			j.content_md5 = rq->content_md5;
		} else if (rq->body) {
			j.body = rq->body;
			j.body_len = strlen(rq->body);
			j.content_type = "application/xml";
		}
	} else {
		j.method = "POST";
		j.path = rq->path ? rq->path : "/"; /* ARC endpoints may carry a path (/v1) */
		if (rc == 0)
			rc = drb_buf_puts(&url, j.path);
		if (svc->proto == AWS_QUERY) {
			if (rc == 0)
				rc = query_body(svc, rq, &body);
			j.content_type = "application/x-www-form-urlencoded; charset=utf-8";
		} else {
			char *s = json_dumps(rq->json, JSON_COMPACT);

			if (!s)
				rc = DRB_ENOMEM;
			if (rc == 0)
				rc = drb_buf_puts(&body, s);
			free(s);
			j.content_type = svc->proto == AWS_JSON10 ? "application/x-amz-json-1.0"
								  : "application/x-amz-json-1.1";
			snprintf(j.target, sizeof(j.target), "%s.%s", svc->target_prefix,
				 rq->operation);
		}
		j.body = body.p ? body.p : "";
		j.body_len = body.len;
	}
	if (rc != 0) {
		rc = drb_err_set(err, rc == DRB_EINVAL ? DRB_EINVAL : DRB_ELIMIT,
				 "%s %s: cannot build the request (%s)", svc->name, rq->operation,
				 rc == DRB_EINVAL ? "a parameter is not a scalar" : "too large");
		goto out;
	}
	j.url = url.p;
	req = redacted_request(&j, rq);
	if (!req) {
		rc = drb_err_set(err, DRB_ENOMEM, "%s %s: out of memory", svc->name, rq->operation);
		goto out;
	}
	call.service = svc->name;
	call.operation = rq->operation;
	call.region = ep->region;
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, aws_perform, &j, &raw, err);
	if (rc != 0) {
		drb_err_prefix(err, "%s %s: ", svc->name, rq->operation);
		goto out;
	}
	out->status = (long)json_integer_value(json_object_get(raw, "status"));
	bj = json_object_get(raw, "body");
	if (!json_is_string(bj)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s %s: the recorded answer has no body",
				 svc->name, rq->operation);
		goto out;
	}
	if (out->status < 200 || out->status > 299) {
		rc = answer_error(svc, rq, raw, out->status, err);
		goto out;
	}
	if (svc->proto == AWS_JSON || svc->proto == AWS_JSON10) {
		json_error_t je;

		out->json = json_loadb(json_string_value(bj), json_string_length(bj), 0, &je);
		if (!json_is_object(out->json)) {
			rc = drb_err_set(err, DRB_EINVAL, "%s %s: invalid JSON answer (%s)",
					 svc->name, rq->operation, je.text);
			goto out;
		}
	} else if (json_string_length(bj) > 0 && !rq->raw_answer) {
		rc = drb_awsx_parse(json_string_value(bj), json_string_length(bj), &out->doc, err);
		if (rc != 0) {
			drb_err_prefix(err, "%s %s: ", svc->name, rq->operation);
			goto out;
		}
	}
	out->raw = raw;
	raw = NULL;
out:
	if (rc != 0)
		drb_awsi_resp_free(out);
	json_decref(raw);
	json_decref(req);
	drb_buf_free(&url);
	drb_buf_free(&body);
	return rc;
}

/* Appends the items of one answer at path ("Container/Item": every Item child of the first
 * Container element anywhere in an XML answer; a field holding an array in a JSON one) to
 * list, each through the listing's mapping. A mapping's NULL is out of memory. */
static int page_items(const aws_pages *pg, const aws_resp *resp, const char *path, json_t *list)
{
	const char *slash = strchr(path, '/');
	char container[64];
	xmlNode *n;

	if (resp->json) {
		const json_t *items = json_object_get(resp->json, path), *item;
		size_t i;

		json_array_foreach(items, i, item)
		{
			json_t *v = pg->from_json ? pg->from_json(item) : json_incref((json_t *)item);

			if (json_array_append_new(list, v) != 0)
				return -1;
		}
		return 0;
	}
	if (!slash || (size_t)(slash - path) >= sizeof(container))
		return 0;
	memcpy(container, path, (size_t)(slash - path));
	container[slash - path] = '\0';
	n = resp->doc ? drb_awsx_find(drb_awsx_root(resp->doc), container) : NULL;
	for (n = n ? drb_awsx_child(n, slash + 1) : NULL; n; n = drb_awsx_next(n))
		if (json_array_append_new(list, pg->from_xml(n)) != 0)
			return -1;
	return 0;
}

/* The next page's token of an answer, a new JSON string; NULL on the last page (no token or
 * an empty one). *bad is set out of memory. */
static json_t *page_token(const aws_pages *pg, const aws_resp *resp, int *bad)
{
	const char *name = pg->answer_token ? pg->answer_token : pg->token;
	json_t *tok = NULL;
	xmlNode *n;

	if (resp->json) {
		const json_t *t = json_object_get(resp->json, name);

		if (json_is_string(t) && json_string_length(t))
			tok = json_deep_copy(t);
		else
			return NULL;
	} else if (resp->doc &&
		   (n = drb_awsx_find(drb_awsx_root(resp->doc), name)) != NULL) {
		tok = drb_awsx_str(n, NULL); /* NULL out of memory */
		if (tok && !json_string_length(tok)) {
			json_decref(tok);
			return NULL;
		}
	} else {
		return NULL;
	}
	if (!tok)
		*bad = 1;
	return tok;
}

int drb_awsi_pages(drb_action_ctx *ctx, const aws_svc *svc, const drb_aws_endpoint *ep,
		   const aws_pages *pg, json_t *request, json_t **out, drb_err *err)
{
	json_t *list = json_array(), *tok = NULL;
	int rc = 0, page;

	*out = NULL;
	if (!list)
		goto nomem;
	for (page = 0; page < AWS_MAX_PAGES; page++) {
		aws_req rq = {.operation = pg->operation};
		aws_resp resp;
		int bad = 0;

		if (svc->proto == AWS_QUERY)
			rq.params = request;
		else
			rq.json = request;
		rc = drb_awsi_call(ctx, svc, ep, &rq, &resp, err);
		if (rc != 0)
			goto out;
		for (size_t i = 0; i < sizeof(pg->items) / sizeof(pg->items[0]) && pg->items[i]; i++)
			if (page_items(pg, &resp, pg->items[i], list) != 0)
				bad = 1;
		tok = page_token(pg, &resp, &bad);
		drb_awsi_resp_free(&resp);
		if (tok)
			drb_awsi_set(request, pg->token, tok, &bad);
		if (bad)
			goto nomem;
		if (!tok)
			break;
	}
	if (page == AWS_MAX_PAGES) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s %s: more than %d pages of %s", svc->name,
				 pg->operation, AWS_MAX_PAGES, pg->what);
		goto out;
	}
	*out = list;
	list = NULL;
	goto out;
nomem:
	rc = drb_err_set(err, DRB_ENOMEM, "%s %s: out of memory", svc->name, pg->operation);
out:
	json_decref(list);
	return rc;
}

/* ---- common arguments ---------------------------------------------------------------------- */

int drb_awsi_begin(drb_action_ctx *ctx, const json_t *args, const aws_svc *svc, const char *action,
		   drb_aws_endpoint *ep, drb_err *err)
{
	const drb_action *a = drb_aws_action(action);
	const char *region = NULL, *conn_name = NULL;
	const json_t *conn = NULL;
	int rc;

	if (!a)
		return drb_err_set(err, DRB_ERR, "%s: not in the AWS action table", action);
	rc = drb_args_check(a->schema, args, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "region", &region, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "connection", &conn_name, err);
	if (rc != 0)
		return drb_err_prefix(err, "%s: ", action);
	if (a->mode == DRB_ACT_MUT && ctx->read_only)
		return drb_err_set(err, DRB_EDENIED,
				   "%s is a mutating action: refused in preflight and plan",
				   action);
	if (conn_name) {
		conn = json_object_get(ctx->connections, conn_name);
		if (!conn)
			return drb_err_set(err, DRB_EINVAL, "%s: no connection named '%.100s'",
					   action, conn_name);
	}
	rc = drb_aws_resolve(conn, region, svc->host_prefix, svc->env_id, svc->global, ep, err);
	if (rc != 0)
		drb_err_prefix(err, "%s: ", action);
	return rc;
}

int drb_awsi_sleep(drb_action_ctx *ctx, double s, const char *what, drb_err *err)
{
	double end = drb_mono_now() + s;

	for (;;) {
		double now = drb_mono_now(), left = end - now;

		if (ctx->cancel && *ctx->cancel)
			return drb_err_set(err, DRB_EINTERRUPTED, "%s: cancelled", what);
		if (ctx->deadline > 0 && now >= ctx->deadline)
			return drb_err_set(err, DRB_ETIMEOUT, "%s: the step's deadline passed",
					   what);
		if (left <= 0)
			return 0;
		drb_sleep_s(fmin(left, 0.1));
	}
}
