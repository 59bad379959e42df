/* Tests for src/providers/aws/libxml.c: libxml2 is not in the process until the first XML
 * answer is parsed, the first parses from many threads at once open it once, and every
 * thread reads its own answer. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "providers/aws/aws_int.h"

#define N_THREADS 8

typedef struct parser {
	int i, rc;
	char got[32];
} parser;

static pthread_barrier_t start;

static void *parse(void *arg)
{
	parser *p = arg;
	char body[128];
	xmlDoc *doc = NULL;
	drb_err err = {0};

	snprintf(body, sizeof(body), "<R xmlns=\"urn:x\"><Id>answer-%d</Id></R>", p->i);
	pthread_barrier_wait(&start);
	p->rc = drb_awsx_parse(body, strlen(body), &doc, &err);
	if (p->rc == 0)
		drb_awsx_text(drb_awsx_root(doc), "Id", p->got, sizeof(p->got));
	drb_awsx_free(doc);
	return NULL;
}

/* Not linked: absent before the first XML answer, there after it; threads racing to parse
 * first each read their own answer. */
static void test_first_answer(void **state)
{
	pthread_t t[N_THREADS];
	parser p[N_THREADS];
	char want[32];

	assert_null(dlopen(DRB_LIBXML2_SONAME, RTLD_NOW | RTLD_NOLOAD));
	memset(p, 0, sizeof(p));
	assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
	for (int i = 0; i < N_THREADS; i++) {
		p[i].i = i;
		assert_int_equal(pthread_create(&t[i], NULL, parse, &p[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < N_THREADS; i++) {
		assert_int_equal(p[i].rc, 0);
		snprintf(want, sizeof(want), "answer-%d", i);
		assert_string_equal(p[i].got, want);
	}
	assert_non_null(dlopen(DRB_LIBXML2_SONAME, RTLD_NOW | RTLD_NOLOAD));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
