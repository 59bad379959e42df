#!/usr/bin/env python3
# Scenario 4 end to end: runbooks/db-corruption-restore.yaml against the sandbox after
# `inject corruption` (every third order deleted on the writer). One sandbox for the file.
# The application finds its database through the Route 53 record db.example.internal.
# (SRV "0 0 PORT HOST": the sandbox's instances share 127.0.0.1 and differ by port), which the
# test creates pointing at prod-db, as the platform's configuration would. Cases: refusals
# (detection in the future, a restore point after the detection), a validation that fails
# (nothing switched), a failed health check after the switch (the record is switched back),
# a snapshot restore, resume after a kill before and after the restore call, the
# point-in-time restore whose end state is checked on the real servers, and a second run
# refused because the staging instance exists. The runs pass rebuild_replicas=false (the
# replicas' rebuild and the staging network are test_scenario_corruption_staging.py's): the
# replicas keep following prod-db.
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from botocore.exceptions import ClientError  # noqa: E402
from sandbox_lib.common import dsn, parse_rfc3339, port_in_use, read_json  # noqa: E402
from sandbox_lib.testkit import rds_instance, run_test, wait_for  # noqa: E402
from test_scenario_ecs import (DRBOOK, SRC, Alerts, Drbook, calls, run_end,  # noqa: E402
                               step_status, subjects)

RUNBOOK = os.path.join(SRC, "runbooks", "db-corruption-restore.yaml")
RECORD = "db.example.internal."
STAGING = "restore-prod-db"


def record_values(sb):
    r53 = sb.client("route53")
    sets = r53.list_resource_record_sets(HostedZoneId=sb.vars["DRB_SANDBOX_ZONE_ID"],
                                         StartRecordName=RECORD, StartRecordType="SRV",
                                         MaxItems="1")["ResourceRecordSets"]
    if not sets or sets[0]["Name"] != RECORD or sets[0]["Type"] != "SRV":
        return None
    return [r["Value"] for r in sets[0]["ResourceRecords"]]


def point_record_at_prod(sb):
    """The platform's configuration: the application resolves db.example.internal. to prod-db."""
    db = rds_instance(sb, "prod-db")
    value = "0 0 %d %s" % (db["Endpoint"]["Port"], db["Endpoint"]["Address"])
    sb.client("route53").change_resource_record_sets(
        HostedZoneId=sb.vars["DRB_SANDBOX_ZONE_ID"], ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {
                "Name": RECORD, "Type": "SRV", "TTL": 60,
                "ResourceRecords": [{"Value": value}]}}]})
    return [value]


def staging(sb):
    try:
        return rds_instance(sb, STAGING)
    except ClientError as e:
        if "NotFound" in e.response["Error"]["Code"]:
            return None
        raise


def drop_staging(sb, c):
    """What the operator does after reviewing a failed attempt: delete the staging instance."""
    db = staging(sb)
    if db is None:
        return
    sb.client("rds").delete_db_instance(DBInstanceIdentifier=STAGING, SkipFinalSnapshot=True)
    gone = wait_for(lambda: staging(sb) is None and not port_in_use(db["Endpoint"]["Port"]), 30)
    c.ok(gone, "clean-up: the staging instance is deleted and its server stopped")


def restored_dsn(sb):
    db = staging(sb)
    return dsn(db["Endpoint"]["Port"], sb.vars["DRB_SANDBOX_PG_PASSWORD"]), db


def corrupt_untouched(sb, c, corr, what):
    prod = rds_instance(sb, "prod-db")
    c.eq(prod["DBInstanceStatus"], "available",
         "%s: the corrupt instance prod-db still exists" % what)
    c.eq(int(sb.value("PRIMARY_DB_DSN", "select count(*) from orders")), corr["orders_after"],
         "%s: prod-db still holds the corrupt data (untouched, for forensics)" % what)


def rfc(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def case_future(sb, c, d, corr, original):
    future = rfc(datetime.now(timezone.utc) + timedelta(hours=1))
    p, log, _ = d.run("detected_at=" + future)
    c.eq(p.returncode, 3, "a detection time in the future is refused (exit 3)")
    c.ok("in the future" in (run_end(log).get("error") or ""),
         "run.end says why (%s)" % run_end(log).get("error"))
    c.eq(calls(log, "RestoreDBInstanceToPointInTime"), [], "refused: no restore call")
    c.eq(staging(sb), None, "refused: no staging instance")
    c.eq(record_values(sb), original, "refused: the record is unchanged")
    subj = subjects(d.alerts.take())
    c.ok(any("refused" in s for s in subj), "a refused run still alerts (%s)" % subj)

    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + future)
    c.eq(p.returncode, 3, "a restore point after the detection time is refused (exit 3)")
    c.ok("not before detected_at" in (run_end(log).get("error") or ""),
         "run.end says why (%s)" % run_end(log).get("error"))


