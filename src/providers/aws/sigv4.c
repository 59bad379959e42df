/* AWS Signature Version 4: canonical request, string to sign, signing key and the headers
 * (or presigned query) that authenticate a request. Owns nothing but its output; every
 * secret byte it derives is wiped before it returns. Contract: include/drbook/aws.h. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include <drbook/aws.h>
#include <drbook/util.h>

/* A canonical request is headers + query + a 64-byte hash: anything near this cap is not a
 * request an AWS API accepts anyway (they stop at 8-16 KiB of headers), so refuse early. */
#define SIGV4_MAX (1024 * 1024)
#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Hop-by-hop or rewritten by proxies and HTTP stacks: signing them breaks requests that
 * pass through one. The same list as botocore's SIGNED_HEADERS_BLACKLIST (1.43). */
static const char *const unsigned_headers[] = {"connection",
					       "expect",
					       "keep-alive",
					       "proxy-authenticate",
					       "proxy-authorization",
					       "te",
					       "trailer",
					       "transfer-encoding",
					       "upgrade",
					       "user-agent",
					       "x-amzn-trace-id"};

typedef struct hdr {
	char *name;   /* lowercase */
	char *value;  /* trimmed, whitespace collapsed */
	size_t order; /* input position: repeated names keep their order when joined */
} hdr;

typedef struct qparam {
	char *key; /* already URI-encoded */
	char *value;
} qparam;

typedef struct sigv4_state {
	hdr *hdrs;
	size_t n_hdrs, cap_hdrs;
	qparam *params;
	size_t n_params, cap_params;
} sigv4_state;

static void state_free(sigv4_state *s)
{
	for (size_t i = 0; i < s->n_hdrs; i++) {
		free(s->hdrs[i].name);
		free(s->hdrs[i].value);
	}
	free(s->hdrs);
	for (size_t i = 0; i < s->n_params; i++) {
		free(s->params[i].key);
		free(s->params[i].value);
	}
	free(s->params);
	memset(s, 0, sizeof(*s));
}

static int is_unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

/* RFC 7230 tchar: what a header name may be made of. */
static int is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Percent-encodes n bytes of s: unreserved bytes stay, and '/' and '%' when asked to. */
static int uri_encode(drb_buf *b, const char *s, size_t n, int keep_slash, int keep_pct)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (is_unreserved(ch) || (keep_slash && ch == '/') || (keep_pct && ch == '%')) {
			rc = drb_buf_append(b, &s[i], 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

			rc = drb_buf_append(b, e, 3);
		}
	}
	return rc;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes %XX escapes of s[0..n) and appends them; '+' stays '+' (RFC 3986, as the official
 * suite and aws-c-auth read it). DRB_EINVAL on a malformed escape. */
static int uri_decode(drb_buf *b, const char *s, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		if (s[i] != '%') {
			rc = drb_buf_append(b, &s[i], 1);
			continue;
		}
		if (n - i < 3)
			return DRB_EINVAL;
		{
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			char ch;

			if (hi < 0 || lo < 0)
				return DRB_EINVAL;
			ch = (char)(hi * 16 + lo);
			rc = drb_buf_append(b, &ch, 1);
			i += 2;
		}
	}
	return rc;
}

/* botocore's remove_dot_segments, which AWS services agree with: drop empty and "."
 * segments, ".." pops one, keep the leading slash and a trailing one when anything is left. */
static int normalize_path(drb_buf *b, const char *p)
{
	size_t n = strlen(p), *stack = NULL, depth = 0;
	int rc = 0;

	/* Segment start offsets into b; at most n/2+1 segments. */
	stack = calloc(n / 2 + 2, sizeof(*stack));
	if (!stack)
		return DRB_ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j == i || (j - i == 1 && p[i] == '.')) {
			/* empty or "." */
		} else if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
			if (depth > 0) {
				depth--;
				b->len = stack[depth];
				if (b->p)
					b->p[b->len] = '\0';
			}
		} else {
			stack[depth++] = b->len;
			rc = drb_buf_append(b, "/", 1);
			if (rc == 0)
				rc = drb_buf_append(b, p + i, j - i);
			if (rc)
				goto out;
		}
		i = j + 1;
	}
	if (depth == 0)
		rc = drb_buf_append(b, "/", 1);
	else if (p[n - 1] == '/')
		rc = drb_buf_append(b, "/", 1);
out:
	free(stack);
	return rc;
}

