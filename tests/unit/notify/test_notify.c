/* Tests for src/providers/notify: the exact bodies a fake Slack webhook and PagerDuty endpoint
 * receive (tests/unit/notify/fake_hooks.py), drill prefix and severity mapping, retries on
 * 5xx/429 and none on 4xx, configuration from the environment and files, secrets kept out of
 * call records, answers and errors, and the SNS channel through a replaying seam. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <drbook/action.h>
#include <drbook/http.h>
#include <drbook/notify.h>
#include <drbook/util.h>

#include "test_server.h"
#include "providers/notify/notify_int.h"

static test_server g_srv;

#define SLACK_TOKEN "XSLACKSECRETTOKEN0000000001"
#define SLACK_PATH "/services/T0000AAAA/B0000BBBB/" SLACK_TOKEN
#define ROUTING_KEY "R0UTINGKEY0123456789abcdefSECRET"

/* ---- a seam that records every call, and performs it or answers from a queue ------------ */

typedef struct rec_seam {
	drb_seam seam;
	json_t *records; /* [{service, operation, region, request, response?, error?}] */
	int replay;	 /* 1: answer from answers[], never perform */
	json_t *answers[8];
	int n_answers, next;
} rec_seam;

static int rec_seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
			 json_t **response, drb_err *err)
{
	rec_seam *r = s->ud;
	json_t *rec = json_pack("{s:s, s:s, s:s?, s:O?}", "service", c->service, "operation",
				c->operation, "region", c->region, "request", c->request);
	int rc;

	*response = NULL;
	if (r->replay) {
		if (r->next >= r->n_answers) {
			rc = drb_err_set(err, DRB_EINTEGRITY, "replay: no recorded answer left");
		} else {
			*response = r->answers[r->next];
			r->answers[r->next++] = NULL;
			rc = 0;
		}
	} else {
		rc = perform(arg, response, err);
	}
	if (*response)
		json_object_set(rec, "response", *response);
	if (rc)
		json_object_set_new(rec, "error", json_string(err->msg));
	json_array_append_new(r->records, rec);
	return rc;
}

typedef struct fixture {
	rec_seam seam;
	drb_action_ctx ctx;
	char tmpfile[64];
} fixture;

/* ---- helpers -------------------------------------------------------------------------------- */

static const char *const config_vars[] = {"DRBOOK_SLACK_WEBHOOK_URL",
					  "DRBOOK_SLACK_WEBHOOK_URL_FILE",
					  "DRBOOK_PAGERDUTY_ROUTING_KEY",
					  "DRBOOK_PAGERDUTY_ROUTING_KEY_FILE",
					  "DRBOOK_PAGERDUTY_URL",
					  "DRBOOK_SNS_TOPIC_ARN",
					  "DRBOOK_SNS_TOPIC_ARN_FILE",
					  "OPS_HOOK",
					  "OPS_HOOK_FILE",
					  "AWS_ACCESS_KEY_ID",
					  "AWS_SECRET_ACCESS_KEY",
					  "AWS_SESSION_TOKEN",
					  "AWS_PROFILE",
					  "AWS_REGION",
					  "AWS_DEFAULT_REGION",
					  "AWS_ENDPOINT_URL",
					  "AWS_ENDPOINT_URL_SNS",
					  NULL};

/* One request to the fake server (its control pages), outside the code under test. */
static json_t *server_get(const char *method, const char *path)
{
	char url[256];
	drb_http_req req = {.method = method, .url = url, .timeout_s = 10};
	drb_http_resp resp;
	drb_err e = {0};
	json_t *doc = NULL;

	snprintf(url, sizeof(url), "%s%s", g_srv.base, path);
	if (drb_http_perform(&req, &resp, &e) != 0) {
		fprintf(stderr, "fake server: %s\n", e.msg);
		return NULL;
	}
	if (resp.status == 200)
		doc = json_loadb(resp.body, resp.body_len, 0, NULL);
	drb_http_resp_free(&resp);
	return doc;
}

/* The requests the fake server received since the last reset. */
static json_t *received(void)
{
	json_t *r = server_get("GET", "/_requests");

	assert_non_null(r);
	assert_true(json_is_array(r));
	return r;
}

static void reset_server(void)
{
	json_t *r = server_get("POST", "/_reset");

	assert_non_null(r);
	json_decref(r);
}

static void set_slack(const char *path)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", g_srv.base, path);
	setenv("DRBOOK_SLACK_WEBHOOK_URL", url, 1);
}

static void set_pagerduty(const char *query)
{
	char url[512];

	snprintf(url, sizeof(url), "%s/v2/enqueue%s", g_srv.base, query ? query : "");
	setenv("DRBOOK_PAGERDUTY_URL", url, 1);
	setenv("DRBOOK_PAGERDUTY_ROUTING_KEY", ROUTING_KEY, 1);
}

static int run(fixture *f, const char *args_json, json_t **result, drb_err *e)
{
	json_error_t je;
	json_t *args = json_loads(args_json, 0, &je);
	int rc;

	if (!args)
		fail_msg("bad test JSON: %s: %s", args_json, je.text);
	memset(e, 0, sizeof(*e));
	*result = NULL;
	rc = drb_notify_actions[0]->fn(&f->ctx, args, result, e);
	json_decref(args);
	return rc;
}

