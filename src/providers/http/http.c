/* The libcurl client behind every outgoing HTTP call: one place that sets the safety options
 * (TLS verified, timeouts, http/https only, no redirects, capped bodies), maps curl's errors
 * to drb codes, and retries with full-jitter backoff. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <drbook/http.h>
#include <drbook/util.h>

#define DEF_CONNECT_S 5.0
#define DEF_TIMEOUT_S 30.0
#define DEF_MAX_RESPONSE ((size_t)8 << 20)
/* Response headers are small in practice; the cap stops a server that never ends them. */
#define MAX_HEADER_BYTES ((size_t)1 << 20)
#define DEF_ATTEMPTS 4
#define DEF_BASE_S 0.2
#define DEF_CAP_S 20.0

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
	g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int drb_http_global_init(void)
{
	pthread_once(&g_once, global_init_once);
	return g_init_rc == CURLE_OK ? 0 : DRB_ERR;
}

void drb_http_global_cleanup(void)
{
	if (g_init_rc == CURLE_OK)
		curl_global_cleanup();
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else
		return 0;
	if (len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

json_t *drb_http_json_text(const void *p, size_t n)
{
	const unsigned char *s = p;
	unsigned char *o = NULL;
	json_t *j = NULL;
	size_t i = 0, k = 0;

	if (!p)
		n = 0;
	j = json_stringn(n ? (const char *)p : "", n);
	if (j)
		return j; /* valid already: the common case */
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	o = malloc(n * 3 + 1);
	if (!o)
		return NULL;
	while (i < n) {
		size_t l = utf8_seq(s + i, n - i);

		if (l) {
			memcpy(o + k, s + i, l);
			k += l;
			i += l;
		} else {
			o[k++] = 0xEF; /* U+FFFD REPLACEMENT CHARACTER */
			o[k++] = 0xBF;
			o[k++] = 0xBD;
			i++;
		}
	}
	j = json_stringn((const char *)o, k);
	free(o);
	return j;
}

/* ---- one attempt ---------------------------------------------------------------------- */

typedef struct xfer {
	drb_buf body;
	json_t *headers;
	size_t header_bytes;
	int allow_truncate;
	int body_over, header_over, nomem;
	const volatile int *cancel;
} xfer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	int rc = drb_buf_append(&x->body, ptr, n);

	if (rc == 0)
		return n;
	if (rc == DRB_ELIMIT) {
		x->body_over = 1;
		if (x->allow_truncate && x->body.len < x->body.max)
			drb_buf_append(&x->body, ptr, x->body.max - x->body.len);
	} else
		x->nomem = 1;
	return 0; /* stops the transfer: reading the rest would only waste time */
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb, nlen, vlen, i;
	const char *colon, *v;
	char name[256];
	json_t *val = NULL;

	x->header_bytes += n;
	if (x->header_bytes > MAX_HEADER_BYTES) {
		x->header_over = 1;
		return 0;
	}
	if (n >= 5 && !memcmp(ptr, "HTTP/", 5)) {
		/* A new status line: a 100 Continue came before the real answer. */
		json_object_clear(x->headers);
		return n;
	}
	if (n == 0 || ptr[0] == ' ' || ptr[0] == '\t')
		return n; /* obsolete line folding: ignored */
	colon = memchr(ptr, ':', n);
	if (!colon)
		return n; /* the blank line ending the block, or junk */
	nlen = (size_t)(colon - ptr);
	if (nlen == 0 || nlen >= sizeof(name))
		return n;
	for (i = 0; i < nlen; i++)
		name[i] = (char)tolower((unsigned char)ptr[i]);
	name[nlen] = '\0';
	v = colon + 1;
	vlen = n - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
			v[vlen - 1] == '\t'))
		vlen--;
	val = drb_http_json_text(v, vlen);
	if (!val || json_object_set_new(x->headers, name, val) != 0) {
		x->nomem = 1;
		return 0;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	xfer *x = ud;

	return x->cancel && *x->cancel ? 1 : 0;
}

/* "https://host:port" for messages: paths and queries stay out (a webhook URL's path is its
 * secret), and so does any user:password. */
