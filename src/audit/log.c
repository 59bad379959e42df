/* Writing the audit log: creating it, reopening it to resume (verifying it and repairing an
 * interrupted last write), and appending records, each chained, MAC'd, written with one
 * write(2) and fsync'd under a mutex. Also loading HMAC keys from files. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <drbook/audit.h>
#include <drbook/util.h>

#include "audit_int.h"

static const char *const event_names[DRB_EV_COUNT] = {
    [DRB_EV_RUN_START] = "run.start",
    [DRB_EV_RUN_RESUME] = "run.resume",
    [DRB_EV_RUN_END] = "run.end",
    [DRB_EV_RESUME_REFUSED] = "resume.refused",
    [DRB_EV_STEP_START] = "step.start",
    [DRB_EV_STEP_RETRY] = "step.retry",
    [DRB_EV_STEP_POLL_ERROR] = "step.poll_error",
    [DRB_EV_STEP_END] = "step.end",
    [DRB_EV_CALL] = "call",
    [DRB_EV_EXEC_CHILD] = "exec.child",
    [DRB_EV_LUA_PRINT] = "lua.print",
    [DRB_EV_APPROVAL] = "approval",
    [DRB_EV_ROLLBACK_BEGIN] = "rollback.begin",
    [DRB_EV_ROLLBACK_START] = "rollback.start",
    [DRB_EV_ROLLBACK_END] = "rollback.end",
    [DRB_EV_ROLLBACK_SKIPPED] = "rollback.skipped",
    [DRB_EV_NOTIFY_FAILED] = "notify.failed",
    [DRB_EV_EVIDENCE_FAILED] = "evidence.failed",
    [DRB_EV_PLAN] = "plan",
    [DRB_EV_STOP_CONDITION] = "stop_condition",
    [DRB_EV_READINESS_CHECK] = "readiness.check",
    [DRB_EV_SHADOW_SETUP_BEGIN] = "shadow.setup.begin",
    [DRB_EV_SHADOW_SETUP_END] = "shadow.setup.end",
    [DRB_EV_SHADOW_TEARDOWN_BEGIN] = "shadow.teardown.begin",
    [DRB_EV_SHADOW_TEARDOWN_END] = "shadow.teardown.end",
    [DRB_EV_SHADOW_VIOLATION] = "shadow.violation",
    [DRB_EV_HEAD] = "head",
    [DRB_EV_AUDIT_REPAIRED] = "audit.repaired",
};

const char *drb_event_name(drb_event e)
{
	return (unsigned)e < DRB_EV_COUNT ? event_names[e] : "?";
}

int drb_event_of(const char *name)
{
	for (int i = 0; name && i < DRB_EV_COUNT; i++)
		if (!strcmp(event_names[i], name))
			return i;
	return -1;
}

#define KEY_FILE_MAX 4096
#define RUN_ID_MAX 256

struct drb_audit {
	pthread_mutex_t mu;
	int fd;
	char *path;
	char *run;	/* the run id */
	char *run_json; /* the run id as a JSON string, ready to paste into lines */
	unsigned char *key;
	size_t key_len;
	long seq;      /* seq of the last record written */
	char prev[65]; /* SHA-256 hex of the last line written */
	off_t size;    /* bytes in the file: where a failed write is cut back to */
	int broken;    /* a write failed in a way we could not undo: no further appends */
	const drb_audit_signkey *signer; /* borrowed; NULL: no head records */
	long since_head;		 /* records written since the last head */
};

/* A head after at most this many unsigned records: "at least every 100 records". */
#define HEAD_EVERY 99

/* A string as JSON text ("..." with escapes, ASCII only), or NULL when it is not valid UTF-8
 * or memory ran out. The caller frees it. */
static char *json_quote(const char *s)
{
	json_t *j = json_string(s);
	char *out = NULL;

	if (!j)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	return out;
}

