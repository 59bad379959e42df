/* The engine's built-in actions (docs/runbook-format.md, action catalog): each lives in its
 * own file of this folder and is listed in the registry (registry.c). */
#ifndef DRB_ENGINE_BUILTINS_H
#define DRB_ENGINE_BUILTINS_H

#include <drbook/action.h>

extern const drb_action drb_action_sleep; /* action_sleep.c */
extern const drb_action drb_action_exec;  /* action_exec.c */
extern const drb_action drb_action_http;  /* action_http.c: http.request */

/* A process's start time in clock ticks since boot (/proc), or -1 when it is gone; and this
 * boot's id (0, or -1). Together they identify a recorded exec child across pid reuse. */
long long drb_exec_start_ticks(int pid);
int drb_exec_boot_id(char *out, size_t n);

#endif
