/* Where the notify provider's configuration comes from: environment variables or the files
 * they name (NAME_FILE, the Docker/systemd-credentials habit), read at call time and wiped
 * after use, and the checks on a webhook URL that never quote the URL itself. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <drbook/util.h>

#include "notify_int.h"

/* A webhook URL or a routing key is small; a larger file is a mistake (the wrong path). */
#define MAX_SECRET_FILE 65536

int drb_notifyi_env_name_ok(const char *name)
{
	size_t i;

	if (!name || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return 0;
	for (i = 1; name[i]; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
			return 0;
	return i <= 128;
}

void drb_notifyi_secret_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int drb_notifyi_config(const char *name, char **out, drb_err *err)
{
	char file_var[160];
	const char *val, *path;
	char *buf = NULL;
	size_t len = 0;
	int rc = 0;

	*out = NULL;
	snprintf(file_var, sizeof(file_var), "%s_FILE", name);
	val = getenv(name);
	path = getenv(file_var);
	if (val && path) {
		rc =
		    drb_err_set(err, DRB_EINVAL, "both %s and %s are set: set one", name, file_var);
		goto out;
	}
	if (!val && !path) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is not set (nor %s)", name, file_var);
		goto out;
	}
	if (val) {
		buf = strdup(val);
		if (!buf) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		len = strlen(buf);
	} else {
		if (!*path) {
			rc = drb_err_set(err, DRB_EINVAL, "%s is empty", file_var);
			goto out;
		}
		rc = drb_file_read(path, MAX_SECRET_FILE, &buf, &len, err);
		if (rc != 0) {
			drb_err_prefix(err, "%s: ", file_var);
			goto out;
		}
		if (memchr(buf, '\0', len)) {
			rc =
			    drb_err_set(err, DRB_EINVAL, "%s: %s holds a NUL byte", file_var, path);
			goto out;
		}
	}
	/* Editors and `echo` leave a newline; a secret never ends in white space. */
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	if (len == 0) {
		rc = drb_err_set(err, DRB_EINVAL, "%s is empty", val ? name : file_var);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return rc;
}

static int loopback(const char *host)
{
	return !strcasecmp(host, "localhost") || !strncmp(host, "127.", 4) ||
	       !strcmp(host, "[::1]") || !strcmp(host, "::1");
}

int drb_notifyi_url_check(const char *url, const char *what, char *origin, size_t n, drb_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	int rc = 0;

	origin[0] = '\0';
	if (!u) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	if (strpbrk(url, " \t\r\n") ||
	    curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = drb_err_set(err, DRB_EINVAL, "the value of %s is not a URL", what);
		goto out;
	}
	if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http")) {
		rc = drb_err_set(err, DRB_EINVAL, "the value of %s must be an https:// URL", what);
		goto out;
	}
	if (!strcasecmp(scheme, "http") && !loopback(host)) {
		rc = drb_err_set(err, DRB_EINVAL,
				 "the value of %s must be an https:// URL (plain http only to a "
				 "loopback address: the URL or the body is a secret)",
				 what);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
		rc = drb_err_set(err, DRB_EINVAL, "the value of %s must not hold user:password@",
				 what);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
		snprintf(origin, n, "%s://%s:%s", scheme, host, port);
	else
		snprintf(origin, n, "%s://%s", scheme, host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}
