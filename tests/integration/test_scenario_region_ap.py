#!/usr/bin/env python3
# ap-southeast-1, the cold standby, in runbooks/region-failover.yaml (issue 11, point 1), two
# sandboxes:
# 1. us-east-1 fails, the drill fails over to eu-west-1 (the default dr_region) and
#    rebuilds the ap-southeast-1 replica from the promoted prod-db-eu (RDS cannot re-point a
#    read replica: delete, then create_db_instance_read_replica): the real prod-db-ap streams
#    from prod-db-eu's server and a row written there arrives; RDS names prod-db-eu as its
#    source; prod-ap stays at 0; the api record answers eu-west-1.
# 2. us-east-1 and eu-west-1 fail, the drill fails over to ap-southeast-1
#    (-p dr_region=ap-southeast-1): prod-db-ap is promoted and takes writes, the six
#    prod-ap services start from zero to 2, the api record (Route 53 and the authoritative
#    DNS server) answers ap-southeast-1. Before the outage a readiness check of that target
#    passes.
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))
sys.path.insert(0, HERE)

from sandbox_lib.testkit import (dig_records, rds_instance, run_test, wait_for,  # noqa: E402
                                 wal_receiver)
from test_scenario_region import (RUNBOOKS, SERVICES, audit_events, audit_verify,  # noqa: E402
                                  drbook, now_rfc3339, region_params, run_end, show,
                                  step_result)

RUNBOOK = os.path.join(RUNBOOKS, "region-failover.yaml")
AP, EU, US = "ap-southeast-1", "eu-west-1", "us-east-1"


def dig_cname(server, name):
    """The CNAME target the server answers for name, or None."""
    return next((v for t, v, _ in dig_records(server, name) if t == "CNAME"), None)


def ecs_counts(sb, region, cluster):
    ecs = sb.client("ecs", region)
    return {s["serviceName"]: (s["desiredCount"], s["runningCount"]) for s in
            ecs.describe_services(cluster=cluster, services=SERVICES)["services"]}


def step_statuses(log, prefix):
    return {e["step"]: e["data"].get("status") for e in audit_events(log)
            if e["event"] == "step.end" and (e.get("step") or "").startswith(prefix)}


def check_seeded(sb, c):
    v = sb.vars
    ap = rds_instance(sb, "prod-db-ap", AP)
    c.ok(ap["DBInstanceStatus"] == "available" and
         ap.get("ReadReplicaSourceDBInstanceIdentifier", "").endswith(":db:prod-db"),
         "RDS: prod-db-ap is an available read replica of prod-db (%s)" %
         ap.get("ReadReplicaSourceDBInstanceIdentifier"))
    c.eq(ap["Endpoint"]["Port"], int(v["AP_DB_DSN"].split("port=")[1].split()[0]),
         "RDS: prod-db-ap's endpoint is its real server")
    c.eq(ecs_counts(sb, AP, "prod-ap"), {s: (0, 0) for s in SERVICES},
         "ECS: the six prod-ap services exist at desired 0")
    rec, status, _ = wal_receiver(sb, "AP_DB_DSN")
    c.ok(rec and status == "streaming", "prod-db-ap (the real server) is a streaming replica")
    c.eq(sb.value("AP_DB_DSN", "select count(*) from orders"), "300",
         "the seeded orders are on prod-db-ap")


