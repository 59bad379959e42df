/* Tests for src/providers/pg/libpq.c: libpq is not in the process until the first load, the
 * first load from many threads at once opens it once, and the table it gives works. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "providers/pg/pg_int.h"

#define N_THREADS 8

typedef struct loader {
	const drb_pq_api *api;
	int rc;
	drb_err err;
} loader;

static pthread_barrier_t start;

static void *load(void *arg)
{
	loader *l = arg;

	pthread_barrier_wait(&start);
	l->rc = drb_pgi_libpq(&l->api, "pg.query", &l->err);
	return NULL;
}

/* Not linked: absent before the first pg action, there after it; N threads racing to be
 * first all get the same table, and its functions are libpq's. */
static void test_first_use(void **state)
{
	pthread_t t[N_THREADS];
	loader l[N_THREADS];
	PQconninfoOption *opts;
	char *perr = NULL;
	const char *host = NULL;

	assert_null(dlopen(DRB_LIBPQ_SONAME, RTLD_NOW | RTLD_NOLOAD));
	memset(l, 0, sizeof(l));
	assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load, &l[i]), 0);
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < N_THREADS; i++) {
		assert_int_equal(l[i].rc, 0);
		assert_ptr_equal(l[i].api, l[0].api);
	}
	assert_non_null(dlopen(DRB_LIBPQ_SONAME, RTLD_NOW | RTLD_NOLOAD));

	opts = l[0].api->PQconninfoParse("host=db.example port=5433", &perr);
	assert_non_null(opts);
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "host"))
			host = o->val;
	assert_string_equal(host, "db.example");
	l[0].api->PQconninfoFree(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
