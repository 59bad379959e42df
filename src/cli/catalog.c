/* `drbook actions [--json | --markdown]`: one pass over the engine's registry, rendered three
 * ways. Everything printed comes from the schemas (include/drbook/action.h), so the catalog,
 * the docs and the checks of validate and run cannot drift apart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <drbook/engine.h>

#include "catalog.h"

static const char usage_actions[] =
    "usage: drbook actions [--json | --markdown]\n"
    "\n"
    "Prints the action catalog: every action with its mode (read-only or mutating), the\n"
    "arguments it takes (type, required, default, allowed values), its result fields and the\n"
    "argument naming the resource it touches. validate checks with: against the same\n"
    "schemas. --json prints one JSON array; --markdown the page docs/actions.md is made of.\n";

static const char *mode_text(const drb_action *a)
{
	switch (a->mode) {
	case DRB_ACT_RO:
		return "read-only";
	case DRB_ACT_MUT:
		return "mutating";
	case DRB_ACT_DEPENDS:
		return "read-only for GET, HEAD and OPTIONS, otherwise mutating";
	case DRB_ACT_STEP:
		return "mutating unless the step says read_only: true";
	}
	return "mutating";
}

static const char *mode_key(const drb_action *a)
{
	static const char *const keys[] = {"ro", "mut", "depends", "step"};

	return a->mode >= DRB_ACT_RO && a->mode <= DRB_ACT_STEP ? keys[a->mode] : "mut";
}

static json_t *choices_json(const char *const *c)
{
	json_t *v = json_array();

	for (size_t i = 0; v && c[i]; i++)
		json_array_append_new(v, json_string(c[i]));
	return v;
}

static json_t *action_json(const drb_action *a)
{
	const drb_action_schema *s = a->schema;
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "name", a->name, "mode", mode_key(a),
			      "doc", s ? s->doc : NULL, "resource", s ? s->resource : NULL,
			      "result_doc", s ? s->result_doc : NULL);
	json_t *args = json_array(), *res = json_array();
	char t[64];

	for (const drb_arg_spec *x = s ? s->args : NULL; x && x->name; x++) {
		drb_type_text(x->type, 0, t, sizeof(t));
		json_array_append_new(
		    args, json_pack("{s:s, s:s, s:b, s:s?, s:o?, s:s?}", "name", x->name, "type", t,
				    "required", x->required, "default", x->def, "enum",
				    x->choices ? choices_json(x->choices) : NULL, "doc", x->doc));
	}
	for (const drb_field_spec *f = s ? s->result : NULL; f && f->name; f++) {
		drb_type_text(f->type, 0, t, sizeof(t));
		json_array_append_new(
		    res, json_pack("{s:s, s:s, s:s?}", "name", f->name, "type", t, "doc", f->doc));
	}
	if (o) {
		json_object_set_new(o, "args", args ? args : json_null());
		json_object_set_new(o, "result", res ? res : json_null());
	}
	return o;
}

static void print_text(const drb_action *a)
{
	const drb_action_schema *s = a->schema;
	char t[64];

	printf("%s (%s)\n", a->name, mode_text(a));
	if (s && s->doc)
		printf("  %s\n", s->doc);
	if (s && s->resource)
		printf("  resource: %s\n", s->resource);
	if (s && s->args && s->args->name) {
		printf("  arguments:\n");
		for (const drb_arg_spec *x = s->args; x->name; x++) {
			drb_type_text(x->type, 0, t, sizeof(t));
			printf("    %-22s %-16s %-9s %s", x->name, t, x->required ? "required" : "",
			       x->doc ? x->doc : "");
			if (x->def)
				printf(" (default %s)", x->def);
			for (size_t i = 0; x->choices && x->choices[i]; i++)
				printf("%s%s%s", i ? ", " : " [", x->choices[i],
				       x->choices[i + 1] ? "" : "]");
			printf("\n");
		}
	}
	if (s && s->result_doc)
		printf("  result: %s\n", s->result_doc);
	if (s && s->result && s->result->name) {
		printf("  result fields:\n");
		for (const drb_field_spec *f = s->result; f->name; f++) {
			drb_type_text(f->type, 0, t, sizeof(t));
			printf("    %-22s %-16s %s\n", f->name, t, f->doc ? f->doc : "");
		}
	}
	printf("\n");
}

/* Markdown table cells: a '|' would end the cell. */
static void cell(const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			putchar('\\');
		putchar(*s);
	}
}

