/* The notify provider: the catalog's `notify` action, which sends one message to a
 * Slack-compatible incoming webhook, to PagerDuty Events v2, or to an SNS topic (through the
 * aws.sns.publish action). Secrets (the webhook URL, the routing key) come from the
 * environment or from files at call time and never reach a message or the audit log; see
 * docs/notify.md. */
#ifndef DRBOOK_NOTIFY_H
#define DRBOOK_NOTIFY_H

#include <drbook/action.h>

/* Where the configuration comes from. Each *_ENV name may instead name a file with the
 * suffix _FILE (DRBOOK_SLACK_WEBHOOK_URL_FILE); setting both is refused. */
#define DRB_NOTIFY_SLACK_ENV "DRBOOK_SLACK_WEBHOOK_URL"
#define DRB_NOTIFY_PAGERDUTY_KEY_ENV "DRBOOK_PAGERDUTY_ROUTING_KEY"
#define DRB_NOTIFY_PAGERDUTY_URL_ENV "DRBOOK_PAGERDUTY_URL"
#define DRB_NOTIFY_PAGERDUTY_URL_DEFAULT "https://events.pagerduty.com/v2/enqueue"
#define DRB_NOTIFY_SNS_TOPIC_ENV "DRBOOK_SNS_TOPIC_ARN"

/* Caps. Text over DRB_NOTIFY_MAX_TEXT bytes is refused (DRB_ELIMIT); a PagerDuty summary is
 * cut to DRB_NOTIFY_PD_SUMMARY_MAX bytes (the whole text then travels in custom_details). */
#define DRB_NOTIFY_MAX_TEXT 40000
#define DRB_NOTIFY_PD_SUMMARY_MAX 1024
#define DRB_NOTIFY_MAX_DEDUP_KEY 255

/* The `notify` action (mutating), NULL-terminated, for the engine's registry.
 *
 * Arguments: channel (slack | pagerduty | sns, required), text (required, non-empty),
 * severity (info | warning | error | critical; default info), dedup_key (sent to PagerDuty
 * only), and per-call overrides: webhook_env (slack), routing_key_env (pagerduty),
 * topic_arn, region, connection (sns). An override that does not apply to the channel and
 * any unknown argument are DRB_EINVAL.
 *
 * Result: {delivered: true, channel, status, attempts} plus dedup_key (pagerduty: the
 * answer's, else the one sent) or message_id and topic_arn (sns).
 *
 * Errors (the message starts "notify CHANNEL: "): DRB_EINVAL for bad arguments and missing or
 * malformed configuration (naming the variable, never its value); DRB_EDENIED in a read-only
 * context (preflight, plan) and for an answer 401/403; DRB_ENOTFOUND for 404/410;
 * DRB_EINVAL for 400/413/422; DRB_ETRANSIENT for 429 and 5xx still failing after the HTTP
 * client's retries; DRB_ERR for any other answer; the HTTP client's codes for transport
 * errors. err->cause holds the HTTP status when there was an answer. */
extern const drb_action *const drb_notify_actions[];

#endif
