/* Tests for src/audit/log.c: the exact line format (checked against OpenSSL directly), chaining,
 * HMAC, file modes, the single-writer lock, concurrency, size limits, secrets never reaching
 * the file, resuming a log and loading key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <drbook/util.h>

#include "audit/helpers.h"

static const char KEY[] = "k3y-for-tests-0123456789";

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* A chain of records verifies with and without a key, and reads back in order. */
static void test_chain_verifies(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	drb_err err = {0};
	char path2[400];
	json_t *recs = NULL;

	assert_int_equal(make_log(f->path, NULL, 6), 0);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 6);
	assert_int_equal(res.line, 0);
	assert_non_null(strstr(res.msg, "no MACs"));

	snprintf(path2, sizeof(path2), "%s/keyed.jsonl", f->dir);
	assert_int_equal(make_log(path2, KEY, 6), 0);
	assert_int_equal(
	    drb_audit_verify(path2, (const unsigned char *)KEY, strlen(KEY), &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 6);
	assert_non_null(strstr(res.msg, "MACs verified"));
	/* without the key the chain is still checked; the MACs are reported as not checked */
	assert_int_equal(drb_audit_verify(path2, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_non_null(strstr(res.msg, "not checked"));

	assert_int_equal(drb_audit_read(path2, &recs, &err), 0);
	assert_int_equal(json_array_size(recs), 6);
	for (size_t i = 0; i < 6; i++) {
		json_t *r = json_array_get(recs, i);

		assert_int_equal(json_integer_value(json_object_get(r, "seq")), (json_int_t)i + 1);
		assert_string_equal(json_string_value(json_object_get(r, "run")),
				    "run-20261125-abc");
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(r, "data"), "i")),
		    (json_int_t)i + 1);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0), "event")),
			    "run.start");
	assert_true(json_is_null(json_object_get(json_array_get(recs, 0), "step")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "step")),
			    "promote");
	json_decref(recs);
}

/* Line 1 byte for byte: field order, prev of 64 zeros, data order kept, the MAC recomputed
 * here with OpenSSL; line 2's prev is SHA-256 of line 1 and its step a string. */
static void test_exact_line_format(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	json_t *d = json_pack("{s:i, s:s, s:n}", "zeta", 1, "alpha", "x\"y\xc3\xa9", "none");
	json_t *o = NULL;
	json_error_t jerr;
	lines l;
	const char *key, *ts;
	json_t *v;
	static const char *const order[] = {"seq",  "ts",   "run",  "event",
					    "step", "data", "prev", "mac"};
	unsigned char md[32];
	unsigned int mdlen = 32;
	char mac[65], sha[65], expect[1024], *signed_part = NULL;
	size_t i = 0;
	int64_t ms;

	assert_int_equal(
	    drb_audit_create(&a, f->path, "run-1", (const unsigned char *)KEY, strlen(KEY), &err),
	    0);
	assert_string_equal(drb_audit_run_id(a), "run-1");
	assert_string_equal(drb_audit_path(a), f->path);
	assert_int_equal(drb_audit_seq(a), 0);
	assert_int_equal(drb_audit_append(a, "run.start", NULL, d, &err), 0);
	assert_int_equal(drb_audit_append(a, "step.start", "promote", NULL, &err), 0);
	assert_int_equal(drb_audit_seq(a), 2);
	drb_audit_close(a);
	json_decref(d);

	assert_int_equal(lines_load(&l, f->path), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.last_nl);
	o = json_loads(l.v[0], 0, &jerr);
	assert_non_null(o);
	json_object_foreach(o, key, v) {
		assert_true(i < 8);
		assert_string_equal(key, order[i]);
		i++;
	}
	assert_int_equal(i, 8);
	ts = json_string_value(json_object_get(o, "ts"));
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(drb_rfc3339_parse(ts, &ms), 0);
	assert_true(ts[23] == 'Z' && ts[19] == '.');
	assert_true(llabs((long long)(ms - drb_wall_ms())) < 60000);

	/* the bytes the MAC covers end just before ,"mac": */
	signed_part = strndup(l.v[0], l.len[0] - strlen(",\"mac\":\"") - 64 - 2);
	assert_non_null(signed_part);
	HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)signed_part,
	     strlen(signed_part), md, &mdlen);
	hex(md, 32, mac);
	snprintf(expect, sizeof(expect),
		 "{\"seq\":1,\"ts\":\"%s\",\"run\":\"run-1\",\"event\":\"run.start\",\"step\":null,"
		 "\"data\":{\"zeta\":1,\"alpha\":\"x\\\"y\\u00E9\",\"none\":null},"
		 "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
		 "\"mac\":\"%s\"}",
		 ts, mac);
	assert_string_equal(l.v[0], expect);
	json_decref(o);

	SHA256((const unsigned char *)l.v[0], l.len[0], md);
	hex(md, 32, sha);
	o = json_loads(l.v[1], 0, &jerr);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(o, "prev")), sha);
	assert_string_equal(json_string_value(json_object_get(o, "step")), "promote");
	assert_int_equal(json_object_size(json_object_get(o, "data")), 0);
	json_decref(o);
	free(signed_part);
	lines_free(&l);
}

