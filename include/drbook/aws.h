/* drbook AWS provider: public interface. Sectioned by part; each section is owned by the
 * source file named in its heading: the Signature Version 4 signer (sigv4.c), credentials
 * and configuration (creds.c), error mapping (errors.c) and the actions. */
#ifndef DRBOOK_AWS_H
#define DRBOOK_AWS_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/action.h>
#include <drbook/error.h>

/* ========================================================================================
 * Signature Version 4 (src/providers/aws/sigv4.c)
 *
 * A pure function from a request description to the headers that authenticate it: no
 * clock (unless amz_date is NULL), no I/O, no global state, safe from any thread. It follows
 * the official suite (awslabs/aws-c-auth v4 vectors) and agrees with botocore's SigV4Auth for
 * every request a correct client sends (see tests/unit/aws and tests/e2e).
 * ======================================================================================== */

/* Credentials. All borrowed. session_token may be NULL (long-term keys). */
typedef struct drb_sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token;
} drb_sigv4_creds;

/* One HTTP header. In drb_sigv4_req both strings are borrowed; in drb_sigv4_out they are
 * owned by the out struct. */
typedef struct drb_sigv4_header {
	const char *name;
	const char *value;
} drb_sigv4_header;

/* What to sign. All members are borrowed for the duration of the call.
 *
 * path is the request target's path exactly as it goes on the wire (already percent-encoded
 * by the caller, e.g. "/2013-04-01/hostedzone/Z1%2FX"); NULL or "" means "/". It must start
 * with '/'. For non-S3 services (normalize_path = 1) the signer removes "." and ".."
 * segments and repeated slashes, then percent-encodes the result once more (AWS's "double
 * encoding": '%' becomes "%25"). For S3 (normalize_path = 0) the path is used as given; only
 * bytes that cannot appear on the wire unencoded (outside A-Za-z0-9-_.~/%) are encoded.
 *
 * query is the raw query string without '?', as it goes on the wire (NULL or "" for none).
 * Pairs are split on '&', split on the first '=', percent-decoded and re-encoded with the
 * RFC 3986 unreserved set. '+' is a literal plus (RFC 3986), not a space: clients must send
 * spaces as "%20". A malformed escape ("%G1", "%4") is refused (DRB_EINVAL) because the
 * server's reading of it cannot be predicted.
 *
 * headers must include Host. Names are case-insensitive; repeated names are joined with ','
 * in the order given. Values are trimmed and runs of whitespace (SP, HT, CR, LF: folded
 * lines too) collapse to one space. Hop-by-hop headers and those proxies rewrite are never
 * signed (botocore's list): Connection, Expect, Keep-Alive, Proxy-Authenticate,
 * Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade, User-Agent,
 * X-Amzn-Trace-Id. A line break inside a value is refused unless it is a fold (followed
 * by SP or HT), so a value cannot smuggle in a header of its own. The caller must not
 * pass Authorization, X-Amz-Date or X-Amz-Security-Token: the signer produces them
 * (DRB_EINVAL otherwise). A caller-supplied X-Amz-Content-SHA256 is signed and its value is
 * used as the payload hash (S3's "UNSIGNED-PAYLOAD" / precomputed hashes).
 *
 * amz_date is the ISO 8601 basic timestamp "YYYYMMDDTHHMMSSZ"; NULL means now (UTC). */
typedef struct drb_sigv4_req {
	const char *method; /* "GET", "POST", ... (upper-cased in the canonical request) */
	const char *path;
	const char *query;
	const drb_sigv4_header *headers;
	size_t n_headers;
	const void *body; /* may be NULL when body_len is 0 */
	size_t body_len;
	const char *region;	/* "eu-west-1"; Route 53 signs for "us-east-1" */
	const char *service;	/* signing name: "rds", "ecs", "route53", "sns", "sts", "s3" */
	const char *amz_date;	/* "20150830T123600Z" or NULL */
	int normalize_path;	/* 1 for every service but S3 (see path above) */
	int add_content_sha256; /* 1: add and sign X-Amz-Content-SHA256 (S3 habit; 0 otherwise) */
	int omit_session_token; /* 1: X-Amz-Security-Token is added but not signed (the few
				   services that want it appended after signing) */
} drb_sigv4_req;

