/* Tests for src/providers/http/http.c: one attempt against a misbehaving local server, error
 * mapping, caps, retries (throttling, 5xx, Retry-After, no retry storm) and the backoff. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include <drbook/http.h>
#include <drbook/util.h>

#include "test_server.h"

static test_server g_fs;

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

static void url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "%s%s", g_fs.base, path);
}

/* How many requests the server saw for a key: the server's side of "exactly N attempts". */
static long server_count(const char *key)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};
	long n;

	snprintf(u, sizeof(u), "%s/count/%s", g_fs.base, key);
	r.url = u;
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.status, 200);
	n = strtol(resp.body, NULL, 10);
	drb_http_resp_free(&resp);
	return n;
}

static int closed_port(void);

/* Recognises AWS throttling in a 400 answer, in XML or JSON form. */
static int classify_throttling(void *ud, const drb_http_resp *r)
{
	int *calls = ud;

	(*calls)++;
	return r->status == 400 && r->body && strstr(r->body, "Throttling") != NULL;
}

/* A plain GET returns status, body, lowercase headers and a latency. */
static void test_ok(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};

	url(u, sizeof(u), "/ok");
	r.url = u;
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 2);
	assert_string_equal(resp.body, "ok");
	assert_string_equal(json_string_value(json_object_get(resp.headers, "content-type")),
			    "text/plain");
	assert_true(resp.latency_ms > 0);
	assert_int_equal(resp.truncated, 0);
	drb_http_resp_free(&resp);
	drb_http_resp_free(&resp); /* idempotent */
	drb_http_resp_free(NULL);
}

/* Body and headers reach the server as given; no form content type is invented. */
static void test_post_echo(void **state)
{
	static const char *const hdrs[] = {"X-Test: one two", "Content-Type: application/json",
					   NULL};
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};
	json_t *doc = NULL;

	url(u, sizeof(u), "/echo");
	r.url = u;
	r.method = "PUT";
	r.headers = hdrs;
	r.body = "{\"a\":1}";
	r.body_len = 7;
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.status, 200);
	doc = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "method")), "PUT");
	assert_string_equal(json_string_value(json_object_get(doc, "body")), "{\"a\":1}");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(doc, "headers"), "x-test")),
	    "one two");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(doc, "headers"), "content-type")),
	    "application/json");
	assert_null(json_object_get(json_object_get(doc, "headers"), "expect"));
	json_decref(doc);
	drb_http_resp_free(&resp);

	/* Without a content type of its own a body is sent without one, not as a form. */
	r.headers = NULL;
	r.method = "POST";
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	doc = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(doc);
	assert_null(json_object_get(json_object_get(doc, "headers"), "content-type"));
	json_decref(doc);
	drb_http_resp_free(&resp);
}

/* Throttled twice (400 + Throttling body), then success: three attempts, classify asked. */
static void test_throttle_then_success(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.01, .cap_s = 0.05, .classify = classify_throttling};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0, calls = 0;

	p.ud = &calls;
	url(u, sizeof(u), "/throttle/2/thr-xml");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(attempts, 3);
	assert_int_equal(calls, 3);
	drb_http_resp_free(&resp);

	url(u, sizeof(u), "/throttle/2/thr-json?fmt=json");
	attempts = 0;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(attempts, 3);
	drb_http_resp_free(&resp);
	assert_int_equal(server_count("thr-json"), 3);
}

/* 503 is retried without any classify callback. */
static void test_503_retried(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.01, .cap_s = 0.05};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;

	url(u, sizeof(u), "/503/2/five03");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(attempts, 3);
	drb_http_resp_free(&resp);
}

/* A server that keeps failing gets exactly max_attempts requests, and the caller sees the
 * last answer's status. */
static void test_max_attempts(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.max_attempts = 3, .base_s = 0.01, .cap_s = 0.05};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;

	url(u, sizeof(u), "/503/100/storm");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(attempts, 3);
	drb_http_resp_free(&resp);
	assert_int_equal(server_count("storm"), 3);
}

/* A 4xx that is not throttling is final: one attempt, even with a classify callback, and a
 * throttling body is not retried when no callback recognises it. */
static void test_400_not_retried(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.01, .classify = classify_throttling};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0, calls = 0;

	p.ud = &calls;
	url(u, sizeof(u), "/status/400");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 400);
	assert_int_equal(attempts, 1);
	drb_http_resp_free(&resp);

	p.classify = NULL;
	url(u, sizeof(u), "/throttle/5/unclassified");
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 400);
	assert_int_equal(attempts, 1);
	drb_http_resp_free(&resp);
	assert_int_equal(server_count("unclassified"), 1);

	url(u, sizeof(u), "/status/404");
	assert_int_equal(drb_http_perform_retry(&r, NULL, &resp, &attempts, &e), 0);
	assert_int_equal(resp.status, 404);
	assert_int_equal(attempts, 1);
	drb_http_resp_free(&resp);
}

