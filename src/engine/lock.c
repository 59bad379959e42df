/* Run locks: one run per lock key at a time, whatever runbook, folder or working directory it
 * starts from. Each key is flock(2) on a file in one machine-wide folder ($DRBOOK_LOCK_DIR,
 * else /run/drbook/locks for root, else $XDG_RUNTIME_DIR/drbook/locks); the kernel drops the
 * lock when the process dies, so a crashed run never leaves a stale one. The file holds a note
 * naming the holder (run, operator, host, pid) for the refusal message. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#include "engine_int.h"

#define LEASE_TTL_DEFAULT_S 30.0
#define LEASE_CALL_TIMEOUT_S 10.0

struct drb_lockset {
	char dir[PATH_MAX];
	size_t n;
	char **keys; /* sorted, unique; keys[i] is held through fds[i] */
	int *fds;
	/* DRBOOK_LEASE_TABLE: a DynamoDB lease per key besides the local flock */
	char *table, *region, *run_id, *holder;
	double ttl_s;
	long long *tokens; /* tokens[i] > 0 while keys[i]'s lease is held */
	pthread_t renewer;
	int renewing, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	volatile int *cancel; /* set when a lease is lost: nothing more may start */
};

/* Lease calls are the run's own bookkeeping, made before run.start: performed directly. */
static int direct_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
		       json_t **response, drb_err *err)
{
	(void)s;
	(void)c;
	return perform(arg, response, err);
}

static void lease_ctx(drb_action_ctx *ctx, drb_seam *seam)
{
	memset(ctx, 0, sizeof(*ctx));
	seam->call = direct_call;
	seam->ud = NULL;
	ctx->seam = seam;
	ctx->step_id = "run lease";
	ctx->deadline = drb_mono_now() + LEASE_CALL_TIMEOUT_S;
}

static void lease_cfg(const drb_lockset *ls, drb_aws_lease_cfg *cfg)
{
	cfg->table = ls->table;
	cfg->region = ls->region;
	cfg->run_id = ls->run_id;
	cfg->holder = ls->holder;
	cfg->ttl_s = ls->ttl_s;
}

/* Renews every lease at a third of its time to live. A lease taken over, or not renewed for a
 * whole ttl (the table unreachable), may already be someone else's: the run is stopped. */
static void *renew_loop(void *arg)
{
	drb_lockset *ls = arg;
	double last_ok = drb_mono_now();

	pthread_mutex_lock(&ls->mu);
	while (!ls->stop) {
		int lost = 0, failed = 0;

		/* monotonic: a wall clock set back must not stretch the lease's renewal */
		drb_cond_wait_s(&ls->cv, &ls->mu, ls->ttl_s / 3);
		if (ls->stop)
			break;
		pthread_mutex_unlock(&ls->mu);
		for (size_t i = 0; i < ls->n; i++) {
			drb_action_ctx ctx;
			drb_seam seam;
			drb_aws_lease_cfg cfg;
			drb_err e;
			int rc;

			if (ls->tokens[i] <= 0)
				continue;
			memset(&e, 0, sizeof(e));
			lease_ctx(&ctx, &seam);
			lease_cfg(ls, &cfg);
			rc = drb_aws_lease_renew(&ctx, &cfg, ls->keys[i], ls->tokens[i], &e);
			if (rc == DRB_EDENIED)
				lost = 1;
			else if (rc)
				failed = 1;
		}
		if (!failed && !lost)
			last_ok = drb_mono_now();
		if (lost || drb_mono_now() - last_ok >= ls->ttl_s)
			*ls->cancel = 1;
		pthread_mutex_lock(&ls->mu);
	}
	pthread_mutex_unlock(&ls->mu);
	return NULL;
}

