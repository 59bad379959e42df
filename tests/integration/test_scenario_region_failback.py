#!/usr/bin/env python3
# Issue 11 point 9, the way back from scenario 3, end to end in the sandbox: the starting
# layout is read, `inject region-outage`, runbooks/region-failover.yaml moves the platform to
# eu-west-1, runbooks/region-failback.yaml is refused while us-east-1 is still down, then
# `inject region-recover` brings us-east-1 back with its old primary as a stale, writable,
# diverged server, and the fail-back returns the platform to its starting layout. Checked on
# the real end state: PostgreSQL (the writer in us-east-1 out of recovery on a new server,
# with a synchronous standby, the eu-west-1 and ap-southeast-1 replicas in recovery streaming
# from it, a row written to it arriving on both, the write taken during the failover kept,
# the stale primary's diverged write gone with it), moto (instances and their sources, the
# stale primary's final snapshot, ECS desired counts and scalable targets per region as at
# the start), the record (Route 53's API and the sandbox's DNS server), `drbook readiness` of
# the failover green again, RPO 0, an intact audit log, and a second fail-back refused.
# Traffic moves through Route 53's change API; DRB_TEST_FAILBACK_SWITCH=arc runs both ways
# through the ARC routing controls instead (the failover record, checked in DNS).
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

from sandbox_lib.common import psql  # noqa: E402
from sandbox_lib.testkit import dig, param_args, rds_instance, run_test, wait_for  # noqa: E402
from test_scenario_region import (RUNBOOKS, SERVICES, audit_verify, drbook,  # noqa: E402
                                  make_sentinel_table, heartbeat_once, now_rfc3339,
                                  region_params, run_end, show, step_result)

SWITCH = os.environ.get("DRB_TEST_FAILBACK_SWITCH", "route53")
# the ingress rules the failover revoked from prod-db's security group (its
# isolate-old-primary result), which the fail-back authorizes again (set by body)
REVOKED = []
FAILBACK = os.path.join(RUNBOOKS, "region-failback.yaml")
FAILOVER = os.path.join(RUNBOOKS, "region-failover.yaml")
CLUSTERS = {"us-east-1": "prod-us", "eu-west-1": "prod-eu", "ap-southeast-1": "prod-ap"}
INSTANCES = (("us-east-1", "prod-db"), ("eu-west-1", "prod-db-eu"),
             ("ap-southeast-1", "prod-db-ap"))


def record(sb):
    """The record the switch moves: the simple api record (Route 53 change API) or the
    failover record on the routing controls (ARC)."""
    v = sb.vars
    return v["DRB_SANDBOX_FAILOVER_RECORD" if SWITCH == "arc" else "DRB_SANDBOX_API_RECORD"]


def arc_endpoints(sb):
    v = sb.vars
    return [{"url": u, "region": r} for u, r in zip(v["DRB_SANDBOX_ARC_ENDPOINTS"].split(),
                                                    v["DRB_SANDBOX_ARC_ENDPOINT_REGIONS"].split())]


def failover_params(sb, **extra):
    v = sb.vars
    extra.setdefault("primary_security_groups", v["DRB_SANDBOX_DB_SECURITY_GROUP"])
    if SWITCH != "arc":
        return region_params(sb, **extra)
    p = {"record_name": record(sb), "dr_values": v["DRB_SANDBOX_API_TARGET_EU"],
         "arc_cluster_endpoints": json.dumps(arc_endpoints(sb)),
         "arc_primary_control": v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"],
         "arc_dr_control": v["DRB_SANDBOX_ARC_ROUTING_CONTROL_EU"],
         "topic_arn": v["DRB_SANDBOX_TOPIC_ARN_EU"],
         "dns_servers": v["DRB_SANDBOX_DNS_RESOLVER"]}
    p.update(extra)
    return region_params(sb, **p)


def failback_params(sb, **extra):
    v = sb.vars
    p = {"record_name": record(sb),
         "primary_values": v["DRB_SANDBOX_API_TARGET_US"],
         "primary_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_US"],
         "dns_servers": v["DRB_SANDBOX_DNS_RESOLVER"],
         "topic_arn": v["DRB_SANDBOX_TOPIC_ARN"], "account": v["DRB_SANDBOX_ACCOUNT_ID"]}
    if REVOKED:
        p["restore_ingress"] = json.dumps(REVOKED)
    if SWITCH == "arc":
        p.update({"arc_cluster_endpoints": json.dumps(arc_endpoints(sb)),
                  "arc_primary_control": v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]})
    else:
        p["zone_id"] = v["DRB_SANDBOX_ZONE_ID"]
    p.update(extra)
    return param_args(p)


