/* Reading action arguments (the interpolated with: object) with clear errors. */
#include <errno.h>
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