def case_validation_fails(sb, c, d, corr, original):
    checks = json.dumps([{"name": "orders-exact", "sql": "select count(*) from orders",
                          "expect": corr["orders_before"] + 1}])
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                      "checks=" + checks)
    c.eq(p.returncode, 1, "a restore that fails validation fails the run (exit 1)")
    c.eq(step_status(log, "validate-data"), "failed", "validate-data is the failed step")
    c.eq(calls(log, "ChangeResourceRecordSets"), [], "nothing was switched")
    c.eq(record_values(sb), original, "the record still points at prod-db")
    c.ok(staging(sb) is not None, "the staging instance is kept for inspection")
    corrupt_untouched(sb, c, corr, "validation failed")
    drop_staging(sb, c)


def case_health_fails(sb, c, d, corr, original):
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                      "health_url=http://127.0.0.1:%d/health" % closed_port())
    c.eq(p.returncode, 1, "an unhealthy application after the switch fails the run (exit 1)")
    c.eq(run_end(log).get("status"), "rolled_back", "run.end status rolled_back")
    c.eq(len(calls(log, "ChangeResourceRecordSets")), 2, "the record was switched, then back")
    c.eq(record_values(sb), original, "the rollback put the record back on prod-db")
    corrupt_untouched(sb, c, corr, "rolled back")
    drop_staging(sb, c)


def closed_port():
    # from the kernel's ephemeral range on purpose, not free_port(): no test's server ever
    # listens there, while the launcher picks its new instances' ports from this test's range
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()           # nothing listens there any more: connections are refused
    return port


def case_snapshot(sb, c, d, corr, original):
    snap = sb.vars["DRB_SANDBOX_SNAPSHOT"]
    # the newest snapshot at or before restore_to, named as an operator would
    p, log, audit = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                          "method=snapshot", "snapshot=" + snap)
    c.eq(p.returncode, 0, "the snapshot restore run exits 0")
    if p.returncode:
        print(p.stdout[-4000:], p.stderr[-2000:], flush=True)
    c.eq(len(calls(log, "RestoreDBInstanceFromDBSnapshot")), 1, "restored from the snapshot")
    c.eq(calls(log, "RestoreDBInstanceToPointInTime"), [], "and not to a point in time")
    restored, db = restored_dsn(sb)
    c.eq(int(sb.value(restored, "select count(*) from orders")), corr["orders_before"],
         "the snapshot restore has every order back")
    c.eq(record_values(sb), ["0 0 %d %s" % (db["Endpoint"]["Port"], db["Endpoint"]["Address"])],
         "the record points at the restored instance")
    created = sb.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snap)["DBSnapshots"][0][
        "SnapshotCreateTime"]
    want = (parse_rfc3339(corr["corrupted_at"]) - created).total_seconds()
    got = run_end(log).get("rpo_s")
    c.ok(got is not None and abs(got - want) < 0.01,
         "RPO = detection - snapshot time (%s, want %.3f)" % (got, want))
    c.eq(d.verify(audit).returncode, 0, "the audit log verifies")
    corrupt_untouched(sb, c, corr, "snapshot")
    drop_staging(sb, c)
    point_record_at_prod(sb)


def truncated_copy(d, audit, keep_through, name):
    """The log of a run killed (kill -9) just after the record KEEP_THROUGH(record) matched."""
    with open(audit) as f:
        lines = f.readlines()
    n = next(i for i, line in enumerate(lines) if keep_through(json.loads(line)))
    path = os.path.join(d.tmp, name)
    with open(path, "w") as f:
        f.writelines(lines[:n + 1])
    return path


def resume(d, path):
    p = subprocess.run([DRBOOK, "resume", path, "--yes", "--audit-key-file", d.key], cwd=d.tmp,
                       env=d.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=180)
    with open(path) as f:
        log = [json.loads(line) for line in f if line.strip()]
    print("  drbook resume exit %d (%s)" % (p.returncode, os.path.basename(path)), flush=True)
    if p.returncode:
        print(p.stdout[-3000:], p.stderr[-2000:], flush=True)
    dec = [r["data"].get("decisions") for r in log if r["event"] == "run.resume"]
    return p, log, (dec[0] if dec else {})


