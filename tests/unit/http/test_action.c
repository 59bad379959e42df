/* Tests for src/providers/http/action.c (http.request) against the local fault server: what
 * is sent, what comes back, what the audit log would see (redacted), the read-only mode,
 * and which failures are errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <drbook/action.h>
#include <drbook/http.h>
#include <drbook/util.h>

#include "http/direct_seam.h"
#include "test_server.h"

static test_server g_fs;

typedef struct fixture {
	direct_seam seam;
	volatile int cancel;
	drb_action_ctx ctx;
} fixture;

static int group_setup(void **state)
{
	if (drb_http_global_init() != 0)
		return -1;
	return test_server_start(&g_fs, "tests/tools/fault_server.py");
}

static int group_teardown(void **state)
{
	test_server_stop(&g_fs);
	drb_http_global_cleanup();
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	direct_seam_init(&f->seam);
	f->ctx.seam = &f->seam.seam;
	f->ctx.step_id = "probe";
	f->ctx.cancel = &f->cancel;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	direct_seam_free(&f->seam);
	free(f);
	return 0;
}

/* Runs http.request; "@" in the JSON text is replaced by the server's base URL. */
static int run(fixture *f, const char *tmpl, json_t **result, drb_err *e)
{
	char text[2048];
	const char *at = strchr(tmpl, '@');
	json_error_t je;
	json_t *args;
	int rc;

	if (at)
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - tmpl), tmpl, g_fs.base, at + 1);
	else
		snprintf(text, sizeof(text), "%s", tmpl);
	args = json_loads(text, 0, &je);
	if (!args)
		fail_msg("bad test JSON: %s", je.text);
	*result = NULL;
	rc = drb_action_http.fn(&f->ctx, args, result, e);
	json_decref(args);
	return rc;
}

static json_t *echoed(const json_t *result)
{
	const char *body = json_string_value(json_object_get(result, "body"));
	json_t *doc;

	assert_non_null(body);
	doc = json_loads(body, 0, NULL);
	assert_non_null(doc);
	return doc;
}

static const char *hdr(const json_t *doc, const char *name)
{
	return json_string_value(json_object_get(json_object_get(doc, "headers"), name));
}

/* GET with headers: the server sees them; the result has status, headers, body and a
 * latency; the audit request names method and URL and hides the Authorization value;
 * the response's Set-Cookie is hidden too. */
static void test_get_echo(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *doc;
	drb_err e = {0};

	assert_int_equal(run(f,
			     "{\"url\": \"@/echo\", \"headers\": {\"X-Test\": \"abc\", "
			     "\"Authorization\": \"Bearer SECRETTOKEN\", \"X-Count\": 3}}",
			     &r, &e),
			 0);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
	assert_true(json_number_value(json_object_get(r, "latency_ms")) > 0);
	assert_true(json_is_false(json_object_get(r, "body_truncated")));
	assert_string_equal(hdr(r, "x-echo"), "yes");
	assert_string_equal(hdr(r, "set-cookie"), "***");
	doc = echoed(r);
	assert_string_equal(json_string_value(json_object_get(doc, "method")), "GET");
	assert_string_equal(hdr(doc, "x-test"), "abc");
	assert_string_equal(hdr(doc, "x-count"), "3");
	assert_string_equal(hdr(doc, "authorization"), "Bearer SECRETTOKEN");
	json_decref(doc);
	json_decref(r);

	assert_int_equal(f->seam.calls, 1);
	assert_string_equal(f->seam.service, "http");
	assert_string_equal(f->seam.operation, "GET");
	assert_string_equal(hdr(f->seam.request, "Authorization"), "***");
	assert_string_equal(hdr(f->seam.request, "X-Test"), "abc");
	{
		char *dump = json_dumps(f->seam.request, 0);
		int leaked = dump && strstr(dump, "SECRETTOKEN") != NULL;

		assert_non_null(dump);
		free(dump);
		assert_false(leaked);
	}
}

/* An object body is sent as JSON with its content type; the log keeps only its size and
 * hash; lower-case methods are accepted. */
