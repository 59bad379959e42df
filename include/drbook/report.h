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

/* ---- game-day history (docs/gameday.md "History and trends") ---- */

/* Summaries of the runs whose logs are in dir (*.jsonl; unreadable logs are left out), oldest
 * first: [{log, run, gameday, name, scenario, runbook, mode, drill, started_at, started_ms,
 * ended_at, status, exit_code, error, rto_s, rpo_s, targets:{rto_s, rpo_s}, rto, rpo,
 * outcome}]. rto and rpo are met, missed or unknown: run.end's targets.{rto,rpo} when the log
 * has them, else targets.{rto,rpo}_met, else rto_s/rpo_s against the recorded targets.
 * outcome: succeeded, failed (also a run that succeeded but missed a target), refused,
 * interrupted (no run.end), and steps_ms: {step id: duration_ms} of each step (not a
 * for_each child) that ended ok. A missing folder is no runs. *out is the caller's. */
int drb_report_runs(const char *dir, json_t **out, drb_err *err);

/* The RTO forecast of `drbook plan` from runs (drb_report_runs): the past runs and drills of
 * the runbook called name (plans left out). plan is the engine's plan ([{id, needs}...]),
 * preflight the ids of the preflight checks (or NULL). *out: {runs, history (false: no past
 * run), target_rto_s (when >= 0), and with history: steps: [{id, samples, median_s, p95_s}]
 * in plan order (samples 0 when no run has the step), critical_path (the longest chain of
 * needs by predicted median; a step without history counts 0), preflight_median_s,
 * preflight_p95_s, critical_path_median_s, critical_path_p95_s, rto_median_s and rto_p95_s
 * (preflight + critical path), exceeds and p95_exceeds (against the target)}. Medians are the
 * middle value, p95 the nearest-rank 95th percentile. *out is the caller's. */
int drb_report_forecast(const json_t *runs, const char *name, const json_t *plan,
			const json_t *preflight, double target_rto_s, json_t **out, drb_err *err);

/* A drill of the schedule, for drb_report_history: its targets from its runbook (-1 when
 * unknown) judge the logs that recorded none. Strings are borrowed. */
typedef struct drb_history_drill {
	const char *name;
	const char *runbook;
	double target_rto_s, target_rpo_s;
} drb_history_drill;

/* The history of the given drills from runs (drb_report_runs): {drills:[{name, runbook,
 * runs:[...], counts:{drills, succeeded, failed, refused, interrupted}}], scenarios:
 * [{scenario, trend: improving|worsening|steady|unknown, window, rto_slope_s, rto_mean_s,
 * target_rto_s, runs}]}. The trend is the least-squares slope of the last 5 measured RTOs of
 * the scenario (per drill); under 5% of their mean either way is steady, fewer than two
 * unknown. *out is the caller's. */
int drb_report_history(const json_t *runs, const drb_history_drill *drills, size_t n_drills,
		       json_t **out, drb_err *err);

/* Writes the history as text (DRB_REPORT_MD), JSON, or HTML with an inline SVG chart of each
 * scenario's RTOs, target and trend. */
int drb_report_history_write(const json_t *history, drb_report_format fmt, FILE *f, drb_err *err);

#endif
