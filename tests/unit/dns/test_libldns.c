/* Tests for src/providers/dns/libldns.c: ldns is not in the process until the first load,
 * the first load from many threads at once opens it once, and the table it gives works. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "providers/dns/dns_int.h"

#define N_THREADS 8

typedef struct loader {
	const drb_ldns_api *api;
	int rc;
	drb_err err;
} loader;

static pthread_barrier_t start;

static void *load(void *arg)
{
	loader *l = arg;

	pthread_barrier_wait(&start);
	l->rc = drb_dnsi_ldns(&l->api, "dns.resolve", &l->err);
	return NULL;
}

/* Not linked: absent before the first dns.resolve, there after it; N threads racing to be
 * first all get the same table, and its functions are libpq's. */
static void test_first_use(void **state)
{
	pthread_t t[N_THREADS];
	loader l[N_THREADS];
	ldns_rdf *name;
	ldns_lookup_table *rc;
	char *text;

	assert_null(dlopen(DRB_LIBLDNS_SONAME, RTLD_NOW | RTLD_NOLOAD));
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
	assert_non_null(dlopen(DRB_LIBLDNS_SONAME, RTLD_NOW | RTLD_NOLOAD));

	/* the table is ldns's: a name parsed and printed back, the rcode table readable */
	name = l[0].api->ldns_dname_new_frm_str("www.example.test");
	assert_non_null(name);
	text = l[0].api->ldns_rdf2str(name);
	assert_string_equal(text, "www.example.test.");
	free(text);
	l[0].api->ldns_rdf_deep_free(name);
	rc = l[0].api->ldns_lookup_by_id(l[0].api->ldns_rcodes, 3);
	assert_non_null(rc);
	assert_string_equal(rc->name, "NXDOMAIN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
