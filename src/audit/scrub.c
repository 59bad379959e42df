/* Redaction of audit record data: a deep copy in which secret-looking values are replaced by
 * "***". Providers redact too; this is the last line of defence before bytes reach the log,
 * so when a rule is unsure it hides more rather than less. The rules are in docs/audit.md. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <drbook/audit.h>
#include <drbook/util.h>

#define MASK "***"

/* Deeper structures are replaced whole: it bounds the recursion, and no record we write nests
 * anywhere near this deep. */
#define SCRUB_MAX_DEPTH 200

/* Words that make a key secret, matched in the key lowercased with '-', '_' and '.' removed
 * (so api_key, Api-Key and APIKEY are one rule). */
static const char *const secret_words[] = {
    "authorization", "password",   "passwd", "secret",	  "token", "credential",
    "apikey",	     "privatekey", "cookie", "signature", NULL,
};

/* Values of these end at ',', '&' and ';' too (they never contain them: signatures, AWS
 * credential scopes, tokens), which keeps the rest of an Authorization header or query string
 * readable. Passwords may contain anything, so theirs end only at whitespace or a quote. */
static const char *const short_value_words[] = {"token", "signature", "credential", NULL};

typedef struct norm_key {
	char small[256];
	char *p; /* small, or malloc'd for long keys */
	size_t len;
} norm_key;

static int norm_init(norm_key *k, const char *s, size_t n)
{
	k->p = n < sizeof(k->small) ? k->small : malloc(n + 1);
	if (!k->p)
		return -1;
	k->len = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '-' || c == '_' || c == '.')
			continue;
		k->p[k->len++] = (char)tolower(c);
	}
	k->p[k->len] = '\0';
	return 0;
}

static void norm_free(norm_key *k)
{
	if (k->p && k->p != k->small)
		free(k->p);
	k->p = NULL;
}

static int ends_with(const norm_key *k, const char *suffix)
{
	size_t n = strlen(suffix);

	return k->len >= n && !memcmp(k->p + k->len - n, suffix, n);
}

static int has_word(const norm_key *k, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (strstr(k->p, words[i]))
			return 1;
	return 0;
}

/* "session" alone is too broad: session_name (STS RoleSessionName), session_timeout or
 * sessions are harmless and useful to a reviewer. Only names that end in session, session_id
 * or session_key hold a session handle (session tokens are caught by "token"). */
static int is_secret_norm(const norm_key *k)
{
	return has_word(k, secret_words) || ends_with(k, "session") || ends_with(k, "sessionid") ||
	       ends_with(k, "sessionkey");
}

/* 1 when a key (or an identifier inside a string) names a secret; a failed allocation counts
 * as secret, so the value is hidden rather than leaked. */
static int name_is_secret(const char *s, size_t n, int *short_value, int *header)
{
	norm_key k;
	int r;

	if (short_value)
		*short_value = 0;
	if (header)
		*header = 0;
	if (norm_init(&k, s, n) < 0)
		return 1;
	r = is_secret_norm(&k);
	if (r && short_value)
		*short_value = has_word(&k, short_value_words);
	if (r && header)
		*header = strstr(k.p, "authorization") || strstr(k.p, "cookie");
	norm_free(&k);
	return r;
}

