/* S3 objects for evidence: PutObject (with Content-MD5, which buckets under Object Lock
 * require), GetObject and ListObjectsV2, over the one client path (client.c) like every AWS
 * call. Addressing is path-style (ENDPOINT/BUCKET/KEY) when an endpoint URL is set or the
 * bucket name has a dot (a virtual host would break TLS), else virtual-hosted
 * (BUCKET.s3.REGION.amazonaws.com), as AWS recommends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <drbook/util.h>

#include "aws_int.h"

/* A key as it goes on the wire: every byte outside A-Za-z0-9-_.~ encoded, '/' kept. */
static int encode_key(drb_buf *b, const char *key)
{
	char seg[1024];
	int rc = 0;

	while (rc == 0 && *key) {
		size_t n = strcspn(key, "/");

		if (n >= sizeof(seg))
			return DRB_ELIMIT;
		memcpy(seg, key, n);
		seg[n] = '\0';
		rc = drb_awsi_urlencode(b, seg);
		key += n;
		if (rc == 0 && *key == '/') {
			rc = drb_buf_puts(b, "/");
			key++;
		}
	}
	return rc;
}

static int valid_bucket(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
		      b[i] == '.'))
			return 0;
	return 1;
}

/* Turns ep (resolved for S3) into the address of bucket and builds the request path for key
 * (NULL: the bucket itself): path-style with a custom endpoint or a dotted bucket name, else
 * virtual-hosted. */
static int s3_address(const char *bucket, const char *key, drb_aws_endpoint *ep, drb_buf *path,
		      drb_err *err)
{
	int rc;

	if (!bucket || !valid_bucket(bucket))
		return drb_err_set(err, DRB_EINVAL,
				   "s3: bucket name '%.100s' is not valid (3-63 of a-z 0-9 . -)",
				   bucket ? bucket : "");
	if (ep->custom || strchr(bucket, '.')) {
		rc = drb_buf_printf(path, "/%s/", bucket);
	} else {
		/* https://s3.REGION.amazonaws.com -> https://BUCKET.s3.REGION.amazonaws.com */
		char host[sizeof(ep->host)];

		snprintf(host, sizeof(host), "%s.%s", bucket, ep->host);
		snprintf(ep->host, sizeof(ep->host), "%s", host);
		snprintf(ep->url, sizeof(ep->url), "https://%s", ep->host);
		rc = drb_buf_puts(path, "/");
	}
	if (rc == 0 && key)
		rc = encode_key(path, key);
	if (rc)
		return drb_err_set(err, DRB_EINVAL, "s3: object key too long");
	return 0;
}

/* Resolves the endpoint for bucket (no connection: the evidence shipper's way) and builds the
 * request path for key. */
static int s3_target(const char *region, const char *bucket, const char *key, drb_aws_endpoint *ep,
		     drb_buf *path, drb_err *err)
{
	int rc;

	if (!bucket || !valid_bucket(bucket))
		return drb_err_set(err, DRB_EINVAL,
				   "s3: bucket name '%.100s' is not valid (3-63 of a-z 0-9 . -)",
				   bucket ? bucket : "");
	rc = drb_aws_resolve(NULL, region, drb_awsi_s3.host_prefix, drb_awsi_s3.env_id, 0, ep, err);
	if (rc)
		return rc;
	return s3_address(bucket, key, ep, path, err);
}

/* PutObject of len bytes at path with its Content-MD5 (buckets under Object Lock refuse a PUT
 * without it) and the extra headers (x-amz-meta-*); the answer is the caller's. */
