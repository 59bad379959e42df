/* AWS credentials and configuration: the INI dialect of ~/.aws/credentials and ~/.aws/config,
 * the credential chain in botocore's order (environment, assume-role profiles, web identity,
 * SSO, the shared files, credential_process, the container endpoint, instance metadata), the
 * process-wide cache that refreshes temporary credentials before they expire, and the
 * resolution of region and endpoint for one call. Secrets live only in drb_aws_creds and INI
 * values, both wiped when freed; the sources that fetch over the network or from a process
 * are in credsrc.c. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <drbook/aws.h>
#include <drbook/util.h>

#include "creds_int.h"

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
	/* botocore reads only regular files: a missing file, /dev/null (what CI sets to mean
	 * "no configuration") or a folder is an empty configuration. */
	{
		struct stat st;

		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			return drb_aws_ini_parse("", 0, out, err);
	}
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

/* os.path.expandvars + expanduser, as botocore applies them to AWS_CONFIG_FILE and
 * AWS_SHARED_CREDENTIALS_FILE: $NAME and ${NAME} are replaced when NAME is set (left as
 * they are otherwise), then a leading "~/" becomes $HOME. */
static void expand_path(const char *p, char *out, size_t n)
{
	char tmp[1024];
	size_t o = 0;
	const char *home = env_nonempty("HOME");

	for (const char *s = p; *s && o + 1 < sizeof(tmp);) {
		if (*s == '$') {
			const char *nb = s + 1, *ne;
			int brace = *nb == '{';
			char name[128];
			const char *v;

			if (brace)
				nb++;
			ne = nb;
			while (*ne && (isalnum((unsigned char)*ne) || *ne == '_'))
				ne++;
			if (ne > nb && (size_t)(ne - nb) < sizeof(name) && (!brace || *ne == '}')) {
				memcpy(name, nb, (size_t)(ne - nb));
				name[ne - nb] = '\0';
				v = getenv(name);
				if (v) {
					o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%s", v);
					if (o >= sizeof(tmp))
						o = sizeof(tmp) - 1;
					s = ne + (brace ? 1 : 0);
					continue;
				}
			}
		}
		tmp[o++] = *s++;
	}
	tmp[o] = '\0';
	if (tmp[0] == '~' && (tmp[1] == '/' || !tmp[1]) && home)
		snprintf(out, n, "%s%s", home, tmp + 1);
	else
		snprintf(out, n, "%s", tmp);
}

/* The path of the credentials (which = 0) or config (1) file. */
static void aws_file(int which, char *out, size_t n)
{
	const char *p = env_nonempty(which ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE");

	expand_path(p ? p : which ? "~/.aws/config" : "~/.aws/credentials", out, n);
}

/* The profile in use without a connection's: AWS_DEFAULT_PROFILE, AWS_PROFILE (botocore's
 * order), "default". */
static const char *default_profile(void)
{
	const char *p = env_nonempty("AWS_DEFAULT_PROFILE");

	if (!p)
		p = env_nonempty("AWS_PROFILE");
	return p ? p : "default";
}

/* The config file's section name for a profile: "default" or "profile NAME" (a bare
 * "[NAME]" is accepted too, for backwards compatibility). */
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

static int config_has_profile(const drb_aws_ini *cfg, const char *profile)
{
	char sect[200];

	snprintf(sect, sizeof(sect), "profile %s", profile);
	for (size_t i = 0; cfg && i < cfg->n; i++)
		if (!strcmp(cfg->e[i].section, sect) || !strcmp(cfg->e[i].section, profile))
			return 1;
	return 0;
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

/* Copies src into *dst (zeroed first). */
static int creds_copy(drb_aws_creds *dst, const drb_aws_creds *src, drb_err *err)
{
	int rc;

	memset(dst, 0, sizeof(*dst));
	rc = drb_awsc_set(dst, src->access_key, src->secret_key, src->session_token, err);
	if (rc == 0) {
		dst->expiration = src->expiration;
		memcpy(dst->source, src->source, sizeof(dst->source));
	}
	return rc;
}

/* ---- the cache of temporary credentials ------------------------------------------------- */

/* botocore's RefreshableCredentials windows: within 15 min of the end one caller refreshes
 * while the others go on with the current credentials (a failed refresh is ignored); within
 * 10 min every caller waits for the refresh and a failure is an error. */
#define ADVISORY_S (15 * 60)
#define MANDATORY_S (10 * 60)

typedef struct cache_ent {
	char *key;		 /* what the credentials came from (no secret in it) */
	pthread_mutex_t mu;	 /* guards c and have */
	pthread_mutex_t refresh; /* held by the one caller fetching */
	drb_aws_creds c;
	int have;
	struct cache_ent *next;
} cache_ent;

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_ent *g_cache;

static cache_ent *cache_find(const char *key)
{
	cache_ent *e;

	pthread_mutex_lock(&g_cache_mu);
	for (e = g_cache; e; e = e->next)
		if (!strcmp(e->key, key))
			break;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->key = drb_strdup(key);
			if (!e->key) {
				free(e);
				e = NULL;
			}
		}
		if (e) {
			pthread_mutex_init(&e->mu, NULL);
			pthread_mutex_init(&e->refresh, NULL);
			e->next = g_cache;
			g_cache = e;
		}
	}
	pthread_mutex_unlock(&g_cache_mu);
	return e;
}

void drb_aws_creds_reset(void)
{
	pthread_mutex_lock(&g_cache_mu);
	while (g_cache) {
		cache_ent *e = g_cache;

		g_cache = e->next;
		drb_aws_creds_clear(&e->c);
		pthread_mutex_destroy(&e->mu);
		pthread_mutex_destroy(&e->refresh);
		free(e->key);
		free(e);
	}
	pthread_mutex_unlock(&g_cache_mu);
}

