/* Private to the report module: what the run report (report.c), its chart (gantt.c) and the
 * game-day history (history.c) share. Nothing outside src/report includes this. */
#ifndef DRB_REPORT_INT_H
#define DRB_REPORT_INT_H

#include <stdio.h>

#include <jansson.h>

/* Writes s to f escaped for HTML text and attribute values. */
void drb_report_html_escape(FILE *f, const char *s);

/* s when it is a safe word for a class attribute or a table cell ([a-z0-9_-]+: statuses,
 * outcomes), else "other": a tampered log must not write markup into a report. */
const char *drb_report_token(const char *s);

/* The one style sheet of every HTML page drbook writes (no external fonts or files). */
extern const char drb_report_css[];

/* Adds to a report model what its timeline implies: critical_path (ids) and critical_path_s,
 * steps' critical flags, and dns {step, source, last_stale_offset_s, converged_offset_s}
 * when the run resolved names. Drops the steps' call_offsets it used. */
void drb_report_analyze(json_t *m);

/* Writes the model's run as an inline SVG Gantt chart (an <svg id="gantt"> element). */
void drb_report_gantt(FILE *f, const json_t *m);

#endif