/* The retry classification, status by status and error class by error class: only 5xx,
 * 429, transport failures and timeouts are tried again; every other answer (a 403 above all)
 * and every other error (TLS refused, invalid request or reply, over the cap) is final. */
static void test_retry_classification(void **state)
{
	static const struct {
		long status;
		int retried;
	} statuses[] = {{200, 0}, {201, 0}, {204, 0}, {304, 0}, {400, 0}, {401, 0}, {403, 0},
			{404, 0}, {405, 0}, {409, 0}, {410, 0}, {412, 0}, {413, 0}, {422, 0},
			{429, 1}, {500, 1}, {501, 1}, {502, 1}, {503, 1}, {504, 1}, {599, 1}};
	struct {
		char path[64];
		double timeout_s;
		size_t max_response;
		int code;
		int retried;
	} errors[] = {
	    {"/reset", 0, 0, DRB_ETRANSIENT, 1},     {"closed", 0, 0, DRB_ETRANSIENT, 1},
	    {"/slow/3", 0.3, 0, DRB_ETIMEOUT, 1},    {"tls", 0, 0, DRB_EDENIED, 0},
	    {"/garbage", 0, 0, DRB_EINVAL, 0},	     {"ftp", 0, 0, DRB_EINVAL, 0},
	    {"/big/100000", 0, 1000, DRB_ELIMIT, 0},
	};
	drb_http_retry p = {.max_attempts = 3, .base_s = 0.01, .cap_s = 0.02};
	char u[256], path[64];

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		drb_http_req r = {0};
		drb_http_resp resp;
		drb_err e = {0};
		int attempts = 0;

		snprintf(path, sizeof(path), "/status/%ld", statuses[i].status);
		url(u, sizeof(u), path);
		r.url = u;
		assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
		assert_int_equal(resp.status, statuses[i].status);
		if (attempts != (statuses[i].retried ? 3 : 1))
			fail_msg("status %ld: %d attempts", statuses[i].status, attempts);
		drb_http_resp_free(&resp);
	}
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		drb_http_req r = {0};
		drb_http_resp resp;
		drb_err e = {0};
		int attempts = 0, rc;

		if (!strcmp(errors[i].path, "closed"))
			snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", closed_port());
		else if (!strcmp(errors[i].path, "tls"))
			snprintf(u, sizeof(u), "https://127.0.0.1:%d/ok", g_fs.port);
		else if (!strcmp(errors[i].path, "ftp"))
			snprintf(u, sizeof(u), "ftp://127.0.0.1:%d/ok", g_fs.port);
		else
			url(u, sizeof(u), errors[i].path);
		r.url = u;
		r.timeout_s = errors[i].timeout_s;
		r.max_response = errors[i].max_response;
		rc = drb_http_perform_retry(&r, &p, &resp, &attempts, &e);
		if (rc != errors[i].code || attempts != (errors[i].retried ? 3 : 1))
			fail_msg("%s: code %d (want %d), %d attempts: %s", errors[i].path, rc,
				 errors[i].code, attempts, e.msg);
		drb_http_resp_free(&resp);
	}
}

/* A connection closed with RST is transient, with the CURLcode as the cause. */
static void test_reset_transient(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};

	url(u, sizeof(u), "/reset");
	r.url = u;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_ETRANSIENT);
	assert_int_equal(e.code, DRB_ETRANSIENT);
	assert_true(e.cause == CURLE_RECV_ERROR || e.cause == CURLE_GOT_NOTHING ||
		    e.cause == CURLE_SEND_ERROR);
	assert_non_null(strstr(e.msg, "connection failed"));
	assert_null(resp.body);
	drb_http_resp_free(&resp);
}

/* A server slower than the timeout: DRB_ETIMEOUT, and on time. */
static void test_slow_timeout(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};
	double t0 = drb_mono_now(), took;

	url(u, sizeof(u), "/slow/5");
	r.url = u;
	r.timeout_s = 0.8;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_ETIMEOUT);
	took = drb_mono_now() - t0;
	assert_true(took >= 0.7);
	assert_true(took < 0.8 + 1.0);
	assert_int_equal(e.cause, CURLE_OPERATION_TIMEDOUT);
	drb_http_resp_free(&resp);
}

