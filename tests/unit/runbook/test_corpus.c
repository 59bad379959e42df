/* The runbook corpus: every tests/corpus/invalid/X.yaml breaks one rule and X.expect holds
 * the full, exact set of diagnostics ("LINE:COL: message") it must produce; every
 * tests/corpus/valid/X.yaml must load without any. File-level cases that are awkward to
 * commit (binary, oversized, missing) are generated here into a temporary folder. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <drbook/runbook.h>
#include <drbook/util.h>

#define DRB_TEST_SCHEMAS
#include "runbook/actions.h"

#define CORPUS DRB_SOURCE_DIR "/tests/corpus"
#define MIN_INVALID 45

typedef struct names {
	char **v;
	size_t n;
} names;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Sorted file names in dir ending in suffix; a missing folder fails the test loudly. */
static names list_dir(const char *dir, const char *suffix)
{
	names l = {NULL, 0};
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t sl = strlen(suffix);

	if (!d)
		fail_msg("cannot open corpus folder %s", dir);
	while ((e = readdir(d))) {
		size_t nl = strlen(e->d_name);
		char **v;

		if (nl <= sl || strcmp(e->d_name + nl - sl, suffix))
			continue;
		v = realloc(l.v, (l.n + 1) * sizeof(*v));
		assert_non_null(v);
		l.v = v;
		l.v[l.n] = strdup(e->d_name);
		assert_non_null(l.v[l.n]);
		l.n++;
	}
	closedir(d);
	qsort(l.v, l.n, sizeof(*l.v), cmp_str);
	return l;
}

/* The diagnostics as the .expect files spell them. */
static char *render(const drb_diags *d)
{
	drb_buf b;

	drb_buf_init(&b, 1 << 20);
	drb_buf_puts(&b, "");
	for (size_t i = 0; i < d->n; i++)
		assert_int_equal(drb_buf_printf(&b, "%d:%d: %s\n", d->v[i].pos.line,
						d->v[i].pos.col, d->v[i].msg),
				 0);
	return drb_buf_steal(&b);
}

/* Each invalid file yields exactly its expected diagnostics, and no model. */
static void test_invalid_corpus(void **state)
{
	names l = list_dir(CORPUS "/invalid", ".yaml");
	int failures = 0;

	if (l.n < MIN_INVALID)
		fail_msg("only %zu invalid corpus files, want at least %d", l.n, MIN_INVALID);
	for (size_t i = 0; i < l.n; i++) {
		char path[1024], expect_path[1024];
		char *want = NULL, *got = NULL;
		drb_runbook *rb = NULL;
		drb_diags d;
		drb_err e;
		int rc;

		snprintf(path, sizeof(path), "%s/invalid/%s", CORPUS, l.v[i]);
		snprintf(expect_path, sizeof(expect_path), "%.*s.expect", (int)strlen(path) - 5,
			 path);
		if (drb_file_read(expect_path, 1 << 20, &want, NULL, &e)) {
			fprintf(stderr, "%s: no expect file: %s\n", l.v[i], e.msg);
			failures++;
			continue;
		}
		drb_diags_init(&d, path);
		rc = drb_runbook_load(&rb, path, &test_opts, &d);
		got = render(&d);
		if (rc != DRB_EINVAL || rb) {
			fprintf(stderr, "%s: load returned %d (model %p), want DRB_EINVAL\n",
				l.v[i], rc, (void *)rb);
			failures++;
		} else if (strcmp(got, want)) {
			fprintf(stderr, "%s: diagnostics differ\n--- want\n%s--- got\n%s---\n",
				l.v[i], want, got);
			failures++;
		}
		drb_runbook_free(rb);
		drb_diags_free(&d);
		free(got);
		free(want);
	}
	names_free(&l);
	assert_int_equal(failures, 0);
}

/* Every .expect belongs to a .yaml: a renamed case must not silently stop being tested. */
static void test_expect_files_paired(void **state)
{
	names ex = list_dir(CORPUS "/invalid", ".expect");

	for (size_t i = 0; i < ex.n; i++) {
		char path[1024];
		struct stat st;

		snprintf(path, sizeof(path), "%s/invalid/%.*s.yaml", CORPUS,
			 (int)strlen(ex.v[i]) - 7, ex.v[i]);
		if (stat(path, &st))
			fail_msg("%s has no .yaml", ex.v[i]);
	}
	assert_true(ex.n >= MIN_INVALID);
	names_free(&ex);
}