static void url_origin(const char *url, char *out, size_t n)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;

	snprintf(out, n, "(invalid URL)");
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
		snprintf(out, n, "%s://%s:%s", scheme, host, port);
	else
		snprintf(out, n, "%s://%s", scheme, host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

static int valid_method(const char *m)
{
	size_t i;

	for (i = 0; m[i]; i++)
		if (m[i] < 'A' || m[i] > 'Z' || i >= 16)
			return 0;
	return i > 0;
}

static int has_header(const char *const *h, const char *name)
{
	size_t l = strlen(name);

	for (; h && *h; h++)
		if (!strncasecmp(*h, name, l) && (*h)[l] == ':')
			return 1;
	return 0;
}

static int url_scheme_ok(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

/* The drb code and the words for a failed transfer. */
static int map_curl(CURLcode cc, const char **what)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		*what = "connection failed";
		return DRB_ETRANSIENT;
	case CURLE_OPERATION_TIMEDOUT:
		*what = "timed out";
		return DRB_ETIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		*what = "TLS verification failed";
		return DRB_EDENIED;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_TOO_MANY_REDIRECTS:
		*what = "invalid request";
		return DRB_EINVAL;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		*what = "invalid HTTP response";
		return DRB_EINVAL;
	case CURLE_OUT_OF_MEMORY:
		*what = "out of memory";
		return DRB_ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		*what = "cancelled";
		return DRB_EINTERRUPTED;
	default:
		*what = "failed";
		return DRB_ERR;
	}
}

int drb_http_perform(const drb_http_req *r, drb_http_resp *out, drb_err *err)
{
	CURL *h = NULL;
	struct curl_slist *hl = NULL, *tmp = NULL;
	xfer x;
	char errbuf[CURL_ERROR_SIZE] = "", origin[512];
	const char *method, *what = NULL;
	double conn_s, total_s, t0;
	size_t i;
	CURLcode cc = CURLE_OK;
	int rc = 0;

	memset(&x, 0, sizeof(x));
	drb_buf_init(&x.body, r && r->max_response ? r->max_response : DEF_MAX_RESPONSE);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!r || !out || !r->url || !r->url[0]) {
		rc = drb_err_set(err, DRB_EINVAL, "http: no URL");
		goto out;
	}
	method = r->method ? r->method : (r->body ? "POST" : "GET");
	url_origin(r->url, origin, sizeof(origin));
	if (!valid_method(method)) {
		rc = drb_err_set(err, DRB_EINVAL, "http: invalid method '%.20s'", method);
		goto out;
	}
	if (!url_scheme_ok(r->url)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s %s: only http and https URLs are allowed",
				 method, origin);
		goto out;
	}
	x.headers = json_object();
	x.allow_truncate = r->allow_truncate;
	x.cancel = r->cancel;
	h = curl_easy_init();
	if (!x.headers || !h) {
		rc = drb_err_set(err, DRB_ENOMEM, "http: out of memory");
		goto out;
	}
	/* Without Expect: curl waits up to 1 s for a 100 Continue on larger bodies; without an
	 * empty Content-Type it would claim a form body the caller never said it sent. */
	tmp = curl_slist_append(hl, "Expect:");
	if (tmp)
		hl = tmp;
	if (tmp && r->body && !has_header(r->headers, "content-type")) {
		tmp = curl_slist_append(hl, "Content-Type:");
		if (tmp)
			hl = tmp;
	}
	for (i = 0; tmp && r->headers && r->headers[i]; i++) {
		const char *hv = r->headers[i];

		/* CR or LF would let a header value inject more headers; the header itself stays
		 * out of the message because it may carry a secret. */
		if (strpbrk(hv, "\r\n") || !strchr(hv, ':') || hv[0] == ':') {
			rc = drb_err_set(err, DRB_EINVAL, "%s %s: request header %zu is malformed",
					 method, origin, i + 1);
			goto out;
		}
		tmp = curl_slist_append(hl, hv);
		if (tmp)
			hl = tmp;
	}
	if (!tmp) {
		rc = drb_err_set(err, DRB_ENOMEM, "http: out of memory");
		goto out;
	}

	conn_s = r->connect_timeout_s > 0 ? r->connect_timeout_s : DEF_CONNECT_S;
	total_s = r->timeout_s > 0 ? r->timeout_s : DEF_TIMEOUT_S;
	if (r->deadline > 0) {
		double left = r->deadline - drb_mono_now();

		if (left < 0.001) { /* curl reads a timeout of 0 as none */
			rc = drb_err_set(err, DRB_ETIMEOUT, "%s %s: timed out (deadline passed)",
					 method, origin);
			goto out;
		}
		if (left < total_s)
			total_s = left;
	}
	if (conn_s > total_s)
		conn_s = total_s;
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(conn_s * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ceil(total_s * 1000));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (r->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "drbook/0.1");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (r->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(method, "GET") && !r->body) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		/* PUT and PATCH without a body still say Content-Length: 0. */
		if (r->body || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
		    !strcmp(method, "PATCH")) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(r->body ? r->body_len : 0));
			curl_easy_setopt(h, CURLOPT_POSTFIELDS,
					 r->body ? (const char *)r->body : "");
		}
	}

	t0 = drb_mono_now();
	cc = curl_easy_perform(h);
	out->latency_ms = (drb_mono_now() - t0) * 1000.0;

	if (x.nomem) {
		rc = drb_err_set(err, DRB_ENOMEM, "%s %s: out of memory", method, origin);
	} else if (x.header_over) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s %s: response headers larger than %zu bytes",
				 method, origin, MAX_HEADER_BYTES);
	} else if (x.body_over && !x.allow_truncate) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s %s: response larger than %zu bytes", method,
				 origin, x.body.max);
	} else if (cc != CURLE_OK && !x.body_over) {
		rc = map_curl(cc, &what);
		drb_err_set(err, rc, "%s %s: %s: %s", method, origin, what,
			    errbuf[0] ? errbuf : curl_easy_strerror(cc));
	}
	if (rc != 0) {
		if (err)
			err->cause = (long)cc;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	out->truncated = x.body_over;
	out->body_len = x.body.len;
	out->body = drb_buf_steal(&x.body);
	out->headers = x.headers;
	x.headers = NULL;
	if (!out->body) {
		drb_http_resp_free(out);
		rc = drb_err_set(err, DRB_ENOMEM, "%s %s: out of memory", method, origin);
	}
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	drb_buf_free(&x.body);
	json_decref(x.headers);
	return rc;
}

