/* Tests for src/audit/sign.c and the signed heads the log writes and the verifier checks:
 * key loading (Ed25519 only), sign/check of a head and every field it binds, where heads go
 * in a log (after run.start, run.end, at least every 100 records), and each verdict of a
 * signed verification: ok, wrong key, tampered, cut after a head, no head at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <drbook/util.h>

#include "audit/helpers.h"

#define RUN "run-20261202-sig"

/* Writes a fresh key pair of type (ED25519 or "EC") as PEM files into the fixture folder. */
static void write_keys(const fixture *f, const char *name, int ed25519, char *priv, char *pub)
{
	EVP_PKEY *k = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
			      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *fp;

	assert_non_null(k);
	snprintf(priv, 400, "%s/%s.pem", f->dir, name);
	snprintf(pub, 400, "%s/%s.pub.pem", f->dir, name);
	fp = fopen(priv, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	fp = fopen(pub, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PUBKEY(fp, k), 1);
	fclose(fp);
	EVP_PKEY_free(k);
}

static drb_audit_signkey *load(const char *path, int priv)
{
	drb_audit_signkey *k = NULL;
	drb_err err = {0};

	assert_int_equal(drb_audit_signkey_load(&k, path, priv, &err), 0);
	return k;
}

/* A signed log: run.start, n-2 step records, run.end. */
static void signed_log(const char *path, const drb_audit_signkey *k, int n)
{
	drb_audit *a = NULL;
	drb_err err = {0};

	assert_int_equal(drb_audit_create(&a, path, RUN, NULL, 0, &err), 0);
	assert_int_equal(drb_audit_sign_with(a, k, &err), 0);
	for (int i = 1; i <= n; i++) {
		json_t *d = json_pack("{s:i}", "i", i);
		const char *ev = i == 1 ? "run.start" : i == n ? "run.end" : "step.end";

		assert_int_equal(drb_audit_append(a, ev, NULL, d, &err), 0);
		json_decref(d);
	}
	drb_audit_close(a);
}

static drb_verify_kind verify(const char *path, const drb_audit_signkey *pub,
			      drb_verify_result *res)
{
	drb_err err = {0};

	assert_int_equal(drb_audit_verify_signed(path, NULL, 0, pub, res, &err), 0);
	return res->kind;
}

/* A signature binds run id, seq and hash: changing any of them, or the signature, fails. */
static void test_sign_and_check(void **state)
{
	fixture *f = *state;
	char priv[400], pub[400], sig[129];
	const char *h = "a1057a942ba9e53b94da88fa404c7e23cf0f3275fe820f688aebc296e9a92e5f";
	const char *h2 = "b1057a942ba9e53b94da88fa404c7e23cf0f3275fe820f688aebc296e9a92e5f";
	drb_audit_signkey *sk, *pk;
	drb_err err = {0};

	write_keys(f, "k", 1, priv, pub);
	sk = load(priv, 1);
	pk = load(pub, 0);
	assert_int_equal(drb_audit_head_sign(sk, RUN, 6, h, sig, &err), 0);
	assert_int_equal(strlen(sig), 128);
	assert_int_equal(drb_audit_head_check(pk, RUN, 6, h, sig), 0);
	assert_int_equal(drb_audit_head_check(sk, RUN, 6, h, sig), 0); /* private verifies too */
	assert_int_equal(drb_audit_head_check(pk, RUN, 7, h, sig), DRB_EINTEGRITY);
	assert_int_equal(drb_audit_head_check(pk, RUN, 6, h2, sig), DRB_EINTEGRITY);
	assert_int_equal(drb_audit_head_check(pk, "other-run", 6, h, sig), DRB_EINTEGRITY);
	sig[10] = sig[10] == '0' ? '1' : '0';
	assert_int_equal(drb_audit_head_check(pk, RUN, 6, h, sig), DRB_EINTEGRITY);
	assert_int_equal(drb_audit_head_check(pk, RUN, 6, h, "zz"), DRB_EINTEGRITY);
	/* a public key cannot sign */
	assert_int_equal(drb_audit_head_sign(pk, RUN, 6, h, sig, &err), DRB_EINVAL);
	drb_audit_signkey_free(sk);
	drb_audit_signkey_free(pk);
}

/* Only Ed25519 PEM keys load; the error names the file and the cause. */
static void test_key_load_refusals(void **state)
{
	fixture *f = *state;
	char priv[400], pub[400], junk[400];
	drb_audit_signkey *k = NULL;
	drb_err err = {0};

	assert_int_equal(drb_audit_signkey_load(&k, "/nonexistent/k.pem", 1, &err), DRB_ENOTFOUND);
	write_keys(f, "ec", 0, priv, pub);
	assert_int_equal(drb_audit_signkey_load(&k, priv, 1, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, "Ed25519"));
	assert_int_equal(drb_audit_signkey_load(&k, pub, 0, &err), DRB_EINVAL);
	snprintf(junk, sizeof(junk), "%s/junk.pem", f->dir);
	assert_int_equal(spit(junk, "not a key\n", 10), 0);
	assert_int_equal(drb_audit_signkey_load(&k, junk, 1, &err), DRB_EINVAL);
	assert_non_null(strstr(err.msg, junk));
	write_keys(f, "ed", 1, priv, pub);
	/* a public key file is not a private key, and the other way round */
	assert_int_equal(drb_audit_signkey_load(&k, pub, 1, &err), DRB_EINVAL);
	assert_int_equal(drb_audit_signkey_load(&k, priv, 0, &err), DRB_EINVAL);
	assert_null(k);
}

/* Heads follow run.start and run.end, and no more than 99 records go unsigned; a complete
 * signed log verifies with the public key, and without it as before. */
static void test_heads_placed_and_verified(void **state)
{
	fixture *f = *state;
	char priv[400], pub[400];
	drb_audit_signkey *sk, *pk;
	drb_verify_result res;
	json_t *recs = NULL, *r;
	drb_err err = {0};
	size_t i;
	long gap = 0, heads = 0;

	write_keys(f, "k", 1, priv, pub);
	sk = load(priv, 1);
	pk = load(pub, 0);
	signed_log(f->path, sk, 250);
	assert_int_equal(verify(f->path, pk, &res), DRB_VERIFY_OK);
	assert_non_null(strstr(res.msg, "signs the run.end"));
	assert_int_equal(verify(f->path, NULL, &res), DRB_VERIFY_OK);
	assert_int_equal(drb_audit_read(f->path, &recs, &err), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "event")),
			    "head");
	json_array_foreach(recs, i, r)
	{
		const char *ev = json_string_value(json_object_get(r, "event"));

		if (strcmp(ev, "head")) {
			gap++;
			assert_true(gap <= 99);
			continue;
		}
		heads++;
		gap = 0;
		/* data names the record before it */
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(r, "data"), "seq")),
		    json_integer_value(json_object_get(r, "seq")) - 1);
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(r, "data"), "sha256")),
		    json_string_value(json_object_get(r, "prev")));
	}
	assert_true(heads >= 4); /* start, 2 in the middle, end */
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(recs, json_array_size(recs) - 2), "event")),
			    "run.end");
	json_decref(recs);
	drb_audit_signkey_free(sk);
	drb_audit_signkey_free(pk);
}

