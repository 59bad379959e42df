/* The credential sources that talk to something: the EC2 instance metadata service, the
 * ECS/EKS container endpoint, STS (AssumeRole, AssumeRoleWithWebIdentity), the IAM Identity
 * Center (SSO) portal and credential_process. Each follows the protocol botocore speaks
 * (botocore/utils.py, credentials.py). Answers hold secrets: their buffers are wiped, and no
 * message ever quotes an answer's body or a token. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <drbook/http.h>
#include <drbook/util.h>

#include "aws_int.h"
#include "creds_int.h"

extern char **environ;

#define STS_TIMEOUT_S 15.0
#define PROCESS_TIMEOUT_S 60.0
#define PROCESS_MAX_OUT ((size_t)64 << 10)
#define PROCESS_MAX_ERR ((size_t)4 << 10)

static void wipe_resp(drb_http_resp *r)
{
	if (r->body)
		OPENSSL_cleanse(r->body, r->body_len);
	drb_http_resp_free(r);
}

int drb_awsc_set(drb_aws_creds *out, const char *ak, const char *sk, const char *token,
		 drb_err *err)
{
	if (!ak || !*ak || !sk || !*sk)
		return drb_err_set(err, DRB_EINVAL, "the answer has no access key or secret");
	out->access_key = drb_strdup(ak);
	out->secret_key = drb_strdup(sk);
	out->session_token = token && *token ? drb_strdup(token) : NULL;
	if (!out->access_key || !out->secret_key || (token && *token && !out->session_token)) {
		drb_aws_creds_clear(out);
		return drb_err_set(err, DRB_ENOMEM, "aws credentials: out of memory");
	}
	return 0;
}

/* The ISO 8601 expiration of an answer as Unix seconds; 0 with DRB_EINVAL when malformed. */
static int expiration(const char *s, long long *out, drb_err *err)
{
	int64_t ms = 0;

	if (!s || drb_rfc3339_parse(s, &ms) != 0)
		return drb_err_set(err, DRB_EINVAL, "the answer's Expiration is not a valid time");
	*out = (long long)(ms / 1000);
	return 0;
}

/* Credentials from a JSON object with the given member names (the container endpoint,
 * IMDS and credential_process answers). */
static int creds_from_json(const json_t *o, const char *tok_key, drb_aws_creds *out, drb_err *err)
{
	const char *ak = json_string_value(json_object_get(o, "AccessKeyId"));
	const char *sk = json_string_value(json_object_get(o, "SecretAccessKey"));
	const char *tok = tok_key ? json_string_value(json_object_get(o, tok_key)) : NULL;
	const json_t *exp = json_object_get(o, "Expiration");
	int rc;

	if (!ak || !sk)
		return drb_err_set(err, DRB_EINVAL,
				   "the answer lacks AccessKeyId or "
				   "SecretAccessKey");
	if (exp && !json_is_null(exp)) {
		rc = expiration(json_string_value(exp), &out->expiration, err);
		if (rc != 0)
			return rc;
	}
	return drb_awsc_set(out, ak, sk, tok, err);
}

static json_t *parse_json(const drb_http_resp *r)
{
	json_error_t je;

	return json_loadb(r->body ? r->body : "", r->body_len, 0, &je);
}

static void json_wipe_decref(json_t *o)
{
	const char *k;
	json_t *v;

	/* jansson owns the strings: overwrite them in place before the free. */
	json_object_foreach(o, k, v)
	{
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
		else if (json_is_object(v))
			json_wipe_decref(json_incref(v));
	}
	json_decref(o);
}

/* ---- instance metadata (botocore IMDSFetcher / InstanceMetadataFetcher) ------------------ */

static void join_url(char *out, size_t n, const char *base, const char *path)
{
	size_t bl = strlen(base);

	snprintf(out, n, "%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/", path);
}

/* PUT latest/api/token. 0 with a token, DRB_ENOTFOUND when IMDSv2 is not offered (404, 403,
 * 405, a timeout, no answer: botocore then tries IMDSv1), DRB_EINVAL for a 400. */