/* Bytes that are not HTTP are an error (not an answer with status 0), and not retried. */
static void test_garbage(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;

	url(u, sizeof(u), "/garbage");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, NULL, &resp, &attempts, &e), DRB_EINVAL);
	assert_int_equal(attempts, 1);
	assert_int_equal(resp.status, 0);
	drb_http_resp_free(&resp);
}

/* A body over the cap fails with DRB_ELIMIT, or is cut when the caller allows it. */
static void test_big_over_cap(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};

	url(u, sizeof(u), "/big/2000000");
	r.url = u;
	r.max_response = 100000;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_ELIMIT);
	assert_non_null(strstr(e.msg, "response larger than 100000 bytes"));
	assert_null(resp.body);

	r.allow_truncate = 1;
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.truncated, 1);
	assert_int_equal(resp.body_len, 100000);
	assert_int_equal(resp.body[99999], 'a');
	drb_http_resp_free(&resp);

	/* Exactly at the cap is fine. */
	url(u, sizeof(u), "/big/100000");
	r.allow_truncate = 0;
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.body_len, 100000);
	assert_int_equal(resp.truncated, 0);
	drb_http_resp_free(&resp);
}

/* 429 with Retry-After: 1 makes the client wait at least that long, not the tiny backoff. */
static void test_retry_after(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.001, .cap_s = 5};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;
	double t0 = drb_mono_now(), took;

	url(u, sizeof(u), "/retry-after/1/ra");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	took = drb_mono_now() - t0;
	assert_int_equal(resp.status, 200);
	assert_int_equal(attempts, 2);
	assert_true(took >= 1.0);
	assert_true(took < 3.0);
	drb_http_resp_free(&resp);
}

/* Retry-After is capped by cap_s: a server cannot park the client. */
static void test_retry_after_capped(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.001, .cap_s = 0.2};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;
	double t0 = drb_mono_now(), took;

	url(u, sizeof(u), "/retry-after/1/ra-capped");
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), 0);
	took = drb_mono_now() - t0;
	assert_int_equal(attempts, 2);
	assert_true(took < 0.9);
	drb_http_resp_free(&resp);
}

/* https to a plain-HTTP port fails the TLS handshake: denied, said so, not retried. */
static void test_https_to_plain(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.base_s = 0.01};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;

	snprintf(u, sizeof(u), "https://127.0.0.1:%d/ok", g_fs.port);
	r.url = u;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), DRB_EDENIED);
	assert_int_equal(attempts, 1);
	assert_non_null(strstr(e.msg, "TLS verification failed"));
	drb_http_resp_free(&resp);
}

/* A free port nobody listens on. */
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

/* Connection refused is transient and retried up to max_attempts; the message names the
 * origin only: no header value, no path, no user:password. */
static void test_refused_no_secrets(void **state)
{
	static const char *const hdrs[] = {"Authorization: Bearer SECRETTOKEN", NULL};
	char u[256];
	drb_http_req r = {0};
	drb_http_retry p = {.max_attempts = 2, .base_s = 0.01};
	drb_http_resp resp;
	drb_err e = {0};
	int attempts = 0;

	snprintf(u, sizeof(u), "http://user:SECRETPASS@127.0.0.1:%d/hook/SECRETPATH?k=SECRETQ",
		 closed_port());
	r.url = u;
	r.headers = hdrs;
	assert_int_equal(drb_http_perform_retry(&r, &p, &resp, &attempts, &e), DRB_ETRANSIENT);
	assert_int_equal(attempts, 2);
	assert_int_equal(e.cause, CURLE_COULDNT_CONNECT);
	assert_non_null(strstr(e.msg, "after 2 attempts: GET http://127.0.0.1:"));
	assert_null(strstr(e.msg, "SECRET"));
	drb_http_resp_free(&resp);
}

/* Refusals before any I/O: other schemes, bad methods, header injection, no URL. */
static void test_invalid_requests(void **state)
{
	static const char *const inj[] = {"X-A: 1\r\nX-Evil: 2", NULL};
	static const char *const noname[] = {": v", NULL};
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};

	r.url = "file:///etc/passwd";
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	r.url = "ftp://127.0.0.1/x";
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	r.url = "http://[not a url";
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	r.url = NULL;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	url(u, sizeof(u), "/echo");
	r.url = u;
	r.method = "GET /x HTTP/1.1\r\n";
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	r.method = "get";
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	r.method = NULL;
	r.headers = inj;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	assert_null(strstr(e.msg, "Evil"));
	r.headers = noname;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINVAL);
	drb_http_resp_free(&resp);
}

