/* Tests for src/audit/scrub.c: every redaction rule of docs/audit.md, the keys it must leave
 * alone, and that the input is never modified. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/audit.h>

/* Scrubs one string value and returns the result (static buffer, for asserts). */
static const char *scrub_str(const char *in)
{
	static char out[4096];
	json_t *v = json_string(in), *s;

	assert_non_null(v);
	s = drb_audit_scrub(v);
	assert_non_null(s);
	assert_true(json_is_string(s));
	snprintf(out, sizeof(out), "%s", json_string_value(s));
	json_decref(s);
	json_decref(v);
	return out;
}

/* The value of key in {key: value} after scrubbing, as compact JSON text. */
static const char *scrub_key(const char *key, json_t *value)
{
	static char out[1024];
	json_t *o = json_object(), *s;
	char *txt;

	json_object_set_new(o, key, value);
	s = drb_audit_scrub(o);
	assert_non_null(s);
	txt = json_dumps(json_object_get(s, key), JSON_ENCODE_ANY | JSON_COMPACT);
	snprintf(out, sizeof(out), "%s", txt);
	free(txt);
	json_decref(s);
	json_decref(o);
	return out;
}

/* Each secret word, in any case and separator style, hides the key's value. */
static void test_secret_keys(void **state)
{
	static const char *const keys[] = {
	    "authorization",
	    "Authorization",
	    "Proxy-Authorization",
	    "password",
	    "DB_PASSWORD",
	    "passwd",
	    "secret",
	    "client_secret",
	    "SecretAccessKey",
	    "token",
	    "SessionToken",
	    "access_token",
	    "credential",
	    "Credentials",
	    "api_key",
	    "ApiKey",
	    "API-KEY",
	    "apikey",
	    "private_key",
	    "PrivateKey",
	    "x-amz-security-token",
	    "X-Amz-Security-Token",
	    "cookie",
	    "Set-Cookie",
	    "session",
	    "session_id",
	    "SessionId",
	    "user_session",
	    "session-key",
	    "signature",
	    "X-Amz-Signature",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_string_equal(scrub_key(keys[i], json_string("s3cr3t")), "\"***\"");
	/* whatever the value's type: numbers, objects and arrays are hidden whole */
	assert_string_equal(scrub_key("password", json_integer(1234)), "\"***\"");
	assert_string_equal(scrub_key("Credentials", json_pack("{s:s}", "AccessKeyId", "AKIA")),
			    "\"***\"");
	assert_string_equal(scrub_key("tokens", json_pack("[s]", "t")), "\"***\"");
	/* null and booleans say whether a secret is set without revealing it */
	assert_string_equal(scrub_key("password", json_null()), "null");
	assert_string_equal(scrub_key("token_valid", json_true()), "true");
}

/* Keys that merely mention a session, and ordinary keys, are kept. */
static void test_harmless_keys(void **state)
{
	static const char *const keys[] = {
	    "session_name",
	    "RoleSessionName",
	    "session_timeout",
	    "SessionDuration",
	    "sessions",
	    "session_count",
	    "user",
	    "host",
	    "status",
	    "dsn_env",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_string_equal(scrub_key(keys[i], json_string("drill")), "\"drill\"");
}

/* A lease's fencing token (an integer named exactly "token") is a counter a reviewer needs;
 * a string token, an integer under any other secret name, and SessionToken stay masked. */
static void test_fencing_token_counter(void **state)
{
	(void)state;
	assert_string_equal(scrub_key("token", json_integer(42)), "42");
	assert_string_equal(scrub_key("token", json_string("abc")), "\"***\"");
	assert_string_equal(scrub_key("token", json_real(4.5)), "\"***\"");
	assert_string_equal(scrub_key("password", json_integer(123456)), "\"***\"");
	assert_string_equal(scrub_key("session_token", json_integer(7)), "\"***\"");
}

/* Nested objects and arrays are walked; order and other values are preserved; the input is
 * not touched. */
static void test_deep_copy(void **state)
{
	json_t *in =
	    json_pack("{s:i, s:[{s:s, s:s}], s:{s:{s:s}}, s:f, s:b}", "z", 1, "items", "user",
		      "app", "password", "pw", "a", "b", "token", "t", "r", 0.5, "ok", 1);
	json_t *out = drb_audit_scrub(in);
	char *txt = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *orig = json_dumps(in, JSON_COMPACT | JSON_PRESERVE_ORDER);

	assert_string_equal(txt, "{\"z\":1,\"items\":[{\"user\":\"app\",\"password\":\"***\"}],"
				 "\"a\":{\"b\":{\"token\":\"***\"}},\"r\":0.5,\"ok\":true}");
	assert_non_null(strstr(orig, "\"pw\""));
	assert_null(drb_audit_scrub(NULL));
	free(txt);
	free(orig);
	json_decref(out);
	json_decref(in);
}

/* Passwords in URIs: user kept, password hidden, wherever the URI sits in the string. */
static void test_uri_passwords(void **state)
{
	assert_string_equal(scrub_str("postgres://app:s3cr3t@db:5432/x"),
			    "postgres://app:***@db:5432/x");
	assert_string_equal(scrub_str("connect to postgresql://u:pw@h/db failed: timeout"),
			    "connect to postgresql://u:***@h/db failed: timeout");
	/* a raw '@' or '/' in the password: everything up to the last '@' is hidden */
	assert_string_equal(scrub_str("postgres://u:p@ss/w@h/db"), "postgres://u:***@h/db");
	/* no password, or an '@' only in the query: nothing to hide */
	assert_string_equal(scrub_str("postgres://app@db/x"), "postgres://app@db/x");
	assert_string_equal(scrub_str("https://h:443/p?mail=a@b.c"), "https://h:443/p?mail=a@b.c");
	assert_string_equal(scrub_str("https://example.com/a:b@c"), "https://example.com/a:***@c");
	assert_string_equal(scrub_str("\"redis://:pw@cache:6379\""), "\"redis://:***@cache:6379\"");
}

/* libpq key=value DSNs (and any NAME=value, NAME: value with a secret NAME). */
static void test_dsn_passwords(void **state)
{
	assert_string_equal(scrub_str("host=db user=app password=hunter2 dbname=x"),
			    "host=db user=app password=*** dbname=x");
	assert_string_equal(scrub_str("host=db password = 'p w\\'x' dbname=x"),
			    "host=db password = '***' dbname=x");
	assert_string_equal(scrub_str("PASSWORD=a,b&c;d sslmode=require"),
			    "PASSWORD=*** sslmode=require");
	assert_string_equal(scrub_str("sslpassword=x host=h"), "sslpassword=*** host=h");
	assert_string_equal(scrub_str("postgresql://h/db?password=x&sslmode=require"),
			    "postgresql://h/db?password=***");
	assert_string_equal(scrub_str("secret: abc"), "secret: ***");
	/* prose and expressions are not assignments */
	assert_string_equal(scrub_str("FATAL: password authentication failed for user \"app\""),
			    "FATAL: password authentication failed for user \"app\"");
	assert_string_equal(scrub_str("result.token == nil"), "result.token == nil");
	assert_string_equal(scrub_str("password="), "password=");
}

/* AWS SigV4: Signature and the whole Credential (key id included), in headers and queries;
 * session tokens in queries. */
static void test_aws_signatures(void **state)
{
	assert_string_equal(
	    scrub_str("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/rds/"
		      "aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b"),
	    "AWS4-HMAC-SHA256 Credential=***, SignedHeaders=host;x-amz-date, Signature=***");
	assert_string_equal(
	    scrub_str("https://h/?Action=X&X-Amz-Credential=AKID%2F2026&X-Amz-Signature=abc&"
		      "X-Amz-Security-Token=tok&Version=1"),
	    "https://h/?Action=X&X-Amz-Credential=***&X-Amz-Signature=***&"
	    "X-Amz-Security-Token=***&Version=1");
}

/* Header lines hide their whole value; Bearer tokens are hidden anywhere. */
static void test_headers_and_bearer(void **state)
{
	assert_string_equal(scrub_str("GET / HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"
				      "Cookie: a=1; b=2\r\nHost: x\r\n"),
			    "GET / HTTP/1.1\r\nAuthorization: ***\r\nCookie: ***\r\nHost: x\r\n");
	assert_string_equal(scrub_str("sent Bearer eyJhbGciOi.x.y to the hook"),
			    "sent Bearer *** to the hook");
}

/* JSON and XML carried inside a string (response bodies). */
static void test_embedded_json_and_xml(void **state)
{
	assert_string_equal(scrub_str("{\"user\":\"u\",\"password\":\"p\\\"w\",\"n\":1}"),
			    "{\"user\":\"u\",\"password\":\"***\",\"n\":1}");
	assert_string_equal(scrub_str("{\\\"token\\\":\\\"abc\\\"}"),
			    "{\\\"token\\\":\\\"***\\\"}");
	assert_string_equal(
	    scrub_str("<Credentials><AccessKeyId>AKIA1</AccessKeyId><SecretAccessKey>wJal"
		      "</SecretAccessKey><SessionToken>FQo</SessionToken></Credentials>"),
	    "<Credentials><AccessKeyId>AKIA1</AccessKeyId><SecretAccessKey>***"
	    "</SecretAccessKey><SessionToken>***</SessionToken></Credentials>");
}

/* Ordinary text is byte for byte unchanged, including UTF-8 and NUL bytes. */
static void test_plain_text_unchanged(void **state)
{
	static const char *const keep[] = {
	    "promote prod-db-eu in eu-west-1",
	    "RoleSessionName=drill-2026",
	    "token expired",
	    "https://rds.eu-west-1.amazonaws.com/?Action=DescribeDBInstances",
	    "caf\xc3\xa9",
	    "",
	    "a=b c:d",
	    "arn:aws:rds:eu-west-1:123456789012:db:prod-db-eu",
	};
	json_t *nul = json_stringn("a\0password=x", 12), *s;

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		assert_string_equal(scrub_str(keep[i]), keep[i]);
	s = drb_audit_scrub(nul);
	assert_int_equal(json_string_length(s), 14);
	assert_memory_equal(json_string_value(s), "a\0password=***", 14);
	json_decref(s);
	json_decref(nul);
}

/* Copy on write: nothing to hide gives v back; a change copies only the way to it, and the
 * parts beside it are shared, unchanged. */
static void test_copy_on_write(void **state)
{
	json_t *clean = json_pack("{s:s, s:[i, {s:s}], s:{s:b}}", "action", "lua", "items", 1,
				  "host", "db.example", "r", "ok", 1);
	json_t *dirty = json_pack("{s:{s:s}, s:[s, s], s:{s:s}}", "keep", "a", "b", "list", "x",
				  "postgres://u:pw@h/db", "creds", "password", "pw");
	json_t *nulkey = json_object(), *s;

	drb_buf b;
	int hid = -1;

	(void)state;
	s = drb_audit_scrub(clean);
	assert_ptr_equal(s, clean);
	json_decref(s);

	/* the one-pass text says whether it hid anything: the live output's cue */
	drb_buf_init(&b, 1 << 20);
	assert_int_equal(drb_audit_scrub_dump(clean, &b, &hid), 0);
	assert_int_equal(hid, 0);
	b.len = 0;
	assert_int_equal(drb_audit_scrub_dump(dirty, &b, &hid), 0);
	assert_int_equal(hid, 1);
	drb_buf_free(&b);
	drb_buf_init(&b, 1 << 20);
	{
		/* a string that changes, no secret key */
		json_t *dsn = json_pack("{s:[s]}", "list", "postgres://u:pw@h/db");

		assert_int_equal(drb_audit_scrub_dump(dsn, &b, &hid), 0);
		assert_int_equal(hid, 1);
		json_decref(dsn);
	}
	drb_buf_free(&b);

	s = drb_audit_scrub(dirty);
	assert_ptr_not_equal(s, dirty);
	assert_ptr_equal(json_object_get(s, "keep"), json_object_get(dirty, "keep"));
	assert_ptr_equal(json_array_get(json_object_get(s, "list"), 0),
			 json_array_get(json_object_get(dirty, "list"), 0));
	assert_string_equal(json_string_value(json_array_get(json_object_get(s, "list"), 1)),
			    "postgres://u:***@h/db");
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "creds"),
							      "password")),
			    "***");
	assert_string_equal(json_string_value(json_object_get(json_object_get(dirty, "creds"),
							      "password")),
			    "pw");
	json_decref(s);

	/* a key with a NUL byte is cut in the copy, as before: a change */
	json_object_setn_new(nulkey, "k\0x", 3, json_integer(1));
	s = drb_audit_scrub(nulkey);
	assert_ptr_not_equal(s, nulkey);
	assert_non_null(json_object_get(s, "k"));
	json_decref(s);
	json_decref(nulkey);
	json_decref(dirty);
	json_decref(clean);
}

