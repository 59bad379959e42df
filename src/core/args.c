/* Reading action arguments (the interpolated with: object) with clear errors. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/action.h>
#include <drbook/util.h>

int drb_arg_string(const json_t *args, const char *name, const char **out, drb_err *err)
{
	const json_t *v = json_object_get(args, name);

	if (!v || json_is_null(v))
		return drb_err_set(err, DRB_EINVAL, "argument '%s' is required", name);
	return drb_arg_string_opt(args, name, out, err);
}

int drb_arg_string_opt(const json_t *args, const char *name, const char **out, drb_err *err)
{
	const json_t *v = json_object_get(args, name);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return drb_err_set(err, DRB_EINVAL, "argument '%s' must be a string", name);
	*out = json_string_value(v);
	return 0;
}

int drb_arg_int_opt(const json_t *args, const char *name, long long *out, drb_err *err)
{
	const json_t *v = json_object_get(args, name);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v)) {
		*out = (long long)json_real_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end = NULL;
		long long n;

		errno = 0;
		n = strtoll(s, &end, 10);
		if (*s && end && !*end && errno == 0) {
			*out = n;
			return 0;
		}
	}
	return drb_err_set(err, DRB_EINVAL, "argument '%s' must be an integer", name);
}

int drb_arg_bool_opt(const json_t *args, const char *name, int *out, drb_err *err)
{
	const json_t *v = json_object_get(args, name);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (!strcmp(s, "true")) {
			*out = 1;
			return 0;
		}
		if (!strcmp(s, "false")) {
			*out = 0;
			return 0;
		}
	}
	return drb_err_set(err, DRB_EINVAL, "argument '%s' must be true or false", name);
}

int drb_arg_duration_opt(const json_t *args, const char *name, double *out, drb_err *err)
{
	const json_t *v = json_object_get(args, name);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_number(v) && json_number_value(v) >= 0) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_string(v) && drb_duration_parse(json_string_value(v), out) == 0)
		return 0;
	return drb_err_set(err, DRB_EINVAL,
			   "argument '%s' must be a duration such as 90s, 15m or 1h", name);
}

int drb_args_known(const json_t *args, const char *const *names, drb_err *err)
{
	const char *key;
	json_t *v;

	if (!args || json_is_null(args))
		return 0;
	if (!json_is_object(args))
		return drb_err_set(err, DRB_EINVAL, "arguments must be a mapping");
	json_object_foreach((json_t *)args, key, v)
	{
		size_t i;

		for (i = 0; names[i]; i++)
			if (!strcmp(names[i], key))
				break;
		if (!names[i])
			return drb_err_set(err, DRB_EINVAL, "unknown argument '%s'", key);
	}
	return 0;
}

int drb_result_pick(const json_t *resp, const char *const *keys, const char *required,
		    const char *action, json_t **result, drb_err *err)
{
	json_t *r = NULL;

	*result = NULL;
	if (!json_is_integer(json_object_get(resp, required)))
		return drb_err_set(err, DRB_EINVAL, "%s: the response has no %s", action, required);
	r = json_object();
	if (!r)
		return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(resp, keys[i]);

		if (v && json_object_set(r, keys[i], v) != 0) {
			json_decref(r);
			return drb_err_set(err, DRB_ENOMEM, "%s: out of memory", action);
		}
	}
	*result = r;
	return 0;
}

/* ---- schemas ---- */

void drb_type_text(unsigned type, int article, char *buf, size_t n)
{
	static const struct {
		unsigned bit;
		const char *a, *bare;
	} names[] = {
	    {DRB_T_STRING, "a string", "string"},
	    {DRB_T_INT, "an integer", "int"},
	    {DRB_T_NUMBER, "a number", "number"},
	    {DRB_T_BOOL, "true or false", "bool"},
	    {DRB_T_DURATION, "a duration such as 90s, 15m or 1h", "duration"},
	    {DRB_T_LIST, "a list", "list"},
	    {DRB_T_MAP, "a mapping", "map"},
	};
	size_t used = 0;

	if (n == 0)
		return;
	buf[0] = '\0';
	if ((type & DRB_T_ANY) == DRB_T_ANY || type == 0) {
		snprintf(buf, n, "%s", article ? "any value" : "any");
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int w;

		if (!(type & names[i].bit))
			continue;
		w = snprintf(buf + used, n - used, "%s%s", used ? (article ? " or " : "|") : "",
			     article ? names[i].a : names[i].bare);
		if (w < 0 || (size_t)w >= n - used)
			return;
		used += (size_t)w;
	}
}

