/* dlopen of a library some actions need, at the first action that needs it: one open, every
 * symbol resolved at once, and one message saying what is missing and which package has it.
 * The loaders that use this (src/providers/pg/libpq.c, src/providers/dns/libldns.c,
 * src/providers/aws/libxml.c) hold the symbol lists and the pthread_once. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <drbook/dynlib.h>

void drb_dynlib_open(drb_dynlib *lib)
{
	void *h;
	const char *e;

	lib->failed = 0;
	lib->why[0] = '\0';
	/* RTLD_LAZY, as the library was bound when it was linked: RTLD_NOW would bind every
	 * PLT entry of it and of what it needs (ICU, libstdc++ for libxml2) at once, 2.8 M
	 * instructions more for the first XML answer (docs/performance.md). Every symbol
	 * drbook calls is looked up below, so a library without one still fails here. */
	h = dlopen(lib->soname, RTLD_LAZY | RTLD_LOCAL);
	if (!h) {
		e = dlerror();
		snprintf(lib->why, sizeof(lib->why), "%s", e ? e : "dlopen failed");
		goto fail;
	}
	for (size_t i = 0; i < lib->n; i++) {
		(void)dlerror();
		lib->addrs[i] = dlsym(h, lib->names[i]);
		if (!lib->addrs[i]) {
			e = dlerror();
			snprintf(lib->why, sizeof(lib->why), "%s has no symbol %s%s%s", lib->soname,
				 lib->names[i], e ? ": " : "", e ? e : "");
			dlclose(h);
			goto fail;
		}
	}
	return;
fail:
	lib->failed = 1;
	for (size_t i = 0; i < lib->n; i++)
		lib->addrs[i] = NULL;
}

int drb_dynlib_check(const drb_dynlib *lib, const char *action, drb_err *err)
{
	if (!lib->failed)
		return 0;
	/* "ACTION: " first, as context is prefixed everywhere (and Lua names an action once) */
	return drb_err_set(err, DRB_ERR,
			   "%s: %s (%s) cannot be loaded: %s; install the Debian package %s",
			   action && *action ? action : "this action", lib->soname, lib->what,
			   lib->why, lib->package);
}