/* The two-pass text the audit log wrote before drb_audit_scrub_dump: the reference. */
static char *two_pass(const json_t *v)
{
	json_t *c = drb_audit_scrub(v);
	char *s;

	assert_non_null(c);
	s = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(c);
	assert_non_null(s);
	return s;
}

static void assert_same_text(const json_t *v)
{
	char *want = two_pass(v);
	drb_buf b;

	drb_buf_init(&b, 1 << 24);
	assert_int_equal(drb_audit_scrub_dump(v, &b, NULL), 0);
	assert_string_equal(b.p, want);
	drb_buf_free(&b);
	free(want);
}

static const char *const fragments[] = {
    "plain",
    "caf\xc3\xa9",
    "\xe6\x97\xa5\xe6\x9c\xac",
    "\xf0\x9f\x98\x80",
    "tab\there",
    "quote\"q",
    "back\\slash",
    "nl\nline",
    "\x01\x1f\x7f",
    "/slash/",
    "password=hunter2",
    "postgres://u:pw@h:5432/db",
    "Bearer abc.def",
    "X-Amz-Signature=abcdef&x=1",
    "<Password>p</Password>",
    "{\"token\":\"t\"}",
    "Authorization: AWS4-HMAC-SHA256 Credential=AK/x, Signature=ff",
    "",
    "\r\b\f",
    "sessionid=42;",
    "a=b c:d",
};

