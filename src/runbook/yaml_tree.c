/* YAML text -> positioned node tree (libyaml event API). Owns the file-level YAML rules:
 * one document, depth and node caps, alias expansion by copy (bounded, so an alias bomb is
 * refused before it costs memory), duplicate and merge keys, tags, scalar typing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "runbook_int.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

typedef struct frame {
	ynode *node;
	char *anchor;	/* registered when the container closes: no alias may enter itself */
	int drop_value; /* the key just read was refused: drop the value that follows */
} frame;

typedef struct anchor {
	char *name;
	const ynode *node;
} anchor;

typedef struct builder {
	drb_diags *d;
	frame *stack;
	size_t depth, stack_cap;
	anchor *anchors;
	size_t n_anchors, anchors_cap;
	ynode **grave; /* refused nodes: kept alive until the end because anchors may point there */
	size_t n_grave, grave_cap;
	ynode *root;
	size_t total; /* nodes created, copies included */
	int aliased;  /* an alias was expanded: names the likely cause when the cap is hit */
	int fatal;
	size_t max_nodes; /* the node cap, from the input's size */
} builder;

static drb_pos mark_pos(yaml_mark_t m)
{
	drb_pos p = {(int)m.line + 1, (int)m.column + 1};

	return p;
}

void drb_yaml_free(ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		drb_yaml_free(n->kids[i]);
	free(n->kids);
	free(n); /* a scalar's text is in the same allocation (scalar_new) */
}

static int push_ptr(void **arr, size_t *n, size_t *cap, size_t elem, const void *item)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		void *p = realloc(*arr, nc * elem);

		if (!p)
			return DRB_ENOMEM;
		*arr = p;
		*cap = nc;
	}
	memcpy((char *)*arr + *n * elem, item, elem);
	(*n)++;
	return 0;
}

static int add_kid(ynode *parent, ynode *kid)
{
	int rc = push_ptr((void **)&parent->kids, &parent->n, &parent->cap, sizeof(ynode *), &kid);

	if (rc == 0) {
		parent->count += kid->count;
		if (kid->height + 1 > parent->height)
			parent->height = kid->height + 1;
	}
	return rc;
}

static void bury(builder *b, ynode *n)
{
	if (push_ptr((void **)&b->grave, &b->n_grave, &b->grave_cap, sizeof(ynode *), &n))
		drb_yaml_free(n); /* out of memory: nothing can alias it any more anyway */
}

/* The node cap, checked before anything is created or copied: returns -1 (fatal) when
 * adding n more nodes would pass it. */
static int over_cap(builder *b, size_t n, yaml_mark_t m)
{
	if (b->total + n <= b->max_nodes)
		return 0;
	if (b->aliased || n > 1)
		drb_diags_add(b->d, mark_pos(m),
			      "too many YAML nodes after alias expansion (billion laughs?)");
	else
		drb_diags_add(b->d, mark_pos(m), "too many YAML nodes (more than %zu)",
			      b->max_nodes);
	b->fatal = 1;
	return -1;
}

/* A node with extra bytes after it (a scalar's text); counted in b when b is given (a copy's
 * nodes are counted by the alias that makes it). */
static ynode *node_new(builder *b, yn_kind kind, drb_pos pos, size_t extra)
{
	ynode *n = calloc(1, sizeof(*n) + extra);

	if (!n)
		return NULL;
	n->kind = kind;
	n->pos = pos;
	n->count = 1;
	n->height = kind == YN_SCALAR ? 0 : 1;
	if (b)
		b->total++;
	return n;
}

/* A scalar node with its text (len bytes, NUL added) in the same allocation: one malloc and
 * one free a scalar instead of two, and no second block's overhead. */
static ynode *scalar_new(builder *b, drb_pos pos, const char *text, size_t len)
{
	ynode *n = node_new(b, YN_SCALAR, pos, len + 1);

	if (!n)
		return NULL;
	n->str = (char *)(n + 1);
	memcpy(n->str, text, len);
	n->str[len] = '\0';
	n->len = len;
	return n;
}

static ynode *node_copy(const ynode *src)
{
	ynode *n = src->str ? scalar_new(NULL, src->pos, src->str, src->len) : calloc(1, sizeof(*n));
	char *str;

	if (!n)
		return NULL;
	str = n->str;
	*n = *src;
	n->kids = NULL;
	n->str = str;
	n->n = n->cap = 0;
	if (src->n) {
		n->kids = calloc(src->n, sizeof(ynode *));
		if (!n->kids)
			goto fail;
		n->cap = src->n;
		for (size_t i = 0; i < src->n; i++) {
			n->kids[i] = node_copy(src->kids[i]);
			if (!n->kids[i])
				goto fail;
			n->n++;
		}
	}
	return n;
fail:
	drb_yaml_free(n);
	return NULL;
}

