/* Private to the runbook module: the positioned YAML tree the loader validates (yaml_tree.c)
 * and the ${ } scanner shared by the loader and the tests. Nothing outside src/runbook
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
	yn_kind kind;
	drb_pos pos;
	/* scalars */
	char *str; /* NUL-terminated bytes as libyaml gave them */
	size_t len;
	yn_vtype vt;
	long long i;
	double r;
	int b;
	/* sequences: kids[i]; mappings: kids[2k] key, kids[2k+1] value */
	struct ynode **kids;
	size_t n, cap;
	size_t count; /* nodes in this subtree, itself included */
	int height;   /* 1 for a scalar */
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

/* Scans a with: string for ${ } expressions. For each expression calls cb(ud, expr, len)
 * (cb returns 0 to go on). Returns 0, or 1 for an unterminated "${", 2 for an empty "${}",
 * or what cb returned. "$${" is a literal "${" and is skipped. */
int drb_interp_scan(const char *s, int (*cb)(void *ud, const char *e, size_t n), void *ud);

/* drb_runbook_check_expr/_chunk in a given bare lua_State (the loader compiles every
 * expression of a file in one state); L NULL: a state of their own. */
typedef struct lua_State lua_State;
int drb_check_expr_in(lua_State *L, const char *src, drb_err *err);
int drb_check_chunk_in(lua_State *L, const char *src, drb_err *err);

/* Checks the with: mapping w of a step or call against schema s (with_check.c): unknown
 * arguments at their key, wrong literal values at the value, missing required arguments at
 * w (or at `at` when there is no with:). Values holding ${ } are left to the run, which
 * checks them once interpolated. prefix starts every message ("step 'x': "). */
void drb_with_check(drb_diags *d, const char *prefix, const char *action,
		    const drb_action_schema *s, const ynode *w, const ynode *at);

/* 1 when buf is UTF-8 text without NUL bytes (what a runbook or schedule may be). */
int drb_runbook_is_text(const unsigned char *buf, size_t len);

#endif