static void test_valid_corpus(void **state)
{
	names l = list_dir(CORPUS "/valid", ".yaml");
	int failures = 0;

	assert_true(l.n >= 2);
	for (size_t i = 0; i < l.n; i++) {
		char path[1024];
		drb_runbook *rb = NULL;
		drb_diags d;
		int rc;

		snprintf(path, sizeof(path), "%s/valid/%s", CORPUS, l.v[i]);
		drb_diags_init(&d, path);
		rc = drb_runbook_load(&rb, path, &test_opts, &d);
		if (rc || d.n || !rb) {
			char *got = render(&d);

			fprintf(stderr, "%s: rc %d\n%s", l.v[i], rc, got);
			free(got);
			failures++;
		}
		drb_runbook_free(rb);
		drb_diags_free(&d);
	}
	names_free(&l);
	assert_int_equal(failures, 0);
}

/* ---- generated file-level cases ---- */

typedef struct tmpdir {
	char path[256];
} tmpdir;

static int tmp_setup(void **state)
{
	tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/drb-corpus-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(t->path)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

/* Runs even when the test failed: nothing is left behind in the temporary folder. */
static int tmp_teardown(void **state)
{
	tmpdir *t = *state;
	DIR *d = opendir(t->path);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[512];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", t->path, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(t->path);
	free(t);
	return 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Loads path and checks the one diagnostic at 0:0 and the return code. */
static void expect_file_level(const char *path, int want_rc, const char *want_msg)
{
	drb_runbook *rb = NULL;
	drb_diags d;

	drb_diags_init(&d, path);
	assert_int_equal(drb_runbook_load(&rb, path, &test_opts, &d), want_rc);
	assert_null(rb);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].pos.line, 0);
	assert_int_equal(d.v[0].pos.col, 0);
	assert_string_equal(d.v[0].msg, want_msg);
	drb_diags_free(&d);
}

static const char VALID[] =
    "version: 1\nname: t\nsteps:\n  - id: a\n    action: sleep\n    with: {duration: 1s}\n";

static void test_binary_nul(void **state)
{
	tmpdir *t = *state;
	char path[512], buf[sizeof(VALID) + 8];

	snprintf(path, sizeof(path), "%s/nul.yaml", t->path);
	memcpy(buf, VALID, sizeof(VALID));
	buf[10] = '\0';
	write_file(path, buf, sizeof(VALID) - 1);
	expect_file_level(path, DRB_EINVAL, "not a text file (NUL byte or invalid UTF-8)");
}

static void test_binary_bad_utf8(void **state)
{
	tmpdir *t = *state;
	static const char *const bad[] = {
	    "name: caf\xe9\n",		/* Latin-1 */
	    "name: \xc0\xaf\n",		/* overlong '/' */
	    "name: \xed\xa0\x80\n",	/* a surrogate */
	    "name: \xf4\x90\x80\x80\n", /* past U+10FFFF */
	    "name: \xe2\x82\n",		/* truncated sequence */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/bad%zu.yaml", t->path, i);
		write_file(path, bad[i], strlen(bad[i]));
		expect_file_level(path, DRB_EINVAL, "not a text file (NUL byte or invalid UTF-8)");
	}
	/* valid multi-byte text is fine */
	{
		const char *ok = "version: 1\nname: \"café ☃ 𝄞\"\nsteps: [{id: a, action: sleep, "
				 "with: {duration: 1s}}]\n";
		char path[512];
		drb_runbook *rb = NULL;
		drb_diags d;

		snprintf(path, sizeof(path), "%s/utf8.yaml", t->path);
		write_file(path, ok, strlen(ok));
		drb_diags_init(&d, path);
		assert_int_equal(drb_runbook_load(&rb, path, &test_opts, &d), 0);
		assert_string_equal(rb->name, "café ☃ 𝄞");
		drb_runbook_free(rb);
		drb_diags_free(&d);
	}
}