/* YAML 1.2 core schema, decimal only: plain scalars become null, bool, int or real. */
static void resolve_plain(ynode *n)
{
	const char *s = n->str;
	size_t i = 0;
	int digits = 0, frac = 0, expo = 0;

	n->vt = YV_STR;
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL")) {
		n->vt = YV_NULL;
		return;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		n->vt = YV_BOOL;
		n->b = 1;
		return;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		n->vt = YV_BOOL;
		n->b = 0;
		return;
	}
	if (s[i] == '-' || s[i] == '+')
		i++;
	while (s[i] >= '0' && s[i] <= '9') {
		i++;
		digits++;
	}
	if (s[i] == '.') {
		frac = 1;
		i++;
		while (s[i] >= '0' && s[i] <= '9') {
			i++;
			digits++;
		}
	}
	if (!digits)
		return;
	if (s[i] == 'e' || s[i] == 'E') {
		int ed = 0;

		expo = 1;
		i++;
		if (s[i] == '-' || s[i] == '+')
			i++;
		while (s[i] >= '0' && s[i] <= '9') {
			i++;
			ed++;
		}
		if (!ed)
			return;
	}
	if (i != n->len)
		return;
	if (!frac && !expo) {
		long long v;

		errno = 0;
		v = strtoll(s, NULL, 10);
		if (errno == 0) {
			n->vt = YV_INT;
			n->i = v;
			return;
		}
	}
	{
		double r = strtod(s, NULL);

		if (isfinite(r)) {
			n->vt = YV_REAL;
			n->r = r;
		}
	}
}

/* Standard tags only: a runbook is data, and custom tags would mean custom constructors. */
static int check_tag(builder *b, const yaml_char_t *tag, yaml_mark_t m, int *force_str)
{
	static const char *const ok[] = {"str", "int", "float", "bool", "null", "map", "seq"};
	const char *t = (const char *)tag;

	*force_str = 0;
	if (!t || !strcmp(t, "!"))
		return 0;
	if (!strncmp(t, TAG_PREFIX, strlen(TAG_PREFIX))) {
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (!strcmp(t + strlen(TAG_PREFIX), ok[i])) {
				*force_str = i == 0;
				return 0;
			}
	}
	drb_diags_add(b->d, mark_pos(m), "unsupported YAML tag '%.80s'", t);
	return -1;
}

static int key_cmp(const void *pa, const void *pb)
{
	ynode *const *a = pa, *const *b = pb;
	int c;

	if ((*a)->kind != YN_SCALAR || (*b)->kind != YN_SCALAR)
		return (*a)->kind - (*b)->kind;
	c = strcmp((*a)->str, (*b)->str);
	if (c)
		return c;
	/* same text: the earlier one first, so it is the one kept */
	return (*a)->pos.line != (*b)->pos.line ? (*a)->pos.line - (*b)->pos.line
						: (*a)->pos.col - (*b)->pos.col;
}

/* Sorting is what keeps a mapping with tens of thousands of keys from taking quadratic time. */
static int dedupe_keys(builder *b, ynode *m)
{
	size_t nk = m->n / 2, w = 0;
	ynode **keys = NULL;
	int rc = 0;

	if (nk < 2)
		return 0;
	keys = malloc(nk * sizeof(*keys));
	if (!keys)
		return DRB_ENOMEM;
	for (size_t i = 0; i < nk; i++)
		keys[i] = m->kids[2 * i];
	qsort(keys, nk, sizeof(*keys), key_cmp);
	for (size_t i = 1; i < nk; i++) {
		if (strcmp(keys[i]->str, keys[i - 1]->str))
			continue;
		drb_diags_add(b->d, keys[i]->pos, "duplicate key '%.80s'", keys[i]->str);
		keys[i]->kind = YN_SEQ; /* mark: dropped below (keys are always scalars here) */
	}
	free(keys);
	m->count = 1;
	m->height = 1;
	for (size_t i = 0; i < nk; i++) {
		ynode *k = m->kids[2 * i], *v = m->kids[2 * i + 1];

		if (k->kind == YN_SEQ) {
			k->kind = YN_SCALAR;
			bury(b, k);
			bury(b, v);
			continue;
		}
		m->kids[w++] = k;
		m->kids[w++] = v;
		m->count += k->count + v->count;
		if (v->height + 1 > m->height)
			m->height = v->height + 1;
	}
	m->n = w;
	return rc;
}