/* A cancelled run stops a transfer in flight quickly. */
static void test_cancel(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};
	volatile int cancel = 1;
	double t0 = drb_mono_now();

	url(u, sizeof(u), "/slow/5");
	r.url = u;
	r.cancel = &cancel;
	assert_int_equal(drb_http_perform(&r, &resp, &e), DRB_EINTERRUPTED);
	assert_true(drb_mono_now() - t0 < 2.5);
	drb_http_resp_free(&resp);
}

/* HEAD gets the headers and no body. */
static void test_head(void **state)
{
	char u[256];
	drb_http_req r = {0};
	drb_http_resp resp;
	drb_err e = {0};

	url(u, sizeof(u), "/ok");
	r.url = u;
	r.method = "HEAD";
	assert_int_equal(drb_http_perform(&r, &resp, &e), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 0);
	assert_string_equal(json_string_value(json_object_get(resp.headers, "content-length")),
			    "2");
	drb_http_resp_free(&resp);
}

/* Backoff stays within [0, min(cap, base*2^n)], grows, reaches the cap, survives silly
 * input; the random unit is in [0, 1) and varies. */
static void test_backoff(void **state)
{
	static const double us[] = {0, 0.25, 0.5, 0.999, 1};
	double prev = -1;
	int n, i, differ = 0;

	for (n = 0; n < 64; n++) {
		double ceiling = 0.2 * (double)(1ULL << (n < 62 ? n : 62));

		if (ceiling > 20)
			ceiling = 20;
		for (i = 0; i < 5; i++) {
			double d = drb_backoff_delay(0.2, 20, n, us[i]);

			assert_true(d >= 0);
			assert_true(d <= ceiling + 1e-12);
		}
		assert_true(drb_backoff_delay(0.2, 20, n, 1) >= prev);
		prev = drb_backoff_delay(0.2, 20, n, 1);
	}
	assert_true(drb_backoff_delay(0.2, 20, 0, 1) == 0.2);
	assert_true(drb_backoff_delay(0.2, 20, 3, 1) == 1.6);
	assert_true(drb_backoff_delay(0.2, 20, 3, 0.5) == 0.8);
	assert_true(drb_backoff_delay(0.2, 20, 7, 1) == 20); /* 25.6 capped */
	assert_true(drb_backoff_delay(0.2, 20, 100000, 1) == 20);
	assert_true(drb_backoff_delay(0.2, 20, -5, 1) == 0.2);
	assert_true(drb_backoff_delay(0.2, 20, 2, 7) == 0.8);
	assert_true(drb_backoff_delay(0.2, 20, 2, -1) == 0);
	assert_true(drb_backoff_delay(0.2, 20, 2, NAN) == 0);
	assert_true(drb_backoff_delay(0, 20, 2, 1) == 0);
	for (i = 0; i < 100; i++) {
		double a = drb_random_unit(), b = drb_random_unit();

		assert_true(a >= 0 && a < 1);
		differ += a != b;
	}
	assert_true(differ > 90);
}

/* Binary bytes become valid JSON text; valid UTF-8 passes untouched. */
static void test_json_text(void **state)
{
	json_t *j = drb_http_json_text("h\xc3\xa9!", 4);

	assert_non_null(j);
	assert_string_equal(json_string_value(j), "h\xc3\xa9!");
	json_decref(j);
	j = drb_http_json_text("a\xff"
			       "b\xc3",
			       4);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "a\xef\xbf\xbd"
						  "b\xef\xbf\xbd");
	json_decref(j);
	j = drb_http_json_text("\xed\xa0\x80", 3); /* a surrogate is not UTF-8 */
	assert_int_equal(json_string_length(j), 9);
	json_decref(j);
	j = drb_http_json_text(NULL, 0);
	assert_string_equal(json_string_value(j), "");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_post_echo),
	    cmocka_unit_test(test_head),
	    cmocka_unit_test(test_throttle_then_success),
	    cmocka_unit_test(test_503_retried),
	    cmocka_unit_test(test_max_attempts),
	    cmocka_unit_test(test_400_not_retried),
	    cmocka_unit_test(test_retry_classification),
	    cmocka_unit_test(test_reset_transient),
	    cmocka_unit_test(test_slow_timeout),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_big_over_cap),
	    cmocka_unit_test(test_retry_after),
	    cmocka_unit_test(test_retry_after_capped),
	    cmocka_unit_test(test_https_to_plain),
	    cmocka_unit_test(test_refused_no_secrets),
	    cmocka_unit_test(test_invalid_requests),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_json_text),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