/* 1 when e holds credentials with at least `need` seconds left (or no end). */
static int still_good(const cache_ent *e, long long now, long long need)
{
	return e->have && (e->c.expiration == 0 || e->c.expiration - now >= need);
}

typedef struct chain chain;
typedef int (*fetch_fn)(chain *ch, void *arg, drb_aws_creds *out, drb_err *err);

/* The credentials of key: the cached ones while they have time left, else fetched by fn
 * (see ADVISORY_S, MANDATORY_S). Thread-safe. */
static int cached(chain *ch, const char *key, fetch_fn fn, void *arg, drb_aws_creds *out,
		  drb_err *err)
{
	cache_ent *e = cache_find(key);
	long long now = (long long)time(NULL);
	drb_aws_creds fresh;
	int rc, mandatory;

	memset(&fresh, 0, sizeof(fresh));
	if (!e)
		return drb_err_set(err, DRB_ENOMEM, "aws credentials: out of memory");
	pthread_mutex_lock(&e->mu);
	if (still_good(e, now, ADVISORY_S)) {
		rc = creds_copy(out, &e->c, err);
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	mandatory = !still_good(e, now, MANDATORY_S);
	pthread_mutex_unlock(&e->mu);
	if (mandatory) {
		pthread_mutex_lock(&e->refresh);
	} else if (pthread_mutex_trylock(&e->refresh) != 0) {
		/* Someone else is refreshing and there is time: use what we have. */
		pthread_mutex_lock(&e->mu);
		rc = creds_copy(out, &e->c, err);
		pthread_mutex_unlock(&e->mu);
		return rc;
	}
	/* Another caller may have refreshed while we waited for the lock. */
	pthread_mutex_lock(&e->mu);
	if (still_good(e, (long long)time(NULL), mandatory ? MANDATORY_S : ADVISORY_S)) {
		rc = creds_copy(out, &e->c, err);
		pthread_mutex_unlock(&e->mu);
		goto out;
	}
	pthread_mutex_unlock(&e->mu);
	rc = fn(ch, arg, &fresh, err);
	if (rc == 0 && fresh.expiration && fresh.expiration <= (long long)time(NULL))
		rc = drb_err_set(err, DRB_EDENIED,
				 "%s: the credentials were refreshed but are "
				 "already expired (is the clock right?)",
				 fresh.source);
	pthread_mutex_lock(&e->mu);
	if (rc == 0) {
		drb_aws_creds_clear(&e->c);
		e->c = fresh;
		memset(&fresh, 0, sizeof(fresh));
		e->have = 1;
		rc = creds_copy(out, &e->c, err);
	} else if (!mandatory && e->have) {
		/* An advisory refresh failed: the current credentials still have time. */
		drb_err_clear(err);
		rc = creds_copy(out, &e->c, err);
	}
	pthread_mutex_unlock(&e->mu);
out:
	pthread_mutex_unlock(&e->refresh);
	drb_aws_creds_clear(&fresh);
	return rc;
}

/* ---- the chain ---------------------------------------------------------------------------- */

/* One resolution: the files read once, the top-level profile, the STS endpoint. */
struct chain {
	const char *profile; /* the profile in use */
	int explicit_profile;
	const char *region; /* the call's region or NULL */
	drb_aws_ini *cred, *cfg;
	char cpath[1024], fpath[1024];
	drb_aws_endpoint sts;
	int sts_ready;
};

/* Keys of profile p as botocore merges them: the credentials file's section over the
 * config file's. */
static const char *prof_get(const chain *ch, const char *p, const char *key)
{
	const char *v = drb_aws_ini_get(ch->cred, p, key);

	return v ? v : config_get(ch->cfg, p, key);
}

static int prof_exists(const chain *ch, const char *p)
{
	for (size_t i = 0; ch->cred && i < ch->cred->n; i++)
		if (!strcmp(ch->cred->e[i].section, p))
			return 1;
	return config_has_profile(ch->cfg, p);
}

static int has_static(const chain *ch, const char *p)
{
	return prof_get(ch, p, "aws_access_key_id") || prof_get(ch, p, "aws_secret_access_key");
}

static int has_role(const chain *ch, const char *p)
{
	return prof_get(ch, p, "role_arn") && !prof_get(ch, p, "web_identity_token_file");
}

/* A setting from the environment (when set) or the top-level profile. */
static const char *setting(const chain *ch, const char *env, const char *key)
{
	const char *v = env ? env_nonempty(env) : NULL;

	return v ? v : prof_get(ch, ch->profile, key);
}

static int resolve_ep(const drb_aws_ini *cfg, const char *prof, const char *c_region,
		      const char *c_endpoint, const char *region_arg, const char *host_prefix,
		      const char *env_id, int kind, drb_aws_endpoint *out, drb_err *err);

static int sts_endpoint(chain *ch, drb_err *err)
{
	int rc;

	if (ch->sts_ready)
		return 0;
	rc = resolve_ep(ch->cfg, ch->profile, NULL, NULL, ch->region, "sts", "STS", DRB_AWS_STS,
			&ch->sts, err);
	if (rc == 0)
		ch->sts_ready = 1;
	return rc;
}

static int key_add(drb_buf *b, const char *s)
{
	int rc = drb_buf_puts(b, s ? s : "-");

	return rc == 0 ? drb_buf_puts(b, "\n") : rc;
}

/* The environment's keys. Only AWS_SECRET_ACCESS_KEY set is refused rather than skipped
 * (botocore skips it): a half-set pair is a mistake worth saying. */
static int src_env(drb_aws_creds *out, int *found, drb_err *err)
{
	const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *tok = env_nonempty("AWS_SECURITY_TOKEN");
	int rc;

	if (!tok)
		tok = env_nonempty("AWS_SESSION_TOKEN");
	if (!ak && !sk)
		return 0;
	if (!ak || !sk)
		return drb_err_set(err, DRB_EINVAL, "aws credentials: %s is set but %s is not",
				   ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				   ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	rc = drb_awsc_set(out, ak, sk, tok, err);
	if (rc == 0) {
		snprintf(out->source, sizeof(out->source), "environment");
		*found = 1;
	}
	return rc;
}

/* Keys written in one file's section (config: the config file's profile section). */
static int src_static(const chain *ch, const char *p, int config, drb_aws_creds *out, int *found,
		      drb_err *err)
{
	const drb_aws_ini *ini = config ? ch->cfg : ch->cred;
	const char *path = config ? ch->fpath : ch->cpath;
	const char *ak, *sk, *tok;
	int rc;

#define GET(k) (config ? config_get(ini, p, k) : drb_aws_ini_get(ini, p, k))
	ak = GET("aws_access_key_id");
	sk = GET("aws_secret_access_key");
	tok = GET("aws_security_token");
	if (!tok)
		tok = GET("aws_session_token");
#undef GET
	if (!ak && !sk)
		return 0;
	if (!ak || !sk || !*ak || !*sk)
		return drb_err_set(err, DRB_EINVAL,
				   "aws credentials: profile '%s' in %s has only one of "
				   "aws_access_key_id and aws_secret_access_key",
				   p, path);
	rc = drb_awsc_set(out, ak, sk, tok, err);
	if (rc == 0) {
		snprintf(out->source, sizeof(out->source), "profile %s in %s", p, path);
		*found = 1;
	}
	return rc;
}

/* Reads a small file that holds a token (web identity, container authorization). */
static int read_token(const char *path, const char *what, char **out, drb_err *err)
{
	size_t len = 0;
	int rc = drb_file_read(path, (size_t)64 << 10, out, &len, err);

	if (rc != 0)
		drb_err_prefix(err, "%s: ", what);
	return rc;
}

/* -- AssumeRole and AssumeRoleWithWebIdentity -- */

typedef struct assume_arg {
	drb_awsc_assume a;
	const drb_aws_creds *source;
	const char *token_file; /* web identity: read at each fetch (the file is rotated) */
	const char *profile;
} assume_arg;

static int fetch_assume(chain *ch, void *arg, drb_aws_creds *out, drb_err *err)
{
	assume_arg *x = arg;
	drb_awsc_assume a = x->a;
	char name[64], *tok = NULL;
	int rc;

	if (!a.session_name) {
		/* botocore names it botocore-session-<time>; ours says who assumed it. */
		snprintf(name, sizeof(name), "drbook-session-%lld", (long long)time(NULL));
		a.session_name = name;
	}
	if (x->token_file) {
		rc = read_token(x->token_file, "web identity token file", &tok, err);
		if (rc != 0)
			return rc;
		a.web_identity_token = tok;
	}
	rc = drb_awsc_sts_assume(&ch->sts, x->source, &a, out, err);
	if (rc == 0)
		snprintf(out->source, sizeof(out->source), "%s %.150s (profile %s)",
			 x->token_file ? "web identity role" : "assumed role", a.role_arn,
			 x->profile);
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	return rc;
}

static int src_profile_chain(chain *ch, const char *p, int env_disabled, drb_aws_creds *out,
			     int *found, drb_err *err);
static int src_container(chain *ch, drb_aws_creds *out, int *found, drb_err *err);
static int src_imds(chain *ch, drb_aws_creds *out, int *found, drb_err *err);

#define MAX_CHAIN 16

static int src_assume_role(chain *ch, const char *p, const char **visited, size_t nvis,
			   drb_aws_creds *out, drb_err *err)
{
	const char *role = prof_get(ch, p, "role_arn");
	const char *sp = prof_get(ch, p, "source_profile");
	const char *cs = prof_get(ch, p, "credential_source");
	const char *dur = prof_get(ch, p, "duration_seconds");
	drb_aws_creds source;
	assume_arg x;
	drb_buf key;
	int rc = 0, found = 0;

	memset(&source, 0, sizeof(source));
	memset(&x, 0, sizeof(x));
	drb_buf_init(&key, 8192);
	if (prof_get(ch, p, "mfa_serial")) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "aws credentials: profile '%s' sets mfa_serial: drbook runs "
				 "unattended and cannot ask for an MFA code; give it a role that "
				 "does not require MFA",
				 p);
		goto out;
	}
	if (sp && cs) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "aws credentials: profile '%s' contains both source_profile and "
				 "credential_source",
				 p);
		goto out;
	}
	if (!sp && !cs) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "aws credentials: profile '%s' has role_arn but neither "
				 "source_profile nor credential_source",
				 p);
		goto out;
	}
	if (cs) {
		if (!strcasecmp(cs, "Environment"))
			rc = src_env(&source, &found, err);
		else if (!strcasecmp(cs, "Ec2InstanceMetadata"))
			rc = src_imds(ch, &source, &found, err);
		else if (!strcasecmp(cs, "EcsContainer"))
			rc = src_container(ch, &source, &found, err);
		else
			rc =
			    drb_err_set(err, DRB_EINVAL,
					"aws credentials: the credential_source '%.60s' in profile "
					"'%s' is not valid (Environment, Ec2InstanceMetadata, "
					"EcsContainer)",
					cs, p);
		if (rc == 0 && !found)
			rc = drb_err_set(
			    err, DRB_EDENIED,
			    "aws credentials: no credentials found in credential_source "
			    "%s referenced in profile '%s'",
			    cs, p);
		if (rc != 0)
			goto out;
	} else {
		int seen = 0;

		if (!prof_exists(ch, sp)) {
			rc = drb_err_set(
			    err, DRB_EINVAL,
			    "aws credentials: the source_profile '%.100s' referenced in "
			    "profile '%s' does not exist",
			    sp, p);
			goto out;
		}
		for (size_t i = 0; i < nvis; i++)
			seen |= !strcmp(visited[i], sp);
		/* A profile may name itself to source its own static keys; any other
		 * repetition is a loop. */
		if (seen && (strcmp(sp, p) != 0 || !has_static(ch, sp))) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "aws credentials: source_profile loop: '%.100s' is "
					 "already part of the chain from profile '%s'",
					 sp, visited[0]);
			goto out;
		}
		if (nvis >= MAX_CHAIN) {
			rc = drb_err_set(err, DRB_ELIMIT,
					 "aws credentials: source_profile chain longer than %d",
					 MAX_CHAIN);
			goto out;
		}
		visited[nvis++] = sp;
		if (has_static(ch, sp) || !has_role(ch, sp)) {
			rc = src_profile_chain(ch, sp, 1, &source, &found, err);
			if (rc == 0 && !found)
				rc =
				    drb_err_set(err, DRB_EINVAL,
						"aws credentials: the source profile '%.100s' must "
						"have credentials",
						sp);
		} else {
			rc = src_assume_role(ch, sp, visited, nvis, &source, err);
		}
		if (rc != 0)
			goto out;
	}
	x.a.role_arn = role;
	x.a.session_name = prof_get(ch, p, "role_session_name");
	x.a.external_id = prof_get(ch, p, "external_id");
	if (dur) {
		char *end = NULL;
		long d = strtol(dur, &end, 10);

		/* botocore drops a value int() cannot read. */
		if (end != dur && *end == '\0')
			x.a.duration_s = d;
	}
	x.source = &source;
	x.profile = p;
	rc = sts_endpoint(ch, err);
	if (rc != 0)
		goto out;
	if (drb_buf_puts(&key, "assume-role\n") || key_add(&key, ch->sts.url) ||
	    key_add(&key, role) || key_add(&key, x.a.session_name) ||
	    key_add(&key, x.a.external_id) || key_add(&key, dur) ||
	    key_add(&key, source.access_key)) {
		rc = drb_err_set(err, DRB_ELIMIT, "aws credentials: configuration too large");
		goto out;
	}
	rc = cached(ch, key.p, fetch_assume, &x, out, err);
	if (rc != 0)
		drb_err_prefix(err, "aws credentials: profile '%s': ", p);