/* Asserts that no secret appears in the call records, the error message or the result. */
static void assert_no_secrets(fixture *f, const drb_err *e, const json_t *result)
{
	char *recs = json_dumps(f->seam.records, JSON_COMPACT);
	char *res = result ? json_dumps(result, JSON_COMPACT) : NULL;
	const char *secrets[] = {SLACK_TOKEN, "/services/T0000AAAA", ROUTING_KEY, NULL};

	assert_non_null(recs);
	for (int i = 0; secrets[i]; i++) {
		if (strstr(recs, secrets[i]))
			fail_msg("secret '%s' in the call records: %s", secrets[i], recs);
		if (strstr(e->msg, secrets[i]))
			fail_msg("secret '%s' in the error: %s", secrets[i], e->msg);
		if (res && strstr(res, secrets[i]))
			fail_msg("secret '%s' in the result: %s", secrets[i], res);
	}
	free(recs);
	free(res);
}

static const json_t *record(fixture *f, size_t i)
{
	const json_t *r = json_array_get(f->seam.records, i);

	assert_non_null(r);
	return r;
}

static void hostname(char *out, size_t n)
{
	if (gethostname(out, n) != 0 || !out[0])
		snprintf(out, n, "drbook");
	out[n - 1] = '\0';
}

/* ---- fixtures ------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	if (drb_http_global_init() != 0)
		return -1;
	return test_server_start(&g_srv, "tests/unit/notify/fake_hooks.py");
}

static int group_teardown(void **state)
{
	test_server_stop(&g_srv);
	drb_http_global_cleanup();
	return 0;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	json_t *r;

	if (!f)
		return -1;
	for (int i = 0; config_vars[i]; i++)
		unsetenv(config_vars[i]);
	/* The SNS tests must not read the machine's AWS configuration. */
	setenv("AWS_CONFIG_FILE", "/nonexistent/drbook-test/config", 1);
	/* Without credentials the chain would ask 169.254.169.254, off this machine. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drbook-test/credentials", 1);
	r = server_get("POST", "/_reset");
	if (!r) {
		free(f);
		return -1;
	}
	json_decref(r);
	f->seam.seam.call = rec_seam_call;
	f->seam.seam.ud = &f->seam;
	f->seam.records = json_array();
	f->ctx.seam = &f->seam.seam;
	f->ctx.step_id = "tell";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	for (int i = 0; i < f->seam.n_answers; i++)
		json_decref(f->seam.answers[i]);
	json_decref(f->seam.records);
	if (f->tmpfile[0])
		unlink(f->tmpfile);
	free(f);
	return 0;
}

/* ---- Slack ---------------------------------------------------------------------------------- */

/* The body is exactly {"text": emoji + text}, with Slack's three entities escaped; the call
 * record names the channel and the variable, never the URL. */
static void test_slack_exact_body(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	const json_t *r0, *rec;
	drb_err e;

	set_slack(SLACK_PATH);
	assert_int_equal(run(f,
			     "{\"channel\": \"slack\", \"text\": \"db <failover> & co\","
			     " \"severity\": \"warning\"}",
			     &res, &e),
			 0);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 1);
	r0 = json_array_get(reqs, 0);
	assert_string_equal(json_string_value(json_object_get(r0, "path")), SLACK_PATH);
	assert_string_equal(json_string_value(json_object_get(r0, "body")),
			    "{\"text\":\":warning: db &lt;failover&gt; &amp; co\"}");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r0, "headers"), "content-type")),
	    "application/json");
	assert_true(json_is_true(json_object_get(res, "delivered")));
	assert_string_equal(json_string_value(json_object_get(res, "channel")), "slack");
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 200);
	assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 1);
	rec = record(f, 0);
	assert_string_equal(json_string_value(json_object_get(rec, "service")), "notify");
	assert_string_equal(json_string_value(json_object_get(rec, "operation")), "slack");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "request"), "webhook_env")),
	    "DRBOOK_SLACK_WEBHOOK_URL");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(json_object_get(rec, "request"), "body"), "text")),
			    ":warning: db &lt;failover&gt; &amp; co");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(rec, "response"), "origin")),
	    g_srv.base);
	assert_no_secrets(f, &e, res);
	json_decref(reqs);
	json_decref(res);
}

/* In a drill the text starts "[DRILL] "; severity defaults to info. */
static void test_slack_drill_prefix(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	drb_err e;

	set_slack(SLACK_PATH);
	f->ctx.drill = 1;
	assert_int_equal(
	    run(f, "{\"channel\": \"slack\", \"text\": \"failover started\"}", &res, &e), 0);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "body")),
			    "{\"text\":\":information_source: [DRILL] failover started\"}");
	json_decref(reqs);
	json_decref(res);
}

