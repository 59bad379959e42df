/* The `notify` action: one message to a Slack-compatible webhook or PagerDuty Events v2
 * through the seam (service "notify", operation the channel), or to SNS through the
 * aws.sns.publish action. Secrets are read inside the seam's perform callback, so the call
 * record never holds them and a replay needs none of them. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <drbook/action.h>
#include <drbook/aws.h>
#include <drbook/http.h>
#include <drbook/notify.h>
#include <drbook/util.h>

#include "notify_int.h"

enum { CH_SLACK = 0, CH_PAGERDUTY = 1, CH_SNS = 2 };
static const char *const channels[] = {"slack", "pagerduty", "sns", NULL};

#define ATTEMPTS 4
#define TIMEOUT_S 10.0
#define RETRY_BASE_S 0.25
#define RETRY_CAP_S 5.0
/* Answers are a word ("ok", "invalid_payload") or a small JSON object: keep a bounded copy
 * for the audit log and the message, read at most this much. */
#define MAX_RESPONSE 65536
#define MAX_RECORDED_BODY 2048

typedef struct notify_job {
	int ch;
	const char *secret_env; /* the variable naming the webhook URL or the routing key */
	const char *url;	/* pagerduty: the events URL (not a secret) */
	char origin[512];	/* pagerduty: its scheme://host[:port] */
	const char *text;	/* as sent (drill prefix applied) */
	int severity;
	const char *dedup_key;
	const char *source;
	double timeout_s, retry_cap_s;
	const volatile int *cancel;
} notify_job;

/* Keeps the body of an answer for the record: scrubbed of the secret, at most
 * MAX_RECORDED_BODY bytes. */
static json_t *recorded_body(const drb_http_resp *r, const char *url, const char *key)
{
	size_t n = r->body_len < MAX_RECORDED_BODY ? r->body_len : MAX_RECORDED_BODY;
	char *copy = malloc(n + 1);
	json_t *j;

	if (!copy)
		return NULL;
	if (n)
		memcpy(copy, r->body, n);
	copy[n] = '\0';
	/* A NUL inside the body ends the copy there (strlen below), so the scrubber sees
	 * everything that is kept. */
	drb_notifyi_scrub_url(copy, url);
	drb_notifyi_scrub(copy, key);
	j = drb_http_json_text(copy, strlen(copy));
	free(copy);
	return j;
}

/* 1 when a routing key looks like one: printable ASCII without spaces. */
static int key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n < 8 || n > 256)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] <= ' ' || k[i] > '~')
			return 0;
	return 1;
}