out:
	drb_aws_creds_clear(&source);
	drb_buf_free(&key);
	return rc;
}

static int src_web_identity(chain *ch, const char *p, int env_disabled, drb_aws_creds *out,
			    int *found, drb_err *err)
{
#define WEBID(env, key) (!env_disabled && getenv(env) ? getenv(env) : prof_get(ch, p, key))
	const char *file = WEBID("AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file");
	const char *role = WEBID("AWS_ROLE_ARN", "role_arn");
	const char *session = WEBID("AWS_ROLE_SESSION_NAME", "role_session_name");
#undef WEBID
	assume_arg x;
	drb_buf key;
	int rc;

	if (!file || !*file)
		return 0;
	if (!role || !*role)
		return drb_err_set(err, DRB_EINVAL,
				   "aws credentials: web identity is configured (token file) but "
				   "no role ARN: set AWS_ROLE_ARN or the profile's role_arn");
	memset(&x, 0, sizeof(x));
	drb_buf_init(&key, 8192);
	x.a.role_arn = role;
	x.a.session_name = session && *session ? session : NULL;
	x.token_file = file;
	x.profile = p;
	rc = sts_endpoint(ch, err);
	if (rc == 0) {
		if (drb_buf_puts(&key, "web-identity\n") || key_add(&key, ch->sts.url) ||
		    key_add(&key, role) || key_add(&key, x.a.session_name) || key_add(&key, file))
			rc = drb_err_set(err, DRB_ELIMIT,
					 "aws credentials: configuration too large");
	}
	if (rc == 0)
		rc = cached(ch, key.p, fetch_assume, &x, out, err);
	if (rc == 0)
		*found = 1;
	else
		drb_err_prefix(err, "aws credentials: web identity: ");
	drb_buf_free(&key);
	return rc;
}

