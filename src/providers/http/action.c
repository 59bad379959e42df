/* The `http.request` action: one HTTP call through the seam with the shared client
 * (src/providers/http). A non-2xx status is an answer for the runbook to assert on, not an
 * error; transport failures are errors the step's retry policy may retry. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <drbook/action.h>
#include <drbook/http.h>
#include <drbook/util.h>


#define DEFAULT_TIMEOUT_S 30.0
#define DEFAULT_MAX_RESPONSE ((long long)8 << 20)
/* The body lands in the audit log and in the step's result: keep it sane. */
#define MAX_MAX_RESPONSE ((long long)64 << 20)

typedef struct http_job {
	drb_http_req req;
	char method[17];
	char **headers; /* "Name: value", NULL-terminated, owned */
	size_t n_headers;
	char *body_owned; /* a JSON body serialized here */
} http_job;

static void job_free(http_job *j)
{
	size_t i;

	for (i = 0; j->headers && i < j->n_headers; i++)
		free(j->headers[i]);
	free(j->headers);
	free(j->body_owned);
	memset(j, 0, sizeof(*j));
}

/* Names whose values are credentials often enough that the audit log must not see them:
 * request headers, response headers and URL query parameters alike. Over-redacting a
 * harmless "idempotency-key" is the cheap side of the trade. */
static int sensitive(const char *name, size_t n)
{
	static const char *const words[] = {"auth", "cookie",	 "token",      "secret",  "passw",
					    "key",  "signature", "credential", "session", NULL};
	char low[128];
	size_t i;

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = '\0';
	for (i = 0; words[i]; i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

/* The method as the client wants it (upper case), or "" when the argument is no method. */
static void method_of(const json_t *args, char out[17])
{
	const json_t *m = json_object_get(args, "method");
	const char *s;
	size_t i;

	out[0] = '\0';
	if (!m || json_is_null(m)) {
		memcpy(out, "GET", 4);
		return;
	}
	if (!json_is_string(m))
		return;
	s = json_string_value(m);
	for (i = 0; s[i] && i < 16; i++) {
		if (!isalpha((unsigned char)s[i])) {
			out[0] = '\0';
			return;
		}
		out[i] = (char)toupper((unsigned char)s[i]);
	}
	out[s[i] ? 0 : i] = '\0';
}

static int http_mode_of(const json_t *args)
{
	char m[17];

	method_of(args, m);
	/* Anything unreadable counts as mutating: the safe side for preflight and plan. */
	return !(!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS"));
}

static int scalar_text(const json_t *v, char *buf, size_t n, const char **out)
{
	if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)) {
		*out = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
		*out = buf;
	} else if (json_is_real(v)) {
		snprintf(buf, n, "%.17g", json_real_value(v));
		*out = buf;
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v) ? "true" : "false";
	} else {
		return DRB_EINVAL;
	}
	return 0;
}

static int build_headers(http_job *j, const json_t *h, int json_body, drb_err *err)
{
	const char *key;
	json_t *v;
	int have_ct = 0;

	if (h && !json_is_null(h) && !json_is_object(h))
		return drb_err_set(err, DRB_EINVAL, "argument 'headers' must be a mapping");
	j->headers = calloc(json_object_size(h) + 2, sizeof(char *));
	if (!j->headers)
		return drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
	json_object_foreach((json_t *)h, key, v)
	{
		char num[64];
		const char *val = NULL;
		size_t i;
		drb_buf b;

		for (i = 0; key[i]; i++)
			if (key[i] <= ' ' || key[i] == ':' || key[i] == 0x7f)
				break;
		if (!key[0] || key[i])
			return drb_err_set(err, DRB_EINVAL,
					   "argument 'headers': bad header name '%s'", key);
		if (scalar_text(v, num, sizeof(num), &val) != 0 || strpbrk(val, "\r\n"))
			return drb_err_set(err, DRB_EINVAL,
					   "argument 'headers': '%s' must be a single-line string",
					   key);
		if (!strcasecmp(key, "content-type"))
			have_ct = 1;
		drb_buf_init(&b, strlen(key) + strlen(val) + 3);
		if (drb_buf_printf(&b, "%s: %s", key, val) != 0) {
			drb_buf_free(&b);
			return drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
		}
		j->headers[j->n_headers++] = drb_buf_steal(&b);
	}
	if (json_body && !have_ct) {
		j->headers[j->n_headers] = drb_strdup("Content-Type: application/json");
		if (!j->headers[j->n_headers++])
			return drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
	}
	j->req.headers = (const char *const *)j->headers;
	return 0;
}

