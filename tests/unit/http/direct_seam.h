/* Test helper for the built-in actions' tests: a seam that performs the call directly (no
 * audit log, no replay) and remembers the last call, so a test can check what would be
 * logged: service, operation and the redacted request. Header-only: not a test program. */
#ifndef DRB_TEST_DIRECT_SEAM_H
#define DRB_TEST_DIRECT_SEAM_H

#include <stdio.h>
#include <string.h>

#include <drbook/action.h>

typedef struct direct_seam {
	drb_seam seam;
	int calls;
	char service[32], operation[256];
	json_t *request; /* deep copy of the last call's request */
} direct_seam;

static int direct_seam_call(drb_seam *s, const drb_call *c, drb_perform_fn perform, void *arg,
			    json_t **response, drb_err *err)
{
	direct_seam *d = s->ud;

	d->calls++;
	snprintf(d->service, sizeof(d->service), "%s", c->service ? c->service : "");
	snprintf(d->operation, sizeof(d->operation), "%s", c->operation ? c->operation : "");
	json_decref(d->request);
	d->request = json_deep_copy(c->request);
	return perform(arg, response, err);
}

static void direct_seam_init(direct_seam *d)
{
	memset(d, 0, sizeof(*d));
	d->seam.call = direct_seam_call;
	d->seam.ud = d;
}

static void direct_seam_free(direct_seam *d)
{
	json_decref(d->request);
	d->request = NULL;
}

#endif
