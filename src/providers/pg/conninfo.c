/* Connections of the PostgreSQL provider: a runbook's `connections:` entry (dsn_env,
 * dsn_file or rds_instance, plus user, dbname, password_env/password_file, sslmode and the
 * timeouts) becomes libpq keyword/value arrays, and the secrets met on the way are kept so
 * that every message can be scrubbed of them. Nothing is ever string-built into a conninfo. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/util.h>

#include "pg_int.h"

#define MAX_PARAMS 16
#define MAX_SECRETS 4
#define SECRET_FILE_MAX (64 * 1024)

struct drb_pg_conninfo {
	const char *keys[MAX_PARAMS + 1];
	const char *vals[MAX_PARAMS + 1]; /* each malloc'd */
	size_t n;
	int expand;		    /* vals[0] is a DSN to expand */
	PQconninfoOption *dsn_opts; /* the DSN parsed, to answer get() and merge options */
	const drb_pq_api *pq;	    /* libpq, once dsn_opts came from it */
	char *secrets[MAX_SECRETS];
	size_t n_secrets;
	char desc[512];
};

static drb_pg_endpoint_fn resolver_fn;
static void *resolver_ud;

void drb_pg_set_endpoint_resolver(drb_pg_endpoint_fn fn, void *ud)
{
	resolver_fn = fn;
	resolver_ud = ud;
}

void drb_pg_conninfo_free(drb_pg_conninfo *ci)
{
	if (!ci)
		return;
	for (size_t i = 0; i < ci->n; i++)
		free((char *)ci->vals[i]);
	for (size_t i = 0; i < ci->n_secrets; i++) {
		/* plain memset may be optimised away on memory about to be freed */
		volatile char *p = ci->secrets[i];

		while (*p)
			*p++ = 0;
		free(ci->secrets[i]);
	}
	if (ci->dsn_opts)
		ci->pq->PQconninfoFree(ci->dsn_opts);
	free(ci);
}

void drb_pg_conninfo_params(const drb_pg_conninfo *ci, const char *const **keys,
			    const char *const **vals, int *expand)
{
	*keys = ci->keys;
	*vals = ci->vals;
	*expand = ci->expand;
}

const char *drb_pg_conninfo_get(const drb_pg_conninfo *ci, const char *keyword)
{
	if (!ci)
		return NULL;
	/* libpq: array entries after the expanded DSN override its fields, last one wins */
	for (size_t i = ci->n; i-- > (size_t)ci->expand;)
		if (!strcmp(ci->keys[i], keyword) && ci->vals[i][0])
			return ci->vals[i];
	for (PQconninfoOption *o = ci->dsn_opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, keyword) && o->val && o->val[0])
			return o->val;
	return NULL;
}

const char *drb_pg_conninfo_describe(const drb_pg_conninfo *ci)
{
	return ci ? ci->desc : "";
}

static int add_secret(drb_pg_conninfo *ci, const char *s, size_t n)
{
	char *copy;

	if (n == 0 || ci->n_secrets >= MAX_SECRETS)
		return 0;
	copy = malloc(n + 1);
	if (!copy)
		return DRB_ENOMEM;
	memcpy(copy, s, n);
	copy[n] = 0;
	ci->secrets[ci->n_secrets++] = copy;
	return 0;
}

void drb_pg_conninfo_redact(const drb_pg_conninfo *ci, char *msg, size_t n)
{
	char *tmp;

	if (!ci || !msg || n == 0 || ci->n_secrets == 0)
		return;
	tmp = malloc(n);
	for (size_t k = 0; k < ci->n_secrets; k++) {
		const char *sec = ci->secrets[k], *p = msg;
		size_t slen = strlen(sec), o = 0;

		if (!strstr(msg, sec))
			continue;
		if (!tmp) {
			/* no room to rewrite: dropping the message is the safe failure */
			snprintf(msg, n, "(message withheld: it contained a secret)");
			continue;
		}
		while (*p && o + 1 < n) {
			if (!strncmp(p, sec, slen)) {
				for (int s = 0; s < 3 && o + 1 < n; s++)
					tmp[o++] = '*';
				p += slen;
			} else {
				tmp[o++] = *p++;
			}
		}
		tmp[o] = 0;
		memcpy(msg, tmp, o + 1);
	}
	free(tmp);
}