/* The URL as the audit log may keep it: the password of user:password@ and the values of
 * credential-like query parameters become "***". An unchanged URL is kept byte for byte. */
static json_t *redacted_url(const char *url)
{
	CURLU *u = curl_url();
	char *pw = NULL, *query = NULL, *full = NULL;
	drb_buf q;
	json_t *out = NULL;
	int changed = 0;

	drb_buf_init(&q, strlen(url) + 1024);
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK && pw) {
		curl_url_set(u, CURLUPART_PASSWORD, "***", 0);
		changed = 1;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
		const char *p = query;

		while (*p) {
			size_t len = strcspn(p, "&");
			const char *eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;

			if (p != query)
				drb_buf_puts(&q, "&");
			if (eq && sensitive(p, kl)) {
				drb_buf_append(&q, p, kl);
				drb_buf_puts(&q, "=***");
				changed = 1;
			} else
				drb_buf_append(&q, p, len);
			p += len;
			if (*p == '&')
				p++;
		}
		if (changed && q.p)
			curl_url_set(u, CURLUPART_QUERY, q.p, 0);
	}
	if (changed && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK)
		out = json_string(full);
out:
	if (!out && !changed)
		out = json_string(url);
	if (!out)
		out = json_string("(URL withheld: it could not be redacted)");
	curl_free(pw);
	curl_free(query);
	curl_free(full);
	curl_url_cleanup(u);
	drb_buf_free(&q);
	return out;
}

/* Copies headers (an object of strings) with credential-like values replaced. */
static json_t *redacted_headers(const json_t *h)
{
	json_t *o = json_object();
	const char *key;
	json_t *v;

	if (!o)
		return NULL;
	json_object_foreach((json_t *)h, key, v)
	{
		json_t *nv = sensitive(key, strlen(key)) ? json_string("***") : json_deep_copy(v);

		if (json_object_set_new(o, key, nv) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *redacted_request(const http_job *j, const json_t *args)
{
	json_t *req = json_object();
	const json_t *h = json_object_get(args, "headers");
	char sha[65];
	int bad = 0;

	if (!req)
		return NULL;
	bad |= json_object_set_new(req, "method", json_string(j->method));
	bad |= json_object_set_new(req, "url", redacted_url(j->req.url));
	bad |= json_object_set_new(req, "headers",
				   json_is_object(h) ? redacted_headers(h) : json_object());
	if (j->req.body) {
		/* The body may carry a routing key or a password: the log keeps its size
		 * and hash, enough to tell what was sent without revealing it. */
		drb_sha256_hex(j->req.body, j->req.body_len, sha);
		bad |= json_object_set_new(req, "body_bytes",
					   json_integer((json_int_t)j->req.body_len));
		bad |= json_object_set_new(req, "body_sha256", json_string(sha));
	}
	bad |= json_object_set_new(req, "timeout_s", json_real(j->req.timeout_s));
	if (bad) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* The seam's perform callback: the real request. */
static int http_perform(void *arg, json_t **response, drb_err *err)
{
	const http_job *j = arg;
	drb_http_resp resp;
	json_t *r = NULL;
	int rc, bad = 0;

	*response = NULL;
	rc = drb_http_perform(&j->req, &resp, err);
	if (rc != 0)
		goto out;
	r = json_object();
	if (!r) {
		rc = drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
		goto out;
	}
	bad |= json_object_set_new(r, "status", json_integer(resp.status));
	bad |= json_object_set_new(r, "headers", redacted_headers(resp.headers));
	bad |= json_object_set_new(r, "body", drb_http_json_text(resp.body, resp.body_len));
	bad |= json_object_set_new(r, "body_truncated", json_boolean(resp.truncated));
	bad |= json_object_set_new(r, "latency_ms", json_real(resp.latency_ms));
	if (bad) {
		json_decref(r);
		rc = drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
		goto out;
	}
	*response = r;
out:
	drb_http_resp_free(&resp);
	return rc;
}

static int result_of(const json_t *resp, json_t **result, drb_err *err)
{
	static const char *const keep[] = {"status",	     "headers",	   "body",
					   "body_truncated", "latency_ms", NULL};

	return drb_result_pick(resp, keep, "status", "http.request", result, err);
}

static int http_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	http_job j;
	json_t *req = NULL, *resp = NULL;
	const json_t *body;
	long long max = DEFAULT_MAX_RESPONSE;
	double timeout = DEFAULT_TIMEOUT_S;
	drb_call call = {.service = "http"};
	int rc, json_body = 0;

	memset(&j, 0, sizeof(j));
	*result = NULL;
	rc = drb_args_check(drb_action_http.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "url", &j.req.url, err);
	if (rc == 0)
		rc = drb_arg_duration_opt(args, "timeout", &timeout, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "ca_file", &j.req.ca_file, err);
	if (rc == 0)
		rc = drb_arg_int_opt(args, "max_response", &max, err);
	if (rc != 0)
		goto out;
	method_of(args, j.method);
	if (!j.method[0]) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'method' must be an HTTP method");
		goto out;
	}
	if (strncasecmp(j.req.url, "http://", 7) && strncasecmp(j.req.url, "https://", 8)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "argument 'url' must be an http:// or https:// URL");
		goto out;
	}
	if (!(timeout > 0)) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'timeout' must be positive");
		goto out;
	}
	if (max <= 0 || max > MAX_MAX_RESPONSE) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'max_response' must be 1..%lld bytes",
				 MAX_MAX_RESPONSE);
		goto out;
	}
	if (ctx->read_only && http_mode_of(args)) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "http.request: %s is not read-only: refused in preflight and plan",
				 j.method);
		goto out;
	}
	body = json_object_get(args, "body");
	if (json_is_string(body)) {
		j.req.body = json_string_value(body);
		j.req.body_len = json_string_length(body);
	} else if (body && !json_is_null(body)) {
		j.body_owned = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!j.body_owned) {
			rc = drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
			goto out;
		}
		j.req.body = j.body_owned;
		j.req.body_len = strlen(j.body_owned);
		json_body = 1;
	}
	rc = build_headers(&j, json_object_get(args, "headers"), json_body, err);
	if (rc != 0)
		goto out;
	if (ctx->deadline > 0) {
		double left = ctx->deadline - drb_mono_now();

		if (left <= 0) {
			rc = drb_err_set(err, DRB_ETIMEOUT,
					 "http.request: the step's deadline passed");
			goto out;
		}
		if (left < timeout)
			timeout = left;
	}
	j.req.method = j.method;
	j.req.timeout_s = timeout;
	j.req.max_response = (size_t)max;
	j.req.allow_truncate = 1; /* a big page is an answer to look at, not a failure */
	j.req.cancel = ctx->cancel;
	req = redacted_request(&j, args);
	if (!req) {
		rc = drb_err_set(err, DRB_ENOMEM, "http.request: out of memory");
		goto out;
	}
	call.operation = j.method;
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, http_perform, &j, &resp, err);
	if (rc == 0)
		rc = result_of(resp, result, err);
