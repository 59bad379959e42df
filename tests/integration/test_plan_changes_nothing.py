#!/usr/bin/env python3
# `drbook plan` changes nothing: for every scenario runbook in runbooks/*.yaml, with the
# parameters a sandbox drill uses, the emulated state (RDS instances, Route 53 records and
# health checks, ECS services and tasks) and the real state (each PostgreSQL server's
# recovery state, read-only setting, row counts, sentinel table) are the same before and after
# the plan; plan exits 0, or 3 when its preflight refuses. Done with a healthy platform and
# again after `inject region-outage`; the plan's audit log holds no mutating call.
import glob
import os
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_scenario_region import (RUNBOOKS, audit_events, diff, drbook, heartbeat_once,  # noqa
                                  make_sentinel_table, now_rfc3339, show, snapshot)
from sandbox_lib.testkit import param_args, run_test  # noqa: E402

MINE = ["region-failover.yaml", "rds-multi-az-failover.yaml"]
# operations that change something; none may appear in a plan's audit log
MUTATING = {"PromoteReadReplica", "RebootDBInstance", "FailoverDBCluster",
            "RestoreDBInstanceToPointInTime", "RestoreDBInstanceFromDBSnapshot",
            "ChangeResourceRecordSets", "UpdateHealthCheck", "UpdateService", "StopTask",
            "Publish", "PutMetricData", "exec", "promote", "fence", "sentinel_write"}


def known_params(sb):
    """Values for the parameters the scenario runbooks take that depend on the sandbox."""
    v = sb.vars
    return {"zone_id": v["DRB_SANDBOX_ZONE_ID"],
            "primary_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_US"],
            "dr_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_EU"],
            "record_name": v["DRB_SANDBOX_API_RECORD"],
            "dr_values": v["DRB_SANDBOX_API_TARGET_EU"],
            "topic_arn": v["DRB_SANDBOX_TOPIC_ARN"],
            "account": v["DRB_SANDBOX_ACCOUNT_ID"],
            "detected_at": now_rfc3339()}


def plan_args(sb, path):
    """-p arguments: every declared parameter the sandbox knows; a required one it does not
    know is an error of this test (it must learn the new runbook's drill parameters)."""
    with open(path) as f:
        declared = (yaml.safe_load(f) or {}).get("params") or {}
    known = known_params(sb)
    given, missing = {}, []
    for name, spec in declared.items():
        spec = spec or {}
        if name in known:
            given[name] = known[name]
        elif "default" not in spec and spec.get("required", True):
            missing.append(name)
    return param_args(given), missing


def mutating_calls(log):
    out = []
    for e in audit_events(log):
        if e["event"] == "call":
            op = (e.get("data") or {}).get("operation")
            if op in MUTATING:
                out.append(op)
    return out


def plan_all(sb, c, runs, state, books, extra=None):
    codes = {}
    for path in books:
        name = os.path.basename(path)
        args, missing = plan_args(sb, path)
        if not c.ok(not missing, "%s: %s: the sandbox knows every required parameter %s" %
                    (state, name, missing)):
            continue
        args += (extra or {}).get(name, [])
        log = os.path.join(runs, "%s-%s-%d.jsonl" % (state, name, len(os.listdir(runs))))
        before = snapshot(sb)
        p = drbook(sb, "plan", path, "--drill", "--audit", log, "--runs-dir", runs, *args)
        after = snapshot(sb)
        label = "%s: plan %s %s" % (state, name, " ".join(a for a in args if "=" in a and
                                                          a.startswith("force")))
        if not c.ok(p.returncode in (0, 3), "%s exits 0 or 3 (got %d)" % (label, p.returncode)):
            show(p)
        c.eq(diff(before, after), [], "%s changed nothing" % label)
        c.eq(mutating_calls(log), [], "%s made no mutating call" % label)
        codes[name] = p.returncode
    return codes


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    make_sentinel_table(sb)
    c.ok(heartbeat_once(sb) is not None, "a heartbeat row is written before the plans")
    # runbooks only: runbooks/ also holds the game-day schedule (no steps)
    books = [b for b in sorted(glob.glob(os.path.join(RUNBOOKS, "*.yaml")))
             if "steps" in (yaml.safe_load(open(b)) or {})]
    names = [os.path.basename(b) for b in books]
    c.ok(all(m in names for m in MINE), "runbooks/ holds %s (found %s)" % (MINE, names))

    codes = plan_all(sb, c, runs, "healthy", books)
    c.eq(codes.get("region-failover.yaml"), 3,
         "healthy: region-failover's plan refuses (primary healthy)")
    c.eq(codes.get("rds-multi-az-failover.yaml"), 0, "healthy: rds-multi-az-failover plans")
    rf = os.path.join(RUNBOOKS, "region-failover.yaml")
    codes = plan_all(sb, c, runs, "healthy", [rf], {"region-failover.yaml": ["-p", "force=true"]})
    c.eq(codes.get("region-failover.yaml"), 0, "healthy: region-failover with force plans")

    sb.inject("region-outage")
    codes = plan_all(sb, c, runs, "outage", books)
    c.eq(codes.get("region-failover.yaml"), 0, "outage: region-failover plans")
    print("plans took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