static int is_ident(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '.';
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int is_quote(unsigned char c)
{
	return c == '"' || c == '\'';
}

/* scheme://user:PASS@host -> scheme://user:***@host. s + i points at "://". The authority is
 * taken up to the first '?', '#', whitespace or quote, and the password up to the LAST '@'
 * before that, so passwords with a raw '@' or '/' are still hidden. Returns the index to go on
 * from, or i when there is nothing to hide (the caller copies normally). */
static size_t scrub_uri(const char *s, size_t n, size_t i, drb_buf *b, int *rc)
{
	size_t start = i + 3, end = start, at = 0, colon = 0;
	int found_at = 0, found_colon = 0;

	while (end < n && s[end] != '?' && s[end] != '#' && s[end] != '<' && s[end] != '>' &&
	       !is_space((unsigned char)s[end]) && !is_quote((unsigned char)s[end]))
		end++;
	for (size_t j = start; j < end; j++)
		if (s[j] == '@') {
			at = j;
			found_at = 1;
		}
	if (!found_at)
		return i;
	for (size_t j = start; j < at; j++)
		if (s[j] == ':') {
			colon = j;
			found_colon = 1;
			break;
		}
	if (!found_colon || colon + 1 == at)
		return i;
	if (*rc == 0)
		*rc = drb_buf_append(b, s + i, colon + 1 - i);
	if (*rc == 0)
		*rc = drb_buf_puts(b, MASK);
	return at;
}

/* Finds the end of a quoted value starting after the opening quote at v (quote q, escaped
 * quote when esc: the \" of JSON text inside a string). Backslashes escape. */
static size_t quoted_end(const char *s, size_t n, size_t v, char q, int esc)
{
	for (size_t j = v; j < n; j++) {
		if (esc) {
			if (s[j] == '\\' && j + 1 < n && s[j + 1] == q)
				return j;
			continue;
		}
		if (s[j] == '\\') {
			j++;
			continue;
		}
		if (s[j] == q)
			return j;
	}
	return n;
}

/* An identifier that names a secret at s[i..j): hides the value that follows it, in the
 * forms NAME=value, NAME: value, "NAME":"value", NAME='value' and <NAME>value</NAME>.
 * Returns the index to go on from, or i when nothing follows that looks like a value. */
static size_t scrub_pair(const char *s, size_t n, size_t i, size_t j, drb_buf *b, int *rc)
{
	int short_value = 0, header = 0;
	size_t k = j, v, e;
	char sep;

	if (!name_is_secret(s + i, j - i, &short_value, &header))
		return i;
	if (i > 0 && s[i - 1] == '<' && j < n && s[j] == '>') {
		for (e = j + 1; e < n && s[e] != '<'; e++)
			;
		if (e == j + 1)
			return i;
		if (*rc == 0)
			*rc = drb_buf_append(b, s + i, j + 1 - i);
		if (*rc == 0)
			*rc = drb_buf_puts(b, MASK);
		return e;
	}
	/* the closing quote of a quoted key: "password": or \"password\": */
	if (k < n && is_quote((unsigned char)s[k]))
		k++;
	else if (k + 1 < n && s[k] == '\\' && is_quote((unsigned char)s[k + 1]))
		k += 2;
	while (k < n && (s[k] == ' ' || s[k] == '\t'))
		k++;
	if (k >= n || (s[k] != '=' && s[k] != ':'))
		return i;
	sep = s[k++];
	if (k < n && (s[k] == '=' || (sep == ':' && s[k] == ':')))
		return i; /* "token == nil" in an expression, "a::b": not an assignment */
	while (k < n && (s[k] == ' ' || s[k] == '\t'))
		k++;
	v = k;
	if (v < n && is_quote((unsigned char)s[v])) {
		e = quoted_end(s, n, v + 1, s[v], 0);
		v++;
	} else if (v + 1 < n && s[v] == '\\' && is_quote((unsigned char)s[v + 1])) {
		e = quoted_end(s, n, v + 2, s[v + 1], 1);
		v += 2;
	} else if (header && sep == ':') {
		/* an HTTP header line: the whole value, whatever scheme it uses */
		for (e = v; e < n && s[e] != '\r' && s[e] != '\n'; e++)
			;
	} else {
		for (e = v; e < n; e++) {
			unsigned char c = (unsigned char)s[e];

			if (is_space(c) || is_quote(c) || c == '<' ||
			    (short_value && (c == ',' || c == '&' || c == ';')))
				break;
		}
	}
	if (e == v)
		return i;
	if (*rc == 0)
		*rc = drb_buf_append(b, s + i, v - i);
	if (*rc == 0)
		*rc = drb_buf_puts(b, MASK);
	return e;
}

/* "Bearer <token>" anywhere: a token pasted into a message or a header list. */
static size_t scrub_bearer(const char *s, size_t n, size_t i, size_t j, drb_buf *b, int *rc)
{
	size_t e;

	if (j - i != 6 || strncasecmp(s + i, "bearer", 6) != 0 || j >= n || s[j] != ' ')
		return i;
	for (e = j + 1; e < n && !is_space((unsigned char)s[e]) && !is_quote((unsigned char)s[e]) &&
			s[e] != ',' && s[e] != '<';
	     e++)
		;
	if (e == j + 1)
		return i;
	if (*rc == 0)
		*rc = drb_buf_append(b, s + i, j + 1 - i);
	if (*rc == 0)
		*rc = drb_buf_puts(b, MASK);
	return e;
}

/* The redacted text of s into b (empty; its cap is set here): 0, DRB_ELIMIT or DRB_ENOMEM. */
static int scrub_text(const char *s, size_t n, drb_buf *b)
{
	size_t i = 0;
	int rc = 0;

	/* each redaction turns at least one byte into three */
	b->len = 0;
	b->max = n * 3 + 16;
	while (i < n && rc == 0) {
		unsigned char c = (unsigned char)s[i];

		if (c == ':' && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') {
			size_t next = scrub_uri(s, n, i, b, &rc);

			if (next != i) {
				i = next;
				continue;
			}
			rc = drb_buf_append(b, s + i, 3);
			i += 3;
			continue;
		}
		if (is_ident(c) && (i == 0 || !is_ident((unsigned char)s[i - 1]))) {
			size_t j = i, next;

			while (j < n && is_ident((unsigned char)s[j]))
				j++;
			next = scrub_pair(s, n, i, j, b, &rc);
			if (next == i)
				next = scrub_bearer(s, n, i, j, b, &rc);
			if (next != i) {
				i = next;
				continue;
			}
			rc = drb_buf_append(b, s + i, j - i);
			i = j;
			continue;
		}
		rc = drb_buf_append(b, s + i, 1);
		i++;
	}
	return rc;
}

/* The scrubbed string: v itself (a new reference) when the rules change nothing in it. */
static json_t *scrub_string(const json_t *v, drb_buf *tmp)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	int rc = scrub_text(s, n, tmp);

	if (rc == DRB_ELIMIT)
		return json_string(MASK); /* cannot happen given the cap; hide rather than fail */
	if (rc)
		return NULL;
	if (tmp->len == n && (n == 0 || memcmp(tmp->p, s, n) == 0))
		return json_incref((json_t *)v);
	return json_stringn(tmp->p, tmp->len);
}

