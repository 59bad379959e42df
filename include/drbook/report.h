/* Reports: what a run did, read back from its audit log, for the reviewer of an incident or a
 * drill. A timeline of every step (start, end, duration, attempts, calls, errors), approvals,
 * rollbacks, the outcome and RTO/RPO against targets, and the log's integrity verdict. */
#ifndef DRBOOK_REPORT_H
#define DRBOOK_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include <drbook/error.h>

typedef enum drb_report_format {
	DRB_REPORT_MD = 0,
	DRB_REPORT_HTML,
	DRB_REPORT_JSON
} drb_report_format;

/* Builds the report model of the log at path: {run, runbook, mode, drill, operator, host,
 * started_at, ended_at, status, exit_code, error, rto_s, rpo_s, targets, integrity:{ok,
 * kind, line, message}, steps:[{id, action, status, started_at, ended_at, offset_s,
 * duration_ms, attempts, calls, error}], events:[{ts, offset_s, event, step, text}]};
 * offsets are seconds from incident_start when the run had one, else from the first record.
 * key may be NULL. *out is the caller's. A log that cannot be read is an error; a tampered one
 * is reported (integrity.ok false) as far as it can be read. */
int drb_report_build(const char *path, const unsigned char *key, size_t key_len, json_t **out,
		     drb_err *err);

/* The one-line human text of an audit event ("✓ promote 3.2s"), shared by live progress and
 * reports. glyphs: coloured marks for a terminal instead of words. Returns 1 and fills out,
 * or 0 for events not shown to people (calls, step starts on a terminal). */
int drb_report_event_text(const char *event, const char *step, const json_t *data, int glyphs,
			  char *out, size_t n);

/* Writes the model in the given format to f. */
int drb_report_write(const json_t *model, drb_report_format fmt, FILE *f, drb_err *err);

#endif