/* mkdir -p of the folders above path; new ones are 0700, existing ones are left alone. */
static int mkdir_parents(const char *path, drb_err *err)
{
	char *p = drb_strdup(path);
	int rc = 0;

	if (!p)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			rc = drb_err_set(err, DRB_EIO, "%s: cannot create folder: %s", p,
					 strerror(errno));
			goto out;
		}
		*s = '/';
	}
out:
	free(p);
	return rc;
}

/* Makes the new file's directory entry durable, so a crash right after create does not lose
 * the log. Some file systems refuse fsync on a folder (EINVAL); that is not an error here. */
static int fsync_parent(const char *path, drb_err *err)
{
	char *dir = drb_strdup(path), *slash;
	int fd = -1, rc = 0;

	if (!dir)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (!slash) {
		free(dir);
		dir = drb_strdup(".");
		if (!dir)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = drb_err_set(err, DRB_EIO, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = drb_err_set(err, DRB_EIO, "%s: fsync: %s", dir, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* One writer per log: a second drbook process appending would fork the chain. The lock lives
 * as long as the descriptor. */
static int lock_log(int fd, const char *path, drb_err *err)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return drb_err_set(err, DRB_EDENIED,
				   "%s: the audit log is in use by another drbook process", path);
	return drb_err_set(err, DRB_EIO, "%s: lock: %s", path, strerror(errno));
}

static int handle_new(drb_audit **out, int fd, const char *path, const char *run,
		      const unsigned char *key, size_t key_len, drb_err *err)
{
	drb_audit *a = calloc(1, sizeof(*a));
	int rc = 0;

	*out = NULL;
	if (!a)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	a->fd = -1;
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		free(a);
		return drb_err_set(err, DRB_ENOMEM, "cannot create a mutex");
	}
	a->path = drb_strdup(path);
	a->run = drb_strdup(run);
	a->run_json = json_quote(run);
	if (key) {
		a->key = malloc(key_len);
		if (a->key) {
			memcpy(a->key, key, key_len);
			a->key_len = key_len;
		}
	}
	if (!a->path || !a->run || !a->run_json || (key && !a->key)) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	memset(a->prev, '0', 64);
	a->fd = fd; /* only now: on failure the caller still owns fd */
	*out = a;
	a = NULL;
out:
	drb_audit_close(a);
	return rc;
}

static int check_run_id(const char *run_id, drb_err *err)
{
	json_t *j = NULL;

	if (!run_id || !*run_id || strlen(run_id) > RUN_ID_MAX)
		return drb_err_set(err, DRB_EINVAL, "run id must be 1 to %d bytes", RUN_ID_MAX);
	j = json_string(run_id);
	if (!j)
		return drb_err_set(err, DRB_EINVAL, "run id is not valid UTF-8");
	json_decref(j);
	return 0;
}

int drb_audit_create(drb_audit **out, const char *path, const char *run_id,
		     const unsigned char *key, size_t key_len, drb_err *err)
{
	int fd = -1, rc = 0, created = 0;

	*out = NULL;
	if (!path || !*path) {
		rc = drb_err_set(err, DRB_EINVAL, "audit log path is empty");
		goto out;
	}
	rc = check_run_id(run_id, err);
	if (rc)
		goto out;
	if (key && !key_len) {
		rc = drb_err_set(err, DRB_EINVAL, "empty audit key");
		goto out;
	}
	rc = mkdir_parents(path, err);
	if (rc)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			rc = drb_err_set(err, DRB_EINVAL,
					 "%s: already exists; an audit log is never overwritten "
					 "(resume continues one)",
					 path);
		else
			rc = drb_err_set(err, DRB_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	created = 1;
	/* the umask may have taken bits away; the log is exactly 0600 whatever it is */
	if (fchmod(fd, 0600) != 0) {
		rc = drb_err_set(err, DRB_EIO, "%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	rc = lock_log(fd, path, err);
	if (rc)
		goto out;
	rc = fsync_parent(path, err);
	if (rc)
		goto out;
	rc = handle_new(out, fd, path, run_id, key, key_len, err);
	if (rc)
		goto out;
	fd = -1;
out:
	if (fd >= 0) {
		close(fd);
		if (created)
			unlink(path); /* nothing was written: let a retry create it */
	}
	return rc;
}

/* After an interrupted write: cuts the partial line (or completes a line that lost only its
 * newline) and records what was done, so the repair itself is part of the chain. */
static int repair(drb_audit *a, const drb_verify_result *res, const drb_audit_tail *tail,
		  drb_err *err)
{
	json_t *data = NULL;
	int rc = 0;

	if (res->kind == DRB_VERIFY_TRUNCATED) {
		long long cut = (long long)(tail->size - tail->good_end);

		if (ftruncate(a->fd, tail->good_end) != 0) {
			rc =
			    drb_err_set(err, DRB_EIO, "%s: truncate: %s", a->path, strerror(errno));
			goto out;
		}
		a->size = tail->good_end;
		data = json_pack("{s:s, s:I, s:i}", "reason",
				 "the last write was interrupted (crash or kill); its incomplete "
				 "line was cut off",
				 "cut_bytes", (json_int_t)cut, "line", (int)res->line);
	} else {
		ssize_t n;

		do
			n = write(a->fd, "\n", 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			rc = drb_err_set(err, DRB_EIO, "%s: write: %s", a->path,
					 n < 0 ? strerror(errno) : "short write");
			goto out;
		}
		a->size = tail->good_end + 1;
		data = json_pack("{s:s, s:I, s:b}", "reason",
				 "the last line was complete but lacked its newline; one was added",
				 "cut_bytes", (json_int_t)0, "added_newline", 1);
	}
	if (!data) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	rc = drb_audit_append(a, drb_event_name(DRB_EV_AUDIT_REPAIRED), NULL, data, err);
out:
	json_decref(data);
	return rc;
}

int drb_audit_open_append(drb_audit **out, const char *path, const unsigned char *key,
			  size_t key_len, drb_err *err)
{
	drb_verify_result res;
	drb_audit_tail tail;
	drb_audit *a = NULL;
	struct stat st;
	int fd = -1, rc = 0;

	*out = NULL;
	memset(&tail, 0, sizeof(tail));
	if (!path || !*path) {
		rc = drb_err_set(err, DRB_EINVAL, "audit log path is empty");
		goto out;
	}
	if (key && !key_len) {
		rc = drb_err_set(err, DRB_EINVAL, "empty audit key");
		goto out;
	}
	/* read access too: the chain is verified through this same descriptor, under its lock */
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		rc = drb_err_set(err, errno == ENOENT ? DRB_ENOTFOUND : DRB_EIO, "%s: %s", path,
				 strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	rc = lock_log(fd, path, err);
	if (rc)
		goto out;
	rc = drb_audit_scan_fd(fd, path, key, key_len, NULL, &res, &tail, err);
	if (rc)
		goto out;
	if (res.kind != DRB_VERIFY_OK && res.kind != DRB_VERIFY_TRUNCATED) {
		rc = drb_err_set(err, DRB_EINTEGRITY, "%s: refusing to append: %s", path, res.msg);
		goto out;
	}
	if (!tail.seq) {
		rc = drb_err_set(err, DRB_EINTEGRITY,
				 "%s: refusing to append: the log holds no complete record (%s)",
				 path, res.msg);
		goto out;
	}
	if (!key && tail.has_mac) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: the log's records carry MACs: give its key to append to it",
				 path);
		goto out;
	}
	rc = handle_new(&a, fd, path, tail.run, key, key_len, err);
	if (rc)
		goto out;
	fd = -1;
	a->seq = tail.seq;
	memcpy(a->prev, tail.prev, sizeof(a->prev));
	a->size = tail.good_end;
	a->since_head = tail.since_head;
	if (res.kind == DRB_VERIFY_TRUNCATED || tail.missing_nl) {
		rc = repair(a, &res, &tail, err);
		if (rc)
			goto out;
	}
	*out = a;
	a = NULL;
out:
	drb_audit_close(a);
	if (fd >= 0)
		close(fd);
	free(tail.run);
	return rc;
}

/* Undoes a failed or short write so the file ends on a whole line again; if even that fails
 * the handle refuses further appends, which would otherwise be glued to a partial line. */
static void undo_write(drb_audit *a)
{
	if (ftruncate(a->fd, a->size) != 0)
		a->broken = 1;
}

/* Writes one record line (event_s and step_s already JSON text, data_s serialised data) with
 * one write(2) and fsync. Called with a->mu held. */
static int write_line(drb_audit *a, const char *event, const char *event_s, const char *step_s,
		      const char *data_s, drb_err *err)
{
	char ts[32], hash[65], seq[24];
	drb_buf line;
	int rc = 0;

	drb_buf_init(&line, (size_t)DRB_AUDIT_LINE_MAX + 1); /* + its newline */
	if (a->broken) {
		rc = drb_err_set(err, DRB_EIO,
				 "%s: an earlier write failed and could not be undone; the log "
				 "takes no more records",
				 a->path);
		goto out;
	}
	drb_rfc3339_ms(drb_wall_ms(), ts);
	/* the fields in their order, appended: a printf per record cost more than its hash */
	snprintf(seq, sizeof(seq), "%ld", a->seq + 1);
	{
		const char *parts[] = {DRB_AUDIT_LINE_START, seq,	  ",\"ts\":\"",	 ts,
				       "\",\"run\":",	     a->run_json, ",\"event\":", event_s,
				       ",\"step\":",	     step_s,	  ",\"data\":",	 data_s,
				       ",\"prev\":\"",	     a->prev,	  "\""};

		for (size_t i = 0; !rc && i < sizeof(parts) / sizeof(parts[0]); i++)
			rc = drb_buf_puts(&line, parts[i]);
	}
	if (!rc && a->key) {
		unsigned char md[32];
		char mac[65];

		drb_hmac_sha256(a->key, a->key_len, line.p, line.len, md);
		drb_hex(md, 32, mac);
		rc = drb_buf_printf(&line, ",\"mac\":\"%s\"}", mac);
	} else if (!rc) {
		rc = drb_buf_puts(&line, "}");
	}
	if (!rc && line.len > DRB_AUDIT_LINE_MAX)
		rc = DRB_ELIMIT;
	if (rc) {
		rc = drb_err_set(err, rc, "audit %s: %s", event,
				 rc == DRB_ELIMIT ? "record longer than DRB_AUDIT_LINE_MAX refused"
						  : "out of memory");
		goto out;
	}
	drb_sha256_hex(line.p, line.len, hash);
	rc = drb_buf_puts(&line, "\n");
	if (rc) {
		rc = drb_err_set(err, rc, "audit %s: out of memory", event);
		goto out;
	}
	{
		ssize_t n;

		do
			n = write(a->fd, line.p, line.len);
		while (n < 0 && errno == EINTR);
		if (n < 0 || (size_t)n != line.len) {
			int e = n < 0 ? errno : 0;

			rc = drb_err_set(err, DRB_EIO, "%s: write: %s", a->path,
					 e ? strerror(e) : "short write");
			if (err)
				err->cause = e;
			undo_write(a);
			goto out;
		}
	}
	/* the action this record announces must not start before the record is on disk */
	if (fsync(a->fd) != 0) {
		rc = drb_err_set(err, DRB_EIO, "%s: fsync: %s", a->path, strerror(errno));
		/* after a failed fsync the kernel may have dropped the page: we cannot know what
		 * the file holds, so the chain cannot safely go on */
		a->broken = 1;
		goto out;
	}
	a->seq++;
	memcpy(a->prev, hash, sizeof(a->prev));
	a->size += (off_t)line.len;
out:
	drb_buf_free(&line);
	return rc;
}

/* Signs the record just written (a->seq, a->prev) with a head record. a->mu held. */
static int write_head(drb_audit *a, drb_err *err)
{
	char sig[129], data[256];
	int rc;

	rc = drb_audit_head_sign(a->signer, a->run, a->seq, a->prev, sig, err);
	if (rc)
		return drb_err_prefix(err, "audit head: ");
	snprintf(data, sizeof(data), "{\"seq\":%ld,\"sha256\":\"%s\",\"sig\":\"%s\"}", a->seq,
		 a->prev, sig);
	rc = write_line(a, DRB_AUDIT_HEAD, "\"" DRB_AUDIT_HEAD "\"", "null", data, err);
	if (!rc)
		a->since_head = 0;
	return rc;
}

/* event or step as JSON text into b (NULL step: null); DRB_AUDIT_DUMP_SLOW when not UTF-8 */
static int quote_into(drb_buf *b, const char *s)
{
	return s ? drb_audit_json_string(b, s, strlen(s)) : drb_buf_puts(b, "null");
}

/* The data's text the two-pass way (scrub, then json_dumps), for what drb_audit_scrub_dump
 * leaves to it. */
static int dump_slow(const json_t *data, drb_buf *out)
{
	json_t *clean = drb_audit_scrub(data);
	char *s = NULL;
	int rc;

	out->len = 0;
	if (!clean)
		return DRB_ENOMEM;
	s = json_dumps(clean, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	rc = s ? drb_buf_puts(out, s) : DRB_AUDIT_DUMP_SLOW;
	free(s);
	json_decref(clean);
	return rc;
}

int drb_audit_append(drb_audit *a, const char *event, const char *step, const json_t *data,
		     drb_err *err)
{
	int hid;

	return drb_audit_append_hid(a, event, step, data, &hid, err);
}

int drb_audit_append_hid(drb_audit *a, const char *event, const char *step, const json_t *data,
			 int *hid, drb_err *err)
{
	drb_buf data_b, event_b, step_b;
	int rc = 0, locked = 0, qe, qs;

	drb_buf_init(&data_b, DRB_AUDIT_LINE_MAX);
	drb_buf_init(&event_b, DRB_AUDIT_LINE_MAX);
	drb_buf_init(&step_b, DRB_AUDIT_LINE_MAX);
	if (!a || !event || !*event) {
		rc = drb_err_set(err, DRB_EINVAL, "audit append: no log or no event");
		goto out;
	}
	if (!strcmp(event, DRB_AUDIT_HEAD)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "audit append: head records are written by the log itself");
		goto out;
	}
	if (data && !json_is_object(data)) {
		rc = drb_err_set(err, DRB_EINVAL, "audit %s: data must be a JSON object", event);
		goto out;
	}
	/* the slow part (scrub and serialise, one pass) happens before taking the lock */
	*hid = 0;
	rc = data ? drb_audit_scrub_dump(data, &data_b, hid) : drb_buf_puts(&data_b, "{}");
	if (rc == DRB_AUDIT_DUMP_SLOW) {
		*hid = 1; /* the two passes: say hidden, and the caller scrubs its own view */
		rc = dump_slow(data, &data_b);
	}
	qe = quote_into(&event_b, event);
	qs = quote_into(&step_b, step);
	if (rc == DRB_ENOMEM || qe || qs) {
		rc = drb_err_set(err, qe || qs ? DRB_EINVAL : DRB_ENOMEM, "audit %s: %s", event,
				 rc == DRB_ENOMEM ? "out of memory"
						  : "event or step is not valid UTF-8");
		goto out;
	}
	if (rc == DRB_AUDIT_DUMP_SLOW) {
		rc = drb_err_set(err, DRB_ENOMEM, "audit %s: cannot serialise data", event);
		goto out;
	}
	if (rc == DRB_ELIMIT) {
		rc = drb_err_set(err, DRB_ELIMIT, "audit %s: record of more than %u bytes refused",
				 event, DRB_AUDIT_LINE_MAX);
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	locked = 1;
	rc = write_line(a, event, event_b.p, step_b.p, data_b.p, err);
	if (rc)
		goto out;
	a->since_head++;
	/* the head goes out under the same lock: no record can slip between it and what it signs */
	if (a->signer && (drb_event_of(event) == DRB_EV_RUN_START ||
			  drb_event_of(event) == DRB_EV_RUN_END || a->since_head >= HEAD_EVERY))
		rc = write_head(a, err);
out:
	if (locked)
		pthread_mutex_unlock(&a->mu);
	drb_buf_free(&data_b);
	drb_buf_free(&event_b);
	drb_buf_free(&step_b);
	return rc;
}

int drb_audit_sign_with(drb_audit *a, const drb_audit_signkey *k, drb_err *err)
{
	drb_verify_result res;
	int rc = 0;

	if (!a || !k)
		return drb_err_set(err, DRB_EINVAL, "audit sign: no log or no key");
	pthread_mutex_lock(&a->mu);
	if (a->seq > 0) {
		/* resume: do not sign on top of heads this key did not make */
		rc = drb_audit_scan_fd(a->fd, a->path, a->key, a->key_len, k, &res, NULL, err);
		if (!rc && (res.kind == DRB_VERIFY_BAD_SIG || res.kind == DRB_VERIFY_TAMPERED ||
			    res.kind == DRB_VERIFY_BAD_MAC || res.kind == DRB_VERIFY_MALFORMED))
			rc = drb_err_set(err, DRB_EINTEGRITY,
					 "%s:%ld: refusing to sign: %s (is this the run's signing "
					 "key?)",
					 a->path, res.line, res.msg);
	}
	if (!rc)
		a->signer = k;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

const char *drb_audit_run_id(const drb_audit *a)
{
	return a ? a->run : NULL;
}

const char *drb_audit_path(const drb_audit *a)
{
	return a ? a->path : NULL;
}

long drb_audit_seq(const drb_audit *a)
{
	drb_audit *m = (drb_audit *)a; /* the mutex is the only thing touched */
	long seq;

	if (!a)
		return 0;
	pthread_mutex_lock(&m->mu);
	seq = a->seq;
	pthread_mutex_unlock(&m->mu);
	return seq;
}

void drb_audit_close(drb_audit *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	if (a->key) {
		OPENSSL_cleanse(a->key, a->key_len);
		free(a->key);
	}
	free(a->path);
	free(a->run);
	free(a->run_json);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* Not drb_file_read: a key must not linger in freed heap or in a stack chunk, so it is read
 * into one buffer that is wiped on the way out. */
int drb_audit_key_load(const char *path, unsigned char **key, size_t *key_len, drb_err *err)
{
	unsigned char buf[KEY_FILE_MAX + 1];
	struct stat st;
	size_t n = 0;
	int fd = -1, rc = 0;

	*key = NULL;
	*key_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = drb_err_set(err, errno == ENOENT ? DRB_ENOTFOUND : DRB_EIO,
				 "audit key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = drb_err_set(err, DRB_EINVAL, "audit key file %s: not a regular file", path);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = drb_err_set(err, DRB_EIO, "audit key file %s: %s", path,
					 strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KEY_FILE_MAX) {
		rc = drb_err_set(err, DRB_ELIMIT, "audit key file %s: larger than %d bytes", path,
				 KEY_FILE_MAX);
		goto out;
	}
	/* editors add one newline; a key that really ends in newlines keeps the others */
	if (n && buf[n - 1] == '\n') {
		n--;
		if (n && buf[n - 1] == '\r')
			n--;
	}
	if (!n) {
		rc = drb_err_set(err, DRB_EINVAL, "audit key file %s: empty key", path);
		goto out;
	}
	*key = malloc(n);
	if (!*key) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*key, buf, n);
	*key_len = n;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}