static int canonical_uri(drb_buf *cr, const char *path, int normalize, drb_err *err)
{
	drb_buf norm;
	int rc = 0;

	drb_buf_init(&norm, SIGV4_MAX);
	if (!path || !*path)
		path = "/";
	if (path[0] != '/') {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: path must start with '/'");
		goto out;
	}
	if (normalize) {
		rc = normalize_path(&norm, path);
		if (rc == 0)
			rc = uri_encode(cr, norm.p, norm.len, 1, 0);
	} else {
		rc = uri_encode(cr, path, strlen(path), 1, 1);
	}
	if (rc == 0)
		rc = drb_buf_append(cr, "\n", 1);
	if (rc)
		drb_err_set(err, rc, "sigv4: canonical path: %s", drb_code_name(rc));
out:
	drb_buf_free(&norm);
	return rc;
}

/* Adds one query parameter given decoded bytes; stores it URI-encoded. */
static int add_param(sigv4_state *s, const char *k, size_t kl, const char *v, size_t vl)
{
	drb_buf ek, ev;
	int rc = 0;

	drb_buf_init(&ek, SIGV4_MAX);
	drb_buf_init(&ev, SIGV4_MAX);
	if (s->n_params == s->cap_params) {
		size_t cap = s->cap_params ? s->cap_params * 2 : 16;
		qparam *np = realloc(s->params, cap * sizeof(*np));

		if (!np) {
			rc = DRB_ENOMEM;
			goto out;
		}
		s->params = np;
		s->cap_params = cap;
	}
	rc = drb_buf_append(&ek, "", 0);
	if (rc == 0)
		rc = drb_buf_append(&ev, "", 0);
	if (rc == 0)
		rc = uri_encode(&ek, k, kl, 0, 0);
	if (rc == 0)
		rc = uri_encode(&ev, v, vl, 0, 0);
	if (rc)
		goto out;
	s->params[s->n_params].key = drb_buf_steal(&ek);
	s->params[s->n_params].value = drb_buf_steal(&ev);
	if (!s->params[s->n_params].key || !s->params[s->n_params].value) {
		free(s->params[s->n_params].key);
		free(s->params[s->n_params].value);
		rc = DRB_ENOMEM;
		goto out;
	}
	s->n_params++;
out:
	drb_buf_free(&ek);
	drb_buf_free(&ev);
	return rc;
}

/* Splits the raw query into decoded pairs. Empty segments ("a=1&&b=2", a trailing '&')
 * carry no parameter and are dropped, as servers parse them. */
static int parse_query(sigv4_state *s, const char *q, drb_err *err)
{
	drb_buf k, v;
	int rc = 0;

	drb_buf_init(&k, SIGV4_MAX);
	drb_buf_init(&v, SIGV4_MAX);
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		size_t kl = eq ? (size_t)(eq - q) : n;

		if (n > 0) {
			k.len = v.len = 0;
			rc = uri_decode(&k, q, kl);
			if (rc == 0 && eq)
				rc = uri_decode(&v, eq + 1, n - kl - 1);
			if (rc == DRB_EINVAL) {
				rc = drb_err_set(
				    err, rc,
				    "sigv4: malformed percent-escape in query parameter "
				    "\"%.*s\"",
				    (int)(kl > 64 ? 64 : kl), q);
				goto out;
			}
			if (rc == 0)
				rc = add_param(s, k.p ? k.p : "", k.len, v.p ? v.p : "", v.len);
			if (rc) {
				drb_err_set(err, rc, "sigv4: query: %s", drb_code_name(rc));
				goto out;
			}
		}
		q = amp ? amp + 1 : q + n;
	}
out:
	drb_buf_free(&k);
	drb_buf_free(&v);
	return rc;
}

static int param_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(drb_buf *cr, sigv4_state *s)
{
	int rc = 0;

	if (s->n_params > 1)
		qsort(s->params, s->n_params, sizeof(*s->params), param_cmp);
	for (size_t i = 0; i < s->n_params && rc == 0; i++)
		rc = drb_buf_printf(cr, "%s%s=%s", i ? "&" : "", s->params[i].key,
				    s->params[i].value);
	if (rc == 0)
		rc = drb_buf_append(cr, "\n", 1);
	return rc;
}

/* Trimall: strips leading and trailing whitespace and collapses every inner run (folded
 * continuation lines included) into one space, inside quotes too, as the suite expects. */
