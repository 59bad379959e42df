/* Evidence off the machine: copies the run's audit log (and its runbook) to S3 under
 * PREFIX/RUN_ID/ as the run goes, and fetches them back for `resume s3://...` and
 * `audit verify s3://...` on another machine. The copies are the run's own bookkeeping, not
 * calls of the runbook: they go to S3 directly, not through the logged seam (logging an upload
 * would change the log it uploads). Layout and failure policy: docs/audit.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#include "engine_int.h"

#define EVIDENCE_CALL_TIMEOUT_S 60.0
#define LOG_MAX ((size_t)256 << 20)

struct drb_evidence {
	pthread_mutex_t mu; /* one upload at a time: parallel steps end together */
	char bucket[64];
	char prefix[1024]; /* PREFIX/RUN_ID/ */
	char base[1200];   /* s3://BUCKET/PREFIX as given, for run.start and messages */
	char *log_path;
	const char *region; /* DRBOOK_EVIDENCE_REGION or NULL */
};

static int direct_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		       json_t **response, drb_err *err)
{
	(void)s;
	(void)c;
	return perform(arg, response, err);
}

static void s3_ctx(drb_action_ctx *ctx, drb_seam *seam)
{
	memset(ctx, 0, sizeof(*ctx));
	memset(seam, 0, sizeof(*seam));
	seam->call = direct_call;
	ctx->seam = seam;
	ctx->step_id = "evidence";
	ctx->deadline = drb_mono_now() + EVIDENCE_CALL_TIMEOUT_S;
}

int drb_evidence_parse(const char *url, char *bucket, size_t bcap, char *prefix, size_t pcap,
		       drb_err *err)
{
	const char *b, *slash;
	size_t bl, pl;

	if (!url || strncmp(url, "s3://", 5))
		return drb_err_set(err, DRB_EINVAL, "evidence '%s': expected s3://BUCKET/PREFIX",
				   url ? url : "");
	b = url + 5;
	slash = strchr(b, '/');
	bl = slash ? (size_t)(slash - b) : strlen(b);
	if (!bl || bl >= bcap)
		return drb_err_set(err, DRB_EINVAL, "evidence '%s': no bucket or bucket too long",
				   url);
	memcpy(bucket, b, bl);
	bucket[bl] = '\0';
	b = slash ? slash + 1 : "";
	pl = strlen(b);
	while (pl && b[pl - 1] == '/')
		pl--;
	if (pl >= pcap)
		return drb_err_set(err, DRB_EINVAL, "evidence '%s': prefix too long", url);
	memcpy(prefix, b, pl);
	prefix[pl] = '\0';
	return 0;
}

int drb_evidence_open(drb_evidence **out, const char *url, const char *run_id, const char *log_path,
		      drb_err *err)
{
	drb_evidence *ev = calloc(1, sizeof(*ev));
	char prefix[900];
	int rc;

	*out = NULL;
	if (!ev)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	pthread_mutex_init(&ev->mu, NULL);
	rc = drb_evidence_parse(url, ev->bucket, sizeof(ev->bucket), prefix, sizeof(prefix), err);
	if (rc)
		goto out;
	snprintf(ev->prefix, sizeof(ev->prefix), "%s%s%s/", prefix, *prefix ? "/" : "", run_id);
	snprintf(ev->base, sizeof(ev->base), "s3://%s%s%s", ev->bucket, *prefix ? "/" : "", prefix);
	ev->log_path = drb_strdup(log_path);
	ev->region = getenv("DRBOOK_EVIDENCE_REGION");
	if (ev->region && !*ev->region)
		ev->region = NULL;
	if (!ev->log_path) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	*out = ev;
	ev = NULL;
out:
	drb_evidence_close(ev);
	return rc;
}

const char *drb_evidence_base(const drb_evidence *ev)
{
	return ev ? ev->base : NULL;
}

static int put_file(drb_evidence *ev, const char *path, const char *name, const char *type,
		    drb_err *err)
{
	drb_action_ctx ctx;
	drb_seam seam;
	char key[1200], *body = NULL;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "%s%s", ev->prefix, name);
	rc = drb_file_read(path, LOG_MAX, &body, &len, err);
	if (rc == 0) {
		s3_ctx(&ctx, &seam);
		rc = drb_aws_s3_put(&ctx, ev->region, ev->bucket, key, body, len, type, err);
	}
	if (rc)
		drb_err_prefix(err, "evidence s3://%s/%s: ", ev->bucket, key);
	free(body);
	return rc;
}

int drb_evidence_ship(drb_evidence *ev, drb_err *err)
{
	int rc;

	pthread_mutex_lock(&ev->mu);
	rc = put_file(ev, ev->log_path, "audit.jsonl", "application/x-ndjson", err);
	pthread_mutex_unlock(&ev->mu);
	return rc;
}

int drb_evidence_ship_runbook(drb_evidence *ev, const char *runbook_path, drb_err *err)
{
	int rc;

	pthread_mutex_lock(&ev->mu);
	rc = put_file(ev, runbook_path, "runbook.yaml", "application/yaml", err);
	pthread_mutex_unlock(&ev->mu);
	return rc;
}