/* -- SSO -- */

typedef struct sso_arg {
	const char *token_path, *name, *account, *role, *profile;
	const char *session, *start_url, *sso_region; /* session NULL: the legacy form */
	drb_aws_endpoint portal, oidc;
} sso_arg;

static void json_wipe(json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}

/* Writes the token cache file as `aws sso login` does (0600), through a temporary file and
 * rename so that a concurrent reader never sees half of it. */
static int write_token_cache(const char *path, const json_t *tok, drb_err *err)
{
	char tmp[1200], *text = json_dumps(tok, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0, off = 0;
	int fd, rc = 0;

	if (!text)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	snprintf(tmp, sizeof(tmp), "%s.drbook-%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		rc = drb_err_set(err, DRB_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = drb_err_set(err, DRB_EIO, "%s: %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 && rc == 0)
		rc = drb_err_set(err, DRB_EIO, "%s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = drb_err_set(err, DRB_EIO, "%s: %s", path, strerror(errno));
	if (rc != 0)
		unlink(tmp);
out:
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

/* botocore's SSOTokenProvider: an sso_session token with less than 15 minutes left is
 * renewed with its refresh token (while the client registration is valid) and written back
 * to the cache. Returns the new token object (owned) or NULL when there was nothing to do
 * or the renewal failed (the old token is then used as it is, as botocore does). */
static json_t *sso_renew(const sso_arg *x, const json_t *tok, int64_t exp_ms)
{
	const char *cid = json_string_value(json_object_get(tok, "clientId"));
	const char *csec = json_string_value(json_object_get(tok, "clientSecret"));
	const char *rt = json_string_value(json_object_get(tok, "refreshToken"));
	const char *reg = json_string_value(json_object_get(tok, "registrationExpiresAt"));
	long long now = (long long)time(NULL);
	int64_t reg_ms = 0;
	json_t *ans = NULL, *nt = NULL;
	drb_err e = {0};
	char when[32];

	if (!x->session || exp_ms / 1000 - now >= ADVISORY_S)
		return NULL;
	if (!cid || !csec || !rt || !reg || drb_rfc3339_parse(reg, &reg_ms) != 0 ||
	    reg_ms / 1000 <= now)
		return NULL;
	if (drb_awsc_sso_oidc_refresh(&x->oidc, cid, csec, rt, &ans, &e) != 0)
		return NULL;
	drb_rfc3339_s((int64_t)(now + json_integer_value(json_object_get(ans, "expiresIn"))) * 1000,
		      when);
	/* Copies (s:s), not shared references: ans is wiped below. */
	nt = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "startUrl", x->start_url, "region",
		       x->sso_region, "accessToken",
		       json_string_value(json_object_get(ans, "accessToken")), "expiresAt", when,
		       "clientId", cid, "clientSecret", csec, "registrationExpiresAt", reg);
	if (nt && json_is_string(json_object_get(ans, "refreshToken")))
		json_object_set_new(
		    nt, "refreshToken",
		    json_string(json_string_value(json_object_get(ans, "refreshToken"))));
	if (nt && write_token_cache(x->token_path, nt, &e) != 0) {
		json_wipe(nt);
		json_decref(nt);
		nt = NULL;
	}
	json_wipe(ans);
	json_decref(ans);
	return nt;
}

static int fetch_sso(chain *ch, void *arg, drb_aws_creds *out, drb_err *err)
{
	sso_arg *x = arg;
	char *text = NULL;
	size_t len = 0;
	json_t *tok = NULL;
	json_error_t je;
	const char *at, *exp;
	int64_t exp_ms = 0;
	int rc;

	(void)ch;
	rc = drb_file_read(x->token_path, (size_t)1 << 20, &text, &len, err);
	if (rc == DRB_ENOTFOUND) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "no SSO token for %.200s (%s): sign in with `aws sso login`",
				 x->name, x->token_path);
		goto out;
	}
	if (rc != 0)
		goto out;
	tok = json_loadb(text, len, 0, &je);
	at = json_string_value(json_object_get(tok, "accessToken"));
	exp = json_string_value(json_object_get(tok, "expiresAt"));
	if (!at || !exp || drb_rfc3339_parse(exp, &exp_ms) != 0) {
		rc =
		    drb_err_set(err, DRB_EINVAL,
				"the SSO token for %.200s (%s) is invalid (accessToken, expiresAt)",
				x->name, x->token_path);
		goto out;
	}
	{
		json_t *nt = sso_renew(x, tok, exp_ms);

		if (nt) {
			json_wipe(tok);
			json_decref(tok);
			tok = nt;
			at = json_string_value(json_object_get(tok, "accessToken"));
			exp = json_string_value(json_object_get(tok, "expiresAt"));
			if (drb_rfc3339_parse(exp, &exp_ms) != 0)
				exp_ms = 0;
		}
	}
	if (exp_ms / 1000 <= (int64_t)time(NULL)) {
		rc = drb_err_set(err, DRB_EDENIED,
				 "the SSO token for %.200s has expired: sign in again with `aws "
				 "sso login`",
				 x->name);
		goto out;
	}
	rc = drb_awsc_sso_fetch(&x->portal, at, x->account, x->role, out, err);
	if (rc == 0)
		snprintf(out->source, sizeof(out->source),
			 "sso role %.60s in account %.20s "
			 "(profile %s)",
			 x->role, x->account, x->profile);
out:
	if (tok) {
		const char *k;
		json_t *v;

		json_object_foreach(tok, k, v)
		{
			if (json_is_string(v))
				OPENSSL_cleanse((char *)json_string_value(v),
						json_string_length(v));
		}
		json_decref(tok);
	}
	if (text) {
		OPENSSL_cleanse(text, len);
		free(text);
	}
	return rc;
}

