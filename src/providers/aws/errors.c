/* AWS error answers: reading code, message and request id out of every protocol's error
 * shape, and the one table that maps AWS codes to the drb codes callers branch on (which
 * also decides what the HTTP client retries: throttling only, never a denial). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libxml/tree.h>

#include "aws_int.h"

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static void from_xml(const char *body, size_t len, drb_aws_error *out)
{
	xmlDoc *doc = NULL;
	xmlNode *root, *e;
	drb_err ignored = {0};

	if (drb_awsx_parse(body, len, &doc, &ignored) != 0)
		return;
	root = drb_awsx_root(doc);
	/* Query and REST-XML: <ErrorResponse><Error>; EC2 style: <Response><Errors><Error>;
	 * S3 style: <Error> at the root. */
	e = drb_awsx_find(root, "Error");
	if (e) {
		drb_awsx_text(e, "Code", out->code, sizeof(out->code));
		drb_awsx_text(e, "Message", out->message, sizeof(out->message));
	}
	if (!out->request_id[0]) {
		xmlNode *rid = drb_awsx_find(root, "RequestId");

		if (!rid)
			rid = drb_awsx_find(root, "RequestID");
		if (rid)
			drb_awsx_text(rid, NULL, out->request_id, sizeof(out->request_id));
	}
	drb_awsx_free(doc);
}

/* "com.amazonaws.ecs#ClusterNotFoundException" and "X:http://..." (the errortype header)
 * both reduce to the bare code. */
static void bare_code(char *code)
{
	char *hash = strrchr(code, '#'), *colon;

	if (hash)
		memmove(code, hash + 1, strlen(hash + 1) + 1);
	colon = strchr(code, ':');
	if (colon)
		*colon = '\0';
}

static void from_json(const char *body, size_t len, drb_aws_error *out)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *t, *m;

	if (!json_is_object(j))
		goto out;
	t = json_string_value(json_object_get(j, "__type"));
	if (!t)
		t = json_string_value(json_object_get(j, "code"));
	m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(json_object_get(j, "Message"));
	if (t)
		copy(out->code, sizeof(out->code), t);
	if (m)
		copy(out->message, sizeof(out->message), m);
out:
	json_decref(j);
}

int drb_aws_error_parse(long status, const char *body, size_t len, const char *request_id_hdr,
			const char *errortype_hdr, drb_aws_error *out)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	copy(out->request_id, sizeof(out->request_id), request_id_hdr);
	while (body && i < len &&
	       (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (body && i < len && body[i] == '<')
		from_xml(body, len, out);
	else if (body && i < len && body[i] == '{')
		from_json(body, len, out);
	if (!out->code[0] && errortype_hdr && *errortype_hdr)
		copy(out->code, sizeof(out->code), errortype_hdr);
	bare_code(out->code);
	if (!out->code[0])
		snprintf(out->code, sizeof(out->code), "HTTP%ld", status);
	return 0;
}

static int in_list(const char *code, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (!strcmp(code, list[i]))
			return 1;
	return 0;
}

int drb_aws_is_throttle(const char *code)
{
	static const char *const throttle[] = {"Throttling",
					       "ThrottlingException",
					       "ThrottledException",
					       "PriorRequestNotComplete",
					       "RequestLimitExceeded",
					       "TooManyRequestsException",
					       "RequestThrottled",
					       "RequestThrottledException",
					       "SlowDown",
					       NULL};

	return code && in_list(code, throttle);
}

int drb_aws_error_code(const char *code, long status)
{
	static const char *const denied[] = {"AccessDenied",
					     "AccessDeniedException",
					     "UnauthorizedOperation",
					     "SignatureDoesNotMatch",
					     "InvalidClientTokenId",
					     "ExpiredToken",
					     "ExpiredTokenException",
					     "UnrecognizedClientException",
					     "IncompleteSignature",
					     "MissingAuthenticationToken",
					     "InvalidSignatureException",
					     "AuthFailure",
					     "InvalidAccessKeyId",
					     NULL};

	if (!code)
		code = "";
	/* Denials first: a 403 is never worth retrying, whatever else the body says. */
	if (in_list(code, denied))
		return DRB_EDENIED;
	if (drb_aws_is_throttle(code) || status >= 500 || status == 429)
		return DRB_ETRANSIENT;
	if (strstr(code, "NotFound") || !strncmp(code, "NoSuch", 6))
		return DRB_ENOTFOUND;
	if (status == 401 || status == 403)
		return DRB_EDENIED;
	return DRB_ERR;
}
