/* Values between PostgreSQL and JSON for the PostgreSQL provider: result values typed by
 * column OID, query parameters as text, SQLSTATEs as drb codes, and pg.validate's comparison
 * of what a check returned with what it expected. Pure functions: no connection needed. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <drbook/util.h>

#include "pg_int.h"

/* Type OIDs from pg_type.dat: stable across PostgreSQL versions. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_NUMERIC = 1700,
	OID_JSONB = 3802
};

static json_t *as_integer(const char *text, int *ok)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	*ok = *text && end && !*end && errno == 0;
	return *ok ? json_integer(v) : NULL;
}

static json_t *as_real(const char *text, int *ok)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(text, &end);
	*ok = *text && end && !*end && isfinite(v) && errno != ERANGE;
	return *ok ? json_real(v) : NULL;
}

/* numeric: whole numbers within 64 bits stay exact integers; up to 15 significant digits a
 * double holds the decimal exactly enough to print it back; beyond that a string keeps it. */
static json_t *numeric_value(const char *text, int *ok)
{
	const char *p = text, *dot, *end;
	int digits = 0, lead = 1;
	json_t *v;

	if (!strchr(text, '.')) {
		v = as_integer(text, ok);
		if (*ok)
			return v;
	}
	if (*p == '-' || *p == '+')
		p++;
	dot = strchr(p, '.');
	end = p + strlen(p);
	/* leading zeros and the fraction's trailing zeros are not significant */
	if (dot)
		while (end > dot + 1 && end[-1] == '0')
			end--;
	for (const char *q = p; q < end; q++) {
		if (q == dot)
			continue;
		if (!isdigit((unsigned char)*q)) {
			*ok = 0; /* NaN, Infinity: kept as text */
			return NULL;
		}
		if (lead && *q == '0')
			continue;
		lead = 0;
		digits++;
	}
	if (digits > 15) {
		*ok = 0;
		return NULL;
	}
	return as_real(text, ok);
}

/* "2026-11-25 16:39:06.123456+00" (DateStyle ISO) -> "2026-11-25T16:39:06.123Z". */
static json_t *timestamp_value(const char *text, int with_zone, int *ok)
{
	char buf[64], out[32];
	size_t n = strlen(text), i;
	int64_t ms;

	*ok = 0;
	if (n < 19 || n + 6 >= sizeof(buf) || text[10] != ' ')
		return NULL; /* infinity, BC dates, years past 9999 */
	memcpy(buf, text, n + 1);
	buf[10] = 'T';
	if (with_zone) {
		/* the offset is +hh, +hh:mm or +hh:mm:ss; RFC 3339 wants +hh:mm */
		for (i = 19; buf[i] && buf[i] != '+' && buf[i] != '-'; i++)
			;
		if (!buf[i])
			return NULL;
		if (strlen(buf + i) == 3) {
			memcpy(buf + i + 3, ":00", 4);
		} else if (strlen(buf + i) == 9) {
			if (strcmp(buf + i + 6, ":00"))
				return NULL; /* seconds in an offset: only before 1900, not ours */
			buf[i + 6] = 0;
		}
	} else {
		memcpy(buf + n, "Z", 2);
	}
	if (drb_rfc3339_parse(buf, &ms))
		return NULL;
	drb_rfc3339_ms(ms, out);
	*ok = 1;
	return json_string(out);
}

json_t *drb_pg_value(unsigned int type_oid, const char *text, size_t len)
{
	json_t *v = NULL;
	int ok = 0;

	if (!text)
		return json_null();
	switch (type_oid) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		v = as_integer(text, &ok);
		break;
	case OID_FLOAT4:
	case OID_FLOAT8:
		v = as_real(text, &ok);
		break;
	case OID_NUMERIC:
		v = numeric_value(text, &ok);
		break;
	case OID_BOOL:
		if (!strcmp(text, "t") || !strcmp(text, "f")) {
			v = json_boolean(text[0] == 't');
			ok = 1;
		}
		break;
	case OID_JSON:
	case OID_JSONB: {
		json_error_t je;

		v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
		ok = v != NULL;
		break;
	}
	case OID_TIMESTAMPTZ:
		v = timestamp_value(text, 1, &ok);
		break;
	case OID_TIMESTAMP:
		v = timestamp_value(text, 0, &ok);
		break;
	default:
		break;
	}
	if (ok)
		return v;
	json_decref(v);
	return json_stringn_nocheck(text, len);
}