static void test_post_json(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *doc, *sent;
	drb_err e = {0};

	assert_int_equal(
	    run(f, "{\"method\": \"post\", \"url\": \"@/echo\", \"body\": {\"a\": [1, 2]}}", &r,
		&e),
	    0);
	doc = echoed(r);
	assert_string_equal(json_string_value(json_object_get(doc, "method")), "POST");
	assert_string_equal(hdr(doc, "content-type"), "application/json");
	sent = json_loads(json_string_value(json_object_get(doc, "body")), 0, NULL);
	assert_non_null(sent);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(sent, "a"), 1)), 2);
	json_decref(sent);
	json_decref(doc);
	json_decref(r);
	assert_string_equal(f->seam.operation, "POST");
	assert_null(json_object_get(f->seam.request, "body"));
	assert_int_equal(json_integer_value(json_object_get(f->seam.request, "body_bytes")),
			 11); /* {"a":[1,2]} */
	assert_int_equal(strlen(json_string_value(json_object_get(f->seam.request, "body_sha256"))),
			 64);

	/* A string body goes as is, with the caller's content type. */
	assert_int_equal(
	    run(f,
		"{\"method\": \"PUT\", \"url\": \"@/echo\", \"body\": \"plain words\", "
		"\"headers\": {\"content-type\": \"text/plain\"}}",
		&r, &e),
	    0);
	doc = echoed(r);
	assert_string_equal(json_string_value(json_object_get(doc, "body")), "plain words");
	assert_string_equal(hdr(doc, "content-type"), "text/plain");
	json_decref(doc);
	json_decref(r);
}

/* A 404 or 503 is an answer for the runbook's assert, not an action error; one attempt. */
static void test_non_2xx_is_result(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{\"url\": \"@/status/404\"}", &r, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 404);
	assert_string_equal(json_string_value(json_object_get(r, "body")), "status 404");
	json_decref(r);
	assert_int_equal(run(f, "{\"url\": \"@/503/5/act503\"}", &r, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 503);
	json_decref(r);
	assert_int_equal(run(f, "{\"url\": \"@/count/act503\"}", &r, &e), 0);
	assert_string_equal(json_string_value(json_object_get(r, "body")), "1");
	json_decref(r);
}

/* GET, HEAD and OPTIONS are read-only, everything else mutating; in preflight/plan a
 * mutating request is refused before it is sent. */
static void test_mode_of(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *args;
		int mut;
	} cases[] = {
	    {"{\"url\": \"x\"}", 0},	     {"{\"method\": \"GET\"}", 0},
	    {"{\"method\": \"head\"}", 0},   {"{\"method\": \"OPTIONS\"}", 0},
	    {"{\"method\": \"POST\"}", 1},   {"{\"method\": \"PUT\"}", 1},
	    {"{\"method\": \"DELETE\"}", 1}, {"{\"method\": \"PATCH\"}", 1},
	    {"{\"method\": 42}", 1},	     {"{\"method\": \"GET \"}", 1},
	};
	json_t *r = NULL;
	drb_err e = {0};
	size_t i;

	assert_int_equal(drb_action_http.mode, DRB_ACT_DEPENDS);
	assert_string_equal(drb_action_http.name, "http.request");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *a = json_loads(cases[i].args, 0, NULL);

		assert_non_null(a);
		assert_int_equal(drb_action_http.mode_of(a), cases[i].mut);
		json_decref(a);
	}
	f->ctx.read_only = 1;
	assert_int_equal(run(f, "{\"method\": \"DELETE\", \"url\": \"@/echo\"}", &r, &e),
			 DRB_EDENIED);
	assert_int_equal(f->seam.calls, 0);
	assert_int_equal(run(f, "{\"url\": \"@/ok\"}", &r, &e), 0);
	json_decref(r);
	assert_int_equal(f->seam.calls, 1);
}

/* Credentials in the URL (password, token-like query values) stay out of the log; the
 * rest of the URL stays. */