/* Each severity maps to its emoji on Slack and to the same word on PagerDuty. */
static void test_severity_mapping(void **state)
{
	fixture *f = *state;
	static const char *const sev[] = {"info", "warning", "error", "critical"};
	static const char *const emoji[] = {
	    ":information_source:", ":warning:", ":x:", ":rotating_light:"};
	json_t *reqs;

	set_slack(SLACK_PATH);
	set_pagerduty(NULL);
	for (int i = 0; i < 4; i++) {
		char args[256], want[256];
		json_t *res = NULL, *body;
		drb_err e;

		snprintf(args, sizeof(args),
			 "{\"channel\": \"slack\", \"text\": \"t\", \"severity\": \"%s\"}", sev[i]);
		assert_int_equal(run(f, args, &res, &e), 0);
		json_decref(res);
		snprintf(args, sizeof(args),
			 "{\"channel\": \"pagerduty\", \"text\": \"t\", \"severity\": \"%s\"}",
			 sev[i]);
		assert_int_equal(run(f, args, &res, &e), 0);
		json_decref(res);
		reqs = received();
		assert_int_equal(json_array_size(reqs), 2 * (size_t)(i + 1));
		snprintf(want, sizeof(want), "{\"text\":\"%s t\"}", emoji[i]);
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(reqs, 2 * (size_t)i), "body")),
		    want);
		body = json_loads(json_string_value(json_object_get(
				      json_array_get(reqs, 2 * (size_t)i + 1), "body")),
				  0, NULL);
		assert_non_null(body);
		assert_string_equal(json_string_value(json_object_get(
					json_object_get(body, "payload"), "severity")),
				    sev[i]);
		json_decref(body);
		json_decref(reqs);
	}
}

/* ---- PagerDuty ------------------------------------------------------------------------------ */

/* The Events v2 body is exactly the documented trigger; the record has "***" for the key
 * and only the endpoint's origin; the result carries the dedup key. */
static void test_pagerduty_exact_body(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs, *want;
	const json_t *r0, *req;
	char host[256], *want_s;
	drb_err e;

	hostname(host, sizeof(host));
	set_pagerduty(NULL);
	f->ctx.drill = 1;
	assert_int_equal(run(f,
			     "{\"channel\": \"pagerduty\", \"text\": \"primary down\","
			     " \"severity\": \"critical\", \"dedup_key\": \"rf-2026\"}",
			     &res, &e),
			 0);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 1);
	r0 = json_array_get(reqs, 0);
	assert_string_equal(json_string_value(json_object_get(r0, "path")), "/v2/enqueue");
	want = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s}}", "routing_key", ROUTING_KEY,
			 "event_action", "trigger", "dedup_key", "rf-2026", "payload", "summary",
			 "[DRILL] primary down", "severity", "critical", "source", host,
			 "component", "drbook");
	want_s = json_dumps(want, JSON_COMPACT);
	assert_string_equal(json_string_value(json_object_get(r0, "body")), want_s);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r0, "headers"), "content-type")),
	    "application/json");
	assert_true(json_is_true(json_object_get(res, "delivered")));
	assert_string_equal(json_string_value(json_object_get(res, "channel")), "pagerduty");
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 202);
	assert_string_equal(json_string_value(json_object_get(res, "dedup_key")), "rf-2026");
	req = json_object_get(record(f, 0), "request");
	assert_string_equal(json_string_value(json_object_get(record(f, 0), "operation")),
			    "pagerduty");
	assert_string_equal(json_string_value(json_object_get(req, "url")), g_srv.base);
	assert_string_equal(json_string_value(json_object_get(req, "routing_key_env")),
			    "DRBOOK_PAGERDUTY_ROUTING_KEY");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(req, "body"), "routing_key")), "***");
	assert_no_secrets(f, &e, res);
	free(want_s);
	json_decref(want);
	json_decref(reqs);
	json_decref(res);
}

/* Without a dedup_key none is sent and the result holds the one PagerDuty made up. */
static void test_pagerduty_dedup_from_answer(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs, *body;
	drb_err e;

	set_pagerduty(NULL);
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"lag high\"}", &res, &e),
			 0);
	reqs = received();
	body = json_loads(json_string_value(json_object_get(json_array_get(reqs, 0), "body")), 0,
			  NULL);
	assert_non_null(body);
	assert_null(json_object_get(body, "dedup_key"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(body, "payload"), "severity")),
	    "info");
	assert_string_equal(json_string_value(json_object_get(res, "dedup_key")), "srv-key-1");
	json_decref(body);
	json_decref(reqs);
	json_decref(res);
}

/* A text longer than PagerDuty's summary limit is cut at a character boundary, and sent
 * whole in custom_details. */
