/* AWS credentials and configuration: the INI dialect of ~/.aws/credentials and ~/.aws/config,
 * the credential chain (environment, then profile) and the resolution of region and endpoint
 * for one call. Secrets live only in drb_aws_creds and INI values, both wiped when freed. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#define INI_MAX_BYTES ((size_t)1 << 20)

typedef struct ini_entry {
	char *section, *key, *value;
} ini_entry;

struct drb_aws_ini {
	ini_entry *e;
	size_t n, cap;
};

/* ---- INI ------------------------------------------------------------------------------- */

static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void drb_aws_ini_free(drb_aws_ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->n; i++) {
		free(ini->e[i].section);
		free(ini->e[i].key);
		wipe_free(ini->e[i].value);
	}
	free(ini->e);
	free(ini);
}

static char *dup_trim(const char *s, size_t n)
{
	char *o;

	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	o = malloc(n + 1);
	if (!o)
		return NULL;
	memcpy(o, s, n);
	o[n] = '\0';
	return o;
}

/* Sets section.key = value, replacing an earlier value (last one wins, as configparser). */
static int ini_set(drb_aws_ini *ini, const char *section, char *key, char *value)
{
	for (size_t i = 0; i < ini->n; i++) {
		if (!strcmp(ini->e[i].section, section) && !strcmp(ini->e[i].key, key)) {
			wipe_free(ini->e[i].value);
			ini->e[i].value = value;
			free(key);
			return 0;
		}
	}
	if (ini->n == ini->cap) {
		size_t nc = ini->cap ? ini->cap * 2 : 16;
		ini_entry *ne = realloc(ini->e, nc * sizeof(*ne));

		if (!ne)
			return DRB_ENOMEM;
		ini->e = ne;
		ini->cap = nc;
	}
	ini->e[ini->n].section = drb_strdup(section);
	if (!ini->e[ini->n].section)
		return DRB_ENOMEM;
	ini->e[ini->n].key = key;
	ini->e[ini->n].value = value;
	ini->n++;
	return 0;
}

int drb_aws_ini_parse(const char *text, size_t len, drb_aws_ini **out, drb_err *err)
{
	drb_aws_ini *ini = NULL;
	char *section = NULL, *key = NULL, *value = NULL;
	size_t pos = 0, lineno = 0;
	int rc = 0, have_key = 0;

	*out = NULL;
	ini = calloc(1, sizeof(*ini));
	if (!ini) {
		rc = drb_err_set(err, DRB_ENOMEM, "aws config: out of memory");
		goto out;
	}
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		size_t i = 0;

		pos += n + (nl ? 1 : 0);
		lineno++;
		if (n && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\0', n)) {
			rc = drb_err_set(err, DRB_EINVAL, "line %zu: NUL byte", lineno);
			goto out;
		}
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == n || line[i] == '#' || line[i] == ';')
			continue;
		if (i > 0) {
			/* A continuation (nested "s3 =" settings): part of the previous key,
			 * which none of ours uses; outside a key it is malformed. */
			if (!have_key) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "line %zu: indented line outside a setting",
						 lineno);
				goto out;
			}
			continue;
		}
		if (line[0] == '[') {
			const char *close = memchr(line, ']', n);
			size_t k;

			if (!close) {
				rc = drb_err_set(err, DRB_EINVAL, "line %zu: section without ']'",
						 lineno);
				goto out;
			}
			for (k = (size_t)(close - line) + 1; k < n; k++)
				if (!isspace((unsigned char)line[k]))
					break;
			if (k < n && line[k] != '#' && line[k] != ';') {
				rc = drb_err_set(err, DRB_EINVAL, "line %zu: text after ']'",
						 lineno);
				goto out;
			}
			free(section);
			section = dup_trim(line + 1, (size_t)(close - line) - 1);
			if (!section) {
				rc = drb_err_set(err, DRB_ENOMEM, "aws config: out of memory");
				goto out;
			}
			have_key = 0;
			continue;
		}
		{
			const char *eq = memchr(line, '=', n);

			if (!eq || !section) {
				rc = drb_err_set(err, DRB_EINVAL,
						 !section ? "line %zu: setting before any [section]"
							  : "line %zu: expected 'key = value'",
						 lineno);
				goto out;
			}
			key = dup_trim(line, (size_t)(eq - line));
			value = dup_trim(eq + 1, n - (size_t)(eq - line) - 1);
			if (!key || !value) {
				rc = drb_err_set(err, DRB_ENOMEM, "aws config: out of memory");
				goto out;
			}
			if (!key[0]) {
				rc = drb_err_set(err, DRB_EINVAL, "line %zu: empty key", lineno);
				goto out;
			}
			for (char *p = key; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (ini_set(ini, section, key, value) != 0) {
				/* key and value stay ours: freed below */
				rc = drb_err_set(err, DRB_ENOMEM, "aws config: out of memory");
				goto out;
			}
			key = value = NULL;
			have_key = 1;
		}
	}
	*out = ini;
	ini = NULL;