static int put_at(drb_action_ctx *ctx, const drb_aws_endpoint *ep, const char *path,
		  const void *body, size_t len, const char *content_type, const json_t *extra,
		  aws_resp *resp, drb_err *err)
{
	aws_req rq;
	unsigned char md5[16];
	char md5_b64[32];
	unsigned int md_len = 0;

	memset(&rq, 0, sizeof(rq));
	if (EVP_Digest(body ? body : "", len, md5, &md_len, EVP_md5(), NULL) != 1)
		return drb_err_set(err, DRB_ERR, "s3: MD5 unavailable");
	EVP_EncodeBlock((unsigned char *)md5_b64, md5, 16);
	rq.operation = "PutObject";
	rq.method = "PUT";
	rq.path = path;
	rq.body = body ? body : "";
	rq.body_len = len;
	rq.content_type = content_type ? content_type : "application/octet-stream";
	rq.content_md5 = md5_b64;
	rq.extra_headers = extra;
	return drb_awsi_call(ctx, &drb_awsi_s3, ep, &rq, resp, err);
}

int drb_aws_s3_put(drb_action_ctx *ctx, const char *region, const char *bucket, const char *key,
		   const void *body, size_t len, const char *content_type, drb_err *err)
{
	drb_aws_endpoint ep;
	drb_buf path;
	aws_resp resp;
	int rc;

	drb_buf_init(&path, 4096);
	memset(&resp, 0, sizeof(resp));
	rc = s3_target(region, bucket, key, &ep, &path, err);
	if (rc == 0)
		rc = put_at(ctx, &ep, path.p, body, len, content_type, NULL, &resp, err);
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	return rc;
}

int drb_aws_s3_get(drb_action_ctx *ctx, const char *region, const char *bucket, const char *key,
		   char **body, size_t *len, drb_err *err)
{
	drb_aws_endpoint ep;
	drb_buf path;
	aws_req rq;
	aws_resp resp;
	const json_t *b;
	int rc;

	*body = NULL;
	*len = 0;
	drb_buf_init(&path, 4096);
	memset(&rq, 0, sizeof(rq));
	memset(&resp, 0, sizeof(resp));
	rc = s3_target(region, bucket, key, &ep, &path, err);
	if (rc)
		goto out;
	rq.operation = "GetObject";
	rq.method = "GET";
	rq.path = path.p;
	rq.raw_answer = 1;
	rc = drb_awsi_call(ctx, &drb_awsi_s3, &ep, &rq, &resp, err);
	if (rc)
		goto out;
	b = json_object_get(resp.raw, "body");
	*body = malloc(json_string_length(b) + 1);
	if (!*body) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (json_string_length(b))
		memcpy(*body, json_string_value(b), json_string_length(b));
	(*body)[json_string_length(b)] = '\0';
	*len = json_string_length(b);
out:
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	return rc;
}

int drb_aws_s3_list(drb_action_ctx *ctx, const char *region, const char *bucket, const char *prefix,
		    json_t **keys, drb_err *err)
{
	drb_aws_endpoint ep;
	drb_buf path, query;
	aws_req rq;
	aws_resp resp;
	char token[1024] = "";
	int rc;

	*keys = json_array();
	drb_buf_init(&path, 4096);
	drb_buf_init(&query, 8192);
	memset(&resp, 0, sizeof(resp));
	if (!*keys) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_target(region, bucket, NULL, &ep, &path, err);
	if (rc)
		goto out;
	for (;;) {
		xmlNode *root, *c;

		query.len = 0;
		/* the signer sorts the query; the wire order does not matter */
		rc = drb_buf_puts(&query, "list-type=2&prefix=");
		if (rc == 0)
			rc = drb_awsi_urlencode(&query, prefix ? prefix : "");
		if (rc == 0 && token[0]) {
			rc = drb_buf_puts(&query, "&continuation-token=");
			if (rc == 0)
				rc = drb_awsi_urlencode(&query, token);
		}
		if (rc) {
			rc = drb_err_set(err, DRB_EINVAL, "s3: prefix too long");
			goto out;
		}
		memset(&rq, 0, sizeof(rq));
		rq.operation = "ListObjectsV2";
		rq.method = "GET";
		rq.path = path.p;
		rq.query = query.p;
		rc = drb_awsi_call(ctx, &drb_awsi_s3, &ep, &rq, &resp, err);
		if (rc)
			goto out;
		root = resp.doc ? drb_awsx_root(resp.doc) : NULL;
		if (!root)
			break;
		for (c = root ? drb_awsx_find(root, "Contents") : NULL; c; c = drb_awsx_next(c)) {
			char k[1024];

			if (drb_awsx_text(c, "Key", k, sizeof(k)) == 0 &&
			    json_array_append_new(*keys, json_string(k))) {
				rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
				goto out;
			}
		}
		{
			char trunc[8] = "";

			drb_awsx_text(root, "IsTruncated", trunc, sizeof(trunc));
			if (strcmp(trunc, "true") ||
			    drb_awsx_text(root, "NextContinuationToken", token, sizeof(token)))
				break;
		}
		drb_awsi_resp_free(&resp);
	}
out:
	drb_awsi_resp_free(&resp);
	if (rc) {
		json_decref(*keys);
		*keys = NULL;
	}
	drb_buf_free(&path);
	drb_buf_free(&query);
	return rc;
}