static int leases_take(drb_lockset *ls, const char *table, const char *run_id, const char *holder,
		       drb_err *err)
{
	const char *region = getenv("DRBOOK_LEASE_REGION"), *ttl = getenv("DRBOOK_LEASE_TTL");

	ls->ttl_s = LEASE_TTL_DEFAULT_S;
	if (ttl && *ttl && (drb_duration_parse(ttl, &ls->ttl_s) || ls->ttl_s < 3))
		return drb_err_set(err, DRB_EINVAL,
				   "DRBOOK_LEASE_TTL '%.40s' must be a duration of at least 3s",
				   ttl);
	if (!(ls->table = strdup(table)) || !(ls->run_id = strdup(run_id)) ||
	    !(ls->holder = strdup(holder)) ||
	    (region && *region && !(ls->region = strdup(region))) ||
	    !(ls->tokens = calloc(ls->n ? ls->n : 1, sizeof(long long))))
		return drb_err_set(err, DRB_ENOMEM, "run lease: out of memory");
	for (size_t i = 0; i < ls->n; i++) {
		drb_action_ctx ctx;
		drb_seam seam;
		drb_aws_lease_cfg cfg;
		int rc;

		if (i && !strcmp(ls->keys[i], ls->keys[i - 1]))
			continue;
		lease_ctx(&ctx, &seam);
		lease_cfg(ls, &cfg);
		if ((rc = drb_aws_lease_take(&ctx, &cfg, ls->keys[i], &ls->tokens[i], err)))
			return rc;
	}
	if (pthread_create(&ls->renewer, NULL, renew_loop, ls) != 0)
		return drb_err_set(err, DRB_ENOMEM, "run lease: cannot start the renewer");
	ls->renewing = 1;
	return 0;
}

static void leases_release(drb_lockset *ls)
{
	if (ls->renewing) {
		pthread_mutex_lock(&ls->mu);
		ls->stop = 1;
		pthread_cond_signal(&ls->cv);
		pthread_mutex_unlock(&ls->mu);
		pthread_join(ls->renewer, NULL);
	}
	for (size_t i = 0; ls->tokens && i < ls->n; i++) {
		drb_action_ctx ctx;
		drb_seam seam;
		drb_aws_lease_cfg cfg;
		drb_err e;

		if (ls->tokens[i] <= 0)
			continue;
		memset(&e, 0, sizeof(e));
		lease_ctx(&ctx, &seam);
		lease_cfg(ls, &cfg);
		/* a failed release only delays the next run until the lease expires */
		drb_aws_lease_release(&ctx, &cfg, ls->keys[i], ls->tokens[i], &e);
	}
	free(ls->tokens);
	free(ls->table);
	free(ls->region);
	free(ls->run_id);
	free(ls->holder);
}

int drb_lock_dir(char *buf, size_t cap, drb_err *err)
{
	const char *env = getenv("DRBOOK_LOCK_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(buf, cap, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/run/drbook/locks");
	else if (xdg && *xdg == '/')
		n = snprintf(buf, cap, "%s/drbook/locks", xdg);
	else /* no per-user runtime folder: one per user under /tmp, still machine-wide */
		n = snprintf(buf, cap, "/tmp/drbook-%u/locks", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= cap)
		return drb_err_set(err, DRB_EINVAL, "run lock folder: path too long");
	if (buf[0] != '/')
		return drb_err_set(
		    err, DRB_EINVAL,
		    "run lock folder '%.200s' must be an absolute path (DRBOOK_LOCK_DIR)", buf);
	return 0;
}

/* mkdir -p, each created level 0700 (an existing folder keeps its mode, so a shared one made
 * by an administrator with the sticky bit works for every user). */
static int make_dirs(const char *path, drb_err *err)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1;; s++) {
		int last = *s == '\0';

		if (*s == '/' || last) {
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return drb_err_set(err, DRB_EIO, "run lock folder %s: %s", p,
						   strerror(errno));
			if (last)
				break;
			*s = '/';
		}
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return drb_err_set(err, DRB_EIO, "run lock folder %s is not a folder", path);
	return 0;
}

