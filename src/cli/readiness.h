/* `drbook readiness`: how its model is shown. main.c runs the checks and builds the model;
 * this file writes it for people (text), for tools (JSON) and for Prometheus (the textfile
 * collector of node_exporter). */
#ifndef DRB_CLI_READINESS_H
#define DRB_CLI_READINESS_H

#include <stdio.h>

#include <jansson.h>

#include <drbook/error.h>

/* The model: {checked_at, ready, runbooks: [{runbook (its name), path, ready, status, error,
 * duration_s, audit, checks: [{check, ok, status, critical, error}], last_runs: [{mode (run,
 * drill or shadow), success, status, rto_s, rpo_s, run, ended_at}]}]}. All borrowed. */

/* One block per runbook: READY / NOT READY, each check, the last runs. */
void drb_readiness_text(const json_t *model, FILE *f);

/* Writes the Prometheus text exposition of the model to path atomically: a temporary file in
 * the same folder, fsync'd, renamed over path (mode 0644, for node_exporter), so a scrape
 * never reads half a file. Label values are escaped (\\, \", \n). 0 or DRB_EIO naming the
 * file. */
int drb_readiness_metrics_write(const json_t *model, const char *path, drb_err *err);

#endif
