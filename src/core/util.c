/* Shared helpers: bounded buffers, durations, clocks, RFC 3339 times, hashing, file reading.
 * Everything here is small, thread-safe and free of drbook policy. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <drbook/util.h>

void drb_buf_init(drb_buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

int drb_buf_append(drb_buf *b, const void *data, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return DRB_ELIMIT;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return DRB_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int drb_buf_puts(drb_buf *b, const char *s)
{
	return drb_buf_append(b, s, strlen(s));
}

int drb_buf_printf(drb_buf *b, const char *fmt, ...)
{
	char small[512], *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return DRB_EINVAL;
	if ((size_t)n < sizeof(small))
		return drb_buf_append(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return DRB_ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = drb_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

char *drb_buf_steal(drb_buf *b)
{
	char *p = b->p;

	if (!p)
		p = calloc(1, 1);
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void drb_buf_free(drb_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int drb_duration_parse(const char *s, double *out_seconds)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
	    {"ms", 0.001},
	    {"h", 3600},
	    {"m", 60},
	    {"s", 1},
	};
	double total = 0;
	int seen[4] = {0};
	int last = -1;

	if (!s || !*s)
		return DRB_EINVAL;
	while (*s) {
		double v = 0;
		int digits = 0, u;

		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s - '0');
			if (v > 1e9)
				return DRB_EINVAL;
			s++;
			digits++;
		}
		if (*s == '.') {
			double f = 0.1;

			s++;
			while (isdigit((unsigned char)*s)) {
				v += (*s - '0') * f;
				f /= 10;
				s++;
				digits++;
			}
		}
		if (!digits)
			return DRB_EINVAL;
		for (u = 0; u < 4; u++)
			if (!strncmp(s, units[u].unit, strlen(units[u].unit)))
				break;
		if (u == 4)
			return DRB_EINVAL;
		/* units must come largest first, each at most once: 1h30m, not 30m1h */
		if (seen[u])
			return DRB_EINVAL;
		{
			static const int rank[4] = {3, 0, 1, 2}; /* ms, h, m, s */
			if (last >= 0 && rank[u] <= rank[last])
				return DRB_EINVAL;
		}
		seen[u] = 1;
		last = u;
		total += v * units[u].mult;
		s += strlen(units[u].unit);
	}
	*out_seconds = total;
	return 0;
}

void drb_duration_format(double seconds, char *out, size_t n)
{
	long long ms = llround(seconds * 1000.0), h, m, sec;
	int off = 0;

	if (ms < 0)
		ms = 0;
	if (ms == 0) {
		snprintf(out, n, "0s");
		return;
	}
	if (ms < 1000) {
		snprintf(out, n, "%lldms", ms);
		return;
	}
	h = ms / 3600000;
	m = (ms / 60000) % 60;
	sec = (ms / 1000) % 60;
	ms %= 1000;
	out[0] = '\0';
	if (h)
		off += snprintf(out + off, n - (size_t)off, "%lldh", h);
	if (m && (size_t)off < n)
		off += snprintf(out + off, n - (size_t)off, "%lldm", m);
	if ((sec || ms) && (size_t)off < n) {
		if (ms)
			snprintf(out + off, n - (size_t)off, "%lld.%03llds", sec, ms);
		else
			snprintf(out + off, n - (size_t)off, "%llds", sec);
	}
}

double drb_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void drb_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

void drb_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double s)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)s;
	ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

int64_t drb_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void drb_sleep_s(double s)
{
	struct timespec ts, rem;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

const char *drb_operator(char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	const char *u = getenv("SUDO_USER");

	if (u && *u)
		return u;
	if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res) {
		snprintf(buf, n, "%s", res->pw_name);
		return buf;
	}
	return "unknown";
}

int drb_sleep_until(double end, double deadline, const volatile int *cancel)
{
	for (;;) {
		double now = drb_mono_now(), until = end;

		if (cancel && *cancel)
			return DRB_EINTERRUPTED;
		if (deadline > 0 && deadline < end) {
			if (now >= deadline)
				return DRB_ETIMEOUT;
			until = deadline;
		}
		if (now >= end)
			return 0;
		drb_sleep_s(until - now < 0.1 ? until - now : 0.1);
	}
}

