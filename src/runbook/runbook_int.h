/* Private to the runbook module: the positioned YAML tree the loader validates (yaml_tree.c)
 * and the checking helpers shared by the loader and the tests. Nothing outside src/runbook
 * includes this. */
#ifndef DRB_RUNBOOK_INT_H
#define DRB_RUNBOOK_INT_H

#include <stddef.h>

#include <jansson.h>

#include <drbook/runbook.h>
#include <drbook/util.h>

#define DRB_YAML_MAX_NODES 100000 /* after alias expansion: stops alias bombs early */

typedef enum yn_kind { YN_SCALAR, YN_SEQ, YN_MAP } yn_kind;

/* Resolved type of a scalar (YAML 1.2 core schema, restricted as docs/runbook-format.md). */
typedef enum yn_vtype { YV_STR, YV_INT, YV_REAL, YV_BOOL, YV_NULL } yn_vtype;

typedef struct ynode {
	/* The fields are ordered and the scalar's value is a union so that a node takes 80
	 * bytes: a 10,000-step runbook is 100,000 nodes, held while the model is built. */
	yn_kind kind;
	yn_vtype vt; /* scalars */
	drb_pos pos;
	int quoted; /* '...' or "...": the text starts one column after pos */
	int height; /* 1 for a scalar */
	/* scalars */
	char *str; /* NUL-terminated bytes as libyaml gave them */
	size_t len;
	union { /* the one vt names; read only after checking vt */
		long long i;
		double r;
		int b;
	};
	/* sequences: kids[i]; mappings: kids[2k] key, kids[2k+1] value */
	struct ynode **kids;
	size_t n, cap;
	size_t count; /* nodes in this subtree, itself included */
} ynode;

/* Parses buf (already checked to be UTF-8 text without NUL) into *out. Every YAML problem is
 * added to d. Returns 0 with *out (NULL for an empty document), or DRB_EINVAL when the
 * problems are such that the tree cannot be trusted (syntax error, limits); non-fatal ones
 * (duplicate keys, merge keys, tags) return 0 with the tree and diagnostics added. */
int drb_yaml_parse(const char *buf, size_t len, ynode **out, drb_diags *d);
void drb_yaml_free(ynode *n);
/* Converts a node to JSON (the caller's); NULL on out of memory or a string jansson
 * refuses. */
json_t *drb_yaml_to_json(const ynode *n);

/* Finds the references root.NAME, root["NAME"] and root['NAME'] in Lua source (an
 * expression or a chunk), outside string literals and comments (the shared tokenizer of
 * luatext.h); root must stand as a name of its own (t.steps.x is not a reference to steps).
 * For each calls cb(ud, name, len, offset of root in src) (cb returns 0 to go on). Returns 0 or
 * what cb returned. Used for the `steps.Y` checks, on every expression of a ${ } template
 * (drb_tmpl_next) and on expressions and scripts themselves. */
int drb_expr_refs(const char *src, const char *root,
		  int (*cb)(void *ud, const char *name, size_t n, size_t off), void *ud);

/* drb_runbook_check_expr/_chunk in a given bare lua_State (the loader compiles every
 * expression of a file in one state); L NULL: a state of their own. An expression is len
 * bytes (a template's may hold a NUL from a YAML escape). */
typedef struct lua_State lua_State;
int drb_check_expr_in(lua_State *L, const char *src, size_t len, drb_err *err);
int drb_check_chunk_in(lua_State *L, const char *src, drb_err *err);

/* The reference checks of refs.c over the whole tree (root a mapping): undeclared
 * parameters and for_each variables used out of scope, in every expression, template and
 * script. Adds to d. A text that does not compile is the loader's to report and is skipped
 * here: with compiled set, the caller has compiled every text and found no problem at all,
 * so nothing is compiled again; otherwise each text is compiled in L first, like the
 * functions above. */
void drb_check_refs(drb_diags *d, lua_State *L, const ynode *root, int compiled);
/* Checks the with: mapping w of a step or call against schema s (with_check.c): unknown
 * arguments at their key, wrong literal values at the value, missing required arguments at
 * w (or at `at` when there is no with:). Values holding ${ } are left to the run, which
 * checks them once interpolated. prefix starts every message ("step 'x': "). */
void drb_with_check(drb_diags *d, const char *prefix, const char *action,
		    const drb_action_schema *s, const ynode *w, const ynode *at);

/* 1 when buf is UTF-8 text without NUL bytes (what a runbook or schedule may be). */
int drb_runbook_is_text(const unsigned char *buf, size_t len);

#endif