static int imds_token(const char *base, double timeout_s, int attempts, char *tok, size_t n,
		      drb_err *err)
{
	static const char *const hdr[] = {"x-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
	char url[600];
	drb_http_req rq;
	int rc = DRB_ENOTFOUND;

	join_url(url, sizeof(url), base, "latest/api/token");
	memset(&rq, 0, sizeof(rq));
	rq.method = "PUT";
	rq.url = url;
	rq.headers = hdr;
	rq.timeout_s = timeout_s;
	rq.connect_timeout_s = timeout_s;
	rq.max_response = 4096;
	for (int i = 0; i < attempts; i++) {
		drb_http_resp r;
		drb_err e = {0};
		int hr;

		memset(&r, 0, sizeof(r));
		hr = drb_http_perform(&rq, &r, &e);
		if (hr == DRB_ETIMEOUT)
			return DRB_ENOTFOUND;
		if (hr != 0)
			continue; /* connection errors are retried */
		if (r.status == 200 && r.body_len > 0 && r.body_len < n &&
		    !memchr(r.body, '\n', r.body_len)) {
			memcpy(tok, r.body, r.body_len);
			tok[r.body_len] = '\0';
			wipe_resp(&r);
			return 0;
		}
		if (r.status == 400) {
			wipe_resp(&r);
			return drb_err_set(err, DRB_EINVAL,
					   "instance metadata: the token request "
					   "was refused (400)");
		}
		wipe_resp(&r);
		if (r.status == 404 || r.status == 403 || r.status == 405)
			return DRB_ENOTFOUND;
	}
	return rc;
}

/* GET path with the token (when any); retried while the answer is not a 200 with a body
 * (and, for JSON, not valid JSON). DRB_ENOTFOUND when the attempts run out. */
static int imds_get(const char *base, const char *path, const char *token, double timeout_s,
		    int attempts, drb_http_resp *out)
{
	char url[700], th[1100];
	const char *hdr[2] = {NULL, NULL};
	drb_http_req rq;

	join_url(url, sizeof(url), base, path);
	if (token) {
		snprintf(th, sizeof(th), "x-aws-ec2-metadata-token: %s", token);
		hdr[0] = th;
	}
	memset(&rq, 0, sizeof(rq));
	rq.url = url;
	rq.headers = hdr;
	rq.timeout_s = timeout_s;
	rq.connect_timeout_s = timeout_s;
	rq.max_response = 64 << 10;
	for (int i = 0; i < attempts; i++) {
		drb_err e = {0};

		memset(out, 0, sizeof(*out));
		if (drb_http_perform(&rq, out, &e) == 0 && out->status == 200 &&
		    out->body_len > 0) {
			OPENSSL_cleanse(th, sizeof(th));
			return 0;
		}
		wipe_resp(out);
	}
	OPENSSL_cleanse(th, sizeof(th));
	return DRB_ENOTFOUND;
}

int drb_awsc_imds_fetch(const char *base_url, double timeout_s, int attempts, int v1_disabled,
			drb_aws_creds *out, drb_err *err)
{
	char token[1024] = "", role[256], path[400];
	drb_http_resp r;
	json_t *j = NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	if (attempts < 1)
		attempts = 1;
	rc = imds_token(base_url, timeout_s, attempts, token, sizeof(token), err);
	if (rc == DRB_EINVAL)
		goto out;
	if (rc != 0 && v1_disabled) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "instance metadata: no IMDSv2 token and IMDSv1 is disabled "
				 "(AWS_EC2_METADATA_V1_DISABLED)");
		goto out;
	}
	rc = imds_get(base_url, "latest/meta-data/iam/security-credentials/",
		      token[0] ? token : NULL, timeout_s, attempts, &r);
	if (rc != 0)
		goto none;
	/* The first line names the role (an instance profile has one). */
	{
		size_t n = strcspn(r.body, "\r\n");

		if (n == 0 || n >= sizeof(role) || memchr(r.body, '/', n) || memchr(r.body, '?', n))
			goto none;
		memcpy(role, r.body, n);
		role[n] = '\0';
	}
	wipe_resp(&r);
	snprintf(path, sizeof(path), "latest/meta-data/iam/security-credentials/%s", role);
	rc = imds_get(base_url, path, token[0] ? token : NULL, timeout_s, attempts, &r);
	if (rc != 0)
		goto none;
	j = parse_json(&r);
	if (!json_is_object(j) || !json_object_get(j, "AccessKeyId") ||
	    !json_object_get(j, "SecretAccessKey") || !json_object_get(j, "Token") ||
	    !json_object_get(j, "Expiration"))
		goto none; /* e.g. {"Code": ..., "Message": ...}: no credentials, as botocore */
	rc = creds_from_json(j, "Token", out, err);
	if (rc != 0) {
		drb_err_prefix(err, "instance metadata: ");
		goto out;
	}
	{
		/* botocore's static stability: credentials the service hands out already close
		 * to their end are used for another 15 min plus 2 to 10 (random) instead of
		 * being refreshed on every call while the service is impaired. */
		long long now = (long long)time(NULL);
		long long window = 15 * 60 + 120 + (long long)(drb_random_unit() * 480);

		if (out->expiration && now >= out->expiration - window)
			out->expiration = now + window;
	}
	snprintf(out->source, sizeof(out->source), "instance metadata (role %s)", role);
	rc = 0;
	goto out;
