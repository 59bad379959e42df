/* The audit log: the system of record. JSON Lines, one object per line with the fields
 * seq, ts, run, event, step, data, prev[, mac] in that order; each line chained to the previous
 * by SHA-256 and optionally authenticated by HMAC-SHA256. Only this module writes the log.
 * See docs/audit.md for the format. */
#ifndef DRBOOK_AUDIT_H
#define DRBOOK_AUDIT_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/error.h>
#include <drbook/util.h>

/* Longest record line in bytes, without its newline: a longer record is refused by
 * drb_audit_append (DRB_ELIMIT) and a longer line fails verification. */
#define DRB_AUDIT_LINE_MAX (4u * 1024 * 1024)

/* Every record a run log holds, by its event name (docs/audit.md): the one list writers and
 * readers share. drb_event_name(DRB_EV_STEP_END) is "step.end"; drb_event_of("step.end") is
 * DRB_EV_STEP_END, and -1 for a name that is not an event (also NULL). */
typedef enum drb_event {
	DRB_EV_RUN_START,
	DRB_EV_RUN_RESUME,
	DRB_EV_RUN_END,
	DRB_EV_RESUME_REFUSED,
	DRB_EV_STEP_START,
	DRB_EV_STEP_RETRY,
	DRB_EV_STEP_POLL_ERROR,
	DRB_EV_STEP_END,
	DRB_EV_CALL,
	DRB_EV_EXEC_CHILD,
	DRB_EV_LUA_PRINT,
	DRB_EV_APPROVAL,
	DRB_EV_ROLLBACK_BEGIN,
	DRB_EV_ROLLBACK_START,
	DRB_EV_ROLLBACK_END,
	DRB_EV_ROLLBACK_SKIPPED,
	DRB_EV_NOTIFY_FAILED,
	DRB_EV_EVIDENCE_FAILED,
	DRB_EV_PLAN,
	DRB_EV_STOP_CONDITION,
	DRB_EV_READINESS_CHECK,
	DRB_EV_SHADOW_SETUP_BEGIN,
	DRB_EV_SHADOW_SETUP_END,
	DRB_EV_SHADOW_TEARDOWN_BEGIN,
	DRB_EV_SHADOW_TEARDOWN_END,
	DRB_EV_SHADOW_VIOLATION,
	DRB_EV_HEAD,
	DRB_EV_AUDIT_REPAIRED,
	DRB_EV_COUNT
} drb_event;

const char *drb_event_name(drb_event e);
int drb_event_of(const char *name);

typedef struct drb_audit drb_audit;

/* Creates a new log at path (which must not exist; missing parent folders are created 0700,
 * the file is 0600) for run_id (1..256 bytes of UTF-8). key (may be NULL for a log without
 * MACs; non-NULL with key_len 0 is DRB_EINVAL) is copied and wiped on close. The handle holds
 * an exclusive flock on the file while open. *out is the caller's (drb_audit_close).
 * Errors: DRB_EINVAL (bad argument, the file already exists), DRB_EIO. */
int drb_audit_create(drb_audit **out, const char *path, const char *run_id,
		     const unsigned char *key, size_t key_len, drb_err *err);

/* Opens an existing log to append to it (resume). The whole chain is verified first with the
 * key, under the file lock: anything but OK or TRUNCATED is refused with DRB_EINTEGRITY and
 * the verdict in err (so is a key given for a log without MACs, and a log with no complete
 * record). A log with MACs opened without a key is DRB_EINVAL (it would mix signed and
 * unsigned lines). A truncated last line (an interrupted write) is cut off, and a complete last
 * line that lost its newline gets one; either repair is recorded with an "audit.repaired"
 * event (data: reason, cut_bytes, and line or added_newline) so the chain stays valid.
 * The run id, seq and prev continue from the last line. DRB_ENOTFOUND when path does not
 * exist, DRB_EDENIED when another process holds the log open for writing. */
int drb_audit_open_append(drb_audit **out, const char *path, const unsigned char *key,
			  size_t key_len, drb_err *err);

/* Appends one record. event is e.g. "step.start"; step may be NULL (written as null); data
 * may be NULL (written as {}), must otherwise be an object, and is borrowed: the log writes a
 * scrubbed copy (drb_audit_scrub). The line is written with one write(2) and fsync'd before
 * this returns. Thread-safe: seq, ts and prev are taken under the handle's mutex, so the
 * lines of parallel steps get consecutive seqs and one chain. DRB_EINVAL for a missing event,
 * non-object data or strings that are not UTF-8; DRB_ELIMIT when the line would exceed
 * DRB_AUDIT_LINE_MAX (nothing written); DRB_EIO when the write or fsync fails. A failed or short
 * write is cut back off the file; if that is impossible, or fsync failed, the handle refuses
 * every later append (DRB_EIO), because the state of the file is no longer known. */