/* Null and booleans say whether a secret was set without revealing it, so they stay. */
static json_t *mask_value(const json_t *v)
{
	if (json_is_null(v) || json_is_boolean(v))
		return json_incref((json_t *)v);
	return json_string(MASK);
}

/* A new object holding v's members before stop (new references), for the first member that
 * changes. The key is cut at a NUL byte, as json_object_set cuts it. */
static json_t *object_prefix(const json_t *v, void *stop)
{
	json_t *out = json_object();

	for (void *it = json_object_iter((json_t *)v); out && it != stop;
	     it = json_object_iter_next((json_t *)v, it))
		if (json_object_set(out, json_object_iter_key(it), json_object_iter_value(it)) < 0) {
			json_decref(out);
			out = NULL;
		}
	return out;
}

/* Copy on write: what the rules leave unchanged is shared with v (a new reference), and only
 * the objects and arrays on the way to a change are new; v itself comes back when nothing
 * changes, which is the common case and costs no allocation. */
static json_t *scrub(const json_t *v, int depth, drb_buf *tmp)
{
	json_t *out = NULL, *c;
	size_t n;

	if (depth > SCRUB_MAX_DEPTH)
		return json_string(MASK);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		for (void *it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);
			size_t kn = strlen(key);
			json_t *val = json_object_iter_value(it);
			/* A lease's fencing token is an integer that only counts takes; every
			 * credential called token is a string, and stays masked. */
			int counter = !strcmp(key, "token") && json_is_integer(val);

			c = name_is_secret(key, kn, NULL, NULL) && !counter
				? mask_value(val)
				: scrub(val, depth + 1, tmp);
			/* a key with a NUL byte is cut in a copy: that is a change too */
			if (c && !out && (c != val || kn != json_object_iter_key_len(it)))
				out = object_prefix(v, it);
			if (!c || (out && json_object_set_new(out, key, c) < 0))
				goto fail;
			if (!out)
				json_decref(c);
		}
		return out ? out : json_incref((json_t *)v);
	case JSON_ARRAY:
		n = json_array_size(v);
		for (size_t i = 0; i < n; i++) {
			json_t *val = json_array_get(v, i);

			c = scrub(val, depth + 1, tmp);
			if (c && !out && c != val) {
				out = json_array();
				for (size_t k = 0; out && k < i; k++)
					if (json_array_append(out, json_array_get(v, k)) < 0) {
						json_decref(out);
						out = NULL;
					}
			}
			if (!c || (out && json_array_append_new(out, c) < 0))
				goto fail;
			if (!out)
				json_decref(c);
		}
		return out ? out : json_incref((json_t *)v);
	case JSON_STRING:
		return scrub_string(v, tmp);
	default:
		return json_incref((json_t *)v);
	}
