/* Private to the audit module: what the verifier hands to the writer so that
 * drb_audit_open_append can continue (or repair) a log it has just verified under its lock. */
#ifndef DRB_AUDIT_INT_H
#define DRB_AUDIT_INT_H

#include <sys/types.h>

#include <drbook/audit.h>

/* The state at the end of the last good record. run is malloc'd (free it), NULL when no record
 * verified. */
typedef struct drb_audit_tail {
	long seq;	 /* seq of the last good record, 0 when none */
	char prev[65];	 /* SHA-256 hex of the last good line's bytes */
	char *run;	 /* run id of the log */
	int has_mac;	 /* the records carry a mac field */
	int missing_nl;	 /* the last good line is complete but has no trailing newline */
	off_t good_end;	 /* file offset just after the last good line (and its newline) */
	off_t size;	 /* file size seen by the scan */
	long since_head; /* records after the last head record (all of them when none) */
} drb_audit_tail;

/* Verifies the log open on fd (read with pread from offset 0, so the file position does not
 * matter). path is only used in messages. tail may be NULL. pub may be NULL. Same contract as
 * drb_audit_verify_signed (with pub, a log that does not end on a signed run.end is UNSIGNED
 * or CUT, which a resumed log legitimately is). */
int drb_audit_scan_fd(int fd, const char *path, const unsigned char *key, size_t key_len,
		      const drb_audit_signkey *pub, drb_verify_result *res, drb_audit_tail *tail,
		      drb_err *err);

/* The event of a head record. */
#define DRB_AUDIT_HEAD "head"

/* The bytes every record line begins with; the verifier uses it to tell an interrupted write
 * (a prefix of a record) from garbage. */
#define DRB_AUDIT_LINE_START "{\"seq\":"

#endif