static void test_too_large(void **state)
{
	tmpdir *t = *state;
	size_t n = DRB_RUNBOOK_MAX_BYTES + 1;
	char path[512], *buf = malloc(n);
	drb_runbook *rb = NULL;
	drb_diags d;

	assert_non_null(buf);
	memset(buf, '#', n);
	memcpy(buf, VALID, sizeof(VALID) - 1);
	buf[sizeof(VALID) - 1] = '#';
	snprintf(path, sizeof(path), "%s/big.yaml", t->path);
	write_file(path, buf, n);
	expect_file_level(path, DRB_EINVAL, "runbook larger than 1 MiB");
	/* the same through the buffer entry point */
	drb_diags_init(&d, "big");
	assert_int_equal(drb_runbook_load_buffer(&rb, "big", buf, n, &test_opts, &d), DRB_EINVAL);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].msg, "runbook larger than 1 MiB");
	drb_diags_free(&d);
	/* exactly at the limit is still read (and is a valid runbook padded with a comment) */
	write_file(path, buf, n - 1);
	drb_diags_init(&d, path);
	assert_int_equal(drb_runbook_load(&rb, path, &test_opts, &d), 0);
	drb_runbook_free(rb);
	drb_diags_free(&d);
	free(buf);
}

static void test_missing_file(void **state)
{
	tmpdir *t = *state;
	char path[512];

	snprintf(path, sizeof(path), "%s/absent.yaml", t->path);
	expect_file_level(path, DRB_ENOTFOUND, "cannot open: No such file or directory");
	expect_file_level(t->path, DRB_EINVAL, "cannot open: not a regular file");
}

/* A wide alias bomb is refused quickly: the cap is checked before anything is copied. */
static void test_alias_bomb_fast(void **state)
{
	drb_buf b;
	drb_runbook *rb = NULL;
	drb_diags d;
	double t0;

	drb_buf_init(&b, 1 << 20);
	drb_buf_puts(
	    &b,
	    "version: 1\nname: t\nsteps: [{id: a, action: sleep, with: {duration: 1s}}]\nparams:\n"
	    "  p0: {type: list, default: &a0 [x, x, x, x, x, x, x, x, x, x]}\n");
	for (int i = 1; i < 30; i++) {
		drb_buf_printf(&b, "  p%d: {type: list, default: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			drb_buf_printf(&b, "%s*a%d", j ? ", " : "", i - 1);
		drb_buf_puts(&b, "]}\n");
	}
	drb_diags_init(&d, "bomb");
	t0 = drb_mono_now();
	assert_int_equal(drb_runbook_load_buffer(&rb, "bomb", b.p, b.len, &test_opts, &d),
			 DRB_EINVAL);
	assert_true(drb_mono_now() - t0 < 2.0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].msg,
			    "too many YAML nodes after alias expansion (billion laughs?)");
	drb_diags_free(&d);
	drb_buf_free(&b);
}

/* The node cap holds without aliases too: a flat list of 150000 numbers is refused. */
static void test_node_cap_plain(void **state)
{
	drb_buf b;
	drb_runbook *rb = NULL;
	drb_diags d;

	drb_buf_init(&b, DRB_RUNBOOK_MAX_BYTES);
	drb_buf_puts(
	    &b,
	    "version: 1\nname: t\nsteps: [{id: a, action: sleep, with: {duration: 1s}}]\nparams:\n"
	    "  p: {type: list, default: [1");
	for (int i = 1; i < 150000; i++)
		assert_int_equal(drb_buf_puts(&b, ",1"), 0);
	drb_buf_puts(&b, "]}\n");
	drb_diags_init(&d, "flat");
	assert_int_equal(drb_runbook_load_buffer(&rb, "flat", b.p, b.len, &test_opts, &d),
			 DRB_EINVAL);
	assert_null(rb);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].msg, "too many YAML nodes (more than 100000)");
	assert_int_equal(d.v[0].pos.line, 5);
	drb_diags_free(&d);
	drb_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invalid_corpus),
	    cmocka_unit_test(test_expect_files_paired),
	    cmocka_unit_test(test_valid_corpus),
	    cmocka_unit_test_setup_teardown(test_binary_nul, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_binary_bad_utf8, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_too_large, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, tmp_setup, tmp_teardown),
	    cmocka_unit_test(test_alias_bomb_fast),
	    cmocka_unit_test(test_node_cap_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