/* The seam's perform callback: reads the secret, sends, forgets the secret. */
static int notify_perform(void *arg, json_t **response, drb_err *err)
{
	const notify_job *j = arg;
	static const char *const headers[] = {"Content-Type: application/json", NULL};
	char *secret = NULL, *body = NULL, origin[512] = "";
	const char *url;
	json_t *doc = NULL, *r = NULL;
	drb_http_req req;
	drb_http_resp resp;
	drb_http_retry pol;
	int rc, attempts = 0, bad = 0;

	*response = NULL;
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	memset(&pol, 0, sizeof(pol));
	rc = drb_notifyi_config(j->secret_env, &secret, err);
	if (rc != 0)
		goto out;
	if (j->ch == CH_SLACK) {
		url = secret;
		rc = drb_notifyi_url_check(url, j->secret_env, origin, sizeof(origin), err);
		if (rc == 0 && !(doc = drb_notifyi_slack_body(j->text, j->severity)))
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
	} else {
		url = j->url;
		snprintf(origin, sizeof(origin), "%s", j->origin);
		if (!key_ok(secret))
			rc = drb_err_set(err, DRB_EINVAL,
					 "the value of %s is not a routing key (8 to 256 printable "
					 "characters, no spaces)",
					 j->secret_env);
		if (rc == 0 && !(doc = drb_notifyi_pagerduty_body(secret, j->text, j->severity,
								  j->dedup_key, j->source)))
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	if (rc != 0)
		goto out;
	body = json_dumps(doc, JSON_COMPACT);
	if (!body) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	req.timeout_s = j->timeout_s;
	req.connect_timeout_s = j->timeout_s < 5 ? j->timeout_s : 5;
	req.max_response = MAX_RESPONSE;
	req.allow_truncate = 1; /* the status decides; a long error page is still an answer */
	req.cancel = j->cancel;
	pol.max_attempts = ATTEMPTS;
	pol.base_s = RETRY_BASE_S;
	pol.cap_s = j->retry_cap_s;
	rc = drb_http_perform_retry(&req, &pol, &resp, &attempts, err);
	if (rc != 0)
		goto out;
	r = json_object();
	if (!r) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	bad |= json_object_set_new(r, "status", json_integer(resp.status));
	bad |= json_object_set_new(r, "body",
				   recorded_body(&resp, j->ch == CH_SLACK ? url : NULL, secret));
	bad |= json_object_set_new(r, "attempts", json_integer(attempts));
	bad |= json_object_set_new(r, "origin", json_string(origin));
	if (bad) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	*response = r;
	r = NULL;
out:
	/* The client names the origin only; scrub anyway, the message goes to the log. */
	if (rc != 0 && err && secret) {
		if (j->ch == CH_SLACK)
			drb_notifyi_scrub_url(err->msg, secret);
		else
			drb_notifyi_scrub(err->msg, secret);
	}
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	/* jansson frees its own copy of the routing key without wiping it: the serialized
	 * body, which goes through more hands (libcurl), is wiped above. */
	json_decref(doc);
	json_decref(r);
	drb_http_resp_free(&resp);
	drb_notifyi_secret_free(secret);
	return rc;
}

/* The drb_code for an answer that is not a delivery. */
static int status_code(long status)
{
	if (status == 429 || status >= 500)
		return DRB_ETRANSIENT;
	if (status == 401 || status == 403)
		return DRB_EDENIED;
	if (status == 404 || status == 410)
		return DRB_ENOTFOUND;
	if (status == 400 || status == 413 || status == 422)
		return DRB_EINVAL;
	return DRB_ERR;
}

/* What an error answer says, for the message: PagerDuty's {message, errors}, else the first
 * line of the body (Slack answers one word: invalid_payload, no_service...). */
static void answer_text(const char *body, char *out, size_t n)
{
	json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(doc, "message"));
	const json_t *errs = json_object_get(doc, "errors");

	out[0] = '\0';
	if (msg) {
		const char *first = json_string_value(json_array_get(errs, 0));

		snprintf(out, n, "%s%s%s%s", msg, first ? " (" : "", first ? first : "",
			 first ? ")" : "");
	} else if (body && *body) {
		size_t len = strcspn(body, "\r\n");

		snprintf(out, n, "%.*s", (int)(len < 200 ? len : 200), body);
	}
	json_decref(doc);
}

/* The result from the (live or replayed) answer. */
static int result_of(int ch, const json_t *resp, const char *dedup_sent, json_t **result,
		     drb_err *err)
{
	const json_t *st = json_object_get(resp, "status");
	const char *body = json_string_value(json_object_get(resp, "body"));
	json_int_t attempts = json_integer_value(json_object_get(resp, "attempts"));
	long status;
	char what[300];
	json_t *o = NULL;
	int rc = 0, bad = 0;

	if (!json_is_integer(st)) {
		rc = drb_err_set(err, DRB_EINVAL, "the answer has no status");
		goto out;
	}
	status = (long)json_integer_value(st);
	/* PagerDuty accepts an event with 202 and nothing else: a 200 means the URL points
	 * at something that is not the Events API (a login page, a proxy), so nobody is
	 * paged. */
	if (ch == CH_PAGERDUTY ? status != 202 : (status < 200 || status > 299)) {
		answer_text(body, what, sizeof(what));
		rc = drb_err_set(err, status_code(status), "HTTP %ld%s%s%s", status,
				 what[0] ? ": " : "", what,
				 status >= 200 && status <= 299
				     ? " (PagerDuty accepts an event with 202: is "
				       "DRBOOK_PAGERDUTY_URL the Events v2 enqueue URL?)"
				     : "");
		if (attempts > 1)
			drb_err_prefix(err, "after %" JSON_INTEGER_FORMAT " attempts: ", attempts);
		if (err)
			err->cause = status;
		goto out;
	}
	o = json_pack("{s:b, s:s, s:I, s:I}", "delivered", 1, "channel", channels[ch], "status",
		      (json_int_t)status, "attempts", attempts > 0 ? attempts : 1);
	if (!o) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (ch == CH_PAGERDUTY) {
		json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
		const char *k = json_string_value(json_object_get(doc, "dedup_key"));

		if (k || dedup_sent)
			bad |= json_object_set_new(o, "dedup_key", json_string(k ? k : dedup_sent));
		json_decref(doc);
	}
	if (bad) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	return rc;
}