fail:
	json_decref(out);
	return NULL;
}

json_t *drb_audit_scrub(const json_t *v)
{
	drb_buf tmp;
	json_t *out;

	if (!v)
		return NULL;
	drb_buf_init(&tmp, 0);
	out = scrub(v, 0, &tmp);
	drb_buf_free(&tmp);
	return out;
}

/* ---- one pass: scrubbed and serialised together ----
 *
 * drb_audit_scrub_dump writes the text json_dumps(drb_audit_scrub(v), JSON_COMPACT |
 * JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) would, byte for byte, without building the copy:
 * the audit log's format is that text. jansson 2.14's rules (dump.c, utf8.c): strings are
 * checked as UTF-8 and escaped with \\ \" \b \f \n \r \t, \uXXXX (upper-case hex) for the
 * other control characters and every non-ASCII code point (a surrogate pair above U+FFFF);
 * integers in decimal; reals by jansson itself (json_dumpb). What the copy would not carry
 * unchanged (a key with a NUL byte, which the copy cuts, or text that is not valid UTF-8,
 * which the copy refuses) is left to the two-pass path: DRB_AUDIT_DUMP_SLOW. */

/* The code point at s (n > 0 bytes) and its length in bytes; 0 when not valid UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t n, int32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	int32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xC2 || c > 0xF4)
		return 0;
	len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if (n < len)
		return 0;
	v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
	    (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static char *put_u(char *p, int32_t v)
{
	static const char hex[] = "0123456789ABCDEF";

	*p++ = '\\';
	*p++ = 'u';
	for (int sh = 12; sh >= 0; sh -= 4)
		*p++ = hex[(v >> sh) & 0xF];
	return p;
}

int drb_audit_json_string(drb_buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;
	int rc = drb_buf_append(b, "\"", 1);

	while (rc == 0 && i < n) {
		char esc[12], *e = esc;
		int32_t cp;
		size_t len;

		if (s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') {
			i++;
			continue;
		}
		len = utf8_next(s + i, n - i, &cp);
		if (!len)
			return DRB_AUDIT_DUMP_SLOW;
		switch (cp) {
		case '\\':
		case '"':
			*e++ = '\\';
			*e++ = (char)cp;
			break;
		case '\b':
			*e++ = '\\';
			*e++ = 'b';
			break;
		case '\f':
			*e++ = '\\';
			*e++ = 'f';
			break;
		case '\n':
			*e++ = '\\';
			*e++ = 'n';
			break;
		case '\r':
			*e++ = '\\';
			*e++ = 'r';
			break;
		case '\t':
			*e++ = '\\';
			*e++ = 't';
			break;
		default:
			if (cp < 0x10000) {
				e = put_u(e, cp);
			} else {
				cp -= 0x10000;
				e = put_u(e, 0xD800 | ((cp & 0xffc00) >> 10));
				e = put_u(e, 0xDC00 | (cp & 0x003ff));
			}
		}
		rc = drb_buf_append(b, s + run, i - run);
		if (rc == 0)
			rc = drb_buf_append(b, esc, (size_t)(e - esc));
		i += len;
		run = i;
	}
	if (rc == 0)
		rc = drb_buf_append(b, s + run, i - run);
	if (rc == 0)
		rc = drb_buf_append(b, "\"", 1);
	return rc;
}

static int dump_int(drb_buf *b, json_int_t v)
{
	char t[24], *p = t + sizeof(t);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return drb_buf_append(b, p, (size_t)(t + sizeof(t) - p));
}

/* null, booleans and numbers, as jansson writes them */
static int dump_scalar(drb_buf *b, const json_t *v)
{
	char t[100];
	size_t n;

	switch (json_typeof(v)) {
	case JSON_NULL:
		return drb_buf_append(b, "null", 4);
	case JSON_TRUE:
		return drb_buf_append(b, "true", 4);
	case JSON_FALSE:
		return drb_buf_append(b, "false", 5);
	case JSON_INTEGER:
		return dump_int(b, json_integer_value(v));
	default:
		n = json_dumpb(v, t, sizeof(t), JSON_ENCODE_ANY);
		if (!n || n > sizeof(t))
			return DRB_AUDIT_DUMP_SLOW;
		return drb_buf_append(b, t, n);
	}
}