int drb_audit_append(drb_audit *a, const char *event, const char *step, const json_t *data,
		     drb_err *err);
/* The same, and *hid (not NULL) says whether the scrub hid anything in data: when it is 0,
 * data itself is what may be shown (the run's live output needs no scrubbed copy). */
int drb_audit_append_hid(drb_audit *a, const char *event, const char *step, const json_t *data,
			 int *hid, drb_err *err);

/* Borrowed from the handle. */
const char *drb_audit_run_id(const drb_audit *a);
const char *drb_audit_path(const drb_audit *a);
long drb_audit_seq(const drb_audit *a); /* seq of the last record written, 0 before any */

/* Closes the file and wipes the key. NULL is fine. */
void drb_audit_close(drb_audit *a);

/* ---- signed heads (docs/audit.md "Signed heads") ---------------------------------------- */

/* An Ed25519 key: private (signs heads; it also verifies them) or public (verifies only). */
typedef struct drb_audit_signkey drb_audit_signkey;

/* Loads an Ed25519 key from a PEM file of at most 16 KiB: a private key ("PRIVATE KEY", as
 * `openssl genpkey -algorithm ed25519` writes it; not encrypted) when private_key is 1, else a
 * public key ("PUBLIC KEY", `openssl pkey -pubout`). Another key type or a file that is not PEM
 * is DRB_EINVAL, a missing file DRB_ENOTFOUND. *out is the caller's (drb_audit_signkey_free). */
int drb_audit_signkey_load(drb_audit_signkey **out, const char *path, int private_key,
			   drb_err *err);
void drb_audit_signkey_free(drb_audit_signkey *k); /* NULL is fine */

/* The signature of a chain head: Ed25519 over "drbook-audit-head-v1\n<seq>\n<sha256>\n<run>"
 * (seq in decimal, sha256 the lowercase hex SHA-256 of the signed record's line), written to
 * sig as 128 lowercase hex digits and a NUL. k must be a private key (DRB_EINVAL). */
int drb_audit_head_sign(const drb_audit_signkey *k, const char *run, long seq, const char *sha256,
			char sig[129], drb_err *err);

/* 0 when sig_hex (128 lowercase hex digits) is k's signature of that head, DRB_EINTEGRITY
 * when it is not (or is malformed), DRB_ENOMEM. k may be private or public. */
int drb_audit_head_check(const drb_audit_signkey *k, const char *run, long seq, const char *sha256,
			 const char *sig_hex);

/* From now on the log signs its chain head: after every run.end record, and after every 99th
 * record since the previous head (so at least every 100 records), drb_audit_append writes a
 * `head` record {seq, sha256, sig} signing the record just written, under the same lock. k is
 * borrowed and must outlive the handle. When the log already holds records (resume), the
 * heads in it are checked with k first: one that does not verify is DRB_EINTEGRITY and the
 * handle is left unsigned. */
int drb_audit_sign_with(drb_audit *a, const drb_audit_signkey *k, drb_err *err);

/* Outcome of a verification. */
typedef enum drb_verify_kind {
	DRB_VERIFY_OK = 0,
	DRB_VERIFY_TAMPERED,  /* a line was changed, deleted, inserted or reordered, or a line
			       * after good ones is not a record (garbage, bad JSON) */
	DRB_VERIFY_BAD_MAC,   /* line 1's MAC does not match: wrong key (or a forged log); a
			       * MAC failing after line 1 verified is TAMPERED */
	DRB_VERIFY_NO_MAC,    /* a key was given but the log carries no MACs (without a key, a
			       * log with MACs is verified by its chain and reported OK) */
	DRB_VERIFY_TRUNCATED, /* only the last line is incomplete (a prefix of the next record,
			       * no newline): an interrupted write, not tampering */
	DRB_VERIFY_MALFORMED, /* not a drbook audit log: empty, or line 1 is not a record (bad
			       * JSON, fields missing, extra or out of order, wrong types) */
	/* only with a public key: */
	DRB_VERIFY_BAD_SIG,  /* the first head's signature fails: wrong public key, or a forged
			      * log (a later head failing after one verified is TAMPERED) */
	DRB_VERIFY_UNSIGNED, /* the log holds no head record: nothing is proven */
	DRB_VERIFY_CUT	     /* "truncated": the records verify up to the last signed head, but
			      * that head does not sign the run.end (records or the end were cut
			      * off, or the run is still going or died) */
} drb_verify_kind;