none:
	rc = drb_err_set(err, DRB_ENOTFOUND, "instance metadata: no credentials at %s", base_url);
out:
	OPENSSL_cleanse(token, sizeof(token));
	json_wipe_decref(j);
	wipe_resp(&r);
	return rc;
}

/* ---- container endpoint (botocore ContainerMetadataFetcher) ------------------------------ */

static int host_allowed(const char *host)
{
	static const char *const allowed[] = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23",
					      "localhost", NULL};
	unsigned char a[16];

	for (int i = 0; allowed[i]; i++)
		if (!strcasecmp(host, allowed[i]))
			return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0,
						     0, 0, 0, 0, 0, 0, 0, 1};

		return memcmp(a, lo, 16) == 0;
	}
	return 0;
}

int drb_awsc_container_url(const char *relative_uri, const char *full_uri, char *out, size_t n,
			   drb_err *err)
{
	const char *h, *e;
	char host[256];
	size_t hl;

	if (relative_uri) {
		if ((size_t)snprintf(out, n, "http://169.254.170.2%s", relative_uri) >= n)
			return drb_err_set(err, DRB_EINVAL,
					   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long");
		return 0;
	}
	if (!full_uri || (size_t)snprintf(out, n, "%s", full_uri) >= n)
		return drb_err_set(err, DRB_EINVAL, "AWS_CONTAINER_CREDENTIALS_FULL_URI is %s",
				   full_uri ? "too long" : "not set");
	if (!strncasecmp(full_uri, "https://", 8))
		return 0;
	if (strncasecmp(full_uri, "http://", 7) != 0)
		return drb_err_set(err, DRB_EINVAL,
				   "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an http(s) URL");
	h = full_uri + 7;
	if (*h == '[') {
		e = strchr(h, ']');
		if (!e)
			return drb_err_set(err, DRB_EINVAL,
					   "AWS_CONTAINER_CREDENTIALS_FULL_URI: bad IPv6 host");
		h++;
	} else {
		e = h + strcspn(h, ":/?#");
	}
	if (memchr(h, '@', (size_t)(e - h)))
		return drb_err_set(err, DRB_EINVAL,
				   "AWS_CONTAINER_CREDENTIALS_FULL_URI must not hold user info");
	hl = (size_t)(e - h);
	if (hl == 0 || hl >= sizeof(host))
		return drb_err_set(err, DRB_EINVAL, "AWS_CONTAINER_CREDENTIALS_FULL_URI: bad host");
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!host_allowed(host))
		return drb_err_set(err, DRB_EINVAL,
				   "AWS_CONTAINER_CREDENTIALS_FULL_URI: unsupported host '%.100s': "
				   "plain http is allowed only to a loopback address or to "
				   "169.254.170.2, 169.254.170.23, fd00:ec2::23, localhost",
				   host);
	return 0;
}