/* ---- randomness and backoff ----------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

double drb_random_unit(void)
{
	uint64_t seed = 0;
	ssize_t got = getrandom(&seed, sizeof(seed), GRND_NONBLOCK);

	if (got != (ssize_t)sizeof(seed)) {
		/* Without kernel entropy the jitter still only needs to differ between callers:
		 * mix the clock, the thread and a stack address. */
		uintptr_t here = (uintptr_t)&seed;

		seed = (uint64_t)(drb_mono_now() * 1e9) ^ (uint64_t)pthread_self() ^ (uint64_t)here;
	}
	return (double)(splitmix64(seed) >> 11) / 9007199254740992.0; /* 2^53 */
}

double drb_backoff_delay(double base, double cap, int attempt, double unit_random)
{
	double ceiling;

	if (!(base > 0) || !(cap > 0))
		return 0;
	if (!(unit_random > 0))
		unit_random = 0; /* also NaN */
	if (unit_random > 1)
		unit_random = 1;
	if (attempt < 0)
		attempt = 0;
	if (attempt > 1000)
		attempt = 1000; /* ldexp stays finite up to 2^1023 */
	ceiling = ldexp(base, attempt);
	if (!(ceiling < cap))
		ceiling = cap;
	return unit_random * ceiling;
}

/* Writes v as exactly w decimal digits (0 <= v < 10^w) and returns the end. */
static char *put_digits(char *p, int v, int w)
{
	for (int i = w - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + w;
}

void drb_rfc3339_ms(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char *p = out;

	gmtime_r(&t, &tm);
	if (ms < 0 || tm.tm_year + 1900 > 9999) {
		snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(ms % 1000));
		return;
	}
	/* every audit record takes one: the same text as the snprintf above, without it */
	p = put_digits(p, tm.tm_year + 1900, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, (int)(ms % 1000), 3);
	*p++ = 'Z';
	*p = '\0';
}

void drb_rfc3339_s(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm) */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static int digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*s)[i]))
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

int drb_rfc3339_parse(const char *s, int64_t *out_ms)
{
	int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (!s || digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
	    digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
		return DRB_EINVAL;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
	    digits(&s, 2, &sec))
		return DRB_EINVAL;
	if (*s == '.') {
		int n = 0;

		s++;
		while (isdigit((unsigned char)*s)) {
			if (n < 3)
				ms = ms * 10 + (*s - '0');
			n++;
			s++;
		}
		if (!n)
			return DRB_EINVAL;
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om))
			return DRB_EINVAL;
	} else {
		return DRB_EINVAL;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 60 || oh > 23 || om > 59)
		return DRB_EINVAL;
	*out_ms =
	    ((((int64_t)days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60 +
	     sec) *
		1000 +
	    ms - (int64_t)sign * ((int64_t)oh * 3600 + om * 60) * 1000;
	return 0;
}

void drb_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* OpenSSL 3's SHA256() fetches the algorithm from the provider on every call, about four
 * times the work of hashing an audit record (bench/run, docs/performance.md): fetch it once.
 * The EVP_MD is read-only after the fetch and shared by every thread; it lives until exit. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void drb_sha256(const void *data, size_t n, unsigned char out[32])
{
	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256_md || !EVP_Digest(data, n, out, NULL, sha256_md, NULL))
		SHA256(data, n, out); /* no provider to fetch from: the one-shot way */
}

void drb_sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[32];

	drb_sha256(data, n, md);
	drb_hex(md, 32, out);
}

void drb_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
		     unsigned char out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)klen, data, n, out, &len);
}

int drb_file_read(const char *path, size_t max, char **out, size_t *out_len, drb_err *err)
{
	struct stat st;
	drb_buf b;
	char chunk[65536];
	int fd = -1, rc = 0;

	*out = NULL;
	drb_buf_init(&b, max);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = drb_err_set(err, errno == ENOENT ? DRB_ENOTFOUND : DRB_EIO, "%s: %s", path,
				 strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = drb_err_set(err, DRB_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		rc = drb_buf_append(&b, chunk, (size_t)n);
		if (rc == DRB_ELIMIT) {
			rc = drb_err_set(err, DRB_ELIMIT, "%s: file larger than %zu bytes", path,
					 max);
			goto out;
		}
		if (rc) {
			rc = drb_err_set(err, DRB_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	if (out_len)
		*out_len = b.len;
	*out = drb_buf_steal(&b);
	if (!*out)
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	if (fd >= 0)
		close(fd);
	drb_buf_free(&b);
	return rc;
}

char *drb_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

int drb_edit_distance(const char *a, const char *b, int cap)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64], best;

	if (lb >= sizeof(row) / sizeof(row[0]))
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > (size_t)cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];

		row[0] = (int)i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j], v = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			diag = up;
			row[j] = v;
			if (v < best)
				best = v;
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb] > cap ? cap + 1 : row[lb];
}