static int push(drb_pg_conninfo *ci, const char *key, const char *val, drb_err *err)
{
	char *v;

	if (ci->n >= MAX_PARAMS)
		return drb_err_set(err, DRB_ELIMIT, "too many connection parameters");
	v = strdup(val);
	if (!v)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	ci->keys[ci->n] = key;
	ci->vals[ci->n] = v;
	ci->n++;
	ci->keys[ci->n] = NULL;
	ci->vals[ci->n] = NULL;
	return 0;
}

/* Leading and trailing white space of a secret file is the editor's, not the secret's. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = 0;
	return s;
}

static void wipe_free(char *p, size_t n)
{
	if (!p)
		return;
	for (volatile char *q = p; n--; q++)
		*q = 0;
	free(p);
}

/* Reads a secret from the environment variable or file named in spec[env_key]/spec[file_key];
 * *out is malloc'd (wipe it), NULL when the spec names neither. */
static int read_secret(const char *name, const json_t *spec, const char *env_key,
		       const char *file_key, char **out, drb_err *err)
{
	const char *env = NULL, *file = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = drb_arg_string_opt(spec, env_key, &env, err);
	if (rc == 0)
		rc = drb_arg_string_opt(spec, file_key, &file, err);
	if (rc)
		return drb_err_prefix(err, "connection '%s': ", name);
	if (env && file)
		return drb_err_set(err, DRB_EINVAL, "connection '%s': give %s or %s, not both",
				   name, env_key, file_key);
	if (env) {
		const char *v = getenv(env);

		if (!v || !*v)
			return drb_err_set(err, DRB_EINVAL,
					   "connection '%s': environment variable %s (%s) is not "
					   "set",
					   name, env, env_key);
		*out = strdup(v);
		if (!*out)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
		return 0;
	}
	if (file) {
		char *t;

		rc = drb_file_read(file, SECRET_FILE_MAX, &buf, &len, err);
		if (rc)
			return drb_err_prefix(err, "connection '%s': %s: ", name, file_key);
		t = trim(buf);
		if (!*t) {
			wipe_free(buf, len);
			return drb_err_set(err, DRB_EINVAL, "connection '%s': %s %s is empty", name,
					   file_key, file);
		}
		*out = strdup(t);
		wipe_free(buf, len);
		if (!*out)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
	}
	return 0;
}

int drb_pgi_spec(const drb_action_ctx *ctx, const char *name, const json_t **spec, drb_err *err)
{
	const json_t *s = ctx ? json_object_get(ctx->connections, name) : NULL;
	const char *kind = NULL;
	int n;

	*spec = NULL;
	if (!json_is_object(s))
		return drb_err_set(err, DRB_ENOTFOUND, "no connection '%s' in connections:", name);
	if (drb_arg_string_opt(s, "kind", &kind, err) || !kind || strcmp(kind, "postgres"))
		return drb_err_set(err, DRB_EINVAL,
				   "connection '%s' is not a postgres connection (kind: postgres)",
				   name);
	n = !!json_object_get(s, "dsn_env") + !!json_object_get(s, "dsn_file") +
	    !!json_object_get(s, "rds_instance");
	if (n != 1)
		return drb_err_set(err, DRB_EINVAL,
				   "connection '%s' needs exactly one of dsn_env, dsn_file or "
				   "rds_instance",
				   name);
	*spec = s;
	return 0;
}

void drb_pgi_endpoint_free(drb_pgi_endpoint *ep)
{
	if (!ep)
		return;
	free(ep->host);
	ep->host = NULL;
	ep->port = 0;
}

int drb_pgi_resolve(drb_action_ctx *ctx, const char *name, const json_t *spec, drb_pgi_endpoint *ep,
		    drb_err *err)
{
	const char *inst = NULL, *region = NULL;
	drb_pg_endpoint_fn fn = resolver_fn;
	int rc;

	ep->host = NULL;
	ep->port = 0;
	rc = drb_arg_string_opt(spec, "rds_instance", &inst, err);
	if (rc == 0)
		rc = drb_arg_string_opt(spec, "region", &region, err);
	if (rc)
		return drb_err_prefix(err, "connection '%s': ", name);
	if (!inst)
		return 0;
	if (!fn)
		return drb_err_set(
		    err, DRB_EINVAL,
		    "connection '%s': rds_instance needs the AWS provider's endpoint "
		    "lookup, which is not configured in this build",
		    name);
	rc = fn(resolver_ud, ctx, inst, region, &ep->host, &ep->port, err);
	if (rc == 0 && (!ep->host || !*ep->host || ep->port <= 0 || ep->port > 65535))
		rc = drb_err_set(err, DRB_EINVAL,
				 "RDS instance %s has no endpoint yet (is it still being created?)",
				 inst);
	if (rc) {
		drb_pgi_endpoint_free(ep);
		return drb_err_prefix(err, "connection '%s': ", name);
	}
	return 0;
}