static const char *const keys[] = {
    "id",    "result",	    "password", "api_key",   "token", "session_name", "Signature", "nested",
    "items", "caf\xc3\xa9", "k\"q",	"sessionId", "with",  "x-api-key",    "cookie",	   "error",
};

static unsigned next_rand(unsigned *st)
{
	*st = *st * 1103515245u + 12345u;
	return (*st >> 8) & 0xffffff;
}

/* A random tree of every JSON kind, keys and strings drawn from the lists above. */
static json_t *random_value(unsigned *st, int depth)
{
	unsigned k = next_rand(st) % (depth > 5 ? 6 : 9);
	static const double reals[] = {0.1, 2.5, -7.0, 1e300, 1.5e-7, 100.0, -0.0, 3.25, 1e21};
	static const json_int_t ints[] = {
	    0, 1, -1, 42, 9007199254740993LL, -9223372036854775807LL - 1, 9223372036854775807LL};
	json_t *v;

	switch (k) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(next_rand(st) & 1);
	case 2:
		return json_integer(ints[next_rand(st) % 7]);
	case 3:
		return json_real(reals[next_rand(st) % 9]);
	case 4:
	case 5: {
		char buf[512] = "";
		size_t n = next_rand(st) % 4;

		for (size_t i = 0; i < n; i++) {
			strncat(buf,
				fragments[next_rand(st) % (sizeof(fragments) / sizeof(*fragments))],
				sizeof(buf) - strlen(buf) - 1);
			strncat(buf, next_rand(st) & 1 ? " " : "", sizeof(buf) - strlen(buf) - 1);
		}
		return json_string(buf);
	}
	case 6:
	case 7:
		v = json_object();
		for (size_t i = 0, n = next_rand(st) % 5; i < n; i++)
			json_object_set_new(v, keys[next_rand(st) % (sizeof(keys) / sizeof(*keys))],
					    random_value(st, depth + 1));
		return v;
	default:
		v = json_array();
		for (size_t i = 0, n = next_rand(st) % 4; i < n; i++)
			json_array_append_new(v, random_value(st, depth + 1));
		return v;
	}
}

