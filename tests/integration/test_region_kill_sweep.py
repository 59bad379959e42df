#!/usr/bin/env python3
# Kill at every boundary (issue 9 point 8): the region-failover drill with ARC, in the sandbox
# under `inject region-outage --control-plane`, is killed with SIGKILL right after a record of
# its audit log became durable (the fault shim counts the log's fsyncs, DRB_FAULT_KILL=N, or
# waits for a record by content, DRB_FAULT_KILL_AFTER, so the kill lands exactly on the
# boundary), then resumed; every third point is resumed from the S3 evidence copy (a bucket
# in eu-west-1) on "another host" whose local folder is gone. Each time: the run ends
# succeeded; the real replica is promoted and PromoteReadReplica was answered once; prod-db-ap
# is a read replica of prod-db-eu, created once; prod-eu runs at production count; the routing controls are switched and changed state once (no
# DNS change made twice; no Route 53 change call at all); the caching resolver answers
# eu-west-1; the final log verifies. Between points `sandbox region-state restore` puts the
# drill's resources back (a few seconds) instead of a new sandbox.
#
# DRB_KILL_SWEEP=full runs every boundary (each record of an uninterrupted run but the last,
# without the third and later polls of a waiting step, which repeat the second: about 150);
# by default a deterministic sample of 14. Points are named by content, EVENT:STEP#N (the Nth
# record of that event and step; STEP null for the run's own records), because parallel
# branches and waits make a record's number vary from run to run (the shim kills after the
# Nth record holding "event":E,"step":S): the sample is the step.start of each step that
# changes something, the answered calls of the promotion and the routing switches, and the
# starts of confirm-outage and verify-dns (docs/testing.md). DRB_KILL_POINTS=41,call:promote,
# call:verify-dns#2 runs just those (a number: after that many records). Prints "kill
# points: N of N".
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_scenario_region import (DRBOOK, RUNBOOKS, SERVICES, audit_events,  # noqa: E402
                                  heartbeat_once, make_sentinel_table, now_rfc3339)
from test_scenario_region_arc import arc_params, arc_state, dig, requests  # noqa: E402
from sandbox_lib.testkit import rds_instance, run_test  # noqa: E402

RUNBOOK = os.path.join(RUNBOOKS, "region-failover.yaml")
BUILD = os.environ.get("BUILD") or os.path.join(os.environ.get("SRC", "."), "build")
SHIM = os.path.join(BUILD, "tests", "libdrb_fault.so")
BUCKET = "drbook-evidence-eu"
TTL = 2
# the steps that change something (a for_each by its first child), and those whose effect
# goes on after the answer (the kill lands between the answer and step.end)
MUTATING_STEPS = ("notify-start", "fence-old-primary", "scale[1]", "promote", "arc-dr-on",
                  "arc-primary-off", "verify-write", "notify-end", "rebuild-replica")
IN_FLIGHT_STEPS = ("promote", "arc-dr-on", "arc-primary-off")


def env_of(sb, home):
    env = dict(sb.env)
    env.update({k: str(v) for k, v in sb.vars.items()})
    env.pop("DRBOOK_AUDIT_KEY_FILE", None)
    env.update({"HOME": home, "DRBOOK_EVIDENCE_REGION": "eu-west-1"})
    return env


def host(sb, name):
    d = os.path.join(sb.dir, "hosts", name)
    os.makedirs(os.path.join(d, "home"), exist_ok=True)
    os.makedirs(os.path.join(d, "runs"), exist_ok=True)
    return d, env_of(sb, os.path.join(d, "home"))


def drill_args(sb, log, incident, evidence):
    a = ["run", RUNBOOK, "--drill", "--yes", "--quiet", "--audit", log, "--runs-dir", "runs",
         "--incident-start", incident] + arc_params(sb, incident_start=incident)
    if evidence:
        a += ["--evidence", evidence]
    return a


def point_parts(point):
    """"EVENT:STEP" or "EVENT:STEP#N" (the Nth record of that event and step; STEP "null" for
    the run's own records) -> (event, step, n)."""
    rest, _, nth = point.partition("#")
    event, step = rest.split(":", 1)
    return event, step, int(nth or 1)