out:
	free(section);
	free(key);
	wipe_free(value);
	drb_aws_ini_free(ini);
	return rc;
}

int drb_aws_ini_load(const char *path, drb_aws_ini **out, drb_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = drb_file_read(path, INI_MAX_BYTES, &buf, &len, err);
	if (rc == DRB_ENOTFOUND) {
		drb_err_clear(err);
		return drb_aws_ini_parse("", 0, out, err);
	}
	if (rc != 0)
		return rc;
	rc = drb_aws_ini_parse(buf, len, out, err);
	if (rc != 0)
		drb_err_prefix(err, "%s: ", path);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

const char *drb_aws_ini_get(const drb_aws_ini *ini, const char *section, const char *key)
{
	if (!ini || !section || !key)
		return NULL;
	for (size_t i = 0; i < ini->n; i++)
		if (!strcmp(ini->e[i].section, section) && !strcasecmp(ini->e[i].key, key))
			return ini->e[i].value;
	return NULL;
}

/* ---- files and profiles ------------------------------------------------------------------ */

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The path of the credentials (which = 0) or config (1) file. */
static void aws_file(int which, char *out, size_t n)
{
	const char *p = env_nonempty(which ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE");
	const char *home = env_nonempty("HOME");

	if (p && p[0] == '~' && p[1] == '/' && home)
		snprintf(out, n, "%s%s", home, p + 1);
	else if (p)
		snprintf(out, n, "%s", p);
	else
		snprintf(out, n, "%s/.aws/%s", home ? home : "", which ? "config" : "credentials");
}

static const char *default_profile(void)
{
	const char *p = env_nonempty("AWS_PROFILE");

	return p ? p : "default";
}

/* The config file's section name for a profile: "default" or "profile NAME" (a bare
 * "[NAME]" is accepted too, as botocore does for backwards compatibility). */
static const char *config_get(const drb_aws_ini *cfg, const char *profile, const char *key)
{
	char sect[200];
	const char *v;

	if (strcmp(profile, "default") != 0) {
		snprintf(sect, sizeof(sect), "profile %s", profile);
		v = drb_aws_ini_get(cfg, sect, key);
		if (v)
			return v;
	}
	return drb_aws_ini_get(cfg, profile, key);
}

void drb_aws_creds_clear(drb_aws_creds *c)
{
	if (!c)
		return;
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

static int set_creds(drb_aws_creds *c, const char *ak, const char *sk, const char *tok,
		     drb_err *err)
{
	c->access_key = drb_strdup(ak);
	c->secret_key = drb_strdup(sk);
	c->session_token = tok && *tok ? drb_strdup(tok) : NULL;
	if (!c->access_key || !c->secret_key || (tok && *tok && !c->session_token)) {
		drb_aws_creds_clear(c);
		return drb_err_set(err, DRB_ENOMEM, "aws credentials: out of memory");
	}
	return 0;
}

/* Looks for the key pair of profile in one file's INI; 1 when found and set. */
static int creds_from_ini(const drb_aws_ini *ini, const char *section_profile, int config,
			  const char *path, drb_aws_creds *out, int *rc, drb_err *err)
{
	const char *ak, *sk, *tok;

	if (config) {
		ak = config_get(ini, section_profile, "aws_access_key_id");
		sk = config_get(ini, section_profile, "aws_secret_access_key");
		tok = config_get(ini, section_profile, "aws_session_token");
	} else {
		ak = drb_aws_ini_get(ini, section_profile, "aws_access_key_id");
		sk = drb_aws_ini_get(ini, section_profile, "aws_secret_access_key");
		tok = drb_aws_ini_get(ini, section_profile, "aws_session_token");
	}
	if (!ak && !sk)
		return 0;
	if (!ak || !sk || !*ak || !*sk) {
		*rc = drb_err_set(err, DRB_EINVAL,
				  "aws credentials: profile '%s' in %s has only one of "
				  "aws_access_key_id and aws_secret_access_key",
				  section_profile, path);
		return 1;
	}
	*rc = set_creds(out, ak, sk, tok, err);
	if (*rc == 0)
		snprintf(out->source, sizeof(out->source), "profile %s in %s", section_profile,
			 path);
	return 1;
}

int drb_aws_creds_load(const char *profile, drb_aws_creds *out, drb_err *err)
{
	drb_aws_ini *cred = NULL, *cfg = NULL;
	char cpath[1024], fpath[1024];
	const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!profile || !*profile) {
		if (ak && sk) {
			rc = set_creds(out, ak, sk, env_nonempty("AWS_SESSION_TOKEN"), err);
			if (rc == 0)
				snprintf(out->source, sizeof(out->source), "environment");
			goto out;
		}
		if (ak || sk) {
			rc =
			    drb_err_set(err, DRB_EINVAL, "aws credentials: %s is set but %s is not",
					ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
					ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
			goto out;
		}
		profile = default_profile();
	}
	aws_file(0, cpath, sizeof(cpath));
	aws_file(1, fpath, sizeof(fpath));
	rc = drb_aws_ini_load(cpath, &cred, err);
	if (rc == 0 && creds_from_ini(cred, profile, 0, cpath, out, &rc, err))
		goto out;
	if (rc == 0)
		rc = drb_aws_ini_load(fpath, &cfg, err);
	if (rc == 0 && creds_from_ini(cfg, profile, 1, fpath, out, &rc, err))
		goto out;
	if (rc == 0)
		rc = drb_err_set(err, DRB_EDENIED,
				 "aws credentials: none found (AWS_ACCESS_KEY_ID/"
				 "AWS_SECRET_ACCESS_KEY, profile '%s' in %s or %s)",
				 profile, cpath, fpath);
out:
	drb_aws_ini_free(cred);
	drb_aws_ini_free(cfg);
	return rc;
}

/* ---- region and endpoint ----------------------------------------------------------------- */

static int region_ok(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 40 || r[0] == '-' || r[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)r[i]) && !isdigit((unsigned char)r[i]) && r[i] != '-')
			return 0;
	return 1;
}

/* Splits "http(s)://host[:port][/]" into base URL and Host; refuses paths, queries and
 * user info, which would change what is signed or leak into logs. */
static int endpoint_parse(const char *u, const char *from, drb_aws_endpoint *out, drb_err *err)
{
	const char *h;
	size_t n, hn;

	if (!strncasecmp(u, "https://", 8))
		h = u + 8;
	else if (!strncasecmp(u, "http://", 7))
		h = u + 7;
	else
		return drb_err_set(err, DRB_EINVAL, "%s must be an http:// or https:// URL", from);
	n = strlen(u);
	while (n > (size_t)(h - u) && u[n - 1] == '/')
		n--;
	hn = n - (size_t)(h - u);
	if (hn == 0 || memchr(h, '/', hn) || memchr(h, '?', hn) || memchr(h, '#', hn) ||
	    memchr(h, '@', hn) || memchr(h, ' ', hn))
		return drb_err_set(err, DRB_EINVAL,
				   "%s must be scheme://host[:port] without a path, query or user",
				   from);
	if (n >= sizeof(out->url) || hn >= sizeof(out->host))
		return drb_err_set(err, DRB_EINVAL, "%s is too long", from);
	memcpy(out->url, u, n);
	out->url[n] = '\0';
	memcpy(out->host, h, hn);
	out->host[hn] = '\0';
	for (char *p = out->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	out->custom = 1;
	return 0;
}

static int conn_string(const json_t *conn, const char *key, const char **out, drb_err *err)
{
	const json_t *v = json_object_get(conn, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return drb_err_set(err, DRB_EINVAL, "connection field '%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int drb_aws_resolve(const json_t *connection, const char *region_arg, const char *host_prefix,
		    const char *env_id, int global, drb_aws_endpoint *out, drb_err *err)
{
	const char *c_region = NULL, *c_endpoint = NULL, *c_profile = NULL, *kind = NULL;
	const char *region = NULL, *endpoint = NULL, *from = NULL, *prof;
	drb_aws_ini *cfg = NULL;
	char fpath[1024], envname[96];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (connection && !json_is_object(connection)) {
		rc = drb_err_set(err, DRB_EINVAL, "aws connection must be a map");
		goto out;
	}
	if (connection) {
		rc = conn_string(connection, "kind", &kind, err);
		if (rc == 0 && kind && strcmp(kind, "aws") != 0)
			rc = drb_err_set(err, DRB_EINVAL, "connection is of kind '%.40s', not aws",
					 kind);
		if (rc == 0)
			rc = conn_string(connection, "region", &c_region, err);
		if (rc == 0)
			rc = conn_string(connection, "endpoint_url", &c_endpoint, err);
		if (rc == 0)
			rc = conn_string(connection, "profile", &c_profile, err);
		if (rc != 0)
			goto out;
	}
	if (c_profile && *c_profile) {
		if (strlen(c_profile) >= sizeof(out->profile) || strchr(c_profile, ']')) {
			rc = drb_err_set(err, DRB_EINVAL, "connection profile name is invalid");
			goto out;
		}
		snprintf(out->profile, sizeof(out->profile), "%s", c_profile);
	}
	prof = out->profile[0] ? out->profile : default_profile();
	aws_file(1, fpath, sizeof(fpath));
	rc = drb_aws_ini_load(fpath, &cfg, err);
	if (rc != 0)
		goto out;

	region = region_arg && *region_arg ? region_arg : NULL;
	if (!region && c_region && *c_region)
		region = c_region;
	if (!region)
		region = env_nonempty("AWS_REGION");
	if (!region)
		region = env_nonempty("AWS_DEFAULT_REGION");
	if (!region)
		region = config_get(cfg, prof, "region");
	if (!region || !*region)
		region = "us-east-1";
	if (!region_ok(region)) {
		rc = drb_err_set(err, DRB_EINVAL, "region '%.40s' is not a valid AWS region name",
				 region);
		goto out;
	}
	snprintf(out->region, sizeof(out->region), "%s", global ? "us-east-1" : region);

	if (c_endpoint && *c_endpoint) {
		endpoint = c_endpoint;
		from = "connection endpoint_url";
	}
	if (!endpoint && env_id) {
		snprintf(envname, sizeof(envname), "AWS_ENDPOINT_URL_%s", env_id);
		endpoint = env_nonempty(envname);
		from = envname;
	}
	if (!endpoint) {
		endpoint = env_nonempty("AWS_ENDPOINT_URL");
		from = "AWS_ENDPOINT_URL";
	}
	if (!endpoint) {
		endpoint = config_get(cfg, prof, "endpoint_url");
		from = "the profile's endpoint_url";
	}
	if (endpoint && *endpoint) {
		rc = endpoint_parse(endpoint, from, out, err);
		goto out;
	}
	if (global)
		snprintf(out->host, sizeof(out->host), "%s.amazonaws.com", host_prefix);
	else
		snprintf(out->host, sizeof(out->host), "%s.%s.amazonaws.com", host_prefix,
			 out->region);
	snprintf(out->url, sizeof(out->url), "https://%s", out->host);
out:
	drb_aws_ini_free(cfg);
	return rc;
}
