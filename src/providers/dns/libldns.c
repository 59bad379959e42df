/* ldns, opened on the first dns.resolve instead of linked into drbook: a run without DNS
 * actions (and a replay, which asks no server) does not load it. DRB_LIBLDNS_SONAME is the
 * SONAME of the ldns the build found (CMakeLists.txt). */
#include <pthread.h>
#include <stddef.h>

#include <drbook/dynlib.h>

#include "dns_int.h"

static const char *const names[] = {
#define DRB_LDNS_NAME(f) #f,
    DRB_LDNS_FUNCS(DRB_LDNS_NAME) "ldns_rcodes",
#undef DRB_LDNS_NAME
};

#define N_SYMS (sizeof(names) / sizeof(names[0]))

static void *addrs[N_SYMS];
static drb_ldns_api api;
static drb_dynlib lib = {.soname = DRB_LIBLDNS_SONAME,
			 .what = "the ldns DNS library",
			 .package = "libldns3",
			 .names = names,
			 .addrs = addrs,
			 .n = N_SYMS};
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_ldns(void)
{
	size_t i = 0;

	drb_dynlib_open(&lib);
	/* POSIX: a function's address from dlsym is used through a pointer of its own type */
	if (lib.failed)
		return;
#define DRB_LDNS_SET(f) *(void **)(&api.f) = addrs[i++];
	DRB_LDNS_FUNCS(DRB_LDNS_SET)
#undef DRB_LDNS_SET
	api.ldns_rcodes = addrs[i];
}

int drb_dnsi_ldns(const drb_ldns_api **out, const char *action, drb_err *err)
{
	int rc;

	*out = NULL;
	pthread_once(&once, open_ldns);
	rc = drb_dynlib_check(&lib, action, err);
	if (rc == 0)
		*out = &api;
	return rc;
}