/* The password inside a postgresql:// URI as written (percent-encoded), so that a message
 * quoting the raw URI is scrubbed too. */
static int uri_password(const char *dsn, const char **p, size_t *n)
{
	const char *s = strstr(dsn, "://"), *end, *at = NULL, *colon;

	*p = NULL;
	*n = 0;
	if (!s || (strncmp(dsn, "postgresql://", 13) && strncmp(dsn, "postgres://", 11)))
		return 0;
	s += 3;
	end = s + strcspn(s, "/?");
	for (const char *q = s; q < end; q++)
		if (*q == '@')
			at = q;
	if (!at)
		return 0;
	colon = memchr(s, ':', (size_t)(at - s));
	if (!colon)
		return 0;
	*p = colon + 1;
	*n = (size_t)(at - colon - 1);
	return 0;
}

static double timeout_of(const json_t *spec, const char *key, double dflt, const char *name,
			 int *rc, drb_err *err)
{
	double v = dflt;

	if (*rc)
		return v;
	*rc = drb_arg_duration_opt(spec, key, &v, err);
	if (*rc == 0 && !(v > 0))
		*rc = drb_err_set(err, DRB_EINVAL, "'%s' must be greater than 0", key);
	if (*rc)
		drb_err_prefix(err, "connection '%s': ", name);
	return v;
}

static void describe(drb_pg_conninfo *ci, const char *name)
{
	static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user", NULL};
	size_t o;

	o = (size_t)snprintf(ci->desc, sizeof(ci->desc), "connection '%s' (", name);
	for (size_t i = 0; shown[i] && o < sizeof(ci->desc); i++) {
		const char *v = drb_pg_conninfo_get(ci, shown[i]);

		/* a DSN in dbname is not a name: never shown (it may hold the password) */
		if (!v || (!strcmp(shown[i], "dbname") && (strchr(v, '=') || strstr(v, "://"))))
			continue;
		o += (size_t)snprintf(ci->desc + o, sizeof(ci->desc) - o, "%s%s=%s",
				      ci->desc[o - 1] == '(' ? "" : " ", shown[i], v);
	}
	if (o < sizeof(ci->desc))
		snprintf(ci->desc + o, sizeof(ci->desc) - o, ")");
	drb_pg_conninfo_redact(ci, ci->desc, sizeof(ci->desc));
}

