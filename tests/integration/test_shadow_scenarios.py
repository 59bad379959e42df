#!/usr/bin/env python3
# The shadow drills of the scenario runbooks other than ecs-task-failure (that one, and the
# shadow rule itself, are in test_shadow_drills.py), each in the sandbox, with the production
# state of test_shadow_drills.production_state (ECS, RDS, Route 53 records, PostgreSQL
# recovery state, data, settings, roles, sentinels) taken before and after and equal:
#   - rds-multi-az-failover: setup restores prod-db into a Multi-AZ drill-prod-db (a real
#     PostgreSQL server), which the runbook fails over (forced reboot: its other AZ), with
#     its sentinel found after it (RPO 0); teardown deletes the copy;
#   - db-corruption-restore: setup makes the record drill-db.example.internal.; the runbook
#     restores prod-db into drill-restore-prod-db, validates it and switches drill-db to it;
#     teardown deletes both; and a drill whose copy fails validation: exit 1, teardown still
#     deletes both;
#   - region-failover: setup makes a read replica of prod-db in eu-west-1 (drill-prod-db-eu,
#     a streaming standby), drill- copies of two DR services and the record
#     drill-api.example.internal.; the runbook promotes the copy, scales the services, flips
#     the record and verifies; teardown removes all of it. Also SIGTERM in the middle of the
#     region drill: teardown still runs and production is as it was.
# Each drill's run.end holds RTO and RPO, and its HTML report (drbook report --format html),
# rendered by headless Chromium (--dump-dom), holds the chart. DRB_SHADOW_CASES=case_rds,...
# runs only the cases named (for working on one; ctest runs them all).
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

from test_shadow_drills import (DRBOOK, SRC, Drill, calls, chart_rendered, diff, ev, log_of,  # noqa: E402
                                production_state, teardown_ok)
from sandbox_lib.testkit import run_test, wait_for  # noqa: E402

RUNBOOKS = os.path.join(SRC, "runbooks")


def run_end(log):
    e = ev(log, "run.end")
    return e[0]["data"] if e else {}


def gone(sb, region, ident):
    rds = sb.client("rds", region)
    return wait_for(lambda: ident not in [db["DBInstanceIdentifier"] for db in
                                          rds.describe_db_instances()["DBInstances"]], 30)


