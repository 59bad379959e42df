#!/usr/bin/env python3
# Scenario 3 on the day it exists for: us-east-1 is down, its control planes with it (`inject
# region-outage --control-plane`, 5xx by default: every request reaches the fault proxy and is
# recorded, so a request to us-east-1 cannot hide behind a closed port). The region-failover
# drill with ARC configured confirms the outage (Route 53's health-check API fails, the primary
# database does not answer), promotes the real replica, scales prod-eu, turns the routing
# controls (eu-west-1 On, us-east-1 Off) through the cluster's endpoints outside us-east-1,
# waits until the caching resolver (Unbound) answers eu-west-1, and publishes to the eu-west-1
# topic. The proxy's request log shows no request to us-east-1 after the confirmation step;
# `dig` agrees with the run; the log verifies. Then the Route 53 fallback without ARC, under the
# same outage, is refused before any change (its preflight needs the us-east-1 control plane)
# and says so. DRB_TEST_OUTAGE_MODE=refused|timeout|5xx picks the failure mode (CI: 5xx).
# arc_params() is shared with test_region_kill_sweep.py.
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_scenario_region import (RUNBOOKS, SERVICES, Heartbeat, audit_events,  # noqa: E402
                                  audit_verify, diff, drbook, make_sentinel_table,
                                  now_rfc3339, parse_ts, region_params, run_end, show,
                                  step_result)
from sandbox_lib.testkit import dig, param_args, rds_instance, run_test, wait_for  # noqa: E402

RUNBOOK = os.path.join(RUNBOOKS, "region-failover.yaml")
TTL = 5
MODE = os.environ.get("DRB_TEST_OUTAGE_MODE", "5xx")


def arc_endpoints(sb):
    v = sb.vars
    return [{"url": u, "region": r} for u, r in zip(v["DRB_SANDBOX_ARC_ENDPOINTS"].split(),
                                                    v["DRB_SANDBOX_ARC_ENDPOINT_REGIONS"].split())]


def arc_params(sb, **extra):
    """The -p arguments of the ARC drill: the failover record, the routing controls, the
    cluster's five endpoints (the runbook leaves out the us-east-1 one), the sandbox's
    resolver and the eu-west-1 topic. No zone_id: ARC needs none."""
    v = sb.vars
    p = {"record_name": v["DRB_SANDBOX_FAILOVER_RECORD"],
         "dr_values": v["DRB_SANDBOX_API_TARGET_EU"],
         "primary_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_US"],
         "dr_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_EU"],
         "topic_arn": v["DRB_SANDBOX_TOPIC_ARN_EU"], "account": v["DRB_SANDBOX_ACCOUNT_ID"],
         "arc_cluster_endpoints": json.dumps(arc_endpoints(sb)),
         "arc_primary_control": v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"],
         "arc_dr_control": v["DRB_SANDBOX_ARC_ROUTING_CONTROL_EU"],
         "dns_servers": v["DRB_SANDBOX_DNS_RESOLVER"]}
    p.update(extra)
    return param_args(p)


def requests(sb, since=0):
    p = sb.run("requests", "--json", "--since", str(since))
    if p.returncode != 0:
        raise RuntimeError("sandbox requests: %s" % p.stderr)
    return json.loads(p.stdout)