/* A key as a file name: letters, digits and ._:@=+,- stay, every other byte is %XX, and a
 * leading '.' too, so distinct keys never share a file ("a/b" and "a_b" differ). Keys are at
 * most DRB_LOCK_KEY_MAX bytes (checked by validate), so the name fits NAME_MAX. */
static void key_file(char *out, size_t cap, const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for (size_t i = 0; key[i] && j + 4 < cap; i++) {
		unsigned char c = (unsigned char)key[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (strchr("._:@=+,-", c) && !(c == '.' && i == 0))) {
			out[j++] = (char)c;
		} else {
			out[j++] = '%';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Takes one key; on refusal err names the holder from the note it left. */
static int take_one(const char *dir, const char *key, const char *note, int *fd, drb_err *err)
{
	char name[NAME_MAX + 1], path[PATH_MAX + NAME_MAX + 8], holder[512] = "";
	int f;

	key_file(name, sizeof(name) - 5, key);
	snprintf(path, sizeof(path), "%s/%s.lock", dir, name);
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return drb_err_set(err, DRB_EDENIED, "run lock '%s': cannot open %s: %s", key, path,
				   strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = pread(f, holder, sizeof(holder) - 1, 0);

		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		close(f);
		return drb_err_set(err, DRB_EDENIED,
				   "run lock '%s' is held by %s: refusing to start a second run",
				   key, holder[0] ? holder : "another run (no holder note)");
	}
	if (ftruncate(f, 0) == 0 && pwrite(f, note, strlen(note), 0) < 0) {
		/* the lock holds without the note */
	}
	*fd = f;
	return 0;
}

int drb_lockset_take(drb_lockset **out, const char *const *keys, size_t n, const char *run_id,
		     const char *holder, volatile int *cancel, drb_err *err)
{
	drb_lockset *ls = calloc(1, sizeof(*ls));
	const char *table = getenv("DRBOOK_LEASE_TABLE");
	char note[600];
	int rc = 0;

	*out = NULL;
	if (ls) {
		pthread_mutex_init(&ls->mu, NULL);
		drb_cond_init_mono(&ls->cv);
		ls->cancel = cancel;
	}
	if (!ls || !(ls->keys = calloc(n ? n : 1, sizeof(char *))) ||
	    !(ls->fds = calloc(n ? n : 1, sizeof(int)))) {
		rc = drb_err_set(err, DRB_ENOMEM, "run lock: out of memory");
		goto out;
	}
	if ((rc = drb_lock_dir(ls->dir, sizeof(ls->dir), err)) || (rc = make_dirs(ls->dir, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!(ls->keys[ls->n] = strdup(keys[i]))) {
			rc = drb_err_set(err, DRB_ENOMEM, "run lock: out of memory");
			goto out;
		}
		ls->fds[ls->n++] = -1;
	}
	/* One order for every run, so two runs wanting overlapping sets cannot each hold half. */
	qsort(ls->keys, ls->n, sizeof(char *), cmp_str);
	snprintf(note, sizeof(note), "%s\n", holder);
	for (size_t i = 0; i < ls->n; i++) {
		if (i && !strcmp(ls->keys[i], ls->keys[i - 1]))
			continue;
		if ((rc = take_one(ls->dir, ls->keys[i], note, &ls->fds[i], err)))
			goto out;
	}
	/* the local lock first: two runs on one machine never race for the table */
	if (table && *table && (rc = leases_take(ls, table, run_id, holder, err)))
		goto out;
	*out = ls;
	ls = NULL;
out:
	drb_lockset_release(ls);
	return rc;
}

json_t *drb_lockset_leases(const drb_lockset *ls)
{
	json_t *a;

	if (!ls || !ls->tokens)
		return NULL;
	a = json_array();
	for (size_t i = 0; a && i < ls->n; i++)
		if (ls->tokens[i] > 0)
			json_array_append_new(a, json_pack("{s:s, s:I, s:s}", "key", ls->keys[i],
							   "token", (json_int_t)ls->tokens[i],
							   "table", ls->table));
	return a;
}

json_t *drb_lockset_keys(const drb_lockset *ls)
{
	json_t *a = json_array();

	for (size_t i = 0; ls && a && i < ls->n; i++)
		json_array_append_new(a, json_string(ls->keys[i]));
	return a;
}

void drb_lockset_release(drb_lockset *ls)
{
	if (!ls)
		return;
	leases_release(ls); /* before the flocks: the next local run may take the lease at once */
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->fds && ls->fds[i] >= 0) {
			flock(ls->fds[i], LOCK_UN);
			close(ls->fds[i]);
		}
		free(ls->keys[i]);
	}
	free(ls->keys);
	free(ls->fds);
	pthread_mutex_destroy(&ls->mu);
	pthread_cond_destroy(&ls->cv);
	free(ls);
}

json_t *drb_run_lock_keys(const drb_runbook *rb, int shadow)
{
	json_t *a = json_array();
	const char *pre = shadow ? "shadow:" : "";

	for (size_t i = 0; a && i < rb->n_locks; i++)
		json_array_append_new(a, json_sprintf("%s%s", pre, rb->locks[i]));
	if (a && !rb->n_locks)
		json_array_append_new(a, json_sprintf("%s%s", pre, rb->name));
	return a;
}

int drb_run_lock_take(drb_lockset **out, const drb_runbook *rb, const json_t *recorded,
		      int shadow, const char *run_id, volatile int *cancel, drb_err *err)
{
	const char *keys[DRB_LOCK_KEYS_MAX];
	char holder[512], op[256], host[256] = "unknown";
	json_t *mine = NULL, *k;
	size_t n = 0, i;
	int rc;

	if (json_is_string(recorded)) { /* logs before lock lists recorded one key */
		keys[n++] = json_string_value(recorded);
	} else {
		if (!json_is_array(recorded) || !json_array_size(recorded))
			recorded = mine = drb_run_lock_keys(rb, shadow);
		if (!recorded)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
		json_array_foreach(recorded, i, k)
		{
			if (!json_is_string(k) || n == sizeof(keys) / sizeof(keys[0])) {
				json_decref(mine);
				return drb_err_set(err, DRB_EINVAL,
						   "run.start records an unusable lock list");
			}
			keys[n++] = json_string_value(k);
		}
	}
	gethostname(host, sizeof(host) - 1);
	snprintf(holder, sizeof(holder), "run %s (operator %s on host %s, pid %d)", run_id,
		 drb_operator(op, sizeof(op)), host, (int)getpid());
	rc = drb_lockset_take(out, keys, n, run_id, holder, cancel, err);
	json_decref(mine);
	return rc;
}

int drb_lease_probe(const drb_runbook *rb, char *out, size_t cap, drb_err *err)
{
	const char *table = getenv("DRBOOK_LEASE_TABLE"), *region = getenv("DRBOOK_LEASE_REGION");
	drb_aws_lease_cfg cfg = {0};
	drb_action_ctx ctx;
	drb_seam seam;
	size_t used = 0;
	int rc = 0;

	out[0] = '\0';
	if (!table || !*table)
		return 1;
	cfg.table = table;
	cfg.region = region && *region ? region : NULL;
	for (size_t i = 0; rc == 0 && i < (rb->n_locks ? rb->n_locks : 1); i++) {
		const char *key = rb->n_locks ? rb->locks[i] : rb->name;
		char one[700];

		lease_ctx(&ctx, &seam);
		rc = drb_aws_lease_peek(&ctx, &cfg, key, one, sizeof(one), err);
		if (rc)
			drb_err_prefix(err, "lease table %s, key %s: ", table, key);
		else if (used < cap)
			used += (size_t)snprintf(out + used, cap - used, "%s%s: %s",
						 used ? "; " : "", key, one);
	}
	return rc;
}