/* ---- the aws.s3.* actions ----------------------------------------------------------------- */

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

/* The start of every S3 action: the common checks, the endpoint (connection, region) and the
 * address of bucket/key. */
static int s3_begin(drb_action_ctx *ctx, const json_t *args, const char *A, int with_key,
		    drb_aws_endpoint *ep, drb_buf *path, const char **bucket, const char **key,
		    drb_err *err)
{
	int rc;

	rc = drb_awsi_begin(ctx, args, &drb_awsi_s3, A, ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "bucket", bucket, err);
	if (rc == 0 && with_key)
		rc = drb_arg_string(args, "key", key, err);
	if (rc == 0 && with_key && !**key)
		rc = drb_err_set(err, DRB_EINVAL, "key is empty");
	if (rc == 0)
		rc = s3_address(*bucket, with_key ? *key : NULL, ep, path, err);
	if (rc != 0)
		drb_err_prefix(err, "%s: ", A);
	return rc;
}

static const char *resp_header(const aws_resp *r, const char *name)
{
	return json_string_value(json_object_get(json_object_get(r->raw, "headers"), name));
}

/* A header as a JSON string, or null when absent. */
static json_t *hdr_str(const aws_resp *r, const char *name)
{
	const char *v = resp_header(r, name);

	return v ? json_string(v) : json_null();
}

/* The ETag without the quotes S3 puts around it. */
static json_t *etag_json(const aws_resp *r)
{
	const char *v = resp_header(r, "etag");
	size_t n;

	if (!v)
		return json_null();
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		return json_stringn(v + 1, n - 2);
	return json_string(v);
}

