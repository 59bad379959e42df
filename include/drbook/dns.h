/* The dns provider: the `dns.resolve` action, DNS truth as a client sees it. It asks the
 * given servers (a caching resolver in the recovery region, a public resolver, the
 * authoritative servers) directly, with ldns, and returns the answers with their TTL, the
 * server that answered and the response code, so a runbook can wait until clients really
 * see the failover and record when the last stale answer was seen. */
#ifndef DRBOOK_DNS_H
#define DRBOOK_DNS_H

#include <drbook/action.h>

/* The `dns.resolve` action (read-only), NULL-terminated, for the engine's registry.
 *
 * Arguments: name (required), type (A, AAAA, CNAME or TXT; default A), servers (a list of
 * "IP", "IP:PORT" or "[IPv6]:PORT"; empty or absent: the system resolver, /etc/resolv.conf),
 * timeout (per server, duration; default 5s). The servers are asked in turn until one
 * answers (any response code counts as an answer; no answer moves on to the next).
 *
 * Result: answers (list of strings: addresses, the CNAME target, TXT text; sorted),
 * ttl (the smallest TTL of the answers, null when there are none), server ("IP:PORT" that
 * answered), rcode ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", ...). Errors: DRB_ETIMEOUT
 * when no server answered, DRB_EINVAL for bad arguments. */
extern const drb_action *const drb_dns_actions[];

#endif
