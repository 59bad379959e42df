/* dns.resolve: one query, sent with ldns to each given server in turn until one answers.
 * ldns rather than c-ares or libunbound: it is synchronous, sends a query to exactly the
 * server and port named (no recursion or cache of its own in the way), and hands back the
 * whole response packet, so the response code and each record's TTL are read as they came.
 * The call goes through the seam like every call that leaves the process, so it is logged
 * and a replay answers it from the log. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drbook/dns.h>
#include <drbook/util.h>

#include "dns_int.h"

#define DEFAULT_TIMEOUT_S 5.0
#define MAX_SERVERS 16
#define MAX_ANSWERS 64

typedef struct dns_job {
	const char *name;
	ldns_rr_type type;
	const char *type_name;
	const json_t *servers; /* list of strings, or NULL for the system resolver */
	double timeout_s;
	double deadline; /* ctx->deadline, 0 = none */
} dns_job;

/* A port number, or -1 when s is not all digits or out of range. */
static int port_of(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 65535)
		return -1;
	return (int)v;
}

/* "IP", "IP:PORT", "[IPv6]:PORT" or a bare IPv6 address -> address text and port. */
static int parse_server(const char *s, char *addr, size_t n, int *port)
{
	const char *colon;
	size_t len;

	*port = 53;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || (end[1] && (end[1] != ':' || !end[2])))
			return -1;
		len = (size_t)(end - s - 1);
		if (end[1])
			*port = port_of(end + 2);
		s++;
	} else if ((colon = strchr(s, ':')) && !strchr(colon + 1, ':')) {
		len = (size_t)(colon - s);
		*port = port_of(colon + 1);
	} else {
		len = strlen(s);
	}
	if (len == 0 || len >= n || *port <= 0 || *port > 65535)
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	return 0;
}

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

/* The answer section's records of the asked type (and, for A/AAAA, the CNAME chain is
 * followed by the server: only records of the type are kept) as sorted strings. */
static json_t *answers_of(const drb_ldns_api *ld, const ldns_pkt *p, ldns_rr_type type,
			  long long *min_ttl)
{
	ldns_rr_list *an = ld->ldns_pkt_answer(p);
	json_t *items[MAX_ANSWERS], *list = json_array();
	size_t n = 0;

	*min_ttl = -1;
	for (size_t i = 0; list && an && i < ld->ldns_rr_list_rr_count(an) && n < MAX_ANSWERS;
	     i++) {
		ldns_rr *rr = ld->ldns_rr_list_rr(an, i);
		char *txt = NULL;

		if (ld->ldns_rr_get_type(rr) != type || ld->ldns_rr_rd_count(rr) < 1)
			continue;
		if (type == LDNS_RR_TYPE_TXT) {
			/* one TXT record may hold several character strings: joined */
			ldns_buffer *b = ld->ldns_buffer_new(256);

			for (size_t k = 0; b && k < ld->ldns_rr_rd_count(rr); k++) {
				ldns_rdf *f = ld->ldns_rr_rdf(rr, k);
				const uint8_t *d = ld->ldns_rdf_data(f);
				size_t len = ld->ldns_rdf_size(f) ? d[0] : 0;

				if (len + 1 <= ld->ldns_rdf_size(f))
					ldns_buffer_write(b, d + 1, len);
			}
			if (b) {
				ldns_buffer_write_u8(b, 0);
				txt = strdup((const char *)ldns_buffer_begin(b));
				ld->ldns_buffer_free(b);
			}
		} else {
			txt = ld->ldns_rdf2str(ld->ldns_rr_rdf(rr, 0));
		}
		if (!txt)
			continue;
		items[n] = json_string(txt);
		free(txt);
		if (!items[n])
			continue;
		if (*min_ttl < 0 || (long long)ld->ldns_rr_ttl(rr) < *min_ttl)
			*min_ttl = (long long)ld->ldns_rr_ttl(rr);
		n++;
	}
	qsort(items, n, sizeof(items[0]), cmp_json_str);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, items[i]);
	return list;
}

static const char *rcode_name(const drb_ldns_api *ld, ldns_pkt_rcode rc, char *buf, size_t n)
{
	ldns_lookup_table *t = ld->ldns_lookup_by_id(ld->ldns_rcodes, (int)rc);

	if (t)
		return t->name;
	snprintf(buf, n, "RCODE%d", (int)rc);
	return buf;
}

