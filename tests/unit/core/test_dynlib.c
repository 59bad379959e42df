/* Tests for src/core/dynlib.c: a library opened at first use, every symbol resolved at once,
 * and the message when it cannot be (what needed it, the library, the package). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/dynlib.h>

/* A library that is there: every slot gets its symbol, and the check passes. */
static void test_open_ok(void **state)
{
	static const char *const names[] = {"strlen", "memchr"};
	void *addrs[2] = {NULL, NULL};
	drb_dynlib lib = {.soname = "libc.so.6",
			  .what = "the C library",
			  .package = "libc6",
			  .names = names,
			  .addrs = addrs,
			  .n = 2};
	drb_err err = {0};
	size_t (*len)(const char *);

	drb_dynlib_open(&lib);
	assert_int_equal(lib.failed, 0);
	assert_non_null(addrs[0]);
	assert_non_null(addrs[1]);
	*(void **)(&len) = addrs[0];
	assert_int_equal(len("drbook"), 6);
	assert_int_equal(drb_dynlib_check(&lib, "pg.query", &err), 0);
	assert_int_equal(err.code, 0);
}

/* A library that is not installed: the error names the action, the SONAME, what it is and
 * the Debian package to install; no slot is left half set. */
static void test_missing_library(void **state)
{
	static const char *const names[] = {"PQexec"};
	void *addrs[1] = {(void *)names};
	drb_dynlib lib = {.soname = "libdrb-not-installed.so.9",
			  .what = "the PostgreSQL client library",
			  .package = "libpq5",
			  .names = names,
			  .addrs = addrs,
			  .n = 1};
	drb_err err = {0};

	drb_dynlib_open(&lib);
	assert_int_equal(lib.failed, 1);
	assert_null(addrs[0]);
	assert_int_equal(drb_dynlib_check(&lib, "pg.query", &err), DRB_ERR);
	assert_int_equal(err.code, DRB_ERR);
	assert_non_null(strstr(err.msg, "pg.query: libdrb-not-installed.so.9 (the PostgreSQL "
					"client library) cannot be loaded: "));
	assert_non_null(strstr(err.msg, "cannot open shared object file"));
	assert_non_null(strstr(err.msg, "; install the Debian package libpq5"));
}

/* A library of the wrong version (a symbol missing): refused as a whole, the symbol named. */
static void test_missing_symbol(void **state)
{
	static const char *const names[] = {"strlen", "drb_no_such_function"};
	void *addrs[2] = {NULL, NULL};
	drb_dynlib lib = {.soname = "libc.so.6",
			  .what = "the C library",
			  .package = "libc6",
			  .names = names,
			  .addrs = addrs,
			  .n = 2};
	drb_err err = {0};

	drb_dynlib_open(&lib);
	assert_int_equal(lib.failed, 1);
	assert_null(addrs[0]);
	assert_null(addrs[1]);
	assert_int_equal(drb_dynlib_check(&lib, "dns.resolve", &err), DRB_ERR);
	assert_non_null(strstr(err.msg, "dns.resolve: libc.so.6 (the C library) cannot be"));
	assert_non_null(strstr(err.msg, "libc.so.6 has no symbol drb_no_such_function"));
	assert_non_null(strstr(err.msg, "install the Debian package libc6"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_ok),
	    cmocka_unit_test(test_missing_library),
	    cmocka_unit_test(test_missing_symbol),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
