/* Tests for src/providers/aws/sigv4.c beyond the official suites (test_sigv4_suite.c):
 * the key derivation, path and query canonicalisation edge cases, tokens, S3 habits,
 * presign rules and every refusal the header documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#define DATE "20150830T123600Z"

static const drb_sigv4_creds creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				      NULL};
static const drb_sigv4_header host_only[] = {{"Host", "example.amazonaws.com"}};

static drb_sigv4_req base_req(void)
{
	drb_sigv4_req r = {0};

	r.method = "GET";
	r.path = "/";
	r.headers = host_only;
	r.n_headers = 1;
	r.region = "us-east-1";
	r.service = "service";
	r.amz_date = DATE;
	r.normalize_path = 1;
	return r;
}

/* Line n (0-based) of a canonical request, copied into buf. */
static const char *line_of(const char *text, int n, char *buf, size_t size)
{
	const char *p = text;

	for (int i = 0; i < n && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	assert_non_null(p);
	snprintf(buf, size, "%.*s", (int)strcspn(p, "\n"), p);
	return buf;
}

static const char *header_out(const drb_sigv4_out *o, const char *name)
{
	for (size_t i = 0; i < o->n_headers; i++) {
		if (!strcmp(o->headers[i].name, name))
			return o->headers[i].value;
	}
	return NULL;
}

/* The signing key example from AWS's documentation (IAM, 2012-02-15). */
static void test_signing_key_known_value(void **state)
{
	unsigned char k[32];
	char hex[65];
	drb_err err = {0};

	assert_int_equal(drb_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
					       "20120215", "us-east-1", "iam", k, &err),
			 0);
	drb_hex(k, 32, hex);
	assert_string_equal(hex,
			    "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

/* Missing parts and an oversized secret are refused, not signed with garbage. */
static void test_signing_key_refusals(void **state)
{
	unsigned char k[32];
	char big[300];
	drb_err err = {0};

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(drb_sigv4_signing_key("", "20120215", "r", "s", k, &err), DRB_EINVAL);
	assert_int_equal(drb_sigv4_signing_key("s", NULL, "r", "s", k, &err), DRB_EINVAL);
	assert_int_equal(drb_sigv4_signing_key("s", "20120215", "", "s", k, &err), DRB_EINVAL);
	assert_int_equal(drb_sigv4_signing_key(big, "20120215", "r", "s", k, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "256"));
}

/* Non-S3 paths: dot segments and repeated slashes go (botocore's rules), then the wire
 * path is encoded again, so an escape on the wire becomes %25XX. */
static void test_path_normalized(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"", "/"},
	    {"/", "/"},
	    {"/a/./b/../c", "/a/c"},
	    {"/a/b/..", "/a"},
	    {"/a/.", "/a"},
	    {"/..", "/"},
	    {"/../../a", "/a"},
	    {"//a//b//", "/a/b/"},
	    {"/a%2Fb", "/a%252Fb"},
	    {"/a b", "/a%20b"},
	    {"/\xc3\xa9", "/%C3%A9"},
	    {"/~user/-._", "/~user/-._"},
	    {"/$x:@=", "/%24x%3A%40%3D"},
	    {"/...", "/..."},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_out o;
		drb_err err = {0};
		char line[256];

		r.path = cases[i].in;
		assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
		assert_string_equal(line_of(o.canonical_request, 1, line, sizeof(line)),
				    cases[i].want);
		drb_sigv4_out_free(&o);
	}
}

/* S3 paths are signed as sent: no normalisation, existing escapes kept, only bytes that
 * cannot go on the wire raw are encoded. */
static void test_path_s3(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"/bucket/a%2Fb", "/bucket/a%2Fb"},
	    {"/a b", "/a%20b"},
	    {"//a/./../", "//a/./../"},
	    {"/k$", "/k%24"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_out o;
		drb_err err = {0};
		char line[256];

		r.path = cases[i].in;
		r.normalize_path = 0;
		assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
		assert_string_equal(line_of(o.canonical_request, 1, line, sizeof(line)),
				    cases[i].want);
		drb_sigv4_out_free(&o);
	}
}

