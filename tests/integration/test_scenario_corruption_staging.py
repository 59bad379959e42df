#!/usr/bin/env python3
# Scenario 4, restores as AWS needs them (issue 11, point 6): runbooks/db-corruption-restore.yaml
# after `inject corruption`, in one sandbox whose databases have their network (docs/sandbox.md:
# prod-db's security group, subnet group and parameter group; a staging VPC with its own; the
# load balancer's /_staging/INSTANCE is the staging application, which reaches an instance only
# through a security group that admits it).
# 0. Refusals before any change: a subnet group of another VPC without its security groups,
#    and another AWS account than `account`.
# 1. No network given, a smoke test against staging: the restore gets prod-db's security
#    group, subnet group, parameter group, class and Multi-AZ (not RDS's defaults, which the
#    sandbox gives as RDS does); the staging application cannot reach it, the smoke test fails
#    and the run stops before the switch: the record (Route 53 and the DNS server's answer) and
#    the replicas are unchanged.
# 2. Into the staging environment (its security group, subnet group, parameter group, class,
#    tags): RDS reports them; the smoke test reads the restored database and passes, before the
#    switch; the record answers the restored instance; prod-db-eu and prod-db-ap are read
#    replicas of the restored instance in RDS (same settings as before) and their real servers
#    are in recovery, stream from the restored server, and receive a row written there.
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))
sys.path.insert(0, HERE)

from sandbox_lib.testkit import rds_instance, run_test, wait_for, wal_receiver  # noqa: E402
from test_scenario_corruption import (RECORD, RUNBOOK, drop_staging,  # noqa: E402
                                      point_record_at_prod, record_values, staging)
from test_scenario_ecs import Drbook, calls, run_end, step_status  # noqa: E402

US, EU, AP = "us-east-1", "eu-west-1", "ap-southeast-1"
REPLICAS = ((EU, "prod-db-eu", "DR_DB_DSN"), (AP, "prod-db-ap", "AP_DB_DSN"))


def settings(db):
    """What a restore or a rebuild must carry over, as RDS reports it."""
    return {"security_groups": sorted(g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]),
            "subnet_group": (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "parameter_group": [g["DBParameterGroupName"] for g in db["DBParameterGroups"]],
            "class": db["DBInstanceClass"], "multi_az": db["MultiAZ"],
            "az": db.get("AvailabilityZone"),
            "tags": {t["Key"]: t["Value"] for t in db.get("TagList") or []}}


def dns_answer(sb):
    """What the sandbox's authoritative DNS server answers for the application's record."""
    host, port = sb.vars["DRB_SANDBOX_DNS_AUTHORITATIVE"].split(":")
    p = subprocess.run(["dig", "@" + host, "-p", port, RECORD, "SRV", "+short", "+time=2",
                        "+tries=1"], capture_output=True, text=True, timeout=20)
    return [line.rstrip(".") for line in p.stdout.split("\n") if line.strip()]


def lb_stats(sb, name):
    import json
    import urllib.request
    with urllib.request.urlopen(sb.vars["DRB_SANDBOX_LB_URL"] + "/_lb/stats", timeout=5) as r:
        return json.loads(r.read()).get(name) or {}


def smoke_call(log):
    got = [r for r in log if r["event"] == "call" and r.get("step") == "smoke-test"]
    return got


def case_refusals(sb, c, d, corr, original, replicas_before):
    v = sb.vars
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                      "db_subnet_group=" + v["DRB_SANDBOX_STAGING_SUBNET_GROUP"])
    c.eq(p.returncode, 3, "a staging subnet group without security groups is refused (exit 3)")
    c.ok("without vpc_security_group_ids" in (run_end(log).get("error") or ""),
         "run.end says why (%s)" % run_end(log).get("error"))
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                      "account=000000000000")
    c.eq((p.returncode, step_status(log, "whoami")), (3, "failed"),
         "another account than `account` is refused at whoami (exit 3)")
    c.eq(calls(log, "RestoreDBInstanceToPointInTime"), [], "refused: no restore call")
    c.eq(staging(sb), None, "refused: no staging instance")