def short(src):
    """A replica source as an id (moto gives a cross-region source as its ARN)."""
    return src.split(":")[-1] if src else None


def layout(sb):
    """The platform's layout as the control plane and DNS hold it (what the fail-back must
    put back): instances and their sources, ECS desired counts, scalable targets, record."""
    out = {}
    for region, ident in INSTANCES:
        try:
            d = rds_instance(sb, ident, region)
            out["rds/" + ident] = (d["DBInstanceStatus"], short(
                d.get("ReadReplicaSourceDBInstanceIdentifier")), d.get("MultiAZ"))
        except Exception as e:  # noqa: BLE001 - recorded as the state
            out["rds/" + ident] = "error: %s" % type(e).__name__
    for region, cluster in CLUSTERS.items():
        ecs = sb.client("ecs", region)
        for s in ecs.describe_services(cluster=cluster, services=SERVICES)["services"]:
            out["ecs/%s/%s" % (cluster, s["serviceName"])] = s["desiredCount"]
        aas = sb.client("application-autoscaling", region)
        for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
            out["aas/" + t["ResourceId"]] = (t["MinCapacity"], t["MaxCapacity"])
    v = sb.vars
    rr = [r for r in sb.client("route53").list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"]
        if r["Name"] == v["DRB_SANDBOX_API_RECORD"]]
    out["route53/api"] = [x["Value"] for x in rr[0]["ResourceRecords"]] if rr else None
    out["dns/api"] = dig(v["DRB_SANDBOX_DNS_AUTHORITATIVE"], record(sb))
    sg = sb.client("ec2").describe_security_groups(
        GroupIds=[v["DRB_SANDBOX_DB_SECURITY_GROUP"]])["SecurityGroups"][0]
    out["ec2/prod-db-ingress"] = sorted(
        [(r.get("FromPort"), x.get("CidrIp") or x.get("GroupId"))
         for r in sg["IpPermissions"] for x in r.get("IpRanges", []) + r.get("UserIdGroupPairs",
                                                                             [])])
    arc = (sb.status()[1].get("arc") or {}).get("routing_controls") or {}
    for region in ("US", "EU"):
        ctl = arc.get(v["DRB_SANDBOX_ARC_ROUTING_CONTROL_" + region]) or {}
        out["arc/" + region] = ctl.get("state")
    return out


def changes(before, after):
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)}


def app_can_log_in(conn):
    """The application's role (what a roles fence locks out) logs in and sees the data."""
    out = psql(conn.replace("user=postgres", "user=app"), "select count(*) from orders",
               timeout=10, check=False)
    return bool(out) and out.strip().isdigit()


def pgrole(conn):
    out = psql(conn, "select pg_is_in_recovery(), current_setting("
               "'default_transaction_read_only'), current_setting('port')", timeout=10,
               check=False)
    return tuple(out.strip().split("|")) if out else None