/* Query: decoded and re-encoded, sorted by key then value in byte order, repeated keys
 * kept, "k" means "k=", '+' is a literal plus, empty segments carry nothing. */
static void test_query_canonical(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	    {"b=2&a=1", "a=1&b=2"},
	    {"a=2&a=1&a=10", "a=1&a=10&a=2"},
	    {"a", "a="},
	    {"a=&b", "a=&b="},
	    {"a+b=c+d", "a%2Bb=c%2Bd"},
	    {"%e1%88%b4=x", "%E1%88%B4=x"},
	    {"%41=%7e", "A=~"},
	    {"a=b=c", "a=b%3Dc"},
	    {"a=1&&b=2&", "a=1&b=2"},
	    {"k=%00", "k=%00"},
	    {"B=1&a=1&%C3%A9=1", "%C3%A9=1&B=1&a=1"},
	    {"x=a:b/c@d", "x=a%3Ab%2Fc%40d"},
	    {"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_out o;
		drb_err err = {0};
		char line[256];

		r.query = cases[i].in;
		assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
		assert_string_equal(line_of(o.canonical_request, 2, line, sizeof(line)),
				    cases[i].want);
		drb_sigv4_out_free(&o);
	}
}

/* A broken escape is refused: what the server makes of it cannot be known. */
static void test_query_malformed_escape(void **state)
{
	static const char *bad[] = {"a=%G1", "a=%4", "%=1", "a=1&b=%", "%zz"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_out o;
		drb_err err = {0};

		r.query = bad[i];
		assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), DRB_EINVAL);
		assert_non_null(strstr(err.msg, "percent-escape"));
		assert_null(o.canonical_request);
		drb_sigv4_out_free(&o);
	}
}

/* Header refusals: Host missing, a header the signer owns, a name that is not a token, a
 * line break that would start a new header, a missing value. */
static void test_header_refusals(void **state)
{
	static const drb_sigv4_header no_host[] = {{"X-A", "1"}};
	static const drb_sigv4_header owned1[] = {{"Host", "h"}, {"Authorization", "x"}};
	static const drb_sigv4_header owned2[] = {{"Host", "h"}, {"x-amz-date", DATE}};
	static const drb_sigv4_header owned3[] = {{"Host", "h"}, {"X-Amz-Security-Token", "t"}};
	static const drb_sigv4_header badname1[] = {{"Host", "h"}, {"Bad Name", "v"}};
	static const drb_sigv4_header badname2[] = {{"Host", "h"}, {"X:Y", "v"}};
	static const drb_sigv4_header inject[] = {{"Host", "h"}, {"X-A", "v\r\nX-Evil: 1"}};
	static const drb_sigv4_header nullval[] = {{"Host", "h"}, {"X-A", NULL}};
	static const struct {
		const drb_sigv4_header *h;
		size_t n;
		const char *msg;
	} cases[] = {
	    {no_host, 1, "Host"},  {owned1, 2, "signer"},   {owned2, 2, "signer"},
	    {owned3, 2, "signer"}, {badname1, 2, "token"},  {badname2, 2, "token"},
	    {inject, 2, "fold"},   {nullval, 2, "no name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_out o;
		drb_err err = {0};

		r.headers = cases[i].h;
		r.n_headers = cases[i].n;
		assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), DRB_EINVAL);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
		assert_int_equal(o.n_headers, 0);
	}
}

/* Folded values are legal and collapse to one space; hop-by-hop headers are not signed;
 * repeated names join with ',' in the order given; names sort case-insensitively. */
static void test_header_canonical(void **state)
{
	static const drb_sigv4_header h[] = {
	    {"host", "example.amazonaws.com"},
	    {"X-Fold", " a\r\n  b\n\tc "},
	    {"User-Agent", "drbook/0.1"},
	    {"Connection", "close"},
	    {"X-Rep", "2"},
	    {"x-rep", " 1 "},
	    {"A-First", "\"q   q\""},
	};
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};

	r.headers = h;
	r.n_headers = sizeof(h) / sizeof(h[0]);
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
	assert_non_null(strstr(o.canonical_request,
			       "\na-first:\"q q\"\nhost:example.amazonaws.com\n"
			       "x-amz-date:" DATE "\nx-fold:a b c\nx-rep:2,1\n\n"
			       "a-first;host;x-amz-date;x-fold;x-rep\n"));
	assert_null(strstr(o.canonical_request, "user-agent"));
	assert_null(strstr(o.canonical_request, "connection"));
	assert_non_null(
	    strstr(o.authorization, "SignedHeaders=a-first;host;x-amz-date;x-fold;x-rep,"));
	drb_sigv4_out_free(&o);
}