def case_resume(sb, c, d, corr, original):
    """A run killed around the restore: resume asks RDS whether the restore took effect."""
    p, log, audit = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"])
    c.eq(p.returncode, 0, "a full run to cut logs from")

    def after_call(r):
        return r["event"] == "call" and r["step"] == "restore-pitr"

    def at_start(r):
        return r["event"] == "step.start" and r["step"] == "restore-pitr"

    # killed right after the restore request: the staging instance exists
    path = truncated_copy(d, audit, after_call, "killed-after-restore.jsonl")
    p, log, dec = resume(d, path)
    c.eq(p.returncode, 0, "resume after the restore call exits 0")
    c.eq(dec.get("restore-pitr"), "done_when: took effect",
         "resume sees the staging instance: the restore took effect")
    resumed = log[[i for i, r in enumerate(log) if r["event"] == "run.resume"][0]:]
    c.eq(calls(resumed, "RestoreDBInstanceToPointInTime"), [], "and does not restore twice")
    c.eq(d.verify(path).returncode, 0, "the resumed log verifies")

    # killed before the request reached RDS: no staging instance, the restore runs again
    drop_staging(sb, c)
    point_record_at_prod(sb)
    path = truncated_copy(d, audit, at_start, "killed-before-restore.jsonl")
    p, log, dec = resume(d, path)
    c.eq(p.returncode, 0, "resume before the restore call exits 0")
    c.eq(dec.get("restore-pitr"), "done_when: did not take effect",
         "resume finds no staging instance: the restore runs again")
    c.eq(len(calls(log, "RestoreDBInstanceToPointInTime")), 1, "exactly one restore")
    restored, db = restored_dsn(sb)
    c.eq(int(sb.value(restored, "select count(*) from orders")), corr["orders_before"],
         "the resumed restore has every order back")
    c.eq(d.verify(path).returncode, 0, "the resumed log verifies")
    drop_staging(sb, c)
    point_record_at_prod(sb)


def case_point_in_time(sb, c, d, corr, original, alerts):
    alerts.take()
    checks = json.dumps([
        {"name": "orders-all-back", "sql": "select count(*) from orders",
         "expect": corr["orders_before"]},
        {"name": "every-third-order-back", "sql": "select count(*) from orders where id % 3 = 0",
         "expect": corr["rows_deleted"]},
        {"name": "no-orphans", "sql": "select count(*) from orders o where not exists "
         "(select 1 from accounts a where a.id = o.account_id)", "expect": 0}])
    p, log, audit = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"],
                          "checks=" + checks)
    c.eq(p.returncode, 0, "the point-in-time restore run exits 0")
    if p.returncode:
        print(p.stdout[-4000:], p.stderr[-2000:], flush=True)
    restore = calls(log, "RestoreDBInstanceToPointInTime")
    c.eq(len(restore), 1, "one point-in-time restore")
    want_point = parse_rfc3339(corr["restore_to"]).replace(microsecond=0)
    c.eq(restore and restore[0]["data"]["request"]["params"].get("RestoreTime"),
         want_point.strftime("%Y-%m-%dT%H:%M:%SZ"), "restored to restore_to (whole seconds)")
    approvals = [r for r in log if r["event"] == "step.end" and r["step"] == "approve-restore"]
    c.ok(approvals and restore and approvals[0]["seq"] < restore[0]["seq"],
         "the approval came before the first change")

    # the real restored server, found through the endpoint RDS reports
    restored, db = restored_dsn(sb)
    c.eq(db["DBInstanceStatus"], "available", "RDS reports the staging instance available")
    c.eq(int(sb.value(restored, "select count(*) from orders")), corr["orders_before"],
         "the restored server has all %d orders" % corr["orders_before"])
    c.eq(int(sb.value(restored, "select count(*) from orders where id % 3 = 0")),
         corr["rows_deleted"], "including the %d the corruption deleted" % corr["rows_deleted"])
    c.eq(sb.value(restored, "select pg_is_in_recovery()"), "f", "and takes writes (promoted)")
    c.eq(record_values(sb), ["0 0 %d %s" % (db["Endpoint"]["Port"], db["Endpoint"]["Address"])],
         "the application's record points at the restored instance")
    corrupt_untouched(sb, c, corr, "point in time")

    end = run_end(log)
    c.eq(end.get("status"), "succeeded", "run.end status succeeded")
    want_rpo = round((parse_rfc3339(corr["corrupted_at"]) - want_point).total_seconds(), 3)
    c.eq(end.get("rpo_s"), want_rpo, "run.end rpo_s = detection - restore point")
    c.ok(isinstance(end.get("rto_s"), float) and end["rto_s"] > 0, "run.end holds rto_s")
    t = end.get("targets") or {}
    c.eq((t.get("rto_s"), t.get("rto"), t.get("rpo_s"), t.get("rpo")),
         (1800.0, "met", 3600.0, "met"), "run.end targets (30m, 1h) and both met")
    v = d.verify(audit)
    c.eq(v.returncode, 0, "drbook audit verify: intact (%s)" % (v.stdout + v.stderr).strip())
    subj = subjects(alerts.take())
    c.ok(any("started" in s for s in subj) and any("succeeded" in s for s in subj),
         "SNS got the start and end alerts (%s)" % subj)

    # a second run must not touch the existing staging instance (or the switched record)
    before = record_values(sb)
    p, log, _ = d.run("detected_at=" + corr["corrupted_at"], "restore_to=" + corr["restore_to"])
    c.eq(p.returncode, 3, "a second run while restore-prod-db exists is refused (exit 3)")
    c.ok("already exists" in (run_end(log).get("error") or ""),
         "run.end says why (%s)" % run_end(log).get("error"))
    c.eq(record_values(sb), before, "the record is unchanged")

    # rebuild_replicas=false: the replicas were left alone, still streaming from prod-db
    for region, ident in (("eu-west-1", "prod-db-eu"), ("ap-southeast-1", "prod-db-ap")):
        r = rds_instance(sb, ident, region)
        c.ok(r.get("ReadReplicaSourceDBInstanceIdentifier", "").endswith(":db:prod-db"),
             "rebuild_replicas=false: %s still follows prod-db (%s)" %
             (ident, r.get("ReadReplicaSourceDBInstanceIdentifier")))
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "t",
         "rebuild_replicas=false: prod-db-eu's server is still a replica")