def case_smoke_fails(sb, c, d, corr, original, replicas_before):
    url = sb.vars["DRB_SANDBOX_STAGING_URL"] + "/restore-prod-db/health"
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                      "staging_smoke_url=" + url)
    c.eq(p.returncode, 1, "a failing smoke test fails the run (exit 1)")
    c.eq(step_status(log, "validate-data"), "ok", "the data checks passed first")
    c.eq(step_status(log, "smoke-test"), "failed", "smoke-test is the failed step")
    got = smoke_call(log)
    c.ok(len(got) == 3 and all(r["data"].get("status") == 504 for r in got),
         "the smoke test asked staging 3 times and got 504 each time (%s)" %
         [r["data"].get("status") for r in got])
    c.ok("admits the staging application" in ((got[-1]["data"].get("response") or {}).get(
        "body") or "") if got else False, "staging could not reach the restored instance")
    c.eq(lb_stats(sb, "_staging/restore-prod-db").get("failed"), 3,
         "the staging application counted 3 failed answers")
    c.eq(calls(log, "ChangeResourceRecordSets"), [], "nothing was switched")
    c.eq(record_values(sb), original, "Route 53: the record still points at prod-db")
    c.eq(dns_answer(sb), [v.rstrip(".") for v in original],
         "DNS: the authoritative server still answers prod-db")

    # no network given: prod-db's, never RDS's defaults (the sandbox gives those as RDS does)
    prod, db = settings(rds_instance(sb, "prod-db")), settings(staging(sb))
    c.eq({k: db[k] for k in ("security_groups", "subnet_group", "parameter_group", "class",
                             "multi_az")},
         {k: prod[k] for k in ("security_groups", "subnet_group", "parameter_group", "class",
                               "multi_az")},
         "RDS: the restore has prod-db's security group, subnet group, parameter group, class "
         "and Multi-AZ")
    c.eq(db["security_groups"], [sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP"]],
         "RDS: ... which is the prod-db security group, not the VPC's default")
    c.eq((db["tags"].get("drbook:role"), db["tags"].get("drbook:restored-from")),
         ("staging", "prod-db"), "RDS: the restore is tagged drbook:role=staging")
    for region, ident, _ in REPLICAS:
        c.eq(rds_instance(sb, ident, region).get("ReadReplicaSourceDBInstanceIdentifier"),
             replicas_before[ident]["source"], "RDS: %s still follows prod-db" % ident)
    drop_staging(sb, c)


def case_into_staging(sb, c, d, corr, original, replicas_before):
    v = sb.vars
    url = v["DRB_SANDBOX_STAGING_URL"] + "/restore-prod-db/health"
    p, log, audit = d.run(
        "detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
        "staging_smoke_url=" + url, 'staging_smoke_expect="status": "ok"',
        'vpc_security_group_ids=["%s"]' % v["DRB_SANDBOX_STAGING_SECURITY_GROUP"],
        "db_subnet_group=" + v["DRB_SANDBOX_STAGING_SUBNET_GROUP"],
        "db_parameter_group=" + v["DRB_SANDBOX_STAGING_PARAMETER_GROUP"],
        "instance_class=db.t3.small", "multi_az=false",
        'tags={"drbook:role": "staging", "env": "staging"}')
    c.eq(p.returncode, 0, "the restore into staging exits 0")
    c.eq(run_end(log).get("status"), "succeeded", "run.end status succeeded")

    # the restored instance, as RDS reports it: the staging environment's network
    db = staging(sb)
    got = settings(db)
    c.eq((got["security_groups"], got["subnet_group"], got["parameter_group"], got["class"],
          got["multi_az"]),
         ([v["DRB_SANDBOX_STAGING_SECURITY_GROUP"]], v["DRB_SANDBOX_STAGING_SUBNET_GROUP"],
          [v["DRB_SANDBOX_STAGING_PARAMETER_GROUP"]], "db.t3.small", False),
         "RDS: the restore has the staging security group, subnet group, parameter group, "
         "class and Multi-AZ asked for")
    c.eq((got["tags"].get("drbook:role"), got["tags"].get("env"),
          got["tags"].get("drbook:restored-from")), ("staging", "staging", "prod-db"),
         "RDS: the restore carries the tags asked for and drbook:restored-from")
    c.eq(step_status(log, "restored-settings"), "ok", "the runbook checked them too")

    # the smoke test: staging read the restored database, before the switch
    smoke = smoke_call(log)
    c.eq([r["data"].get("status") for r in smoke], [200], "one smoke call, answered 200")
    body = (smoke[0]["data"].get("response") or {}).get("body") or "" if smoke else ""
    c.ok('"orders": %d' % corr["orders_before"] in body,
         "staging answered from the restored database (%s)" % body)
    c.eq(lb_stats(sb, "_staging/restore-prod-db").get("served"), 1,
         "the staging application served it")
    switch = calls(log, "ChangeResourceRecordSets")
    c.ok(smoke and switch and smoke[0]["seq"] < switch[0]["seq"],
         "the smoke test ran before the switch")
    want = ["0 0 %d %s" % (db["Endpoint"]["Port"], db["Endpoint"]["Address"])]
    c.eq(record_values(sb), want, "Route 53: the record points at the restored instance")
    c.ok(wait_for(lambda: dns_answer(sb) == want, 10),
         "DNS: the authoritative server answers the restored instance (%s)" % dns_answer(sb))

    # the replicas: read replicas of the restored instance in RDS, with their settings
    restored_port = str(db["Endpoint"]["Port"])
    for region, ident, dsn_var in REPLICAS:
        r = rds_instance(sb, ident, region)
        c.eq((r["DBInstanceStatus"], r.get("ReadReplicaSourceDBInstanceIdentifier")),
             ("available", db["DBInstanceArn"]),
             "RDS: %s is an available read replica of restore-prod-db" % ident)
        before = replicas_before[ident]["settings"]
        c.eq(settings(r), before, "RDS: %s kept its class, AZ, network, parameter group and "
             "tags" % ident)
        rec, status, port = wal_receiver(sb, dsn_var)
        c.eq((rec, status, port), (True, "streaming", restored_port),
             "%s's server is in recovery and streams from the restored server" % ident)
        c.eq(sb.value(dsn_var, "select count(*) from orders"), str(corr["orders_before"]),
             "%s holds the restored data (every order back), not the corrupt" % ident)
    c.eq(sorted(db.get("ReadReplicaDBInstanceIdentifiers") or []),
         sorted("arn:aws:rds:%s:%s:db:%s" % (region, v["DRB_SANDBOX_ACCOUNT_ID"], ident)
                for region, ident, _ in REPLICAS),
         "RDS: restore-prod-db lists both replicas")
    c.eq(rds_instance(sb, "prod-db").get("ReadReplicaDBInstanceIdentifiers"), [],
         "RDS: the corrupt prod-db has no replica left")
    restored_dsn = "host=127.0.0.1 port=%s user=postgres password=%s dbname=app" % (
        restored_port, v["DRB_SANDBOX_PG_PASSWORD"])
    sb.sql(restored_dsn, "create table replica_probe (id int primary key); "
           "insert into replica_probe values (6)")
    for _, ident, dsn_var in REPLICAS:
        c.ok(wait_for(lambda: _probe(sb, dsn_var), 15),
             "a row written to the restored primary arrives on %s" % ident)
    c.eq(d.verify(audit).returncode, 0, "the audit log verifies")


def _probe(sb, dsn_var):
    try:
        return sb.value(dsn_var, "select count(*) from replica_probe where id = 6") == "1"
    except Exception:
        return False


def body(sb, c):
    t0 = time.monotonic()
    took, _ = sb.up()
    print("sandbox up took %.1fs" % took, flush=True)
    tmp = tempfile.mkdtemp(prefix="drb-scen-corr-stg-")
    try:
        original = point_record_at_prod(sb)
        replicas_before = {}
        for region, ident, _ in REPLICAS:
            r = rds_instance(sb, ident, region)
            replicas_before[ident] = {"source": r.get("ReadReplicaSourceDBInstanceIdentifier"),
                                      "settings": settings(r)}
        c.eq(sorted(replicas_before[i]["settings"]["security_groups"][0] for _, i, _ in REPLICAS),
             sorted([sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP_EU"],
                     sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP_AP"]]),
             "seeded: each replica is in its region's prod-db security group")
        time.sleep(1.5)     # the restore point (whole seconds) comes after the base backup
        corr = sb.inject("corruption")
        d = Drbook(sb, tmp, RUNBOOK, {"DRBOOK_DB_PASSWORD": sb.vars["DRB_SANDBOX_PG_PASSWORD"]})
        base = ["zone_id=" + sb.vars["DRB_SANDBOX_ZONE_ID"], "record_type=SRV"]
        run = d.run
        d.run = lambda *p, **kw: run(*(base + list(p)), **kw)
        for case in (case_refusals, case_smoke_fails, case_into_staging):
            print("# %s (%.1fs)" % (case.__name__, time.monotonic() - t0), flush=True)
            case(sb, c, d, corr, original, replicas_before)
        c.eq(d.sanitizer_reports, [], "no sanitizer report from any drbook run")
        print("# done (%.1fs)" % (time.monotonic() - t0), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
