/* Small shared helpers of the core module: bounded buffers, durations, clocks, RFC 3339
 * times, hashing and file reading. Nothing here knows about runbooks or providers. */
#ifndef DRBOOK_UTIL_H
#define DRBOOK_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <drbook/error.h>

/* A growable byte buffer with a hard maximum (curl's dynbuf idea). p is always
 * NUL-terminated once anything was appended. */
typedef struct drb_buf {
	char *p;
	size_t len, cap, max;
} drb_buf;

void drb_buf_init(drb_buf *b, size_t max);
/* Appends n bytes; DRB_ELIMIT when max would be passed (nothing appended), DRB_ENOMEM. */
int drb_buf_append(drb_buf *b, const void *data, size_t n);
int drb_buf_puts(drb_buf *b, const char *s);
int drb_buf_printf(drb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (free()), leaves b empty. Never NULL unless out of memory. */
char *drb_buf_steal(drb_buf *b);
void drb_buf_free(drb_buf *b);

/* Durations: "250ms", "90s", "15m", "1h", "1h30m", "2h15m30s". Returns 0 and seconds, or
 * DRB_EINVAL for anything else (empty, negative, unknown unit, repeated unit, overflow). */
int drb_duration_parse(const char *s, double *out_seconds);
/* Formats seconds the way users write them ("1h30m", "90s" -> "1m30s", "0.25" -> "250ms"). */
void drb_duration_format(double seconds, char *out, size_t n);

/* Clocks. */
double drb_mono_now(void);  /* monotonic seconds */
int64_t drb_wall_ms(void);  /* wall clock, ms since the epoch */
void drb_sleep_s(double s); /* sleeps, restarting after signals */
/* A condition variable on the monotonic clock, and a wait on it (mu held) of at most s
 * seconds: a thread that polls sleeps this way, so that whoever stops it wakes it at once
 * (pthread_cond_signal) instead of waiting out its tick. */
void drb_cond_init_mono(pthread_cond_t *cv);
void drb_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double s);
/* Sleeps until the monotonic time end, waking at least every 100 ms to look at *cancel (may
 * be NULL). Returns 0 at end, DRB_EINTERRUPTED once *cancel is set, DRB_ETIMEOUT when
 * deadline (> 0) comes before end (it returns at the deadline). */
int drb_sleep_until(double end, double deadline, const volatile int *cancel);

/* Who runs drbook: SUDO_USER, else the login name of the uid (buf holds it when needed). */
const char *drb_operator(char *buf, size_t n);

/* A uniformly distributed number in [0, 1) from a per-call generator seeded from the kernel
 * (getrandom): thread-safe, no shared state. */
double drb_random_unit(void);
/* Full-jitter exponential backoff, pure so that it can be tested: unit_random * min(cap,
 * base * 2^attempt), attempt counted from 0 for the first retry; unit_random is clamped to
 * [0, 1]; never negative, never above cap. Used by the HTTP client and the step retry. */
double drb_backoff_delay(double base, double cap, int attempt, double unit_random);

/* RFC 3339 UTC with milliseconds: 2026-11-25T16:39:06.123Z (out needs 25 bytes). */
void drb_rfc3339_ms(int64_t ms, char out[32]);
/* RFC 3339 UTC without fraction: 2026-11-25T16:39:06Z. */
void drb_rfc3339_s(int64_t ms, char out[32]);
/* Parses RFC 3339 ("Z" or +hh:mm offsets, optional fraction). DRB_EINVAL on bad input. */
int drb_rfc3339_parse(const char *s, int64_t *out_ms);

/* Hashing (OpenSSL). out gets 64 lowercase hex digits and a NUL. */
void drb_hex(const unsigned char *in, size_t n, char *out);
void drb_sha256(const void *data, size_t n, unsigned char out[32]);
void drb_sha256_hex(const void *data, size_t n, char out[65]);
void drb_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
		     unsigned char out[32]);

/* Reads a whole regular file of at most max bytes into a NUL-terminated buffer the caller
 * frees. DRB_ENOTFOUND, DRB_EIO, DRB_ELIMIT (too large), with the path in the message. */
int drb_file_read(const char *path, size_t max, char **out, size_t *out_len, drb_err *err);

/* strdup that returns NULL for NULL. */
char *drb_strdup(const char *s);

/* Levenshtein distance, capped: returns cap + 1 as soon as it is exceeded (for "did you mean"
 * suggestions). */
int drb_edit_distance(const char *a, const char *b, int cap);

#endif
