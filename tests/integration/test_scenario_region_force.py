#!/usr/bin/env python3
# region-failover with -p force=true while us-east-1 is healthy (a planned move): the drill
# proceeds, fences the old primary while the application is still writing to it, waits for
# the replica to replay the fenced primary's final WAL (RPO 0), promotes, scales and flips.
# Checks: the real old primary refuses the application's role (the runbook's default fence,
# which works on RDS), every write it acknowledged is on the
# promoted server, the emulated state, the audit log and run.end.
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_scenario_region import (RUNBOOKS, SERVICES, Heartbeat, audit_verify,  # noqa: E402
                                  drbook, make_sentinel_table, region_params, run_end, show,
                                  step_result)
from sandbox_lib.common import psql  # noqa: E402
from sandbox_lib.testkit import run_test, wait_for  # noqa: E402


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    make_sentinel_table(sb)
    hb = Heartbeat(sb, interval=0.1).start()
    try:
        c.ok(wait_for(lambda: len(hb.rows) >= 5, 20), "the application writes heartbeats")
        log = os.path.join(runs, "forced.jsonl")
        p = drbook(sb, "run", os.path.join(RUNBOOKS, "region-failover.yaml"), "--drill",
                   "--yes", "--audit", log, "--runs-dir", runs, *region_params(sb, force="true",
                                primary_security_groups=sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP"]))
    finally:
        hb.stop()
    if not c.eq(p.returncode, 0, "forced on a healthy region: the drill succeeds (exit 0)"):
        show(p)
    c.ok((step_result(log, "confirm-outage") or {}).get("primary_healthy") is True,
         "the run recorded that the primary region was healthy")

    # the old primary: fenced, really refusing writes
    fence = step_result(log, "fence-old-primary") or {}
    c.ok(fence.get("fenced") is True and fence.get("reachable") is True and
         fence.get("method") == "roles", "the reachable old primary was fenced (roles: %s)"
         % fence)
    c.eq(sb.value("PRIMARY_DB_DSN", "select rolcanlogin from pg_roles where rolname = 'app'"),
         "f", "the application's role may no longer log in")
    out = psql(sb.vars["PRIMARY_DB_APP_DSN"], "insert into drbook.sentinel values ('late', "
               "now(), 'late')", check=False)
    c.ok(out is None, "the application's write on the old primary is refused")
    c.eq(sb.value("PRIMARY_DB_DSN", "select count(*) from pg_stat_activity where "
                  "usename = 'app'"), "0", "no session of the application is left on it")
    c.eq(step_result(log, "isolate-old-primary"), None,
         "a fenced primary is not isolated (the step is skipped)")
    c.ok(sb.client("ec2").describe_security_groups(GroupIds=[
        sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP"]])["SecurityGroups"][0]["IpPermissions"],
        "EC2: prod-db's security group keeps its rules")

    # RPO 0, proven: every write the old primary acknowledged is on the promoted server
    m = step_result(log, "measure-rpo") or {}
    c.eq((m.get("rpo_s"), m.get("method")), (0, "fenced primary's final WAL replayed"),
         "measure-rpo: 0 s by replaying the fenced primary's final WAL")
    present = set(sb.value("DR_DB_DSN", "select string_agg(id, ',') from drbook.sentinel "
                           "where note = 'heartbeat'").split(","))
    lost = [r for r in hb.rows if r[0] not in present]
    c.ok(len(hb.rows) >= 5 and not lost, "all %d acknowledged heartbeats are on prod-db-eu "
         "(%d missing)" % (len(hb.rows), len(lost)))
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "f", "prod-db-eu is a primary")
    sb.sql("DR_DB_DSN", "create table drill_writes (id int); insert into drill_writes values (1)")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from drill_writes"), "1",
         "prod-db-eu takes a client write")

    ecs = sb.client("ecs", "eu-west-1")
    got = {s["serviceName"]: (s["desiredCount"], s["runningCount"]) for s in
           ecs.describe_services(cluster="prod-eu", services=SERVICES)["services"]}
    c.eq(got, {s: (2, 2) for s in SERVICES}, "ECS: every prod-eu service runs 2 of 2")
    v = sb.vars
    rr = [r for r in sb.client("route53").list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"]
        if r["Name"] == v["DRB_SANDBOX_API_RECORD"]]
    c.eq([x["Value"] for x in rr[0]["ResourceRecords"]] if rr else None,
         [v["DRB_SANDBOX_API_TARGET_EU"]], "Route 53: the api record points at eu-west-1")
    c.eq(audit_verify(sb, log).returncode, 0, "drbook audit verify: intact")
    end = run_end(log)
    c.eq((end.get("status"), end.get("rpo_s"), (end.get("targets") or {}).get("rpo")),
         ("succeeded", 0, "met"), "run.end: succeeded, rpo_s 0, target met")
    starts = [e for e in open(log) if '"run.start"' in e]
    c.ok(starts and '"force":true' in starts[0], "run.start records force=true")
    print("forced scenario took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