int drb_awsc_container_fetch(const char *url, const char *auth_token, drb_aws_creds *out,
			     drb_err *err)
{
	const char *hdr[3] = {"Accept: application/json", NULL, NULL};
	char *auth = NULL;
	drb_http_req rq;
	drb_http_resp r;
	json_t *j = NULL;
	char why[160] = "";
	int rc = 0;

	memset(&r, 0, sizeof(r));
	if (auth_token) {
		size_t n = strlen(auth_token) + 16;

		if (strpbrk(auth_token, "\r\n"))
			return drb_err_set(err, DRB_EINVAL,
					   "container credentials: the authorization token is not "
					   "a legal header value (it holds a line break)");
		auth = malloc(n);
		if (!auth)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
		snprintf(auth, n, "Authorization: %s", auth_token);
		hdr[1] = auth;
	}
	memset(&rq, 0, sizeof(rq));
	rq.url = url;
	rq.headers = hdr;
	rq.timeout_s = 2;
	rq.connect_timeout_s = 2;
	rq.max_response = 64 << 10;
	for (int attempt = 0; attempt < 3; attempt++) {
		drb_err e = {0};

		if (attempt > 0)
			drb_sleep_s(1);
		memset(&r, 0, sizeof(r));
		if (drb_http_perform(&rq, &r, &e) != 0) {
			snprintf(why, sizeof(why), "%s", e.msg);
			continue;
		}
		if (r.status != 200) {
			snprintf(why, sizeof(why), "HTTP %ld", r.status);
			wipe_resp(&r);
			continue;
		}
		j = parse_json(&r);
		wipe_resp(&r);
		if (!json_is_object(j)) {
			json_decref(j);
			j = NULL;
			snprintf(why, sizeof(why), "the answer is not JSON");
			continue;
		}
		break;
	}
	if (!j) {
		rc = drb_err_set(err, DRB_ETRANSIENT,
				 "container credentials: no answer after 3 attempts (%s)", why);
		goto out;
	}
	if (!json_object_get(j, "Token") || !json_object_get(j, "Expiration")) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "container credentials: the answer lacks Token or Expiration");
		goto out;
	}
	rc = creds_from_json(j, "Token", out, err);
	if (rc != 0)
		drb_err_prefix(err, "container credentials: ");
	else
		snprintf(out->source, sizeof(out->source), "container endpoint");
out:
	if (auth) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	json_wipe_decref(j);
	wipe_resp(&r);
	return rc;
}

/* ---- STS ----------------------------------------------------------------------------------- */

static int throttled(void *ud, const drb_http_resp *r)
{
	drb_aws_error e;

	(void)ud;
	if (r->status < 400)
		return 0;
	drb_aws_error_parse(r->status, r->body, r->body_len, NULL, NULL, &e);
	return drb_aws_is_throttle(e.code);
}

static int form_add(drb_buf *b, const char *k, const char *v)
{
	int rc = drb_buf_puts(b, "&");

	if (rc == 0)
		rc = drb_awsi_formencode(b, k);
	if (rc == 0)
		rc = drb_buf_puts(b, "=");
	if (rc == 0)
		rc = drb_awsi_formencode(b, v);
	return rc;
}

/* Sends one signed (creds set) or unsigned request and returns the answer: 0 with *out
 * filled, whatever the status. */
static int send_aws(const drb_aws_endpoint *ep, const char *service, const char *method,
		    const char *path, const char *query, const char *content_type,
		    const char *extra_header, const drb_buf *body, const drb_aws_creds *creds,
		    drb_http_resp *out, drb_err *err)
{
	drb_sigv4_header in[2];
	drb_sigv4_req sr;
	drb_sigv4_out so;
	drb_http_req hr;
	drb_http_retry pol;
	char *hl[8] = {0}, url[1200];
	size_t nin = 0, nh = 0;
	int rc = 0;

	memset(&so, 0, sizeof(so));
	memset(&sr, 0, sizeof(sr));
	memset(&hr, 0, sizeof(hr));
	memset(&pol, 0, sizeof(pol));
	snprintf(url, sizeof(url), "%s%s%s%s", ep->url, path, query ? "?" : "", query ? query : "");
	in[nin++] = (drb_sigv4_header){"Host", ep->host};
	if (content_type)
		in[nin++] = (drb_sigv4_header){"Content-Type", content_type};
	if (creds) {
		drb_sigv4_creds sc = {creds->access_key, creds->secret_key, creds->session_token};

		sr.method = method;
		sr.path = path;
		sr.query = query;
		sr.headers = in;
		sr.n_headers = nin;
		sr.body = body ? body->p : NULL;
		sr.body_len = body ? body->len : 0;
		sr.region = ep->region;
		sr.service = service;
		sr.normalize_path = 1;
		rc = drb_sigv4_sign(&sr, &sc, &so, err);
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < nin + so.n_headers && nh + 2 < sizeof(hl) / sizeof(hl[0]); i++) {
		const drb_sigv4_header *h = i < nin ? &in[i] : &so.headers[i - nin];
		size_t n;

		if (!strcasecmp(h->name, "Host"))
			continue; /* curl sends it from the URL */
		n = strlen(h->name) + strlen(h->value) + 3;
		hl[nh] = malloc(n);
		if (!hl[nh]) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		snprintf(hl[nh++], n, "%s: %s", h->name, h->value);
	}
	if (extra_header) {
		hl[nh] = drb_strdup(extra_header);
		if (!hl[nh]) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		nh++;
	}
	hr.method = method;
	hr.url = url;
	hr.headers = (const char *const *)hl;
	hr.body = body ? body->p : NULL;
	hr.body_len = body ? body->len : 0;
	hr.timeout_s = STS_TIMEOUT_S;
	hr.connect_timeout_s = 5;
	hr.max_response = 256 << 10;
	pol.max_attempts = 3;
	pol.cap_s = 5;
	pol.classify = throttled;
	rc = drb_http_perform_retry(&hr, &pol, out, NULL, err);
out:
	for (size_t i = 0; i < nh; i++) {
		OPENSSL_cleanse(hl[i], strlen(hl[i]));
		free(hl[i]);
	}
	drb_sigv4_out_free(&so);
	return rc;
}

