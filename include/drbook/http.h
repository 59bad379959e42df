/* drbook HTTP client: the one libcurl wrapper every outgoing HTTP call uses (AWS, webhooks,
 * the http.request action). It owns the safety defaults (TLS always verified, explicit
 * timeouts, http/https only, capped response) and the retry policy with jittered backoff. */
#ifndef DRBOOK_HTTP_H
#define DRBOOK_HTTP_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/error.h>

/* One request. All members are borrowed. Zero values mean the default. */
typedef struct drb_http_req {
	const char *method;	    /* "GET", "POST", ...; NULL = GET (POST when body) */
	const char *url;	    /* http:// or https:// only */
	const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
	const void *body;	    /* may be NULL */
	size_t body_len;
	double connect_timeout_s; /* default 5 */
	double timeout_s;	  /* whole transfer; default 30 */
	size_t max_response;	  /* body cap in bytes; default 8 MiB */
	const char *ca_file;	  /* PEM bundle; NULL = system store */
	/* Extensions beyond the single call: */
	int allow_truncate;	    /* 1: a body over max_response is cut (resp.truncated = 1)
				       instead of failing with DRB_ELIMIT */
	const volatile int *cancel; /* may be NULL; becoming non-zero aborts the transfer with
				       DRB_EINTERRUPTED */
	double deadline; /* drb_mono_now() time or 0: one budget for all attempts; each attempt
			    gets min(timeout_s, time left), none starts (nor backoff sleeps)
			    past it (DRB_ETIMEOUT) */
} drb_http_req;

/* One answer. Owned by the caller: release with drb_http_resp_free. */
typedef struct drb_http_resp {
	long status; /* HTTP status */
	char *body;  /* NUL-terminated (binary bodies may hold NULs: use body_len) */
	size_t body_len;
	json_t *headers;   /* object: lowercase name -> last value */
	double latency_ms; /* wall time of the transfer */
	int truncated;	   /* 1 when allow_truncate cut the body */
} drb_http_resp;

/* Calls curl_global_init once; call it from main (or a test's main) before any thread
 * starts. Returns 0 or DRB_ERR. drb_http_global_cleanup undoes it at exit. */
int drb_http_global_init(void);
void drb_http_global_cleanup(void);

/* Performs one attempt. Returns 0 when an HTTP answer arrived, whatever its status (the
 * caller decides what a 404 means), and fills *out (which it first zeroes). Errors, with
 * err->cause = the CURLcode:
 *   DRB_ETRANSIENT  could not connect or resolve, connection reset, receive error, empty reply
 *   DRB_ETIMEOUT    connect or total timeout
 *   DRB_EDENIED     TLS handshake or certificate verification failed (not retryable)
 *   DRB_EINVAL      bad URL, method or header, protocol other than http/https, invalid HTTP
 *   DRB_ELIMIT      "response larger than N bytes" (unless allow_truncate)
 *   DRB_EINTERRUPTED *cancel became non-zero
 * The message names the method and the URL's origin only (paths and queries may carry
 * secrets, e.g. webhook URLs) and never the request headers. */
int drb_http_perform(const drb_http_req *r, drb_http_resp *out, drb_err *err);

/* Frees what *r owns and zeroes it; r may be NULL. */
void drb_http_resp_free(drb_http_resp *r);

/* Retry policy. Zero values mean the default. */
typedef struct drb_http_retry {
	int max_attempts; /* default 4 (including the first) */
	double base_s;	  /* default 0.2 */
	double cap_s;	  /* default 20; also caps Retry-After */
	/* Optional: return 1 to retry an answer the status alone does not mark retryable
	 * (e.g. AWS "Throttling" in a 400 body). */
	int (*classify)(void *ud, const drb_http_resp *r);
	void *ud;
} drb_http_retry;

/* drb_http_perform with retries: transport errors DRB_ETRANSIENT and DRB_ETIMEOUT, statuses
 * 5xx and 429, and answers classify() marks; never another 4xx or DRB_EDENIED/EINVAL/ELIMIT.
 * Between attempts it sleeps drb_backoff_delay(base, cap, n, random) or Retry-After (seconds
 * or an HTTP date) when the answer has one, at most cap_s. p may be NULL (defaults); attempts
 * may be NULL. Returns 0 with the last answer in *out when one arrived (possibly still a
 * 503 after the last attempt: the caller reads the status), else the last error, prefixed
 * "after N attempts: " when there were several. Cancellation (r->cancel) stops retrying. */
int drb_http_perform_retry(const drb_http_req *r, const drb_http_retry *p, drb_http_resp *out,
			   int *attempts, drb_err *err);

/* A new JSON string from arbitrary bytes: invalid UTF-8 becomes U+FFFD so that binary
 * output (a response body, a process's stdout) can be stored in JSON. NULL only when out of
 * memory. The caller owns the reference. */
json_t *drb_http_json_text(const void *p, size_t n);


/* The `http.request` action (action.c): one HTTP call with this client; a non-2xx status is
 * an answer for the runbook to assert on, not an error. */
extern const drb_action drb_action_http;

#endif