def record_names(sb):
    r53 = sb.client("route53")
    return [r["Name"] for r in r53.list_resource_record_sets(
        HostedZoneId=sb.vars["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"]]


def check_measured(c, log, what):
    end = run_end(log)
    c.ok(isinstance(end.get("rto_s"), (int, float)) and end["rto_s"] > 0 and
         isinstance(end.get("rpo_s"), (int, float)),
         "%s: run.end holds RTO and RPO, measured as in a real run (%s, %s)" %
         (what, end.get("rto_s"), end.get("rpo_s")))
    tg = end.get("targets") or {}
    c.ok(tg.get("rto") in ("met", "missed") and tg.get("rpo") in ("met", "missed"),
         "%s: run.end compares them with the targets (%s)" % (what, tg))
    return end


def check_start(c, log, what):
    start = ev(log, "run.start")[0]["data"] if ev(log, "run.start") else {}
    c.eq((start.get("mode"), start.get("drill")), ("shadow", True),
         "%s: run.start mode shadow" % what)
    c.eq(ev(log, "shadow.violation"), [], "%s: no call was refused" % what)
    return start


def case_rds(sb, c, d):
    what = "rds shadow drill"
    before = production_state(sb)
    code, log = d.run(os.path.join(RUNBOOKS, "rds-multi-az-failover.yaml"),
                      "account=" + sb.vars["DRB_SANDBOX_ACCOUNT_ID"], timeout=400)
    c.eq(code, 0, "%s: exit 0" % what)
    start = check_start(c, log, what)
    c.eq((start.get("params", {}).get("instance"),
          start.get("params", {}).get("writer_connection")), ("drill-prod-db", "drill_writer"),
         "%s: the instance and the connection are the copy's" % what)
    made = calls(log, "RestoreDBInstanceToPointInTime")
    c.ok(made and made[0]["data"].get("status") == 200, "%s: setup restored prod-db into "
         "drill-prod-db" % what)
    reb = calls(log, "RebootDBInstance")
    c.ok(reb and all(r["data"]["request"]["params"].get("DBInstanceIdentifier") ==
                     "drill-prod-db" for r in reb) and
         reb[0]["data"]["request"]["params"].get("ForceFailover") in ("true", True),
         "%s: the forced failover rebooted drill-prod-db only (%s)" %
         (what, [r["data"]["request"]["params"] for r in reb]))
    wa = [r for r in ev(log, "step.end", "wait-available") if r["data"].get("status") == "ok"]
    c.ok(wa and wa[-1]["data"]["result"]["az"] != "us-east-1a",
         "%s: the copy moved to its other AZ" % what)
    m = [r for r in ev(log, "step.end", "measure-rpo") if r["data"].get("status") == "ok"]
    c.ok(m and m[-1]["data"]["result"].get("method") == "sentinel",
         "%s: the sentinel written through the copy survived its failover" % what)
    end = check_measured(c, log, what)
    c.eq(end.get("rpo_s"), 0, "%s: RPO 0 (the sentinel)" % what)
    c.ok(teardown_ok(log) and calls(log, "DeleteDBInstance"), "%s: teardown deleted "
         "drill-prod-db" % what)
    c.ok(gone(sb, "us-east-1", "drill-prod-db"), "%s: drill-prod-db is gone" % what)
    c.eq(diff(before, production_state(sb)), [], "%s: production unchanged" % what)
    chart_rendered(c, d, d.last_audit, what)


def case_corruption(sb, c, d):
    what = "corruption shadow drill"
    before = production_state(sb)
    detected = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, log = d.run(os.path.join(RUNBOOKS, "db-corruption-restore.yaml"),
                      "detected_at=" + detected, "before=2s",
                      "zone_id=" + sb.vars["DRB_SANDBOX_ZONE_ID"], "record_type=SRV",
                      timeout=400)
    c.eq(code, 0, "%s: exit 0" % what)
    start = check_start(c, log, what)
    p = start.get("params", {})
    c.eq((p.get("staging"), p.get("staging_connection"), p.get("db_record")),
         ("drill-restore-prod-db", "drill_restored", "drill-db.example.internal."),
         "%s: the staging instance, its connection and the record are the drill's" % what)
    rs = calls(log, "RestoreDBInstanceToPointInTime")
    c.ok(rs and rs[0]["data"]["request"]["params"].get("TargetDBInstanceIdentifier") ==
         "drill-restore-prod-db", "%s: prod-db restored into drill-restore-prod-db" % what)
    v = [r for r in ev(log, "step.end", "validate-data") if r["data"].get("status") == "ok"]
    c.ok(v, "%s: the restored copy was validated" % what)
    sw = [r for r in ev(log, "step.end", "verify") if r["data"].get("status") == "ok"]
    c.ok(sw and sw[-1]["data"]["result"].get("record") == "drill-db.example.internal.",
         "%s: drill-db switched to the restored copy and verified" % what)
    end = check_measured(c, log, what)
    c.ok(isinstance(end.get("rpo_s"), (int, float)) and 1.5 <= end["rpo_s"] <= 3,
         "%s: RPO = detected_at - restore point (%s)" % (what, end.get("rpo_s")))
    c.ok(teardown_ok(log), "%s: teardown ended ok" % what)
    c.ok(gone(sb, "us-east-1", "drill-restore-prod-db"), "%s: drill-restore-prod-db is gone"
         % what)
    c.ok("drill-db.example.internal." not in record_names(sb), "%s: drill-db is deleted" % what)
    c.eq(diff(before, production_state(sb)), [], "%s: production unchanged" % what)
    chart_rendered(c, d, d.last_audit, what)


def case_corruption_failure(sb, c, d):
    # the restored copy fails a validation check: the drill fails before the switch, and
    # teardown still removes the copy and the drill record
    what = "corruption shadow drill, failed validation"
    before = production_state(sb)
    detected = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, log = d.run(os.path.join(RUNBOOKS, "db-corruption-restore.yaml"),
                      "detected_at=" + detected, "before=2s",
                      "zone_id=" + sb.vars["DRB_SANDBOX_ZONE_ID"], "record_type=SRV",
                      'checks=[{"name": "never", "sql": "select 1", "expect": 0}]',
                      timeout=400)
    c.eq(code, 1, "%s: exit 1" % what)
    v = ev(log, "step.end", "validate-data")
    c.ok(v and v[-1]["data"].get("status") == "failed", "%s: validate-data failed" % what)
    c.eq(ev(log, "step.start", "switch"), [], "%s: nothing was switched" % what)
    c.ok(teardown_ok(log), "%s: teardown ran after the failure and ended ok" % what)
    c.ok(gone(sb, "us-east-1", "drill-restore-prod-db"), "%s: drill-restore-prod-db is gone"
         % what)
    c.ok("drill-db.example.internal." not in record_names(sb), "%s: drill-db is deleted" % what)
    c.eq(diff(before, production_state(sb)), [], "%s: production unchanged" % what)


def region_params(sb):
    v = sb.vars
    return ["zone_id=" + v["DRB_SANDBOX_ZONE_ID"], "dr_values=" + v["DRB_SANDBOX_API_TARGET_EU"],
            "primary_health_checks=" + v["DRB_SANDBOX_HEALTH_CHECK_US"],
            "dr_health_checks=" + v["DRB_SANDBOX_HEALTH_CHECK_EU"],
            "account=" + v["DRB_SANDBOX_ACCOUNT_ID"]]


DRILL_SERVICES = ["drill-api", "drill-auth"]


def check_region_torn_down(sb, c, log, what):
    c.ok(teardown_ok(log), "%s: teardown ended ok" % what)
    c.ok(gone(sb, "eu-west-1", "drill-prod-db-eu"), "%s: drill-prod-db-eu is gone" % what)
    c.ok("drill-api.example.internal." not in record_names(sb),
         "%s: the drill-api record is deleted" % what)
    ecs = sb.client("ecs", "eu-west-1")
    live = [s["serviceName"] for s in ecs.describe_services(
        cluster=sb.vars["DRB_SANDBOX_CLUSTER_EU"], services=DRILL_SERVICES)["services"]
        if s["status"] == "ACTIVE"]
    c.eq(live, [], "%s: the drill- services are deleted" % what)


def case_region(sb, c, d):
    what = "region shadow drill"
    before = production_state(sb)
    code, log = d.run(os.path.join(RUNBOOKS, "region-failover.yaml"), *region_params(sb),
                      timeout=400)
    c.eq(code, 0, "%s: exit 0" % what)
    start = check_start(c, log, what)
    p = start.get("params", {})
    c.eq((p.get("replica"), p.get("services"), p.get("record_name"), p.get("force"),
          p.get("fence_old_primary")),
         ("drill-prod-db-eu", DRILL_SERVICES, "drill-api.example.internal.", True, False),
         "%s: the replica, services and record are the drill's; forced, no fence" % what)
    rr = calls(log, "CreateDBInstanceReadReplica")
    c.ok(rr and rr[0]["data"]["request"]["params"].get("DBInstanceIdentifier") ==
         "drill-prod-db-eu", "%s: setup cloned prod-db into drill-prod-db-eu" % what)
    pr = calls(log, "PromoteReadReplica")
    c.ok(pr and all(r["data"]["request"]["params"].get("DBInstanceIdentifier") ==
                    "drill-prod-db-eu" for r in pr), "%s: only the copy was promoted" % what)
    upd = calls(log, "UpdateService")
    c.ok(upd and sorted({r["data"]["request"]["body"]["service"] for r in upd}) ==
         DRILL_SERVICES, "%s: only the drill- services were scaled" % what)
    flips = [r["data"]["request"] for r in calls(log, "ChangeResourceRecordSets")]
    c.ok(flips and all("drill-api.example.internal." in str(f) for f in flips),
         "%s: only the drill-api record was changed" % what)
    vw = [r for r in ev(log, "step.end", "verify-write") if r["data"].get("status") == "ok"]
    c.ok(vw, "%s: the promoted copy takes writes" % what)
    c.eq([r["data"].get("status") for r in ev(log, "step.end", "fence-old-primary")],
         ["skipped"], "%s: production's primary was not fenced" % what)
    check_measured(c, log, what)
    check_region_torn_down(sb, c, log, what)
    c.eq(diff(before, production_state(sb)), [], "%s: production unchanged" % what)
    chart_rendered(c, d, d.last_audit, what)


def case_region_sigterm(sb, c, d):
    what = "region shadow drill, SIGTERM"
    before = production_state(sb)
    argv, audit = d.argv(os.path.join(RUNBOOKS, "region-failover.yaml"), *region_params(sb))
    p = subprocess.Popen(argv, cwd=d.tmp, env=d.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # once the copy is promoted: the drill is in the middle of its steps
        got = wait_for(lambda: ev(log_of(audit), "step.end", "promote"), 240, 0.05)
        c.ok(got, "%s: the drill reached the promotion" % what)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=240)
        d._check_stderr(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    log = log_of(audit)
    end = run_end(log)
    c.ok("interrupted by a signal" in (end.get("error") or ""),
         "%s: run.end says the signal stopped it (%s)" % (what, end.get("error")))
    c.eq(p.returncode, 1, "%s: exit 1" % what)
    check_region_torn_down(sb, c, log, what)
    c.eq(diff(before, production_state(sb)), [], "%s: production unchanged" % what)


def body(sb, c):
    sb.up()
    tmp = tempfile.mkdtemp(prefix="drb-shadow-sc-")
    try:
        sb.client("sns").create_topic(Name="drill-alerts")
        sb.client("sns", "eu-west-1").create_topic(Name="drill-alerts")
        d = Drill(sb, tmp)
        d.env["DRBOOK_DB_PASSWORD"] = sb.vars["DRB_SANDBOX_PG_PASSWORD"]
        cases = [case_rds, case_corruption, case_corruption_failure, case_region,
                 case_region_sigterm]
        only = os.environ.get("DRB_SHADOW_CASES")
        for case in cases:
            if only and case.__name__ not in only.split(","):
                continue
            print("# %s" % case.__name__, flush=True)
            case(sb, c, d)
        c.eq(d.sanitizer, [], "no sanitizer report from any drbook run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
