/* Shared libraries that only some actions use (libpq, ldns, libxml2), opened with dlopen the
 * first time an action needs one instead of being linked: a run that never touches PostgreSQL
 * or DNS does not pay for mapping and relocating them (docs/performance.md, "Start-up").
 * Each provider keeps one small loader: its symbol names, a drb_dynlib and a pthread_once. */
#ifndef DRBOOK_DYNLIB_H
#define DRBOOK_DYNLIB_H

#include <stddef.h>

#include <drbook/error.h>

typedef struct drb_dynlib {
	const char *soname;	  /* exactly the SONAME built against: "libpq.so.5" */
	const char *what;	  /* what it is, for messages: "the PostgreSQL client library" */
	const char *package;	  /* the Debian package that ships it: "libpq5" */
	const char *const *names; /* the n symbols to resolve */
	void **addrs;		  /* n slots the open fills, in the order of names */
	size_t n;
	int failed;    /* set by drb_dynlib_open */
	char why[480]; /* dlerror() of a failed open, or the missing symbol */
} drb_dynlib;

/* Opens lib->soname (RTLD_LAZY | RTLD_LOCAL: bound as a linked library is, and none of its
 * symbols leaks into the process) and resolves every name into addrs. Not thread-safe by
 * itself: call it from the loader's pthread_once routine, once. On failure every slot is
 * NULL, the handle is closed and lib->failed/why say why. The library stays loaded for the
 * life of the process. */
void drb_dynlib_open(drb_dynlib *lib);

/* 0 when the open succeeded; otherwise a DRB_ERR naming the action (or whatever needed the
 * library), the library, the reason and the package to install:
 *   "pg.query: libpq.so.5 (the PostgreSQL client library) cannot be loaded: ...: cannot
 *    open shared object file: ...; install the Debian package libpq5" */
int drb_dynlib_check(const drb_dynlib *lib, const char *action, drb_err *err);

#endif