/* The result. Everything is owned by the struct: release with drb_sigv4_out_free. */
typedef struct drb_sigv4_out {
	char *canonical_request; /* for debugging and the test suites; never log it with a token */
	char *string_to_sign;
	char signature[65];	   /* lowercase hex */
	const char *authorization; /* header mode: the Authorization value (points into
				      headers, freed with them); presign: NULL */
	char *query;		   /* presign only: the full query string to send, else NULL */
	/* Headers the caller must add to the request, in this order: X-Amz-Date,
	 * X-Amz-Content-SHA256 (when added), X-Amz-Security-Token (when a token is set),
	 * Authorization. Presigning adds none (the same fields travel in the query). */
	drb_sigv4_header *headers;
	size_t n_headers;
} drb_sigv4_out;

/* Signs r with c in header mode. Fills *out (zeroed first; on error it is left empty).
 * Errors: DRB_EINVAL (missing host header, method, region, service or credentials; a bad
 * amz_date; a path not starting with '/'; a malformed query escape; a header name that is
 * not an HTTP token; a header the signer owns), DRB_ELIMIT (a canonical request over 1 MiB
 * of headers and query: sign nothing that large), DRB_ENOMEM. The secret and derived keys
 * are wiped before returning. */
int drb_sigv4_sign(const drb_sigv4_req *r, const drb_sigv4_creds *c, drb_sigv4_out *out,
		   drb_err *err);

/* Presigned-URL mode (query authentication), e.g. for RDS IAM auth tokens: the X-Amz-*
 * parameters go in the query, which out->query returns complete (the caller's query first,
 * then X-Amz-Algorithm, -Credential, -Date, -SignedHeaders, -Expires, -Security-Token,
 * -Signature, as aws-c-auth orders them). expires_s is 1..604800. The signed headers are
 * the caller's (Host at least). The payload hash is of the body unless the caller supplies
 * X-Amz-Content-SHA256 (S3 presigned URLs use "UNSIGNED-PAYLOAD"). r->add_content_sha256
 * must be 0, and the query must not already hold any of those X-Amz-* keys (DRB_EINVAL).
 * Other errors as drb_sigv4_sign. */
int drb_sigv4_presign(const drb_sigv4_req *r, const drb_sigv4_creds *c, long expires_s,
		      drb_sigv4_out *out, drb_err *err);

/* Frees what *out owns and zeroes it; out may be NULL. */
void drb_sigv4_out_free(drb_sigv4_out *out);

/* Derives the signing key kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request"). date is "YYYYMMDD". Exposed for tests and for callers that
 * cache the key per day; wipe it with OPENSSL_cleanse when done. DRB_EINVAL on NULL/empty
 * arguments or a secret over 256 bytes. */
int drb_sigv4_signing_key(const char *secret_key, const char *date, const char *region,
			  const char *service, unsigned char out[32], drb_err *err);

/* ======================================================================================== */

/* ========================================================================================
 * Credentials and configuration (src/providers/aws/creds.c, credsrc.c)
 *
 * The way AWS users expect, in botocore's order (docs/aws.md has the whole story):
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; the profile
 * (AWS_DEFAULT_PROFILE, AWS_PROFILE, "default") as botocore merges the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials) over the config file
 * (AWS_CONFIG_FILE, default ~/.aws/config, sections "[profile NAME]" except "[default]"):
 * role_arn with source_profile or credential_source (STS AssumeRole), web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE / web_identity_token_file, AssumeRoleWithWebIdentity), SSO
 * (sso_* keys or sso_session, the token cache of `aws sso login`), static keys,
 * credential_process; then the container endpoint (AWS_CONTAINER_CREDENTIALS_*) and EC2
 * instance metadata (IMDSv2). AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>;
 * per-connection region, endpoint_url and profile. Temporary credentials are cached per
 * process and refreshed before they expire (15 min advisory, 10 min mandatory, as
 * botocore), safely from any thread. Secrets are wiped (OPENSSL_cleanse) when freed and
 * never appear in a message.
 * ======================================================================================== */