/* The one-pass text is the two-pass text, byte for byte: the audit log's format. */
static void test_one_pass_is_two_pass(void **state)
{
	unsigned st = 13;
	json_t *deep = json_object(), *o;
	(void)state;

	for (int i = 0; i < 3000; i++) {
		json_t *v = json_object();

		json_object_set_new(v, "data", random_value(&st, 0));
		json_object_set_new(v, "token", json_integer(i));
		assert_same_text(v);
		json_decref(v);
	}
	/* deeper than the scrub's limit: the same "***" at the same depth */
	o = deep;
	for (int i = 0; i < 250; i++) {
		json_t *c = json_object();

		json_object_set_new(o, "k", c);
		o = c;
	}
	assert_same_text(deep);
	json_decref(deep);
	o = json_pack("{s:{}, s:[], s:s, s:n, s:b, s:b}", "o", "a", "s", "", "n", "t", 1, "f", 0);
	assert_same_text(o);
	json_decref(o);
}

/* What the copy would change (a key cut at its NUL, text that is not UTF-8) is left to the
 * two passes. */
static void test_one_pass_hands_over(void **state)
{
	json_t *o = json_object();
	drb_buf b;
	(void)state;

	drb_buf_init(&b, 4096);
	json_object_setn_new(o, "a\0b", 3, json_integer(1));
	assert_int_equal(drb_audit_scrub_dump(o, &b, NULL), DRB_AUDIT_DUMP_SLOW);
	json_decref(o);
	o = json_object();
	json_object_set_new(o, "s", json_stringn_nocheck("bad\xff", 4));
	b.len = 0;
	assert_int_equal(drb_audit_scrub_dump(o, &b, NULL), DRB_AUDIT_DUMP_SLOW);
	json_decref(o);
	b.len = 0;
	assert_int_equal(drb_audit_json_string(&b, "\xc0\x80", 2), DRB_AUDIT_DUMP_SLOW);
	b.len = 0;
	assert_int_equal(drb_audit_json_string(&b, "x\xed\xa0\x80", 4), DRB_AUDIT_DUMP_SLOW);
	b.len = 0;
	assert_int_equal(drb_audit_json_string(&b, "\xf4\x90\x80\x80", 4), DRB_AUDIT_DUMP_SLOW);
	b.len = 0;
	assert_int_equal(drb_audit_json_string(&b, "\xe2\x82", 2), DRB_AUDIT_DUMP_SLOW);
	drb_buf_free(&b);
	/* a cap reached is a limit, as the length check was */
	o = json_pack("{s:s}", "s", "0123456789");
	drb_buf_init(&b, 8);
	assert_int_equal(drb_audit_scrub_dump(o, &b, NULL), DRB_ELIMIT);
	drb_buf_free(&b);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_keys),
	    cmocka_unit_test(test_harmless_keys),
	    cmocka_unit_test(test_fencing_token_counter),
	    cmocka_unit_test(test_deep_copy),
	    cmocka_unit_test(test_copy_on_write),
	    cmocka_unit_test(test_uri_passwords),
	    cmocka_unit_test(test_dsn_passwords),
	    cmocka_unit_test(test_aws_signatures),
	    cmocka_unit_test(test_headers_and_bearer),
	    cmocka_unit_test(test_embedded_json_and_xml),
	    cmocka_unit_test(test_plain_text_unchanged),
	    cmocka_unit_test(test_one_pass_is_two_pass),
	    cmocka_unit_test(test_one_pass_hands_over),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