/* Each way a signed log can be wrong has its verdict. */
static void test_signed_verdicts(void **state)
{
	fixture *f = *state;
	char priv[400], pub[400], priv2[400], pub2[400], cut[400];
	drb_audit_signkey *sk, *pk, *pk2;
	drb_verify_result res;
	int n = 0;

	write_keys(f, "k", 1, priv, pub);
	write_keys(f, "other", 1, priv2, pub2);
	sk = load(priv, 1);
	pk = load(pub, 0);
	pk2 = load(pub2, 0);
	signed_log(f->path, sk, 150);
	snprintf(cut, sizeof(cut), "%s/cut.jsonl", f->dir);
	{
		char *all = slurp(f->path, NULL);

		for (char *p = all; (p = strchr(p, '\n')); p++)
			n++;
		free(all);
	}

	/* a wrong public key */
	assert_int_equal(verify(f->path, pk2, &res), DRB_VERIFY_BAD_SIG);

	/* run.end and its head removed: cut after a head that promised more */
	{
		size_t len;
		char *all = slurp(f->path, &len), *p = all + len - 1;

		for (int k = 0; k < 2; k++) /* back over the last two lines */
			do
				p--;
			while (*p != '\n');
		assert_int_equal(spit(cut, all, (size_t)(p - all + 1)), 0);
		assert_int_equal(verify(cut, pk, &res), DRB_VERIFY_CUT);
		assert_non_null(strstr(res.msg, "truncated"));
		/* without the key the chain alone cannot tell */
		assert_int_equal(verify(cut, NULL, &res), DRB_VERIFY_OK);

		/* cut right after the middle head (line 101: run.start, head, 99 records) */
		p = all;
		for (int k = 0; k < 101 + 1; k++)
			p = strchr(p, '\n') + 1;
		assert_int_equal(spit(cut, all, (size_t)(p - all)), 0);
		assert_int_equal(verify(cut, pk, &res), DRB_VERIFY_CUT);
		assert_int_equal(res.line, 102);

		/* the last head's signature changed: the chain cannot see it, the key can */
		for (char *q = all; (q = strstr(q, "\"sig\":\"")); q++)
			p = q + 7 + 5; /* a digit inside the last head's signature */
		*p = *p == '0' ? '1' : '0';
		snprintf(cut, sizeof(cut), "%s/forged.jsonl", f->dir);
		assert_int_equal(spit(cut, all, len), 0);
		assert_int_equal(verify(cut, NULL, &res), DRB_VERIFY_OK);
		assert_int_equal(verify(cut, pk, &res), DRB_VERIFY_TAMPERED);
		assert_int_equal(res.line, n);
		free(all);
	}

	/* a byte changed in a signed record */
	{
		size_t len;
		char *all = slurp(f->path, &len), *p = strstr(all, "\"i\":7}");

		assert_non_null(p);
		p[4] = '8';
		snprintf(cut, sizeof(cut), "%s/tampered.jsonl", f->dir);
		assert_int_equal(spit(cut, all, len), 0);
		assert_int_equal(verify(cut, pk, &res), DRB_VERIFY_TAMPERED);
		free(all);
	}

	/* an unsigned log */
	snprintf(cut, sizeof(cut), "%s/unsigned.jsonl", f->dir);
	assert_int_equal(make_log(cut, NULL, 5), 0);
	assert_int_equal(verify(cut, pk, &res), DRB_VERIFY_UNSIGNED);
	assert_int_equal(verify(cut, NULL, &res), DRB_VERIFY_OK);

	drb_audit_signkey_free(sk);
	drb_audit_signkey_free(pk);
	drb_audit_signkey_free(pk2);
}