static void test_pagerduty_long_summary(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs, *body, *args;
	const char *summary;
	char *text = malloc(3001);
	drb_err e;

	assert_non_null(text);
	for (int i = 0; i < 1000; i++)
		memcpy(text + 3 * i, "\xe2\x82\xac", 3); /* euro signs: 3 bytes each */
	text[3000] = '\0';
	set_pagerduty(NULL);
	args = json_pack("{s:s, s:s}", "channel", "pagerduty", "text", text);
	assert_int_equal(drb_notify_actions[0]->fn(&f->ctx, args, &res, &e), 0);
	reqs = received();
	body = json_loads(json_string_value(json_object_get(json_array_get(reqs, 0), "body")), 0,
			  NULL);
	assert_non_null(body);
	summary = json_string_value(json_object_get(json_object_get(body, "payload"), "summary"));
	assert_non_null(summary);
	assert_true(strlen(summary) <= DRB_NOTIFY_PD_SUMMARY_MAX);
	assert_int_equal(strlen(summary), 1020 + 3);  /* 340 whole euro signs, then "..." */
	assert_null(strstr(summary, "\xef\xbf\xbd")); /* no U+FFFD: nothing was cut in half */
	assert_string_equal(summary + 1020, "...");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(body, "payload"), "custom_details"), "text")),
	    text);
	json_decref(body);
	json_decref(reqs);
	json_decref(args);
	json_decref(res);
	free(text);
}

/* An endpoint that answers 200 is not PagerDuty (which answers 202): not delivered. */
static void test_pagerduty_needs_202(void **state)
{
	fixture *f = *state;
	char url[256];
	json_t *res = NULL;
	drb_err e;

	set_pagerduty(NULL);
	snprintf(url, sizeof(url), "%s/not-pagerduty", g_srv.base);
	setenv("DRBOOK_PAGERDUTY_URL", url, 1);
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_ERR);
	assert_null(res);
	assert_non_null(strstr(e.msg, "HTTP 200"));
	assert_non_null(strstr(e.msg, "202"));
	assert_int_equal(e.cause, 200);
}

/* ---- retries and errors --------------------------------------------------------------------- */

/* 5xx is retried by the HTTP client: two 503s then 200 is one delivery in three attempts;
 * PagerDuty's 500 likewise. */
static void test_retry_on_5xx(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	drb_err e;

	set_slack(SLACK_PATH "?fail=503&times=2&key=s5");
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 3);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 3);
	json_decref(reqs);
	json_decref(res);
	reset_server();
	set_pagerduty("?fail=500&times=1&key=p5");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 2);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 2);
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(record(f, 1), "response"), "attempts")),
			 2);
	json_decref(reqs);
	json_decref(res);
}

/* 429 (PagerDuty's throttling) is retried after Retry-After. */
static void test_retry_on_429(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	double t0 = drb_mono_now();
	drb_err e;

	set_pagerduty("?fail=429&times=1&key=t1");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e), 0);
	assert_true(drb_mono_now() - t0 >= 0.9); /* Retry-After: 1 was honoured */
	assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 2);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 2);
	json_decref(reqs);
	json_decref(res);
}

/* A 400 is an error at once: one request, DRB_EINVAL, the answer's words in the message. */
static void test_no_retry_on_400(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	drb_err e;

	set_slack(SLACK_PATH "?fail=400");
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_null(res);
	assert_string_equal(e.msg, "notify slack: HTTP 400: invalid_payload");
	assert_int_equal(e.cause, 400);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 1);
	json_decref(reqs);
	set_pagerduty("?fail=400");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_string_equal(
	    e.msg, "notify pagerduty: HTTP 400: Event object is invalid (routing_key rejected)");
	reqs = received();
	assert_int_equal(json_array_size(reqs), 2);
	json_decref(reqs);
	assert_no_secrets(f, &e, NULL);
}

/* Each answer class maps to the code callers branch on; a 5xx that persists is transient
 * after the client's four attempts. */
static void test_error_codes(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *path;
		int code;
		size_t requests;
	} cases[] = {
	    {SLACK_PATH "?fail=403", DRB_EDENIED, 1},	 {SLACK_PATH "?fail=404", DRB_ENOTFOUND, 1},
	    {SLACK_PATH "?fail=410", DRB_ENOTFOUND, 1},	 {SLACK_PATH "?fail=418", DRB_ERR, 1},
	    {SLACK_PATH "?fail=503", DRB_ETRANSIENT, 4},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *res = NULL, *reqs;
		drb_err e;

		reset_server();
		set_slack(cases[i].path);
		assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
				 cases[i].code);
		assert_null(res);
		reqs = received();
		assert_int_equal(json_array_size(reqs), cases[i].requests);
		json_decref(reqs);
		if (cases[i].requests > 1)
			assert_non_null(strstr(e.msg, "after 4 attempts: HTTP 503"));
		assert_no_secrets(f, &e, NULL);
	}
}

/* A server that quotes the URL and the body back (routing key included) does not get the
 * secrets into the record, the message or the result. */
static void test_secrets_scrubbed_from_answers(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	drb_err e;

	set_slack(SLACK_PATH "?fail=400&echo=1");
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "invalid_payload for ***"));
	assert_no_secrets(f, &e, NULL);
	set_pagerduty("?fail=400&echo=1");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "\"routing_key\":\"***\""));
	assert_no_secrets(f, &e, NULL);
	/* and a 422 that echoes, recorded whole in the response body */
	set_pagerduty("?fail=422&echo=1");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(
	    json_string_value(json_object_get(json_object_get(record(f, 2), "response"), "body")),
	    "***"));
	assert_no_secrets(f, &e, NULL);
}