/* Asks one server; 0 with *resp on any answer, DRB_ETIMEOUT when none came. */
static int ask(const drb_ldns_api *ld, const dns_job *j, ldns_resolver *res, const char *shown,
	       json_t **resp, drb_err *err)
{
	ldns_rdf *name = ld->ldns_dname_new_frm_str(j->name);
	ldns_pkt *p = NULL;
	ldns_status st;
	json_t *answers;
	long long ttl;
	char rbuf[32];
	double left = j->timeout_s;
	struct timeval tv;

	if (!name)
		return drb_err_set(err, DRB_EINVAL, "dns.resolve: '%.200s' is not a domain name",
				   j->name);
	if (j->deadline > 0 && j->deadline - drb_mono_now() < left)
		left = j->deadline - drb_mono_now();
	if (left <= 0) {
		ld->ldns_rdf_deep_free(name);
		return drb_err_set(err, DRB_ETIMEOUT, "dns.resolve: the step's deadline passed");
	}
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	ld->ldns_resolver_set_timeout(res, tv);
	ld->ldns_resolver_set_retry(res, 1);
	ld->ldns_resolver_set_retrans(res, (uint8_t)(left < 1 ? 1 : left > 255 ? 255 : left));
	ld->ldns_resolver_set_recursive(res, true);
	ld->ldns_resolver_set_random(res, false);
	st = ld->ldns_resolver_send(&p, res, name, j->type, LDNS_RR_CLASS_IN, LDNS_RD);
	ld->ldns_rdf_deep_free(name);
	if (st != LDNS_STATUS_OK || !p) {
		ld->ldns_pkt_free(p);
		return drb_err_set(err, DRB_ETIMEOUT, "dns.resolve: %s: no answer (%s)", shown,
				   ld->ldns_get_errorstr_by_id(st));
	}
	answers = answers_of(ld, p, j->type, &ttl);
	*resp = json_pack("{s:i, s:s, s:o, s:o, s:s}", "status", 0, "rcode",
			  rcode_name(ld, ld->ldns_pkt_get_rcode(p), rbuf, sizeof(rbuf)), "answers",
			  answers ? answers : json_array(), "ttl",
			  ttl >= 0 ? json_integer(ttl) : json_null(), "server", shown);
	ld->ldns_pkt_free(p);
	if (!*resp)
		return drb_err_set(err, DRB_ENOMEM, "dns.resolve: out of memory");
	return 0;
}

