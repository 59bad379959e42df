/* libFuzzer target for the audit log reader and verifier: any bytes as a log file, with and
 * without a key, and with a public key for the signed heads, must give a verdict (or a clean
 * error), never a crash, a leak or unbounded work. Built and run by scripts/fuzz. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <drbook/audit.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed Ed25519 public key: head records in the input are checked against it. */
static const char PUB_PEM[] = "-----BEGIN PUBLIC KEY-----\n"
			      "MCowBQYDK2VwAyEAw46UW3Q/th1O87ZmU8tO5JqcQKfFwt3InO0zad4rI3E=\n"
			      "-----END PUBLIC KEY-----\n";

static drb_audit_signkey *public_key(void)
{
	static drb_audit_signkey *k;
	static int tried;
	char p[64];
	drb_err err;
	FILE *f;

	if (tried)
		return k;
	tried = 1;
	snprintf(p, sizeof(p), "/tmp/drb-fuzz-audit-%d.pub", (int)getpid());
	f = fopen(p, "w");
	if (!f)
		return NULL;
	fputs(PUB_PEM, f);
	fclose(f);
	drb_err_clear(&err);
	drb_audit_signkey_load(&k, p, 0, &err);
	unlink(p);
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static const unsigned char key[] = "fuzz key";
	drb_verify_result vr;
	drb_err err;
	json_t *recs = NULL;
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/drb-fuzz-audit-%d.jsonl", (int)getpid());
	f = fopen(path, "wb");
	if (!f)
		return 0;
	if (size)
		fwrite(data, 1, size, f);
	fclose(f);
	memset(&vr, 0, sizeof(vr));
	drb_err_clear(&err);
	drb_audit_verify(path, NULL, 0, &vr, &err);
	drb_audit_verify(path, key, sizeof(key) - 1, &vr, &err);
	drb_audit_verify_signed(path, NULL, 0, public_key(), &vr, &err);
	if (drb_audit_read(path, &recs, &err) == 0)
		json_decref(recs);
	unlink(path);
	return 0;
}