/* A port nobody listens on: a transport error after retries, naming the origin only. */
static void test_connection_refused(void **state)
{
	fixture *f = *state;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	char url[256];
	json_t *res = NULL;
	drb_err e;
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	/* a free port: bind, read it, close (nothing listens there afterwards) */
	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d" SLACK_PATH, port);
	setenv("DRBOOK_SLACK_WEBHOOK_URL", url, 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_ETRANSIENT);
	assert_non_null(strstr(e.msg, "notify slack: "));
	assert_non_null(strstr(e.msg, "after 4 attempts"));
	assert_no_secrets(f, &e, NULL);
	assert_non_null(json_object_get(record(f, 0), "error"));
}

/* ---- configuration -------------------------------------------------------------------------- */

/* Missing configuration is DRB_EINVAL naming the variable, and nothing is sent. */
static void test_missing_configuration(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	drb_err e;

	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_string_equal(e.msg, "notify slack: DRBOOK_SLACK_WEBHOOK_URL is not set (nor "
				   "DRBOOK_SLACK_WEBHOOK_URL_FILE)");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "DRBOOK_PAGERDUTY_ROUTING_KEY is not set"));
	assert_int_equal(run(f, "{\"channel\": \"sns\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "DRBOOK_SNS_TOPIC_ARN is not set"));
	assert_int_equal(
	    run(f, "{\"channel\": \"slack\", \"text\": \"x\", \"webhook_env\": \"OPS_HOOK\"}", &res,
		&e),
	    DRB_EINVAL);
	assert_non_null(strstr(e.msg, "OPS_HOOK is not set (nor OPS_HOOK_FILE)"));
	setenv("DRBOOK_SLACK_WEBHOOK_URL", "", 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "DRBOOK_SLACK_WEBHOOK_URL is empty"));
	set_slack(SLACK_PATH);
	setenv("DRBOOK_SLACK_WEBHOOK_URL_FILE", "/nonexistent", 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "both DRBOOK_SLACK_WEBHOOK_URL and "
				      "DRBOOK_SLACK_WEBHOOK_URL_FILE are set"));
	unsetenv("DRBOOK_SLACK_WEBHOOK_URL");
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_ENOTFOUND);
	assert_non_null(strstr(e.msg, "DRBOOK_SLACK_WEBHOOK_URL_FILE: /nonexistent"));
	setenv("DRBOOK_PAGERDUTY_ROUTING_KEY", "short", 1);
	setenv("DRBOOK_PAGERDUTY_URL", g_srv.base, 1);
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "DRBOOK_PAGERDUTY_ROUTING_KEY is not a routing key"));
	assert_null(strstr(e.msg, "short"));
	assert_null(res);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 0);
	json_decref(reqs);
}

/* The _FILE form: the file's contents without the trailing newline; per-call overrides name
 * other variables. */
static void test_configuration_from_files(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	char url[512];
	drb_err e;
	int fd;

	snprintf(f->tmpfile, sizeof(f->tmpfile), "/tmp/drbook-notify-XXXXXX");
	fd = mkstemp(f->tmpfile);
	assert_true(fd >= 0);
	snprintf(url, sizeof(url), "%s%s\n\n", g_srv.base, SLACK_PATH);
	assert_int_equal(write(fd, url, strlen(url)), (ssize_t)strlen(url));
	close(fd);
	setenv("OPS_HOOK_FILE", f->tmpfile, 1);
	assert_int_equal(
	    run(f, "{\"channel\": \"slack\", \"text\": \"x\", \"webhook_env\": \"OPS_HOOK\"}", &res,
		&e),
	    0);
	json_decref(res);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(record(f, 0), "request"), "webhook_env")),
			    "OPS_HOOK");
	set_pagerduty(NULL);
	unsetenv("DRBOOK_PAGERDUTY_ROUTING_KEY");
	fd = open(f->tmpfile, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ROUTING_KEY "\n", strlen(ROUTING_KEY) + 1),
			 (ssize_t)strlen(ROUTING_KEY) + 1);
	close(fd);
	setenv("DRBOOK_PAGERDUTY_ROUTING_KEY_FILE", f->tmpfile, 1);
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e), 0);
	json_decref(res);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "path")),
			    SLACK_PATH);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(reqs, 1), "body")),
			       "\"routing_key\":\"" ROUTING_KEY "\","));
	json_decref(reqs);
	assert_no_secrets(f, &e, NULL);
}

/* Webhook URLs: https, or plain http to loopback only; nothing else is sent to; the message
 * never quotes the URL. */
static void test_url_policy(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	drb_err e;

	setenv("DRBOOK_SLACK_WEBHOOK_URL", "http://hooks.example.com" SLACK_PATH, 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "must be an https:// URL"));
	assert_no_secrets(f, &e, NULL);
	setenv("DRBOOK_SLACK_WEBHOOK_URL", "ftp://hooks.example.com" SLACK_PATH, 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_no_secrets(f, &e, NULL);
	setenv("DRBOOK_SLACK_WEBHOOK_URL", "not a url " SLACK_TOKEN, 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e), DRB_EINVAL);
	assert_non_null(strstr(e.msg, "is not a URL"));
	assert_no_secrets(f, &e, NULL);
	/* The PagerDuty URL is checked before any call. */
	setenv("DRBOOK_PAGERDUTY_ROUTING_KEY", ROUTING_KEY, 1);
	setenv("DRBOOK_PAGERDUTY_URL", "http://events.example.com/v2/enqueue", 1);
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e),
			 DRB_EINVAL);
	assert_non_null(strstr(e.msg, "DRBOOK_PAGERDUTY_URL must be an https:// URL"));
	assert_null(res);
}