static int src_sso(chain *ch, const char *p, drb_aws_creds *out, int *found, drb_err *err)
{
	static const char *const need[] = {"sso_role_name", "sso_account_id", "sso_start_url",
					   "sso_region", NULL};
	const char *vals[4] = {NULL}, *session = prof_get(ch, p, "sso_session");
	char sect[200], missing[200] = "", path[1100], hex[41];
	unsigned char md[20];
	const char *home = env_nonempty("HOME"), *hashed;
	sso_arg x;
	drb_buf key;
	int rc;

	if (!prof_get(ch, p, "sso_role_name") && !prof_get(ch, p, "sso_account_id"))
		return 0;
	snprintf(sect, sizeof(sect), "sso-session %s", session ? session : "");
	if (session && !drb_aws_ini_get(ch->cfg, sect, "sso_start_url") &&
	    !drb_aws_ini_get(ch->cfg, sect, "sso_region")) {
		int any = 0;

		for (size_t i = 0; ch->cfg && i < ch->cfg->n; i++)
			any |= !strcmp(ch->cfg->e[i].section, sect);
		if (!any)
			return drb_err_set(
			    err, DRB_EINVAL,
			    "aws credentials: profile '%s': the sso-session '%.100s' "
			    "does not exist",
			    p, session);
	}
	for (int i = 0; need[i]; i++) {
		const char *pv = prof_get(ch, p, need[i]);
		const char *sv = session ? drb_aws_ini_get(ch->cfg, sect, need[i]) : NULL;

		if (pv && sv && strcmp(pv, sv) != 0)
			return drb_err_set(err, DRB_EINVAL,
					   "aws credentials: the value for %s is inconsistent "
					   "between profile '%s' and sso-session '%.100s'",
					   need[i], p, session);
		vals[i] = sv ? sv : pv;
		if (!vals[i]) {
			size_t l = strlen(missing);

			snprintf(missing + l, sizeof(missing) - l, "%s%s", l ? ", " : "", need[i]);
		}
	}
	if (missing[0])
		return drb_err_set(err, DRB_EINVAL,
				   "aws credentials: profile '%s' is configured for SSO but is "
				   "missing %s",
				   p, missing);
	memset(&x, 0, sizeof(x));
	drb_buf_init(&key, 8192);
	hashed = session ? session : vals[2];
	SHA1((const unsigned char *)hashed, strlen(hashed), md);
	drb_hex(md, sizeof(md), hex);
	snprintf(path, sizeof(path), "%s/.aws/sso/cache/%s.json", home ? home : "", hex);
	x.token_path = path;
	x.name = hashed;
	x.role = vals[0];
	x.account = vals[1];
	x.profile = p;
	x.session = session;
	x.start_url = vals[2];
	x.sso_region = vals[3];
	/* The portal: AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL, the profile's endpoint_url, else
	 * https://portal.sso.REGION.amazonaws.com, as botocore's sso client resolves it. */
	rc = resolve_ep(ch->cfg, ch->profile, NULL, NULL, vals[3], "portal.sso", "SSO",
			DRB_AWS_REGIONAL, &x.portal, err);
	/* The token's renewal (sso_session only): SSO-OIDC, https://oidc.REGION.amazonaws.com
	 * or AWS_ENDPOINT_URL_SSO_OIDC and the rest, as botocore's sso-oidc client. */
	if (rc == 0)
		rc = resolve_ep(ch->cfg, ch->profile, NULL, NULL, vals[3], "oidc", "SSO_OIDC",
				DRB_AWS_REGIONAL, &x.oidc, err);
	if (rc == 0) {
		if (drb_buf_puts(&key, "sso\n") || key_add(&key, x.portal.url) ||
		    key_add(&key, session ? "session" : "start-url") || key_add(&key, hashed) ||
		    key_add(&key, x.account) || key_add(&key, x.role))
			rc = drb_err_set(err, DRB_ELIMIT,
					 "aws credentials: configuration too large");
	}
	if (rc == 0)
		rc = cached(ch, key.p, fetch_sso, &x, out, err);
	if (rc == 0)
		*found = 1;
	else
		drb_err_prefix(err, "aws credentials: profile '%s': ", p);
	drb_buf_free(&key);
	return rc;
}

