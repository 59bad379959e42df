#!/usr/bin/env python3
# Scenario 3 end to end in the sandbox (runbooks/region-failover.yaml): refused while us-east-1
# is healthy and when the replica lags past max_lag (exit 3, nothing changed); after
# `inject region-outage` the drill promotes the real replica, scales prod-eu, flips the api
# record; the real end state, the RPO against the heartbeats and the audit log are checked,
# and a second run is refused. The helpers below are also imported by test_scenario_rds.py,
# test_scenario_region_force.py and test_plan_changes_nothing.py.
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

from sandbox_lib.common import dsn, psql, read_json  # noqa: E402
from sandbox_lib.testkit import param_args, rds_instance, run_test, wait_for  # noqa: E402

SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
DRBOOK = os.environ.get("DRBOOK")
if not DRBOOK or not os.access(DRBOOK, os.X_OK):
    sys.exit("DRBOOK must name the built drbook binary (ctest sets it)")
RUNBOOKS = os.path.join(SRC, "runbooks")
SERVICES = ["api", "auth", "training", "content", "payment", "ai-ml"]


# ---------------------------------------------------------------- helpers (shared)
def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(text):
    """RFC 3339 from drbook or psql (`2026-11-25 17:21:08.271229+00`) -> epoch seconds."""
    t = text.strip().replace(" ", "T")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif t.endswith("+00"):
        t += ":00"
    return datetime.fromisoformat(t).timestamp()


def drbook(sb, *args, timeout=240):
    """Runs drbook with the sandbox's environment; returns the CompletedProcess."""
    env = dict(sb.env)
    env.update({k: str(v) for k, v in sb.vars.items()})
    env.pop("DRBOOK_AUDIT_KEY_FILE", None)
    return subprocess.run([DRBOOK] + list(args), env=env, cwd=sb.dir, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def region_params(sb, **extra):
    """The -p arguments of a region-failover drill against this sandbox."""
    v = sb.vars
    p = {"zone_id": v["DRB_SANDBOX_ZONE_ID"], "record_name": v["DRB_SANDBOX_API_RECORD"],
         "dr_values": v["DRB_SANDBOX_API_TARGET_EU"],
         "primary_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_US"],
         "dr_health_checks": v["DRB_SANDBOX_HEALTH_CHECK_EU"],
         "topic_arn": v["DRB_SANDBOX_TOPIC_ARN"], "account": v["DRB_SANDBOX_ACCOUNT_ID"]}
    p.update(extra)
    return param_args(p)


def audit_events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_end(path):
    ends = [e for e in audit_events(path) if e["event"] == "run.end"]
    return ends[-1]["data"] if ends else {}


def step_result(path, step):
    for e in audit_events(path):
        if e["event"] == "step.end" and e["step"] == step:
            return e["data"].get("result")
    return None


def show(p):
    """The tail of a drbook run's output, printed when a check on it fails."""
    print("--- exit %d\n%s\n--- stderr\n%s" % (p.returncode, p.stdout[-4000:], p.stderr[-2000:]),
          flush=True)


def servers(sb):
    """name -> DSN of every PostgreSQL server the sandbox started (directly, not the proxy)."""
    pw = sb.vars["DRB_SANDBOX_PG_PASSWORD"]
    recorded = read_json(os.path.join(sb.dir, "servers.json"), {}) or {}
    return {name: dsn(s["port"], pw) for name, s in sorted(recorded.items())}


def make_sentinel_table(sb):
    """The table pg.sentinel_write fills (same definition), for the heartbeat rows."""
    sb.sql("PRIMARY_DB_DSN", "create schema if not exists drbook; create table if not exists "
           "drbook.sentinel (id text primary key, written_at timestamptz not null, note text)")


def heartbeat_once(sb):
    """One heartbeat row through the writer endpoint, as the application's role (a fence
    locks it out); (id, written_at epoch) once committed."""
    out = psql(sb.vars["PRIMARY_DB_APP_DSN"], "insert into drbook.sentinel values "
               "(md5(random()::text || clock_timestamp()::text), clock_timestamp(), "
               "'heartbeat') returning id, written_at", timeout=5, check=False)
    if not out or "|" not in out:
        return None
    ident, at = out.strip().split("|")
    return ident, parse_ts(at)


class Heartbeat:
    """The platform's heartbeat: a sentinel row every `interval` s until stopped. Only rows
    whose commit was acknowledged are recorded."""

    def __init__(self, sb, interval=0.2):
        self.sb, self.interval, self.rows = sb, interval, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            r = heartbeat_once(self.sb)
            if r:
                self.rows.append(r)
            self._stop.wait(self.interval)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(30)