/* A parsed INI file (the botocore dialect: "[section]", "key = value" or "key=value", full
 * line comments starting with '#' or ';', keys case-insensitive (stored lower-case),
 * section names case-sensitive, indented lines continue the previous key and are ignored
 * (nested "s3 =" blocks), the last duplicate wins). Owned by the caller. */
typedef struct drb_aws_ini drb_aws_ini;

/* Parses text (len bytes, need not be NUL-terminated). A line that is neither a section,
 * a key, a comment nor blank is DRB_EINVAL naming its line number (never its content: it
 * may be a secret). */
int drb_aws_ini_parse(const char *text, size_t len, drb_aws_ini **out, drb_err *err);
/* Reads and parses path (at most 1 MiB). A path that is not a regular file (missing,
 * /dev/null, a folder) is not an error: *out is an empty INI, as botocore reads it. A
 * regular file that cannot be read or is too large: DRB_EIO / DRB_ELIMIT with the path. */
int drb_aws_ini_load(const char *path, drb_aws_ini **out, drb_err *err);
/* The value of key in section, borrowed from ini, or NULL. */
const char *drb_aws_ini_get(const drb_aws_ini *ini, const char *section, const char *key);
/* Wipes every value and frees; NULL is fine. */
void drb_aws_ini_free(drb_aws_ini *ini);

/* Credentials, owned (release with drb_aws_creds_clear). source says where they came from
 * ("environment", "profile prod in /root/.aws/credentials", "assumed role ARN (profile
 * p)"), for messages. */
typedef struct drb_aws_creds {
	char *access_key;
	char *secret_key;
	char *session_token;  /* NULL for long-term keys */
	long long expiration; /* Unix time (UTC) they stop working; 0: long-term */
	char source[300];
} drb_aws_creds;

/* Resolves the credentials of one call, in botocore's order (see above and docs/aws.md).
 * profile NULL or "": the environment keys first, then the profile AWS_DEFAULT_PROFILE /
 * AWS_PROFILE (or "default"). A named profile (a connection's `profile:`) skips the
 * environment keys and the web identity variables, as the AWS CLI's --profile does.
 * region is the call's region, used for the STS calls the chain makes (assume-role, web
 * identity); NULL: the configured region, else STS's global endpoint, as botocore.
 * Temporary credentials come from the process-wide cache while they have more than 15
 * minutes left; within 15 minutes one caller refreshes them (the others go on with the
 * current ones; a failed refresh is ignored); within 10 minutes every caller waits for the
 * refresh and its failure is the caller's error. Errors: DRB_EDENIED when none are found
 * (the message names the places looked at) or a source refused (an expired SSO login, STS
 * AccessDenied, a failing credential_process), DRB_EINVAL for a bad configuration (a
 * half-set pair, a source_profile loop, mfa_serial, a container URL that is not allowed),
 * DRB_ETRANSIENT / DRB_ETIMEOUT when a source did not answer. */
int drb_aws_creds_resolve(const char *profile, const char *region, drb_aws_creds *out,
			  drb_err *err);
/* drb_aws_creds_resolve(profile, NULL, out, err). */
int drb_aws_creds_load(const char *profile, drb_aws_creds *out, drb_err *err);
/* Wipes and frees what c owns; c may be NULL. */
void drb_aws_creds_clear(drb_aws_creds *c);
/* Wipes and forgets every cached temporary credential. For tests and the end of a program:
 * no other thread may be resolving credentials meanwhile. */
void drb_aws_creds_reset(void);

/* Endpoint kinds for drb_aws_resolve. */
enum {
	DRB_AWS_REGIONAL = 0, /* https://PREFIX.REGION.amazonaws.com */
	DRB_AWS_GLOBAL = 1,   /* Route 53: https://PREFIX.amazonaws.com, signed for us-east-1 */
	/* STS as botocore resolves it: regional (sts.REGION.amazonaws.com) unless
	 * AWS_STS_REGIONAL_ENDPOINTS / sts_regional_endpoints is "legacy" and the region is
	 * one of the 16 that used the global endpoint, or no region is configured at all, or
	 * the region is "aws-global": then https://sts.amazonaws.com signed for us-east-1. */
	DRB_AWS_STS = 2
};

