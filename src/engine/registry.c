/* The action registry: every action name a runbook may use, with its read-only/mutating
 * mode. lua and approval are carried out by the engine itself (they need the Lua state and
 * the operator); everything else is a provider function behind drb_action.fn. */
#include <string.h>

#include <drbook/engine.h>

#include "builtins.h"
#include "engine_int.h"

const drb_action drb_action_lua = {.name = "lua", .mode = DRB_ACT_STEP};
const drb_action drb_action_approval = {.name = "approval", .mode = DRB_ACT_MUT};

static const drb_action *const registry[] = {
	&drb_action_lua,  &drb_action_approval, &drb_action_sleep,
	&drb_action_exec, &drb_action_http,
};

const drb_action *drb_engine_action_at(size_t i)
{
	return i < sizeof(registry) / sizeof(registry[0]) ? registry[i] : NULL;
}

const drb_action *drb_engine_action(const char *name)
{
	const drb_action *a;

	for (size_t i = 0; (a = drb_engine_action_at(i)); i++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

int drb_engine_action_mode(void *ud, const char *name)
{
	const drb_action *a = drb_engine_action(name);

	(void)ud;
	return a ? (int)a->mode : -1;
}