/* Resuming a signed log: its heads are checked with the key first (another key is refused),
 * the count of unsigned records continues, and nobody else may write a head. */
static void test_resume_and_refusals(void **state)
{
	fixture *f = *state;
	char priv[400], pub[400], priv2[400], pub2[400];
	drb_audit_signkey *sk, *pk, *sk2;
	drb_verify_result res;
	drb_audit *a = NULL;
	drb_err err = {0};

	write_keys(f, "k", 1, priv, pub);
	write_keys(f, "other", 1, priv2, pub2);
	sk = load(priv, 1);
	pk = load(pub, 0);
	sk2 = load(priv2, 1);
	signed_log(f->path, sk, 60);
	/* drop run.end and its head, as a killed run leaves it */
	{
		lines l;

		assert_int_equal(lines_load(&l, f->path), 0);
		l.n -= 2;
		assert_int_equal(lines_save(&l, f->path), 0);
		l.n += 2;
		lines_free(&l);
	}
	assert_int_equal(drb_audit_open_append(&a, f->path, NULL, 0, &err), 0);
	assert_int_equal(drb_audit_sign_with(a, sk2, &err), DRB_EINTEGRITY);
	assert_non_null(strstr(err.msg, "refusing to sign"));
	assert_int_equal(drb_audit_sign_with(a, sk, &err), 0);
	assert_int_equal(drb_audit_append(a, "head", NULL, NULL, &err), DRB_EINVAL);
	for (int i = 0; i < 60; i++)
		assert_int_equal(drb_audit_append(a, "step.end", NULL, NULL, &err), 0);
	assert_int_equal(drb_audit_append(a, "run.end", NULL, NULL, &err), 0);
	drb_audit_close(a);
	assert_int_equal(verify(f->path, pk, &res), DRB_VERIFY_OK);
	/* 57 old + 60 new unsigned records: a head came in between */
	assert_non_null(strstr(res.msg, "3 signed heads"));
	drb_audit_signkey_free(sk);
	drb_audit_signkey_free(sk2);
	drb_audit_signkey_free(pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sign_and_check, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_key_load_refusals, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_heads_placed_and_verified, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_signed_verdicts, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_resume_and_refusals, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