void drb_http_resp_free(drb_http_resp *r)
{
	if (!r)
		return;
	free(r->body);
	json_decref(r->headers);
	memset(r, 0, sizeof(*r));
}

/* ---- retries -------------------------------------------------------------------------- */

/* Seconds the server asked us to wait, or -1 when it did not say (or said nonsense). */
static double retry_after_s(const drb_http_resp *resp)
{
	const char *v = json_string_value(json_object_get(resp->headers, "retry-after"));
	char *end = NULL;
	long s;
	time_t when;

	if (!v || !*v)
		return -1;
	if (isdigit((unsigned char)v[0])) {
		errno = 0;
		s = strtol(v, &end, 10);
		if (errno || !end || *end)
			return -1;
		return (double)s;
	}
	when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	return when > time(NULL) ? difftime(when, time(NULL)) : 0;
}

/* Sleeps s seconds in short slices; returns 1 when cancelled. */
int drb_http_perform_retry(const drb_http_req *r, const drb_http_retry *p, drb_http_resp *out,
			   int *attempts, drb_err *err)
{
	int max = p && p->max_attempts > 0 ? p->max_attempts : DEF_ATTEMPTS;
	double base = p && p->base_s > 0 ? p->base_s : DEF_BASE_S;
	double cap = p && p->cap_s > 0 ? p->cap_s : DEF_CAP_S;
	int n = 0, rc = 0;

	for (;;) {
		int again;
		double delay, ra = -1;

		n++;
		rc = drb_http_perform(r, out, err);
		if (rc == 0) {
			again = out->status >= 500 || out->status == 429 ||
				(p && p->classify && p->classify(p->ud, out));
			ra = retry_after_s(out);
		} else
			again = drb_code_retryable(rc);
		if (!again || n >= max || (r && r->cancel && *r->cancel))
			break;
		delay = ra >= 0 ? (ra < cap ? ra : cap)
				: drb_backoff_delay(base, cap, n - 1, drb_random_unit());
		/* the budget is the caller's, across attempts: no attempt that cannot start */
		if (r && r->deadline > 0 && drb_mono_now() + delay >= r->deadline)
			break;
		drb_http_resp_free(out);
		if (drb_sleep_until(drb_mono_now() + delay, 0, r ? r->cancel : NULL)) {
			rc = drb_err_set(err, DRB_EINTERRUPTED, "http: cancelled between attempts");
			break;
		}
	}
	if (rc != 0 && n > 1)
		drb_err_prefix(err, "after %d attempts: ", n);
	if (attempts)
		*attempts = n;
	return rc;
}