def replication(sb):
    """application_name -> (state, sync_state) on the writer endpoint's server."""
    out = psql(sb.vars["PRIMARY_DB_DSN"], "select application_name, state, sync_state from "
               "pg_stat_replication", timeout=10, check=False) or ""
    return {r.split("|")[0]: tuple(r.split("|")[1:]) for r in out.split()}


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    v = sb.vars
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    start = layout(sb)
    c.eq((start["rds/prod-db"], start["rds/prod-db-eu"][1], start["rds/prod-db-ap"][1],
          start["dns/api"]),
         (("available", None, True), "prod-db", "prod-db", [v["DRB_SANDBOX_API_TARGET_US"]]),
         "the starting layout: prod-db Multi-AZ writer, both replicas follow it, DNS on "
         "us-east-1")
    us_port = pgrole(v["PRIMARY_DB_DSN"])

    # ---- the failover
    make_sentinel_table(sb)
    for _ in range(3):
        heartbeat_once(sb)
    incident = now_rfc3339()
    sb.inject("region-outage")
    p = drbook(sb, "run", FAILOVER, "--drill", "--yes", "--audit",
               os.path.join(runs, "failover.jsonl"), "--runs-dir", runs, "--incident-start",
               incident, *failover_params(sb, incident_start=incident))
    if not c.eq(p.returncode, 0, "region-failover to eu-west-1 succeeds"):
        show(p)
    REVOKED[:] = (step_result(os.path.join(runs, "failover.jsonl"),
                              "isolate-old-primary") or {}).get("revoked") or []
    c.ok(len(REVOKED) == 2, "the failover cut the unreachable old primary off the network "
         "(%d ingress rules revoked)" % len(REVOKED))
    # the failover does not wait for the ap-southeast-1 replica it rebuilds (wait_rebuilt)
    c.ok(wait_for(lambda: layout(sb)["rds/prod-db-ap"] == ("available", "prod-db-eu", False),
                  60), "the failover rebuilt prod-db-ap from prod-db-eu")
    mid = layout(sb)
    c.eq((mid["rds/prod-db-eu"][:2], mid["dns/api"]),
         (("available", None), [v["DRB_SANDBOX_API_TARGET_EU"]]),
         "after the failover prod-db-eu is the writer and DNS answers eu-west-1 (%s)" % SWITCH)
    sb.sql("DR_DB_DSN", "create table failback_probe (id int primary key, what text); "
           "insert into failback_probe values (1, 'written in eu-west-1 during the failover')")

    # ---- refused while us-east-1 is still down: nothing changes
    log = os.path.join(runs, "refused-down.jsonl")
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *failback_params(sb))
    if not c.eq(p.returncode, 3, "us-east-1 still down: region-failback is refused (exit 3)"):
        show(p)
    c.ok("not healthy yet" in p.stdout + p.stderr, "the refusal says the primary region is "
         "not healthy yet")
    c.eq(changes(mid, layout(sb)), {}, "the refused fail-back changed nothing")

    # ---- us-east-1 recovers: the old primary is back, writable and diverged
    rec = sb.inject("region-recover")
    c.eq(sorted(rec.get("started_servers", [])), ["prod-db-a", "prod-db-b"],
         "region-recover starts the old Multi-AZ pair again")
    stale = pgrole(v["PRIMARY_DB_DSN"])
    c.ok(stale and stale[0] == "f", "the stale old primary answers out of recovery (%s)" %
         (stale,))
    psql(v["PRIMARY_DB_DSN"], "create table if not exists failback_probe (id int primary "
         "key, what text); insert into failback_probe values (2, 'stale primary only')",
         timeout=10)
    c.ok(wait_for(lambda: all(
        s["desiredCount"] == s["runningCount"] for s in sb.client("ecs").describe_services(
            cluster="prod-us", services=SERVICES)["services"]), 30),
        "prod-us's tasks run again")

    # ---- the plan: preflight passes, nothing changes
    before = layout(sb)
    p = drbook(sb, "plan", FAILBACK, "--drill", "--runs-dir", runs, *failback_params(sb))
    if not c.eq(p.returncode, 0, "drbook plan region-failback passes its preflight (exit 0)"):
        show(p)
    c.ok("critical path" in p.stdout and "catch-up" in p.stdout,
         "the plan prints the graph's critical path")
    c.eq(changes(before, layout(sb)), {}, "the plan changed nothing")

    # ---- phase 1 alone (the switch not approved): prod-db rebuilt as a replica of
    # prod-db-eu, nothing changed for clients
    log = phase1 = os.path.join(runs, "phase1.jsonl")
    p = drbook(sb, "run", FAILBACK, "--drill", "--approve", "approve-rebuild", "--audit", log,
               "--runs-dir", runs, *failback_params(sb))
    if not c.eq(p.returncode, 1, "only approve-rebuild granted: the run stops at the switch's "
                "approval (exit 1: prod-db was rebuilt)"):
        show(p)
    now = layout(sb)
    c.eq((now["rds/prod-db"], now["rds/prod-db-eu"][:2], now["dns/api"]),
         (("available", "prod-db-eu", True), ("available", None),
          [v["DRB_SANDBOX_API_TARGET_EU"]]),
         "prod-db is a Multi-AZ read replica of prod-db-eu; prod-db-eu still the writer and "
         "DNS still on eu-west-1")
    c.eq((pgrole(v["PRIMARY_DB_DSN"]) or ("",))[0], "t",
         "prod-db's endpoint reaches a server in recovery (the new replica)")
    c.eq(changes(mid, now), {"rds/prod-db": (("available", None, True),
                                              ("available", "prod-db-eu", True))},
         "phase 1 changed prod-db only")

    # ---- the fail-back
    log = os.path.join(runs, "failback.jsonl")
    t1 = time.monotonic()
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               *failback_params(sb))
    if not c.eq(p.returncode, 0, "region-failback succeeds (%.1fs)" % (time.monotonic() - t1)):
        show(p)

    # PostgreSQL: a new writer in us-east-1 with its standby, both replicas following it
    role = pgrole(v["PRIMARY_DB_DSN"])
    c.ok(role and role[:2] == ("f", "off") and role[2] != us_port[2],
         "prod-db's endpoint reaches a new writable server out of recovery (%s, the old one "
         "was on port %s)" % (role, us_port[2]))
    c.eq(pgrole(v["DR_DB_DSN"])[:1] if pgrole(v["DR_DB_DSN"]) else None, ("t",),
         "prod-db-eu is in recovery again")
    c.ok(all(app_can_log_in(v[k]) for k in ("PRIMARY_DB_DSN", "DR_DB_DSN", "AP_DB_DSN")),
         "the app role logs in to the new primary and both replicas (the fence of prod-db-eu "
         "replicated and was lifted)")
    c.eq(pgrole(v["AP_DB_DSN"])[:1] if pgrole(v["AP_DB_DSN"]) else None, ("t",),
         "prod-db-ap is in recovery")
    rep = {}

    def streaming():
        rep.update(replication(sb))
        return (rep.get("prod_db_eu", ("",))[0] == "streaming" and
                rep.get("prod_db_ap", ("",))[0] == "streaming" and
                any(s == ("streaming", "sync") for s in rep.values()))
    c.ok(wait_for(streaming, 30), "the new writer streams to prod-db-eu, prod-db-ap and a "
         "synchronous standby (%s)" % rep)
    psql(v["PRIMARY_DB_DSN"], "insert into failback_probe values (3, 'after the fail-back')",
         timeout=10)
    for var in ("DR_DB_DSN", "AP_DB_DSN"):
        c.ok(wait_for(lambda: sb.value(var, "select count(*) from failback_probe where "
                                       "id = 3") == "1", 30),
             "a row written to the new primary arrives on %s" % var)
    c.eq(sb.value("PRIMARY_DB_DSN", "select string_agg(id::text, ',' order by id) from "
                  "failback_probe"), "1,3",
         "the write taken in eu-west-1 is kept; the stale primary's diverged write is not")
    st = sb.status()[1]
    c.ok(not st["nodes"]["prod-db-a"]["running"] and not st["nodes"]["prod-db-b"]["running"],
         "the stale servers are stopped (deleted with their instance)")
    vr = step_result(log, "verify-replication") or {}
    c.eq(sorted(vr.get("arrived_on") or []), ["ap_db", "dr_db"],
         "verify-replication saw its sentinel on both replicas")

    # moto and DNS: the starting layout again
    end = layout(sb)
    c.eq(changes(start, end), {},
         "instances, sources, ECS counts, scalable targets, record and DNS answer are as at "
         "the start")
    rds = sb.client("rds")
    snaps = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(
        DBInstanceIdentifier="prod-db")["DBSnapshots"]]
    fs = (step_result(phase1, "old-primary") or {}).get("final_snapshot")
    c.ok(fs and fs.startswith("prod-db-stale-") and fs in snaps,
         "the stale primary's final snapshot %s is kept (%s)" % (fs, snaps))
    dns = step_result(log, "verify-dns") or {}
    c.eq(dns.get("answers"), [v["DRB_SANDBOX_API_TARGET_US"]],
         "verify-dns saw us-east-1 from the sandbox's resolver")
    c.eq(dig(v["DRB_SANDBOX_DNS_RESOLVER"], record(sb)),
         [v["DRB_SANDBOX_API_TARGET_US"]], "the resolver answers us-east-1")

    # the run itself
    c.eq(audit_verify(sb, log).returncode, 0, "drbook audit verify: the log is intact")
    e = run_end(log)
    c.eq((e.get("status"), e.get("rpo_s")), ("succeeded", 0.0), "run.end: succeeded, RPO 0")

    # ready for the next failover, and a second fail-back has nothing to do
    p = drbook(sb, "readiness", FAILOVER, "--runs-dir", runs, *region_params(sb))
    if not c.eq(p.returncode, 0, "drbook readiness of region-failover is green again"):
        show(p)
    before = layout(sb)
    p = drbook(sb, "run", FAILBACK, "--drill", "--yes", "--audit",
               os.path.join(runs, "again.jsonl"), "--runs-dir", runs, *failback_params(sb))
    c.eq(p.returncode, 3, "a second fail-back is refused (exit 3)")
    c.ok("nothing to fail back" in p.stdout + p.stderr, "it says there is nothing to fail back")
    c.eq(changes(before, layout(sb)), {}, "the second attempt changed nothing")
    print("fail-back scenario took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    # a short TTL: the failover's DNS check (ARC) leaves eu-west-1 in the resolver's cache
    sys.exit(run_test(body, extra_env={"DRB_SANDBOX_DNS_TTL": "5"}))