/* -- credential_process -- */

static int fetch_process(chain *ch, void *arg, drb_aws_creds *out, drb_err *err)
{
	int rc = drb_awsc_process_fetch(arg, out, err);

	(void)ch;
	if (rc == 0)
		snprintf(out->source, sizeof(out->source), "credential_process");
	return rc;
}

static int src_process(chain *ch, const char *p, drb_aws_creds *out, int *found, drb_err *err)
{
	const char *cmd = prof_get(ch, p, "credential_process");
	drb_buf key;
	int rc = 0;

	if (!cmd)
		return 0;
	drb_buf_init(&key, 16384);
	/* Credentials without an Expiration stay cached for the process's life: botocore
	 * runs the command once per session too. */
	if (drb_buf_puts(&key, "process\n") || key_add(&key, p) || key_add(&key, cmd))
		rc = drb_err_set(err, DRB_ELIMIT, "aws credentials: configuration too large");
	if (rc == 0)
		rc = cached(ch, key.p, fetch_process, (void *)cmd, out, err);
	if (rc == 0) {
		snprintf(out->source, sizeof(out->source), "credential_process of profile %s", p);
		*found = 1;
	} else {
		drb_err_prefix(err, "aws credentials: profile '%s': ", p);
	}
	drb_buf_free(&key);
	return rc;
}

/* -- container endpoint -- */

typedef struct container_arg {
	char url[1024];
	const char *token_file, *token;
} container_arg;

static int fetch_container(chain *ch, void *arg, drb_aws_creds *out, drb_err *err)
{
	container_arg *x = arg;
	char *tok = NULL;
	int rc;

	(void)ch;
	if (x->token_file) {
		/* Read at every fetch: EKS Pod Identity rotates it. */
		rc = read_token(x->token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &tok, err);
		if (rc != 0)
			return rc;
	}
	rc = drb_awsc_container_fetch(x->url, tok ? tok : x->token, out, err);
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	return rc;
}

