/* Private to the report module: what the run report (report.c), its chart (gantt.c) and the
 * game-day history (history.c) share. Nothing outside src/report includes this. */
#ifndef DRB_REPORT_INT_H
#define DRB_REPORT_INT_H

#include <stdio.h>

/* Writes s to f escaped for HTML text and attribute values. */
void drb_report_html_escape(FILE *f, const char *s);

/* The one style sheet of every HTML page drbook writes (no external fonts or files). */
extern const char drb_report_css[];

#endif