typedef struct drb_verify_result {
	drb_verify_kind kind;
	long line;     /* 1-based number of the first bad line; 0 when ok */
	long records;  /* number of good records read */
	char msg[512]; /* what is wrong with that line, for humans */
} drb_verify_result;

/* Verifies the whole file. Returns 0 when the file could be read (the verdict is in res), or
 * a negative code when it could not be opened or read (err says why: DRB_ENOTFOUND, DRB_EIO,
 * DRB_EINVAL for a folder or an empty key). key may be NULL: then the chain is checked and
 * MACs are not. When OK, res->msg ends with the SHA-256 of the last line, which a reviewer
 * can keep elsewhere to detect later truncation of the log's tail. Head records are records
 * like any other here: drb_audit_verify_signed checks them. */
int drb_audit_verify(const char *path, const unsigned char *key, size_t key_len,
		     drb_verify_result *res, drb_err *err);

/* drb_audit_verify, and with pub (may be private or public; NULL: exactly drb_audit_verify)
 * the signed heads: every head must name the record just before it, carry its hash, and
 * verify (the first failing: BAD_SIG; one failing after a head verified: TAMPERED); the log is
 * OK only when its last record is a head that signs a run.end, else UNSIGNED (no head) or CUT
 * (res->line is the first record after the last head, or the last head's line). */
int drb_audit_verify_signed(const char *path, const unsigned char *key, size_t key_len,
			    const drb_audit_signkey *pub, drb_verify_result *res, drb_err *err);

/* Reads all records of a log as a JSON array of objects (the parsed lines, with seq, ts, run,
 * event, step, data, prev[, mac]). It does not verify the chain (drb_audit_verify does); a
 * line that is not a JSON object is DRB_EINTEGRITY, except an incomplete last line (an
 * interrupted write), which is skipped. *out is the caller's (json_decref). */
int drb_audit_read(const char *path, json_t **out, drb_err *err);

/* Loads an HMAC key from a file of at most 4096 bytes (one trailing "\n" or "\r\n" stripped;
 * an empty key is DRB_EINVAL, a larger file DRB_ELIMIT, a missing one DRB_ENOTFOUND). *key is
 * the caller's to wipe with OPENSSL_cleanse and free. */
int drb_audit_key_load(const char *path, unsigned char **key, size_t *key_len, drb_err *err);

/* Returns v with secrets replaced by "***": the values of object keys
 * that name a secret (authorization, password, passwd, secret, token, credential, api_key,
 * private_key, cookie, signature, session ids), and inside strings passwords in URIs and DSNs,
 * SigV4 Signature= and Credential=, header lines, Bearer tokens, <Secret>...</Secret>.
 * The exact rules are in docs/audit.md. Copy on write: what is unchanged is shared with v, and
 * v itself comes back when nothing changes, so the result must not be modified; v is never
 * modified. NULL for NULL or when out of memory; the caller owns the reference (json_decref). */
json_t *drb_audit_scrub(const json_t *v);

/* drb_audit_scrub_dump's answer when v holds what only the two passes render exactly (a key
 * with a NUL byte, text that is not valid UTF-8): scrub, then json_dumps, as before. */
#define DRB_AUDIT_DUMP_SLOW 1

/* Appends to out the text json_dumps(drb_audit_scrub(v), JSON_COMPACT | JSON_PRESERVE_ORDER |
 * JSON_ENSURE_ASCII) gives (v an object), byte for byte, in one pass without the copy: what
 * the audit log writes as a record's data. 0; DRB_ELIMIT when out's cap is reached,
 * DRB_ENOMEM, DRB_EINVAL when v is not an object, or DRB_AUDIT_DUMP_SLOW. On failure out holds
 * a partial text. *hid (may be NULL) is set to 1 when the text differs from v's, something
 * being hidden, else 0. */
int drb_audit_scrub_dump(const json_t *v, drb_buf *out, int *hid);

/* Appends s (n bytes) as a JSON string the way jansson writes it with JSON_ENSURE_ASCII.
 * 0, DRB_ELIMIT, DRB_ENOMEM, or DRB_AUDIT_DUMP_SLOW when s is not valid UTF-8. */
int drb_audit_json_string(drb_buf *out, const char *s, size_t n);

#endif