static char *trimall(const char *v)
{
	size_t n = strlen(v), o = 0;
	char *t = malloc(n + 1);
	int pending = 0;

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (is_ws(v[i])) {
			pending = o > 0;
			continue;
		}
		if (pending)
			t[o++] = ' ';
		pending = 0;
		t[o++] = v[i];
	}
	t[o] = '\0';
	return t;
}

static int add_header(sigv4_state *s, const char *name, const char *value)
{
	hdr h = {NULL, NULL, s->n_hdrs};
	size_t n = strlen(name);

	if (s->n_hdrs == s->cap_hdrs) {
		size_t cap = s->cap_hdrs ? s->cap_hdrs * 2 : 16;
		hdr *nh = realloc(s->hdrs, cap * sizeof(*nh));

		if (!nh)
			return DRB_ENOMEM;
		s->hdrs = nh;
		s->cap_hdrs = cap;
	}
	h.name = malloc(n + 1);
	h.value = trimall(value);
	if (!h.name || !h.value) {
		free(h.name);
		free(h.value);
		return DRB_ENOMEM;
	}
	for (size_t i = 0; i <= n; i++)
		h.name[i] = (char)tolower((unsigned char)name[i]);
	s->hdrs[s->n_hdrs++] = h;
	return 0;
}

static int hdr_cmp(const void *a, const void *b)
{
	const hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A value may span lines only as an obsolete fold (CRLF or LF followed by SP or HT):
 * anything else would let a value smuggle in a header of its own. */
static int value_ok(const char *v)
{
	for (size_t i = 0; v[i]; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			continue;
		if (v[i] == '\r' && v[i + 1] == '\n')
			i++;
		if (v[i + 1] != ' ' && v[i + 1] != '\t')
			return 0;
	}
	return 1;
}

/* Collects the caller's headers; returns the caller's X-Amz-Content-SHA256 through *hash. */
static int collect_headers(sigv4_state *s, const drb_sigv4_req *r, const char **hash, drb_err *err)
{
	int rc = 0, have_host = 0;

	*hash = NULL;
	for (size_t i = 0; i < r->n_headers; i++) {
		const char *name = r->headers[i].name, *value = r->headers[i].value;
		int skip = 0;

		if (!name || !*name || !value) {
			return drb_err_set(err, DRB_EINVAL,
					   "sigv4: header %zu has no name or value", i);
		}
		for (const char *p = name; *p; p++) {
			if (!is_tchar((unsigned char)*p))
				return drb_err_set(err, DRB_EINVAL,
						   "sigv4: header name \"%s\" is not an HTTP token",
						   name);
		}
		if (!value_ok(value))
			return drb_err_set(err, DRB_EINVAL,
					   "sigv4: header %s: line break that is not a fold", name);
		if (!strcasecmp(name, "authorization") || !strcasecmp(name, "x-amz-date") ||
		    !strcasecmp(name, "x-amz-security-token"))
			return drb_err_set(err, DRB_EINVAL,
					   "sigv4: header %s is the signer's to set", name);
		for (size_t k = 0; k < sizeof(unsigned_headers) / sizeof(*unsigned_headers); k++)
			skip |= !strcasecmp(name, unsigned_headers[k]);
		if (skip)
			continue;
		if (!strcasecmp(name, "host"))
			have_host = 1;
		if (!strcasecmp(name, "x-amz-content-sha256"))
			*hash = value;
		rc = add_header(s, name, value);
		if (rc)
			return drb_err_set(err, rc, "sigv4: out of memory");
	}
	if (!have_host)
		return drb_err_set(err, DRB_EINVAL, "sigv4: the Host header is required");
	return 0;
}

/* Canonical headers block, its blank line, and the signed-headers line (also returned in
 * *signed_out for the Authorization value). */
static int canonical_headers(drb_buf *cr, sigv4_state *s, char **signed_out)
{
	drb_buf sh;
	int rc = 0;

	drb_buf_init(&sh, SIGV4_MAX);
	*signed_out = NULL;
	qsort(s->hdrs, s->n_hdrs, sizeof(*s->hdrs), hdr_cmp);
	for (size_t i = 0; i < s->n_hdrs && rc == 0; i++) {
		int first = i == 0 || strcmp(s->hdrs[i].name, s->hdrs[i - 1].name) != 0;

		if (first) {
			rc = drb_buf_printf(cr, "%s%s:%s", i ? "\n" : "", s->hdrs[i].name,
					    s->hdrs[i].value);
			if (rc == 0)
				rc =
				    drb_buf_printf(&sh, "%s%s", sh.len ? ";" : "", s->hdrs[i].name);
		} else {
			rc = drb_buf_printf(cr, ",%s", s->hdrs[i].value);
		}
	}
	if (rc == 0)
		rc = drb_buf_printf(cr, "\n\n%s\n", sh.p ? sh.p : "");
	if (rc == 0) {
		*signed_out = drb_buf_steal(&sh);
		if (!*signed_out)
			rc = DRB_ENOMEM;
	}
	drb_buf_free(&sh);
	return rc;
}

static int valid_amz_date(const char *d)
{
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return 0;
	for (int i = 0; i < 15; i++) {
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return 0;
	}
	return 1;
}

int drb_sigv4_signing_key(const char *secret_key, const char *date, const char *region,
			  const char *service, unsigned char out[32], drb_err *err)
{
	unsigned char k[32];
	char secret[4 + 256 + 1];
	size_t sl;
	int rc = 0;

	if (!secret_key || !*secret_key || !date || !*date || !region || !*region || !service ||
	    !*service) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "sigv4: signing key needs secret, date, region "
				 "and service");
		goto out;
	}
	sl = strlen(secret_key);
	if (sl > 256) {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: secret key longer than 256 bytes");
		goto out;
	}
	memcpy(secret, "AWS4", 4);
	memcpy(secret + 4, secret_key, sl);
	drb_hmac_sha256(secret, 4 + sl, date, strlen(date), k);
	drb_hmac_sha256(k, 32, region, strlen(region), k);
	drb_hmac_sha256(k, 32, service, strlen(service), k);
	drb_hmac_sha256(k, 32, "aws4_request", 12, out);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