/* Every malformed request field is refused and leaves out empty. */
static void test_request_refusals(void **state)
{
	for (int i = 0; i < 12; i++) {
		drb_sigv4_req r = base_req();
		drb_sigv4_creds c = creds;
		drb_sigv4_out o;
		drb_err err = {0};

		switch (i) {
		case 0:
			r.amz_date = "2015-08-30T12:36:00Z";
			break;
		case 1:
			r.amz_date = "20150830T123600";
			break;
		case 2:
			r.amz_date = "2015083OT123600Z";
			break;
		case 3:
			r.region = "";
			break;
		case 4:
			r.service = NULL;
			break;
		case 5:
			c.access_key = NULL;
			break;
		case 6:
			c.secret_key = "";
			break;
		case 7:
			r.path = "relative/path";
			break;
		case 8:
			r.region = "us-east-1/x";
			break;
		case 9:
			r.method = NULL;
			break;
		case 11:
			c.access_key =
			    "AKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKID"
			    "AKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDAKIDX";
			break;
		case 10:
			r.body = NULL;
			r.body_len = 5;
			break;
		}
		assert_int_equal(drb_sigv4_sign(&r, &c, &o, &err), DRB_EINVAL);
		assert_true(err.msg[0] != '\0');
		assert_null(o.canonical_request);
		assert_null(o.authorization);
		assert_int_equal(o.n_headers, 0);
	}
}

/* A canonical request beyond the cap is refused as a limit, not truncated. */
static void test_limit(void **state)
{
	size_t n = 2 * 1024 * 1024;
	char *q = malloc(n + 1);
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};

	assert_non_null(q);
	memset(q, 'a', n);
	memcpy(q, "k=", 2);
	q[n] = '\0';
	r.query = q;
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), DRB_ELIMIT);
	assert_null(o.canonical_request);
	free(q);
}

/* Without amz_date the signer uses the clock, in the right format. */
static void test_now(void **state)
{
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};
	const char *d;

	r.amz_date = NULL;
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
	d = header_out(&o, "X-Amz-Date");
	assert_non_null(d);
	assert_int_equal(strlen(d), 16);
	assert_true(d[8] == 'T' && d[15] == 'Z');
	assert_true(strncmp(d, "2024", 4) >= 0);
	drb_sigv4_out_free(&o);
}

/* A session token is added and signed; with omit_session_token it is added only. The
 * Authorization header comes last and out->authorization points at its value. */
static void test_session_token(void **state)
{
	drb_sigv4_req r = base_req();
	drb_sigv4_creds c = creds;
	drb_sigv4_out o;
	drb_err err = {0};

	c.session_token = "TOKEN+/=";
	assert_int_equal(drb_sigv4_sign(&r, &c, &o, &err), 0);
	assert_string_equal(header_out(&o, "X-Amz-Security-Token"), "TOKEN+/=");
	assert_non_null(strstr(o.canonical_request, "\nx-amz-security-token:TOKEN+/=\n"));
	assert_string_equal(o.headers[o.n_headers - 1].name, "Authorization");
	assert_ptr_equal(o.authorization, o.headers[o.n_headers - 1].value);
	drb_sigv4_out_free(&o);

	r.omit_session_token = 1;
	assert_int_equal(drb_sigv4_sign(&r, &c, &o, &err), 0);
	assert_string_equal(header_out(&o, "X-Amz-Security-Token"), "TOKEN+/=");
	assert_null(strstr(o.canonical_request, "x-amz-security-token"));
	drb_sigv4_out_free(&o);
}

