/* The loaded model's lifetime and queries: freeing, finding a step, and binding the
 * command line's -p key=value strings to the declared, typed parameters. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runbook_int.h"

static void call_free(drb_call_spec *c)
{
	if (!c)
		return;
	free(c->action);
	json_decref(c->with);
	free(c->script);
	free(c->assert_.src);
}

static void step_free(drb_step *s)
{
	free(s->id);
	free(s->action);
	json_decref(s->with);
	free(s->script);
	free(s->assert_.src);
	free(s->when.src);
	free(s->until.src);
	free(s->for_each.src);
	free(s->done_when.src);
	call_free(s->done_when_call);
	free(s->done_when_call);
	call_free(s->rollback);
	free(s->rollback);
	free(s->as);
	for (size_t i = 0; i < s->n_needs; i++)
		free(s->needs[i]);
	free(s->needs);
	free(s->deps);
}

void drb_runbook_free(drb_runbook *rb)
{
	if (!rb)
		return;
	free(rb->path);
	free(rb->dir);
	free(rb->name);
	free(rb->description);
	free(rb->scenario);
	for (size_t i = 0; i < rb->n_params; i++) {
		free(rb->params[i].name);
		json_decref(rb->params[i].def);
		json_decref(rb->params[i].choices);
		free(rb->params[i].description);
	}
	free(rb->params);
	for (size_t i = 0; i < rb->n_conns; i++) {
		free(rb->conns[i].name);
		free(rb->conns[i].kind);
		json_decref(rb->conns[i].spec);
	}
	free(rb->conns);
	for (size_t i = 0; i < rb->n_lua_modules; i++)
		free(rb->lua_modules[i]);
	free(rb->lua_modules);
	for (size_t i = 0; i < rb->n_preflight; i++)
		step_free(&rb->preflight[i]);
	free(rb->preflight);
	for (size_t i = 0; i < rb->n_steps; i++)
		step_free(&rb->steps[i]);
	free(rb->steps);
	for (size_t i = 0; i < rb->n_shadow_setup; i++)
		step_free(&rb->shadow_setup[i]);
	free(rb->shadow_setup);
	for (size_t i = 0; i < rb->n_shadow_teardown; i++)
		step_free(&rb->shadow_teardown[i]);
	free(rb->shadow_teardown);
	json_decref(rb->shadow_params);
	for (size_t i = 0; i < rb->n_locks; i++)
		free(rb->locks[i]);
	free(rb->locks);
	for (size_t i = 0; i < rb->n_stop_when; i++) {
		free(rb->stop_when[i].alarm);
		free(rb->stop_when[i].region);
	}
	free(rb->stop_when);
	for (size_t i = 0; i < rb->n_notify; i++) {
		for (size_t j = 0; j < rb->notify[i].n_on; j++)
			free(rb->notify[i].on[j]);
		free(rb->notify[i].on);
		call_free(&rb->notify[i].call);
	}
	free(rb->notify);
	free(rb);
}

const drb_step *drb_runbook_step(const drb_runbook *rb, const char *id)
{
	if (!rb || !id)
		return NULL;
	for (size_t i = 0; i < rb->n_preflight; i++)
		if (rb->preflight[i].id && !strcmp(rb->preflight[i].id, id))
			return &rb->preflight[i];
	for (size_t i = 0; i < rb->n_shadow_setup; i++)
		if (rb->shadow_setup[i].id && !strcmp(rb->shadow_setup[i].id, id))
			return &rb->shadow_setup[i];
	for (size_t i = 0; i < rb->n_shadow_teardown; i++)
		if (rb->shadow_teardown[i].id && !strcmp(rb->shadow_teardown[i].id, id))
			return &rb->shadow_teardown[i];
	for (size_t i = 0; i < rb->n_steps; i++)
		if (rb->steps[i].id && !strcmp(rb->steps[i].id, id))
			return &rb->steps[i];
	return NULL;
}

int drb_runbook_critical_path(const drb_runbook *rb, size_t **path, size_t *n)
{
	size_t *len = NULL, *prev = NULL, *out = NULL, best = 0, k;
	int rc = 0;

	*path = NULL;
	*n = 0;
	if (!rb->n_steps)
		return 0;
	len = calloc(rb->n_steps, sizeof(*len));
	prev = calloc(rb->n_steps, sizeof(*prev));
	if (!len || !prev) {
		rc = DRB_ENOMEM;
		goto out;
	}
	/* longest chain ending at each step; deps may point forward (needs: [a later step]),
	 * so relax until nothing changes: at most n rounds in an acyclic graph */
	for (size_t round = 0, changed = 1; changed && round <= rb->n_steps; round++) {
		changed = 0;
		for (size_t i = 0; i < rb->n_steps; i++) {
			const drb_step *s = &rb->steps[i];
			size_t l = 1, p = i;

			for (size_t d = 0; d < s->n_deps; d++)
				if (len[s->deps[d]] + 1 > l)
					l = len[s->deps[d]] + 1, p = s->deps[d];
			if (l != len[i] || p != prev[i])
				len[i] = l, prev[i] = p, changed = 1;
		}
	}
	for (size_t i = 1; i < rb->n_steps; i++)
		if (len[i] > len[best])
			best = i;
	out = calloc(len[best], sizeof(*out));
	if (!out) {
		rc = DRB_ENOMEM;
		goto out;
	}
	k = len[best];
	for (size_t i = best;; i = prev[i]) {
		out[--k] = i;
		if (!k || prev[i] == i)
			break;
	}
	*n = len[best];
	*path = out;
out:
	free(len);
	free(prev);
	return rc;
}