static int answer_error(const char *what, const drb_http_resp *r, drb_err *err)
{
	drb_aws_error e;
	int code;

	drb_aws_error_parse(r->status, r->body, r->body_len,
			    json_string_value(json_object_get(r->headers, "x-amzn-requestid")),
			    json_string_value(json_object_get(r->headers, "x-amzn-errortype")), &e);
	code = drb_aws_error_code(e.code, r->status);
	drb_err_set(
	    err, code, "%s: %s: %s%s%s%s", what, e.code, e.message[0] ? e.message : "(no message)",
	    e.request_id[0] ? " (request id " : "", e.request_id, e.request_id[0] ? ")" : "");
	if (err)
		err->cause = r->status;
	return code;
}

int drb_awsc_sts_assume(const drb_aws_endpoint *sts, const drb_aws_creds *source,
			const drb_awsc_assume *a, drb_aws_creds *out, drb_err *err)
{
	const char *op = a->web_identity_token ? "AssumeRoleWithWebIdentity" : "AssumeRole";
	drb_buf body;
	drb_http_resp r;
	xmlDoc *doc = NULL;
	xmlNode *c;
	char ak[256], sk[256], tok[4096], exp[64], what[64];
	int rc;

	memset(&r, 0, sizeof(r));
	drb_buf_init(&body, 64 << 10);
	snprintf(what, sizeof(what), "sts %s", op);
	rc = drb_buf_puts(&body, "Action=");
	if (rc == 0)
		rc = drb_buf_puts(&body, op);
	if (rc == 0)
		rc = drb_buf_puts(&body, "&Version=2011-06-15");
	if (rc == 0)
		rc = form_add(&body, "RoleArn", a->role_arn);
	if (rc == 0)
		rc = form_add(&body, "RoleSessionName", a->session_name);
	if (rc == 0 && a->web_identity_token)
		rc = form_add(&body, "WebIdentityToken", a->web_identity_token);
	if (rc == 0 && a->external_id)
		rc = form_add(&body, "ExternalId", a->external_id);
	if (rc == 0 && a->duration_s > 0) {
		char d[32];

		snprintf(d, sizeof(d), "%ld", a->duration_s);
		rc = form_add(&body, "DurationSeconds", d);
	}
	if (rc != 0) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: the request is too large", what);
		goto out;
	}
	rc = send_aws(sts, "sts", "POST", "/", NULL,
		      "application/x-www-form-urlencoded; charset=utf-8", NULL, &body,
		      a->web_identity_token ? NULL : source, &r, err);
	if (rc != 0) {
		drb_err_prefix(err, "%s: ", what);
		goto out;
	}
	if (r.status < 200 || r.status > 299) {
		rc = answer_error(what, &r, err);
		goto out;
	}
	rc = drb_awsx_parse(r.body, r.body_len, &doc, err);
	if (rc != 0) {
		drb_err_prefix(err, "%s: ", what);
		goto out;
	}
	c = drb_awsx_find(drb_awsx_root(doc), "Credentials");
	if (!c || drb_awsx_text(c, "AccessKeyId", ak, sizeof(ak)) != 0 ||
	    drb_awsx_text(c, "SecretAccessKey", sk, sizeof(sk)) != 0 ||
	    drb_awsx_text(c, "SessionToken", tok, sizeof(tok)) != 0 ||
	    drb_awsx_text(c, "Expiration", exp, sizeof(exp)) != 0) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: the answer has no Credentials", what);
		goto out;
	}
	rc = expiration(exp, &out->expiration, err);
	if (rc == 0)
		rc = drb_awsc_set(out, ak, sk, tok, err);
	if (rc != 0)
		drb_err_prefix(err, "%s: ", what);