/* The call record's request: what was sent, without the URL (slack: the URL is the
 * secret) or the routing key; the variables say where they came from. */
static json_t *redacted_request(const notify_job *j)
{
	json_t *o = NULL, *body = NULL;
	int bad = 0;

	if (j->ch == CH_SLACK)
		body = drb_notifyi_slack_body(j->text, j->severity);
	else
		body = drb_notifyi_pagerduty_body("***", j->text, j->severity, j->dedup_key,
						  j->source);
	o = json_pack("{s:s}", "method", "POST");
	if (!o || !body) {
		bad = 1;
		goto out;
	}
	if (j->ch == CH_SLACK) {
		bad |= json_object_set_new(o, "webhook_env", json_string(j->secret_env));
	} else {
		/* The events URL is not a secret, but only its origin is kept, as for any URL
		 * the audit log shows. */
		bad |= json_object_set_new(o, "url", json_string(j->origin));
		bad |= json_object_set_new(o, "routing_key_env", json_string(j->secret_env));
	}
	bad |= json_object_set(o, "body", body);
out:
	if (bad) {
		json_decref(o);
		o = NULL;
	}
	json_decref(body);
	return o;
}

/* Slack and PagerDuty: one call through the seam. */
static int send_http(drb_action_ctx *ctx, notify_job *j, json_t **result, drb_err *err)
{
	drb_call call = {.service = "notify", .operation = channels[j->ch]};
	json_t *req = NULL, *resp = NULL;
	int rc = 0;

	j->timeout_s = TIMEOUT_S;
	j->retry_cap_s = RETRY_CAP_S;
	j->cancel = ctx->cancel;
	if (ctx->deadline > 0) {
		double left = ctx->deadline - drb_mono_now();

		if (left <= 0) {
			rc = drb_err_set(err, DRB_ETIMEOUT, "the step's deadline passed");
			goto out;
		}
		if (left < j->timeout_s)
			j->timeout_s = left;
		/* Backoff must not sleep past the step's deadline. */
		if (left / ATTEMPTS < j->retry_cap_s)
			j->retry_cap_s = left / ATTEMPTS > 0.05 ? left / ATTEMPTS : 0.05;
	}
	req = redacted_request(j);
	if (!req) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, notify_perform, j, &resp, err);
	if (rc == 0)
		rc = result_of(j->ch, resp, j->dedup_key, result, err);
out:
	json_decref(req);
	json_decref(resp);
	return rc;
}

/* The region of a topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME) into out, or "". */
static void arn_region(const char *arn, char *out, size_t n)
{
	const char *p = arn;

	out[0] = '\0';
	for (int field = 0; field < 3; field++) {
		p = strchr(p, ':');
		if (!p)
			return;
		p++;
	}
	snprintf(out, n, "%.*s", (int)strcspn(p, ":"), p);
}