/* Adds one nameserver (address and port) to a fresh resolver. */
static int resolver_for(const drb_ldns_api *ld, const char *server, ldns_resolver **out,
			char *shown, size_t n, drb_err *err)
{
	char addr[INET6_ADDRSTRLEN + 1];
	int port;
	ldns_rdf *ns;

	*out = NULL;
	if (parse_server(server, addr, sizeof(addr), &port) != 0)
		return drb_err_set(err, DRB_EINVAL,
				   "dns.resolve: server '%.100s' is not IP, IP:PORT or [IPv6]:PORT",
				   server);
	ns = ld->ldns_rdf_new_frm_str(strchr(addr, ':') ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
				      addr);
	if (!ns)
		return drb_err_set(err, DRB_EINVAL,
				   "dns.resolve: server '%.100s' is not an IP address", server);
	*out = ld->ldns_resolver_new();
	if (!*out || ld->ldns_resolver_push_nameserver(*out, ns) != LDNS_STATUS_OK) {
		ld->ldns_rdf_deep_free(ns);
		ld->ldns_resolver_deep_free(*out);
		*out = NULL;
		return drb_err_set(err, DRB_ENOMEM, "dns.resolve: out of memory");
	}
	ld->ldns_rdf_deep_free(ns);
	ld->ldns_resolver_set_port(*out, (uint16_t)port);
	snprintf(shown, n, strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
	return 0;
}

static int dns_perform(void *arg, json_t **resp, drb_err *err)
{
	const dns_job *j = arg;
	const drb_ldns_api *ld;
	char shown[80];
	int rc;

	*resp = NULL;
	/* here, not in the action: a replay answers from the log and never needs ldns */
	rc = drb_dnsi_ldns(&ld, "dns.resolve", err);
	if (rc)
		return rc;
	rc = DRB_ETIMEOUT;
	if (!j->servers || !json_array_size(j->servers)) {
		ldns_resolver *res = NULL;

		if (ld->ldns_resolver_new_frm_file(&res, NULL) != LDNS_STATUS_OK || !res)
			return drb_err_set(err, DRB_EIO,
					   "dns.resolve: cannot read the system resolver "
					   "configuration (/etc/resolv.conf)");
		rc = ask(ld, j, res, "system", resp, err);
		ld->ldns_resolver_deep_free(res);
		return rc;
	}
	for (size_t i = 0; i < json_array_size(j->servers); i++) {
		ldns_resolver *res = NULL;
		drb_err one = {0};

		rc = resolver_for(ld, json_string_value(json_array_get(j->servers, i)), &res, shown,
				  sizeof(shown), err);
		if (rc)
			return rc;
		rc = ask(ld, j, res, shown, resp, &one);
		ld->ldns_resolver_deep_free(res);
		if (rc == 0 || rc != DRB_ETIMEOUT ||
		    (j->deadline > 0 && drb_mono_now() >= j->deadline)) {
			if (rc)
				*err = one;
			return rc;
		}
		*err = one; /* the last server's reason, if none answers */
	}
	return rc;
}

static const drb_action drb_dns_resolve;

static int resolve_fn(drb_action_ctx *ctx, const json_t *args, json_t **result, drb_err *err)
{
	static const struct {
		const char *name;
		ldns_rr_type type;
	} types[] = {{"A", LDNS_RR_TYPE_A},
		     {"AAAA", LDNS_RR_TYPE_AAAA},
		     {"CNAME", LDNS_RR_TYPE_CNAME},
		     {"TXT", LDNS_RR_TYPE_TXT}};
	static const char *const keys[] = {"answers", "ttl", "server", "rcode", NULL};
	dns_job j = {.type = LDNS_RR_TYPE_A, .type_name = "A", .timeout_s = DEFAULT_TIMEOUT_S};
	const char *type = NULL;
	json_t *req = NULL, *resp = NULL;
	drb_call call = {.service = "dns"};
	size_t i;
	int rc;

	*result = NULL;
	rc = drb_args_check(drb_dns_resolve.schema, args, err);
	if (rc == 0)
		rc = drb_arg_string(args, "name", &j.name, err);
	if (rc == 0)
		rc = drb_arg_string_opt(args, "type", &type, err);
	if (rc == 0)
		rc = drb_arg_duration_opt(args, "timeout", &j.timeout_s, err);
	if (rc)
		return rc;
	if (type) {
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcmp(type, types[i].name)) {
				j.type = types[i].type;
				j.type_name = types[i].name;
				break;
			}
		if (i == sizeof(types) / sizeof(types[0]))
			return drb_err_set(
			    err, DRB_EINVAL,
			    "argument 'type' must be A, AAAA, CNAME or TXT, not '%.40s'", type);
	}
	if (!(j.timeout_s > 0))
		return drb_err_set(err, DRB_EINVAL, "argument 'timeout' must be positive");
	j.servers = json_object_get(args, "servers");
	if (j.servers && !json_is_null(j.servers)) {
		json_t *s;

		if (!json_is_array(j.servers) || json_array_size(j.servers) > MAX_SERVERS)
			return drb_err_set(
			    err, DRB_EINVAL,
			    "argument 'servers' must be a list of at most %d addresses",
			    MAX_SERVERS);
		json_array_foreach(j.servers, i, s) if (!json_is_string(s)) return drb_err_set(
		    err, DRB_EINVAL, "argument 'servers' must hold strings (IP[:PORT])");
	} else {
		j.servers = NULL;
	}
	j.deadline = ctx->deadline;
	req = json_pack("{s:s, s:s, s:O?}", "name", j.name, "type", j.type_name, "servers",
			j.servers);
	if (!req)
		return drb_err_set(err, DRB_ENOMEM, "dns.resolve: out of memory");
	call.operation = j.type_name;
	call.request = req;
	rc = ctx->seam->call(ctx->seam, &call, dns_perform, &j, &resp, err);
	if (rc == 0) {
		*result = json_object();
		for (i = 0; *result && keys[i]; i++)
			json_object_set(*result, keys[i], json_object_get(resp, keys[i]));
		if (!*result)
			rc = drb_err_set(err, DRB_ENOMEM, "dns.resolve: out of memory");
	}
	json_decref(req);
	json_decref(resp);
	return rc;
}

static const char *const resolve_positional[] = {"name", "type", NULL};
static const char *const resolve_types[] = {"A", "AAAA", "CNAME", "TXT", NULL};

static const drb_action drb_dns_resolve = {
    .name = "dns.resolve",
    .mode = DRB_ACT_RO,
    .positional = resolve_positional,
    .fn = resolve_fn,
    .schema =
	&(const drb_action_schema){
	    .doc = "Asks DNS servers directly, as a client would (the servers in turn until one "
		   "answers)",
	    .args =
		(const drb_arg_spec[]){
		    {"name", DRB_T_STRING, 1, NULL, NULL, "the name to look up"},
		    {"type", DRB_T_STRING, 0, "A", resolve_types, "the record type"},
		    {"servers", DRB_T_LIST, 0, NULL, NULL,
		     "IP, IP:PORT or [IPv6]:PORT of each server to ask; empty: the system "
		     "resolver"},
		    {"timeout", DRB_T_DURATION, 0, "5s", NULL, "per server"},
		    {NULL, 0, 0, NULL, NULL, NULL}},
	    .result =
		(const drb_field_spec[]){
		    {"answers", DRB_T_LIST, "addresses, the CNAME target or TXT text, sorted"},
		    {"ttl", DRB_T_INT, "the smallest TTL of the answers (null when none)"},
		    {"server", DRB_T_STRING, "IP:PORT of the server that answered"},
		    {"rcode", DRB_T_STRING, "NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ..."},
		    {NULL, 0, NULL}}},
};

const drb_action *const drb_dns_actions[] = {&drb_dns_resolve, NULL};
