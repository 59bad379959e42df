/* libpq, opened on the first PostgreSQL action instead of linked into drbook: a run without
 * pg.* actions (and a replay, which never connects) does not load it. The functions the
 * provider calls are the members of drb_pq_api (pg_int.h), typed from <libpq-fe.h> of the
 * build; DRB_LIBPQ_SONAME is the SONAME of the libpq the build found (CMakeLists.txt). */
#include <pthread.h>
#include <stddef.h>

#include <drbook/dynlib.h>

#include "pg_int.h"

static const char *const names[] = {
#define DRB_PQ_NAME(f) #f,
    DRB_PQ_FUNCS(DRB_PQ_NAME)
#undef DRB_PQ_NAME
};

#define N_FUNCS (sizeof(names) / sizeof(names[0]))

static void *addrs[N_FUNCS];
static drb_pq_api api;
static drb_dynlib lib = {.soname = DRB_LIBPQ_SONAME,
			 .what = "the PostgreSQL client library",
			 .package = "libpq5",
			 .names = names,
			 .addrs = addrs,
			 .n = N_FUNCS};
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_libpq(void)
{
	size_t i = 0;

	drb_dynlib_open(&lib);
	/* POSIX: a function's address from dlsym is used through a pointer of its own type */
	if (lib.failed)
		return;
#define DRB_PQ_SET(f) *(void **)(&api.f) = addrs[i++];
	DRB_PQ_FUNCS(DRB_PQ_SET)
#undef DRB_PQ_SET
}

int drb_pgi_libpq(const drb_pq_api **out, const char *action, drb_err *err)
{
	int rc;

	*out = NULL;
	pthread_once(&once, open_libpq);
	rc = drb_dynlib_check(&lib, action, err);
	if (rc == 0)
		*out = &api;
	return rc;
}
