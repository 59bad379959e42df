/* Private to src/providers/aws: the credential sources that fetch temporary credentials
 * (credsrc.c: instance metadata, container endpoint, STS AssumeRole and
 * AssumeRoleWithWebIdentity, the SSO portal, credential_process), called by the chain in
 * creds.c. Each fetcher fills a drb_aws_creds (owned by the caller, expiration set when the
 * source gives one) or fails with a message that never holds a secret. None of these
 * calls goes through the seam: they run inside the perform callback of the call that needs
 * the credentials, so they are never recorded and a replay never makes them. */
#ifndef DRB_AWS_CREDS_INT_H
#define DRB_AWS_CREDS_INT_H

#include <drbook/aws.h>

/* Instance metadata (IMDSv2 with botocore's IMDSv1 fallback). base_url without the
 * "latest/..." part; timeout_s and attempts as botocore's metadata_service_timeout and
 * metadata_service_num_attempts; v1_disabled refuses the fallback. DRB_ENOTFOUND when the
 * service gave no credentials (not on EC2, no role): the chain goes on, as botocore's does. */
int drb_awsc_imds_fetch(const char *base_url, double timeout_s, int attempts, int v1_disabled,
			drb_aws_creds *out, drb_err *err);

/* The container endpoint's URL: relative_uri (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) is
 * always fetched from http://169.254.170.2, as botocore does; otherwise full_uri must be
 * https, or http to a loopback address or one of 169.254.170.2, 169.254.170.23,
 * fd00:ec2::23, localhost. DRB_EINVAL otherwise. out gets the URL. */
int drb_awsc_container_url(const char *relative_uri, const char *full_uri, char *out, size_t n,
			   drb_err *err);
/* GET url with Authorization: auth_token (may be NULL; refused with CR or LF), 2 s
 * timeout, 3 attempts 1 s apart. Every failure is an error (the chain stops). */
int drb_awsc_container_fetch(const char *url, const char *auth_token, drb_aws_creds *out,
			     drb_err *err);

/* One STS call the chain makes. sts is the STS endpoint (drb_aws_resolve with kind
 * DRB_AWS_STS). AssumeRole is signed with source; AssumeRoleWithWebIdentity is sent
 * unsigned (source NULL) with web_identity_token. duration_s 0 = STS's default; external_id
 * may be NULL. */
typedef struct drb_awsc_assume {
	const char *role_arn;
	const char *session_name;
	const char *external_id;
	long duration_s;
	const char *web_identity_token; /* set: AssumeRoleWithWebIdentity */
} drb_awsc_assume;
int drb_awsc_sts_assume(const drb_aws_endpoint *sts, const drb_aws_creds *source,
			const drb_awsc_assume *a, drb_aws_creds *out, drb_err *err);

/* GetRoleCredentials on the SSO portal (portal: its endpoint) with the bearer token. */
int drb_awsc_sso_fetch(const drb_aws_endpoint *portal, const char *access_token,
		       const char *account_id, const char *role_name, drb_aws_creds *out,
		       drb_err *err);

/* SSO-OIDC CreateToken with grantType refresh_token (oidc: its endpoint), unsigned, as
 * botocore renews an sso_session's access token. *out gets the answer object
 * ({accessToken, expiresIn, refreshToken?}; the caller wipes and frees it). */
int drb_awsc_sso_oidc_refresh(const drb_aws_endpoint *oidc, const char *client_id,
			      const char *client_secret, const char *refresh_token, json_t **out,
			      drb_err *err);

/* Splits a command line the way botocore does on POSIX (Python's shlex.split: whitespace,
 * '...' literal, "..." with \" \\ escapes, \x outside quotes, no shell). *argv_out is a
 * NULL-terminated array to free with drb_awsc_argv_free. DRB_EINVAL for an unclosed quote
 * or a trailing backslash, or an empty command. */
int drb_awsc_shell_split(const char *cmd, char ***argv_out, drb_err *err);
void drb_awsc_argv_free(char **argv);
/* Runs credential_process (no shell, at most 60 s, stdout capped at 64 KiB) and reads its
 * JSON (Version 1). */
int drb_awsc_process_fetch(const char *command, drb_aws_creds *out, drb_err *err);

/* Sets the three strings of out (copies); wipes and clears out on failure. */
int drb_awsc_set(drb_aws_creds *out, const char *ak, const char *sk, const char *token,
		 drb_err *err);

#endif
