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
		root = resp.doc ? xmlDocGetRootElement(resp.doc) : NULL;
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