int drb_pgi_build(drb_pg_conninfo **out, const char *name, const json_t *spec,
		  const drb_pgi_endpoint *ep, double deadline, double min_statement_s, drb_err *err)
{
	static const char *const plain[] = {"user", "dbname", "sslmode", NULL};
	drb_pg_conninfo *ci = NULL;
	char *dsn = NULL, *password = NULL, num[32];
	const char *dsn_options = NULL;
	drb_buf opts;
	double ct, st;
	int rc = 0;

	*out = NULL;
	drb_buf_init(&opts, 4096);
	ci = calloc(1, sizeof(*ci));
	if (!ci) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	ct = timeout_of(spec, "connect_timeout", DRB_PG_CONNECT_TIMEOUT_S, name, &rc, err);
	st = timeout_of(spec, "statement_timeout", DRB_PG_STATEMENT_TIMEOUT_S, name, &rc, err);
	if (rc)
		goto out;
	if (st < min_statement_s)
		st = min_statement_s;
	if (deadline > 0) {
		double left = deadline - drb_mono_now();

		if (left <= 0) {
			rc = drb_err_set(err, DRB_ETIMEOUT,
					 "connection '%s': the step's deadline passed before "
					 "connecting",
					 name);
			goto out;
		}
		if (ct > left)
			ct = left;
		if (st > left)
			st = left;
	}

	rc = read_secret(name, spec, "dsn_env", "dsn_file", &dsn, err);
	if (rc)
		goto out;
	if (dsn) {
		char *perr = NULL;
		const char *raw;
		size_t rawn;

		rc = drb_pgi_libpq(&ci->pq, "reading its DSN", err);
		if (rc) {
			drb_err_prefix(err, "connection '%s': ", name);
			goto out;
		}
		ci->dsn_opts = ci->pq->PQconninfoParse(dsn, &perr);
		if (!ci->dsn_opts) {
			/* libpq's message quotes the string, password and all: not repeated */
			if (perr)
				ci->pq->PQfreemem(perr);
			rc = drb_err_set(err, DRB_EINVAL,
					 "connection '%s': the DSN from %s is not a valid libpq "
					 "connection string or URI",
					 name,
					 json_object_get(spec, "dsn_env") ? "dsn_env" : "dsn_file");
			goto out;
		}
		for (PQconninfoOption *o = ci->dsn_opts; o->keyword; o++) {
			if (!strcmp(o->keyword, "password") && o->val && o->val[0] &&
			    add_secret(ci, o->val, strlen(o->val)))
				goto nomem;
			if (!strcmp(o->keyword, "options") && o->val && o->val[0])
				dsn_options = o->val;
		}
		uri_password(dsn, &raw, &rawn);
		if (raw && add_secret(ci, raw, rawn))
			goto nomem;
		/* first, so that the spec's own keys below override the DSN's fields */
		rc = push(ci, "dbname", dsn, err);
		if (rc)
			goto out;
		ci->expand = 1;
	} else if (ep && ep->host) {
		snprintf(num, sizeof(num), "%d", ep->port);
		rc = push(ci, "host", ep->host, err);
		if (rc == 0)
			rc = push(ci, "port", num, err);
		if (rc)
			goto out;
	}
	for (size_t i = 0; plain[i]; i++) {
		const char *v = NULL;

		rc = drb_arg_string_opt(spec, plain[i], &v, err);
		if (rc == 0 && v)
			rc = push(ci, plain[i], v, err);
		if (rc) {
			drb_err_prefix(err, "connection '%s': ", name);
			goto out;
		}
	}
	if (!dsn && !drb_pg_conninfo_get(ci, "dbname")) {
		/* an RDS endpoint alone names no database; libpq would use the user name */
		rc = push(ci, "dbname", "postgres", err);
		if (rc)
			goto out;
	}
	rc = read_secret(name, spec, "password_env", "password_file", &password, err);
	if (rc)
		goto out;
	if (password) {
		if (add_secret(ci, password, strlen(password)))
			goto nomem;
		rc = push(ci, "password", password, err);
		if (rc)
			goto out;
	}
	/* libpq takes whole seconds and treats 1 as 2 */
	snprintf(num, sizeof(num), "%d", ct < 2 ? 2 : (int)ceil(ct));
	rc = push(ci, "connect_timeout", num, err);
	if (rc == 0)
		rc = push(ci, "application_name", "drbook", err);
	if (rc)
		goto out;
	/* The DSN's own options stay; ours come after them and so win. TimeZone and DateStyle
	 * make timestamps come back in one parseable form. */
	if ((dsn_options && (drb_buf_puts(&opts, dsn_options) || drb_buf_puts(&opts, " "))) ||
	    drb_buf_printf(&opts, "-c statement_timeout=%lld -c TimeZone=UTC -c DateStyle=ISO",
			   st * 1000 < 1 ? 1LL : (long long)(st * 1000))) {
		rc = drb_err_set(err, DRB_ELIMIT, "connection '%s': options too long", name);
		goto out;
	}
	rc = push(ci, "options", opts.p, err);
	if (rc)
		goto out;
	describe(ci, name);
	*out = ci;
	ci = NULL;
	goto out;
nomem:
	rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
out:
	if (rc && err)
		drb_pg_conninfo_redact(ci, err->msg, sizeof(err->msg));
	drb_buf_free(&opts);
	if (dsn)
		wipe_free(dsn, strlen(dsn));
	if (password)
		wipe_free(password, strlen(password));
	drb_pg_conninfo_free(ci);
	return rc;
}

int drb_pg_conninfo_build(drb_pg_conninfo **out, drb_action_ctx *ctx, const char *name,
			  double min_statement_s, drb_err *err)
{
	const json_t *spec = NULL;
	drb_pgi_endpoint ep = {0};
	int rc;

	*out = NULL;
	rc = drb_pgi_spec(ctx, name, &spec, err);
	if (rc == 0)
		rc = drb_pgi_resolve(ctx, name, spec, &ep, err);
	if (rc == 0)
		rc = drb_pgi_build(out, name, spec, &ep, ctx->deadline, min_statement_s, err);
	drb_pgi_endpoint_free(&ep);
	return rc;
}