int drb_pg_code_of_sqlstate(const char *s)
{
	if (!s || strlen(s) != 5)
		return DRB_ERR;
	if (!strncmp(s, "08", 2) || !strcmp(s, "40001") || !strcmp(s, "40P01") ||
	    !strncmp(s, "53", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02") ||
	    !strcmp(s, "57P03") || !strcmp(s, "55P03"))
		return DRB_ETRANSIENT;
	if (!strcmp(s, "57014"))
		return DRB_ETIMEOUT;
	if (!strncmp(s, "28", 2) || !strcmp(s, "42501") || !strcmp(s, "25006"))
		return DRB_EDENIED;
	if (!strcmp(s, "3D000"))
		return DRB_ENOTFOUND;
	if (!strncmp(s, "42", 2) || !strncmp(s, "22", 2))
		return DRB_EINVAL;
	return DRB_ERR;
}

char *drb_pgi_param_text(const json_t *v, int *oom)
{
	char buf[64], *s = NULL;

	*oom = 0;
	switch (json_typeof(v)) {
	case JSON_NULL:
		return NULL;
	case JSON_STRING:
		s = strdup(json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = strdup(buf);
		break;
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		s = strdup(buf);
		break;
	case JSON_TRUE:
		s = strdup("true");
		break;
	case JSON_FALSE:
		s = strdup("false");
		break;
	default:
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		break;
	}
	if (!s)
		*oom = 1;
	return s;
}

/* ---- pg.validate comparisons ---- */

/* A number from a JSON number or a string holding one in full. */
static int number_of(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 1;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;

		while (isspace((unsigned char)*s))
			s++;
		errno = 0;
		*out = strtod(s, &end);
		return *s && end && !*end && errno != ERANGE && isfinite(*out);
	}
	return 0;
}

static int bool_of_string(const char *s, int *out)
{
	if (!strcasecmp(s, "t") || !strcasecmp(s, "true")) {
		*out = 1;
		return 1;
	}
	if (!strcasecmp(s, "f") || !strcasecmp(s, "false")) {
		*out = 0;
		return 1;
	}
	return 0;
}

static int numbers_equal(const json_t *a, const json_t *b)
{
	/* two integers compare exactly: doubles would merge neighbours beyond 2^53 */
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) == json_integer_value(b);
	return json_number_value(a) == json_number_value(b);
}

int drb_pg_expect_match(const json_t *expect, const json_t *got, drb_err *err)
{
	double g, x;
	int b;

	switch (json_typeof(expect)) {
	case JSON_OBJECT: {
		const json_t *mn = json_object_get(expect, "min"),
			     *mx = json_object_get(expect, "max");
		const char *key;
		const json_t *v;

		json_object_foreach((json_t *)expect, key, v)
		{
			if (strcmp(key, "min") && strcmp(key, "max"))
				return drb_err_set(err, DRB_EINVAL,
						   "expect: unknown key '%s' (use min and max)",
						   key);
			if (!json_is_number(v))
				return drb_err_set(err, DRB_EINVAL, "expect: %s must be a number",
						   key);
		}
		if (!mn && !mx)
			return drb_err_set(err, DRB_EINVAL, "expect: give min, max or both");
		if (mn && mx && json_number_value(mn) > json_number_value(mx))
			return drb_err_set(err, DRB_EINVAL, "expect: min is greater than max");
		if (!number_of(got, &g))
			return 0;
		return (!mn || g >= json_number_value(mn)) && (!mx || g <= json_number_value(mx));
	}
	case JSON_INTEGER:
	case JSON_REAL:
		if (json_is_number(got))
			return numbers_equal(expect, got);
		return json_is_string(got) && number_of(got, &g) && g == json_number_value(expect);
	case JSON_TRUE:
	case JSON_FALSE:
		if (json_is_boolean(got))
			return json_is_true(got) == json_is_true(expect);
		return json_is_string(got) && bool_of_string(json_string_value(got), &b) &&
		       b == json_is_true(expect);
	case JSON_STRING:
		if (json_is_string(got))
			return !strcmp(json_string_value(got), json_string_value(expect));
		if (json_is_number(got))
			return number_of(expect, &x) && x == json_number_value(got);
		if (json_is_boolean(got))
			return bool_of_string(json_string_value(expect), &b) &&
			       b == json_is_true(got);
		return 0;
	case JSON_NULL:
		return json_is_null(got);
	case JSON_ARRAY:
		break;
	}
	return drb_err_set(err, DRB_EINVAL,
			   "expect must be a number, string, boolean, null or {min=, max=}");
}
