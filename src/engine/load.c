/* Loading a runbook as every command must: the YAML and its checks, with the action names
 * and `with:` arguments checked against the registry and against the custom actions its Lua
 * modules define. run, plan, validate, gameday, readiness, resume and replay all load here,
 * so a runbook that validates is the runbook that runs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/engine.h>
#include <drbook/lua.h>

/* The action_mode callback for the loader: registry, then Lua custom actions. */
static int action_mode(void *ud, const char *name)
{
	int m = drb_engine_action_mode(NULL, name);

	if (m < 0 && ud)
		m = drb_lua_custom_mode(ud, name);
	return m;
}

/* The action_schema callback: registry, then Lua custom actions' declarations. */
static const drb_action_schema *action_schema(void *ud, const char *name)
{
	const drb_action_schema *s = drb_engine_action_schema(NULL, name);

	if (!s && ud)
		s = drb_lua_custom_schema(ud, name);
	return s;
}

/* The runbook size cap: DRBOOK_RUNBOOK_MAX_BYTES when set (in bytes, 1 to 4 GiB), else the
 * loader's default of 1 MiB. Returns 0, or DRB_EINVAL with the reason in d. */
static int runbook_cap(size_t *cap, drb_diags *d)
{
	const char *v = getenv("DRBOOK_RUNBOOK_MAX_BYTES");
	char *end = NULL;
	unsigned long long n;

	*cap = 0;
	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n == 0 || v[0] == '-' || n > (1ULL << 32)) {
		drb_diags_add(
		    d, (drb_pos){0, 0},
		    "DRBOOK_RUNBOOK_MAX_BYTES: '%.40s' is not a number of bytes from 1 to "
		    "4294967296",
		    v);
		return DRB_EINVAL;
	}
	*cap = (size_t)n;
	return 0;
}

int drb_engine_load(const char *path, const char *lua_dir, drb_runbook **out, drb_diags *d)
{
	drb_runbook *probe = NULL;
	drb_lua *L = NULL;
	drb_load_opts lo = {action_mode, NULL, action_schema, 0};
	drb_load_opts bare = {NULL, NULL, NULL, 0};
	drb_diags mods;
	drb_err err = {0};
	int rc;

	*out = NULL;
	if (runbook_cap(&lo.max_bytes, d))
		return DRB_EINVAL;
	bare.max_bytes = lo.max_bytes;
	drb_diags_init(&mods, path);
	/* the common case, one pass: a valid runbook without lua: modules (parsing and checking
	 * a large runbook twice doubled the time validate, plan and run spend loading it) */
	if (drb_runbook_load(out, path, &lo, &mods) == 0 && !(*out)->n_lua_modules && !mods.n) {
		drb_diags_free(&mods);
		return 0;
	}
	drb_runbook_free(*out);
	*out = NULL;
	drb_diags_free(&mods);
	drb_diags_init(&mods, path);
	/* modules may define actions: look at the module list first, without action checks */
	if (drb_runbook_load(&probe, path, &bare, &mods) == 0 && probe->n_lua_modules) {
		drb_lua_opts o = {.lib_dir = lua_dir ? lua_dir : DRB_LUA_DIR,
				  .runbook_dir = probe->dir};

		if (drb_lua_new(&L, &o, &err) == 0) {
			for (size_t i = 0; i < probe->n_lua_modules; i++)
				if (drb_lua_require(L, probe->lua_modules[i], &err)) {
					drb_pos p = {0, 0};

					drb_diags_add(d, p, "lua module '%s': %s",
						      probe->lua_modules[i], err.msg);
				}
		}
		lo.ud = L;
	}
	drb_runbook_free(probe);
	/* the real pass, with action names checked; module problems are already in d */
	rc = drb_runbook_load(out, path, &lo, d);
	if (rc || d->n) {
		drb_runbook_free(*out);
		*out = NULL;
		rc = DRB_EINVAL;
	}
	drb_lua_free(L);
	drb_diags_free(&mods);
	return rc;
}