def body(sb, c):
    sb.up()
    alerts = Alerts()
    tmp = tempfile.mkdtemp(prefix="drb-scen-corr-")
    try:
        v = subprocess.run([DRBOOK, "validate", RUNBOOK], capture_output=True, text=True)
        c.eq((v.returncode, v.stdout + v.stderr), (0, ""), "drbook validate prints nothing")
        sb.client("sns").subscribe(TopicArn=sb.vars["DRB_SANDBOX_TOPIC_ARN"], Protocol="http",
                                   Endpoint=alerts.url)
        original = point_record_at_prod(sb)
        # The seed snapshot is taken at the end of `up`; restore points are whole seconds
        # (rounded down), so the corruption must come more than a second after the snapshot
        # for "the newest snapshot at or before the restore point" to exist.
        snap_at = sb.client("rds").describe_db_snapshots(
            DBSnapshotIdentifier=sb.vars["DRB_SANDBOX_SNAPSHOT"])["DBSnapshots"][0][
            "SnapshotCreateTime"].timestamp()
        time.sleep(max(0.0, snap_at + 2.5 - time.time()))
        corr = sb.inject("corruption")
        c.eq(read_json(os.path.join(sb.dir, "corruption.json")), corr,
             "corruption.json holds the injection's times")
        c.eq(int(sb.value("PRIMARY_DB_DSN", "select count(*) from orders")), corr["orders_after"],
             "after inject: prod-db lost %d orders" % corr["rows_deleted"])
        d = Drbook(sb, tmp, RUNBOOK, {"DRBOOK_DB_PASSWORD": sb.vars["DRB_SANDBOX_PG_PASSWORD"]})
        d.alerts = alerts
        base = ["zone_id=" + sb.vars["DRB_SANDBOX_ZONE_ID"], "record_type=SRV",
                "rebuild_replicas=false"]
        run = d.run
        d.run = lambda *p, **kw: run(*(base + list(p)), **kw)
        for case in (case_future, case_validation_fails, case_health_fails, case_snapshot,
                     case_resume):
            print("# %s" % case.__name__, flush=True)
            case(sb, c, d, corr, original)
        print("# case_point_in_time", flush=True)
        case_point_in_time(sb, c, d, corr, original, alerts)
        c.eq(d.sanitizer_reports, [], "no sanitizer report from any drbook run")
    finally:
        alerts.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