static void print_markdown(const drb_action *a)
{
	const drb_action_schema *s = a->schema;
	char t[64];

	printf("## %s\n\n", a->name);
	printf("%s%s. Mode: %s.", s && s->doc ? s->doc : "", s && s->doc ? "" : "(undocumented)",
	       mode_text(a));
	if (s && s->resource)
		printf(" Resource: `%s`.", s->resource);
	printf("\n\n");
	if (s && s->args && s->args->name) {
		printf("| argument | type | required | default | values | meaning |\n");
		printf("|---|---|---|---|---|---|\n");
		for (const drb_arg_spec *x = s->args; x->name; x++) {
			drb_type_text(x->type, 0, t, sizeof(t));
			printf("| `%s` | ", x->name);
			cell(t);
			printf(" | %s | ", x->required ? "yes" : "");
			cell(x->def);
			printf(" | ");
			for (size_t i = 0; x->choices && x->choices[i]; i++) {
				printf("%s", i ? ", " : "");
				cell(x->choices[i]);
			}
			printf(" | ");
			cell(x->doc);
			printf(" |\n");
		}
		printf("\n");
	} else {
		printf("No arguments.\n\n");
	}
	if (s && s->result_doc)
		printf("Result: %s.\n\n", s->result_doc);
	if (s && s->result && s->result->name) {
		printf("| result field | type | meaning |\n|---|---|---|\n");
		for (const drb_field_spec *f = s->result; f->name; f++) {
			drb_type_text(f->type, 0, t, sizeof(t));
			printf("| `%s` | ", f->name);
			cell(t);
			printf(" | ");
			cell(f->doc);
			printf(" |\n");
		}
		printf("\n");
	} else if (!s || !s->result_doc) {
		printf("Result: an empty table.\n\n");
	}
}

int drb_cli_actions(int argc, char **argv)
{
	int json = 0, md = 0;
	const drb_action *a;
	json_t *all = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--markdown")) {
			md = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage_actions, stdout);
			return DRB_EXIT_OK;
		} else {
			fprintf(stderr, "drbook: unknown option '%s'\n\n%s", argv[i],
				usage_actions);
			return DRB_EXIT_USAGE;
		}
	}
	if (json && md) {
		fprintf(stderr, "drbook: give --json or --markdown, not both\n\n%s", usage_actions);
		return DRB_EXIT_USAGE;
	}
	if (json)
		all = json_array();
	if (md)
		printf("# Action catalog\n\n"
		       "<!-- Generated by `drbook actions --markdown > docs/actions.md` from the\n"
		       "     action schemas; do not edit: tests/e2e/test_schemas.py fails when "
		       "they differ. -->\n\n"
		       "Every action a runbook step (or rollback, done_when, notify entry) may "
		       "name, with the\narguments `with:` takes and the fields of `result`. "
		       "`drbook validate` checks literal\narguments against these schemas; values "
		       "written as `${ }` are checked when the step runs.\nTypes: `duration` is "
		       "seconds or a string such as `90s`, `15m`, `1h30m`; `int` also takes a\n"
		       "string of digits; `bool` also takes the strings `\"true\"` and "
		       "`\"false\"`. Custom actions\nregistered from Lua (`drbook.action`) declare "
		       "theirs the same way (docs/runbook-format.md).\n\n");
	for (size_t i = 0; (a = drb_engine_action_at(i)); i++) {
		if (json)
			json_array_append_new(all, action_json(a));
		else if (md)
			print_markdown(a);
		else
			print_text(a);
	}
	if (json) {
		char *text = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(all);
	}
	return fflush(stdout) == 0 ? DRB_EXIT_OK : DRB_EXIT_FAILED;
}
