/* The engine's built-in actions (docs/runbook-format.md, action catalog): each lives in its
 * own file of this folder and is listed in the registry (registry.c), beside exec and
 * http.request, which are providers (drbook/exec.h, drbook/http.h). */
#ifndef DRB_ENGINE_BUILTINS_H
#define DRB_ENGINE_BUILTINS_H

#include <drbook/action.h>

extern const drb_action drb_action_sleep; /* action_sleep.c */

#endif