out:
	OPENSSL_cleanse(sk, sizeof(sk));
	OPENSSL_cleanse(tok, sizeof(tok));
	if (body.p)
		OPENSSL_cleanse(body.p, body.len);
	drb_buf_free(&body);
	if (doc) {
		/* The parsed tree holds the secret too. */
		xmlNode *n = drb_awsx_find(drb_awsx_root(doc), "Credentials");

		for (xmlNode *k = n ? n->children : NULL; k; k = k->next)
			if (k->children && k->children->content)
				OPENSSL_cleanse(k->children->content,
						strlen((char *)k->children->content));
		drb_awsx_free(doc);
	}
	wipe_resp(&r);
	return rc;
}

/* ---- SSO portal ---------------------------------------------------------------------------- */

int drb_awsc_sso_fetch(const drb_aws_endpoint *portal, const char *access_token,
		       const char *account_id, const char *role_name, drb_aws_creds *out,
		       drb_err *err)
{
	drb_buf q, hdr;
	drb_http_resp r;
	json_t *j = NULL, *rc_obj;
	const json_t *exp;
	int rc;

	memset(&r, 0, sizeof(r));
	drb_buf_init(&q, 4096);
	drb_buf_init(&hdr, 64 << 10);
	rc = drb_buf_puts(&q, "account_id=");
	if (rc == 0)
		rc = drb_awsi_urlencode(&q, account_id);
	if (rc == 0)
		rc = drb_buf_puts(&q, "&role_name=");
	if (rc == 0)
		rc = drb_awsi_urlencode(&q, role_name);
	if (rc == 0)
		rc = drb_buf_printf(&hdr, "x-amz-sso_bearer_token: %s", access_token);
	if (rc != 0 || strpbrk(access_token, "\r\n")) {
		rc = drb_err_set(err, DRB_EINVAL, "sso GetRoleCredentials: bad token or names");
		goto out;
	}
	rc = send_aws(portal, "awsssoportal", "GET", "/federation/credentials", q.p, NULL, hdr.p,
		      NULL, NULL, &r, err);
	if (rc != 0) {
		drb_err_prefix(err, "sso GetRoleCredentials: ");
		goto out;
	}
	if (r.status == 401 || r.status == 403) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "sso GetRoleCredentials: the SSO session is no longer valid "
				 "(HTTP %ld): sign in again with `aws sso login`",
				 r.status);
		goto out;
	}
	if (r.status != 200) {
		rc = answer_error("sso GetRoleCredentials", &r, err);
		goto out;
	}
	j = parse_json(&r);
	rc_obj = json_object_get(j, "roleCredentials");
	exp = json_object_get(rc_obj, "expiration");
	if (!json_is_object(rc_obj) || !json_is_integer(exp)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "sso GetRoleCredentials: the answer has no roleCredentials");
		goto out;
	}
	out->expiration = (long long)(json_integer_value(exp) / 1000);
	rc = drb_awsc_set(out, json_string_value(json_object_get(rc_obj, "accessKeyId")),
			  json_string_value(json_object_get(rc_obj, "secretAccessKey")),
			  json_string_value(json_object_get(rc_obj, "sessionToken")), err);
	if (rc != 0)
		drb_err_prefix(err, "sso GetRoleCredentials: ");
out:
	if (hdr.p)
		OPENSSL_cleanse(hdr.p, hdr.len);
	drb_buf_free(&hdr);
	drb_buf_free(&q);
	json_wipe_decref(j);
	wipe_resp(&r);
	return rc;
}