const drb_arg_spec *drb_schema_arg(const drb_action_schema *s, const char *name)
{
	if (!s || !s->args)
		return NULL;
	for (const drb_arg_spec *a = s->args; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

const char *drb_schema_suggest(const drb_action_schema *s, const char *name)
{
	const char *best = NULL;
	int best_d = 3; /* more than two edits away is a different word, not a typo */

	if (!s || !s->args)
		return NULL;
	for (const drb_arg_spec *a = s->args; a->name; a++) {
		int d = drb_edit_distance(name, a->name, 2);

		if (d < best_d) {
			best_d = d;
			best = a->name;
		}
	}
	return best;
}

static int is_int_text(const char *s)
{
	char *end = NULL;

	errno = 0;
	(void)strtoll(s, &end, 10);
	return *s && end && !*end && errno == 0;
}

/* Whether v is one of the types in the bits. */
static int type_ok(unsigned type, const json_t *v)
{
	double d;

	if (type & DRB_T_STRING && json_is_string(v))
		return 1;
	if (type & DRB_T_INT &&
	    (json_is_integer(v) ||
	     (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v)) ||
	     (json_is_string(v) && is_int_text(json_string_value(v)))))
		return 1;
	if (type & DRB_T_NUMBER && json_is_number(v) && isfinite(json_number_value(v)))
		return 1;
	if (type & DRB_T_BOOL &&
	    (json_is_boolean(v) || (json_is_string(v) && (!strcmp(json_string_value(v), "true") ||
							  !strcmp(json_string_value(v), "false")))))
		return 1;
	if (type & DRB_T_DURATION &&
	    ((json_is_number(v) && json_number_value(v) >= 0) ||
	     (json_is_string(v) && drb_duration_parse(json_string_value(v), &d) == 0)))
		return 1;
	if (type & DRB_T_LIST && json_is_array(v))
		return 1;
	if (type & DRB_T_MAP && json_is_object(v))
		return 1;
	return 0;
}

/* What the value was, for messages: a short quoted string or its type. */
static void got_text(const json_t *v, char *buf, size_t n)
{
	if (json_is_string(v))
		snprintf(buf, n, "\"%.40s%s\"", json_string_value(v),
			 json_string_length(v) > 40 ? "..." : "");
	else if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_array(v))
		snprintf(buf, n, "a list");
	else
		snprintf(buf, n, "a mapping");
}

int drb_arg_check(const drb_arg_spec *a, const json_t *v, drb_err *err)
{
	char want[160], got[64];

	if (!v || json_is_null(v))
		return 0;
	if (!type_ok(a->type, v)) {
		drb_type_text(a->type, 1, want, sizeof(want));
		got_text(v, got, sizeof(got));
		return drb_err_set(err, DRB_EINVAL, "argument '%s' must be %s (got %s)", a->name,
				   want, got);
	}
	if (a->choices && json_is_string(v)) {
		drb_buf b;
		size_t i;
		int rc;

		for (i = 0; a->choices[i]; i++)
			if (!strcmp(a->choices[i], json_string_value(v)))
				return 0;
		drb_buf_init(&b, 1024);
		for (i = 0; a->choices[i]; i++)
			drb_buf_printf(&b, "%s%s",
				       !i		   ? ""
				       : a->choices[i + 1] ? ", "
							   : " or ",
				       a->choices[i]);
		got_text(v, got, sizeof(got));
		rc = drb_err_set(err, DRB_EINVAL, "argument '%s' must be %s (got %s)", a->name,
				 b.p ? b.p : "?", got);
		drb_buf_free(&b);
		return rc;
	}
	return 0;
}