/* Attaches a finished node to the open container (or makes it the root). */
static int attach(builder *b, ynode *n)
{
	frame *f;

	if (!b->depth) {
		if (b->root)
			drb_yaml_free(b->root);
		b->root = n;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->kind == YN_SEQ)
		return add_kid(f->node, n);
	if (f->node->n % 2 == 0 && !f->drop_value) {
		/* a key */
		if (n->kind != YN_SCALAR) {
			drb_diags_add(b->d, n->pos, "mapping keys must be plain strings");
			f->drop_value = 1;
			bury(b, n);
			return 0;
		}
		if (n->vt != YV_STR || !strcmp(n->str, "<<")) {
			if (n->vt == YV_STR) {
				drb_diags_add(
				    b->d, n->pos,
				    "YAML merge keys '<<' are not supported: write the keys "
				    "out");
				f->drop_value = 1;
				bury(b, n);
				return 0;
			}
			/* 1: or true: as a key is still a name to us: keep its text */
			n->vt = YV_STR;
		}
		return add_kid(f->node, n);
	}
	if (f->drop_value) {
		f->drop_value = 0;
		bury(b, n);
		return 0;
	}
	return add_kid(f->node, n);
}

static int register_anchor(builder *b, const char *name, const ynode *n)
{
	anchor a = {NULL, n};

	for (size_t i = 0; i < b->n_anchors; i++)
		if (!strcmp(b->anchors[i].name, name)) {
			b->anchors[i].node = n; /* YAML: a later anchor of the same name wins */
			return 0;
		}
	a.name = strdup(name);
	if (!a.name)
		return DRB_ENOMEM;
	if (push_ptr((void **)&b->anchors, &b->n_anchors, &b->anchors_cap, sizeof(anchor), &a)) {
		free(a.name);
		return DRB_ENOMEM;
	}
	return 0;
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const ynode *src = NULL;
	ynode *n = NULL;

	for (size_t i = 0; i < b->n_anchors; i++)
		if (!strcmp(b->anchors[i].name, name))
			src = b->anchors[i].node;
	if (!src) {
		drb_diags_add(b->d, mark_pos(ev->start_mark), "undefined alias '*%.80s'", name);
		if (over_cap(b, 1, ev->start_mark))
			return 0;
		n = scalar_new(b, mark_pos(ev->start_mark), "", 0);
		if (!n)
			return DRB_ENOMEM;
		n->vt = YV_NULL;
		return attach(b, n);
	}
	if (over_cap(b, src->count, ev->start_mark))
		return 0;
	if (b->depth + (size_t)src->height > DRB_RUNBOOK_MAX_DEPTH) {
		drb_diags_add(b->d, mark_pos(ev->start_mark), "nesting deeper than %d levels",
			      DRB_RUNBOOK_MAX_DEPTH);
		b->fatal = 1;
		return 0;
	}
	n = node_copy(src);
	if (!n)
		return DRB_ENOMEM;
	b->total += src->count;
	b->aliased = 1;
	n->pos = mark_pos(ev->start_mark);
	return attach(b, n);
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
	int force_str = 0;
	ynode *n = NULL;

	if (over_cap(b, 1, ev->start_mark))
		return 0;
	n = scalar_new(b, mark_pos(ev->start_mark), (const char *)ev->data.scalar.value,
		       ev->data.scalar.length);
	if (!n)
		return DRB_ENOMEM;
	check_tag(b, ev->data.scalar.tag, ev->start_mark, &force_str);
	n->len = strlen(n->str); /* a "\0" escape ends the string: runbook strings are C strings */
	n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	if (force_str || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		n->vt = YV_STR;
	else
		resolve_plain(n);
	if (ev->data.scalar.anchor && register_anchor(b, (const char *)ev->data.scalar.anchor, n)) {
		drb_yaml_free(n);
		return DRB_ENOMEM;
	}
	return attach(b, n);
}

static int on_start(builder *b, const yaml_event_t *ev, yn_kind kind)
{
	const yaml_char_t *tag, *anc;
	int force_str;
	frame f = {NULL, NULL, 0};

	if (kind == YN_MAP) {
		tag = ev->data.mapping_start.tag;
		anc = ev->data.mapping_start.anchor;
	} else {
		tag = ev->data.sequence_start.tag;
		anc = ev->data.sequence_start.anchor;
	}
	if (b->depth + 1 > DRB_RUNBOOK_MAX_DEPTH) {
		drb_diags_add(b->d, mark_pos(ev->start_mark), "nesting deeper than %d levels",
			      DRB_RUNBOOK_MAX_DEPTH);
		b->fatal = 1;
		return 0;
	}
	if (over_cap(b, 1, ev->start_mark))
		return 0;
	check_tag(b, tag, ev->start_mark, &force_str);
	f.node = node_new(b, kind, mark_pos(ev->start_mark), 0);
	if (!f.node)
		return DRB_ENOMEM;
	if (anc) {
		f.anchor = strdup((const char *)anc);
		if (!f.anchor) {
			free(f.node);
			return DRB_ENOMEM;
		}
	}
	if (push_ptr((void **)&b->stack, &b->depth, &b->stack_cap, sizeof(frame), &f)) {
		free(f.anchor);
		free(f.node);
		return DRB_ENOMEM;
	}
	return 0;
}

static int on_end(builder *b)
{
	frame f = b->stack[--b->depth];
	int rc = 0;

	if (f.node->kind == YN_MAP)
		rc = dedupe_keys(b, f.node);
	if (rc == 0 && f.anchor)
		rc = register_anchor(b, f.anchor, f.node);
	free(f.anchor);
	if (rc) {
		drb_yaml_free(f.node);
		return rc;
	}
	return attach(b, f.node);
}

static void problem(builder *b, const yaml_parser_t *p)
{
	const char *what = p->problem ? p->problem : "cannot parse";

	if (p->error == YAML_MEMORY_ERROR) {
		drb_diags_add(b->d, (drb_pos){0, 0}, "out of memory while parsing YAML");
		return;
	}
	if (p->context)
		drb_diags_add(b->d, mark_pos(p->problem_mark), "invalid YAML: %s (%s at %d:%d)",
			      what, p->context, (int)p->context_mark.line + 1,
			      (int)p->context_mark.column + 1);
	else
		drb_diags_add(b->d, mark_pos(p->problem_mark), "invalid YAML: %s", what);
}

int drb_yaml_parse(const char *buf, size_t len, ynode **out, drb_diags *d)
{
	yaml_parser_t p;
	builder b;
	int rc = 0, docs = 0, done = 0;

	memset(&b, 0, sizeof(b));
	b.d = d;
	/* a file within the default 1 MiB cap: the fixed node cap; a larger one (allowed with
	 * DRBOOK_RUNBOOK_MAX_BYTES): one node per 2 bytes of text (`[a,a,a]`), as many as
	 * the text can spell out; an alias expansion's blow-up stays refused */
	b.max_nodes = len > DRB_RUNBOOK_MAX_BYTES && len / 2 > DRB_YAML_MAX_NODES
			  ? len / 2
			  : DRB_YAML_MAX_NODES;
	*out = NULL;
	if (!yaml_parser_initialize(&p))
		return DRB_ENOMEM;
	/* A UTF-8 BOM (editors on Windows write one) is not content: with the encoding set
	 * explicitly libyaml would read it as a character and misplace the first key. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		buf += 3, len -= 3;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done && !b.fatal) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&p, &ev)) {
			problem(&b, &p);
			b.fatal = 1;
			break;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				/* the first document is complete: still validate it */
				drb_diags_add(
				    d, mark_pos(ev.start_mark),
				    "more than one YAML document: a runbook is one document");
				done = 1;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_ALIAS_EVENT:
			rc = on_alias(&b, &ev);
			break;
		case YAML_SCALAR_EVENT:
			rc = on_scalar(&b, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = on_start(&b, &ev, YN_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = on_start(&b, &ev, YN_MAP);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rc = on_end(&b);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc) {
			drb_diags_add(d, (drb_pos){0, 0}, "out of memory while parsing YAML");
			b.fatal = 1;
		}
	}
	yaml_parser_delete(&p);
	while (b.depth) {
		b.depth--;
		free(b.stack[b.depth].anchor);
		drb_yaml_free(b.stack[b.depth].node);
	}
	free(b.stack);
	for (size_t i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	for (size_t i = 0; i < b.n_grave; i++)
		drb_yaml_free(b.grave[i]);
	free(b.grave);
	if (b.fatal) {
		drb_yaml_free(b.root);
		return DRB_EINVAL;
	}
	*out = b.root;
	return 0;
}

json_t *drb_yaml_to_json(const ynode *n)
{
	json_t *j = NULL;

	switch (n->kind) {
	case YN_SCALAR:
		switch (n->vt) {
		case YV_STR:
			return json_stringn(n->str, n->len);
		case YV_INT:
			return json_integer(n->i);
		case YV_REAL:
			return json_real(n->r);
		case YV_BOOL:
			return json_boolean(n->b);
		case YV_NULL:
			return json_null();
		}
		return NULL;
	case YN_SEQ:
		j = json_array();
		for (size_t i = 0; j && i < n->n; i++) {
			json_t *v = drb_yaml_to_json(n->kids[i]);

			if (!v || json_array_append_new(j, v)) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	case YN_MAP:
		j = json_object();
		for (size_t i = 0; j && i + 1 < n->n; i += 2) {
			json_t *v = drb_yaml_to_json(n->kids[i + 1]);

			if (!v || json_object_set_new(j, n->kids[i]->str, v)) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
	return NULL;
}