int drb_awsc_sso_oidc_refresh(const drb_aws_endpoint *oidc, const char *client_id,
			      const char *client_secret, const char *refresh_token, json_t **out,
			      drb_err *err)
{
	json_t *req =
	    json_pack("{s:s, s:s, s:s, s:s}", "grantType", "refresh_token", "clientId", client_id,
		      "clientSecret", client_secret, "refreshToken", refresh_token);
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	drb_buf body;
	drb_http_resp r;
	json_t *j = NULL;
	int rc;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	drb_buf_init(&body, 64 << 10);
	if (!text || drb_buf_puts(&body, text) != 0) {
		rc = drb_err_set(err, DRB_ENOMEM, "sso-oidc CreateToken: out of memory");
		goto out;
	}
	rc = send_aws(oidc, "sso-oauth", "POST", "/token", NULL, "application/json", NULL, &body,
		      NULL, &r, err);
	if (rc != 0) {
		drb_err_prefix(err, "sso-oidc CreateToken: ");
		goto out;
	}
	if (r.status != 200) {
		rc = answer_error("sso-oidc CreateToken", &r, err);
		goto out;
	}
	j = parse_json(&r);
	if (!json_is_string(json_object_get(j, "accessToken")) ||
	    !json_is_integer(json_object_get(j, "expiresIn"))) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "sso-oidc CreateToken: the answer has no accessToken/expiresIn");
		goto out;
	}
	*out = j;
	j = NULL;
out:
	if (text) {
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_wipe_decref(req);
	if (body.p)
		OPENSSL_cleanse(body.p, body.len);
	drb_buf_free(&body);
	json_wipe_decref(j);
	wipe_resp(&r);
	return rc;
}

/* ---- credential_process ------------------------------------------------------------------- */

void drb_awsc_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* Python's shlex in POSIX mode with whitespace_split (what shlex.split does): a word is
 * built from unquoted characters (backslash escapes the next one), '...' (literal) and
 * "..." (backslash escapes only " and \). Empty quotes make an empty word. */
int drb_awsc_shell_split(const char *cmd, char ***argv_out, drb_err *err)
{
	char **argv = NULL, *word = NULL;
	size_t n = 0, wl = 0, cap = strlen(cmd) + 1;
	int in_word = 0, rc = 0;
	const char *p = cmd;

	*argv_out = NULL;
	argv = calloc(cap + 1, sizeof(*argv));
	word = malloc(cap);
	if (!argv || !word) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		char c = *p;

		if (c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (in_word) {
				word[wl] = '\0';
				argv[n] = drb_strdup(word);
				if (!argv[n]) {
					rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
					goto out;
				}
				n++;
				wl = 0;
				in_word = 0;
			}
			if (c == '\0')
				break;
			p++;
			continue;
		}
		in_word = 1;
		if (c == '\\') {
			if (!p[1]) {
				rc = drb_err_set(err, DRB_EINVAL, "no escaped character");
				goto out;
			}
			word[wl++] = p[1];
			p += 2;
		} else if (c == '\'') {
			const char *e = strchr(p + 1, '\'');

			if (!e) {
				rc = drb_err_set(err, DRB_EINVAL, "no closing quotation");
				goto out;
			}
			memcpy(word + wl, p + 1, (size_t)(e - p - 1));
			wl += (size_t)(e - p - 1);
			p = e + 1;
		} else if (c == '"') {
			p++;
			for (;;) {
				if (!*p) {
					rc = drb_err_set(err, DRB_EINVAL, "no closing quotation");
					goto out;
				}
				if (*p == '"') {
					p++;
					break;
				}
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
					word[wl++] = p[1];
					p += 2;
					continue;
				}
				word[wl++] = *p++;
			}
		} else {
			word[wl++] = c;
			p++;
		}
	}
	if (n == 0) {
		rc = drb_err_set(err, DRB_EINVAL, "the command is empty");
		goto out;
	}
	*argv_out = argv;
	argv = NULL;
out:
	drb_awsc_argv_free(argv);
	free(word);
	return rc;
}