/* ---- arguments ------------------------------------------------------------------------------ */

/* Every refusal happens before anything is sent. */
static void test_argument_refusals(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *args;
		int code;
		const char *msg;
	} cases[] = {
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"colour\": \"red\"}", DRB_EINVAL,
	     "unknown argument 'colour'"},
	    {"{\"text\": \"x\"}", DRB_EINVAL, "argument 'channel' is required"},
	    {"{\"channel\": \"slack\"}", DRB_EINVAL, "argument 'text' is required"},
	    {"{\"channel\": \"email\", \"text\": \"x\"}", DRB_EINVAL,
	     "must be slack, pagerduty or sns"},
	    {"{\"channel\": \"slack\", \"text\": \"\"}", DRB_EINVAL, "must not be empty"},
	    {"{\"channel\": \"slack\", \"text\": 3}", DRB_EINVAL, "must be a string"},
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"severity\": \"fatal\"}", DRB_EINVAL,
	     "info, warning, error or critical"},
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"severity\": \"WARNING\"}", DRB_EINVAL,
	     "info, warning, error or critical"},
	    {"{\"channel\": \"pagerduty\", \"text\": \"x\", \"dedup_key\": \"\"}", DRB_EINVAL,
	     "'dedup_key' must be 1 to 255 bytes"},
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"topic_arn\": \"arn:aws:sns:x\"}",
	     DRB_EINVAL, "argument 'topic_arn' applies to channel sns only"},
	    {"{\"channel\": \"sns\", \"text\": \"x\", \"webhook_env\": \"X\"}", DRB_EINVAL,
	     "argument 'webhook_env' applies to channel slack only"},
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"routing_key_env\": \"X\"}", DRB_EINVAL,
	     "applies to channel pagerduty only"},
	    {"{\"channel\": \"pagerduty\", \"text\": \"x\", \"region\": \"eu-west-1\"}", DRB_EINVAL,
	     "argument 'region' applies to channel sns only"},
	    {"{\"channel\": \"slack\", \"text\": \"x\", \"webhook_env\": \"NOT-A-NAME\"}",
	     DRB_EINVAL, "must be the name of an environment variable"},
	    {"{\"channel\": \"sns\", \"text\": \"x\", \"topic_arn\": \"alerts\"}", DRB_EINVAL,
	     "argument 'topic_arn' is not a topic ARN"},
	};
	json_t *res = NULL, *reqs, *args;
	char *big = malloc(DRB_NOTIFY_MAX_TEXT + 2);
	drb_err e;

	set_slack(SLACK_PATH);
	set_pagerduty(NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run(f, cases[i].args, &res, &e), cases[i].code);
		if (!strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: '%s' does not contain '%s'", i, e.msg, cases[i].msg);
		assert_null(res);
	}
	/* a 256-byte dedup key */
	args = json_pack("{s:s, s:s, s:s}", "channel", "pagerduty", "text", "x", "dedup_key",
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(drb_notify_actions[0]->fn(&f->ctx, args, &res, &e), DRB_EINVAL);
	json_decref(args);
	/* the text cap */
	assert_non_null(big);
	memset(big, 'a', DRB_NOTIFY_MAX_TEXT + 1);
	big[DRB_NOTIFY_MAX_TEXT + 1] = '\0';
	args = json_pack("{s:s, s:s}", "channel", "slack", "text", big);
	assert_int_equal(drb_notify_actions[0]->fn(&f->ctx, args, &res, &e), DRB_ELIMIT);
	assert_non_null(strstr(e.msg, "longer than 40000 bytes"));
	json_decref(args);
	big[DRB_NOTIFY_MAX_TEXT] = '\0'; /* exactly at the cap: accepted */
	args = json_pack("{s:s, s:s}", "channel", "slack", "text", big);
	assert_int_equal(drb_notify_actions[0]->fn(&f->ctx, args, &res, &e), 0);
	json_decref(args);
	json_decref(res);
	free(big);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 1); /* only the last one */
	json_decref(reqs);
}

/* Preflight and plan (read-only contexts) refuse notify; a passed deadline is a timeout;
 * neither sends anything. */
static void test_read_only_and_deadline(void **state)
{
	fixture *f = *state;
	json_t *res = NULL, *reqs;
	drb_err e;

	set_slack(SLACK_PATH);
	f->ctx.read_only = 1;
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_EDENIED);
	assert_non_null(strstr(e.msg, "refused in preflight and plan"));
	f->ctx.read_only = 0;
	f->ctx.deadline = drb_mono_now() - 1;
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_ETIMEOUT);
	assert_int_equal(json_array_size(f->seam.records), 0);
	reqs = received();
	assert_int_equal(json_array_size(reqs), 0);
	json_decref(reqs);
	assert_true(drb_notify_actions[0]->mode == DRB_ACT_MUT);
	assert_string_equal(drb_notify_actions[0]->name, "notify");
	assert_null(drb_notify_actions[1]);
}