/* Comma-separated strings, each trimmed; "" is the empty list. */
static json_t *split_list(const char *s)
{
	json_t *a = json_array();

	while (a && *s) {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		const char *b = s, *z = s + n;

		while (b < z && (*b == ' ' || *b == '\t'))
			b++;
		while (z > b && (z[-1] == ' ' || z[-1] == '\t'))
			z--;
		if (json_array_append_new(a, json_stringn(b, (size_t)(z - b)))) {
			json_decref(a);
			return NULL;
		}
		if (!end)
			break;
		s = end + 1;
		if (!*s && json_array_append_new(a, json_string(""))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int convert(const drb_param *p, const char *val, json_t **out, drb_err *err)
{
	char *end = NULL;
	double d;

	*out = NULL;
	switch (p->type) {
	case DRB_PT_STRING:
		*out = json_string(val);
		if (!*out)
			return drb_err_set(err, DRB_EINVAL, "parameter '%s' must be UTF-8 text",
					   p->name);
		return 0;
	case DRB_PT_INT: {
		long long v;

		errno = 0;
		v = strtoll(val, &end, 10);
		if (!*val || *end || errno)
			return drb_err_set(err, DRB_EINVAL,
					   "parameter '%s' must be an integer, got '%.80s'",
					   p->name, val);
		*out = json_integer(v);
		return 0;
	}
	case DRB_PT_BOOL:
		if (!strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "1"))
			*out = json_true();
		else if (!strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "0"))
			*out = json_false();
		else
			return drb_err_set(
			    err, DRB_EINVAL,
			    "parameter '%s' must be true, false, yes, no, 1 or 0, got "
			    "'%.80s'",
			    p->name, val);
		return 0;
	case DRB_PT_DURATION:
		if (drb_duration_parse(val, &d)) {
			errno = 0;
			d = strtod(val, &end);
			if (!*val || *end || errno || !(d >= 0) || !isfinite(d))
				return drb_err_set(err, DRB_EINVAL,
						   "parameter '%s' must be a duration (like 90s or "
						   "15m, or seconds), got '%.80s'",
						   p->name, val);
		}
		*out = d == floor(d) && d < 9e15 ? json_integer((json_int_t)d) : json_real(d);
		return 0;
	case DRB_PT_LIST:
		if (val[0] == '[') {
			*out = json_loads(val, JSON_DECODE_ANY, NULL);
			if (!json_is_array(*out)) {
				json_decref(*out);
				*out = NULL;
				return drb_err_set(err, DRB_EINVAL,
						   "parameter '%s' must be a JSON array or a "
						   "comma-separated list",
						   p->name);
			}
			return 0;
		}
		*out = split_list(val);
		return *out ? 0 : drb_err_set(err, DRB_ENOMEM, "out of memory");
	case DRB_PT_MAP:
		*out = json_loads(val, JSON_DECODE_ANY, NULL);
		if (!json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
			return drb_err_set(err, DRB_EINVAL, "parameter '%s' must be a JSON object",
					   p->name);
		}
		return 0;
	}
	return drb_err_set(err, DRB_EINVAL, "parameter '%s' has an unknown type", p->name);
}

int drb_runbook_bind_params(const drb_runbook *rb, char *const *kv, size_t n_kv, json_t **out,
			    drb_err *err)
{
	json_t *obj = json_object(), *given = json_object();
	int rc = 0;

	*out = NULL;
	if (!obj || !given) {
		rc = drb_err_set(err, DRB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n_kv; i++) {
		const char *eq = strchr(kv[i], '=');
		const drb_param *p = NULL;
		char name[256];
		json_t *val = NULL;
		size_t nl;

		if (!eq || eq == kv[i]) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "invalid parameter '%.80s': use -p NAME=VALUE", kv[i]);
			goto out;
		}
		nl = (size_t)(eq - kv[i]);
		if (nl >= sizeof(name))
			nl = sizeof(name) - 1;
		memcpy(name, kv[i], nl);
		name[nl] = '\0';
		for (size_t j = 0; j < rb->n_params; j++)
			if (!strcmp(rb->params[j].name, name))
				p = &rb->params[j];
		if (!p) {
			rc = drb_err_set(err, DRB_EINVAL, "unknown parameter '%.80s'", name);
			goto out;
		}
		rc = convert(p, eq + 1, &val, err);
		if (rc)
			goto out;
		if (p->choices) {
			size_t k;
			json_t *c;
			int found = 0;

			json_array_foreach(p->choices, k, c) found |= json_equal(c, val);
			if (!found) {
				char *list = json_dumps(p->choices, JSON_COMPACT | JSON_ENCODE_ANY);

				json_decref(val);
				rc =
				    drb_err_set(err, DRB_EINVAL,
						"parameter '%s' must be one of %.400s, got '%.80s'",
						p->name, list ? list : "the choices", eq + 1);
				free(list);
				goto out;
			}
		}
		json_object_set_new(given, p->name, val); /* a later -p for the same name wins */
	}
	for (size_t j = 0; j < rb->n_params; j++) {
		const drb_param *p = &rb->params[j];
		json_t *v = json_object_get(given, p->name);

		if (!v)
			v = p->def;
		if (!v && p->required) {
			rc = drb_err_set(err, DRB_EINVAL,
					 "missing required parameter '%s' (pass -p %s=VALUE)",
					 p->name, p->name);
			goto out;
		}
		json_object_set_new(obj, p->name, v ? json_deep_copy(v) : json_null());
	}
	*out = obj;
	obj = NULL;
out:
	json_decref(obj);
	json_decref(given);
	return rc;
}

int drb_runbook_lock_key_ok(const char *key)
{
	size_t n = 0;

	for (; key[n]; n++)
		if ((unsigned char)key[n] < 0x20 || (unsigned char)key[n] == 0x7f)
			return 0;
	return n > 0 && n <= DRB_LOCK_KEY_MAX;
}