/* S3: X-Amz-Content-SHA256 carries the body hash (binary bodies with NULs hashed whole);
 * a caller's UNSIGNED-PAYLOAD is used as the payload hash and not added twice. */
static void test_content_sha256(void **state)
{
	static const unsigned char body[] = {0, 1, 2, 0, 255};
	static const drb_sigv4_header unsigned_payload[] = {
	    {"Host", "b.s3.amazonaws.com"}, {"X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"}};
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};
	char hash[65];
	size_t n;

	drb_sha256_hex(body, sizeof(body), hash);
	r.method = "put"; /* upper-cased in the canonical request */
	r.body = body;
	r.body_len = sizeof(body);
	r.normalize_path = 0;
	r.add_content_sha256 = 1;
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
	assert_string_equal(header_out(&o, "X-Amz-Content-SHA256"), hash);
	assert_int_equal(strncmp(o.canonical_request, "PUT\n", 4), 0);
	n = strlen(o.canonical_request);
	assert_string_equal(o.canonical_request + n - 64, hash);
	drb_sigv4_out_free(&o);

	r.headers = unsigned_payload;
	r.n_headers = 2;
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
	assert_null(header_out(&o, "X-Amz-Content-SHA256"));
	n = strlen(o.canonical_request);
	assert_string_equal(o.canonical_request + n - 16, "UNSIGNED-PAYLOAD");
	assert_non_null(strstr(o.canonical_request, "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
	drb_sigv4_out_free(&o);
}

/* Presign: expiry bounds, a query that already carries X-Amz-* auth, and the S3 header
 * switch are refused; a good one yields a query that ends with the signature. */
static void test_presign(void **state)
{
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};
	char tail[96];

	assert_int_equal(drb_sigv4_presign(&r, &creds, 0, &o, &err), DRB_EINVAL);
	assert_int_equal(drb_sigv4_presign(&r, &creds, 604801, &o, &err), DRB_EINVAL);
	r.query = "Action=connect&X-Amz-Signature=abc";
	assert_int_equal(drb_sigv4_presign(&r, &creds, 900, &o, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "X-Amz-Signature"));
	r.query = "Action=connect&DBUser=app";
	r.add_content_sha256 = 1;
	assert_int_equal(drb_sigv4_presign(&r, &creds, 900, &o, &err), DRB_EINVAL);
	r.add_content_sha256 = 0;
	assert_int_equal(drb_sigv4_presign(&r, &creds, 900, &o, &err), 0);
	assert_int_equal(
	    strncmp(o.query, "Action=connect&DBUser=app&X-Amz-Algorithm=AWS4-HMAC-SHA256&", 58), 0);
	snprintf(tail, sizeof(tail), "&X-Amz-Signature=%s", o.signature);
	assert_string_equal(o.query + strlen(o.query) - strlen(tail), tail);
	assert_non_null(strstr(o.query, "&X-Amz-Expires=900&"));
	assert_null(o.authorization);
	drb_sigv4_out_free(&o);
}

/* out_free takes NULL and an already-freed (zeroed) struct. */
static void test_out_free(void **state)
{
	drb_sigv4_req r = base_req();
	drb_sigv4_out o;
	drb_err err = {0};

	drb_sigv4_out_free(NULL);
	assert_int_equal(drb_sigv4_sign(&r, &creds, &o, &err), 0);
	drb_sigv4_out_free(&o);
	drb_sigv4_out_free(&o);
	assert_null(o.headers);
	assert_int_equal(o.signature[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signing_key_known_value),
	    cmocka_unit_test(test_signing_key_refusals),
	    cmocka_unit_test(test_path_normalized),
	    cmocka_unit_test(test_path_s3),
	    cmocka_unit_test(test_query_canonical),
	    cmocka_unit_test(test_query_malformed_escape),
	    cmocka_unit_test(test_header_refusals),
	    cmocka_unit_test(test_header_canonical),
	    cmocka_unit_test(test_request_refusals),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_now),
	    cmocka_unit_test(test_session_token),
	    cmocka_unit_test(test_content_sha256),
	    cmocka_unit_test(test_presign),
	    cmocka_unit_test(test_out_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