out:
	json_decref(req);
	json_decref(resp);
	job_free(&j);
	return rc;
}

static const char *const http_positional[] = {"url", NULL};

const drb_action drb_action_http = {
    .name = "http.request",
    .mode = DRB_ACT_DEPENDS,
    .mode_of = http_mode_of,
    .positional = http_positional,
    .fn = http_fn,
    .schema =
	&(const drb_action_schema){
	    .doc = "An HTTP(S) request",
	    .args =
		(const drb_arg_spec[]){
		    {"method", DRB_T_STRING, 0, "GET", NULL, "HTTP method"},
		    {"url", DRB_T_STRING, 1, NULL, NULL, "http:// or https:// URL"},
		    {"headers", DRB_T_MAP, 0, NULL, NULL, "request headers"},
		    {"body", DRB_T_ANY, 0, NULL, NULL, "a string, or a value sent as JSON"},
		    {"timeout", DRB_T_DURATION, 0, "30s", NULL, "for the whole request"},
		    {"ca_file", DRB_T_STRING, 0, NULL, NULL,
		     "extra CA certificates (PEM) to trust"},
		    {"max_response", DRB_T_INT, 0, "8388608", NULL, "bytes of body kept"},
		    {NULL, 0, 0, NULL, NULL, NULL}},
	    .result = (const drb_field_spec[]){{"status", DRB_T_INT, "HTTP status"},
					       {"headers", DRB_T_MAP, "response headers"},
					       {"body", DRB_T_STRING, "response body (truncated)"},
					       {"body_truncated", DRB_T_BOOL, "the body was cut"},
					       {"latency_ms", DRB_T_INT, "time to the answer"},
					       {NULL, 0, NULL}},
	    .resource = "url"},
};