/* SNS: the aws.sns.publish action with the same context, so the AWS call is the logged one. */
static int send_sns(drb_action_ctx *ctx, const json_t *args, const char *text, int severity,
		    json_t **result, drb_err *err)
{
	const drb_action *publish = drb_aws_action("aws.sns.publish");
	const char *topic = NULL, *region = NULL, *conn = NULL;
	char *env_topic = NULL, subject[100], arn_reg[64];
	json_t *pargs = NULL, *res = NULL;
	int rc;

	if (!publish) {
		rc = drb_err_set(err, DRB_ERR, "the AWS provider has no aws.sns.publish");
		goto out;
	}
	rc = drb_arg_string_opt(args, "topic_arn", &topic, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "region", &region, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "connection", &conn, err);
	if (rc == 0 && !topic) {
		/* Not a secret, but configuration like the others: read it the same way. */
		rc = drb_notifyi_config(DRB_NOTIFY_SNS_TOPIC_ENV, &env_topic, err);
		topic = env_topic;
	}
	if (rc != 0)
		goto out;
	if (strncmp(topic, "arn:", 4) != 0) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is not a topic ARN (arn:aws:sns:REGION:...)",
				 env_topic ? DRB_NOTIFY_SNS_TOPIC_ENV : "argument 'topic_arn'");
		goto out;
	}
	/* Publish must reach the topic's own region: take it from the ARN unless told. */
	arn_region(topic, arn_reg, sizeof(arn_reg));
	if (!region && arn_reg[0])
		region = arn_reg;
	drb_notifyi_sns_subject(severity, ctx->drill, subject, sizeof(subject));
	pargs = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "topic_arn", topic, "subject", subject,
			  "message", text, "region", region, "connection", conn);
	if (!pargs) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	rc = publish->fn(ctx, pargs, &res, err);
	if (rc != 0)
		goto out;
	*result = json_pack("{s:b, s:s, s:O?, s:s}", "delivered", 1, "channel", "sns", "message_id",
			    json_object_get(res, "message_id"), "topic_arn", topic);
	if (!*result)
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	json_decref(pargs);
	json_decref(res);
	drb_notifyi_secret_free(env_topic);
	return rc;
}

/* Overrides that belong to one channel only: giving one to another channel is a mistake. */
static int check_overrides(const json_t *args, int ch, drb_err *err)
{
	static const struct {
		const char *name;
		int ch;
	} only[] = {{"webhook_env", CH_SLACK}, {"routing_key_env", CH_PAGERDUTY},
		    {"topic_arn", CH_SNS},     {"region", CH_SNS},
		    {"connection", CH_SNS},    {NULL, 0}};

	for (size_t i = 0; only[i].name; i++) {
		const json_t *v = json_object_get(args, only[i].name);

		if (v && !json_is_null(v) && only[i].ch != ch)
			return drb_err_set(err, DRB_EINVAL,
					   "argument '%s' applies to channel %s only", only[i].name,
					   channels[only[i].ch]);
	}
	return 0;
}

/* An override naming a variable: the name must look like one (it is printed in messages). */
static int env_arg(const json_t *args, const char *arg, const char *dflt, const char **out,
		   drb_err *err)
{
	int rc;

	*out = dflt;
	rc = drb_arg_string_opt(args, arg, out, err);
	if (rc == 0 && !drb_notifyi_env_name_ok(*out))
		rc = drb_err_set(err, DRB_EINVAL,
				 "argument '%s' must be the name of an environment variable", arg);
	return rc;
}