static int src_container(chain *ch, drb_aws_creds *out, int *found, drb_err *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	container_arg x;
	drb_buf key;
	int rc;

	if (!rel && !full)
		return 0;
	memset(&x, 0, sizeof(x));
	rc = drb_awsc_container_url(rel, full, x.url, sizeof(x.url), err);
	if (rc != 0)
		return rc;
	x.token_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	x.token = x.token_file ? NULL : getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	drb_buf_init(&key, 4096);
	if (drb_buf_puts(&key, "container\n") || key_add(&key, x.url) ||
	    key_add(&key, x.token_file ? x.token_file
			  : x.token    ? "token"
				       : "none"))
		rc = drb_err_set(err, DRB_ELIMIT, "aws credentials: configuration too large");
	if (rc == 0)
		rc = cached(ch, key.p, fetch_container, &x, out, err);
	if (rc == 0)
		*found = 1;
	else
		drb_err_prefix(err, "aws credentials: ");
	drb_buf_free(&key);
	return rc;
}

/* -- instance metadata -- */

typedef struct imds_arg {
	char base[600];
	double timeout_s;
	int attempts, v1_disabled;
} imds_arg;

static int fetch_imds(chain *ch, void *arg, drb_aws_creds *out, drb_err *err)
{
	imds_arg *x = arg;

	(void)ch;
	return drb_awsc_imds_fetch(x->base, x->timeout_s, x->attempts, x->v1_disabled, out, err);
}

static int setting_true(const char *v)
{
	return v && !strcasecmp(v, "true");
}

