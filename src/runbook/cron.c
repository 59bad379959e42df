/* Cron expressions for game-day schedules: five fields "MIN HOUR DOM MON DOW" read as Vixie
 * cron reads them (lists, ranges, steps, JAN-DEC and SUN-SAT names, 7 = Sunday, and the rule
 * that a day matches DOM or DOW when both are restricted), always in UTC. Calendar arithmetic
 * is done here on day numbers, so nothing depends on the process's time zone. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <drbook/runbook.h>

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
					  "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

typedef struct field_spec {
	const char *what;
	int low, high;
	const char *const *names; /* names[i] is low + i */
} field_spec;

static const field_spec fields[5] = {
    {"minute", 0, 59, NULL},	      {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},    {"month", 1, 12, month_names},
    {"day of week", 0, 7, dow_names},
};

typedef struct cursor {
	const char *s, *p; /* whole expression, current place */
	size_t *err_off;
	char *msg;
	size_t n;
} cursor;

static int fail(cursor *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(cursor *c, const char *at, const char *fmt, ...)
{
	va_list ap;

	*c->err_off = (size_t)(at - c->s);
	va_start(ap, fmt);
	vsnprintf(c->msg, c->n, fmt, ap);
	va_end(ap);
	return DRB_EINVAL;
}

/* A number or (where the field has them) a three-letter name. */
static int number(cursor *c, const field_spec *f, int *out)
{
	const char *at = c->p;

	if (isdigit((unsigned char)*c->p)) {
		long v = 0;

		while (isdigit((unsigned char)*c->p)) {
			v = v * 10 + (*c->p++ - '0');
			if (v > 1000)
				break;
		}
		if (v < f->low || v > f->high)
			return fail(c, at, "%s value %ld is out of range %d-%d", f->what, v, f->low,
				    f->high);
		*out = (int)v;
		return 0;
	}
	if (f->names && isalpha((unsigned char)*c->p)) {
		size_t len = 0;

		while (isalpha((unsigned char)c->p[len]))
			len++;
		for (int i = 0; len == 3 && f->names[i]; i++)
			if (!strncasecmp(c->p, f->names[i], 3)) {
				*out = f->low + i;
				c->p += 3;
				return 0;
			}
		return fail(c, at, "unknown %s name (%s)", f->what,
			    f->names == month_names ? "JAN-DEC" : "SUN-SAT");
	}
	return fail(c, at, "expected a %s %s", f->what, f->names ? "number or name" : "number");
}

/* One field: a comma-separated list of *, N, N-M, each of * and N-M with an optional /STEP.
 * Sets the bits of out and whether the field starts with '*' (Vixie's DOM_STAR/DOW_STAR). */
static int field(cursor *c, const field_spec *f, uint64_t *out, int *star)
{
	*out = 0;
	*star = *c->p == '*';
	for (;;) {
		const char *item = c->p;
		int lo, hi, step = 1, ranged = 0, rc;

		if (*c->p == '*') {
			lo = f->low;
			hi = f->high == 7 ? 6 : f->high; /* '*' in DOW: Sunday once */
			c->p++;
			ranged = 1;
		} else {
			if ((rc = number(c, f, &lo)))
				return rc;
			hi = lo;
			if (*c->p == '-') {
				c->p++;
				if ((rc = number(c, f, &hi)))
					return rc;
				if (hi < lo)
					return fail(c, item,
						    "%s range runs backwards (write the low end "
						    "first)",
						    f->what);
				ranged = 1;
			}
		}
		if (*c->p == '/') {
			const char *at = ++c->p;
			long v = 0;

			if (!ranged)
				return fail(c, at - 1,
					    "a %s step needs a range or '*' before it (N-M/S "
					    "or */S)",
					    f->what);
			if (!isdigit((unsigned char)*c->p))
				return fail(c, at, "expected a %s step number", f->what);
			while (isdigit((unsigned char)*c->p) && v <= 1000)
				v = v * 10 + (*c->p++ - '0');
			if (v < 1 || v > f->high - f->low + 1)
				return fail(c, at, "%s step %ld is out of range", f->what, v);
			step = (int)v;
		}
		for (int i = lo; i <= hi; i += step)
			*out |= (uint64_t)1 << i;
		if (*c->p != ',')
			break;
		c->p++;
	}
	if (*c->p && !isspace((unsigned char)*c->p))
		return fail(c, c->p, "unexpected character in the %s field", f->what);
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : d[m - 1];
}

int drb_cron_parse(drb_cron *out, const char *expr, size_t *err_off, char *msg, size_t n)
{
	cursor c = {expr, expr, err_off, msg, n};
	uint64_t bits[5];
	const char *start[5];
	int star[5], rc;

	memset(out, 0, sizeof(*out));
	*err_off = 0;
	for (int i = 0; i < 5; i++) {
		while (isspace((unsigned char)*c.p))
			c.p++;
		if (!*c.p)
			return fail(&c, c.p,
				    "a cron expression has 5 fields (MIN HOUR DOM MON DOW); the "
				    "%s field is missing",
				    fields[i].what);
		start[i] = c.p;
		if ((rc = field(&c, &fields[i], &bits[i], &star[i])))
			return rc;
	}
	while (isspace((unsigned char)*c.p))
		c.p++;
	if (*c.p)
		return fail(&c, c.p,
			    "a cron expression has 5 fields (MIN HOUR DOM MON DOW), UTC; this "
			    "is %s",
			    "a sixth");
	if (bits[4] & (1u << 7))
		bits[4] = (bits[4] | 1u) & 0x7f; /* 7 is Sunday too */
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)bits[4];
	out->dom_star = star[2];
	out->dow_star = star[4];
	/* "0 0 30 2 *" is accepted by cron and never runs: say so instead */
	if (out->dow_star) {
		int any = 0;

		for (int m = 1; m <= 12 && !any; m++)
			for (int d = 1; (out->month >> m & 1) && d <= days_in_month(2000, m); d++)
				if (out->dom >> d & 1)
					any = 1;
		if (!any)
			return fail(&c, start[2],
				    "the %s field never falls in the months given: the "
				    "expression would never run",
				    fields[2].what);
	}
	return 0;
}

/* Days since 1970-01-01 <-> proleptic Gregorian date (Howard Hinnant's algorithms). */
static void civil(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int day_matches(const drb_cron *c, int dom, int dow)
{
	int a = c->dom >> dom & 1, b = c->dow >> dow & 1;

	return c->dom_star || c->dow_star ? a && b : a || b;
}

int drb_cron_next(const drb_cron *c, int64_t after_s, int64_t *out_s)
{
	int64_t t, limit;

	if (after_s < 0)
		after_s = 0;
	t = after_s - after_s % 60 + 60;
	/* the calendar repeats every 400 years: an expression that parsed runs within them (29
	 * February on a Monday can be 40 years away) */
	limit = t + (int64_t)146097 * 86400;
	while (t < limit) {
		int64_t day = t / 86400, sod = t % 86400;
		int y, m, d, h = (int)(sod / 3600), mi = (int)(sod % 3600 / 60);

		civil(day, &y, &m, &d);
		if (!(c->month >> m & 1)) {
			t = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
		} else if (!day_matches(c, d, (int)((day + 4) % 7))) {
			t = (day + 1) * 86400;
		} else if (!(c->hour >> h & 1)) {
			t = day * 86400 + (int64_t)(h + 1) * 3600;
		} else if (!(c->minute >> mi & 1)) {
			t += 60;
		} else {
			*out_s = t;
			return 0;
		}
	}
	return DRB_ENOTFOUND;
}
