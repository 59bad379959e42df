/* Tests for src/core/util.c: durations, RFC 3339, buffers with caps, hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <drbook/util.h>

/* Every spelling of the format is accepted and converted to seconds. */
static void test_duration_valid(void **state)
{
	static const struct { const char *s; double v; } ok[] = {
		{"250ms", 0.25}, {"90s", 90}, {"15m", 900}, {"1h", 3600}, {"1h30m", 5400},
		{"2h15m30s", 8130}, {"0s", 0}, {"1m500ms", 60.5}, {"1.5s", 1.5},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		double v = -1;

		assert_int_equal(drb_duration_parse(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
}

/* Malformed durations are refused, not half-parsed. */
static void test_duration_invalid(void **state)
{
	static const char *bad[] = {"", "10", "s", "-5s", "5x", "1m1h", "5s5s", "1 h", "1h ",
				    "99999999999s", "ms", "1.s5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v;

		assert_int_equal(drb_duration_parse(bad[i], &v), DRB_EINVAL);
	}
}

static void test_duration_format(void **state)
{
	char b[32];

	drb_duration_format(5400, b, sizeof(b));
	assert_string_equal(b, "1h30m");
	drb_duration_format(0.25, b, sizeof(b));
	assert_string_equal(b, "250ms");
	drb_duration_format(90, b, sizeof(b));
	assert_string_equal(b, "1m30s");
}

/* Round trip and offsets. */
static void test_rfc3339(void **state)
{
	int64_t ms;
	char b[32];

	assert_int_equal(drb_rfc3339_parse("2026-11-25T16:39:06.123Z", &ms), 0);
	assert_int_equal(ms, 1795624746123LL);
	drb_rfc3339_ms(ms, b);
	assert_string_equal(b, "2026-11-25T16:39:06.123Z");
	assert_int_equal(drb_rfc3339_parse("2026-11-25T17:39:06.123+01:00", &ms), 0);
	assert_int_equal(ms, 1795624746123LL);
	assert_int_equal(drb_rfc3339_parse("1970-01-01T00:00:00Z", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(drb_rfc3339_parse("2026-13-01T00:00:00Z", &ms), DRB_EINVAL);
	assert_int_equal(drb_rfc3339_parse("2026-11-25 16:39", &ms), DRB_EINVAL);
	assert_int_equal(drb_rfc3339_parse("2026-11-25T16:39:06", &ms), DRB_EINVAL);
}

/* A buffer refuses to grow past its maximum and keeps what it had. */
static void test_buf_cap(void **state)
{
	drb_buf b;

	drb_buf_init(&b, 8);
	assert_int_equal(drb_buf_puts(&b, "12345"), 0);
	assert_int_equal(drb_buf_puts(&b, "6789"), DRB_ELIMIT);
	assert_string_equal(b.p, "12345");
	assert_int_equal(drb_buf_printf(&b, "%d", 678), 0);
	assert_string_equal(b.p, "12345678");
	drb_buf_free(&b);
}

static void test_sha256(void **state)
{
	char hex[65];

	drb_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_valid), cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_duration_format), cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_buf_cap), cmocka_unit_test(test_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