/* A run being stopped (ctx->cancel) stops the notification too: no retries. */
static void test_cancelled(void **state)
{
	fixture *f = *state;
	volatile int cancel = 1;
	json_t *res = NULL, *reqs;
	drb_err e;

	set_slack(SLACK_PATH "?fail=503");
	f->ctx.cancel = &cancel;
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_EINTERRUPTED);
	assert_null(res);
	reqs = received();
	assert_true(json_array_size(reqs) <= 1);
	json_decref(reqs);
	assert_no_secrets(f, &e, NULL);
}

/* A replay answers from the record: the same result without any secret configured. */
static void test_replay_needs_no_secret(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	drb_err e;

	f->seam.replay = 1;
	f->seam.answers[f->seam.n_answers++] = json_pack(
	    "{s:i, s:s, s:i, s:s}", "status", 202, "body",
	    "{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":\"k-9\"}",
	    "attempts", 2, "origin", "https://events.pagerduty.com");
	assert_int_equal(run(f, "{\"channel\": \"pagerduty\", \"text\": \"x\"}", &res, &e), 0);
	assert_string_equal(json_string_value(json_object_get(res, "dedup_key")), "k-9");
	assert_int_equal(json_integer_value(json_object_get(res, "attempts")), 2);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(record(f, 0), "request"), "url")),
	    "https://events.pagerduty.com");
	json_decref(res);
	/* a recorded failure is the same failure */
	f->seam.answers[f->seam.n_answers++] =
	    json_pack("{s:i, s:s, s:i}", "status", 404, "body", "no_service", "attempts", 1);
	assert_int_equal(run(f, "{\"channel\": \"slack\", \"text\": \"x\"}", &res, &e),
			 DRB_ENOTFOUND);
	assert_string_equal(e.msg, "notify slack: HTTP 404: no_service");
}

/* ---- SNS, through aws.sns.publish and a replaying seam ----------------------------------------
 */

#define PUBLISH_OK                                                                                 \
	"<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>"      \
	"<MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>"              \
	"<ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>"            \
	"</ResponseMetadata></PublishResponse>"

static void add_answer(fixture *f, long status, const char *body)
{
	f->seam.replay = 1;
	f->seam.answers[f->seam.n_answers++] =
	    json_pack("{s:i, s:s, s:n, s:i, s:{}}", "status", (int)status, "body", body,
		      "request_id", "attempts", 1, "headers");
}

/* The topic from the environment, its region from the ARN, the drill prefix on the message
 * and on the subject; the logged call is SNS Publish. */
static void test_sns_publish(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	const json_t *rec, *params;
	drb_err e;

	setenv("DRBOOK_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:alerts", 1);
	add_answer(f, 200, PUBLISH_OK);
	f->ctx.drill = 1;
	assert_int_equal(run(f,
			     "{\"channel\": \"sns\", \"text\": \"region failover done\", "
			     "\"severity\": \"error\"}",
			     &res, &e),
			 0);
	assert_int_equal(json_array_size(f->seam.records), 1);
	rec = record(f, 0);
	assert_string_equal(json_string_value(json_object_get(rec, "service")), "sns");
	assert_string_equal(json_string_value(json_object_get(rec, "operation")), "Publish");
	assert_string_equal(json_string_value(json_object_get(rec, "region")), "eu-west-1");
	params = json_object_get(json_object_get(rec, "request"), "params");
	assert_string_equal(json_string_value(json_object_get(params, "TopicArn")),
			    "arn:aws:sns:eu-west-1:123456789012:alerts");
	assert_string_equal(json_string_value(json_object_get(params, "Message")),
			    "[DRILL] region failover done");
	assert_string_equal(json_string_value(json_object_get(params, "Subject")),
			    "[DRILL] drbook ERROR");
	assert_true(json_is_true(json_object_get(res, "delivered")));
	assert_string_equal(json_string_value(json_object_get(res, "channel")), "sns");
	assert_string_equal(json_string_value(json_object_get(res, "message_id")),
			    "94f20ce6-13c5-43a0-9a9e-ca52d816e90b");
	assert_string_equal(json_string_value(json_object_get(res, "topic_arn")),
			    "arn:aws:sns:eu-west-1:123456789012:alerts");
	json_decref(res);
}

/* topic_arn and region given per call win over the environment and the ARN. */
static void test_sns_overrides(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	const json_t *params;
	drb_err e;

	setenv("DRBOOK_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:alerts", 1);
	add_answer(f, 200, PUBLISH_OK);
	assert_int_equal(run(f,
			     "{\"channel\": \"sns\", \"text\": \"t\", \"topic_arn\": "
			     "\"arn:aws:sns:us-east-1:123456789012:ops\", \"region\": "
			     "\"ap-southeast-1\"}",
			     &res, &e),
			 0);
	assert_string_equal(json_string_value(json_object_get(record(f, 0), "region")),
			    "ap-southeast-1");
	params = json_object_get(json_object_get(record(f, 0), "request"), "params");
	assert_string_equal(json_string_value(json_object_get(params, "TopicArn")),
			    "arn:aws:sns:us-east-1:123456789012:ops");
	assert_string_equal(json_string_value(json_object_get(params, "Subject")), "drbook INFO");
	assert_string_equal(json_string_value(json_object_get(params, "Message")), "t");
	json_decref(res);
	/* a connection that does not exist is the AWS provider's error, prefixed */
	assert_int_equal(
	    run(f, "{\"channel\": \"sns\", \"text\": \"t\", \"connection\": \"nope\"}", &res, &e),
	    DRB_EINVAL);
	assert_non_null(strstr(e.msg, "notify sns: "));
	assert_non_null(strstr(e.msg, "no connection named 'nope'"));
}

