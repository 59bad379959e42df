/* Tests for src/audit/verify.c: each kind of damage is classified and pinned to the first line
 * that is provably bad (flipped byte, deleted, inserted and swapped lines, wrong key, missing
 * MACs, an interrupted last write and its repair, malformed files), and reading skips only an
 * interrupted last line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "audit/helpers.h"

static const char KEY[] = "verify-test-key";

static void verify(const char *path, const char *key, drb_verify_result *res)
{
	drb_err err = {0};

	assert_int_equal(
	    drb_audit_verify(path, (const unsigned char *)key, key ? strlen(key) : 0, res, &err),
	    0);
}

static void hexs(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* Builds record lines independently of the module (a second implementation of the format),
 * so the verifier can be fed lines whose chain is right but something else is wrong. */
typedef struct builder {
	char prev[65];
	FILE *fp;
} builder;

static void b_open(builder *b, const char *path)
{
	memset(b->prev, '0', 64);
	b->prev[64] = '\0';
	b->fp = fopen(path, "wb");
	assert_non_null(b->fp);
}

/* body is everything between "{" and ,"prev": ; key adds a mac */
static void b_line(builder *b, const char *body, const char *key)
{
	char line[2048], mac[65];
	unsigned char md[32];
	unsigned int mdlen = 32;
	int n = snprintf(line, sizeof(line), "{%s,\"prev\":\"%s\"", body, b->prev);

	if (key) {
		HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)line, (size_t)n, md,
		     &mdlen);
		hexs(md, 32, mac);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"mac\":\"%s\"}", mac);
	} else {
		n += snprintf(line + n, sizeof(line) - (size_t)n, "}");
	}
	SHA256((unsigned char *)line, (size_t)n, md);
	hexs(md, 32, b->prev);
	fprintf(b->fp, "%s\n", line);
}

static void b_close(builder *b)
{
	assert_int_equal(fclose(b->fp), 0);
}

#define TS "\"ts\":\"2026-11-25T16:39:06.123Z\""

/* The independent builder and the module agree: its lines verify. */
static void test_builder_agrees(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	builder b;

	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"run.start\",\"step\":null,\"data\":{}",
	       KEY);
	b_line(&b,
	       "\"seq\":2," TS ",\"run\":\"r\",\"event\":\"run.end\",\"step\":\"s\",\"data\":{}",
	       KEY);
	b_close(&b);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 2);
}

/* Overwrites the first occurrence of needle in a line with repl (same length). */
static void patch_line(const char *path, int lineno, const char *needle, const char *repl)
{
	lines l;
	char *p;

	assert_int_equal(strlen(needle), strlen(repl));
	assert_int_equal(lines_load(&l, path), 0);
	p = strstr(l.v[lineno - 1], needle);
	assert_non_null(p);
	memcpy(p, repl, strlen(repl));
	assert_int_equal(lines_save(&l, path), 0);
	lines_free(&l);
}

/* A flipped byte in the middle line, without a key: the line itself still looks fine, so the
 * first provable break is the next line's prev, and the message names the changed line. */
static void test_flipped_byte_no_key(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, NULL, 5), 0);
	patch_line(f->path, 3, "all good", "All good"); /* "all good" -> "All good" */
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 4);
	assert_int_equal(res.records, 3);
	assert_non_null(strstr(res.msg, "line 4: prev does not match the hash of line 3"));
	assert_non_null(strstr(res.msg, "line 3 changed"));
}

/* With the key the changed line itself fails its MAC, after line 1 proved the key right. */
static void test_flipped_byte_with_key(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, KEY, 5), 0);
	patch_line(f->path, 3, "all good", "All good");
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 3);
	assert_int_equal(res.records, 2);
	assert_non_null(strstr(res.msg, "line 3: MAC does not match"));
	assert_non_null(strstr(res.msg, "changed after it was written"));
}

/* A flipped byte that breaks the JSON of a middle line is tampering at that line, not a
 * "malformed" file (the lines before it are a good log). */
static void test_flipped_byte_breaks_json(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, NULL, 5), 0);
	patch_line(f->path, 3, "\"event\"", "{event\"");
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 3);
	assert_non_null(strstr(res.msg, "line 3 is not a valid audit record"));
}

/* A flipped digit in seq is caught at that line, even though its prev is right. */
static void test_flipped_seq(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, NULL, 5), 0);
	patch_line(f->path, 2, "\"seq\":2", "\"seq\":7");
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 2);
	assert_non_null(strstr(res.msg, "line 2: seq is 7, expected 2"));
}

