/* sigv4_tool: signs requests given as JSON lines on stdin with drbook's SigV4 signer and
 * prints one JSON line per request. It exists so tests/e2e/test_sigv4_botocore.py can
 * compare thousands of signatures with botocore's in one process start.
 *
 * Input line: {"method", "path", "query", "headers": [[name, value], ...] (a list, so that
 * order and repeated names survive), "body_b64", "region", "service", "amz_date",
 * "access_key", "secret_key", "token" (null or absent for none), optional
 * "normalize_path" (default true), "add_content_sha256" (default false)}.
 * Output line: {"authorization", "canonical_request", "string_to_sign", "headers"} or
 * {"error": message}. Exit status: 0, or 2 for unreadable input (not JSON, too long). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <drbook/aws.h>

#define MAX_LINE (16 * 1024 * 1024)
#define MAX_HEADERS 256

/* Base64 to bytes; returns the length or -1. *out is the caller's to free. */
static long b64_decode(const char *in, unsigned char **out)
{
	size_t n = strlen(in);
	long len;

	*out = malloc(n / 4 * 3 + 4);
	if (!*out)
		return -1;
	if (n == 0)
		return 0;
	if (n % 4)
		return -1;
	len = EVP_DecodeBlock(*out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (in[n - 1] == '=')
		len--;
	if (in[n - 2] == '=')
		len--;
	return len;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_t *sign_one(json_t *in)
{
	drb_sigv4_header hdrs[MAX_HEADERS];
	drb_sigv4_req r = {0};
	drb_sigv4_creds c = {0};
	drb_sigv4_out out = {0};
	drb_err err = {0};
	unsigned char *body = NULL;
	long body_len = 0;
	json_t *res = NULL, *h = json_object_get(in, "headers"), *v;
	size_t i;

	if (!json_is_array(h) || json_array_size(h) > MAX_HEADERS) {
		res = json_pack("{s:s}", "error", "headers must be a list of [name, value]");
		goto out;
	}
	json_array_foreach(h, i, v)
	{
		hdrs[i].name = json_string_value(json_array_get(v, 0));
		hdrs[i].value = json_string_value(json_array_get(v, 1));
	}
	body_len = b64_decode(str(in, "body_b64") ? str(in, "body_b64") : "", &body);
	if (body_len < 0) {
		res = json_pack("{s:s}", "error", "body_b64 is not base64");
		goto out;
	}
	r.method = str(in, "method");
	r.path = str(in, "path");
	r.query = str(in, "query");
	r.headers = hdrs;
	r.n_headers = json_array_size(h);
	r.body = body;
	r.body_len = (size_t)body_len;
	r.region = str(in, "region");
	r.service = str(in, "service");
	r.amz_date = str(in, "amz_date");
	v = json_object_get(in, "normalize_path");
	r.normalize_path = v ? json_is_true(v) : 1;
	r.add_content_sha256 = json_is_true(json_object_get(in, "add_content_sha256"));
	c.access_key = str(in, "access_key");
	c.secret_key = str(in, "secret_key");
	c.session_token = str(in, "token");
	if (drb_sigv4_sign(&r, &c, &out, &err) != 0) {
		res = json_pack("{s:s}", "error", err.msg);
		goto out;
	}
	res = json_pack("{s:s, s:s, s:s, s:[]}", "authorization", out.authorization,
			"canonical_request", out.canonical_request, "string_to_sign",
			out.string_to_sign, "headers");
	for (i = 0; res && i < out.n_headers; i++)
		json_array_append_new(
		    json_object_get(res, "headers"),
		    json_pack("[s,s]", out.headers[i].name, out.headers[i].value));
out:
	drb_sigv4_out_free(&out);
	free(body);
	return res;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		json_error_t je;
		json_t *in, *res;
		char *s;

		if (n > MAX_LINE) {
			fprintf(stderr, "sigv4_tool: input line over %d bytes\n", MAX_LINE);
			rc = 2;
			break;
		}
		in = json_loadb(line, (size_t)n, 0, &je);
		if (!json_is_object(in)) {
			fprintf(stderr, "sigv4_tool: line is not a JSON object: %s\n", je.text);
			json_decref(in);
			rc = 2;
			break;
		}
		res = sign_one(in);
		s = res ? json_dumps(res, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		if (!s) {
			fprintf(stderr, "sigv4_tool: out of memory\n");
			rc = 2;
		} else {
			printf("%s\n", s);
		}
		free(s);
		json_decref(res);
		json_decref(in);
		if (rc)
			break;
	}
	free(line);
	if (fflush(stdout) != 0)
		rc = 2;
	return rc;
}