/* Where one call goes. */
typedef struct drb_aws_endpoint {
	char region[64]; /* the call's region, also the signing region */
	char
	    url[512]; /* base URL without a trailing slash: "https://rds.eu-west-1.amazonaws.com" */
	char host[300];	    /* the Host header: the URL's host[:port] */
	char profile[128];  /* the connection's profile or "" (default chain) */
	int custom;	    /* 1 when an endpoint_url / AWS_ENDPOINT_URL* was used */
	int region_default; /* 1 when no setting named a region (us-east-1 was assumed) */
} drb_aws_endpoint;

/* Resolves region and endpoint for one service.
 *   connection  the connection spec object (kind aws: region, endpoint_url, profile) or NULL
 *   region_arg  the action's `region` argument or NULL
 *   host_prefix the service's endpoint prefix: "rds", "ecs", "monitoring", "route53"...
 *   env_id      the AWS_ENDPOINT_URL_<env_id> suffix: "RDS", "ROUTE_53", "CLOUDWATCH"...
 *   kind        DRB_AWS_REGIONAL, DRB_AWS_GLOBAL (Route 53: the region is always
 *               us-east-1 whatever the argument says) or DRB_AWS_STS (see above)
 * Region: region_arg, the connection's, AWS_REGION, AWS_DEFAULT_REGION, the profile's
 * `region` in the config file, "us-east-1". Endpoint: the connection's endpoint_url,
 * AWS_ENDPOINT_URL_<env_id>, AWS_ENDPOINT_URL, the profile's `endpoint_url`, then
 * https://<host_prefix>.<region>.amazonaws.com (.amazonaws.com.cn for cn-*). DRB_EINVAL for
 * a region that is not [a-z0-9-], an endpoint that is not http(s)://host[:port][/], a bad
 * sts_regional_endpoints, or a bad connection spec. */
int drb_aws_resolve(const json_t *connection, const char *region_arg, const char *host_prefix,
		    const char *env_id, int kind, drb_aws_endpoint *out, drb_err *err);

/* ========================================================================================
 * AWS errors (src/providers/aws/errors.c)
 *
 * Every protocol's error answer reduced to code, message and request id, and the code
 * mapped to the drb_code callers branch on.
 * ======================================================================================== */

typedef struct drb_aws_error {
	char code[128]; /* "InvalidDBInstanceState"; "HTTP503" when the body said nothing */
	char message[512];
	char request_id[128]; /* "" when unknown */
} drb_aws_error;

/* Reads an error answer: Query/REST-XML (<ErrorResponse><Error><Code>, EC2's
 * <Response><Errors><Error>) or JSON 1.1 ({"__type": "ns#Code", "message": ...} and the
 * x-amzn-errortype header). request_id_hdr (x-amzn-requestid / x-amz-request-id) may be
 * NULL. Always fills *out (falls back to "HTTP<status>"); returns 0. */
int drb_aws_error_parse(long status, const char *body, size_t len, const char *request_id_hdr,
			const char *errortype_hdr, drb_aws_error *out);
/* 1 for the throttling codes the client retries: Throttling, ThrottlingException,
 * PriorRequestNotComplete, RequestLimitExceeded, TooManyRequestsException,
 * RequestThrottled, RequestThrottledException, SlowDown. */
int drb_aws_is_throttle(const char *code);
/* The drb_code for an error answer: throttling and 5xx DRB_ETRANSIENT; AccessDenied,
 * AccessDeniedException, UnauthorizedOperation, SignatureDoesNotMatch,
 * InvalidClientTokenId, ExpiredToken, ExpiredTokenException, UnrecognizedClientException,
 * IncompleteSignature, MissingAuthenticationToken, InvalidSignatureException, AuthFailure
 * and a bare 401/403 DRB_EDENIED; codes containing "NotFound" or starting "NoSuch"
 * DRB_ENOTFOUND; any other DRB_ERR. */
