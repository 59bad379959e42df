/* XML reading for the AWS answers (Query and REST-XML protocols) with libxml2: one safe set of
 * parser options, lookups by local name (AWS answers carry a default namespace that varies by
 * service and version, and drbook matches on names only) and conversion to JSON values. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "aws_int.h"

int drb_awsx_parse(const char *body, size_t len, xmlDoc **out, drb_err *err)
{
	/* NONET: never fetch anything; no NOENT (entities are not substituted) and no
	 * DTDLOAD (external subsets are not read): an answer cannot make us read files or
	 * expand entity bombs. */
	const int opts = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
			 XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
	const drb_xml_api *x = NULL;
	xmlParserCtxtPtr pc = NULL;
	xmlDoc *doc = NULL;
	int rc = 0;

	*out = NULL;
	rc = drb_awsx_lib(&x, "reading an AWS XML answer", err);
	if (rc)
		goto out;
	if (len > (size_t)INT_MAX) {
		rc = drb_err_set(err, DRB_ELIMIT, "XML answer too large");
		goto out;
	}
	pc = x->xmlNewParserCtxt();
	if (!pc) {
		rc = drb_err_set(err, DRB_ENOMEM, "XML parser: out of memory");
		goto out;
	}
	doc = x->xmlCtxtReadMemory(pc, body ? body : "", (int)len, "answer.xml", NULL, opts);
	if (!doc || !pc->wellFormed || !drb_awsx_root(doc)) {
		const xmlError *e = x->xmlCtxtGetLastError(pc);
		char msg[200] = "not well-formed";
		size_t n;

		if (e && e->message) {
			snprintf(msg, sizeof(msg), "%s", e->message);
			n = strlen(msg);
			while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
				msg[--n] = '\0';
		}
		rc = drb_err_set(err, DRB_EINVAL, "invalid XML answer (line %d: %s)",
				 e ? e->line : 0, msg);
		goto out;
	}
	*out = doc;
	doc = NULL;
out:
	if (doc)
		x->xmlFreeDoc(doc);
	if (pc)
		x->xmlFreeParserCtxt(pc);
	return rc;
}

void drb_awsx_free(xmlDoc *doc)
{
	const drb_xml_api *x;

	/* a document exists only once drb_awsx_parse has loaded the library */
	if (doc && drb_awsx_lib(&x, NULL, NULL) == 0)
		x->xmlFreeDoc(doc);
}

xmlNode *drb_awsx_root(const xmlDoc *doc)
{
	/* what libxml2's xmlDocGetRootElement does, without calling into it */
	for (xmlNode *n = doc ? doc->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			return n;
	return NULL;
}

static int name_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->name && !strcmp((const char *)n->name, name);
}

xmlNode *drb_awsx_find(xmlNode *n, const char *name)
{
	/* Iterative pre-order walk: answers are shallow, but an adversarial one must not be
	 * able to exhaust the stack. */
	xmlNode *start = n;

	while (n) {
		if (name_is(n, name))
			return n;
		if (n->children) {
			n = n->children;
			continue;
		}
		while (n && n != start && !n->next)
			n = n->parent;
		if (!n || n == start)
			return NULL;
		n = n->next;
	}
	return NULL;
}

xmlNode *drb_awsx_child(xmlNode *n, const char *path)
{
	const char *p = path;

	while (n && p && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		xmlNode *c;

		for (c = n->children; c; c = c->next)
			if (c->type == XML_ELEMENT_NODE && strlen((const char *)c->name) == len &&
			    !strncmp((const char *)c->name, p, len))
				break;
		n = c;
		p = slash ? slash + 1 : NULL;
	}
	return n;
}

xmlNode *drb_awsx_next(xmlNode *n)
{
	const xmlChar *name = n ? n->name : NULL;

	for (n = n ? n->next : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && n->name && name &&
		    !strcmp((const char *)n->name, (const char *)name))
			return n;
	return NULL;
}

int drb_awsx_text(xmlNode *n, const char *path, char *out, size_t size)
{
	xmlNode *c = path && *path ? drb_awsx_child(n, path) : n;
	const drb_xml_api *x;
	xmlChar *t;

	if (size)
		out[0] = '\0';
	/* a node exists only once drb_awsx_parse has loaded the library */
	if (!c || drb_awsx_lib(&x, NULL, NULL))
		return -1;
	t = x->xmlNodeGetContent(c);
	if (t && size)
		snprintf(out, size, "%s", (const char *)t);
	if (t)
		(*x->free_fn)(t);
	return 0;
}

json_t *drb_awsx_str(xmlNode *n, const char *path)
{
	xmlNode *c = path && *path ? drb_awsx_child(n, path) : n;
	const drb_xml_api *x;
	xmlChar *t;
	json_t *j;

	if (!c || drb_awsx_lib(&x, NULL, NULL))
		return json_null();
	t = x->xmlNodeGetContent(c);
	j = json_string(t ? (const char *)t : "");
	if (t)
		(*x->free_fn)(t);
	return j;
}

json_t *drb_awsx_int(xmlNode *n, const char *path)
{
	char buf[64], *end = NULL;
	long long v;

	if (drb_awsx_text(n, path, buf, sizeof(buf)) != 0 || !buf[0])
		return json_null();
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || !end || *end)
		return json_null();
	return json_integer((json_int_t)v);
}

json_t *drb_awsx_bool(xmlNode *n, const char *path)
{
	char buf[16];

	if (drb_awsx_text(n, path, buf, sizeof(buf)) != 0)
		return json_null();
	return json_boolean(!strcmp(buf, "true"));
}

json_t *drb_awsx_list(xmlNode *n, const char *path)
{
	xmlNode *c = path && *path ? drb_awsx_child(n, path) : n;
	json_t *a = json_array();

	if (!a || !c)
		return a;
	for (c = c->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (json_array_append_new(a, drb_awsx_str(c, NULL)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

void drb_awsi_set(json_t *o, const char *key, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		*bad = 1;
}