/* An HTTP date (IMF-fixdate, "Wed, 02 Dec 2026 17:00:00 GMT") as RFC 3339 UTC, or null. */
static json_t *http_date_json(const char *v)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4] = "", out[32];
	int d, y, hh, mm, ss, m;
	const char *at;
	int64_t days, yy;
	unsigned era, yoe, doy, doe, mp;

	if (!v || sscanf(v, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT", &d, mon, &y, &hh, &mm, &ss) != 6)
		return json_null();
	at = strstr(months, mon);
	if (!at || strlen(mon) != 3 || (at - months) % 3)
		return json_null();
	m = (int)(at - months) / 3 + 1;
	/* days from 1970-01-01 (Howard Hinnant's days_from_civil) */
	yy = y - (m <= 2);
	era = (unsigned)((yy >= 0 ? yy : yy - 399) / 400);
	yoe = (unsigned)(yy - (int64_t)era * 400);
	mp = (unsigned)(m > 2 ? m - 3 : m + 9);
	doy = (153 * mp + 2) / 5 + (unsigned)d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	days = (int64_t)era * 146097 + (int64_t)doe - 719468;
	drb_rfc3339_s(((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000, out);
	return json_string(out);
}

int drb_awsi_s3_get_replication(drb_action_ctx *ctx, const json_t *args, json_t **result,
				drb_err *err)
{
	const char *A = "aws.s3.get_bucket_replication", *bucket = NULL;
	drb_aws_endpoint ep;
	drb_buf path;
	aws_req rq;
	aws_resp resp;
	json_t *o = NULL, *rules = NULL;
	xmlNode *root, *r;
	int rc, bad = 0;

	*result = NULL;
	drb_buf_init(&path, 4096);
	memset(&rq, 0, sizeof(rq));
	memset(&resp, 0, sizeof(resp));
	rc = s3_begin(ctx, args, A, 0, &ep, &path, &bucket, NULL, err);
	if (rc != 0)
		goto out;
	rq.operation = "GetBucketReplication";
	rq.method = "GET";
	rq.path = path.p;
	rq.query = "replication=";
	/* A bucket without replication answers 404 ReplicationConfigurationNotFoundError:
	 * code not_found, the message names it (a missing bucket says NoSuchBucket). */
	rc = drb_awsi_call(ctx, &drb_awsi_s3, &ep, &rq, &resp, err);
	if (rc != 0)
		goto out;
	root = resp.doc ? drb_awsx_root(resp.doc) : NULL;
	o = json_object();
	rules = json_array();
	if (!o || !rules) {
		rc = nomem(A, err);
		goto out;
	}
	for (r = root ? drb_awsx_child(root, "Rule") : NULL; r && !bad; r = drb_awsx_next(r)) {
		json_t *x = json_object();
		json_t *prefix = NULL;
		char dest[1100] = "";

		if (!x) {
			bad = 1;
			break;
		}
		/* The prefix: Filter/Prefix, Filter/And/Prefix or the older rule-level Prefix. */
		if (drb_awsx_child(r, "Filter/Prefix"))
			prefix = drb_awsx_str(r, "Filter/Prefix");
		else if (drb_awsx_child(r, "Filter/And/Prefix"))
			prefix = drb_awsx_str(r, "Filter/And/Prefix");
		else
			prefix = drb_awsx_str(r, "Prefix");
		drb_awsx_text(r, "Destination/Bucket", dest, sizeof(dest));
		drb_awsi_set(x, "id", drb_awsx_str(r, "ID"), &bad);
		drb_awsi_set(x, "status", drb_awsx_str(r, "Status"), &bad);
		drb_awsi_set(x, "priority", drb_awsx_int(r, "Priority"), &bad);
		drb_awsi_set(x, "prefix", prefix, &bad);
		drb_awsi_set(x, "destination_bucket", drb_awsx_str(r, "Destination/Bucket"), &bad);
		drb_awsi_set(x, "destination_bucket_name",
			     json_string(!strncmp(dest, "arn:aws:s3:::", 13) ? dest + 13 : dest),
			     &bad);
		drb_awsi_set(x, "destination_account", drb_awsx_str(r, "Destination/Account"),
			     &bad);
		drb_awsi_set(x, "storage_class", drb_awsx_str(r, "Destination/StorageClass"),
			     &bad);
		drb_awsi_set(x, "delete_marker_replication",
			     drb_awsx_str(r, "DeleteMarkerReplication/Status"), &bad);
		drb_awsi_set(x, "replication_time",
			     drb_awsx_str(r, "Destination/ReplicationTime/Status"), &bad);
		if (json_array_append_new(rules, x) != 0)
			bad = 1;
	}
	drb_awsi_set(o, "role", root ? drb_awsx_str(root, "Role") : json_null(), &bad);
	drb_awsi_set(o, "rules", rules, &bad);
	rules = NULL;
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(rules);
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	return rc;
}

/* After a 404 to a HEAD of an object: HeadBucket tells a missing object (0) from a missing
 * bucket (DRB_ENOTFOUND, NoSuchBucket). A HEAD answer has no body to say which. */
static int bucket_exists(drb_action_ctx *ctx, const char *bucket, drb_aws_endpoint *ep,
			 drb_err *err)
{
	drb_buf path;
	aws_req rq;
	aws_resp resp;
	drb_err e2 = {0};
	int rc;

	drb_buf_init(&path, 512);
	memset(&rq, 0, sizeof(rq));
	memset(&resp, 0, sizeof(resp));
	/* ep is already the bucket's address: its path is /BUCKET/ (path style) or / */
	rc = ep->custom || strchr(bucket, '.') ? drb_buf_printf(&path, "/%s", bucket)
					       : drb_buf_puts(&path, "/");
	if (rc != 0) {
		rc = drb_err_set(err, DRB_ENOMEM, "s3: out of memory");
		goto out;
	}
	rq.operation = "HeadBucket";
	rq.method = "HEAD";
	rq.path = path.p;
	rq.raw_answer = 1;
	rc = drb_awsi_call(ctx, &drb_awsi_s3, ep, &rq, &resp, &e2);
	if (rc != 0 && e2.cause == 404)
		rc = drb_err_set(err, DRB_ENOTFOUND, "s3 HeadBucket: NoSuchBucket: bucket %.100s "
				 "does not exist", bucket);
	else if (rc != 0)
		rc = drb_err_set(err, e2.code, "%s", e2.msg);
out:
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	return rc;
}

int drb_awsi_s3_head_object(drb_action_ctx *ctx, const json_t *args, json_t **result,
			    drb_err *err)
{
	const char *A = "aws.s3.head_object", *bucket = NULL, *key = NULL, *version = NULL;
	drb_aws_endpoint ep;
	drb_buf path, query;
	aws_req rq;
	aws_resp resp;
	json_t *o = NULL, *meta = NULL;
	const char *hk;
	json_t *hv;
	int rc, bad = 0, missing_ok = 0;

	*result = NULL;
	drb_buf_init(&path, 4096);
	drb_buf_init(&query, 2048);
	memset(&rq, 0, sizeof(rq));
	memset(&resp, 0, sizeof(resp));
	rc = s3_begin(ctx, args, A, 1, &ep, &path, &bucket, &key, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "version_id", &version, err);
	if (rc == 0)
		rc = drb_arg_bool_opt(args, "missing_ok", &missing_ok, err);
	if (rc != 0)
		goto out;
	if (version) {
		if (drb_buf_puts(&query, "versionId=") || drb_awsi_urlencode(&query, version)) {
			rc = drb_err_set(err, DRB_EINVAL, "%s: version_id too long", A);
			goto out;
		}
		rq.query = query.p;
	}
	rq.operation = "HeadObject";
	rq.method = "HEAD";
	rq.path = path.p;
	rq.raw_answer = 1;
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_call(ctx, &drb_awsi_s3, &ep, &rq, &resp, err);
	if (rc != 0 && err && err->cause == 404) {
		/* No object (or no such version): a clear not_found, or exists=false when the
		 * runbook polls for it (missing_ok). A missing bucket is always an error. */
		drb_err_clear(err);
		rc = bucket_exists(ctx, bucket, &ep, err);
		if (rc != 0)
			goto out;
		if (!missing_ok) {
			rc = drb_err_set(err, DRB_ENOTFOUND,
					 "s3 HeadObject: NotFound: no object '%.200s'%s%.100s in "
					 "bucket %.100s",
					 key, version ? " version " : "", version ? version : "",
					 bucket);
			goto out;
		}
		drb_awsi_set(o, "exists", json_false(), &bad);
		drb_awsi_set(o, "size", json_null(), &bad);
		drb_awsi_set(o, "etag", json_null(), &bad);
		drb_awsi_set(o, "last_modified", json_null(), &bad);
		drb_awsi_set(o, "version_id", json_null(), &bad);
		drb_awsi_set(o, "replication_status", json_null(), &bad);
		drb_awsi_set(o, "content_type", json_null(), &bad);
		drb_awsi_set(o, "storage_class", json_null(), &bad);
		drb_awsi_set(o, "metadata", json_object(), &bad);
	} else if (rc != 0) {
		goto out;
	} else {
		const char *len = resp_header(&resp, "content-length");
		char *end = NULL;
		long long n = len ? strtoll(len, &end, 10) : -1;

		meta = json_object();
		if (!meta) {
			rc = nomem(A, err);
			goto out;
		}
		json_object_foreach(json_object_get(resp.raw, "headers"), hk, hv)
		{
			if (!strncmp(hk, "x-amz-meta-", 11))
				drb_awsi_set(meta, hk + 11, json_string(json_string_value(hv)),
					     &bad);
		}
		drb_awsi_set(o, "exists", json_true(), &bad);
		drb_awsi_set(o, "size",
			     len && end && !*end && n >= 0 ? json_integer(n) : json_null(), &bad);
		drb_awsi_set(o, "etag", etag_json(&resp), &bad);
		drb_awsi_set(o, "last_modified",
			     http_date_json(resp_header(&resp, "last-modified")), &bad);
		drb_awsi_set(o, "version_id", hdr_str(&resp, "x-amz-version-id"), &bad);
		drb_awsi_set(o, "replication_status", hdr_str(&resp, "x-amz-replication-status"),
			     &bad);
		drb_awsi_set(o, "content_type", hdr_str(&resp, "content-type"), &bad);
		drb_awsi_set(o, "storage_class", hdr_str(&resp, "x-amz-storage-class"), &bad);
		drb_awsi_set(o, "metadata", meta, &bad);
		meta = NULL;
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(meta);
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	drb_buf_free(&query);
	return rc;
}

/* A metadata name S3 and HTTP both accept: a token of letters, digits and - _ . */
static int valid_meta_name(const char *s)
{
	if (!*s || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

/* A metadata value that goes in a header as it is: printable ASCII (S3 returns anything else
 * RFC 2047-encoded, so it would not read back the same). */
static int valid_meta_value(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

int drb_awsi_s3_put_object(drb_action_ctx *ctx, const json_t *args, json_t **result,
			   drb_err *err)
{
	const char *A = "aws.s3.put_object", *bucket = NULL, *key = NULL, *body = NULL,
		   *ctype = NULL, *k;
	const json_t *meta = json_object_get(args, "metadata"), *v;
	drb_aws_endpoint ep;
	drb_buf path;
	aws_resp resp;
	json_t *hdrs = NULL, *o = NULL;
	size_t total = 0;
	int rc, bad = 0;

	*result = NULL;
	drb_buf_init(&path, 4096);
	memset(&resp, 0, sizeof(resp));
	rc = s3_begin(ctx, args, A, 1, &ep, &path, &bucket, &key, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "body", &body, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "content_type", &ctype, err);
	if (rc != 0)
		goto out;
	hdrs = json_object();
	if (!hdrs) {
		rc = nomem(A, err);
		goto out;
	}
	if (json_object_size(meta) > AWS_S3_MAX_EXTRA_HEADERS) {
		rc = drb_err_set(err, DRB_EINVAL, "%s: metadata has %zu entries (at most %d)", A,
				 json_object_size(meta), AWS_S3_MAX_EXTRA_HEADERS);
		goto out;
	}
	json_object_foreach((json_t *)meta, k, v)
	{
		char name[160];

		if (!valid_meta_name(k) || !json_is_string(v) ||
		    !valid_meta_value(json_string_value(v))) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "%s: metadata.%.60s: names are letters, digits, - _ . and "
					 "values strings of printable ASCII",
					 A, k);
			goto out;
		}
		total += strlen(k) + json_string_length(v);
		snprintf(name, sizeof(name), "x-amz-meta-%s", k);
		drb_awsi_set(hdrs, name, json_string(json_string_value(v)), &bad);
	}
	if (total > 2048) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "%s: metadata is %zu bytes (S3 allows 2 KB of user metadata)", A,
				 total);
		goto out;
	}
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = put_at(ctx, &ep, path.p, body ? body : "", body ? strlen(body) : 0,
		    ctype ? ctype : "application/octet-stream", hdrs, &resp, err);
	if (rc != 0)
		goto out;
	o = json_object();
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	drb_awsi_set(o, "etag", etag_json(&resp), &bad);
	drb_awsi_set(o, "version_id", hdr_str(&resp, "x-amz-version-id"), &bad);
	if (bad) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(hdrs);
	drb_awsi_resp_free(&resp);
	drb_buf_free(&path);
	return rc;
}
