/* What a notification says on each channel: the drill prefix, the Slack and PagerDuty bodies,
 * the SNS subject, and the scrubbing of secrets out of answers. Pure functions with no I/O,
 * so that the exact bytes on the wire are testable without a server. */
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "notify_int.h"

const char *const drb_notifyi_severities[] = {"info", "warning", "error", "critical", NULL};

/* Shortcodes that Slack, Mattermost, Rocket.Chat and Discord's Slack endpoint all render. */
static const char *const slack_emoji[] = {
    ":information_source:", ":warning:", ":x:", ":rotating_light:"};

int drb_notifyi_severity(const char *name)
{
	for (int i = 0; name && drb_notifyi_severities[i]; i++)
		if (!strcmp(name, drb_notifyi_severities[i]))
			return i;
	return -1;
}

char *drb_notifyi_text(const char *text, int drill)
{
	drb_buf b;
	char *out = NULL;

	drb_buf_init(&b, strlen(text) + 16);
	if (drill && drb_buf_puts(&b, "[DRILL] ") != 0)
		goto out;
	if (drb_buf_append(&b, text, strlen(text)) != 0)
		goto out;
	out = drb_buf_steal(&b); /* "" for an empty text */
out:
	drb_buf_free(&b);
	return out;
}

json_t *drb_notifyi_slack_body(const char *text, int severity)
{
	const char *emoji =
	    slack_emoji[severity >= 0 && severity <= NOTIFY_SEV_CRITICAL ? severity
									 : NOTIFY_SEV_INFO];
	json_t *o = NULL;
	drb_buf b;
	int rc;

	/* Slack reads &, < and > as markup (<!channel>, <url|label>): text that came from a
	 * step's result must not turn into a mention, so they travel as entities. */
	drb_buf_init(&b, strlen(text) * 5 + strlen(emoji) + 2);
	rc = drb_buf_printf(&b, "%s ", emoji);
	for (const char *p = text; rc == 0 && *p; p++) {
		if (*p == '&')
			rc = drb_buf_puts(&b, "&amp;");
		else if (*p == '<')
			rc = drb_buf_puts(&b, "&lt;");
		else if (*p == '>')
			rc = drb_buf_puts(&b, "&gt;");
		else
			rc = drb_buf_append(&b, p, 1);
	}
	if (rc == 0)
		o = json_pack("{s:s}", "text", b.p);
	drb_buf_free(&b);
	return o;
}

/* The length of the longest prefix of s (of length n) that fits in max bytes without cutting
 * a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	size_t k;

	if (n <= max)
		return n;
	k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	return k;
}

json_t *drb_notifyi_pagerduty_body(const char *routing_key, const char *text, int severity,
				   const char *dedup_key, const char *source)
{
	const char *sev = drb_notifyi_severities[severity >= 0 && severity <= NOTIFY_SEV_CRITICAL
						     ? severity
						     : NOTIFY_SEV_INFO];
	size_t n = strlen(text);
	json_t *o = NULL, *payload = NULL;
	char *summary = NULL;
	int bad = 0;

	if (n > DRB_NOTIFY_PD_SUMMARY_MAX) {
		/* PagerDuty refuses a longer summary: cut it, keep the whole text in the
		 * details, where the incident page shows it. */
		size_t k = utf8_cut(text, n, DRB_NOTIFY_PD_SUMMARY_MAX - 3);

		summary = malloc(k + 4);
		if (!summary)
			goto out;
		memcpy(summary, text, k);
		memcpy(summary + k, "...", 4);
	}
	payload = json_pack("{s:s, s:s, s:s, s:s}", "summary", summary ? summary : text, "severity",
			    sev, "source", source, "component", "drbook");
	if (payload && summary)
		bad |= json_object_set_new(payload, "custom_details",
					   json_pack("{s:s}", "text", text));
	o = json_pack("{s:s, s:s}", "routing_key", routing_key, "event_action", "trigger");
	if (!o || !payload || bad)
		goto out;
	if (dedup_key)
		bad |= json_object_set_new(o, "dedup_key", json_string(dedup_key));
	bad |= json_object_set(o, "payload", payload);
out:
	if (bad || !payload) {
		json_decref(o);
		o = NULL;
	}
	json_decref(payload);
	free(summary);
	return o;
}

void drb_notifyi_sns_subject(int severity, int drill, char *out, size_t n)
{
	static const char *const upper[] = {"INFO", "WARNING", "ERROR", "CRITICAL"};

	snprintf(
	    out, n, "%sdrbook %s", drill ? "[DRILL] " : "",
	    upper[severity >= 0 && severity <= NOTIFY_SEV_CRITICAL ? severity : NOTIFY_SEV_INFO]);
}

/* Replaces the n bytes at every occurrence of needle with "***" (n >= 3, so s never grows). */
static void scrub_n(char *s, const char *needle, size_t n)
{
	char *p;

	if (n < 3 || !s)
		return;
	while ((p = strstr(s, needle)) != NULL) {
		/* strstr needs needle NUL-terminated at n: callers pass a copy */
		memcpy(p, "***", 3);
		memmove(p + 3, p + n, strlen(p + n) + 1);
	}
}

void drb_notifyi_scrub(char *s, const char *secret)
{
	if (secret && strlen(secret) >= 4)
		scrub_n(s, secret, strlen(secret));
}

void drb_notifyi_scrub_url(char *s, const char *url)
{
	const char *scheme_end, *path;
	char seg[2048];

	if (!s || !url)
		return;
	drb_notifyi_scrub(s, url);
	scheme_end = strstr(url, "://");
	path = scheme_end ? strpbrk(scheme_end + 3, "/?#") : NULL;
	if (!path)
		return;
	drb_notifyi_scrub(s, path);
	/* An answer may quote one part of the path (Slack's token, Discord's id and token),
	 * or write the slashes as "\/": each long segment goes on its own. */
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/?&=#");

		if (len >= 16 && len < sizeof(seg)) {
			memcpy(seg, p, len);
			seg[len] = '\0';
			scrub_n(s, seg, len);
		}
		p += len;
		if (*p)
			p++;
	}
}