int drb_args_check(const drb_action_schema *s, const json_t *args, drb_err *err)
{
	const char *key;
	json_t *v;

	if (!s || s->open)
		return 0;
	if (args && !json_is_null(args) && !json_is_object(args))
		return drb_err_set(err, DRB_EINVAL, "arguments must be a mapping");
	json_object_foreach((json_t *)args, key, v)
	{
		const drb_arg_spec *a = drb_schema_arg(s, key);
		const char *near;
		int rc;

		if (!a) {
			near = drb_schema_suggest(s, key);
			return drb_err_set(err, DRB_EINVAL, "unknown argument '%s'%s%s%s", key,
					   near ? " (did you mean '" : "", near ? near : "",
					   near ? "'?)" : "");
		}
		if ((rc = drb_arg_check(a, v, err)))
			return rc;
	}
	for (const drb_arg_spec *a = s->args; a && a->name; a++) {
		const json_t *x = json_object_get(args, a->name);

		if (a->required && (!x || json_is_null(x)))
			return drb_err_set(err, DRB_EINVAL, "argument '%s' is required", a->name);
	}
	return 0;
}

/* ---- schemas declared at run time (custom Lua actions) ---- */

static const struct {
	const char *name;
	unsigned bit;
} type_names[] = {{"string", DRB_T_STRING},	{"int", DRB_T_INT},
		  {"number", DRB_T_NUMBER},	{"bool", DRB_T_BOOL},
		  {"duration", DRB_T_DURATION}, {"list", DRB_T_LIST},
		  {"map", DRB_T_MAP},		{"any", DRB_T_ANY}};

/* "string" or "string|list" -> bits; 0 when a name is unknown. */
static unsigned parse_type(const char *s)
{
	unsigned bits = 0;

	while (*s) {
		size_t n = strcspn(s, "|"), i;

		for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
			if (strlen(type_names[i].name) == n && !strncmp(s, type_names[i].name, n))
				break;
		if (i == sizeof(type_names) / sizeof(type_names[0]))
			return 0;
		bits |= type_names[i].bit;
		s += n + (s[n] == '|');
	}
	return bits;
}

void drb_action_schema_free(drb_action_schema *s)
{
	if (!s)
		return;
	for (drb_arg_spec *a = (drb_arg_spec *)s->args; a && a->name; a++) {
		free((char *)a->name);
		free((char *)a->def);
		free((char *)a->doc);
		for (size_t i = 0; a->choices && a->choices[i]; i++)
			free((char *)a->choices[i]);
		free((char **)a->choices);
	}
	for (drb_field_spec *f = (drb_field_spec *)s->result; f && f->name; f++) {
		free((char *)f->name);
		free((char *)f->doc);
	}
	free((drb_arg_spec *)s->args);
	free((drb_field_spec *)s->result);
	free((char *)s->doc);
	free((char *)s->resource);
	free((char *)s->result_doc);
	free(s);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object o, sorted (the declaration's order is a Lua table's: none). The
 * caller frees the array, not the strings (borrowed from o). */
static const char **sorted_keys(const json_t *o, size_t *n)
{
	const char **k = calloc(json_object_size(o) + 1, sizeof(*k));
	const char *key;
	json_t *v;

	*n = 0;
	if (!k)
		return NULL;
	json_object_foreach((json_t *)o, key, v)
	{
		(void)v;
		k[(*n)++] = key;
	}
	qsort(k, *n, sizeof(*k), cmp_key);
	return k;
}

static int only_keys(const json_t *o, const char *const *known, const char *where, drb_err *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v)
	{
		size_t i;

		(void)v;
		for (i = 0; known[i] && strcmp(known[i], key); i++)
			;
		if (!known[i])
			return drb_err_set(err, DRB_EINVAL, "%s: unknown key '%s'", where, key);
	}
	return 0;
}

