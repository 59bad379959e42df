/* aws.ecr.describe_images (ECR, JSON 1.1, AmazonEC2ContainerRegistry_V20150921): whether
 * an image (by tag or digest) is in a repository of the recovery region before services
 * are started there. A missing repository or image is an AWS error
 * (RepositoryNotFoundException, ImageNotFoundException): not_found, with the AWS code in
 * the message so that a runbook can tell which is missing. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <drbook/util.h>

#include "aws_int.h"

#define MAX_PAGES 50

static const aws_svc ecr = {"ecr",    "ecr", "api.ecr", "ECR",
			    AWS_JSON, 0,     NULL,	"AmazonEC2ContainerRegistry_V20150921"};

static int nomem(const char *action, drb_err *err)
{
	return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
}

static json_t *image_json(const json_t *d)
{
	json_t *o = json_object(), *tags = json_array();
	const json_t *t = json_object_get(d, "imagePushedAt"), *v;
	size_t i;
	int bad = 0;
	char when[32];

	if (!o || !tags) {
		json_decref(o);
		json_decref(tags);
		return NULL;
	}
	json_array_foreach(json_object_get(d, "imageTags"), i, v)
	{
		if (json_is_string(v) && json_array_append(tags, (json_t *)v) != 0)
			bad = 1;
	}
	drb_awsi_set(o, "digest",
		     json_is_string(json_object_get(d, "imageDigest"))
			 ? json_incref(json_object_get(d, "imageDigest"))
			 : json_null(),
		     &bad);
	drb_awsi_set(o, "tags", tags, &bad);
	if (json_is_number(t)) {
		drb_rfc3339_s((int64_t)llround(json_number_value(t) * 1000.0), when);
		drb_awsi_set(o, "pushed_at", json_string(when), &bad);
	} else {
		drb_awsi_set(o, "pushed_at", json_null(), &bad);
	}
	drb_awsi_set(o, "size_bytes",
		     json_is_integer(json_object_get(d, "imageSizeInBytes"))
			 ? json_incref(json_object_get(d, "imageSizeInBytes"))
			 : json_null(),
		     &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int drb_awsi_ecr_describe_images(drb_action_ctx *ctx, const json_t *args, json_t **result,
				 drb_err *err)
{
	const char *A = "aws.ecr.describe_images", *repo = NULL, *tag = NULL, *digest = NULL;
	const char *registry = NULL;
	drb_aws_endpoint ep;
	json_t *images = NULL, *next = NULL, *o = NULL;
	int rc, page, bad = 0;

	*result = NULL;
	rc = drb_awsi_begin(ctx, args, &ecr, A, &ep, err);
	if (rc == 0)
		rc = drb_arg_string(args, "repository", &repo, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "image_tag", &tag, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "image_digest", &digest, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "registry_id", &registry, err);
	if (rc != 0)
		goto out;
	images = json_array();
	if (!images) {
		rc = nomem(A, err);
		goto out;
	}
	for (page = 0; page < MAX_PAGES; page++) {
		aws_req rq = {.operation = "DescribeImages"};
		aws_resp resp;
		json_t *body = json_pack("{s:s}", "repositoryName", repo);
		const json_t *ds, *d, *tok;
		size_t i;

		if (body && registry)
			drb_awsi_set(body, "registryId", json_string(registry), &bad);
		if (body && (tag || digest)) {
			json_t *id = json_object();

			if (id && tag)
				drb_awsi_set(id, "imageTag", json_string(tag), &bad);
			if (id && digest)
				drb_awsi_set(id, "imageDigest", json_string(digest), &bad);
			drb_awsi_set(body, "imageIds", id ? json_pack("[o]", id) : NULL, &bad);
		}
		if (body && next)
			drb_awsi_set(body, "nextToken", json_incref(next), &bad);
		if (!body || bad) {
			json_decref(body);
			rc = nomem(A, err);
			goto out;
		}
		rq.json = body;
		rc = drb_awsi_call(ctx, &ecr, &ep, &rq, &resp, err);
		json_decref(body);
		if (rc != 0)
			goto out;
		ds = json_object_get(resp.json, "imageDetails");
		json_array_foreach(ds, i, d)
		{
			if (json_array_append_new(images, image_json(d)) != 0)
				bad = 1;
		}
		tok = json_object_get(resp.json, "nextToken");
		json_decref(next);
		next = json_is_string(tok) && json_string_length(tok) ? json_deep_copy(tok) : NULL;
		drb_awsi_resp_free(&resp);
		if (bad) {
			rc = nomem(A, err);
			goto out;
		}
		if (!next)
			break;
	}
	if (page == MAX_PAGES) {
		rc = drb_err_set(err, DRB_ELIMIT, "%s: more than %d pages of images", A, MAX_PAGES);
		goto out;
	}
	o = json_pack("{s:O}", "images", images);
	if (!o) {
		rc = nomem(A, err);
		goto out;
	}
	*result = o;
out:
	json_decref(next);
	json_decref(images);
	return rc;
}
