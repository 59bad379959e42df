/* Internals of the DNS provider: ldns, loaded on the first dns.resolve (libldns.c) instead
 * of linked into drbook. */
#ifndef DRB_DNS_INT_H
#define DRB_DNS_INT_H

#include <ldns/ldns.h>

#include <drbook/error.h>

/* Every ldns function resolve.c calls (the inline buffer helpers of <ldns/buffer.h> are
 * compiled in); each is a member of drb_ldns_api typed from the build's <ldns/ldns.h>. A
 * call of ldns not through this table fails to link (see layercheck_dns). */
/* clang-format off */
#define DRB_LDNS_FUNCS(X)                                                                      \
	X(ldns_buffer_free) X(ldns_buffer_new) X(ldns_dname_new_frm_str)                       \
	X(ldns_get_errorstr_by_id) X(ldns_lookup_by_id) X(ldns_pkt_answer) X(ldns_pkt_free)    \
	X(ldns_pkt_get_rcode) X(ldns_rdf2str) X(ldns_rdf_data) X(ldns_rdf_deep_free)           \
	X(ldns_rdf_new_frm_str) X(ldns_rdf_size) X(ldns_resolver_deep_free)                    \
	X(ldns_resolver_new) X(ldns_resolver_new_frm_file) X(ldns_resolver_push_nameserver)    \
	X(ldns_resolver_send) X(ldns_resolver_set_port) X(ldns_resolver_set_random)            \
	X(ldns_resolver_set_recursive) X(ldns_resolver_set_retrans) X(ldns_resolver_set_retry) \
	X(ldns_resolver_set_timeout) X(ldns_rr_get_type) X(ldns_rr_list_rr)                    \
	X(ldns_rr_list_rr_count) X(ldns_rr_rd_count) X(ldns_rr_rdf) X(ldns_rr_ttl)
/* clang-format on */

typedef struct drb_ldns_api {
#define DRB_LDNS_MEMBER(f) __typeof__(f) *f;
	DRB_LDNS_FUNCS(DRB_LDNS_MEMBER)
#undef DRB_LDNS_MEMBER
	ldns_lookup_table *ldns_rcodes; /* a table, not a function: the names of the rcodes */
} drb_ldns_api;

/* Loads ldns the first time (thread-safe: pthread_once) and sets *out to its functions,
 * valid for the life of the process. When it cannot be loaded: DRB_ERR naming `action`,
 * the library and the Debian package, every time. */
int drb_dnsi_ldns(const drb_ldns_api **out, const char *action, drb_err *err);

#endif