# ---------------------------------------------------------------- 1: to eu-west-1, rebuild ap
def to_eu(sb, c):
    t0 = time.monotonic()
    took, _ = sb.up()
    print("sandbox up took %.1fs" % took, flush=True)
    v = sb.vars
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    check_seeded(sb, c)

    incident = now_rfc3339()
    sb.inject("region-outage")
    log = os.path.join(runs, "to-eu.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               "--incident-start", incident,
               *region_params(sb, topic_arn=v["DRB_SANDBOX_TOPIC_ARN_EU"], wait_rebuilt="true",
                              dns_servers=v["DRB_SANDBOX_DNS_RESOLVER"]))
    if not c.eq(p.returncode, 0, "us-east-1 down: the drill to eu-west-1 succeeds"):
        show(p)
    c.eq(step_statuses(log, "rebuild-"),
         {"rebuild-check": "ok", "rebuild-replica": "ok", "rebuild-available": "ok"},
         "the rebuild steps ran")
    rb = step_result(log, "rebuild-replica") or {}
    c.eq((rb.get("action"), rb.get("id"), rb.get("region"), rb.get("new_primary")),
         ("created", "prod-db-ap", AP, "prod-db-eu"),
         "the ap-southeast-1 replica was deleted and created again from prod-db-eu")
    calls = [e["data"].get("op") or e["data"].get("operation") for e in audit_events(log)
             if e["event"].startswith("call") and e.get("step") == "rebuild-replica"]
    c.eq((calls.count("DeleteDBInstance"), calls.count("CreateDBInstanceReadReplica")),
         (1, 1), "one DeleteDBInstance and one CreateDBInstanceReadReplica (%s)" % calls)
    c.eq(audit_verify(sb, log).returncode, 0, "drbook audit verify: the log is intact")

    # RDS: prod-db-ap is a replica of prod-db-eu now (same id, class, AZ and endpoint)
    eu = rds_instance(sb, "prod-db-eu", EU)
    ap = rds_instance(sb, "prod-db-ap", AP)
    c.ok(eu["DBInstanceStatus"] == "available" and
         not eu.get("ReadReplicaSourceDBInstanceIdentifier"), "RDS: prod-db-eu promoted")
    c.eq((ap["DBInstanceStatus"], ap.get("ReadReplicaSourceDBInstanceIdentifier")),
         ("available", eu["DBInstanceArn"]),
         "RDS: prod-db-ap is an available read replica of prod-db-eu")
    c.eq((ap["DBInstanceClass"], ap["AvailabilityZone"], ap["MultiAZ"]),
         ("db.t3.micro", AP + "a", False), "RDS: same class and AZ as before")
    c.eq(eu.get("ReadReplicaDBInstanceIdentifiers"), [ap["DBInstanceArn"]],
         "RDS: prod-db-eu lists prod-db-ap as its replica")
    c.eq(rds_instance(sb, "prod-db").get("ReadReplicaDBInstanceIdentifiers"), [],
         "RDS: prod-db has no replica left")

    # the real server: streams from prod-db-eu's server, and a row written there arrives
    eu_port = v["DR_DB_DSN"].split("port=")[1].split()[0]
    got = wait_for(lambda: (lambda r: r if r[1] == "streaming" else None)(
        wal_receiver(sb, "AP_DB_DSN")), 30)
    c.ok(got and got[0] and got[2] == eu_port,
         "prod-db-ap is in recovery and streams from prod-db-eu (port %s): %s" % (eu_port, got))
    sb.sql("DR_DB_DSN", "create table ap_probe (id int primary key, at timestamptz default "
           "now()); insert into ap_probe values (1)")
    c.ok(wait_for(lambda: sb.value("AP_DB_DSN", "select count(*) from ap_probe") == "1", 30),
         "a row written on the new primary arrives on prod-db-ap")
    c.eq(sb.value("AP_DB_DSN", "select count(*) from orders"), "300",
         "the seeded orders are on the rebuilt prod-db-ap")
    try:
        sb.sql("AP_DB_DSN", "insert into ap_probe values (2)")
        c.ok(False, "prod-db-ap refuses writes (a replica)")
    except Exception:
        c.ok(True, "prod-db-ap refuses writes (a replica)")

    # the rest: prod-ap untouched, prod-eu at 2, the record answers eu-west-1
    c.eq(ecs_counts(sb, AP, "prod-ap"), {s: (0, 0) for s in SERVICES},
         "ECS: prod-ap stays at 0")
    c.eq(ecs_counts(sb, EU, "prod-eu"), {s: (2, 2) for s in SERVICES},
         "ECS: prod-eu runs 2 of 2")
    c.ok(wait_for(lambda: dig_cname(v["DRB_SANDBOX_DNS_AUTHORITATIVE"],
                                    v["DRB_SANDBOX_API_RECORD"]) ==
                  v["DRB_SANDBOX_API_TARGET_EU"], 20),
         "DNS: the authoritative server answers %s" % v["DRB_SANDBOX_API_TARGET_EU"])
    st = sb.status()[1]
    c.eq(st.get("errors"), [], "the sandbox recorded no background error")
    print("to eu-west-1 took %.1fs" % (time.monotonic() - t0), flush=True)


