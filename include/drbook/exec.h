/* The exec provider (docs/runbook-format.md, action catalog): runs a program under a guardian
 * process that kills its process group when drbook dies, so no child outlives the run. */
#ifndef DRBOOK_EXEC_H
#define DRBOOK_EXEC_H

#include <stddef.h>

#include <drbook/action.h>

extern const drb_action drb_action_exec;

/* A process's start time in clock ticks since boot (/proc), or -1 when it is gone; and this
 * boot's id (0, or -1). Together they identify a recorded exec child across pid reuse. */
long long drb_exec_start_ticks(int pid);
int drb_exec_boot_id(char *out, size_t n);

#endif
