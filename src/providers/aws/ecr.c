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
	json_t *body = NULL, *images = NULL;
	int rc, bad = 0;

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
	body = json_pack("{s:s}", "repositoryName", repo);
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
	if (!body || bad) {
		rc = nomem(A, err);
		goto out;
	}
	rc = drb_awsi_pages(ctx, &ecr, &ep,
			    &(const aws_pages){.operation = "DescribeImages", .token = "nextToken",
					       .items = {"imageDetails"}, .from_json = image_json,
					       .what = "images"},
			    body, &images, err);
	if (rc != 0)
		goto out;
	*result = json_pack("{s:O}", "images", images);
	if (!*result)
		rc = nomem(A, err);
out:
	json_decref(images);
	json_decref(body);
	return rc;
}