static int src_imds(chain *ch, drb_aws_creds *out, int *found, drb_err *err)
{
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
	const char *ep =
	    setting(ch, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint");
	const char *mode = setting(ch, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
				   "ec2_metadata_service_endpoint_mode");
	const char *tmo = setting(ch, "AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout");
	const char *att =
	    setting(ch, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts");
	imds_arg x;
	drb_buf key;
	int rc = 0;

	if (disabled && !strcasecmp(disabled, "true"))
		return 0;
	memset(&x, 0, sizeof(x));
	if (mode && strcasecmp(mode, "ipv4") != 0 && strcasecmp(mode, "ipv6") != 0)
		return drb_err_set(err, DRB_EINVAL,
				   "aws credentials: ec2_metadata_service_endpoint_mode '%.20s' is "
				   "not ipv4 or ipv6",
				   mode);
	if (ep) {
		if (strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0)
			return drb_err_set(
			    err, DRB_EINVAL,
			    "aws credentials: the instance metadata endpoint must be "
			    "an http(s) URL");
		snprintf(x.base, sizeof(x.base), "%s", ep);
	} else if ((mode && !strcasecmp(mode, "ipv6")) ||
		   (!mode && setting_true(setting(ch, "AWS_IMDS_USE_IPV6", "imds_use_ipv6")))) {
		snprintf(x.base, sizeof(x.base), "http://[fd00:ec2::254]/");
	} else {
		snprintf(x.base, sizeof(x.base), "http://169.254.169.254/");
	}
	x.timeout_s = tmo ? strtod(tmo, NULL) : 1;
	if (x.timeout_s <= 0 || x.timeout_s > 60)
		x.timeout_s = 1;
	x.attempts = att ? (int)strtol(att, NULL, 10) : 1;
	if (x.attempts < 1 || x.attempts > 10)
		x.attempts = 1;
	x.v1_disabled =
	    setting_true(setting(ch, "AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled"));
	drb_buf_init(&key, 4096);
	if (drb_buf_puts(&key, "imds\n") || key_add(&key, x.base))
		rc = drb_err_set(err, DRB_ELIMIT, "aws credentials: configuration too large");
	if (rc == 0)
		rc = cached(ch, key.p, fetch_imds, &x, out, err);
	if (rc == 0) {
		*found = 1;
	} else if (rc == DRB_ENOTFOUND) {
		drb_err_clear(err);
		rc = 0;
	} else {
		drb_err_prefix(err, "aws credentials: ");
	}
	drb_buf_free(&key);
	return rc;
}

/* botocore's profile providers, in order: web identity, SSO, the credentials file,
 * credential_process, the config file. */
static int src_profile_chain(chain *ch, const char *p, int env_disabled, drb_aws_creds *out,
			     int *found, drb_err *err)
{
	int rc = src_web_identity(ch, p, env_disabled, out, found, err);

	if (rc == 0 && !*found)
		rc = src_sso(ch, p, out, found, err);
	if (rc == 0 && !*found)
		rc = src_static(ch, p, 0, out, found, err);
	if (rc == 0 && !*found)
		rc = src_process(ch, p, out, found, err);
	if (rc == 0 && !*found)
		rc = src_static(ch, p, 1, out, found, err);
	return rc;
}

int drb_aws_creds_resolve(const char *profile, const char *region, drb_aws_creds *out, drb_err *err)
{
	chain ch;
	const char *visited[MAX_CHAIN + 1];
	int rc = 0, found = 0;

	memset(out, 0, sizeof(*out));
	memset(&ch, 0, sizeof(ch));
	ch.explicit_profile = profile && *profile;
	ch.profile = ch.explicit_profile ? profile : default_profile();
	ch.region = region && *region ? region : NULL;
	/* An explicit profile (a connection's) skips the environment keys, as --profile. */
	if (!ch.explicit_profile) {
		rc = src_env(out, &found, err);
		if (rc != 0 || found)
			goto out;
	}
	aws_file(0, ch.cpath, sizeof(ch.cpath));
	aws_file(1, ch.fpath, sizeof(ch.fpath));
	rc = drb_aws_ini_load(ch.cpath, &ch.cred, err);
	if (rc == 0)
		rc = drb_aws_ini_load(ch.fpath, &ch.cfg, err);
	if (rc != 0)
		goto out;
	if (has_role(&ch, ch.profile)) {
		visited[0] = ch.profile;
		rc = src_assume_role(&ch, ch.profile, visited, 1, out, err);
		goto out;
	}
	rc = src_profile_chain(&ch, ch.profile, ch.explicit_profile, out, &found, err);
	if (rc == 0 && !found)
		rc = src_container(&ch, out, &found, err);
	if (rc == 0 && !found)
		rc = src_imds(&ch, out, &found, err);
	if (rc == 0 && !found)
		rc = drb_err_set(err, DRB_EDENIED,
				 "aws credentials: none found (AWS_ACCESS_KEY_ID/"
				 "AWS_SECRET_ACCESS_KEY, profile '%s' in %s or %s, the container "
				 "endpoint, instance metadata)",
				 ch.profile, ch.cpath, ch.fpath);
out:
	if (rc != 0)
		drb_aws_creds_clear(out);
	drb_aws_ini_free(ch.cred);
	drb_aws_ini_free(ch.cfg);
	return rc;
}

int drb_aws_creds_load(const char *profile, drb_aws_creds *out, drb_err *err)
{
	return drb_aws_creds_resolve(profile, NULL, out, err);
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

/* The regions where sts_regional_endpoints = legacy still means sts.amazonaws.com
 * (botocore's LEGACY_GLOBAL_STS_REGIONS). */
static int sts_legacy_global(const char *region)
{
	static const char *const legacy[] = {"ap-northeast-1", "ap-south-1", "ap-southeast-1",
					     "ap-southeast-2", "aws-global", "ca-central-1",
					     "eu-central-1",   "eu-north-1", "eu-west-1",
					     "eu-west-2",      "eu-west-3",  "sa-east-1",
					     "us-east-1",      "us-east-2",  "us-west-1",
					     "us-west-2",      NULL};

	for (int i = 0; legacy[i]; i++)
		if (!strcmp(region, legacy[i]))
			return 1;
	return 0;
}

/* The DNS suffix of a region's partition (only the China regions differ among the ones a
 * name tells apart). */
static const char *dns_suffix(const char *region)
{
	return !strncmp(region, "cn-", 3) ? "amazonaws.com.cn" : "amazonaws.com";
}

static int resolve_ep(const drb_aws_ini *cfg, const char *prof, const char *c_region,
		      const char *c_endpoint, const char *region_arg, const char *host_prefix,
		      const char *env_id, int kind, drb_aws_endpoint *out, drb_err *err)
{
	const char *region = NULL, *endpoint = NULL, *from = NULL;
	char envname[96];
	int rc = 0, global = kind == DRB_AWS_GLOBAL;

	region = region_arg && *region_arg ? region_arg : NULL;
	if (!region && c_region && *c_region)
		region = c_region;
	if (!region)
		region = env_nonempty("AWS_REGION");
	if (!region)
		region = env_nonempty("AWS_DEFAULT_REGION");
	if (!region)
		region = config_get(cfg, prof, "region");
	if (!region || !*region) {
		region = "us-east-1";
		out->region_default = 1;
	}
	if (!region_ok(region))
		return drb_err_set(err, DRB_EINVAL, "region '%.40s' is not a valid AWS region name",
				   region);
	if (kind == DRB_AWS_STS) {
		/* botocore: no region at all, or aws-global, is the global endpoint; with
		 * sts_regional_endpoints = legacy so are the 16 regions that had no regional
		 * endpoint once; otherwise (the default) sts.REGION.amazonaws.com. */
		const char *mode = env_nonempty("AWS_STS_REGIONAL_ENDPOINTS");

		if (!mode)
			mode = config_get(cfg, prof, "sts_regional_endpoints");
		if (mode && *mode && strcmp(mode, "legacy") != 0 && strcmp(mode, "regional") != 0)
			return drb_err_set(
			    err, DRB_EINVAL,
			    "sts_regional_endpoints '%.20s' is not legacy or regional", mode);
		global = out->region_default || !strcmp(region, "aws-global") ||
			 (mode && !strcmp(mode, "legacy") && sts_legacy_global(region));
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
		/* A configured STS endpoint is signed for the region as given (botocore signs
		 * even "aws-global" literally there). */
		if (rc == 0 && kind == DRB_AWS_STS)
			snprintf(out->region, sizeof(out->region), "%s", region);
		return rc;
	}
	if (global)
		snprintf(out->host, sizeof(out->host), "%s.%s", host_prefix,
			 dns_suffix(out->region));
	else
		snprintf(out->host, sizeof(out->host), "%s.%s.%s", host_prefix, out->region,
			 dns_suffix(out->region));
	snprintf(out->url, sizeof(out->url), "https://%s", out->host);
	return 0;
}

int drb_aws_resolve(const json_t *connection, const char *region_arg, const char *host_prefix,
		    const char *env_id, int kind, drb_aws_endpoint *out, drb_err *err)
{
	const char *c_region = NULL, *c_endpoint = NULL, *c_profile = NULL, *conn_kind = NULL;
	const char *prof;
	drb_aws_ini *cfg = NULL;
	char fpath[1024];
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (connection && !json_is_object(connection)) {
		rc = drb_err_set(err, DRB_EINVAL, "aws connection must be a map");
		goto out;
	}
	if (connection) {
		rc = conn_string(connection, "kind", &conn_kind, err);
		if (rc == 0 && conn_kind && strcmp(conn_kind, "aws") != 0)
			rc = drb_err_set(err, DRB_EINVAL, "connection is of kind '%.40s', not aws",
					 conn_kind);
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
	if (rc == 0)
		rc = resolve_ep(cfg, prof, c_region, c_endpoint, region_arg, host_prefix, env_id,
				kind, out, err);
out:
	drb_aws_ini_free(cfg);
	return rc;
}