void drb_evidence_close(drb_evidence *ev)
{
	if (!ev)
		return;
	free(ev->log_path);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
}

/* Writes len bytes to path, created 0600 (must not exist: a local log is never overwritten). */
static int write_new(const char *path, const char *body, size_t len, drb_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	size_t off = 0;
	int rc = 0;

	if (fd < 0)
		return drb_err_set(
		    err, errno == EEXIST ? DRB_EINVAL : DRB_EIO, "%s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (a local copy exists: resume or verify it)" : "");
	while (off < len) {
		ssize_t n = write(fd, body + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = drb_err_set(err, DRB_EIO, "%s: write: %s", path, strerror(errno));
			break;
		}
		off += (size_t)n;
	}
	if (!rc && fsync(fd) != 0)
		rc = drb_err_set(err, DRB_EIO, "%s: fsync: %s", path, strerror(errno));
	close(fd);
	if (rc)
		unlink(path);
	return rc;
}

/* A log that is not there: name the runs that are under the same prefix (a typo in the run id
 * is the usual cause), at most 5. Best effort: err keeps the not-found code. */
static void name_runs(const char *bucket, const char *region, const char *prefix, size_t plen,
		      drb_err *err)
{
	char parent[1024], found[600] = "";
	drb_action_ctx ctx;
	drb_seam seam;
	json_t *keys = NULL, *k;
	size_t i, n = 0;

	snprintf(parent, sizeof(parent), "%.*s", (int)plen, prefix);
	s3_ctx(&ctx, &seam);
	if (drb_aws_s3_list(&ctx, region, bucket, parent, &keys, NULL))
		return;
	json_array_foreach(keys, i, k)
	{
		const char *key = json_string_value(k) + plen, *end = strchr(key, '/');
		size_t used = strlen(found);

		if (!end || strcmp(end, "/audit.jsonl") || n >= 5)
			continue;
		snprintf(found + used, sizeof(found) - used, "%s%.*s", n ? ", " : "",
			 (int)(end - key), key);
		n++;
	}
	json_decref(keys);
	if (err)
		snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
			 "; runs under s3://%s/%s: %s", bucket, parent, n ? found : "none");
}

int drb_evidence_fetch(const char *url, const char *runs_dir, char *log_out, size_t log_cap,
		       char *runbook_out, size_t rb_cap, char *base_out, size_t base_cap,
		       drb_err *err)
{
	char bucket[64], prefix[1024], key[1200], run[300];
	const char *slash, *region = getenv("DRBOOK_EVIDENCE_REGION");
	char *body = NULL;
	size_t len = 0;
	drb_action_ctx ctx;
	drb_seam seam;
	int rc;

	log_out[0] = runbook_out[0] = '\0';
	if (region && !*region)
		region = NULL;
	rc = drb_evidence_parse(url, bucket, sizeof(bucket), prefix, sizeof(prefix), err);
	if (rc)
		return rc;
	if (!*prefix)
		return drb_err_set(err, DRB_EINVAL, "%s: name the run: s3://BUCKET/PREFIX/RUN_ID",
				   url);
	slash = strrchr(prefix, '/');
	snprintf(run, sizeof(run), "%s", slash ? slash + 1 : prefix);
	/* the run id becomes a file name: refuse anything that could leave the folder */
	if (!strcmp(run, ".") || !strcmp(run, ".."))
		return drb_err_set(err, DRB_EINVAL, "%s: '%s' is not a run id", url, run);
	snprintf(base_out, base_cap, "s3://%s%s%.*s", bucket, slash ? "/" : "",
		 slash ? (int)(slash - prefix) : 0, prefix);
	if (!runs_dir)
		runs_dir = "drbook-runs";
	if (mkdir(runs_dir, 0700) != 0 && errno != EEXIST)
		return drb_err_set(err, DRB_EIO, "%s: %s", runs_dir, strerror(errno));
	snprintf(key, sizeof(key), "%s/audit.jsonl", prefix);
	s3_ctx(&ctx, &seam);
	rc = drb_aws_s3_get(&ctx, region, bucket, key, &body, &len, err);
	if (rc == DRB_ENOTFOUND)
		name_runs(bucket, region, prefix, slash ? (size_t)(slash - prefix) + 1 : 0, err);
	if (rc) {
		drb_err_prefix(err, "evidence s3://%s/%s: ", bucket, key);
		goto out;
	}
	snprintf(log_out, log_cap, "%s/%s.jsonl", runs_dir, run);
	rc = write_new(log_out, body, len, err);
	if (rc)
		goto out;
	free(body);
	body = NULL;
	/* the runbook is optional: a resume can use the one at the recorded path instead */
	snprintf(key, sizeof(key), "%s/runbook.yaml", prefix);
	s3_ctx(&ctx, &seam);
	if (drb_aws_s3_get(&ctx, region, bucket, key, &body, &len, NULL) == 0) {
		snprintf(runbook_out, rb_cap, "%s/%s.runbook.yaml", runs_dir, run);
		unlink(runbook_out); /* a stale copy: the sha256 check decides on the new one */
		if (write_new(runbook_out, body, len, NULL))
			runbook_out[0] = '\0';
	}
out:
	free(body);
	return rc;
}