int drb_aws_error_code(const char *code, long status);

/* ========================================================================================
 * Actions (src/providers/aws/actions.c and one file per service)
 *
 * The aws.* actions of DESIGN.md's catalog v1 plus aws.route53.get_change (ro), for the
 * engine's registry. Every request goes through ctx->seam; the call record's request is a
 * redacted description {method, url, params | target + body | body} without any header.
 * ======================================================================================== */

/* ---- run leases (DynamoDB) ------------------------------------------------------------------
 * A lease per lock key in a DynamoDB table (DRBOOK_LEASE_TABLE): item key attribute `key`
 * (string), `holder` (a one-line note), `run` (run id), `expires` (epoch ms) and `token` (the
 * fencing token, incremented by every take). Calls go through ctx->seam like every AWS call. */
typedef struct drb_aws_lease_cfg {
	const char *table;
	const char *region; /* NULL: the environment's region */
	const char *run_id; /* the holder's run id: a resume of the same run takes it back */
	const char *holder; /* "run R (operator O on host H, pid P)" */
	double ttl_s;	    /* a holder that stops renewing loses the lease after this */
} drb_aws_lease_cfg;

/* Takes key: free, expired or already this run's. Returns 0 with *token (>= 1), or
 * DRB_EDENIED naming the holder when another run holds it, or any error of the call (also
 * reported as DRB_EDENIED: no lease, no run). */
int drb_aws_lease_take(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
		       long long *token, drb_err *err);
/* Reads key's lease without changing it (GetItem, consistent): out gets "free", "free
 * (expired lease, token T)" or the holder and its time left. Errors of the call. */
int drb_aws_lease_peek(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
		       char *out, size_t cap, drb_err *err);
/* Extends the lease by ttl_s while it still carries token; DRB_EDENIED when it was taken over. */
int drb_aws_lease_renew(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			long long token, drb_err *err);
/* Expires the lease now (keeping its token, so fencing tokens only grow). */
int drb_aws_lease_release(drb_action_ctx *ctx, const drb_aws_lease_cfg *cfg, const char *key,
			  long long token, drb_err *err);

/* ---- S3 objects (s3.c) ------------------------------------------------------------------
 * The few S3 calls drbook itself needs (evidence: docs/audit.md "Evidence in S3"). Calls go
 * through ctx->seam like every AWS call. region NULL: the environment's; the endpoint is
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (path-style addressing) or the regional S3 host.
 * A bucket name that is not 3-63 of [a-z0-9.-] is DRB_EINVAL; AWS errors as for actions
 * ("s3 PutObject: AccessDenied: ..."), NoSuchKey/NoSuchBucket DRB_ENOTFOUND. */

/* PutObject of len bytes with Content-MD5 (required under Object Lock). content_type NULL:
 * application/octet-stream. */
int drb_aws_s3_put(drb_action_ctx *ctx, const char *region, const char *bucket, const char *key,
		   const void *body, size_t len, const char *content_type, drb_err *err);
/* GetObject (at most 256 MiB). *body (NUL-terminated, *len bytes without the NUL) is the
 * caller's to free. Bytes that are not UTF-8 come back as U+FFFD (an audit log is ASCII). */
int drb_aws_s3_get(drb_action_ctx *ctx, const char *region, const char *bucket, const char *key,
		   char **body, size_t *len, drb_err *err);
/* ListObjectsV2 of every key under prefix (all pages). *keys, an array of strings, is the
 * caller's (json_decref). */
int drb_aws_s3_list(drb_action_ctx *ctx, const char *region, const char *bucket, const char *prefix,
		    json_t **keys, drb_err *err);

/* The table, ended by a row whose name is NULL; every row has its schema. */
extern const drb_action drb_aws_actions[];
/* The row of name, or NULL. Borrowed (static). */
const drb_action *drb_aws_action(const char *name);

#endif