/* Reads what is available from fd into b (up to cap; more is drained and counted). */
static int drain(int fd, char *b, size_t cap, size_t *len, int *over)
{
	char tmp[4096];
	ssize_t k = read(fd, tmp, sizeof(tmp));

	if (k < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (k == 0)
		return 0;
	if (*len + (size_t)k > cap) {
		*over = 1;
		k = (ssize_t)(cap - *len);
	}
	memcpy(b + *len, tmp, (size_t)k);
	*len += (size_t)k;
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 1;
}

int drb_awsc_process_fetch(const char *command, drb_aws_creds *out, drb_err *err)
{
	char **argv = NULL, *obuf = NULL, ebuf[PROCESS_MAX_ERR + 1];
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, over = 0, rc, status = 0;
	size_t olen = 0, elen = 0;
	posix_spawn_file_actions_t fa;
	int fa_init = 0;
	pid_t pid = -1;
	json_t *j = NULL;
	json_error_t je;
	double end;

	rc = drb_awsc_shell_split(command, &argv, err);
	if (rc != 0) {
		drb_err_prefix(err, "credential_process: ");
		goto out;
	}
	obuf = malloc(PROCESS_MAX_OUT + 1);
	if (!obuf || pipe(po) != 0 || pipe(pe) != 0) {
		rc = drb_err_set(err, DRB_EIO, "credential_process: %s",
				 obuf ? strerror(errno) : "out of memory");
		goto out;
	}
	/* Close-on-exec: other threads may be spawning processes of their own. */
	for (int i = 0; i < 2; i++) {
		fcntl(po[i], F_SETFD, FD_CLOEXEC);
		fcntl(pe[i], F_SETFD, FD_CLOEXEC);
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = drb_err_set(err, DRB_EIO, "credential_process: cannot prepare the spawn");
		goto out;
	}
	fa_init = 1;
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	if (rc != 0) {
		rc = drb_err_set(err, DRB_EIO, "credential_process: cannot run '%.200s': %s",
				 argv[0], strerror(rc));
		pid = -1;
		goto out;
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	end = drb_mono_now() + PROCESS_TIMEOUT_S;
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
		double left = end - drb_mono_now();

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			pid = -1;
			rc =
			    drb_err_set(err, DRB_ETIMEOUT,
					"credential_process: '%.200s' did not finish within %.0f s",
					argv[0], PROCESS_TIMEOUT_S);
			goto out;
		}
		if (poll(fds, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (po[0] >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !drain(po[0], obuf, PROCESS_MAX_OUT, &olen, &over)) {
			close(po[0]);
			po[0] = -1;
		}
		if (pe[0] >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			int eover = 0;

			if (!drain(pe[0], ebuf, PROCESS_MAX_ERR, &elen, &eover)) {
				close(pe[0]);
				pe[0] = -1;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	ebuf[elen] = '\0';
	obuf[olen] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* botocore reports the process's stderr: it says why (an expired login). */
		size_t k = strcspn(ebuf, "\n");

		ebuf[k < 300 ? k : 300] = '\0';
		rc = drb_err_set(err, DRB_EDENIED, "credential_process: '%.200s' %s %d%s%s",
				 argv[0], WIFEXITED(status) ? "exited with" : "killed by signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				 ebuf[0] ? ": " : "", ebuf);
		goto out;
	}
	if (over) {
		rc = drb_err_set(err, DRB_ELIMIT, "credential_process: output over %zu bytes",
				 PROCESS_MAX_OUT);
		goto out;
	}
	j = json_loadb(obuf, olen, 0, &je);
	if (!json_is_object(j)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "credential_process: the output is not a JSON "
				 "object");
		goto out;
	}
	{
		const json_t *v = json_object_get(j, "Version");

		/* botocore compares with the number 1 (so 1.0 passes, "1" does not). */
		if (!json_is_number(v) || json_number_value(v) != 1.0) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "credential_process: unsupported Version (supported: 1)");
			goto out;
		}
	}
	rc = creds_from_json(j, "SessionToken", out, err);
	if (rc != 0) {
		drb_err_prefix(err, "credential_process: ");
		goto out;
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	if (obuf) {
		OPENSSL_cleanse(obuf, PROCESS_MAX_OUT + 1);
		free(obuf);
	}
	json_wipe_decref(j);
	drb_awsc_argv_free(argv);
	return rc;
}