static int by_key_desc(const void *a, const void *b)
{
	return -strcmp(*(const char *const *)a, *(const char *const *)b);
}

int drb_evidence_fetch_runs(const char *url, const char *dir, size_t max, size_t *fetched,
			    drb_err *err)
{
	char bucket[64], prefix[1024], parent[1030], path[4200];
	const char *region = getenv("DRBOOK_EVIDENCE_REGION"), **logs = NULL;
	drb_action_ctx ctx;
	drb_seam seam;
	json_t *keys = NULL, *k;
	size_t i, n = 0, plen;
	int rc;

	*fetched = 0;
	if (region && !*region)
		region = NULL;
	rc = drb_evidence_parse(url, bucket, sizeof(bucket), prefix, sizeof(prefix), err);
	if (rc)
		return rc;
	snprintf(parent, sizeof(parent), "%s%s", prefix, *prefix ? "/" : "");
	plen = strlen(parent);
	s3_ctx(&ctx, &seam);
	rc = drb_aws_s3_list(&ctx, region, bucket, parent, &keys, err);
	if (rc) {
		drb_err_prefix(err, "evidence s3://%s/%s: ", bucket, parent);
		goto out;
	}
	logs = calloc(json_array_size(keys) + 1, sizeof(*logs));
	if (!logs) {
		rc = drb_err_set(err, DRB_ENOMEM, "evidence: out of memory");
		goto out;
	}
	/* PREFIX/RUN_ID/audit.jsonl, RUN_ID one path part that may name a file */
	json_array_foreach(keys, i, k)
	{
		const char *key = json_string_value(k), *run = key + plen, *end;

		if (strlen(key) <= plen || !(end = strchr(run, '/')) || end == run ||
		    strcmp(end, "/audit.jsonl") || (end - run == 1 && run[0] == '.') ||
		    (end - run == 2 && !strncmp(run, "..", 2)))
			continue;
		logs[n++] = key;
	}
	qsort(logs, n, sizeof(*logs), by_key_desc);
	for (i = 0; i < n && *fetched < max; i++) {
		const char *run = logs[i] + plen;
		char *body = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%.*s.jsonl", dir,
			 (int)(strchr(run, '/') - run), run);
		s3_ctx(&ctx, &seam);
		rc = drb_aws_s3_get(&ctx, region, bucket, logs[i], &body, &len, err);
		if (rc == 0)
			rc = write_new(path, body, len, err);
		free(body);
		if (rc) {
			drb_err_prefix(err, "evidence s3://%s/%s: ", bucket, logs[i]);
			goto out;
		}
		(*fetched)++;
	}
out:
	free(logs);
	json_decref(keys);
	return rc;
}

json_t *drb_evidence_after(drb_run *r, drb_event ev)
{
	drb_err e = {0};
	int end = ev == DRB_EV_RUN_END;

	if (!r->evidence || (ev != DRB_EV_STEP_END && !end && ev != DRB_EV_RUN_RESUME))
		return NULL;
	if (drb_evidence_ship(r->evidence, &e) == 0)
		return NULL;
	/* the last copy is the one that matters most: give S3 a little longer */
	for (int i = 0; end && i < 2; i++) {
		drb_sleep_s(2.0 * (i + 1));
		if (drb_evidence_ship(r->evidence, &e) == 0)
			return NULL;
	}
	pthread_mutex_lock(&r->mu);
	if (!r->stop_reason[0])
		snprintf(r->stop_reason, sizeof(r->stop_reason),
			 "evidence: the log could not be copied to %s (%s)%s",
			 drb_evidence_base(r->evidence), e.msg,
			 end ? "" : ": the run stops before its next step");
	pthread_mutex_unlock(&r->mu);
	if (end)
		return NULL; /* nothing may follow run.end and its head; drb_run_body reports it */
	return json_pack("{s:s, s:s, s:s}", "evidence", drb_evidence_base(r->evidence), "after",
			 drb_event_name(ev), "error", e.msg);
}

int drb_evidence_probe(const char *url, drb_err *err)
{
	char bucket[64], prefix[900], probe[1000];
	const char *region = getenv("DRBOOK_EVIDENCE_REGION");
	drb_action_ctx ctx;
	drb_seam seam;
	json_t *keys = NULL;
	int rc;

	if ((rc = drb_evidence_parse(url, bucket, sizeof(bucket), prefix, sizeof(prefix), err)))
		return rc;
	/* a prefix that holds nothing: the answer proves the bucket answers and may be listed,
	 * without reading every run's evidence */
	snprintf(probe, sizeof(probe), "%s%sdrbook-readiness-probe/", prefix, *prefix ? "/" : "");
	s3_ctx(&ctx, &seam);
	rc = drb_aws_s3_list(&ctx, region && *region ? region : NULL, bucket, probe, &keys, err);
	json_decref(keys);
	if (rc)
		drb_err_prefix(err, "evidence bucket %s: ", bucket);
	return rc;
}
