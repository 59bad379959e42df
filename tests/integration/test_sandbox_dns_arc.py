#!/usr/bin/env python3
# The sandbox's DNS as a client sees it, and the ARC flip that works while us-east-1 is down:
# dig through Unbound (the caching resolver) shows the failover record's PRIMARY; with the
# us-east-1 control plane down (Route 53's API fails, the us-east-1 cluster endpoint refuses)
# and one more cluster endpoint made to fail, the us-east-1 routing control is turned Off
# through a third endpoint with boto3; NSD answers the SECONDARY at once, Unbound keeps the
# cached PRIMARY until its TTL runs out, then answers the SECONDARY too. `down` stops both
# daemons and frees their ports.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import (ClientError, ConnectionClosedError,  # noqa: E402
                                 EndpointConnectionError)
from sandbox_lib.testkit import dig_records, run_test, wait_for  # noqa: E402

TTL = 5


def dig(server, name):
    """(CNAME target, TTL) of the first answer, as `dig` prints it; (None, None) if none."""
    return next(((v, ttl) for t, v, ttl in dig_records(server, name) if t == "CNAME"),
                (None, None))


def body(sb, c):
    sb.up()
    v = sb.vars
    res, auth = v["DRB_SANDBOX_DNS_RESOLVER"], v["DRB_SANDBOX_DNS_AUTHORITATIVE"]
    name = v["DRB_SANDBOX_FAILOVER_RECORD"]
    us_target, eu_target = v["DRB_SANDBOX_API_TARGET_US"], v["DRB_SANDBOX_API_TARGET_EU"]
    eps = v["DRB_SANDBOX_ARC_ENDPOINTS"].split()
    regions = v["DRB_SANDBOX_ARC_ENDPOINT_REGIONS"].split()
    c.eq(len(eps), 5, "five ARC cluster endpoints")
    c.eq(v["DRB_SANDBOX_DNS_TTL"], str(TTL), "the DNS TTL is configurable")

    def client(service, region, endpoint=None):
        return boto3.client(service, region_name=region,
                            endpoint_url=endpoint or v["AWS_ENDPOINT_URL"],
                            aws_access_key_id=v["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                          connect_timeout=3, read_timeout=5))

    # --- Route 53 holds the failover records; the health checks follow the routing controls
    r53 = client("route53", "us-east-1")
    rrs = [r for r in r53.list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"] if r["Name"] == name]
    c.eq(sorted((r["Failover"], r["SetIdentifier"], r["TTL"], r["HealthCheckId"],
                 r["ResourceRecords"][0]["Value"]) for r in rrs),
         [("PRIMARY", "us-east-1", TTL, v["DRB_SANDBOX_ARC_HEALTH_CHECK_US"], us_target),
          ("SECONDARY", "eu-west-1", TTL, v["DRB_SANDBOX_ARC_HEALTH_CHECK_EU"], eu_target)],
         "Route 53: PRIMARY us-east-1 / SECONDARY eu-west-1, TTL, ARC health checks")
    hc = r53.get_health_check(HealthCheckId=v["DRB_SANDBOX_ARC_HEALTH_CHECK_US"])
    c.eq((hc["HealthCheck"]["HealthCheckConfig"]["Type"],
          hc["HealthCheck"]["HealthCheckConfig"].get("RoutingControlArn")),
         ("RECOVERY_CONTROL", v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]),
         "the primary's health check is the us-east-1 routing control's")
    obs = r53.get_health_check_status(HealthCheckId=v["DRB_SANDBOX_ARC_HEALTH_CHECK_US"])
    c.ok(all(o["StatusReport"]["Status"].startswith("Success")
             for o in obs["HealthCheckObservations"]), "routing control On: healthy")

    # --- a client sees the primary (and the resolver caches it from now on)
    c.eq(dig(auth, name)[0], us_target, "NSD answers the primary")
    target, ttl = dig(res, name)
    c.ok(target == us_target and ttl is not None and 0 <= ttl <= TTL,
         "dig through Unbound: the primary, TTL <= %d (%s %s)" % (TTL, target, ttl))
    c.eq(dig(res, "www.example.com")[0], None, "names outside the sandbox zone are refused")

    # --- us-east-1 is down, control plane included; one more endpoint fails
    sb.inject("region-outage", "--control-plane", "--mode", "refused")
    sb.inject("arc-endpoint-down", "1", "--mode", "5xx")
    try:
        r53.list_hosted_zones()
        c.ok(False, "Route 53's API answered during the outage")
    except (ConnectionClosedError, EndpointConnectionError):
        c.ok(True, "Route 53's control API is down (it signs for us-east-1)")
    us_arn = v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]
    tried, flipped_by = [], None
    # start from a fresh cache entry (full TTL), so the caching is visible below
    c.ok(wait_for(lambda: dig(res, name)[1] == TTL, TTL + 5, 0.2),
         "Unbound fetches the record afresh once its cached copy expires")
    t_cached = time.monotonic()
    target0, ttl0 = dig(res, name)      # the resolver's cached answer, remaining TTL
    for i, (ep, region) in enumerate(zip(eps, regions)):
        try:
            client("route53-recovery-cluster", region, ep).update_routing_control_state(
                RoutingControlArn=us_arn, RoutingControlState="Off")
            flipped_by = i
            break
        except (EndpointConnectionError, ConnectionClosedError) as e:
            tried.append((i, type(e).__name__))
        except ClientError as e:
            tried.append((i, e.response["Error"]["Code"]))
    t_flip = time.monotonic()
    c.eq(tried, [(0, "EndpointConnectionError"), (1, "ServiceUnavailable")],
         "endpoint 0 (us-east-1) refuses the connection, endpoint 1 answers 503")
    c.eq(flipped_by, 2, "endpoint 2 (%s) turns the us-east-1 routing control Off" % regions[2])
    st = client("route53-recovery-cluster", regions[3], eps[3]).get_routing_control_state(
        RoutingControlArn=us_arn)
    c.eq(st["RoutingControlState"], "Off", "endpoint 3 reads it back Off")

    # --- the authoritative server answers the secondary at once; the resolver after the TTL
    c.ok(wait_for(lambda: dig(auth, name)[0] == eu_target, 5, 0.1),
         "NSD answers the secondary within 5 s of the flip")
    still = dig(res, name)
    elapsed = time.monotonic() - t_cached
    if target0 == us_target and elapsed < ttl0 - 0.5:
        c.eq(still[0], us_target, "Unbound still answers the cached primary within its TTL "
             "(%.1fs after, TTL %s)" % (elapsed, ttl0))
    else:
        print("note: the machine was too slow to observe the cached answer (%.1fs, TTL %s)"
              % (elapsed, ttl0), flush=True)
    got = wait_for(lambda: dig(res, name)[0] == eu_target and time.monotonic(), TTL + 5, 0.2)
    c.ok(got, "dig through Unbound shows the secondary after the TTL")
    if got:
        c.ok(got - t_cached >= ttl0 - 1.0, "not before the cached answer expired (%.1fs after "
             "the cached query, TTL %s)" % (got - t_cached, ttl0))
    c.ok(t_flip - t_cached < 30, "the flip itself took %.1fs" % (t_flip - t_cached))

    # --- back On through a batch update on endpoint 4: the primary again
    client("route53-recovery-cluster", regions[4], eps[4]).update_routing_control_states(
        UpdateRoutingControlStateEntries=[{"RoutingControlArn": us_arn,
                                           "RoutingControlState": "On"}])
    c.ok(wait_for(lambda: dig(auth, name)[0] == us_target, 5, 0.1),
         "routing control On again: NSD answers the primary")
    rc, status = sb.status()
    c.ok(status["dns"]["reloads"] >= 2 and all(status["dns"]["running"].values()),
         "status: NSD reloaded for each change, both daemons running")
    c.eq([e["listening"] for e in status["arc"]["endpoints"]],
         [False, True, True, True, True], "status: the refused endpoint's port is closed")


def main():
    holder = {}

    def wrapped(sb, c):
        holder["sb"] = sb
        body(sb, c)
    rc = run_test(wrapped, extra_env={"DRB_SANDBOX_DNS_TTL": str(TTL)})
    sb = holder.get("sb")
    # the daemons' own processes (NSD drops to its user and forks servers) are gone too
    left = subprocess.run(["pgrep", "-f", os.path.join(sb.dir, "dns")], stdout=subprocess.PIPE,
                          text=True).stdout.split() if sb else []
    if left:
        print("FAIL - DNS daemons still running after down: %s" % left, flush=True)
        return 1
    print("ok   - no NSD or Unbound process of this sandbox is left", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
