/* `drbook readiness` output: the text for people and the Prometheus textfile (the metric
 * names and labels are contract: DESIGN.md v1.1 and docs/operations.md "Readiness"). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drbook/util.h>

#include "readiness.h"

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

void drb_readiness_text(const json_t *model, FILE *f)
{
	const json_t *rb, *c, *lr;
	size_t i, j;

	json_array_foreach(json_object_get(model, "runbooks"), i, rb)
	{
		fprintf(f, "%s  %s (%s)\n",
			json_is_true(json_object_get(rb, "ready")) ? "READY    " : "NOT READY",
			str(rb, "runbook") ?: "?", str(rb, "path") ?: "?");
		json_array_foreach(json_object_get(rb, "checks"), j, c)
		{
			const char *st = str(c, "status") ?: "?";

			fprintf(f, "  %-4s %-28s %s%s%s\n",
				json_is_true(json_object_get(c, "ok")) ? "ok" : "FAIL",
				str(c, "check") ?: "?", st, str(c, "error") ? ": " : "",
				str(c, "error") ?: "");
		}
		if (str(rb, "error") && !json_array_size(json_object_get(rb, "checks")))
			fprintf(f, "  %s\n", str(rb, "error"));
		json_array_foreach(json_object_get(rb, "last_runs"), j, lr)
		{
			const json_t *rto = json_object_get(lr, "rto_s"),
				     *rpo = json_object_get(lr, "rpo_s");

			fprintf(f, "  last %-6s %-11s %s", str(lr, "mode") ?: "?",
				str(lr, "status") ?: "?", str(lr, "ended_at") ?: "");
			if (json_is_number(rto))
				fprintf(f, "  RTO %.1fs", json_number_value(rto));
			if (json_is_number(rpo))
				fprintf(f, "  RPO %.1fs", json_number_value(rpo));
			fputc('\n', f);
		}
	}
}

/* The rendered text; bad remembers that an append failed (out of memory, over the cap). */
typedef struct mbuf {
	drb_buf b;
	int bad;
} mbuf;

#define PUT(m, ...) ((m)->bad |= drb_buf_printf(&(m)->b, __VA_ARGS__) != 0)

/* A label value as the exposition format wants it: backslash, double quote and line feed
 * escaped. */
static void label(mbuf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			PUT(b, "\\\\");
		else if (*s == '"')
			PUT(b, "\\\"");
		else if (*s == '\n')
			PUT(b, "\\n");
		else
			PUT(b, "%c", *s);
	}
}

static void value(mbuf *b, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		PUT(b, " %.0f\n", v);
	else
		PUT(b, " %.17g\n", v);
}

static void head(mbuf *b, const char *name, const char *help)
{
	PUT(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* name{runbook="R"[,k="v"]} v */
static void sample(mbuf *b, const char *name, const char *runbook, const char *k, const char *kv,
		   double v)
{
	PUT(b, "%s{runbook=\"", name);
	label(b, runbook);
	if (k) {
		PUT(b, "\",%s=\"", k);
		label(b, kv);
	}
	PUT(b, "\"}");
	value(b, v);
}

static int render(const json_t *model, mbuf *b)
{
	const json_t *runbooks = json_object_get(model, "runbooks"), *rb, *c, *lr;
	size_t i, j;

	head(b, "drbook_ready",
	     "1 when every critical preflight check of the runbook passed: the failover could "
	     "start now");
	json_array_foreach(runbooks, i, rb)
	    sample(b, "drbook_ready", str(rb, "runbook"), NULL, NULL,
		   json_is_true(json_object_get(rb, "ready")));
	head(b, "drbook_check_ok",
	     "1 when the preflight check passed (or was skipped by its when)");
	json_array_foreach(runbooks, i, rb) json_array_foreach(json_object_get(rb, "checks"), j, c)
	    sample(b, "drbook_check_ok", str(rb, "runbook"), "check", str(c, "check"),
		   json_is_true(json_object_get(c, "ok")));
	head(b, "drbook_readiness_check_duration_seconds",
	     "how long the readiness check of the runbook took");
	json_array_foreach(runbooks, i, rb)
	    sample(b, "drbook_readiness_check_duration_seconds", str(rb, "runbook"), NULL, NULL,
		   json_number_value(json_object_get(rb, "duration_s")));
	head(b, "drbook_readiness_checked_timestamp_seconds",
	     "when the runbook's readiness was last checked (Unix time)");
	json_array_foreach(runbooks, i, rb)
	    sample(b, "drbook_readiness_checked_timestamp_seconds", str(rb, "runbook"), NULL, NULL,
		   json_number_value(json_object_get(model, "checked_at_s")));
	head(b, "drbook_last_run_success",
	     "1 when the last run of the runbook in this mode (run, drill, shadow) succeeded and "
	     "met its targets");
	json_array_foreach(runbooks, i, rb)
	    json_array_foreach(json_object_get(rb, "last_runs"), j, lr)
		sample(b, "drbook_last_run_success", str(rb, "runbook"), "mode", str(lr, "mode"),
		       json_is_true(json_object_get(lr, "success")));
	head(b, "drbook_last_run_rto_seconds",
	     "the RTO measured by the last run of the runbook in this mode");
	json_array_foreach(runbooks, i, rb)
	    json_array_foreach(json_object_get(rb, "last_runs"), j,
			       lr) if (json_is_number(json_object_get(lr, "rto_s")))
		sample(b, "drbook_last_run_rto_seconds", str(rb, "runbook"), "mode",
		       str(lr, "mode"), json_number_value(json_object_get(lr, "rto_s")));
	head(b, "drbook_last_run_rpo_seconds",
	     "the RPO measured by the last run of the runbook in this mode");
	json_array_foreach(runbooks, i, rb)
	    json_array_foreach(json_object_get(rb, "last_runs"), j,
			       lr) if (json_is_number(json_object_get(lr, "rpo_s")))
		sample(b, "drbook_last_run_rpo_seconds", str(rb, "runbook"), "mode",
		       str(lr, "mode"), json_number_value(json_object_get(lr, "rpo_s")));
	return b->bad ? -1 : 0;
}

int drb_readiness_metrics_write(const json_t *model, const char *path, drb_err *err)
{
	mbuf m = {0};
	char tmp[4200];
	int fd = -1, rc = 0;
	size_t off = 0;

	drb_buf_init(&m.b, 16 * 1024 * 1024);
	if (render(model, &m)) {
		rc = drb_err_set(err, DRB_ENOMEM, "metrics: out of memory");
		goto out;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		rc = drb_err_set(err, DRB_EINVAL, "metrics file name too long");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = drb_err_set(err, DRB_EIO, "metrics file %s: %s", tmp, strerror(errno));
		goto out;
	}
	fchmod(fd, 0644); /* node_exporter reads it whatever our umask */
	while (off < m.b.len) {
		ssize_t n = write(fd, m.b.p + off, m.b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = drb_err_set(err, DRB_EIO, "metrics file %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = drb_err_set(err, DRB_EIO, "metrics file %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = drb_err_set(err, DRB_EIO, "metrics file %s: %s", path, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
out:
	if (fd >= 0)
		close(fd);
	if (rc && tmp[0])
		unlink(tmp);
	drb_buf_free(&m.b);
	return rc;
}