/* SNS refusing the call is the AWS provider's error, prefixed "notify sns: ". */
static void test_sns_error(void **state)
{
	fixture *f = *state;
	json_t *res = NULL;
	drb_err e;

	setenv("DRBOOK_SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:alerts", 1);
	add_answer(f, 403,
		   "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
		   "<Message>not authorized to perform SNS:Publish</Message></Error>"
		   "<RequestId>r-1</RequestId></ErrorResponse>");
	assert_int_equal(run(f, "{\"channel\": \"sns\", \"text\": \"t\"}", &res, &e), DRB_EDENIED);
	assert_null(res);
	assert_non_null(strstr(e.msg, "notify sns: sns Publish: AuthorizationError"));
	/* read-only contexts refuse before any call */
	f->ctx.read_only = 1;
	assert_int_equal(run(f, "{\"channel\": \"sns\", \"text\": \"t\"}", &res, &e), DRB_EDENIED);
	assert_int_equal(json_array_size(f->seam.records), 1);
}

/* ---- the pure pieces ------------------------------------------------------------------------ */

/* Scrubbing: the URL, its path, and long segments (also when an answer writes "\/"). */
static void test_scrub(void **state)
{
	char s[512];

	(void)state;
	snprintf(s, sizeof(s),
		 "bad https://h.example/services/T1/B2/" SLACK_TOKEN " and \\/services"
		 "\\/T1\\/B2\\/" SLACK_TOKEN " and /services/T1/B2/" SLACK_TOKEN);
	drb_notifyi_scrub_url(s, "https://h.example/services/T1/B2/" SLACK_TOKEN);
	assert_string_equal(s, "bad *** and \\/services\\/T1\\/B2\\/*** and ***");
	snprintf(s, sizeof(s), "key " ROUTING_KEY ROUTING_KEY);
	drb_notifyi_scrub(s, ROUTING_KEY);
	assert_string_equal(s, "key ******");
	snprintf(s, sizeof(s), "abc");
	drb_notifyi_scrub(s, "ab"); /* too short to be a secret: left alone */
	assert_string_equal(s, "abc");
}

/* The builders' fixed points: drill prefix, SNS subjects, severity names. */
static void test_builders(void **state)
{
	char subject[100], *t;
	json_t *b;

	(void)state;
	t = drb_notifyi_text("go", 1);
	assert_string_equal(t, "[DRILL] go");
	free(t);
	t = drb_notifyi_text("go", 0);
	assert_string_equal(t, "go");
	free(t);
	t = drb_notifyi_text("", 0);
	assert_string_equal(t, "");
	free(t);
	drb_notifyi_sns_subject(NOTIFY_SEV_CRITICAL, 0, subject, sizeof(subject));
	assert_string_equal(subject, "drbook CRITICAL");
	drb_notifyi_sns_subject(NOTIFY_SEV_WARNING, 1, subject, sizeof(subject));
	assert_string_equal(subject, "[DRILL] drbook WARNING");
	assert_int_equal(drb_notifyi_severity("critical"), NOTIFY_SEV_CRITICAL);
	assert_int_equal(drb_notifyi_severity("Critical"), -1);
	assert_int_equal(drb_notifyi_severity(NULL), -1);
	b = drb_notifyi_pagerduty_body("k", "s", NOTIFY_SEV_ERROR, NULL, "h");
	assert_non_null(b);
	t = json_dumps(b, JSON_COMPACT);
	assert_string_equal(t, "{\"routing_key\":\"k\",\"event_action\":\"trigger\",\"payload\":{"
			       "\"summary\":\"s\",\"severity\":\"error\",\"source\":\"h\","
			       "\"component\":\"drbook\"}}");
	free(t);
	json_decref(b);
	assert_true(drb_notifyi_env_name_ok("DRBOOK_X_1"));
	assert_false(drb_notifyi_env_name_ok("1X"));
	assert_false(drb_notifyi_env_name_ok(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_slack_exact_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slack_drill_prefix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_severity_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty_exact_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty_dedup_from_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty_long_summary, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagerduty_needs_202, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_on_5xx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_on_429, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_retry_on_400, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_error_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_scrubbed_from_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_configuration, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_configuration_from_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_url_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_argument_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only_and_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancelled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_needs_no_secret, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sns_publish, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sns_overrides, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sns_error, setup, teardown),
	    cmocka_unit_test(test_scrub),
	    cmocka_unit_test(test_builders),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