static int notify_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	const char *chan = NULL, *text = NULL, *sev = NULL, *dedup = NULL;
	char host[256], *sent = NULL;
	notify_job j;
	int rc, ch = -1;

	memset(&j, 0, sizeof(j));
	*result = NULL;
	rc = drb_args_check(drb_notify_actions[0]->schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "channel", &chan, err);
	if (rc != 0)
		goto out;
	for (int i = 0; channels[i]; i++)
		if (!strcmp(chan, channels[i]))
			ch = i;
	if (ch < 0) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "argument 'channel' must be slack, pagerduty or sns (not '%.60s')",
				 chan);
		goto out;
	}
	rc = check_overrides(args, ch, err);
	if (rc == 0)
		rc = drb_arg_string(args, "text", &text, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "severity", &sev, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "dedup_key", &dedup, err);
	if (rc != 0)
		goto out;
	if (!*text) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'text' must not be empty");
		goto out;
	}
	if (strlen(text) > DRB_NOTIFY_MAX_TEXT) {
		rc = drb_err_set(err, DRB_ELIMIT, "argument 'text' is longer than %d bytes",
				 DRB_NOTIFY_MAX_TEXT);
		goto out;
	}
	j.severity = sev ? drb_notifyi_severity(sev) : NOTIFY_SEV_INFO;
	if (j.severity < 0) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "argument 'severity' must be info, warning, error or critical");
		goto out;
	}
	if (dedup && (!*dedup || strlen(dedup) > DRB_NOTIFY_MAX_DEDUP_KEY)) {
		rc = drb_err_set(err, DRB_EINVAL, "argument 'dedup_key' must be 1 to %d bytes",
				 DRB_NOTIFY_MAX_DEDUP_KEY);
		goto out;
	}
	if (ctx->read_only) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "a mutating action: refused in preflight and plan");
		goto out;
	}
	sent = drb_notifyi_text(text, ctx->drill);
	if (!sent) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (ch == CH_SNS) {
		rc = send_sns(ctx, args, sent, j.severity, result, err);
		goto out;
	}
	j.ch = ch;
	j.text = sent;
	j.dedup_key = dedup;
	if (ch == CH_SLACK) {
		rc = env_arg(args, "webhook_env", DRB_NOTIFY_SLACK_ENV, &j.secret_env, err);
	} else {
		rc = env_arg(args, "routing_key_env", DRB_NOTIFY_PAGERDUTY_KEY_ENV, &j.secret_env,
			     err);
		j.url = getenv(DRB_NOTIFY_PAGERDUTY_URL_ENV);
		if (!j.url || !*j.url)
			j.url = DRB_NOTIFY_PAGERDUTY_URL_DEFAULT;
		if (rc == 0)
			rc = drb_notifyi_url_check(j.url, DRB_NOTIFY_PAGERDUTY_URL_ENV, j.origin,
						   sizeof(j.origin), err);
		if (gethostname(host, sizeof(host)) != 0 || !host[0])
			snprintf(host, sizeof(host), "drbook");
		host[sizeof(host) - 1] = '\0';
		j.source = host;
	}
	if (rc == 0)
		rc = send_http(ctx, &j, result, err);
out:
	if (rc != 0)
		drb_err_prefix(err, "notify%s%s: ", ch >= 0 ? " " : "",
			       ch >= 0 ? channels[ch] : "");
	free(sent);
	return rc;
}

static const char *const notify_positional[] = {"channel", "text", NULL};
static const char *const severities[] = {"info", "warning", "error", "critical", NULL};

static const drb_action drb_notify_action = {
    .name = "notify",
    .mode = DRB_ACT_MUT,
    .positional = notify_positional,
    .fn = notify_fn,
    .schema =
	&(const drb_action_schema){
	    .doc = "Tells people: a Slack-compatible webhook, PagerDuty Events v2 or SNS",
	    .args =
		(const drb_arg_spec[]){
		    {"channel", DRB_T_STRING, 1, NULL, channels, "where to send"},
		    {"text", DRB_T_STRING, 1, NULL, NULL,
		     "the message ([DRILL] is added in drills)"},
		    {"severity", DRB_T_STRING, 0, "info", severities, "how urgent"},
		    {"dedup_key", DRB_T_STRING, 0, NULL, NULL, "pagerduty: groups related events"},
		    {"webhook_env", DRB_T_STRING, 0, DRB_NOTIFY_SLACK_ENV, NULL,
		     "slack: the variable holding the webhook URL"},
		    {"routing_key_env", DRB_T_STRING, 0, DRB_NOTIFY_PAGERDUTY_KEY_ENV, NULL,
		     "pagerduty: the variable holding the routing key"},
		    {"topic_arn", DRB_T_STRING, 0, NULL, NULL,
		     "sns: the topic (default: $" DRB_NOTIFY_SNS_TOPIC_ENV ")"},
		    {"region", DRB_T_STRING, 0, NULL, NULL, "sns: default: the topic ARN's"},
		    {"connection", DRB_T_STRING, 0, NULL, NULL, "sns: an aws connection"},
		    {NULL, 0, 0, NULL, NULL, NULL}},
	    .result = (const drb_field_spec[]){{"delivered", DRB_T_BOOL, "the channel accepted it"},
					       {"channel", DRB_T_STRING, "the channel used"},
					       {"message_id", DRB_T_STRING, "sns: the message id"},
					       {NULL, 0, NULL}},
	    .resource = "channel"},
};

const drb_action *const drb_notify_actions[] = {&drb_notify_action, NULL};
