/* The audit log: the system of record. JSON Lines, one object per line with the fields
 * seq, ts, run, event, step, data, prev[, mac] in that order; each line chained to the previous
 * by SHA-256 and optionally authenticated by HMAC-SHA256. Only this module writes the log.
 * See docs/audit.md for the format. */
#ifndef DRBOOK_AUDIT_H
#define DRBOOK_AUDIT_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/error.h>

#define DRB_AUDIT_LINE_MAX (4u * 1024 * 1024) /* a longer record is refused (DRB_ELIMIT) */

typedef struct drb_audit drb_audit;

/* Creates a new log at path (which must not exist; parent folders are created) for run_id.
 * key (may be NULL) is copied and wiped on close. *out is the caller's (drb_audit_close). */
int drb_audit_create(drb_audit **out, const char *path, const char *run_id,
		     const unsigned char *key, size_t key_len, drb_err *err);

/* Opens an existing log to append to it (resume). The whole chain is verified first with the
 * key: a tampered log is refused (DRB_EINTEGRITY). A truncated last line (an interrupted
 * write) is cut off and recorded with an "audit.repaired" event so the chain stays valid.
 * The run id, seq and prev continue from the last line. */
int drb_audit_open_append(drb_audit **out, const char *path, const unsigned char *key,
			  size_t key_len, drb_err *err);

/* Appends one record. event is e.g. "step.start"; step may be NULL (written as null); data
 * may be NULL (written as {}) and is borrowed: the log writes a scrubbed copy in which values
 * of secret-looking keys (authorization, password, secret, token, ...) and passwords inside
 * DSNs/URLs are replaced by "***". The line is written with one write(2) and fsync'd before
 * this returns. Thread-safe. DRB_EIO when the write or fsync fails; DRB_ELIMIT when the line
 * would exceed DRB_AUDIT_LINE_MAX. */
int drb_audit_append(drb_audit *a, const char *event, const char *step, const json_t *data,
		     drb_err *err);

const char *drb_audit_run_id(const drb_audit *a);
const char *drb_audit_path(const drb_audit *a);
long drb_audit_seq(const drb_audit *a); /* seq of the last record written */

/* Closes the file and wipes the key. NULL is fine. */
void drb_audit_close(drb_audit *a);

/* Outcome of a verification. */
typedef enum drb_verify_kind {
	DRB_VERIFY_OK = 0,
	DRB_VERIFY_TAMPERED,   /* a line was changed, deleted, inserted or reordered */
	DRB_VERIFY_BAD_MAC,    /* chain intact but a MAC does not match: wrong key or forged */
	DRB_VERIFY_NO_MAC,     /* a key was given but the log carries no MACs (or the reverse) */
	DRB_VERIFY_TRUNCATED,  /* only the last line is incomplete: an interrupted write */
	DRB_VERIFY_MALFORMED   /* not a drbook audit log line (bad JSON, fields missing/out of order) */
} drb_verify_kind;

typedef struct drb_verify_result {
	drb_verify_kind kind;
	long line;      /* 1-based number of the first bad line; 0 when ok */
	long records;   /* number of good records read */
	char msg[512];  /* what is wrong with that line, for humans */
} drb_verify_result;

/* Verifies the whole file. Returns 0 when the file could be read (the verdict is in res), or
 * a negative code when it could not be opened or read (err says why). key may be NULL. */
int drb_audit_verify(const char *path, const unsigned char *key, size_t key_len,
		     drb_verify_result *res, drb_err *err);

/* Reads all records of a log as a JSON array of objects (the parsed lines, with seq, ts, run,
 * event, step, data). A truncated last line is skipped. *out is the caller's (json_decref). */
int drb_audit_read(const char *path, json_t **out, drb_err *err);

/* Loads an HMAC key from a file (trailing newline stripped; empty file refused). *key is the
 * caller's to wipe with OPENSSL_cleanse and free. */
int drb_audit_key_load(const char *path, unsigned char **key, size_t *key_len, drb_err *err);

/* Returns a scrubbed deep copy of v (see drb_audit_append); the caller owns it. */
json_t *drb_audit_scrub(const json_t *v);

#endif
