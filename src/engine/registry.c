/* The action registry: every action name a runbook may use, with its read-only/mutating
 * mode. lua and approval are carried out by the engine itself (they need the Lua state and
 * the operator); everything else is a provider function behind drb_action.fn. */
#include <stdlib.h>
#include <string.h>

#include <drbook/aws.h>
#include <drbook/dns.h>
#include <drbook/engine.h>
#include <drbook/exec.h>
#include <drbook/http.h>
#include <drbook/notify.h>
#include <drbook/pg.h>

#include "builtins.h"
#include "engine_int.h"

const drb_action drb_action_lua = {
    .name = "lua",
    .mode = DRB_ACT_STEP,
    .schema = &(const drb_action_schema){
	.doc = "Runs a Lua script in the sandbox",
	.args = (const drb_arg_spec[]){{"script", DRB_T_STRING, 0, NULL, NULL,
					"the script, when the step has no script:"},
				       {NULL, 0, 0, NULL, NULL, NULL}},
	.result_doc = "whatever the script returns"}};
/* An approval changes nothing outside: a denied one before any change is a refusal. The
 * loader keeps it out of preflight by name. */
const drb_action drb_action_approval = {
    .name = "approval",
    .mode = DRB_ACT_RO,
    .schema = &(const drb_action_schema){
	.doc = "Waits for an operator's yes (terminal, --approve STEP or --yes)",
	.args = (const drb_arg_spec[]){{"message", DRB_T_STRING, 0, "Proceed?", NULL,
					"the question shown to the operator"},
				       {"timeout", DRB_T_DURATION, 0, "15m", NULL,
					"no answer within this is a refusal (exit 3)"},
				       {NULL, 0, 0, NULL, NULL, NULL}},
	.result = (const drb_field_spec[]){{"approver", DRB_T_STRING, "who approved"},
					   {"approved_at", DRB_T_STRING, "RFC 3339 time"},
					   {"how", DRB_T_STRING, "--yes, --approve or terminal"},
					   {NULL, 0, NULL}}}};

static const drb_action *const builtins[] = {
    &drb_action_lua,  &drb_action_approval, &drb_action_sleep,
    &drb_action_exec, &drb_action_http,	    NULL,
};

/* The providers' tables, in lookup order; each NULL-terminated. The AWS provider's is a
 * table of rows (ended by a NULL name) rather than of pointers. */
static const drb_action *const *const tables[] = {builtins, drb_pg_actions, drb_dns_actions,
						  drb_notify_actions};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

const drb_action *drb_engine_action_at(size_t i)
{
	for (size_t t = 0; t < N_TABLES; t++) {
		for (size_t j = 0; tables[t][j]; j++)
			if (i-- == 0)
				return tables[t][j];
		if (t == 0) /* the AWS actions come after the built-ins, as before */
			for (size_t j = 0; drb_aws_actions[j].name; j++)
				if (i-- == 0)
					return &drb_aws_actions[j];
	}
	return NULL;
}

const drb_action *drb_engine_action(const char *name)
{
	const drb_action *a;

	for (size_t i = 0; (a = drb_engine_action_at(i)); i++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

const drb_action_schema *drb_engine_action_schema(void *ud, const char *name)
{
	const drb_action *a = drb_engine_action(name);

	(void)ud;
	return a ? a->schema : NULL;
}

int drb_engine_action_mode(void *ud, const char *name)
{
	const drb_action *a = drb_engine_action(name);

	(void)ud;
	return a ? (int)a->mode : -1;
}

/* A postgres connection with rds_instance: asks RDS for the endpoint, through the same
 * context (so the lookup is a logged call of the step that needs it). */
static int rds_endpoint(void *ud, drb_action_ctx *ctx, const char *instance, const char *region,
			char **host, int *port, drb_err *err)
{
	const drb_action *a = drb_engine_action("aws.rds.describe_db_instance");
	json_t *args = json_pack("{s:s, s:s?}", "id", instance, "region", region), *res = NULL;
	const char *h;
	int rc;

	(void)ud;
	*host = NULL;
	if (!a || !args) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = a->fn(ctx, args, &res, err)))
		goto out;
	h = json_string_value(json_object_get(res, "endpoint"));
	if (!h || !json_is_integer(json_object_get(res, "port"))) {
		rc =
		    drb_err_set(err, DRB_EINVAL, "RDS instance %s has no endpoint yet (status %s)",
				instance, json_string_value(json_object_get(res, "status")) ?: "?");
		goto out;
	}
	*host = strdup(h);
	*port = (int)json_integer_value(json_object_get(res, "port"));
	if (!*host)
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	json_decref(args);
	json_decref(res);
	return rc;
}

void drb_engine_providers_init(void)
{
	drb_pg_set_endpoint_resolver(rds_endpoint, NULL);
}
