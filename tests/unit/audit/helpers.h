/* Shared fixtures of the audit tests: a private temporary folder per test (removed in
 * teardown, also when the test fails), whole-file reads and writes, and line surgery for the
 * tampering cases. Header-only because each test file is its own program. */
#ifndef DRB_TEST_AUDIT_HELPERS_H
#define DRB_TEST_AUDIT_HELPERS_H

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <drbook/audit.h>

typedef struct fixture {
	char dir[256];
	char path[320]; /* dir/audit.jsonl */
} fixture;

/* rm -rf of the fixture folder (no symlinks are followed: lstat) */
static __attribute__((unused)) void rm_rf(const char *p)
{
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (lstat(p, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(p)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			char sub[1024];

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", p, e->d_name);
			rm_rf(sub);
		}
		closedir(d);
	}
	remove(p);
}

static __attribute__((unused)) int fx_setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/drb-audit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
	*state = f;
	return 0;
}

static __attribute__((unused)) int fx_teardown(void **state)
{
	fixture *f = *state;

	if (f) {
		rm_rf(f->dir);
		free(f);
	}
	return 0;
}

/* Whole file, NUL-terminated; aborts the test on failure. */
static __attribute__((unused)) char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return buf;
}

static __attribute__((unused)) int spit(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	int ok;

	if (!fp)
		return -1;
	ok = fwrite(data, 1, len, fp) == len;
	return fclose(fp) == 0 && ok ? 0 : -1;
}

/* The lines of a file (without newlines); the last one may lack its newline. */
typedef struct lines {
	char *v[64];
	size_t len[64];
	int n;
	int last_nl; /* the file ended with a newline */
} lines;

static __attribute__((unused)) int lines_load(lines *l, const char *path)
{
	size_t len, start = 0;
	char *all = slurp(path, &len);

	memset(l, 0, sizeof(*l));
	if (!all)
		return -1;
	for (size_t i = 0; i <= len && l->n < 64; i++) {
		if (i == len || all[i] == '\n') {
			if (i == len && i == start)
				break;
			l->v[l->n] = strndup(all + start, i - start);
			l->len[l->n] = i - start;
			l->n++;
			start = i + 1;
			l->last_nl = i < len;
		}
	}
	free(all);
	return 0;
}

/* Writes the lines back, each followed by a newline. */
static __attribute__((unused)) int lines_save(const lines *l, const char *path)
{
	FILE *fp = fopen(path, "wb");
	int ok = 1;

	if (!fp)
		return -1;
	for (int i = 0; i < l->n; i++)
		ok = ok && fwrite(l->v[i], 1, l->len[i], fp) == l->len[i] && fputc('\n', fp) != EOF;
	return fclose(fp) == 0 && ok ? 0 : -1;
}

static __attribute__((unused)) void lines_free(lines *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	memset(l, 0, sizeof(*l));
}

/* A log of n records as the engine would write them: run.start, step events, run.end. */
static __attribute__((unused)) int make_log(const char *path, const char *key, int n)
{
	drb_audit *a = NULL;
	drb_err err = {0};
	int rc;

	rc = drb_audit_create(&a, path, "run-20261125-abc", (const unsigned char *)key,
			      key ? strlen(key) : 0, &err);
	for (int i = 1; rc == 0 && i <= n; i++) {
		json_t *d =
		    json_pack("{s:i, s:s, s:[i,i]}", "i", i, "note", "all good", "list", i, i * 2);
		const char *ev = i == 1 ? "run.start" : i == n ? "run.end" : "step.end";

		rc = drb_audit_append(a, ev, i == 1 || i == n ? NULL : "promote", d, &err);
		json_decref(d);
	}
	if (rc)
		fprintf(stderr, "make_log: %s\n", err.msg);
	drb_audit_close(a);
	return rc;
}

#endif