static int scrub_dump(const json_t *v, int depth, drb_buf *b, drb_buf *tmp, int *hid)
{
	int rc = 0;

	if (depth > SCRUB_MAX_DEPTH) {
		*hid = 1;
		return drb_buf_puts(b, "\"" MASK "\"");
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		rc = drb_buf_append(b, "{", 1);
		for (void *it = json_object_iter((json_t *)v), *first = it; it && rc == 0;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);
			size_t kn = strlen(key);
			json_t *val = json_object_iter_value(it);
			int counter = !strcmp(key, "token") && json_is_integer(val);

			/* the copy would cut the key at its NUL */
			if (kn != json_object_iter_key_len(it))
				return DRB_AUDIT_DUMP_SLOW;
			if (it != first)
				rc = drb_buf_append(b, ",", 1);
			if (rc == 0)
				rc = drb_audit_json_string(b, key, kn);
			if (rc == 0)
				rc = drb_buf_append(b, ":", 1);
			if (rc)
				break;
			if (name_is_secret(key, kn, NULL, NULL) && !counter) {
				*hid = 1;
				rc = json_is_null(val) || json_is_boolean(val)
					 ? dump_scalar(b, val)
					 : drb_buf_puts(b, "\"" MASK "\"");
			} else {
				rc = scrub_dump(val, depth + 1, b, tmp, hid);
			}
		}
		return rc ? rc : drb_buf_append(b, "}", 1);
	case JSON_ARRAY:
		rc = drb_buf_append(b, "[", 1);
		for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
			if (i)
				rc = drb_buf_append(b, ",", 1);
			if (rc == 0)
				rc = scrub_dump(json_array_get(v, i), depth + 1, b, tmp, hid);
		}
		return rc ? rc : drb_buf_append(b, "]", 1);
	case JSON_STRING:
		rc = scrub_text(json_string_value(v), json_string_length(v), tmp);
		if (rc == DRB_ELIMIT) {
			*hid = 1;
			return drb_buf_puts(b, "\"" MASK "\"");
		}
		if (rc)
			return rc;
		if (tmp->len != json_string_length(v) ||
		    (tmp->len && memcmp(tmp->p, json_string_value(v), tmp->len)))
			*hid = 1;
		return drb_audit_json_string(b, tmp->p ? tmp->p : "", tmp->len);
	default:
		return dump_scalar(b, v);
	}
}

int drb_audit_scrub_dump(const json_t *v, drb_buf *out, int *hid)
{
	drb_buf tmp;
	int rc, h = 0;

	if (!v || !json_is_object(v))
		return DRB_EINVAL;
	drb_buf_init(&tmp, 0);
	rc = scrub_dump(v, 0, out, &tmp, &h);
	if (hid)
		*hid = h;
	drb_buf_free(&tmp);
	return rc;
}
