/* drbook error type: one struct passed explicitly down every call (parallel steps run on
 * threads, so there is no "last error" global). Functions return 0 or a negative drb_code;
 * the code is what callers branch on, the message is what humans read. */
#ifndef DRBOOK_ERROR_H
#define DRBOOK_ERROR_H

#include <stddef.h>

typedef enum drb_code {
	DRB_OK = 0,
	DRB_ERR = -1,        /* failed, nothing more specific to branch on */
	DRB_ENOMEM = -2,     /* allocation failed */
	DRB_EINVAL = -3,     /* bad input: usage, runbook, parameter, a server's answer */
	DRB_ENOTFOUND = -4,  /* the named thing does not exist */
	DRB_ETIMEOUT = -5,   /* a deadline passed; retryable */
	DRB_ETRANSIENT = -6, /* throttling, 5xx, reset: worth retrying */
	DRB_EDENIED = -7,    /* refused: approval, lock, read-only mode, access denied */
	DRB_ELIMIT = -8,     /* a cap was hit: size, memory, instructions, depth */
	DRB_ESCRIPT = -9,    /* a Lua error or a false assertion */
	DRB_EINTEGRITY = -10,/* tampered or corrupt data (audit log) */
	DRB_EIO = -11,       /* the OS said no: open, write, fsync, fork */
	DRB_EINTERRUPTED = -12, /* a truncated write or a cancelled run */
	DRB_ESHADOW = -13    /* a shadow drill refused a change to a resource not its own */
} drb_code;

typedef struct drb_err {
	int code;       /* a drb_code; 0 when no error */
	long cause;     /* errno, CURLcode, HTTP status... 0 when none; negative: the engine's own */
	char msg[1024]; /* human message, context prefixed on the way up */
} drb_err;

/* Sets code and message (printf format); returns code so callers can `return drb_err_set(..)`.
 * err may be NULL. */
int drb_err_set(drb_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes context to the message: "step promote: " + old message. Returns err->code. */
int drb_err_prefix(drb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void drb_err_clear(drb_err *err);

/* Short stable name of a code ("timeout", "denied", ...), for logs and JSON. */
const char *drb_code_name(int code);

/* Whether the retry logic may try again after this code (transient and timeout only). */
int drb_code_retryable(int code);

#endif