/* Without a key the line ends right after prev: no mac field at all. */
static void test_no_key_no_mac(void **state)
{
	fixture *f = *state;
	lines l;

	assert_int_equal(make_log(f->path, NULL, 2), 0);
	assert_int_equal(lines_load(&l, f->path), 0);
	assert_null(strstr(l.v[0], "\"mac\""));
	assert_int_equal(l.v[0][l.len[0] - 1], '}');
	assert_memory_equal(l.v[0] + l.len[0] - 2 - 64 - 9, ",\"prev\":\"", 9);
	lines_free(&l);
}

/* The log is 0600 and missing parent folders are created 0700; an existing log is never
 * overwritten. */
static void test_modes_and_no_overwrite(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	char deep[400], mid[400];
	struct stat st;
	mode_t old = umask(0);

	snprintf(mid, sizeof(mid), "%s/a", f->dir);
	snprintf(deep, sizeof(deep), "%s/a/b/c/audit.jsonl", f->dir);
	assert_int_equal(drb_audit_create(&a, deep, "r", NULL, 0, &err), 0);
	umask(old);
	drb_audit_close(a);
	assert_int_equal(stat(deep, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(mid, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	a = NULL;
	assert_int_equal(drb_audit_create(&a, deep, "r", NULL, 0, &err), DRB_EINVAL);
	assert_null(a);
	assert_non_null(strstr(err.msg, "already exists"));
	/* bad arguments */
	assert_int_equal(drb_audit_create(&a, f->path, "", NULL, 0, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_create(&a, f->path, "r", (const unsigned char *)"", 0, &err),
			 DRB_EINVAL);
	assert_int_equal(access(f->path, F_OK), -1); /* nothing left behind */
}

/* A second writer on the same log is refused while the first holds it. */
static void test_single_writer(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL, *b = NULL;
	drb_err err = {0};

	assert_int_equal(drb_audit_create(&a, f->path, "r", NULL, 0, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.start", NULL, NULL, &err), 0);
	assert_int_equal(drb_audit_open_append(&b, f->path, NULL, 0, &err), DRB_EDENIED);
	assert_null(b);
	assert_non_null(strstr(err.msg, "in use"));
	drb_audit_close(a);
	assert_int_equal(drb_audit_open_append(&b, f->path, NULL, 0, &err), 0);
	drb_audit_close(b);
}

/* Bad calls are refused without writing anything. */
static void test_append_invalid(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	json_t *arr = json_array();
	size_t len = 99;
	char *all;

	assert_int_equal(drb_audit_create(&a, f->path, "r", NULL, 0, &err), 0);
	assert_int_equal(drb_audit_append(a, NULL, NULL, NULL, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_append(a, "", NULL, NULL, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_append(a, "call", NULL, arr, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_append(a, "bad\xff", NULL, NULL, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_append(NULL, "call", NULL, NULL, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_seq(a), 0);
	drb_audit_close(a);
	drb_audit_close(NULL);
	all = slurp(f->path, &len);
	assert_non_null(all);
	assert_int_equal(len, 0);
	free(all);
	json_decref(arr);
}

/* A record above DRB_AUDIT_LINE_MAX is refused with DRB_ELIMIT, leaves the file and the chain
 * untouched, and the next record goes through. */
static void test_line_max(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;
	size_t big_len = DRB_AUDIT_LINE_MAX, before, after;
	char *big = malloc(big_len + 1), *all;
	json_t *d;

	assert_non_null(big);
	memset(big, 'x', big_len);
	big[big_len] = '\0';
	d = json_pack("{s:s}", "blob", big);
	assert_int_equal(drb_audit_create(&a, f->path, "r", NULL, 0, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.start", NULL, NULL, &err), 0);
	all = slurp(f->path, &before);
	free(all);
	assert_int_equal(drb_audit_append(a, "call", "s", d, &err), DRB_ELIMIT);
	/* just under the cap with the envelope on top is refused too */
	json_object_set_new(d, "blob", json_stringn(big, big_len - 100));
	assert_int_equal(drb_audit_append(a, "call", "s", d, &err), DRB_ELIMIT);
	all = slurp(f->path, &after);
	free(all);
	assert_int_equal(before, after);
	assert_int_equal(drb_audit_seq(a), 1);
	/* a record of 1 MiB is fine */
	json_object_set_new(d, "blob", json_stringn(big, 1024 * 1024));
	assert_int_equal(drb_audit_append(a, "call", "s", d, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.end", NULL, NULL, &err), 0);
	drb_audit_close(a);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 3);
	json_decref(d);
	free(big);
}

/* A write cut short by the OS (here RLIMIT_FSIZE: the kernel writes up to the limit and
 * returns a short count) is reported as DRB_EIO and undone, so the file still ends on a whole
 * line; once space is back the chain goes on and verifies. */
static void test_short_write_undone(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;
	struct rlimit old, lim;
	void (*old_sig)(int);
	size_t before, after;
	char *all, pad[2000];
	json_t *d;
	int rc;

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	d = json_pack("{s:s}", "pad", pad);
	assert_int_equal(drb_audit_create(&a, f->path, "r", NULL, 0, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.start", NULL, NULL, &err), 0);
	all = slurp(f->path, &before);
	free(all);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = before + 500;
	old_sig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = drb_audit_append(a, "call", "s", d, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_sig);
	assert_int_equal(rc, DRB_EIO);
	assert_non_null(strstr(err.msg, "short write"));
	all = slurp(f->path, &after);
	free(all);
	assert_int_equal(after, before);
	assert_int_equal(drb_audit_seq(a), 1);

	assert_int_equal(drb_audit_append(a, "call", "s", d, &err), 0);
	drb_audit_close(a);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 2);
	json_decref(d);
}

/* Secrets in data never reach the file's bytes, whatever their nesting. */
static void test_secrets_never_in_file(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;
	char *all;
	json_t *d = json_pack(
	    "{s:{s:s, s:s}, s:s, s:s, s:[{s:s}], s:s, s:s}", "headers", "Authorization",
	    "AWS4-HMAC-SHA256 Credential=AKIDLEAKME/20261125/us-east-1/rds/aws4_request, "
	    "SignedHeaders=host, Signature=deadbeefLEAK",
	    "X-Amz-Security-Token", "FQoGtokenLEAK", "dsn",
	    "host=db user=app password=hunter2LEAK dbname=x", "url",
	    "postgresql://app:pgpassLEAK@10.0.0.5:5432/prod", "items", "password", "itemLEAK",
	    "body", "<Credentials><SecretAccessKey>xmlLEAK</SecretAccessKey></Credentials>",
	    "client_secret", "csLEAK");

	assert_int_equal(drb_audit_create(&a, f->path, "r", NULL, 0, &err), 0);
	assert_int_equal(drb_audit_append(a, "call", "promote", d, &err), 0);
	/* a NUL inside a string is escaped (\u0000) and the line still verifies */
	json_object_set_new(d, "nul", json_stringn("a\0b", 3));
	assert_int_equal(drb_audit_append(a, "call", "promote", d, &err), 0);
	drb_audit_close(a);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 2);
	all = slurp(f->path, NULL);
	assert_non_null(all);
	assert_null(strstr(all, "LEAK"));
	assert_non_null(strstr(all, "user=app password=*** dbname=x"));
	assert_non_null(strstr(all, "postgresql://app:***@10.0.0.5:5432/prod"));
	free(all);
	json_decref(d);
}

typedef struct worker {
	drb_audit *a;
	int id;
	int failures;
} worker;

static void *work(void *p)
{
	worker *w = p;
	drb_err err = {0};

	for (int k = 0; k < 100; k++) {
		json_t *d = json_pack("{s:i, s:i}", "thread", w->id, "k", k);
		char step[16];

		snprintf(step, sizeof(step), "scale-%d", w->id);
		if (!d || drb_audit_append(w->a, "call", step, d, &err) != 0)
			w->failures++;
		json_decref(d);
	}
	return NULL;
}

/* 8 threads x 100 records: seq and prev stay consistent, each thread's records keep their
 * order, and the whole log verifies. */
static void test_concurrent_appends(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;
	pthread_t th[8];
	worker w[8];
	json_t *recs = NULL, *r;
	int next[8] = {0};
	size_t i;

	assert_int_equal(
	    drb_audit_create(&a, f->path, "run-par", (const unsigned char *)KEY, strlen(KEY), &err),
	    0);
	for (int t = 0; t < 8; t++) {
		w[t] = (worker){a, t, 0};
		assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].failures, 0);
	}
	assert_int_equal(drb_audit_seq(a), 800);
	drb_audit_close(a);
	assert_int_equal(
	    drb_audit_verify(f->path, (const unsigned char *)KEY, strlen(KEY), &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 800);
	assert_int_equal(drb_audit_read(f->path, &recs, &err), 0);
	assert_int_equal(json_array_size(recs), 800);
	json_array_foreach(recs, i, r) {
		json_t *d = json_object_get(r, "data");
		int t = (int)json_integer_value(json_object_get(d, "thread"));

		assert_true(t >= 0 && t < 8);
		assert_int_equal(json_integer_value(json_object_get(d, "k")), next[t]);
		next[t]++;
	}
	json_decref(recs);
}

/* Resuming continues run id, seq and prev; the result verifies as one chain. */
static void test_open_append_continues(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;

	assert_int_equal(make_log(f->path, KEY, 3), 0);
	assert_int_equal(
	    drb_audit_open_append(&a, f->path, (const unsigned char *)KEY, strlen(KEY), &err), 0);
	assert_string_equal(drb_audit_run_id(a), "run-20261125-abc");
	assert_int_equal(drb_audit_seq(a), 3);
	assert_int_equal(drb_audit_append(a, "step.start", "verify", NULL, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.end", NULL, NULL, &err), 0);
	assert_int_equal(drb_audit_seq(a), 5);
	drb_audit_close(a);
	assert_int_equal(
	    drb_audit_verify(f->path, (const unsigned char *)KEY, strlen(KEY), &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 5);
}

/* A log with MACs is not continued without its key (that would mix signed and unsigned
 * lines), nor with a wrong one; a log without MACs is not continued with a key. */
static void test_open_append_key_mismatch(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	char plain[400];

	assert_int_equal(make_log(f->path, KEY, 3), 0);
	assert_int_equal(drb_audit_open_append(&a, f->path, NULL, 0, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "key"));
	assert_int_equal(
	    drb_audit_open_append(&a, f->path, (const unsigned char *)"wrong", 5, &err),
	    DRB_EINTEGRITY);
	assert_non_null(strstr(err.msg, "wrong key"));
	assert_null(a);

	snprintf(plain, sizeof(plain), "%s/plain.jsonl", f->dir);
	assert_int_equal(make_log(plain, NULL, 2), 0);
	assert_int_equal(
	    drb_audit_open_append(&a, plain, (const unsigned char *)KEY, strlen(KEY), &err),
	    DRB_EINTEGRITY);
	assert_non_null(strstr(err.msg, "no MACs"));
	assert_int_equal(drb_audit_open_append(&a, "/nonexistent/x.jsonl", NULL, 0, &err),
			 DRB_ENOTFOUND);
}

/* A last line that is complete but lost its newline verifies; resuming adds the newline and
 * records the repair instead of gluing the next record onto it. */
static void test_open_append_missing_newline(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	drb_verify_result res;
	size_t len;
	char *all;
	json_t *recs = NULL, *last;

	assert_int_equal(make_log(f->path, NULL, 3), 0);
	all = slurp(f->path, &len);
	assert_int_equal(spit(f->path, all, len - 1), 0);
	free(all);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(drb_audit_open_append(&a, f->path, NULL, 0, &err), 0);
	assert_int_equal(drb_audit_seq(a), 4);
	assert_int_equal(drb_audit_append(a, "run.end", NULL, NULL, &err), 0);
	drb_audit_close(a);
	assert_int_equal(drb_audit_verify(f->path, NULL, 0, &res, &err), 0);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 5);
	assert_int_equal(drb_audit_read(f->path, &recs, &err), 0);
	last = json_array_get(recs, 3);
	assert_string_equal(json_string_value(json_object_get(last, "event")), "audit.repaired");
	assert_true(json_is_true(json_object_get(json_object_get(last, "data"), "added_newline")));
	json_decref(recs);
}

static int write_key(const char *path, const char *bytes, size_t n)
{
	return spit(path, bytes, n);
}

/* Key files: one trailing "\n" or "\r\n" is stripped, only one; binary keys are kept whole;
 * empty, missing and oversized files are refused. */
static void test_key_load(void **state)
{
	fixture *f = *state;
	char kp[400];
	unsigned char *key = NULL;
	size_t n = 0;
	drb_err err = {0};
	char big[5000];

	snprintf(kp, sizeof(kp), "%s/key", f->dir);
	assert_int_equal(write_key(kp, "secret\n", 7), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(key, "secret", 6);
	free(key);

	assert_int_equal(write_key(kp, "secret\r\n", 8), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(key, "secret", 6);
	free(key);

	assert_int_equal(write_key(kp, "secret\n\n", 8), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_memory_equal(key, "secret\n", 7);
	free(key);

	assert_int_equal(write_key(kp, "a\0b\xff", 4), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(key, "a\0b\xff", 4);
	free(key);

	assert_int_equal(write_key(kp, "", 0), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), DRB_EINVAL);
	assert_null(key);
	assert_non_null(strstr(err.msg, "empty"));
	assert_int_equal(write_key(kp, "\n", 1), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), DRB_EINVAL);
	assert_int_equal(write_key(kp, "\r\n", 2), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), DRB_EINVAL);

	memset(big, 'k', sizeof(big));
	assert_int_equal(write_key(kp, big, 4096), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), 0);
	assert_int_equal(n, 4096);
	free(key);
	assert_int_equal(write_key(kp, big, 4097), 0);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), DRB_ELIMIT);
	assert_null(key);

	snprintf(kp, sizeof(kp), "%s/missing", f->dir);
	assert_int_equal(drb_audit_key_load(kp, &key, &n, &err), DRB_ENOTFOUND);
	assert_int_equal(drb_audit_key_load(f->dir, &key, &n, &err), DRB_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_chain_verifies, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_exact_line_format, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_key_no_mac, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_modes_and_no_overwrite, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_single_writer, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_append_invalid, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_line_max, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_short_write_undone, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_secrets_never_in_file, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_appends, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_append_continues, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_append_key_mismatch, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_append_missing_newline, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_key_load, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