# ---------------------------------------------------------------- 2: to ap-southeast-1
def to_ap(sb, c):
    t0 = time.monotonic()
    took, _ = sb.up()
    print("sandbox up took %.1fs" % took, flush=True)
    v = sb.vars
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    ap_params = dict(dr_region=AP, dr_health_checks=v["DRB_SANDBOX_HEALTH_CHECK_AP"],
                     topic_arn=v["DRB_SANDBOX_TOPIC_ARN_AP"],
                     dns_servers=v["DRB_SANDBOX_DNS_RESOLVER"])

    p = drbook(sb, "readiness", RUNBOOK, "--runs-dir", runs, *region_params(sb, **ap_params))
    if not c.eq(p.returncode, 0, "healthy platform: a failover to ap-southeast-1 is ready"):
        show(p)

    incident = now_rfc3339()
    sb.inject("region-outage")
    res = sb.inject("region-outage", "--region", EU)
    c.eq(res.get("stopped_servers"), ["prod-db-eu"], "eu-west-1 is down too (prod-db-eu)")
    log = os.path.join(runs, "to-ap.jsonl")
    p = drbook(sb, "run", RUNBOOK, "--drill", "--yes", "--audit", log, "--runs-dir", runs,
               "--incident-start", incident,
               *region_params(sb, dr_values=v["DRB_SANDBOX_API_TARGET_AP"], **ap_params))
    if not c.eq(p.returncode, 0, "us-east-1 and eu-west-1 down: the drill to ap-southeast-1 "
                "succeeds"):
        show(p)
    c.eq(run_end(log).get("status"), "succeeded", "run.end status succeeded")
    tgt = step_result(log, "target") or {}
    c.eq((tgt.get("region"), tgt.get("replica"), tgt.get("cluster"), tgt.get("connection")),
         (AP, "prod-db-ap", "prod-ap", "ap_db"), "the target step resolved ap-southeast-1")
    dr = step_result(log, "dr-services") or {}
    c.eq(dr.get("counts"), {s: 0 for s in SERVICES}, "the prod-ap services started from zero")
    c.eq(set(step_statuses(log, "rebuild-").values()), {"skipped"},
         "nothing to rebuild (eu-west-1 is the failed standby)")

    # the real database
    c.eq(sb.value("AP_DB_DSN", "select pg_is_in_recovery()"), "f",
         "prod-db-ap (the real server) left recovery")
    sb.sql("AP_DB_DSN", "create table ap_writes (id serial primary key); insert into "
           "ap_writes default values")
    c.eq(sb.value("AP_DB_DSN", "select count(*) from ap_writes"), "1",
         "prod-db-ap takes a write from a client")
    verify = step_result(log, "verify-write") or {}
    c.eq(sb.value("AP_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" %
                  verify.get("id", "")), "1", "the run's verify sentinel is on prod-db-ap")
    c.eq(sb.value("AP_DB_DSN", "select count(*) from orders"), "300",
         "the seeded orders are on prod-db-ap")

    # the emulated control plane and DNS
    ap = rds_instance(sb, "prod-db-ap", AP)
    c.ok(ap["DBInstanceStatus"] == "available" and
         not ap.get("ReadReplicaSourceDBInstanceIdentifier"),
         "RDS: prod-db-ap available and no longer a replica")
    eu = rds_instance(sb, "prod-db-eu", EU)
    c.ok(eu.get("ReadReplicaSourceDBInstanceIdentifier"), "RDS: prod-db-eu left alone")
    c.eq(ecs_counts(sb, AP, "prod-ap"), {s: (2, 2) for s in SERVICES},
         "ECS: every prod-ap service runs 2 of 2 (from 0)")
    c.eq({s: d for s, (d, _) in ecs_counts(sb, EU, "prod-eu").items()},
         {s: 1 for s in SERVICES}, "ECS: prod-eu's desired counts untouched")
    rr = [r for r in sb.client("route53").list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"]
        if r["Name"] == v["DRB_SANDBOX_API_RECORD"]]
    c.eq([x["Value"] for x in rr[0]["ResourceRecords"]] if rr else None,
         [v["DRB_SANDBOX_API_TARGET_AP"]], "Route 53: the api record points at ap-southeast-1")
    dns = step_result(log, "verify-dns") or {}
    c.eq(dns.get("answers"), [v["DRB_SANDBOX_API_TARGET_AP"]],
         "verify-dns: the resolver answered ap-southeast-1")
    c.ok(wait_for(lambda: dig_cname(v["DRB_SANDBOX_DNS_AUTHORITATIVE"],
                                    v["DRB_SANDBOX_API_RECORD"]) ==
                  v["DRB_SANDBOX_API_TARGET_AP"], 20),
         "DNS: the authoritative server answers %s" % v["DRB_SANDBOX_API_TARGET_AP"])
    c.eq(audit_verify(sb, log).returncode, 0, "drbook audit verify: the log is intact")
    print("to ap-southeast-1 took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    rc1 = run_test(to_eu)
    rc2 = run_test(to_ap)
    sys.exit(rc1 or rc2)
