/* How a run shows itself to people and machines: live lines on a terminal, one plain line
 * per event otherwise, JSON Lines with --json, nothing with --quiet; and the final summary. */
#ifndef DRB_CLI_PROGRESS_H
#define DRB_CLI_PROGRESS_H

#include <stdio.h>

#include <drbook/engine.h>

typedef enum { DRB_OUT_LIVE, DRB_OUT_PLAIN, DRB_OUT_JSON, DRB_OUT_QUIET } drb_out_mode;

typedef struct drb_progress drb_progress;

/* Chooses the mode (json and quiet win; live when stdout is a terminal), fills sink. */
drb_progress *drb_progress_new(int json, int quiet, drb_sink *sink);
/* Prints the end-of-run summary (or a JSON summary line) and frees p. */
void drb_progress_finish(drb_progress *p, const drb_runbook *rb, const drb_run_result *res);
void drb_progress_free(drb_progress *p);

#endif