def snapshot(sb):
    """The emulated and the real state a plan or a refused run must leave alone."""
    snap = {}
    for region in ("us-east-1", "eu-west-1"):
        rds = sb.client("rds", region)
        snap["rds/" + region] = sorted(
            (d["DBInstanceIdentifier"], d["DBInstanceStatus"], d.get("AvailabilityZone"),
             d.get("MultiAZ"), d.get("ReadReplicaSourceDBInstanceIdentifier"),
             tuple(sorted(d.get("ReadReplicaDBInstanceIdentifiers") or [])),
             d.get("Endpoint", {}).get("Port"))
            for d in rds.describe_db_instances()["DBInstances"])
    r53 = sb.client("route53")
    zone = sb.vars["DRB_SANDBOX_ZONE_ID"]
    snap["route53"] = sorted(
        (r["Name"], r["Type"], r.get("TTL"), tuple(x["Value"] for x in r.get("ResourceRecords",
                                                                             [])))
        for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"])
    hcs = []
    for hc in r53.list_health_checks()["HealthChecks"]:
        obs = r53.get_health_check_status(HealthCheckId=hc["Id"])["HealthCheckObservations"]
        cfg = hc["HealthCheckConfig"]
        hcs.append((hc["Id"], cfg.get("Disabled"), cfg.get("Inverted"),
                    tuple(sorted(o["StatusReport"]["Status"].split(":")[0] for o in obs))))
    snap["health_checks"] = sorted(hcs)
    for region, cluster in (("us-east-1", "prod-us"), ("eu-west-1", "prod-eu")):
        ecs = sb.client("ecs", region)
        for s in ecs.describe_services(cluster=cluster, services=SERVICES)["services"]:
            tasks = ecs.list_tasks(cluster=cluster, serviceName=s["serviceName"])["taskArns"]
            snap["ecs/%s/%s" % (cluster, s["serviceName"])] = (
                s["desiredCount"], s["runningCount"], s["pendingCount"], len(s["deployments"]),
                tuple(sorted(tasks)))
    for name, conn in servers(sb).items():
        out = psql(conn, "select pg_is_in_recovery(), current_setting("
                   "'default_transaction_read_only'), (select count(*) from accounts), "
                   "(select count(*) from orders), (select coalesce(sum(id), 0) from orders), "
                   "case when to_regclass('drbook.sentinel') is null then '-' else "
                   "(select count(*) || '/' || coalesce(max(written_at)::text, '') "
                   "from drbook.sentinel) end", timeout=10, check=False)
        snap["pg/" + name] = out.strip() if out is not None else "unreachable"
    return snap


def diff(before, after):
    keys = sorted(set(before) | set(after))
    return ["%s: %r -> %r" % (k, before.get(k), after.get(k)) for k in keys
            if before.get(k) != after.get(k)]


def audit_verify(sb, log):
    return drbook(sb, "audit", "verify", log, timeout=60)


# ---------------------------------------------------------------- this scenario
def check_refusals(sb, c, runs):
    """Healthy primary region, then (after the outage) a replica past max_lag: exit 3 and
    nothing changed."""
    before = snapshot(sb)
    log = os.path.join(runs, "refused-healthy.jsonl")
    p = drbook(sb, "run", os.path.join(RUNBOOKS, "region-failover.yaml"), "--drill", "--yes",
               "--audit", log, "--runs-dir", runs, *region_params(sb))
    if not c.eq(p.returncode, 3, "healthy us-east-1: region-failover is refused (exit 3)"):
        show(p)
    c.ok("looks healthy" in p.stdout + p.stderr and "force=true" in p.stdout + p.stderr,
         "the refusal says the primary looks healthy and names -p force=true")
    c.eq(run_end(log).get("status"), "refused", "run.end status refused")
    c.eq(diff(before, snapshot(sb)), [], "the refused run changed nothing (AWS and PostgreSQL)")
    return before


def check_failover(sb, c, runs):
    make_sentinel_table(sb)
    hb = Heartbeat(sb).start()
    c.ok(wait_for(lambda: len(hb.rows) >= 5, 20), "heartbeats are being written")
    incident = now_rfc3339()
    t_incident = parse_ts(incident)
    try:
        res = sb.inject("region-outage")
    finally:
        time.sleep(0.5)          # the heartbeat now fails: the writer is gone
        hb.stop()
    c.eq(sorted(res["stopped_servers"]), ["prod-db-a", "prod-db-b"], "the outage is injected")
    acked = [r for r in hb.rows if r[1] <= t_incident]
    c.ok(len(acked) >= 5, "%d heartbeats were acknowledged before the incident" % len(acked))

    # a lag budget smaller than the gap since the newest write refuses, changing nothing. The
    # gap is measured up to a time after the heartbeat stopped: up to `incident` it can be 0
    # (a heartbeat committed between taking the time and the kill, as on a loaded machine)
    before = snapshot(sb)
    log = os.path.join(runs, "refused-lag.jsonl")
    after_kill = now_rfc3339()
    p = drbook(sb, "run", os.path.join(RUNBOOKS, "region-failover.yaml"), "--drill", "--yes",
               "--audit", log, "--runs-dir", runs,
               *region_params(sb, max_lag="1ms", incident_start=after_kill))
    if not c.eq(p.returncode, 3, "replica behind max_lag=1ms: refused (exit 3)"):
        show(p)
    c.ok("max_lag" in p.stdout + p.stderr, "the refusal names max_lag")
    c.eq(diff(before, snapshot(sb)), [], "the lag refusal changed nothing")

    log = os.path.join(runs, "failover.jsonl")
    t0 = time.monotonic()
    p = drbook(sb, "run", os.path.join(RUNBOOKS, "region-failover.yaml"), "--drill", "--yes",
               "--audit", log, "--runs-dir", runs, "--incident-start", incident,
               *region_params(sb, incident_start=incident,
                              primary_security_groups=sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP"]))
    took = time.monotonic() - t0
    if not c.eq(p.returncode, 0, "after the outage the drill succeeds (exit 0, %.1fs)" % took):
        show(p)
    c.ok("RTO" in p.stdout and "RPO" in p.stdout, "the summary prints RTO and RPO")

    # the real database: the former replica is a writable primary
    v = sb.vars
    c.eq(sb.value("DR_DB_DSN", "select pg_is_in_recovery()"), "f",
         "prod-db-eu (the real server) left recovery")
    sb.sql("DR_DB_DSN", "create table if not exists drill_writes (id serial primary key, "
           "at timestamptz default now()); insert into drill_writes default values")
    c.eq(sb.value("DR_DB_DSN", "select count(*) from drill_writes"), "1",
         "prod-db-eu takes a write from a client")
    verify = step_result(log, "verify-write") or {}
    c.eq(sb.value("DR_DB_DSN", "select count(*) from drbook.sentinel where id = '%s'" %
                  verify.get("id", "")), "1", "the run's verify sentinel is on prod-db-eu")
    present = set(sb.value("DR_DB_DSN", "select string_agg(id, ',') from drbook.sentinel "
                           "where note = 'heartbeat'").split(","))
    c.ok(any(r[0] in present for r in acked), "heartbeats from before the outage are on "
         "prod-db-eu")
    # the newest heartbeat the replica got, also one written between the incident time and
    # the kill (WAL replays in order: holding it means nothing before the incident was lost)
    newest_at = sb.value("DR_DB_DSN", "select max(written_at) from drbook.sentinel where "
                         "note = 'heartbeat'")
    newest = (None, parse_ts(newest_at)) if newest_at else None
    c.eq(sb.value("DR_DB_DSN", "select count(*) from orders"), "300",
         "the seeded orders are on prod-db-eu")
    try:
        sb.value("PRIMARY_DB_DSN", "select 1")
        c.ok(False, "the old writer stays unreachable")
    except Exception:
        c.ok(True, "the old writer stays unreachable")
    fence = step_result(log, "fence-old-primary") or {}
    c.ok(fence.get("reachable") is False and fence.get("fenced") is False,
         "the fence found the old primary unreachable (%s)" % fence)
    # so it was cut off the network instead: us-east-1's API answers in this outage
    iso = step_result(log, "isolate-old-primary") or {}
    sg = v["DRB_SANDBOX_DB_SECURITY_GROUP"]
    c.eq((iso.get("isolated"), sorted((r.get("cidr") or r.get("source_group_id"))
                                      for r in iso.get("revoked") or [])),
         (True, sorted(["10.99.0.0/16", v["DRB_SANDBOX_APP_SECURITY_GROUP"]])),
         "isolate-old-primary revoked the app group's and the VPN's rules")
    c.eq(sb.client("ec2").describe_security_groups(GroupIds=[sg])["SecurityGroups"][0][
        "IpPermissions"], [], "EC2: prod-db's security group lets nothing in")

    # the emulated control plane, read with boto3
    db = rds_instance(sb, "prod-db-eu", "eu-west-1")
    c.ok(db["DBInstanceStatus"] == "available" and
         not db.get("ReadReplicaSourceDBInstanceIdentifier"),
         "RDS: prod-db-eu available and no longer a replica")
    ecs = sb.client("ecs", "eu-west-1")
    got = {s["serviceName"]: (s["desiredCount"], s["runningCount"]) for s in
           ecs.describe_services(cluster="prod-eu", services=SERVICES)["services"]}
    c.eq(got, {s: (2, 2) for s in SERVICES}, "ECS: every prod-eu service runs 2 of 2")
    rr = [r for r in sb.client("route53").list_resource_record_sets(
        HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])["ResourceRecordSets"]
        if r["Name"] == v["DRB_SANDBOX_API_RECORD"]]
    c.eq([x["Value"] for x in rr[0]["ResourceRecords"]] if rr else None,
         [v["DRB_SANDBOX_API_TARGET_EU"]], "Route 53: the api record points at eu-west-1")

    # the graph: the services scaled while the replica was promoted, the flip waited for both
    seq = {}
    for e in audit_events(log):
        if e["event"] in ("step.start", "step.end") and e.get("step"):
            seq.setdefault((e["event"], e["step"]), e["seq"])
    c.ok(seq.get(("step.start", "scale"), 1e9) < seq.get(("step.end", "wait-promoted"), 0),
         "scale started before the promotion was confirmed (branches run at once)")
    c.ok(seq.get(("step.start", "flip-record"), 0) >
         max(seq.get(("step.end", "wait-writable"), 1e9), seq.get(("step.end", "wait-steady"),
                                                                  1e9)),
         "flip-record started after both branches ended")
    wp = [e["data"] for e in audit_events(log) if e["event"] == "step.end" and
          e["step"] == "wait-promoted"]
    c.ok(wp and wp[0].get("polls", 0) >= 1 and wp[0].get("wait_ms", -1) >= 0,
         "wait-promoted records its wait (%s polls, %s ms)" %
         (wp[0].get("polls") if wp else None, wp[0].get("wait_ms") if wp else None))

    # the audit log and the measured RTO and RPO
    a = audit_verify(sb, log)
    c.eq(a.returncode, 0, "drbook audit verify: the log is intact")
    end = run_end(log)
    c.eq(end.get("status"), "succeeded", "run.end status succeeded")
    start_ts = parse_ts(audit_events(log)[0]["ts"])
    end_ts = parse_ts(audit_events(log)[-1]["ts"])
    rto = end.get("rto_s")
    c.ok(isinstance(rto, (int, float)) and abs(rto - (end_ts - t_incident)) < 1.0 and
         rto > start_ts - t_incident,
         "rto_s %r is measured from the injection to the end of the run" % rto)
    tg = end.get("targets") or {}
    c.eq((tg.get("rto_s"), tg.get("rpo_s"), tg.get("rto"), tg.get("rpo")),
         (900, 3600, "met", "met"), "run.end targets: rto 15m, rpo 1h, both met")
    m = step_result(log, "measure-rpo") or {}
    rpo = end.get("rpo_s")
    if newest is not None:
        # a commit lands a few ms after its row's written_at: the tolerance
        want = max(0.0, t_incident - newest[1])
        c.ok(isinstance(rpo, (int, float)) and abs(rpo - want) < 0.05,
             "rpo_s %r = incident - newest heartbeat on prod-db-eu (%.3f)" % (rpo, want))
        c.ok(abs(parse_ts(m.get("newest_write", "1970-01-01T00:00:00Z")) - newest[1]) < 0.05,
             "measure-rpo names the newest heartbeat (%s)" % m.get("newest_write"))
    c.eq(m.get("measured_to_source"), "incident_start", "RPO measured up to the incident")

    # doing it twice: the replica is no longer a replica, so a second run is refused
    before = snapshot(sb)
    log2 = os.path.join(runs, "again.jsonl")
    p = drbook(sb, "run", os.path.join(RUNBOOKS, "region-failover.yaml"), "--drill", "--yes",
               "--audit", log2, "--runs-dir", runs, *region_params(sb))
    c.eq(p.returncode, 3, "a second failover is refused (exit 3)")
    c.eq(diff(before, snapshot(sb)), [], "the second attempt changed nothing")


def body(sb, c):
    t0 = time.monotonic()
    sb.up()
    runs = tempfile.mkdtemp(prefix="runs-", dir=sb.dir)
    check_refusals(sb, c, runs)
    check_failover(sb, c, runs)
    print("region scenario took %.1fs" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
