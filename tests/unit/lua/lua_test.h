/* Shared fixture for the src/lua tests: a sandbox with its own temporary lib_dir and
 * runbook_dir (removed again in teardown), print lines captured, and small file helpers. */
#ifndef DRB_TEST_LUA_TEST_H
#define DRB_TEST_LUA_TEST_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <drbook/lua.h>
#include <drbook/util.h>

typedef struct lt_fix {
	char root[64]; /* mkdtemp folder holding lib/, runbook/ and outside/ */
	char lib[128], rb[128], outside[128];
	drb_lua *L;
	char printed[16][256];
	int nprinted;
	/* set before lt_open to give the sandbox a stop flag and a run deadline */
	const volatile int *cancel;
	const volatile double *stop_at;
} lt_fix;

static inline void lt_print(void *ud, const char *line)
{
	lt_fix *f = ud;

	if (f->nprinted < 16)
		snprintf(f->printed[f->nprinted++], sizeof(f->printed[0]), "%s", line);
}

/* Writes content to dir/rel, creating one level of sub-folder when rel has a '/'. */
static inline int lt_write(const char *dir, const char *rel, const char *content)
{
	char path[512];
	const char *slash = strchr(rel, '/');
	FILE *fp = NULL;

	if (slash) {
		snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(slash - rel), rel);
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fp = fopen(path, "w");
	if (!fp)
		return -1;
	fputs(content, fp);
	return fclose(fp) == 0 ? 0 : -1;
}

static inline void lt_rmtree(const char *path)
{
	struct stat st;
	DIR *d = NULL;
	struct dirent *e = NULL;
	char sub[1024];

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		d = opendir(path);
		while (d && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			lt_rmtree(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Creates the folders and a sandbox with the given limits (0 = defaults). */
static inline int lt_open(lt_fix *f, size_t mem, long long instr, double secs)
{
	drb_lua_opts o;
	drb_err e = {0};

	snprintf(f->root, sizeof(f->root), "/tmp/drb-lua-test-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->lib, sizeof(f->lib), "%s/lib", f->root);
	snprintf(f->rb, sizeof(f->rb), "%s/runbook", f->root);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->root);
	if (mkdir(f->lib, 0700) || mkdir(f->rb, 0700) || mkdir(f->outside, 0700))
		return -1;
	memset(&o, 0, sizeof(o));
	o.mem_limit = mem;
	o.instr_limit = instr;
	o.time_limit = secs;
	o.lib_dir = f->lib;
	o.runbook_dir = f->rb;
	o.print = lt_print;
	o.print_ud = f;
	o.cancel = f->cancel;
	o.stop_at = f->stop_at;
	if (drb_lua_new(&f->L, &o, &e) != 0) {
		fprintf(stderr, "drb_lua_new: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static inline int lt_setup(void **state)
{
	lt_fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return lt_open(f, 0, 0, 0);
}

static inline int lt_teardown(void **state)
{
	lt_fix *f = *state;

	if (!f)
		return 0;
	drb_lua_free(f->L);
	if (f->root[0])
		lt_rmtree(f->root);
	free(f);
	return 0;
}

/* Parses JSON text for expectations (aborts the test program on a typo in the test). */
static inline json_t *lt_json(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (!j) {
		fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
		abort();
	}
	return j;
}

/* Compact, key-sorted text of v, for comparing in assertions (static buffer). */
static inline const char *lt_dump(const json_t *v)
{
	static char buf[4096];
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
				    JSON_REAL_PRECISION(15));

	snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
	free(s);
	return buf;
}

static inline double lt_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs attempt (which must return 1 when the sandbox stopped the script as expected) and
 * checks that it took under a second by drb_mono_now. The test machine is shared by several
 * builds: when an attempt took longer on the wall clock but used less than a second of CPU,
 * the time went to waiting for a CPU, not to the script, so it is tried again (3 attempts).
 * Every attempt must stay under a second of CPU time; when all three were slowed by the
 * machine, the CPU time alone decides. Returns 1 on success. */
static inline int lt_stops_within_1s(int (*attempt)(void *arg), void *arg)
{
	for (int i = 0; i < 3; i++) {
		double w0 = drb_mono_now(), c0 = lt_cpu_now(), wall, cpu;
		int ok = attempt(arg);

		wall = drb_mono_now() - w0;
		cpu = lt_cpu_now() - c0;
		if (!ok || cpu >= 1.0) {
			fprintf(stderr, "attempt %d: ok %d, %.3f s wall, %.3f s CPU\n", i, ok, wall,
				cpu);
			return 0;
		}
		if (wall < 1.0)
			return 1;
		fprintf(stderr, "attempt %d: %.3f s wall but %.3f s CPU: machine busy, again\n", i,
			wall, cpu);
	}
	/* Three times under a second of CPU but over a second of wall: the machine is too busy
	 * for the wall clock to say anything; the CPU time shows the budget stopped the code
	 * (without the budget the code runs until the time limit, seconds of CPU). */
	fprintf(stderr, "machine busy every time: judged by CPU time\n");
	return 1;
}

#endif