static void test_url_redaction(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};
	char u[256];
	json_t *args;
	const char *logged;

	snprintf(u, sizeof(u), "http://bob:PASSW0RD@127.0.0.1:%d/echo?x=1&access_token=TOK3N&y=2",
		 g_fs.port);
	args = json_pack("{s:s}", "url", u);
	assert_int_equal(drb_action_http.fn(&f->ctx, args, &r, &e), 0);
	json_decref(args);
	json_decref(r);
	logged = json_string_value(json_object_get(f->seam.request, "url"));
	assert_non_null(logged);
	assert_null(strstr(logged, "PASSW0RD"));
	assert_null(strstr(logged, "TOK3N"));
	assert_non_null(strstr(logged, "/echo?x=1&access_token=***&y=2"));

	/* An ordinary URL is logged exactly as written. */
	assert_int_equal(run(f, "{\"url\": \"@/echo?page=2\"}", &r, &e), 0);
	json_decref(r);
	snprintf(u, sizeof(u), "%s/echo?page=2", g_fs.base);
	assert_string_equal(json_string_value(json_object_get(f->seam.request, "url")), u);
}

/* A page over max_response is cut and flagged, not an error. */
static void test_big_truncated(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{\"url\": \"@/big/500000\", \"max_response\": 1000}", &r, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
	assert_true(json_is_true(json_object_get(r, "body_truncated")));
	assert_int_equal(json_string_length(json_object_get(r, "body")), 1000);
	json_decref(r);
}

static int closed_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(s >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

/* Transport failures are errors with retryable codes, after a single attempt; timeouts
 * come from the argument or from the step's deadline, whichever is first. */
static void test_transport_errors(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *args;
	drb_err e = {0};
	char u[128];
	double t0;

	snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", closed_port());
	args = json_pack("{s:s}", "url", u);
	assert_int_equal(drb_action_http.fn(&f->ctx, args, &r, &e), DRB_ETRANSIENT);
	json_decref(args);
	assert_true(drb_code_retryable(e.code));

	t0 = drb_mono_now();
	assert_int_equal(run(f, "{\"url\": \"@/slow/5\", \"timeout\": \"500ms\"}", &r, &e),
			 DRB_ETIMEOUT);
	assert_true(drb_mono_now() - t0 < 2.0);

	t0 = drb_mono_now();
	f->ctx.deadline = t0 + 0.4;
	assert_int_equal(run(f, "{\"url\": \"@/slow/5\"}", &r, &e), DRB_ETIMEOUT);
	assert_true(drb_mono_now() - t0 < 2.0);
	f->ctx.deadline = drb_mono_now() - 1;
	assert_int_equal(run(f, "{\"url\": \"@/ok\"}", &r, &e), DRB_ETIMEOUT);
	f->ctx.deadline = 0;

	assert_int_equal(run(f, "{\"url\": \"@/reset\"}", &r, &e), DRB_ETRANSIENT);
	assert_null(r);
}

/* Argument errors are refused before anything is sent. */
static void test_bad_args(void **state)
{
	fixture *f = *state;
	json_t *r = NULL;
	drb_err e = {0};

	assert_int_equal(run(f, "{}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"ftp://127.0.0.1/\"}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"file:///etc/passwd\"}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"verify\": false}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"method\": \"G T\"}", &r, &e), DRB_EINVAL);
	assert_int_equal(
	    run(f, "{\"url\": \"@/ok\", \"headers\": {\"X\": \"a\\r\\nB: c\"}}", &r, &e),
	    DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"headers\": {\"X Y\": \"a\"}}", &r, &e),
			 DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"headers\": [\"X: a\"]}", &r, &e),
			 DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"max_response\": 0}", &r, &e), DRB_EINVAL);
	assert_int_equal(run(f, "{\"url\": \"@/ok\", \"timeout\": 0}", &r, &e), DRB_EINVAL);
	assert_int_equal(f->seam.calls, 0);
	assert_null(r);
}

/* https to a plain server: TLS failure, denied (the step's retry will not retry it). */
static void test_tls_failure(void **state)
{
	fixture *f = *state;
	json_t *r = NULL, *args;
	drb_err e = {0};
	char u[128];

	snprintf(u, sizeof(u), "https://127.0.0.1:%d/ok", g_fs.port);
	args = json_pack("{s:s}", "url", u);
	assert_int_equal(drb_action_http.fn(&f->ctx, args, &r, &e), DRB_EDENIED);
	json_decref(args);
	assert_false(drb_code_retryable(e.code));
	assert_non_null(strstr(e.msg, "TLS verification failed"));
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_get_echo),	      T(test_post_json),     T(test_non_2xx_is_result),
	    T(test_mode_of),	      T(test_url_redaction), T(test_big_truncated),
	    T(test_transport_errors), T(test_bad_args),	     T(test_tls_failure),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
