/* aws_action_tool: runs one drbook AWS action by name, for the integration tests against
 * moto. Prints the result as JSON on stdout, or the error on stderr with exit 1. Its seam
 * performs each call and, when DRB_AWS_CALLS names a file, appends the call record (what the
 * engine's audit log would hold) as one JSON line, so tests can check what gets logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/aws.h>
#include <drbook/http.h>
#include <drbook/util.h>

static int tool_seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
			  json_t **response, drb_err *err)
{
	const char *path = getenv("DRB_AWS_CALLS");
	double t0 = drb_mono_now();
	json_t *resp = NULL, *rec;
	int rc;

	(void)s;
	*response = NULL;
	rc = perform(arg, &resp, err);
	rec = json_pack("{s:s, s:s, s:s?, s:O?, s:f}", "service", c->service, "operation",
			c->operation, "region", c->region, "request", c->request, "latency_ms",
			(drb_mono_now() - t0) * 1000.0);
	if (rec && resp) {
		json_object_set(rec, "status", json_object_get(resp, "status"));
		json_object_set(rec, "response", resp);
	}
	if (rec && rc) {
		json_object_set_new(rec, "error", json_string(err->msg));
		json_object_set_new(rec, "code", json_string(drb_code_name(rc)));
	}
	if (path && rec) {
		FILE *f = fopen(path, "a");

		if (!f || json_dumpf(rec, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF) {
			fprintf(stderr, "aws_action_tool: cannot write %s\n", path);
			if (f)
				fclose(f);
			json_decref(rec);
			json_decref(resp);
			return drb_err_set(err, DRB_EIO, "cannot write the call record");
		}
		fclose(f);
	}
	json_decref(rec);
	if (rc) {
		json_decref(resp);
		return rc;
	}
	*response = resp;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: aws_action_tool [--read-only] [--deadline SECONDS] "
			"[--connections JSON] [--list] ACTION [ARGS_JSON]\n");
}

int main(int argc, char **argv)
{
	drb_seam seam = {tool_seam_call, NULL, NULL};
	drb_action_ctx ctx;
	const drb_action *a = NULL;
	json_t *args = NULL, *conns = NULL, *result = NULL;
	json_error_t je;
	drb_err err = {0};
	const char *name = NULL, *argtext = "{}";
	int i, rc = 2;

	memset(&ctx, 0, sizeof(ctx));
	ctx.seam = &seam;
	ctx.step_id = "tool";
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--read-only")) {
			ctx.read_only = 1;
		} else if (!strcmp(argv[i], "--deadline") && i + 1 < argc) {
			ctx.deadline = drb_mono_now() + strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--connections") && i + 1 < argc) {
			conns = json_loads(argv[++i], 0, &je);
			if (!conns) {
				fprintf(stderr, "aws_action_tool: --connections: %s\n", je.text);
				goto out;
			}
		} else if (!strcmp(argv[i], "--list")) {
			for (size_t k = 0; drb_aws_actions[k].name; k++)
				printf("%s %s\n", drb_aws_actions[k].name,
				       drb_aws_actions[k].mode == DRB_ACT_RO ? "ro" : "mut");
			rc = 0;
			goto out;
		} else if (!name) {
			name = argv[i];
		} else {
			argtext = argv[i];
		}
	}
	if (!name) {
		usage();
		goto out;
	}
	a = drb_aws_action(name);
	if (!a) {
		fprintf(stderr, "aws_action_tool: unknown action %s\n", name);
		goto out;
	}
	args = json_loads(argtext, 0, &je);
	if (!args) {
		fprintf(stderr, "aws_action_tool: arguments: %s\n", je.text);
		goto out;
	}
	ctx.connections = conns;
	if (drb_http_global_init() != 0) {
		fprintf(stderr, "aws_action_tool: curl_global_init failed\n");
		goto out;
	}
	rc = a->fn(&ctx, args, &result, &err);
	if (rc != 0) {
		fprintf(stderr, "error: %s: %s\n", drb_code_name(rc), err.msg);
		rc = 1;
		goto out;
	}
	json_dumpf(result, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	putchar('\n');
	rc = 0;
out:
	json_decref(result);
	json_decref(args);
	json_decref(conns);
	drb_http_global_cleanup();
	return rc;
}