static void remove_line(const char *path, int lineno)
{
	lines l;

	assert_int_equal(lines_load(&l, path), 0);
	free(l.v[lineno - 1]);
	memmove(&l.v[lineno - 1], &l.v[lineno], (size_t)(l.n - lineno) * sizeof(l.v[0]));
	memmove(&l.len[lineno - 1], &l.len[lineno], (size_t)(l.n - lineno) * sizeof(l.len[0]));
	l.n--;
	assert_int_equal(lines_save(&l, path), 0);
	lines_free(&l);
}

/* A deleted line: the next one has the wrong seq (and prev). */
static void test_deleted_line(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, KEY, 5), 0);
	remove_line(f->path, 3);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 3);
	assert_non_null(strstr(res.msg, "line 3: seq is 4, expected 3"));
	assert_non_null(strstr(res.msg, "deleted, inserted or reordered"));
}

/* Deleting the first line is caught at the new first line. */
static void test_deleted_first_line(void **state)
{
	fixture *f = *state;
	drb_verify_result res;

	assert_int_equal(make_log(f->path, NULL, 3), 0);
	remove_line(f->path, 1);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 1);
	assert_non_null(strstr(res.msg, "removed from the beginning"));
}

/* A copy of line 2 inserted after line 4 breaks the chain at line 5. */
static void test_inserted_line(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	lines l;

	assert_int_equal(make_log(f->path, NULL, 5), 0);
	assert_int_equal(lines_load(&l, f->path), 0);
	memmove(&l.v[5], &l.v[4], sizeof(l.v[0]));
	memmove(&l.len[5], &l.len[4], sizeof(l.len[0]));
	l.v[4] = strdup(l.v[1]);
	l.len[4] = l.len[1];
	l.n++;
	assert_int_equal(lines_save(&l, f->path), 0);
	lines_free(&l);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 5);
	assert_non_null(strstr(res.msg, "line 5: seq is 2, expected 5"));
}

/* Two lines swapped: caught at the first of them. */
static void test_swapped_lines(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	lines l;
	char *t;
	size_t tl;

	assert_int_equal(make_log(f->path, KEY, 5), 0);
	assert_int_equal(lines_load(&l, f->path), 0);
	t = l.v[1];
	tl = l.len[1];
	l.v[1] = l.v[2];
	l.len[1] = l.len[2];
	l.v[2] = t;
	l.len[2] = tl;
	assert_int_equal(lines_save(&l, f->path), 0);
	lines_free(&l);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 2);
	assert_non_null(strstr(res.msg, "seq is 3, expected 2"));
}

/* A line with a correct chain but the run id of another log is refused. */
static void test_foreign_run(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	builder b;

	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r1\",\"event\":\"run.start\",\"step\":null,\"data\":{}",
	       NULL);
	b_line(&b, "\"seq\":2," TS ",\"run\":\"r2\",\"event\":\"call\",\"step\":null,\"data\":{}",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 2);
	assert_non_null(strstr(res.msg, "differs from line 1"));
}

/* Wrong key: BAD_MAC at line 1; key given to a log without MACs: NO_MAC. */
static void test_wrong_key_and_no_mac(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	char plain[400];

	assert_int_equal(make_log(f->path, KEY, 4), 0);
	verify(f->path, "not-the-key", &res);
	assert_int_equal(res.kind, DRB_VERIFY_BAD_MAC);
	assert_int_equal(res.line, 1);
	assert_int_equal(res.records, 0);
	assert_non_null(strstr(res.msg, "MAC does not match: wrong key or forged line"));

	snprintf(plain, sizeof(plain), "%s/plain.jsonl", f->dir);
	assert_int_equal(make_log(plain, NULL, 4), 0);
	verify(plain, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_NO_MAC);
	assert_int_equal(res.line, 1);
}

/* A mac stripped from one line of an authenticated log is tampering, key or not. */
static void test_mac_stripped(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	builder b;

	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"run.start\",\"step\":null,\"data\":{}",
	       KEY);
	b_line(&b, "\"seq\":2," TS ",\"run\":\"r\",\"event\":\"call\",\"step\":null,\"data\":{}",
	       NULL);
	b_close(&b);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 2);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 2);
	assert_non_null(strstr(res.msg, "line 2 has no mac but line 1 has one"));
}

/* Cut the file at len - cut bytes. */
static size_t cut_tail(const char *path, size_t cut)
{
	size_t len;
	char *all = slurp(path, &len);

	assert_non_null(all);
	assert_int_equal(spit(path, all, len - cut), 0);
	free(all);
	return len - cut;
}

