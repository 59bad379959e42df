/* Private to src/providers/notify: the pure message builders (payload.c) and the
 * configuration readers (config.c) that the action (notify.c) is made of. Tests include this
 * header to check the builders directly; the engine sees only drb_notify_actions. */
#ifndef DRB_NOTIFY_INT_H
#define DRB_NOTIFY_INT_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/error.h>
#include <drbook/notify.h>

enum { NOTIFY_SEV_INFO = 0, NOTIFY_SEV_WARNING, NOTIFY_SEV_ERROR, NOTIFY_SEV_CRITICAL };

/* ---- payload.c: pure, no I/O ------------------------------------------------------------- */

/* "info", "warning", "error", "critical", NULL: the index is the NOTIFY_SEV_* value. */
extern const char *const drb_notifyi_severities[];

/* The NOTIFY_SEV_* value of name (exact, lower case), or -1. */
int drb_notifyi_severity(const char *name);

/* The text as every channel sends it: "[DRILL] " + text in a drill, else text. malloc'd
 * (the caller frees); NULL only when out of memory. */
char *drb_notifyi_text(const char *text, int drill);

/* Slack-compatible body {"text": "<emoji> <text>"} where the emoji names the severity
 * (:information_source:, :warning:, :x:, :rotating_light:) and &, <, > in text are written
 * as the entities Slack requires (so a "<!channel>" inside interpolated text cannot ping
 * anyone). New reference, or NULL when out of memory. */
json_t *drb_notifyi_slack_body(const char *text, int severity);

/* PagerDuty Events v2 trigger: {routing_key, event_action: "trigger", dedup_key (when
 * non-NULL), payload: {summary, severity, source, component: "drbook"}}. A text longer than
 * DRB_NOTIFY_PD_SUMMARY_MAX bytes is cut at a UTF-8 boundary with "..." and also sent whole
 * in payload.custom_details.text. New reference, or NULL when out of memory. */
json_t *drb_notifyi_pagerduty_body(const char *routing_key, const char *text, int severity,
				   const char *dedup_key, const char *source);

/* The SNS subject for a severity: "drbook SEVERITY" with "[DRILL] " in front in a drill
 * (ASCII, one line, under 100 characters, as SNS requires). */
void drb_notifyi_sns_subject(int severity, int drill, char *out, size_t n);

/* Overwrites, in place, every occurrence in s of the URL url, of its path-and-query, and of
 * each path or query segment of 16 bytes or more, with "***". For answers and error messages
 * that might echo a webhook URL. */
void drb_notifyi_scrub_url(char *s, const char *url);
/* The same for one secret (ignored when shorter than 4 bytes). */
void drb_notifyi_scrub(char *s, const char *secret);

/* ---- config.c: the environment and files --------------------------------------------------- */

/* 1 when name is a plausible environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 128
 * bytes). */
int drb_notifyi_env_name_ok(const char *name);

/* Reads the setting `name`: the variable name, or the contents of the file named by the
 * variable name_FILE (trailing whitespace trimmed). Setting both, neither, or an empty value
 * is DRB_EINVAL naming the variable; an unreadable file is the file's error (path named).
 * Messages never hold the value. *out is malloc'd: release with drb_notifyi_secret_free. */
int drb_notifyi_config(const char *name, char **out, drb_err *err);

/* Wipes and frees s; NULL is fine. */
void drb_notifyi_secret_free(char *s);

/* Checks that url (the value of variable `what`) is http(s)://host...; plain http only to a
 * loopback host (a secret never crosses the network in clear). Fills origin ("scheme://host
 * [:port]"). DRB_EINVAL naming `what`, never the value. */
int drb_notifyi_url_check(const char *url, const char *what, char *origin, size_t n, drb_err *err);

#endif