static char *opt_text(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int parse_arg(const char *name, const json_t *d, drb_arg_spec *a, drb_err *err)
{
	static const char *const keys[] = {"type", "required", "default", "enum", "doc", NULL};
	const json_t *t = json_object_get(d, "type"), *req = json_object_get(d, "required");
	const json_t *def = json_object_get(d, "default"), *en = json_object_get(d, "enum");
	const json_t *x;
	char where[160];
	size_t i;
	int rc;

	snprintf(where, sizeof(where), "argument '%.100s'", name);
	if (!json_is_object(d))
		return drb_err_set(err, DRB_EINVAL, "%s: must be a table {type = ...}", where);
	if ((rc = only_keys(d, keys, where, err)))
		return rc;
	a->name = strdup(name);
	a->type = t ? (json_is_string(t) ? parse_type(json_string_value(t)) : 0) : DRB_T_ANY;
	if (!a->type)
		return drb_err_set(err, DRB_EINVAL,
				   "%s: type must be string, int, number, bool, duration, list, "
				   "map or any (or several joined by |)",
				   where);
	if (req && !json_is_boolean(req))
		return drb_err_set(err, DRB_EINVAL, "%s: required must be true or false", where);
	a->required = json_is_true(req);
	a->doc = opt_text(d, "doc");
	if (en) {
		char **c;

		if (!json_is_array(en) || !json_array_size(en))
			return drb_err_set(err, DRB_EINVAL, "%s: enum must be a list of strings",
					   where);
		c = calloc(json_array_size(en) + 1, sizeof(*c));
		a->choices = (const char *const *)c;
		if (!c)
			return drb_err_set(err, DRB_ENOMEM, "out of memory");
		json_array_foreach(en, i, x)
		{
			if (!json_is_string(x))
				return drb_err_set(err, DRB_EINVAL,
						   "%s: enum must be a list of strings", where);
			if (!(c[i] = strdup(json_string_value(x))))
				return drb_err_set(err, DRB_ENOMEM, "out of memory");
		}
	}
	if (def && !json_is_null(def)) {
		drb_err e2 = {0};

		if (drb_arg_check(a, def, &e2))
			return drb_err_set(err, DRB_EINVAL, "default: %s", e2.msg);
		a->def = json_is_string(def) ? strdup(json_string_value(def))
					     : json_dumps(def, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	return 0;
}

int drb_action_schema_from_json(const json_t *decl, drb_action_schema **out, drb_err *err)
{
	static const char *const keys[] = {"mode", "doc", "args", "result", "resource", NULL};
	const json_t *args = json_object_get(decl, "args"), *res = json_object_get(decl, "result");
	drb_action_schema *s = NULL;
	const char **k = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!json_is_object(decl))
		return drb_err_set(err, DRB_EINVAL, "the declaration must be a table");
	if ((rc = only_keys(decl, keys, "declaration", err)))
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return drb_err_set(err, DRB_ENOMEM, "out of memory");
	s->doc = opt_text(decl, "doc");
	s->resource = opt_text(decl, "resource");
	s->open = args == NULL;
	if (args && !json_is_object(args) && !(json_is_array(args) && !json_array_size(args))) {
		rc = drb_err_set(err, DRB_EINVAL, "args must be a table name = {type = ...}");
		goto out;
	}
	if (args) {
		drb_arg_spec *v;

		k = sorted_keys(json_is_object(args) ? args : NULL, &n);
		v = calloc(n + 1, sizeof(*v));
		s->args = v;
		if (!k || !v) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if ((rc = parse_arg(k[i], json_object_get(args, k[i]), &v[i], err)))
				goto out;
		free(k);
		k = NULL;
	}
	if (res && json_is_object(res)) {
		drb_field_spec *f;

		k = sorted_keys(res, &n);
		f = calloc(n + 1, sizeof(*f));
		s->result = f;
		if (!k || !f) {
			rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			const json_t *d = json_object_get(res, k[i]),
				     *t = json_object_get(d, "type");

			f[i].name = strdup(k[i]);
			f[i].type =
			    json_is_string(t) ? parse_type(json_string_value(t)) : DRB_T_ANY;
			f[i].doc = opt_text(d, "doc");
			if (!json_is_object(d) || !f[i].type) {
				rc = drb_err_set(err, DRB_EINVAL,
						 "result field '%.100s': must be a table {type = "
						 "..., doc = ...}",
						 k[i]);
				goto out;
			}
		}
	} else if (res && !(json_is_array(res) && !json_array_size(res))) {
		rc = drb_err_set(err, DRB_EINVAL, "result must be a table name = {type = ...}");
		goto out;
	}
	if (s->resource && !drb_schema_arg(s, s->resource)) {
		rc = drb_err_set(err, DRB_EINVAL, "resource '%.100s' is not a declared argument",
				 s->resource);
		goto out;
	}
	*out = s;
	s = NULL;
out:
	free(k);
	drb_action_schema_free(s);
	return rc;
}
