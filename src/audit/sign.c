/* Signed heads: Ed25519 keys read from PEM files, and the signature of a chain head (run id,
 * seq, SHA-256 of that record's line) that a `head` record carries. The message signed is
 * fixed here and documented in docs/audit.md "Signed heads"; the verifier and the writer both
 * build it with head_message, so they cannot disagree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <drbook/audit.h>
#include <drbook/util.h>

#include "audit_int.h"

#define PEM_MAX 16384
#define HEAD_MSG_MAX (64 + 24 + 65 + 260)

struct drb_audit_signkey {
	EVP_PKEY *pkey;
	int has_private;
};

/* "drbook-audit-head-v1\n<seq>\n<sha256 hex>\n<run id>": the run id last, so no field can
 * spill into another. */
static int head_message(char *buf, size_t cap, const char *run, long seq, const char *sha256)
{
	int n = snprintf(buf, cap, "drbook-audit-head-v1\n%ld\n%s\n%s", seq, sha256, run);

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

static void openssl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "not a PEM key");
	ERR_clear_error();
}

int drb_audit_signkey_load(drb_audit_signkey **out, const char *path, int private_key, drb_err *err)
{
	char buf[PEM_MAX + 1], why[256];
	const char *what = private_key ? "signing key" : "public key";
	drb_audit_signkey *k = NULL;
	BIO *bio = NULL;
	struct stat st;
	size_t n = 0;
	int fd = -1, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = drb_err_set(err, errno == ENOENT ? DRB_ENOTFOUND : DRB_EIO, "%s %s: %s", what,
				 path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s %s: not a regular file", what, path);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = drb_err_set(err, DRB_EIO, "%s %s: %s", what, path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > PEM_MAX) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s %s: larger than %d bytes", what, path,
				 PEM_MAX);
		goto out;
	}
	k = calloc(1, sizeof(*k));
	bio = BIO_new_mem_buf(buf, (int)n);
	if (!k || !bio) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	/* no passphrase callback: a key that needs one fails here instead of prompting */
	k->pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
			      : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!k->pkey) {
		openssl_reason(why, sizeof(why));
		rc = drb_err_set(err, DRB_EINVAL, "%s %s: cannot read a PEM %s key: %s", what, path,
				 private_key ? "private" : "public", why);
		goto out;
	}
	if (EVP_PKEY_id(k->pkey) != EVP_PKEY_ED25519) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s %s: not an Ed25519 key (make one with: openssl genpkey "
				 "-algorithm ed25519)",
				 what, path);
		goto out;
	}
	k->has_private = private_key;
	*out = k;
	k = NULL;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	BIO_free(bio);
	drb_audit_signkey_free(k);
	if (fd >= 0)
		close(fd);
	return rc;
}

void drb_audit_signkey_free(drb_audit_signkey *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int drb_audit_head_sign(const drb_audit_signkey *k, const char *run, long seq, const char *sha256,
			char sig[129], drb_err *err)
{
	char msg[HEAD_MSG_MAX];
	unsigned char raw[64];
	size_t raw_len = sizeof(raw);
	EVP_MD_CTX *ctx = NULL;
	int n, rc = 0;

	sig[0] = '\0';
	if (!k || !k->has_private)
		return drb_err_set(err, DRB_EINVAL, "head signature: no private key");
	n = head_message(msg, sizeof(msg), run, seq, sha256);
	if (n < 0)
		return drb_err_set(err, DRB_EINVAL, "head signature: run id too long");
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	/* Ed25519 is one-shot: no digest, EVP_DigestSign over the whole message */
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, raw, &raw_len, (const unsigned char *)msg, (size_t)n) != 1 ||
	    raw_len != 64) {
		char why[256];

		openssl_reason(why, sizeof(why));
		rc = drb_err_set(err, DRB_EIO, "head signature: %s", why);
		goto out;
	}
	drb_hex(raw, 64, sig);
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return s[2 * n] == '\0' ? 0 : -1;
}

int drb_audit_head_check(const drb_audit_signkey *k, const char *run, long seq, const char *sha256,
			 const char *sig_hex)
{
	char msg[HEAD_MSG_MAX];
	unsigned char raw[64];
	EVP_MD_CTX *ctx = NULL;
	int n, rc = DRB_EINTEGRITY;

	if (!k || !run || !sha256 || !sig_hex || strlen(sig_hex) != 128 ||
	    unhex(sig_hex, raw, sizeof(raw)))
		return DRB_EINTEGRITY;
	n = head_message(msg, sizeof(msg), run, seq, sha256);
	if (n < 0)
		return DRB_EINTEGRITY;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return DRB_ENOMEM;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, raw, sizeof(raw), (const unsigned char *)msg, (size_t)n) == 1)
		rc = 0;
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}