def arc_state(sb, arn):
    """A routing control's state read by boto3 through an endpoint outside us-east-1."""
    v = sb.vars
    eps = arc_endpoints(sb)
    import boto3
    from botocore.config import Config
    c = boto3.client("route53-recovery-cluster", region_name=eps[2]["region"],
                     endpoint_url=eps[2]["url"], aws_access_key_id=v["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=v["AWS_SECRET_ACCESS_KEY"],
                     config=Config(retries={"max_attempts": 1}))
    return c.get_routing_control_state(RoutingControlArn=arn)["RoutingControlState"]


def check_no_us_east_1_after_confirmation(c, log, reqs):
    """Every request the run sent after confirm-outage ended went to another region; the
    confirmation itself did reach for us-east-1 (Route 53's API), so the check can fail."""
    ends = [e for e in audit_events(log) if e["event"] == "step.end" and
            e.get("step") == "confirm-outage"]
    if not c.ok(ends, "the log records the end of confirm-outage"):
        return
    t_conf = parse_ts(ends[0]["ts"])
    start = parse_ts(audit_events(log)[0]["ts"])
    during = [r for r in reqs if parse_ts(r["ts"]) >= start - 0.01]
    before = [r for r in during if parse_ts(r["ts"]) <= t_conf]
    after = [r for r in during if parse_ts(r["ts"]) > t_conf]
    c.ok(any(r["region"] == "us-east-1" and r["service"] == "route53" and
             r["operation"] == "GetHealthCheckStatus" for r in before),
         "the confirmation asked Route 53's health-check API (us-east-1), which failed (%s)" %
         sorted({(r["service"], r["operation"], r["fault"]) for r in before
                 if r["region"] == "us-east-1"}))
    us = [(r["seq"], r["endpoint"], r["service"], r["operation"], r["fault"]) for r in after
          if r["region"] in ("us-east-1", None) or r["endpoint"] == "arc-0"]
    c.eq(us, [], "no request to us-east-1 (nor unsigned) after the confirmation step "
         "(%d requests after it)" % len(after))
    regions = sorted({(r["region"], r["service"]) for r in after})
    c.ok(("eu-west-1", "rds") in regions and ("eu-west-1", "ecs") in regions and
         ("eu-west-1", "sns") in regions and
         any(s == "route53-recovery-cluster" for _, s in regions),
         "after it: eu-west-1 RDS, ECS and SNS and the ARC cluster (%s)" % regions)
    c.eq([r for r in after if r["operation"] in ("ChangeResourceRecordSets", "GetChange")], [],
         "no Route 53 change API call at all")
    arc = [r for r in after if r["operation"] == "UpdateRoutingControlState"]
    c.ok(len(arc) == 2 and all(r["status"] == 200 for r in arc),
         "two routing control updates, both answered 200 (%s)" %
         [(r["endpoint"], r["region"], r["status"]) for r in arc])
    sns = [r for r in after if r["service"] == "sns" and r["operation"] == "Publish"]
    c.ok(sns and all(r["region"] == "eu-west-1" and r["status"] == 200 for r in sns),
         "notifications published in eu-west-1 (%s)" % [(r["region"], r["status"])
                                                        for r in sns])


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    v = sb.vars
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    name, res = v["DRB_SANDBOX_FAILOVER_RECORD"], v["DRB_SANDBOX_DNS_RESOLVER"]
    us_target, eu_target = v["DRB_SANDBOX_API_TARGET_US"], v["DRB_SANDBOX_API_TARGET_EU"]
    c.eq(dig(res, name), [us_target], "before: the resolver answers us-east-1 (now cached)")

    make_sentinel_table(sb)
    hb = Heartbeat(sb).start()
    c.ok(wait_for(lambda: len(hb.rows) >= 3, 20), "heartbeats are being written")
    incident = now_rfc3339()
    try:
        out = sb.inject("region-outage", "--control-plane", "--mode", MODE)
    finally:
        time.sleep(0.5)
        hb.stop()
    c.eq(out.get("control_plane", {}).get("mode"), MODE,
         "us-east-1 is down with its control plane (%s)" % MODE)
    c.eq(dig(res, name), [us_target], "the outage alone moves no client: still us-east-1")

    # without ARC the runbook needs Route 53's API (us-east-1): refused before any change
    before = snapshot_eu(sb)
    log = os.path.join(runs, "route53-fallback.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *region_params(sb, incident_start=incident, topic_arn=v["DRB_SANDBOX_TOPIC_ARN_EU"]))
    if not c.eq(p.returncode, 3, "without ARC, under the control-plane outage: refused (exit 3)"):
        show(p)
    mode = step_result(log, "switch-mode") or {}
    c.ok(mode.get("mode") == "route53" and "us-east-1 control plane" in mode.get("warning", ""),
         "the log says the fallback depends on the us-east-1 control plane (%s)" % mode)
    c.ok("route53" in (p.stdout + p.stderr).lower(),
         "the refusal names the Route 53 call that failed")
    c.eq(diff(before, snapshot_eu(sb)), [], "the refused fallback changed nothing")

    # a us-east-1 topic with ARC is refused: the messages would go to the failed region
    log = os.path.join(runs, "us-topic.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *arc_params(sb, topic_arn=v["DRB_SANDBOX_TOPIC_ARN"]))
    c.eq(p.returncode, 3, "ARC with a us-east-1 topic: refused (exit 3)")
    c.ok("topic_arn" in p.stdout + p.stderr, "the refusal names topic_arn")

    since = max([r["seq"] for r in requests(sb)] or [0])
    log = os.path.join(runs, "failover.jsonl")
    t1 = time.monotonic()
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               "--incident-start", incident,
               *arc_params(sb, incident_start=incident,
                           primary_security_groups=v["DRB_SANDBOX_DB_SECURITY_GROUP"]),
               timeout=400)
    took = time.monotonic() - t1
    if not c.eq(p.returncode, 0, "the ARC drill under the control-plane outage succeeds "
                "(%.1fs)" % took):
        show(p)
    c.eq(run_end(log).get("status"), "succeeded", "run.end status succeeded")
    mode = step_result(log, "switch-mode") or {}
    c.eq((mode.get("mode"), [e["region"] for e in mode.get("endpoints", [])]),
         ("arc", ["us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]),
         "switch-mode: ARC through the four endpoints outside us-east-1")
    conf = step_result(log, "confirm-outage") or {}
    c.ok(conf.get("outage") is True and conf.get("primary_db_reachable") is False and
         conf.get("unread"), "confirm-outage: health checks unreadable, primary database "
         "down, outage confirmed (%s)" % {k: conf.get(k) for k in ("outage", "unread",
                                                                    "primary_db_reachable")})
    iso = step_result(log, "isolate-old-primary") or {}
    c.ok(iso.get("isolated") is False and "by hand" in (iso.get("manual") or ""),
         "isolate-old-primary sends nothing to us-east-1's EC2 and says what to do by hand "
         "(%s)" % iso.get("manual"))
    ends = {e["step"]: e["data"]["status"] for e in audit_events(log)
            if e["event"] == "step.end" and e.get("step")}
    c.eq((ends.get("flip-record"), ends.get("verify-record"), ends.get("current-record")),
         ("skipped", "skipped", "skipped"), "the Route 53 steps are skipped with ARC")

    # the end state, read independently
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "f",
         "prod-db-eu (the real server) left recovery")
    ecs = sb.client("ecs", "eu-west-1")
    got = {s["serviceName"]: (s["desiredCount"], s["runningCount"]) for s in
           ecs.describe_services(cluster="prod-eu", services=SERVICES)["services"]}
    c.eq(got, {s: (2, 2) for s in SERVICES}, "ECS: every prod-eu service runs 2 of 2")
    c.eq((arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]),
          arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_EU"])), ("Off", "On"),
         "ARC: us-east-1 control Off, eu-west-1 On")
    c.eq(dig(res, name), [eu_target], "dig through Unbound: %s answers eu-west-1" % name)
    dns = step_result(log, "verify-dns") or {}
    c.eq((dns.get("answers"), dns.get("server")), ([eu_target], res),
         "verify-dns saw eu-west-1 from the sandbox's resolver")
    polls = [e for e in audit_events(log) if e["event"] == "call" and
             e.get("step") == "verify-dns"]
    c.ok(len(polls) >= 2, "verify-dns polled until the cached answer expired (%d asks)" %
         len(polls))
    check_no_us_east_1_after_confirmation(c, log, requests(sb, since))
    a = audit_verify(sb, log)
    if not c.eq(a.returncode, 0, "drbook audit verify: the log is intact"):
        print(a.stdout, a.stderr)
    rep = drbook(sb, "report", log, "--format", "json", timeout=60)
    try:
        d = json.loads(rep.stdout).get("dns") or {}
    except ValueError:
        d = {}
    c.ok(d.get("step") == "verify-dns" and isinstance(d.get("converged_offset_s"),
                                                         (int, float)),
         "the report shows DNS convergence (%s)" % d)

    # promotion is idempotent in effect: asking again for a promoted instance (a resume whose
    # record of the first answer was lost) returns it instead of failing
    rb = os.path.join(runs, "promote-again.yaml")
    with open(rb, "w") as f:
        f.write("version: 1\nname: promote-again\nsteps:\n  - id: promote\n"
                "    action: aws.rds.promote_read_replica\n"
                "    with: { id: prod-db-eu, region: eu-west-1 }\n")
    since = max([r["seq"] for r in requests(sb)] or [0])
    p = drbook(sb, "run", rb, "--yes", "--audit", os.path.join(runs, "again.jsonl"),
               "--runs-dir", runs)
    if not c.eq(p.returncode, 0, "promote_read_replica on the promoted replica succeeds"):
        show(p)
    again = step_result(os.path.join(runs, "again.jsonl"), "promote") or {}
    c.eq((again.get("status"), again.get("replica_source")), ("available", None),
         "its result is the promoted instance")
    c.eq([(r["operation"], r["status"]) for r in requests(sb, since) if r["service"] == "rds"],
         [("PromoteReadReplica", 400), ("DescribeDBInstances", 200)],
         "RDS refused the second promotion (InvalidDBInstanceState); drbook read the instance")
    print("region ARC scenario took %.1fs" % (time.monotonic() - t0), flush=True)


def snapshot_eu(sb):
    """What a refused run must leave alone, read outside us-east-1 (its APIs are down)."""
    v = sb.vars
    db = rds_instance(sb, "prod-db-eu", "eu-west-1")
    ecs = sb.client("ecs", "eu-west-1")
    return {"rds": (db["DBInstanceStatus"], db.get("ReadReplicaSourceDBInstanceIdentifier")),
            "ecs": sorted((s["serviceName"], s["desiredCount"]) for s in ecs.describe_services(
                cluster="prod-eu", services=SERVICES)["services"]),
            "arc": (arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]),
                    arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_EU"])),
            "pg": sb.value("DR_DB_DSN", "select pg_is_in_recovery()")}


if __name__ == "__main__":
    sys.exit(run_test(body, extra_env={"DRB_SANDBOX_DNS_TTL": str(TTL)}))
