/* The audit log: the system of record. JSON Lines, one object per line with the fields
 * seq, ts, run, event, step, data, prev[, mac] in that order; each line chained to the previous
 * by SHA-256 and optionally authenticated by HMAC-SHA256. Only this module writes the log.
 * See docs/audit.md for the format. */
#ifndef DRBOOK_AUDIT_H
#define DRBOOK_AUDIT_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/error.h>

/* Longest record line in bytes, without its newline: a longer record is refused by
 * drb_audit_append (DRB_ELIMIT) and a longer line fails verification. */
#define DRB_AUDIT_LINE_MAX (4u * 1024 * 1024)

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

/* Borrowed from the handle. */
const char *drb_audit_run_id(const drb_audit *a);
const char *drb_audit_path(const drb_audit *a);
long drb_audit_seq(const drb_audit *a); /* seq of the last record written, 0 before any */

/* Closes the file and wipes the key. NULL is fine. */
void drb_audit_close(drb_audit *a);

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
	DRB_VERIFY_MALFORMED  /* not a drbook audit log: empty, or line 1 is not a record (bad
			       * JSON, fields missing, extra or out of order, wrong types) */
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
 * can keep elsewhere to detect later truncation of the log's tail. */
int drb_audit_verify(const char *path, const unsigned char *key, size_t key_len,
		     drb_verify_result *res, drb_err *err);

/* Reads all records of a log as a JSON array of objects (the parsed lines, with seq, ts, run,
 * event, step, data, prev[, mac]). It does not verify the chain (drb_audit_verify does); a
 * line that is not a JSON object is DRB_EINTEGRITY, except an incomplete last line (an
 * interrupted write), which is skipped. *out is the caller's (json_decref). */
int drb_audit_read(const char *path, json_t **out, drb_err *err);

/* Loads an HMAC key from a file of at most 4096 bytes (one trailing "\n" or "\r\n" stripped;
 * an empty key is DRB_EINVAL, a larger file DRB_ELIMIT, a missing one DRB_ENOTFOUND). *key is
 * the caller's to wipe with OPENSSL_cleanse and free. */
int drb_audit_key_load(const char *path, unsigned char **key, size_t *key_len, drb_err *err);

/* Returns a deep copy of v in which secrets are replaced by "***": the values of object keys
 * that name a secret (authorization, password, passwd, secret, token, credential, api_key,
 * private_key, cookie, signature, session ids), and inside strings passwords in URIs and DSNs,
 * SigV4 Signature= and Credential=, header lines, Bearer tokens, <Secret>...</Secret>.
 * The exact rules are in docs/audit.md. NULL for NULL or when out of memory; the caller owns
 * the copy (json_decref). */
json_t *drb_audit_scrub(const json_t *v);

#endif