/* An interrupted last write (the last line is a prefix of a record, with no newline) is
 * TRUNCATED, not tampering, wherever the cut falls; cutting only the newline is fine. */
static void test_truncated_last_line(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	lines l;
	size_t last_len;

	assert_int_equal(make_log(f->path, KEY, 5), 0);
	assert_int_equal(lines_load(&l, f->path), 0);
	last_len = l.len[4];
	lines_free(&l);
	cut_tail(f->path, 1);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_OK); /* only the newline is missing */

	cut_tail(f->path, 1); /* now the closing brace is gone too */
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TRUNCATED);
	assert_int_equal(res.line, 5);
	assert_int_equal(res.records, 4);
	assert_non_null(strstr(res.msg, "line 5 is incomplete"));
	assert_non_null(strstr(res.msg, "not tampering"));

	cut_tail(f->path, last_len / 2);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TRUNCATED);
	assert_int_equal(res.line, 5);

	/* down to the first byte of the line */
	cut_tail(f->path, last_len - 1 - last_len / 2 - 1);
	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TRUNCATED);
	assert_int_equal(res.records, 4);
}

/* Garbage after the last line is not an interrupted write: it does not start like a record
 * with the next seq. A record prefix with the wrong seq is not one either, nor is a partial
 * line followed by a newline (one write(2) carries the line and its newline together). */
static void test_garbage_tail_is_tampering(void **state)
{
	static const char *const tails[] = {"hello", "{\"seq\":9,\"ts\":", "{\"seq\":4,\"ts\":\n"};
	fixture *f = *state;
	drb_verify_result res;

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		FILE *fp;

		unlink(f->path);
		assert_int_equal(make_log(f->path, NULL, 3), 0);
		fp = fopen(f->path, "ab");
		assert_non_null(fp);
		fputs(tails[i], fp);
		assert_int_equal(fclose(fp), 0);
		verify(f->path, NULL, &res);
		assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
		assert_int_equal(res.line, 4);
		assert_int_equal(res.records, 3);
	}
	/* and the right prefix without a newline is an interrupted write */
	{
		FILE *fp;

		unlink(f->path);
		assert_int_equal(make_log(f->path, NULL, 3), 0);
		fp = fopen(f->path, "ab");
		assert_non_null(fp);
		fputs("{\"seq\":4,\"ts\":", fp);
		assert_int_equal(fclose(fp), 0);
		verify(f->path, NULL, &res);
		assert_int_equal(res.kind, DRB_VERIFY_TRUNCATED);
	}
}

/* open_append cuts the incomplete line, records audit.repaired with the bytes cut, continues
 * the chain, and the result verifies; reading skips the incomplete line before the repair. */
static void test_open_append_repairs(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	drb_audit *a = NULL;
	drb_err err = {0};
	json_t *recs = NULL, *rep, *d;
	size_t line5, cut = 40;
	lines l;

	assert_int_equal(make_log(f->path, KEY, 5), 0);
	assert_int_equal(lines_load(&l, f->path), 0);
	line5 = l.len[4];
	lines_free(&l);
	cut_tail(f->path, cut);
	assert_int_equal(drb_audit_read(f->path, &recs, &err), 0);
	assert_int_equal(json_array_size(recs), 4);
	json_decref(recs);

	assert_int_equal(
	    drb_audit_open_append(&a, f->path, (const unsigned char *)KEY, strlen(KEY), &err), 0);
	assert_int_equal(drb_audit_seq(a), 5); /* 4 good records + audit.repaired */
	assert_string_equal(drb_audit_run_id(a), "run-20261125-abc");
	assert_int_equal(drb_audit_append(a, "run.end", NULL, NULL, &err), 0);
	drb_audit_close(a);

	verify(f->path, KEY, &res);
	assert_int_equal(res.kind, DRB_VERIFY_OK);
	assert_int_equal(res.records, 6);
	assert_int_equal(drb_audit_read(f->path, &recs, &err), 0);
	rep = json_array_get(recs, 4);
	assert_string_equal(json_string_value(json_object_get(rep, "event")), "audit.repaired");
	assert_int_equal(json_integer_value(json_object_get(rep, "seq")), 5);
	d = json_object_get(rep, "data");
	assert_int_equal(json_integer_value(json_object_get(d, "line")), 5);
	/* what was left of line 5 after the cut: its bytes and newline minus the 40 removed */
	assert_int_equal(json_integer_value(json_object_get(d, "cut_bytes")), line5 + 1 - cut);
	json_decref(recs);
}

