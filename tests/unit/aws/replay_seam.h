/* Test helper for the AWS action tests: a seam that never performs a call (no network, no
 * credentials) and answers from a queue of recorded responses, as a replay of the audit log
 * does. It keeps a copy of every call record so tests can check service, operation, region
 * and the redacted request. Header-only: not a test program. */
#ifndef DRB_TEST_REPLAY_SEAM_H
#define DRB_TEST_REPLAY_SEAM_H

#include <stdio.h>
#include <string.h>

#include <drbook/action.h>

#define REPLAY_MAX 16

typedef struct replay_seam {
	drb_seam seam;
	json_t *answers[REPLAY_MAX]; /* owned until handed out */
	int n_answers, next;
	int calls;
	json_t *records; /* array of {service, operation, region, request} */
} replay_seam;

static int replay_seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
			    json_t **response, drb_err *err)
{
	replay_seam *r = s->ud;

	(void)perform;
	(void)arg;
	r->calls++;
	json_array_append_new(r->records,
			      json_pack("{s:s, s:s, s:s?, s:O}", "service", c->service, "operation",
					c->operation, "region", c->region, "request", c->request));
	if (r->next >= r->n_answers)
		return drb_err_set(err, DRB_EINTEGRITY, "replay: no recorded answer left");
	*response = r->answers[r->next];
	r->answers[r->next++] = NULL;
	return 0;
}

static void replay_seam_init(replay_seam *r)
{
	memset(r, 0, sizeof(*r));
	r->seam.call = replay_seam_call;
	r->seam.ud = r;
	r->records = json_array();
}

/* Queues an answer: status, body and (optionally) request id and attempts. */
static void replay_seam_add(replay_seam *r, long status, const char *body, const char *rid,
			    int attempts)
{
	json_t *a = json_pack("{s:i, s:s, s:s?, s:i, s:{}}", "status", (int)status, "body", body,
			      "request_id", rid, "attempts", attempts ? attempts : 1, "headers");

	if (r->n_answers < REPLAY_MAX)
		r->answers[r->n_answers++] = a;
	else
		json_decref(a);
}

static void replay_seam_free(replay_seam *r)
{
	for (int i = 0; i < r->n_answers; i++)
		json_decref(r->answers[i]);
	json_decref(r->records);
	memset(r, 0, sizeof(*r));
}

static const drb_action *aws_action(const char *name)
{
	for (size_t i = 0; drb_aws_actions[i].name; i++)
		if (!strcmp(drb_aws_actions[i].name, name))
			return &drb_aws_actions[i];
	return NULL;
}

/* Runs an action with JSON text arguments against the seam. */
static int run_action(replay_seam *r, const char *name, const char *args_json, double deadline,
		      json_t **result, drb_err *err)
{
	drb_action_ctx ctx;
	const drb_action *a = aws_action(name);
	json_t *args = json_loads(args_json, 0, NULL);
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.seam = &r->seam;
	ctx.step_id = "test";
	ctx.deadline = deadline;
	*result = NULL;
	if (!a || !args) {
		json_decref(args);
		return drb_err_set(err, DRB_EINVAL, "test: bad action or arguments");
	}
	rc = a->fn(&ctx, args, result, err);
	json_decref(args);
	return rc;
}

/* Clears every AWS_* setting and points the shared files at nothing: tests must not read
 * the machine's configuration, and replays must not need credentials. */
static void aws_env_isolate(void)
{
	static const char *const vars[] = {
	    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	    "AWS_REGION",	 "AWS_DEFAULT_REGION",	  "AWS_ENDPOINT_URL",  NULL};

	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	setenv("AWS_CONFIG_FILE", "/nonexistent/drbook-test/config", 1);
	/* Without credentials the chain would ask 169.254.169.254, off this machine. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/drbook-test/credentials", 1);
}

#endif
