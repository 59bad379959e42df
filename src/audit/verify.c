/* Reading and verifying audit logs: a bounded line reader, the checks every line must pass
 * (format and field order, seq, run id, hash chain, MAC) and the verdict on the FIRST line that
 * is provably bad, worded for the person who has to decide whether to trust the log. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <drbook/audit.h>
#include <drbook/util.h>

#include "audit_int.h"

#define READ_CHUNK 65536
#define MAC_SUFFIX ",\"mac\":\""
/* ,"mac":"<64 hex>"} */
#define MAC_TAIL_LEN (sizeof(MAC_SUFFIX) - 1 + 64 + 2)
#define JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

typedef struct line_reader {
	int fd;
	off_t off; /* file offset of the next pread */
	char *chunk;
	size_t clen, cpos;
	int eof;
	drb_buf line;	  /* the current line, without its newline */
	off_t line_start; /* file offset of the current line */
	int has_nl;	  /* the current line ended with '\n' */
} line_reader;

static int reader_init(line_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	drb_buf_init(&r->line, DRB_AUDIT_LINE_MAX);
	r->chunk = malloc(READ_CHUNK);
	return r->chunk ? 0 : DRB_ENOMEM;
}

static void reader_free(line_reader *r)
{
	free(r->chunk);
	r->chunk = NULL;
	drb_buf_free(&r->line);
}

/* 1: a line is in r->line; 0: end of file; DRB_ELIMIT: the line is longer than
 * DRB_AUDIT_LINE_MAX; DRB_EIO/DRB_ENOMEM with err set. pread, so the caller's file position
 * (an O_APPEND writer's) is not disturbed. */
