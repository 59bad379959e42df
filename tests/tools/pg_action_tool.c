/* pg_action_tool: runs one pg.* action against real servers for the integration tests
 * (tests/integration/test_pg_actions.py), with a seam that performs every call and remembers
 * what would be logged. Prints one JSON object:
 *   {"ok": true, "result": {...}, "calls": [{service, operation, request, response}]}
 *   {"ok": false, "code": "denied", "error": "...", "calls": [...]}
 * Exit status: 0 ok, 1 the action failed, 2 usage.
 *
 *   pg_action_tool [-c CONNECTIONS_JSON] [--deadline S] [--read-only]
 *                  [--resolve INSTANCE=HOST:PORT]... ACTION [ARGS_JSON]
 *   pg_action_tool [-c ...] --lua SCRIPT
 * With --lua, the pg actions are functions in a drbook Lua sandbox (as in a `lua` step:
 * pg.query("db", "select $1::int as x", 5)) and the script's return value is the result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/pg.h>
#include <drbook/util.h>
#ifdef DRB_TOOL_LUA
#include <drbook/lua.h>
#endif

typedef struct tool_seam {
	drb_seam seam;
	json_t *calls;
} tool_seam;

static int tool_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		     json_t **response, drb_err *err)
{
	tool_seam *t = s->ud;
	int rc = perform(arg, response, err);

	json_array_append_new(t->calls, json_pack("{s:s, s:s, s:O?, s:O?, s:s?}", "service",
						  c->service, "operation", c->operation, "request",
						  c->request, "response", rc ? NULL : *response,
						  "error", rc ? err->msg : NULL));
	return rc;
}

/* --resolve INSTANCE=HOST:PORT, standing in for the AWS provider's lookup */
static char *const *resolve_map;
static int n_resolve;

static int tool_resolver(void *ud, drb_action_ctx *ctx, const char *instance, const char *region,
			 char **host, int *port, drb_err *err)
{
	(void)ud;
	(void)ctx;
	(void)region;
	for (int i = 0; i < n_resolve; i++) {
		const char *m = resolve_map[i], *eq = strchr(m, '='), *colon;

		if (!eq || strncmp(m, instance, (size_t)(eq - m)) || instance[eq - m])
			continue;
		colon = strrchr(eq, ':');
		if (!colon)
			break;
		*host = strndup(eq + 1, (size_t)(colon - eq - 1));
		*port = (int)strtol(colon + 1, NULL, 10);
		return *host ? 0 : drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	return drb_err_set(err, DRB_ENOTFOUND, "DBInstanceNotFound: %s", instance);
}

#ifdef DRB_TOOL_LUA
/* As the engine does for a lua step: the action runs with the step's context. */
static int lua_invoke(void *ud, const drb_action *a, const json_t *args, json_t **result,
		      drb_err *err)
{
	return a->fn(ud, args, result, err);
}

static int run_lua(drb_action_ctx *ctx, const char *script, json_t **result, drb_err *err)
{
	drb_lua *L = NULL;
	int rc = drb_lua_new(&L, &(drb_lua_opts){0}, err);

	for (size_t k = 0; rc == 0 && drb_pg_actions[k]; k++)
		rc = drb_lua_register_action(L, drb_pg_actions[k], lua_invoke, ctx, err);
	if (rc == 0)
		rc = drb_lua_run(L, script, "--lua", result, err);
	drb_lua_free(L);
	return rc;
}
#endif

static int usage(void)
{
	fprintf(stderr, "usage: pg_action_tool [-c CONNECTIONS_JSON] [--deadline S] [--read-only]"
			" [--resolve INSTANCE=HOST:PORT]... ACTION [ARGS_JSON]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *conns_text = "{}", *action = NULL, *args_text = "{}", *lua = NULL;
	char *resolves[16];
	double deadline_s = 0;
	int read_only = 0, i, rc, status = 1;
	json_t *conns = NULL, *args = NULL, *result = NULL, *out = NULL;
	const drb_action *a = NULL;
	tool_seam ts = {0};
	drb_action_ctx ctx = {0};
	drb_err err = {0};
	json_error_t je;
	char *text = NULL;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conns_text = argv[++i];
		else if (!strcmp(argv[i], "--deadline") && i + 1 < argc)
			deadline_s = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--lua") && i + 1 < argc)
			lua = argv[++i];
		else if (!strcmp(argv[i], "--read-only"))
			read_only = 1;
		else if (!strcmp(argv[i], "--resolve") && i + 1 < argc && n_resolve < 16)
			resolves[n_resolve++] = argv[++i];
		else
			return usage();
	}
	if (i >= argc && !lua)
		return usage();
	if (!lua)
		action = argv[i++];
	if (i < argc)
		args_text = argv[i++];
	if (i < argc)
		return usage();
	resolve_map = resolves;
	if (n_resolve)
		drb_pg_set_endpoint_resolver(tool_resolver, NULL);
	for (size_t k = 0; action && drb_pg_actions[k]; k++)
		if (!strcmp(drb_pg_actions[k]->name, action))
			a = drb_pg_actions[k];
#ifndef DRB_TOOL_LUA
	if (lua) {
		fprintf(stderr, "pg_action_tool: built without the Lua module\n");
		return 2;
	}
#endif
	if (!a && !lua) {
		fprintf(stderr, "pg_action_tool: unknown action %s\n", action);
		return 2;
	}
	conns = json_loads(conns_text, 0, &je);
	args = json_loads(args_text, 0, &je);
	if (!conns || !args) {
		fprintf(stderr, "pg_action_tool: bad JSON: %s\n", je.text);
		status = 2;
		goto out;
	}
	ts.seam.call = tool_call;
	ts.seam.ud = &ts;
	ts.calls = json_array();
	ctx.seam = &ts.seam;
	ctx.step_id = "tool";
	ctx.connections = conns;
	ctx.read_only = read_only;
	ctx.deadline = deadline_s > 0 ? drb_mono_now() + deadline_s : 0;
#ifdef DRB_TOOL_LUA
	if (lua)
		rc = run_lua(&ctx, lua, &result, &err);
	else
#endif
		rc = a->fn(&ctx, args, &result, &err);
	if (rc == 0) {
		out = json_pack("{s:b, s:O, s:O}", "ok", 1, "result", result, "calls", ts.calls);
		status = 0;
	} else {
		out = json_pack("{s:b, s:s, s:s, s:O}", "ok", 0, "code", drb_code_name(rc), "error",
				err.msg, "calls", ts.calls);
		status = 1;
	}
	text = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (!text) {
		fprintf(stderr, "pg_action_tool: out of memory\n");
		status = 2;
		goto out;
	}
	printf("%s\n", text);
out:
	free(text);
	json_decref(out);
	json_decref(result);
	json_decref(ts.calls);
	json_decref(args);
	json_decref(conns);
	return status;
}
