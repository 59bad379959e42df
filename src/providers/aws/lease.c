/* Run leases in a DynamoDB table, so that two machines never run the same failover at once.
 * One item per lock key (key attribute `key`): the holder (run id, operator, host, pid), an
 * expiry in epoch milliseconds, and a fencing `token` that every take increments and nothing
 * ever decreases (a release only expires the item). Every write is conditional, so the table
 * itself decides who holds a key; see docs/security.md for where the table must live. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <drbook/util.h>

#include "aws_int.h"

static int lease_call(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *op,
		      json_t *body, json_t **answer, drb_err *err)
{
	drb_aws_endpoint ep;
	aws_req rq;
	aws_resp resp;
	int rc;

	*answer = NULL;
	memset(&rq, 0, sizeof(rq));
	rq.operation = op;
	rq.json = body;
	if (!body)
		return drb_err_set(err, DRB_ENOMEM, "lease: out of memory");
	rc = drb_aws_resolve(NULL, cfg->region, drb_awsi_dynamodb.host_prefix,
			     drb_awsi_dynamodb.env_id, 0, &ep, err);
	if (rc == 0)
		rc = drb_awsi_call(ctx, &drb_awsi_dynamodb, &ep, &rq, &resp, err);
	json_decref(body);
	if (rc != 0)
		return rc;
	*answer = json_incref(resp.json);
	drb_awsi_resp_free(&resp);
	return 0;
}

/* DynamoDB's error name for a condition that said no; the table's answer "someone else". */
static int condition_failed(const drb_err *err)
{
	return strstr(err->msg, "ConditionalCheckFailedException") != NULL;
}

static const char *attr_s(const json_t *item, const char *name)
{
	return json_string_value(json_object_get(json_object_get(item, name), "S"));
}

static long long attr_n(const json_t *item, const char *name)
{
	const char *n = json_string_value(json_object_get(json_object_get(item, name), "N"));

	return n ? strtoll(n, NULL, 10) : -1;
}

static json_t *num(long long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%lld", v);
	return json_pack("{s:s}", "N", b);
}

int drb_aws_lease_peek(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
		       char *out, size_t cap, drb_err *err)
{
	json_t *ans = NULL;
	const json_t *item;
	int rc;

	snprintf(out, cap, "free");
	rc = lease_call(ctx, cfg, "GetItem",
			json_pack("{s:s, s:{s:{s:s}}, s:b}", "TableName", cfg->table, "Key", "key",
				  "S", key, "ConsistentRead", 1),
			&ans, err);
	if (rc == 0 && (item = json_object_get(ans, "Item"))) {
		long long left = attr_n(item, "expires") - drb_wall_ms();

		if (left > 0)
			snprintf(out, cap, "%s, lease expires in %llds (token %lld)",
				 attr_s(item, "holder") ? attr_s(item, "holder") : "another run",
				 (left + 999) / 1000, attr_n(item, "token"));
		else
			snprintf(out, cap, "free (expired lease, token %lld)",
				 attr_n(item, "token"));
	}
	json_decref(ans);
	return rc;
}

/* Who holds key now, for the refusal ("run R (operator O on host H, pid P), N s left"). */
static void describe_holder(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			    char *out, size_t cap)
{
	drb_err e;

	memset(&e, 0, sizeof(e));
	if (drb_aws_lease_peek(ctx, cfg, key, out, cap, &e) || !strncmp(out, "free", 4))
		snprintf(out, cap, "another run");
}

int drb_aws_lease_take(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
		       long long *token, drb_err *err)
{
	long long now = drb_wall_ms();
	json_t *ans = NULL, *body;
	int rc;

	*token = -1;
	/* Free, expired, or already ours (a resume of the same run takes its lease back). */
	body = json_pack(
	    "{s:s, s:{s:{s:s}}, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:o, s:o, s:o, s:{s:s}, "
	    "s:{s:s}}, s:s}",
	    "TableName", cfg->table, "Key", "key", "S", key, "UpdateExpression",
	    "SET #t = if_not_exists(#t, :zero) + :one, #h = :h, #e = :e, #r = :r",
	    "ConditionExpression", "attribute_not_exists(#e) OR #e < :now OR #r = :r",
	    "ExpressionAttributeNames", "#t", "token", "#h", "holder", "#e", "expires", "#r", "run",
	    "ExpressionAttributeValues", ":zero", num(0), ":one", num(1), ":e",
	    num(now + (long long)(cfg->ttl_s * 1000)), ":h", "S", cfg->holder, ":r", "S",
	    cfg->run_id, "ReturnValues", "ALL_NEW");
	if (body)
		json_object_set_new(json_object_get(body, "ExpressionAttributeValues"), ":now",
				    num(now));
	rc = lease_call(ctx, cfg, "UpdateItem", body, &ans, err);
	if (rc != 0) {
		if (condition_failed(err)) {
			char who[600];

			describe_holder(ctx, cfg, key, who, sizeof(who));
			return drb_err_set(err, DRB_EDENIED,
					   "run lease '%s' in table %s is held by %s: refusing to "
					   "start a second run",
					   key, cfg->table, who);
		}
		drb_err_prefix(err, "run lease '%s' (table %s): ", key, cfg->table);
		return rc == DRB_EDENIED ? rc : DRB_EDENIED; /* no lease, no run */
	}
	*token = attr_n(json_object_get(ans, "Attributes"), "token");
	json_decref(ans);
	if (*token < 1)
		return drb_err_set(err, DRB_EDENIED, "run lease '%s': the table returned no token",
				   key);
	return 0;
}

/* Renewal and release change the item only while it still carries our token: a run whose
 * lease was taken over learns it from the failed condition and must stop. */
static int lease_update(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			long long token, long long expires, drb_err *err)
{
	json_t *ans = NULL, *body;
	int rc;

	body = json_pack("{s:s, s:{s:{s:s}}, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:o, s:o, s:{s:s}}}",
			 "TableName", cfg->table, "Key", "key", "S", key, "UpdateExpression",
			 "SET #e = :e", "ConditionExpression", "#t = :t AND #r = :r",
			 "ExpressionAttributeNames", "#t", "token", "#e", "expires", "#r", "run",
			 "ExpressionAttributeValues", ":e", num(expires), ":t", num(token), ":r",
			 "S", cfg->run_id);
	rc = lease_call(ctx, cfg, "UpdateItem", body, &ans, err);
	json_decref(ans);
	if (rc != 0 && condition_failed(err))
		return drb_err_set(err, DRB_EDENIED,
				   "run lease '%s' was taken over by another run (our token %lld)",
				   key, token);
	return rc;
}

int drb_aws_lease_renew(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			long long token, drb_err *err)
{
	return lease_update(ctx, cfg, key, token, drb_wall_ms() + (long long)(cfg->ttl_s * 1000),
			    err);
}

int drb_aws_lease_release(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			  long long token, drb_err *err)
{
	return lease_update(ctx, cfg, key, token, 0, err);
}