static int reader_next(line_reader *r, const char *path, drb_err *err)
{
	r->line.len = 0;
	if (r->line.p)
		r->line.p[0] = '\0';
	r->has_nl = 0;
	r->line_start = r->off - (off_t)(r->clen - r->cpos);
	for (;;) {
		const char *nl;
		size_t take;
		int rc;

		if (r->cpos == r->clen) {
			ssize_t n;

			if (r->eof)
				return r->line.len ? 1 : 0;
			n = pread(r->fd, r->chunk, READ_CHUNK, r->off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return drb_err_set(err, DRB_EIO, "%s: read: %s", path,
						   strerror(errno));
			if (n == 0) {
				r->eof = 1;
				continue;
			}
			r->clen = (size_t)n;
			r->cpos = 0;
			r->off += n;
		}
		nl = memchr(r->chunk + r->cpos, '\n', r->clen - r->cpos);
		take = nl ? (size_t)(nl - (r->chunk + r->cpos)) : r->clen - r->cpos;
		rc = drb_buf_append(&r->line, r->chunk + r->cpos, take);
		if (rc == DRB_ELIMIT)
			return DRB_ELIMIT;
		if (rc)
			return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", path);
		r->cpos += take;
		if (nl) {
			r->cpos++;
			r->has_nl = 1;
			return 1;
		}
	}
}

/* What the checks carry from one line to the next. */
typedef struct scan_state {
	const unsigned char *key;
	size_t key_len;
	long expect;   /* seq the next line must have */
	char prev[65]; /* hash of the previous line; 64 zeros before line 1 */
	char *run;     /* line 1's run id */
	int mac_mode;  /* -1 unknown, 0 the log has no macs, 1 it has */
	drb_verify_result *res;
	/* signed heads */
	const drb_audit_signkey *pub;
	long heads;	     /* head records seen (verified, with pub) */
	long since_head;     /* records after the last head */
	long head_line;	     /* line of the last head, 0 when none */
	char last_event[64]; /* event of the previous record (truncated) */
	char head_signs[64]; /* event of the record the last head signs */
} scan_state;

static int verdict(drb_verify_result *res, drb_verify_kind kind, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int verdict(drb_verify_result *res, drb_verify_kind kind, long line, const char *fmt, ...)
{
	va_list ap;

	res->kind = kind;
	res->line = line;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
	return 1;
}

/* A line that is not a record at all. On line 1 the file is not a drbook log; after good lines
 * it is a log whose line was overwritten or damaged, which the reader must treat as tampering. */
static int not_a_record(scan_state *st, long no, const char *why)
{
	if (no == 1)
		return verdict(st->res, DRB_VERIFY_MALFORMED, no,
			       "line 1 is not a drbook audit record (%s)", why);
	return verdict(st->res, DRB_VERIFY_TAMPERED, no,
		       "line %ld is not a valid audit record (%s): it was changed or damaged after "
		       "it was written",
		       no, why);
}

static int is_hex64(const json_t *v)
{
	const char *s;

	if (!json_is_string(v) || json_string_length(v) != 64)
		return 0;
	s = json_string_value(v);
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* An interrupted write leaves a prefix of a record: what we write starts with {"seq":N, */
static int is_record_prefix(const char *line, size_t len, long seq)
{
	char start[48];
	int n = snprintf(start, sizeof(start), DRB_AUDIT_LINE_START "%ld,", seq);
	size_t cmp = len < (size_t)n ? len : (size_t)n;

	return len > 0 && !memcmp(line, start, cmp);
}

static const char *const field_names[] = {"seq",  "ts",	  "run",  "event",
					  "step", "data", "prev", "mac"};

/* The fields, their order and their types. Jansson (>= 2.8) keeps the insertion order of
 * object keys when parsing, so iterating the parsed object sees them in file order
 * (tests/unit/audit/test_verify.c checks a reordered line is refused). */
static int check_fields(scan_state *st, long no, json_t *o, const char *line, size_t len,
			int *has_mac)
{
	const char *key, *why = NULL;
	json_t *v;
	size_t i = 0;
	int64_t ms;
	char buf[160];

	json_object_foreach(o, key, v)
	{
		if (i >= 8 || strcmp(key, field_names[i]) != 0) {
			snprintf(buf, sizeof(buf), "field %zu is \"%.40s\", expected \"%s\"", i + 1,
				 key, i < 8 ? field_names[i] : "end of record");
			return not_a_record(st, no, buf);
		}
		i++;
	}
	if (i < 7) {
		snprintf(buf, sizeof(buf), "field \"%s\" is missing", field_names[i]);
		return not_a_record(st, no, buf);
	}
	*has_mac = i == 8;
	if (!json_is_integer(json_object_get(o, "seq")))
		why = "seq is not an integer";
	else if (!json_is_string(json_object_get(o, "ts")) ||
		 drb_rfc3339_parse(json_string_value(json_object_get(o, "ts")), &ms) != 0)
		why = "ts is not an RFC 3339 time";
	else if (!json_is_string(json_object_get(o, "run")) ||
		 !json_string_length(json_object_get(o, "run")))
		why = "run is not a non-empty string";
	else if (!json_is_string(json_object_get(o, "event")) ||
		 !json_string_length(json_object_get(o, "event")))
		why = "event is not a non-empty string";
	else if (!json_is_string(json_object_get(o, "step")) &&
		 !json_is_null(json_object_get(o, "step")))
		why = "step is neither a string nor null";
	else if (!json_is_object(json_object_get(o, "data")))
		why = "data is not an object";
	else if (!is_hex64(json_object_get(o, "prev")))
		why = "prev is not 64 lowercase hex digits";
	else if (*has_mac && !is_hex64(json_object_get(o, "mac")))
		why = "mac is not 64 lowercase hex digits";
	/* the MAC covers the bytes before ,"mac": so the field must be spelled exactly so */
	else if (*has_mac &&
		 (len < MAC_TAIL_LEN ||
		  memcmp(line + len - MAC_TAIL_LEN, MAC_SUFFIX, sizeof(MAC_SUFFIX) - 1) ||
		  memcmp(line + len - 2, "\"}", 2)))
		why = "the mac field is not at the end of the line in the form ,\"mac\":\"...\"}";
	if (why)
		return not_a_record(st, no, why);
	return 0;
}

static int check_mac(scan_state *st, long no, const char *line, size_t len, int has_mac)
{
	unsigned char md[32];
	char hex[65];

	if (st->mac_mode < 0)
		st->mac_mode = has_mac;
	if (has_mac != st->mac_mode)
		return verdict(st->res, DRB_VERIFY_TAMPERED, no,
			       "line %ld %s but line 1 %s: the line was changed after it was "
			       "written",
			       no, has_mac ? "has a mac" : "has no mac",
			       has_mac ? "has none" : "has one");
	if (!st->key)
		return 0;
	if (!has_mac)
		return verdict(st->res, DRB_VERIFY_NO_MAC, no,
			       "the log carries no MACs (it was written without a key) but a key "
			       "was given");
	drb_hmac_sha256(st->key, st->key_len, line, len - MAC_TAIL_LEN, md);
	drb_hex(md, 32, hex);
	if (CRYPTO_memcmp(hex, line + len - 66, 64) == 0)
		return 0;
	if (no == 1)
		return verdict(st->res, DRB_VERIFY_BAD_MAC, no,
			       "line 1: MAC does not match: wrong key or forged line");
	return verdict(st->res, DRB_VERIFY_TAMPERED, no,
		       "line %ld: MAC does not match although the same key verified lines 1-%ld: "
		       "line %ld was changed after it was written",
		       no, no - 1, no);
}

/* A head record, with a public key: it must sign the record just before it (seq and hash)
 * with that key. Called after the chain checks passed, so st->prev is that record's hash. */
static int check_head(scan_state *st, long no, long seq, const json_t *o)
{
	const json_t *d = json_object_get(o, "data");
	const json_t *hs = json_object_get(d, "seq"), *hh = json_object_get(d, "sha256"),
		     *sig = json_object_get(d, "sig");
	const char *run = json_string_value(json_object_get(o, "run"));
	int rc;

	if (!json_is_integer(hs) || json_integer_value(hs) != seq - 1 || !is_hex64(hh) ||
	    strcmp(json_string_value(hh), st->prev) || !json_is_string(sig))
		return verdict(st->res, DRB_VERIFY_TAMPERED, no,
			       "line %ld: head record does not name the record before it (data "
			       "must be {seq: %ld, sha256: hash of line %ld, sig}): it was changed",
			       no, seq - 1, no - 1);
	rc = drb_audit_head_check(st->pub, run, seq - 1, st->prev, json_string_value(sig));
	if (rc == DRB_ENOMEM)
		return rc;
	if (rc == 0)
		return 0;
	if (!st->heads)
		return verdict(st->res, DRB_VERIFY_BAD_SIG, no,
			       "line %ld: the signature of the first head does not verify with "
			       "this public key: wrong key, or a forged log",
			       no);
	return verdict(st->res, DRB_VERIFY_TAMPERED, no,
		       "line %ld: head signature does not verify although the same key verified "
		       "an earlier head: lines up to %ld were changed after they were signed",
		       no, no - 1);
}

/* 0 when the line is a good record; 1 when it is not (the verdict is in st->res). */
static int check_line(scan_state *st, long no, const char *line, size_t len, int has_nl,
		      drb_err *err)
{
	json_error_t jerr;
	json_t *o = NULL;
	const char *run, *prev;
	long long seq;
	int has_mac = 0, bad = 0;
	char why[200];

	o = json_loadb(line, len, JSON_FLAGS, &jerr);
	if (!o || !json_is_object(o)) {
		if (!has_nl && is_record_prefix(line, len, st->expect)) {
			bad =
			    verdict(st->res, DRB_VERIFY_TRUNCATED, no,
				    "line %ld is incomplete (%zu bytes, no newline): the write was "
				    "interrupted (crash or kill), not tampering",
				    no, len);
			goto out;
		}
		snprintf(why, sizeof(why), "%s",
			 o ? "not a JSON object" : (len ? jerr.text : "empty line"));
		bad = not_a_record(st, no, why);
		goto out;
	}
	bad = check_fields(st, no, o, line, len, &has_mac);
	if (bad)
		goto out;
	seq = json_integer_value(json_object_get(o, "seq"));
	if (seq != st->expect) {
		if (no == 1)
			bad =
			    verdict(st->res, DRB_VERIFY_TAMPERED, no,
				    "line 1: seq is %lld, expected 1 (lines were removed from the "
				    "beginning of the log)",
				    seq);
		else
			bad = verdict(st->res, DRB_VERIFY_TAMPERED, no,
				      "line %ld: seq is %lld, expected %ld (a line was deleted, "
				      "inserted or reordered)",
				      no, seq, st->expect);
		goto out;
	}
	run = json_string_value(json_object_get(o, "run"));
	if (!st->run) {
		st->run = drb_strdup(run);
		if (!st->run) {
			bad = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
	} else if (strcmp(run, st->run) != 0) {
		bad = verdict(st->res, DRB_VERIFY_TAMPERED, no,
			      "line %ld: run id \"%.80s\" differs from line 1's \"%.80s\" (a line "
			      "from another log was inserted)",
			      no, run, st->run);
		goto out;
	}
	prev = json_string_value(json_object_get(o, "prev"));
	if (strcmp(prev, st->prev) != 0) {
		if (no == 1)
			bad =
			    verdict(st->res, DRB_VERIFY_TAMPERED, no,
				    "line 1: prev is not 64 zeros: this is not the first line of a "
				    "log (lines were removed from the beginning)");
		else
			bad =
			    verdict(st->res, DRB_VERIFY_TAMPERED, no,
				    "line %ld: prev does not match the hash of line %ld (line %ld "
				    "changed, or a line was deleted, inserted or reordered)",
				    no, no - 1, no - 1);
		goto out;
	}
	bad = check_mac(st, no, line, len, has_mac);
	if (bad)
		goto out;
	{
		const char *ev = json_string_value(json_object_get(o, "event"));

		if (!strcmp(ev, DRB_AUDIT_HEAD)) {
			if (st->pub && (bad = check_head(st, no, (long)seq, o)))
				goto out;
			st->heads++;
			st->since_head = 0;
			st->head_line = no;
			snprintf(st->head_signs, sizeof(st->head_signs), "%s", st->last_event);
		} else {
			st->since_head++;
		}
		snprintf(st->last_event, sizeof(st->last_event), "%s", ev);
	}
out:
	json_decref(o);
	return bad;
}

int drb_audit_scan_fd(int fd, const char *path, const unsigned char *key, size_t key_len,
		      const drb_audit_signkey *pub, drb_verify_result *res, drb_audit_tail *tail,
		      drb_err *err)
{
	line_reader r;
	scan_state st;
	long no = 0, records = 0;
	off_t good_end = 0;
	int rc, missing_nl = 0;

	memset(res, 0, sizeof(*res));
	memset(&st, 0, sizeof(st));
	if (tail)
		memset(tail, 0, sizeof(*tail));
	st.key = key;
	st.key_len = key_len;
	st.expect = 1;
	st.mac_mode = -1;
	st.res = res;
	st.pub = pub;
	memset(st.prev, '0', 64);
	rc = reader_init(&r, fd);
	if (rc) {
		drb_err_set(err, rc, "out of memory");
		goto out;
	}
	if (key && !key_len) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: empty audit key", path);
		goto out;
	}
	for (;;) {
		int bad;

		no++;
		rc = reader_next(&r, path, err);
		if (rc == 0)
			break;
		if (rc == DRB_ELIMIT) {
			char why[80];

			snprintf(why, sizeof(why), "longer than %u bytes", DRB_AUDIT_LINE_MAX);
			not_a_record(&st, no, why);
			rc = 0;
			goto out;
		}
		if (rc < 0)
			goto out;
		bad = check_line(&st, no, r.line.p, r.line.len, r.has_nl, err);
		if (bad < 0) {
			rc = bad;
			goto out;
		}
		if (bad)
			break;
		records++;
		drb_sha256_hex(r.line.p, r.line.len, st.prev);
		good_end = r.line_start + (off_t)r.line.len + r.has_nl;
		missing_nl = !r.has_nl;
		st.expect++;
	}
	rc = 0;
	res->records = records;
	if (res->kind == DRB_VERIFY_TRUNCATED && pub && records)
		goto judge_end; /* an interrupted write does not excuse a missing signed end */
	if (res->kind != DRB_VERIFY_OK)
		goto out;
	if (!records) {
		verdict(res, DRB_VERIFY_MALFORMED, 1, "empty log");
		goto out;
	}
	res->line = 0;
	{
		char signed_note[200] = "";

		if (pub && st.heads)
			snprintf(signed_note, sizeof(signed_note),
				 ", %ld signed heads verified, the last (line %ld) signs %s",
				 st.heads, st.head_line,
				 drb_event_of(st.head_signs) == DRB_EV_RUN_END
				     ? "the run.end"
				     : "a record before the end");
		snprintf(res->msg, sizeof(res->msg),
			 "%ld records, chain intact, %s%s; last line sha256 %s", records,
			 st.mac_mode == 0 ? "no MACs (written without a key)"
			 : key		  ? "MACs verified"
					  : "MACs present but not checked (no key given)",
			 signed_note, st.prev);
	}
	if (!pub)
		goto out;
judge_end:
	/* the end of the log: only a head signing run.end proves that nothing was cut off */
	if (!st.heads)
		verdict(res, DRB_VERIFY_UNSIGNED, 1,
			"not signed: the log holds no head record (written without "
			"--sign-key-file, or cut before its first head): nothing is proven");
	else if (st.since_head)
		verdict(res, DRB_VERIFY_CUT, st.head_line + 1,
			"truncated: %ld records after the last signed head (line %ld) are not "
			"signed and no signed run.end follows: the log was cut after a signed head "
			"that promised more (or the run is still going or died); proven up to "
			"line %ld",
			st.since_head, st.head_line, st.head_line);
	else if (drb_event_of(st.head_signs) != DRB_EV_RUN_END)
		verdict(res, DRB_VERIFY_CUT, st.head_line,
			"truncated: the last signed head (line %ld) signs a %s record, not the "
			"run.end: the run's end and its final signed head are missing (the log was "
			"cut, or the run is still going or died); proven up to line %ld",
			st.head_line, st.head_signs, st.head_line);
out:
	res->records = records;
	if (tail && rc == 0) {
		tail->seq = st.expect - 1;
		memcpy(tail->prev, st.prev, sizeof(tail->prev));
		tail->run = st.run;
		st.run = NULL;
		tail->has_mac = st.mac_mode == 1;
		tail->missing_nl = missing_nl;
		tail->good_end = good_end;
		tail->size = r.off;
		tail->since_head = st.since_head;
	}
	free(st.run);
	reader_free(&r);
	return rc;
}

static int open_log(const char *path, int *fd, drb_err *err)
{
	struct stat st;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return drb_err_set(err, errno == ENOENT ? DRB_ENOTFOUND : DRB_EIO, "%s: %s", path,
				   strerror(errno));
	if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return drb_err_set(err, DRB_EINVAL, "%s: not a regular file", path);
	}
	return 0;
}

int drb_audit_verify(const char *path, const unsigned char *key, size_t key_len,
		     drb_verify_result *res, drb_err *err)
{
	return drb_audit_verify_signed(path, key, key_len, NULL, res, err);
}

int drb_audit_verify_signed(const char *path, const unsigned char *key, size_t key_len,
			    const drb_audit_signkey *pub, drb_verify_result *res, drb_err *err)
{
	int fd = -1, rc;

	memset(res, 0, sizeof(*res));
	rc = open_log(path, &fd, err);
	if (rc)
		goto out;
	rc = drb_audit_scan_fd(fd, path, key, key_len, pub, res, NULL, err);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int drb_audit_read(const char *path, json_t **out, drb_err *err)
{
	line_reader r;
	json_t *arr = NULL;
	long no = 0;
	int fd = -1, rc;

	*out = NULL;
	rc = reader_init(&r, -1);
	if (rc) {
		drb_err_set(err, rc, "out of memory");
		goto out;
	}
	rc = open_log(path, &fd, err);
	if (rc)
		goto out;
	r.fd = fd;
	arr = json_array();
	if (!arr) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		json_error_t jerr;
		json_t *o;

		no++;
		rc = reader_next(&r, path, err);
		if (rc == 0)
			break;
		if (rc == DRB_ELIMIT) {
			rc =
			    drb_err_set(err, DRB_EINTEGRITY, "%s: line %ld is longer than %u bytes",
					path, no, DRB_AUDIT_LINE_MAX);
			goto out;
		}
		if (rc < 0)
			goto out;
		o = json_loadb(r.line.p, r.line.len, JSON_FLAGS, &jerr);
		if (!o && !r.has_nl)
			break; /* an interrupted last write: the record never happened */
		if (!o || !json_is_object(o)) {
			json_decref(o);
			rc = drb_err_set(err, DRB_EINTEGRITY,
					 "%s: line %ld is not a JSON object%s%s", path, no,
					 o ? "" : ": ", o ? "" : jerr.text);
			goto out;
		}
		if (json_array_append_new(arr, o) < 0) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = 0;
	*out = arr;
	arr = NULL;
out:
	json_decref(arr);
	if (fd >= 0)
		close(fd);
	reader_free(&r);
	return rc;
}