def norm_point(point):
    event, step, n = point_parts(point)
    return "%s:%s%s" % (event, step, "#%d" % n if n > 1 else "")


def point_of(events, i):
    """The name by content of the boundary after record i: the same point in every run,
    whatever the other branches wrote before it."""
    e = events[i]
    key = (e["event"], e.get("step"))
    n = sum(1 for x in events[:i + 1] if (x["event"], x.get("step")) == key)
    return "%s:%s%s" % (e["event"], e.get("step") or "null", "#%d" % n if n > 1 else "")


def run_drill(sb, d, env, log, incident, evidence=None, kill_at=None, timeout=240):
    env = dict(env)
    if isinstance(kill_at, str):      # "call:promote": after that step's first call record
        event, step, nth = point_parts(kill_at)
        env.update({"LD_PRELOAD": SHIM, "DRB_FAULT_MATCH": log, "DRB_FAULT_KILL_NTH": str(nth),
                    "DRB_FAULT_KILL_AFTER": '"event":"%s","step":%s' % (
                        event, "null" if step == "null" else '"%s"' % step)})
    elif kill_at:
        env.update({"LD_PRELOAD": SHIM, "DRB_FAULT_MATCH": log, "DRB_FAULT_KILL": str(kill_at)})
    return subprocess.run([DRBOOK] + drill_args(sb, log, incident, evidence), cwd=d, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def end_state(sb, c, tag, since, hist0):
    """The checks after each point; returns the failures (strings)."""
    v = sb.vars
    bad = []
    if sb.value("DR_DB_DSN", "select pg_is_in_recovery()") != "f":
        bad.append("prod-db-eu still in recovery")
    db = rds_instance(sb, "prod-db-eu", "eu-west-1")
    if db.get("ReadReplicaSourceDBInstanceIdentifier") or db["DBInstanceStatus"] != "available":
        bad.append("RDS: prod-db-eu %s, source %s" % (
            db["DBInstanceStatus"], db.get("ReadReplicaSourceDBInstanceIdentifier")))
    reqs = requests(sb, since)
    promotes = [r for r in reqs if r["operation"] == "PromoteReadReplica"]
    ok_promotes = [r for r in promotes if r["status"] == 200]
    if len(ok_promotes) != 1:
        bad.append("PromoteReadReplica answered 200 %d times (%s)" % (
            len(ok_promotes), [(r["status"], r["fault"]) for r in promotes]))
    # the ap-southeast-1 replica, rebuilt as a read replica of prod-db-eu, created once
    ap = rds_instance(sb, "prod-db-ap", "ap-southeast-1")
    if ap.get("ReadReplicaSourceDBInstanceIdentifier") != db["DBInstanceArn"]:
        bad.append("RDS: prod-db-ap's source is %s, not prod-db-eu" %
                   ap.get("ReadReplicaSourceDBInstanceIdentifier"))
    creates = [r for r in reqs if r["operation"] == "CreateDBInstanceReadReplica" and
               r["status"] == 200]
    if len(creates) != 1:
        bad.append("CreateDBInstanceReadReplica answered 200 %d times" % len(creates))
    ecs = sb.client("ecs", "eu-west-1")
    got = {s["serviceName"]: (s["desiredCount"], s["runningCount"]) for s in
           ecs.describe_services(cluster="prod-eu", services=SERVICES)["services"]}
    if got != {s: (2, 2) for s in SERVICES}:
        bad.append("ECS prod-eu %s" % got)
    states = (arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_US"]),
              arc_state(sb, v["DRB_SANDBOX_ARC_ROUTING_CONTROL_EU"]))
    if states != ("Off", "On"):
        bad.append("ARC controls (us, eu) %s" % (states,))
    rc, st = sb.status()
    hist = st["arc"]["history"][hist0:]
    if len(hist) != 1:
        bad.append("routing control changes %s (want exactly one: us-east-1 On -> Off)" %
                   [(h[2], h[3]) for h in hist])
    changes = [r for r in reqs if r["operation"] in ("ChangeResourceRecordSets", "GetChange")]
    if changes:
        bad.append("Route 53 change API called %d times" % len(changes))
    us = [(r["service"], r["operation"]) for r in reqs if r["region"] == "us-east-1" and
          r["operation"] != "GetHealthCheckStatus"]
    if us:
        bad.append("requests to us-east-1 besides the confirmation: %s" % us)
    if dig(v["DRB_SANDBOX_DNS_RESOLVER"], v["DRB_SANDBOX_FAILOVER_RECORD"]) != \
            [v["DRB_SANDBOX_API_TARGET_EU"]]:
        bad.append("the resolver does not answer eu-west-1")
    return bad


def pick_points(total, events):
    """Every boundary (DRB_KILL_SWEEP=full), the listed ones (DRB_KILL_POINTS), or the sample:
    just after the step.start of each step that changes something (nothing of it sent yet),
    just after the answered call of the promotion and of each routing switch (the effect in
    flight, its step.end not written), and two more (preflight, the DNS wait)."""
    if os.environ.get("DRB_KILL_POINTS"):
        return [int(x) if x.strip().isdigit() else x.strip()
                for x in os.environ["DRB_KILL_POINTS"].split(",") if x.strip()]
    # a boundary is a record; the third and later polls of one waiting step (a step.end with
    # polls: wait-promoted, wait-steady, verify-dns, ...) are the same boundary as the
    # second, and their number varies from run to run, so they are left out
    # a boundary is named by content (point_of): parallel branches and waits make a record's
    # number differ from run to run, so a number picked from the reference run may land
    # elsewhere, or past the end of a shorter run
    waits = {e["step"] for e in events if e["event"] == "step.end" and "polls" in e["data"]}
    every, calls = [], {}
    for i, e in enumerate(events[:total - 1]):
        if e["event"] == "call":
            n = calls[e.get("step")] = calls.get(e.get("step"), 0) + 1
            if n > 2 and e.get("step") in waits:
                continue
        every.append(point_of(events, i))
    if os.environ.get("DRB_KILL_SWEEP") == "full":
        return every
    # steps run in parallel, so a record's number varies from run to run: the sample names
    # its records by content (the shim kills after the first record holding "event":E,
    # "step":S)
    return ["step.start:" + st for st in ("confirm-outage",) + MUTATING_STEPS + ("verify-dns",)] \
        + ["call:" + st for st in IN_FLIGHT_STEPS]


def body(sb, c):
    t_all = time.monotonic()
    if not os.path.exists(SHIM):
        c.ok(False, "the fault shim %s is built (cmake builds it with the tests)" % SHIM)
        return
    sb.up()
    v = sb.vars
    sb.client("s3", "eu-west-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    make_sentinel_table(sb)
    for _ in range(3):
        heartbeat_once(sb)
    incident = now_rfc3339()
    sb.inject("region-outage", "--control-plane", "--mode", "refused")
    t0 = time.monotonic()
    p = sb.run("region-state", "save")
    c.eq(p.returncode, 0, "region-state save (%s)" % p.stderr.strip())

    # the uninterrupted drill: how many records, and the reference end state
    d, env = host(sb, "reference")
    log = os.path.join(d, "runs", "ref.jsonl")
    since = max([r["seq"] for r in requests(sb)] or [0])
    hist0 = len(sb.status()[1]["arc"]["history"])
    t1 = time.monotonic()
    p = run_drill(sb, d, env, log, incident)
    took_run = time.monotonic() - t1
    if not c.eq(p.returncode, 0, "the uninterrupted drill succeeds (%.1fs)" % took_run):
        print(p.stdout[-3000:], p.stderr[-3000:])
        return
    events = audit_events(log)
    total = len(events)
    c.eq(end_state(sb, c, "reference", since, hist0), [], "the uninterrupted drill's end state")
    points = pick_points(total, events)
    print("the drill writes %d records; %d kill points: %s" % (total, len(points), points),
          flush=True)

    passed, failed = 0, []
    timings = []
    for i, k in enumerate(points):
        t_pt = time.monotonic()
        r = sb.run("region-state", "restore")
        if r.returncode != 0:
            failed.append((k, "region-state restore: %s" % r.stderr.strip()))
            continue
        took_reset = time.monotonic() - t_pt
        from_s3 = i % 3 == 1
        tag = str(k).replace(":", "-").replace("[", "").replace("]", "")
        d, env = host(sb, "k%s-a" % tag)
        log = os.path.join(d, "runs", "k%s.jsonl" % tag)
        since = max([x["seq"] for x in requests(sb)] or [0])
        hist0 = len(sb.status()[1]["arc"]["history"])
        evidence = "s3://%s/sweep/k%s/" % (BUCKET, tag) if from_s3 else None
        p = run_drill(sb, d, env, log, incident, evidence=evidence, kill_at=k)
        recs = audit_events(log)
        why = []
        if p.returncode != -signal.SIGKILL:
            why.append("the drill was not killed (exit %s): %s" % (p.returncode,
                                                                   p.stderr[-500:]))
        elif isinstance(k, int) and len(recs) != k:
            why.append("killed with %d records, not %d" % (len(recs), k))
        if not why and isinstance(k, str) and point_of(recs, len(recs) - 1) != norm_point(k):
            why.append("killed after %s, not %s" % (point_of(recs, len(recs) - 1), k))
        at = recs[-1] if recs else {}
        where = "%s %s" % (at.get("event"), at.get("step") or "")
        if not why:
            if from_s3:
                run_id = recs[0]["run"]
                shutil.rmtree(d)        # the first machine is gone
                d, env = host(sb, "k%s-b" % tag)
                r = subprocess.run([DRBOOK, "resume", "s3://%s/sweep/k%s/%s" % (BUCKET, tag, run_id),
                                    "--runs-dir", "runs", "--yes", "--quiet"], cwd=d, env=env,
                                   capture_output=True, text=True, timeout=240,
                                   stdin=subprocess.DEVNULL)
                log = os.path.join(d, "runs", run_id + ".jsonl")
            else:
                r = subprocess.run([DRBOOK, "resume", log, "--yes", "--quiet"], cwd=d,
                                   env=env, capture_output=True, text=True, timeout=240,
                                   stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                why.append("resume exit %d: %s %s" % (r.returncode, r.stdout[-800:],
                                                      r.stderr[-800:]))
            final = audit_events(log) if os.path.exists(log) else []
            ends = [e for e in final if e["event"] == "run.end"]
            if not ends or ends[-1]["data"].get("status") != "succeeded":
                why.append("run.end %s" % (ends[-1]["data"] if ends else None))
            a = subprocess.run([DRBOOK, "audit", "verify", log], cwd=d, env=env,
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            if a.returncode != 0:
                why.append("audit verify exit %d: %s" % (a.returncode, a.stdout + a.stderr))
            why += end_state(sb, c, str(k), since, hist0)
        timings.append((took_reset, time.monotonic() - t_pt))
        label = "kill after record %d (%s)%s" % (len(recs), where, ", resumed from S3"
                                                  if from_s3 else "")
        if why:
            failed.append((k, label + ": " + "; ".join(why)))
            print("FAIL - %s: %s" % (label, "; ".join(why)), flush=True)
        else:
            passed += 1
            print("ok   - %s" % label, flush=True)
    c.eq(failed, [], "every kill point resumed to the right end state")
    print("kill points: %d of %d" % (passed, len(points)), flush=True)
    if timings:
        print("reset %.1fs on average, %.1fs per point; the sweep took %.0fs, sandbox and "
              "reference %.0fs" % (sum(t[0] for t in timings) / len(timings),
                                   sum(t[1] for t in timings) / len(timings),
                                   time.monotonic() - t0, t0 - t_all), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body, extra_env={"DRB_SANDBOX_DNS_TTL": str(TTL),
                                       "DRB_SANDBOX_ECS_START_DELAY": "0.5"}))