static int out_add_header(drb_sigv4_out *out, const char *name, const char *value)
{
	drb_sigv4_header *nh = realloc(out->headers, (out->n_headers + 1) * sizeof(*nh));
	char *n = NULL, *v = NULL;

	if (!nh)
		return DRB_ENOMEM;
	out->headers = nh;
	n = drb_strdup(name);
	v = drb_strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return DRB_ENOMEM;
	}
	out->headers[out->n_headers].name = n;
	out->headers[out->n_headers].value = v;
	out->n_headers++;
	return 0;
}

/* Appends the X-Amz-* presign parameters to a query string, already encoded. */
static int append_qparam(drb_buf *b, const char *k, const char *v)
{
	int rc = drb_buf_printf(b, "%s%s=", b->len ? "&" : "", k);

	if (rc == 0)
		rc = uri_encode(b, v, strlen(v), 0, 0);
	return rc;
}

static const char *const presign_keys[] = {
    "X-Amz-Algorithm",	   "X-Amz-Credential",	   "X-Amz-Date",     "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"};

/* Both modes: expires_s < 0 signs headers, otherwise presigns. */
static int sign(const drb_sigv4_req *r, const drb_sigv4_creds *c, long expires_s,
		drb_sigv4_out *out, drb_err *err)
{
	sigv4_state s = {0};
	drb_buf cr, sts, q;
	unsigned char key[32], mac[32];
	char date[17], scope[256], payload[65], expires[24], crhash[65];
	char *signed_headers = NULL;
	const char *hash = NULL, *token = NULL;
	int rc = 0, presign = expires_s >= 0, caller_hash = 0;

	drb_buf_init(&cr, SIGV4_MAX);
	drb_buf_init(&sts, SIGV4_MAX);
	drb_buf_init(&q, SIGV4_MAX);
	if (!out) {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: no output");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	if (!r || !c || !r->method || !*r->method || !r->region || !*r->region || !r->service ||
	    !*r->service || !c->access_key || !*c->access_key || !c->secret_key ||
	    !*c->secret_key || (r->body_len && !r->body) || (r->n_headers && !r->headers)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "sigv4: method, region, service, access key and secret key are "
				 "required");
		goto out;
	}
	if (strchr(r->region, '/') || strchr(r->service, '/') || strchr(c->access_key, '/')) {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: '/' in region, service or access key");
		goto out;
	}
	/* Real access key ids are 16-128 characters; the bound keeps the credential buffers
	 * below from ever truncating. */
	if (strlen(c->access_key) > 128) {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: access key longer than 128 characters");
		goto out;
	}
	if (r->amz_date) {
		if (!valid_amz_date(r->amz_date)) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "sigv4: amz_date \"%s\" is not YYYYMMDDTHHMMSSZ",
					 r->amz_date);
			goto out;
		}
		memcpy(date, r->amz_date, 17);
	} else {
		time_t now = (time_t)(drb_wall_ms() / 1000);
		struct tm tm;

		if (!gmtime_r(&now, &tm) ||
		    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm) != 16) {
			rc = drb_err_set(err, DRB_ERR, "sigv4: cannot format the current time");
			goto out;
		}
	}
	if (snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request", date, r->region,
		     r->service) >= (int)sizeof(scope)) {
		rc = drb_err_set(err, DRB_EINVAL, "sigv4: region or service name too long");
		goto out;
	}
	if (c->session_token && *c->session_token)
		token = c->session_token;
	if (presign && r->add_content_sha256) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "sigv4: presigned requests carry no "
				 "X-Amz-Content-SHA256 header");
		goto out;
	}

	rc = collect_headers(&s, r, &hash, err);
	if (rc)
		goto out;
	caller_hash = hash != NULL;
	if (caller_hash) {
		/* the caller's precomputed hash or UNSIGNED-PAYLOAD: already in the header set */
	} else if (r->body_len) {
		drb_sha256_hex(r->body, r->body_len, payload);
		hash = payload;
	} else {
		hash = EMPTY_SHA256;
	}
	if (!presign) {
		rc = add_header(&s, "x-amz-date", date);
		if (rc == 0 && r->add_content_sha256 && !caller_hash)
			rc = add_header(&s, "x-amz-content-sha256", hash);
		if (rc == 0 && token && !r->omit_session_token)
			rc = add_header(&s, "x-amz-security-token", token);
		if (rc) {
			drb_err_set(err, rc, "sigv4: out of memory");
			goto out;
		}
	}

	rc = parse_query(&s, r->query, err);
	if (rc)
		goto out;
	if (presign) {
		for (size_t i = 0; i < s.n_params; i++) {
			for (size_t k = 0; k < sizeof(presign_keys) / sizeof(*presign_keys); k++) {
				if (!strcmp(s.params[i].key, presign_keys[k])) {
					rc = drb_err_set(err, DRB_EINVAL,
							 "sigv4: query already has %s",
							 presign_keys[k]);
					goto out;
				}
			}
		}
	}

	/* Method, path, then (presign) the signed-headers list must be known before the query
	 * is final: build the headers block separately and splice. */
	{
		drb_buf hb;
		char cred[512];

		drb_buf_init(&hb, SIGV4_MAX);
		rc = canonical_headers(&hb, &s, &signed_headers);
		if (rc == 0 && presign) {
			snprintf(expires, sizeof(expires), "%ld", expires_s);
			snprintf(cred, sizeof(cred), "%s/%s", c->access_key, scope);
			rc = add_param(&s, "X-Amz-Algorithm", 15, SIGV4_ALGO, strlen(SIGV4_ALGO));
			if (rc == 0)
				rc = add_param(&s, "X-Amz-Credential", 16, cred, strlen(cred));
			if (rc == 0)
				rc = add_param(&s, "X-Amz-Date", 10, date, 16);
			if (rc == 0)
				rc = add_param(&s, "X-Amz-Expires", 13, expires, strlen(expires));
			if (rc == 0)
				rc = add_param(&s, "X-Amz-SignedHeaders", 19, signed_headers,
					       strlen(signed_headers));
			if (rc == 0 && token && !r->omit_session_token)
				rc =
				    add_param(&s, "X-Amz-Security-Token", 20, token, strlen(token));
		}
		if (rc == 0) {
			const char *m = r->method;

			for (; *m && rc == 0; m++) {
				char u = (char)toupper((unsigned char)*m);

				rc = drb_buf_append(&cr, &u, 1);
			}
			if (rc == 0)
				rc = drb_buf_append(&cr, "\n", 1);
		}
		if (rc == 0) {
			drb_err e2 = {0};

			rc = canonical_uri(&cr, r->path, r->normalize_path, &e2);
			if (rc) {
				drb_buf_free(&hb);
				drb_err_set(err, rc, "%s", e2.msg);
				goto out;
			}
		}
		if (rc == 0)
			rc = canonical_query(&cr, &s);
		if (rc == 0)
			rc = drb_buf_append(&cr, hb.p ? hb.p : "", hb.len);
		if (rc == 0)
			rc = drb_buf_puts(&cr, hash);
		drb_buf_free(&hb);
		if (rc) {
			drb_err_set(err, rc, "sigv4: canonical request: %s", drb_code_name(rc));
			goto out;
		}
	}

	drb_sha256_hex(cr.p, cr.len, crhash);
	rc = drb_buf_printf(&sts, SIGV4_ALGO "\n%s\n%s\n%s", date, scope, crhash);
	if (rc) {
		drb_err_set(err, rc, "sigv4: string to sign: %s", drb_code_name(rc));
		goto out;
	}
	{
		char d8[9];

		memcpy(d8, date, 8);
		d8[8] = '\0';
		rc = drb_sigv4_signing_key(c->secret_key, d8, r->region, r->service, key, err);
		if (rc)
			goto out;
	}
	drb_hmac_sha256(key, 32, sts.p, sts.len, mac);
	drb_hex(mac, 32, out->signature);

	if (presign) {
		rc = drb_buf_puts(&q, r->query ? r->query : "");
		if (rc == 0) {
			char cred[512];

			snprintf(cred, sizeof(cred), "%s/%s", c->access_key, scope);
			rc = append_qparam(&q, "X-Amz-Algorithm", SIGV4_ALGO);
			if (rc == 0)
				rc = append_qparam(&q, "X-Amz-Credential", cred);
			if (rc == 0)
				rc = append_qparam(&q, "X-Amz-Date", date);
			if (rc == 0)
				rc = append_qparam(&q, "X-Amz-SignedHeaders", signed_headers);
			if (rc == 0)
				rc = append_qparam(&q, "X-Amz-Expires", expires);
			if (rc == 0 && token)
				rc = append_qparam(&q, "X-Amz-Security-Token", token);
			if (rc == 0)
				rc = append_qparam(&q, "X-Amz-Signature", out->signature);
		}
		if (rc == 0) {
			out->query = drb_buf_steal(&q);
			if (!out->query)
				rc = DRB_ENOMEM;
		}
	} else {
		drb_buf a;

		drb_buf_init(&a, SIGV4_MAX);
		rc = drb_buf_printf(&a,
				    SIGV4_ALGO " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
				    c->access_key, scope, signed_headers, out->signature);
		if (rc == 0)
			rc = out_add_header(out, "X-Amz-Date", date);
		if (rc == 0 && r->add_content_sha256 && !caller_hash)
			rc = out_add_header(out, "X-Amz-Content-SHA256", hash);
		if (rc == 0 && token)
			rc = out_add_header(out, "X-Amz-Security-Token", token);
		if (rc == 0)
			rc = out_add_header(out, "Authorization", a.p);
		if (rc == 0)
			out->authorization = out->headers[out->n_headers - 1].value;
		drb_buf_free(&a);
	}
	if (rc) {
		drb_err_set(err, rc, "sigv4: output: %s", drb_code_name(rc));
		goto out;
	}
	out->canonical_request = drb_buf_steal(&cr);
	out->string_to_sign = drb_buf_steal(&sts);
	if (!out->canonical_request || !out->string_to_sign) {
		rc = drb_err_set(err, DRB_ENOMEM, "sigv4: out of memory");
		goto out;
	}
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (rc && out)
		drb_sigv4_out_free(out);
	free(signed_headers);
	state_free(&s);
	drb_buf_free(&cr);
	drb_buf_free(&sts);
	drb_buf_free(&q);
	return rc;
}

int drb_sigv4_sign(const drb_sigv4_req *r, const drb_sigv4_creds *c, drb_sigv4_out *out,
		   drb_err *err)
{
	return sign(r, c, -1, out, err);
}

int drb_sigv4_presign(const drb_sigv4_req *r, const drb_sigv4_creds *c, long expires_s,
		      drb_sigv4_out *out, drb_err *err)
{
	/* 7 days is the longest validity AWS accepts for a presigned request. */
	if (expires_s < 1 || expires_s > 604800) {
		if (out)
			memset(out, 0, sizeof(*out));
		return drb_err_set(err, DRB_EINVAL, "sigv4: expiry %lds is not in 1..604800",
				   expires_s);
	}
	return sign(r, c, expires_s, out, err);
}

void drb_sigv4_out_free(drb_sigv4_out *out)
{
	if (!out)
		return;
	free(out->canonical_request);
	free(out->string_to_sign);
	free(out->query);
	for (size_t i = 0; i < out->n_headers; i++) {
		free((char *)out->headers[i].name);
		free((char *)out->headers[i].value);
	}
	free(out->headers);
	OPENSSL_cleanse(out->signature, sizeof(out->signature));
	memset(out, 0, sizeof(*out));
}