/* open_append refuses a tampered log and leaves it byte for byte as it was. */
static void test_open_append_refuses_tampered(void **state)
{
	fixture *f = *state;
	drb_audit *a = NULL;
	drb_err err = {0};
	size_t l1, l2;
	char *before, *after;

	assert_int_equal(make_log(f->path, NULL, 5), 0);
	remove_line(f->path, 2);
	before = slurp(f->path, &l1);
	assert_int_equal(drb_audit_open_append(&a, f->path, NULL, 0, &err), DRB_EINTEGRITY);
	assert_null(a);
	assert_non_null(strstr(err.msg, "refusing to append"));
	assert_non_null(strstr(err.msg, "line 2"));
	after = slurp(f->path, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(before, after, l1);
	free(before);
	free(after);
}

/* Files that are not audit logs at all: MALFORMED at line 1. */
static void test_malformed(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	drb_err err = {0};
	builder b;

	assert_int_equal(spit(f->path, "", 0), 0);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);
	assert_string_equal(res.msg, "empty log");

	assert_int_equal(spit(f->path, "hello\n", 6), 0);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);
	assert_int_equal(res.line, 1);

	assert_int_equal(spit(f->path, "[1,2]\n", 6), 0);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);

	assert_int_equal(spit(f->path, "\n", 1), 0);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);

	/* fields out of order, with a correct chain: the key order is checked */
	b_open(&b, f->path);
	b_line(&b, TS ",\"seq\":1,\"run\":\"r\",\"event\":\"run.start\",\"step\":null,\"data\":{}",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);
	assert_non_null(strstr(res.msg, "field 1 is \"ts\", expected \"seq\""));

	/* a field missing */
	b_open(&b, f->path);
	b_line(&b, "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"run.start\",\"data\":{}", NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);

	/* an extra field */
	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"run.start\",\"step\":null,\"data\":{},"
	       "\"x\":1",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);

	/* wrong types: data an array, ts not a time, duplicate key */
	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"run.start\",\"step\":null,\"data\":[]",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);
	assert_non_null(strstr(res.msg, "data is not an object"));
	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1,\"ts\":\"yesterday\",\"run\":\"r\",\"event\":\"e\",\"step\":null,"
	       "\"data\":{}",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);
	assert_non_null(strstr(res.msg, "ts"));
	b_open(&b, f->path);
	b_line(&b,
	       "\"seq\":1," TS ",\"run\":\"r\",\"event\":\"e\",\"step\":null,\"data\":{\"a\":1,"
	       "\"a\":2}",
	       NULL);
	b_close(&b);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_MALFORMED);

	assert_int_equal(drb_audit_verify("/nonexistent/audit.jsonl", NULL, 0, &res, &err),
			 DRB_ENOTFOUND);
	assert_int_equal(drb_audit_verify(f->dir, NULL, 0, &res, &err), DRB_EINVAL);
}

/* A line longer than DRB_AUDIT_LINE_MAX is refused without reading it all into memory. */
static void test_overlong_line(void **state)
{
	fixture *f = *state;
	drb_verify_result res;
	size_t n = (size_t)DRB_AUDIT_LINE_MAX + 10;
	char *big = malloc(n);
	FILE *fp;

	assert_non_null(big);
	memset(big, 'x', n);
	assert_int_equal(make_log(f->path, NULL, 2), 0);
	fp = fopen(f->path, "ab");
	assert_non_null(fp);
	assert_int_equal(fwrite(big, 1, n, fp), n);
	fputc('\n', fp);
	fclose(fp);
	free(big);
	verify(f->path, NULL, &res);
	assert_int_equal(res.kind, DRB_VERIFY_TAMPERED);
	assert_int_equal(res.line, 3);
	assert_non_null(strstr(res.msg, "longer than"));
}

/* drb_audit_read refuses a damaged middle line rather than returning a partial history. */
static void test_read_refuses_damage(void **state)
{
	fixture *f = *state;
	drb_err err = {0};
	json_t *recs = NULL;

	assert_int_equal(make_log(f->path, NULL, 4), 0);
	patch_line(f->path, 2, "\"event\"", "{event\"");
	assert_int_equal(drb_audit_read(f->path, &recs, &err), DRB_EINTEGRITY);
	assert_null(recs);
	assert_non_null(strstr(err.msg, "line 2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_builder_agrees, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flipped_byte_no_key, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flipped_byte_with_key, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flipped_byte_breaks_json, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_flipped_seq, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_deleted_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_deleted_first_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_inserted_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_swapped_lines, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_run, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_key_and_no_mac, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mac_stripped, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_last_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_tail_is_tampering, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_append_repairs, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_append_refuses_tampered, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_overlong_line, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_read_refuses_damage, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
