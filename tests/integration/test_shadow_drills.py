#!/usr/bin/env python3
# Shadow drills against the sandbox (drbook run --shadow; docs/runbook-format.md "Shadow
# drills"): the production state, read with boto3 describe calls (ECS services and their
# tasks and RDS instances in the three regions, the Route 53 zone, the scaling floors, cache
# groups, alarms, the buckets' objects, the database's security groups) and from the real
# PostgreSQL servers (recovery state, timeline, table contents, read-only setting, roles,
# sentinels),
# is taken before and after each drill and must not differ (test_shadow_scenarios.py runs
# the other scenarios' drills against the same production_state). Cases, on
# runbooks/ecs-task-failure.yaml:
#   - the shadow drill repairs its drill-api copy (created by setup, degraded because its tasks
#     start late), measures RTO as a real run does, and tears the copy down;
#   - with a production service degraded and named in the drill's services, the runbook
#     reaches for it: refused before it is sent (shadow_violation), the run rolls back and
#     tears down (teardown after a failure), exit 1, production as it was;
#   - `drbook gameday` runs a drill marked `shadow: true` as a shadow drill: production as it
#     was;
#   - a stop condition (stop_when) whose alarm goes to ALARM during a drill stops it within
#     5 s: its change rolled back, its copy torn down, production as it was;
#   - SIGTERM while a drill waits in its steps, after setup made its copy: teardown still
#     runs, exit 1;
#   - a drill- instance restored from the seed snapshot is backed by a real PostgreSQL server
#     (the drill writes to it through an rds_instance connection) and is deleted by teardown.
# The scheduler's own replacement of stopped tasks is pushed out of reach
# (DRB_SANDBOX_ECS_REPLACE_DELAY) so that nothing changes production by itself meanwhile.
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))

from sandbox_lib.common import psql  # noqa: E402
from sandbox_lib.testkit import run_test, wait_for  # noqa: E402

SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(HERE, "..", ".."))
DRBOOK = os.environ.get("DRBOOK")
if not DRBOOK or not os.access(DRBOOK, os.X_OK):
    sys.exit("DRBOOK must name the built drbook binary (ctest sets it)")
ECS_RUNBOOK = os.path.join(SRC, "runbooks", "ecs-task-failure.yaml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REGIONS = {"us-east-1": "DRB_SANDBOX_CLUSTER_US", "eu-west-1": "DRB_SANDBOX_CLUSTER_EU",
           "ap-southeast-1": "DRB_SANDBOX_CLUSTER_AP"}
DSNS = ("PRIMARY_DB_DSN", "DR_DB_DSN", "STANDBY_DB_DSN", "AP_DB_DSN")


def production_state(sb):
    """Everything a shadow drill must leave as it was, as plain data."""
    v = sb.vars
    state = {"ecs": {}, "rds": {}, "route53": [], "pg": {}}
    for region, var in REGIONS.items():
        ecs, cluster = sb.client("ecs", region), v[var]
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        svcs = ecs.describe_services(cluster=cluster, services=arns)["services"] if arns else []
        for s in svcs:
            if s["serviceName"].startswith("drill-") and s["status"] != "ACTIVE":
                continue        # a torn-down copy: INACTIVE, as AWS keeps it for a while
            tasks = ecs.list_tasks(cluster=cluster, serviceName=s["serviceName"])["taskArns"]
            state["ecs"]["%s/%s" % (cluster, s["serviceName"])] = {
                "status": s["status"], "desired": s["desiredCount"],
                "running": s["runningCount"], "pending": s["pendingCount"],
                "task_definition": s["taskDefinition"], "tasks": sorted(tasks)}
    for region in REGIONS:
        for db in sb.client("rds", region).describe_db_instances()["DBInstances"]:
            state["rds"][db["DBInstanceIdentifier"]] = {
                "status": db["DBInstanceStatus"], "multi_az": db.get("MultiAZ"),
                "source": db.get("ReadReplicaSourceDBInstanceIdentifier"),
                "replicas": sorted(db.get("ReadReplicaDBInstanceIdentifiers", [])),
                "endpoint": (db.get("Endpoint") or {}).get("Port"),
                "az": db.get("AvailabilityZone"),
                "secondary_az": db.get("SecondaryAvailabilityZone"),
                "class": db.get("DBInstanceClass"),
                "security_groups": sorted(g["VpcSecurityGroupId"]
                                          for g in db.get("VpcSecurityGroups") or []),
                "backup_retention": db.get("BackupRetentionPeriod")}
    state["stores"] = stores_state(sb)
    r53 = sb.client("route53")
    for rr in r53.list_resource_record_sets(HostedZoneId=v["DRB_SANDBOX_ZONE_ID"])[
            "ResourceRecordSets"]:
        state["route53"].append(json.dumps(rr, sort_keys=True, default=str))
    state["route53"].sort()
    for var in DSNS:
        dsn = v.get(var) or sb.env.get(var)
        rec = psql(dsn, "select pg_is_in_recovery(), "
                        "(select timeline_id from pg_control_checkpoint())").strip()
        rows = psql(dsn, "select 'accounts', count(*), md5(coalesce(string_agg(t::text, '|' "
                         "order by t::text), '')) from accounts t union all "
                         "select 'orders', count(*), md5(coalesce(string_agg(t::text, '|' "
                         "order by t::text), '')) from orders t").strip()
        # what a fence or a role change would alter, and the runs' own rows (a sentinel
        # written to production instead of the drill's copy)
        conf = psql(dsn, "select current_setting('default_transaction_read_only'), "
                         "current_setting('synchronous_standby_names'), "
                         "(select md5(string_agg(format('%s %s %s', rolname, rolcanlogin, "
                         "rolsuper), ',' order by rolname)) from pg_roles)").strip()
        sentinel = "absent"
        if psql(dsn, "select to_regclass('drbook.sentinel') is not null").strip() == "t":
            sentinel = psql(dsn, "select count(*), md5(coalesce(string_agg(t::text, '|' order "
                                 "by t::text), '')) from drbook.sentinel t").strip()
        state["pg"][var] = {"recovery_timeline": rec, "data": rows, "settings_roles": conf,
                            "sentinel": sentinel}
    return state


def stores_state(sb):
    """The rest of the platform a drill must not touch: scaling floors, caches, the buckets'
    objects, the database's security groups, the alarms."""
    out = {"scaling": {}, "cache": {}, "s3": {}, "sg": {}, "alarms": {}}
    for region in REGIONS:
        aas = sb.client("application-autoscaling", region)
        for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
            if "/drill-" not in t["ResourceId"]:
                out["scaling"][t["ResourceId"]] = (t["MinCapacity"], t["MaxCapacity"])
        for g in sb.client("elasticache", region).describe_replication_groups()[
                "ReplicationGroups"]:
            if not g["ReplicationGroupId"].startswith("drill-"):
                out["cache"][g["ReplicationGroupId"]] = (g["Status"], len(g["MemberClusters"]))
        for a in sb.client("cloudwatch", region).describe_alarms()["MetricAlarms"]:
            out["alarms"][a["AlarmName"]] = a["StateValue"]
    s3 = sb.client("s3")
    for b in s3.list_buckets()["Buckets"]:
        objs = s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
        out["s3"][b["Name"]] = sorted((o["Key"], o["ETag"]) for o in objs)
    for g in sb.client("ec2").describe_security_groups(GroupIds=[
            sb.vars["DRB_SANDBOX_DB_SECURITY_GROUP"], sb.vars["DRB_SANDBOX_APP_SECURITY_GROUP"]])[
            "SecurityGroups"]:
        out["sg"][g["GroupName"]] = json.dumps(g["IpPermissions"], sort_keys=True)
    return out


def diff(before, after, path=""):
    """The differences between two states, one line each."""
    out = []
    if isinstance(before, dict) and isinstance(after, dict):
        for k in sorted(set(before) | set(after)):
            if k not in after:
                out.append("%s/%s: gone" % (path, k))
            elif k not in before:
                out.append("%s/%s: new %s" % (path, k, after[k]))
            else:
                out += diff(before[k], after[k], "%s/%s" % (path, k))
    elif before != after:
        out.append("%s: %s -> %s" % (path, before, after))
    return out


def chart_rendered(c, d, log_path, what):
    """drbook report --format html of the drill, rendered by headless Chromium: the chart
    and the RTO marker are in the DOM."""
    html = os.path.join(d.tmp, os.path.basename(log_path) + ".html")
    p = subprocess.run([DRBOOK, "report", log_path, "--format", "html"], env=d.env,
                       cwd=d.tmp, capture_output=True, text=True, timeout=60)
    c.eq(p.returncode, 0, "%s: drbook report --format html exits 0 (%s)" % (what,
                                                                          p.stderr[-300:]))
    with open(html, "w") as f:
        f.write(p.stdout)
    if not CHROMIUM:
        c.ok(False, "chromium is not installed (scripts/setup installs it)")
        return
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--disable-background-networking", "--disable-sync",
           "--disable-component-update", "--disable-default-apps", "--mute-audio",
           "--user-data-dir=" + os.path.join(d.tmp, "chromium-profile"), "--dump-dom",
           "file://" + html]
    ch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, cwd=d.tmp)
    try:
        dom, err = ch.communicate(timeout=90)
    finally:
        try:
            os.killpg(ch.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        ch.wait()
    c.ok("<svg" in dom and 'id="gantt"' in dom, "%s: the rendered report holds the chart%s"
         % (what, "" if "<svg" in dom else ": " + err[-1000:]))
    c.ok('class="marker rto"' in dom, "%s: the chart marks the RTO" % what)
    c.ok("drill" in dom.lower(), "%s: the report says it was a drill" % what)


class Drill:
    def __init__(self, sb, tmp):
        self.sb, self.tmp, self.n = sb, tmp, 0
        self.env = dict(os.environ, **sb.vars)
        self.env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        self.env.pop("DRBOOK_AUDIT_KEY_FILE", None)
        self.sanitizer = []

    def argv(self, runbook, *params):
        self.n += 1
        audit = os.path.join(self.tmp, "shadow%d.jsonl" % self.n)
        self.last_audit = audit
        argv = [DRBOOK, "run", runbook, "--shadow", "--yes", "--audit", audit, "--quiet"]
        for p in params:
            argv += ["-p", p]
        return argv, audit

    def run(self, runbook, *params, timeout=240):
        argv, audit = self.argv(runbook, *params)
        p = subprocess.run(argv, cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        self._check_stderr(p.stderr)
        print("  drbook exit %d (%s) %s" % (p.returncode, os.path.basename(audit),
                                            p.stderr.strip()[-300:]), flush=True)
        return p.returncode, log_of(audit)

    def _check_stderr(self, err):
        if any(m in err for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")):
            self.sanitizer.append(err[-3000:])


def log_of(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ev(log, event, step=None):
    return [r for r in log if r["event"] == event and (step is None or r["step"] == step)]


def calls(log, op):
    return [r for r in ev(log, "call") if r["data"].get("operation") == op]


def teardown_ok(log):
    te = ev(log, "shadow.teardown.end")
    return bool(te) and te[0]["data"]["status"] == "ok"


def case_ecs_shadow_drill(sb, c, d):
    before = production_state(sb)
    st = before["stores"]
    c.ok(len(st["scaling"]) == 18 and "prod-cache" in st["cache"] and
         st["s3"].get("prod-assets-eu") and "prod-db-ap" in before["rds"] and
         "AP_DB_DSN" in before["pg"] and "10.99.0.0/16" in st["sg"].get("prod-db", ""),
         "the production state holds the whole platform (floors %d, caches %s, buckets %s)"
         % (len(st["scaling"]), sorted(st["cache"]), sorted(st["s3"])))
    code, log = d.run(ECS_RUNBOOK)
    c.eq(code, 0, "ecs shadow drill: exit 0")
    chart_rendered(c, d, d.last_audit, "ecs shadow drill")
    start = ev(log, "run.start")[0]["data"] if log else {}
    c.eq((start.get("mode"), start.get("drill")), ("shadow", True), "run.start: mode shadow")
    c.eq(start.get("params", {}).get("services"), ["drill-api"],
         "the drill's services are the copy only")
    made = calls(log, "CreateService")
    c.ok(made and made[0]["data"]["request"]["body"]["serviceName"] == "drill-api" and
         made[0]["data"].get("status") == 200, "setup created drill-api")
    upd = calls(log, "UpdateService")
    c.ok(upd and all(r["data"]["request"]["body"]["service"] == "drill-api" for r in upd),
         "the repair touched drill-api only (%s)" % [r["data"]["request"]["body"] for r in upd])
    steady = ev(log, "step.end", "steady[1]") or ev(log, "step.end", "steady")
    c.ok(steady and steady[-1]["data"]["status"] == "ok", "the copy reached steady state")
    end = ev(log, "run.end")[0]["data"] if ev(log, "run.end") else {}
    c.ok(isinstance(end.get("rto_s"), float) and end.get("rpo_s") == 0.0,
         "RTO and RPO measured as in a real run (%s, %s)" % (end.get("rto_s"), end.get("rpo_s")))
    c.ok(teardown_ok(log) and calls(log, "DeleteService"), "teardown deleted drill-api")
    td = [r for r in log if r["data"].get("phase") == "teardown"]
    c.ok(td and all(r["step"] == "remove-shadow-service" for r in td),
         "the teardown's records say phase teardown")
    after = production_state(sb)
    c.eq(diff(before, after), [], "production unchanged after the shadow drill")


def case_gameday_runs_a_shadow_drill(sb, c, d):
    # a scheduled game day that never touches production: `shadow: true` in the schedule
    before = production_state(sb)
    sched = os.path.join(d.tmp, "gameday.yaml")
    runs = os.path.join(d.tmp, "gameday-runs")
    with open(sched, "w") as f:
        f.write("version: 1\ndrills:\n  - name: ecs-shadow-daily\n    runbook: %s\n"
                "    every: 24h\n    shadow: true\n    yes: true\n" % ECS_RUNBOOK)
    p = subprocess.run([DRBOOK, "gameday", sched, "--runs-dir", runs, "--quiet"], cwd=d.tmp,
                       env=d.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=240)
    d._check_stderr(p.stderr)
    c.eq(p.returncode, 0, "gameday ran the due shadow drill: exit 0 (%s)" % p.stderr[-300:])
    logs = sorted(os.path.join(runs, n) for n in os.listdir(runs) if n.endswith(".jsonl")) \
        if os.path.isdir(runs) else []
    c.eq(len(logs), 1, "one drill log in the runs folder")
    log = log_of(logs[0]) if logs else []
    start = ev(log, "run.start")[0]["data"] if ev(log, "run.start") else {}
    c.eq((start.get("mode"), start.get("gameday")), ("shadow", "ecs-shadow-daily"),
         "run.start: mode shadow, the game day's drill")
    # (whether the copy still needs its repair when the checks run depends on the machine's
    # speed: its tasks start on a clock from its creation; case_ecs_shadow_drill checks it)
    made = [r["data"]["request"]["body"]["serviceName"] for r in calls(log, "CreateService")]
    touched = [r["data"]["request"]["body"]["service"] for r in calls(log, "UpdateService")]
    c.ok(made == ["drill-api"] and set(touched) <= {"drill-api"},
         "the game day made drill-api and changed nothing else (%s, %s)" % (made, touched))
    c.ok(teardown_ok(log), "the game day's teardown ran")
    c.eq(diff(before, production_state(sb)), [], "production unchanged after the game day")
    p = subprocess.run([DRBOOK, "gameday", sched, "--runs-dir", runs, "--list"], cwd=d.tmp,
                       env=d.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    c.ok("every 24h, shadow" in p.stdout and "succeeded" in p.stdout,
         "--list shows the drill as a shadow drill that succeeded (%s)" % p.stdout.strip())


def case_violation_rolls_back_and_tears_down(sb, c, d):
    # production's payment service runs below its desired count; a drill that names it must
    # not repair it (that would change production): the shadow rule refuses it
    inj = sb.inject("ecs-task", "--service", "payment")
    c.ok(inj.get("task"), "inject: a payment task stopped")
    before = production_state(sb)
    text = open(ECS_RUNBOOK).read().replace("    services: [drill-api]",
                                             "    services: [drill-api, payment]")
    c.ok("services: [drill-api, payment]" in text, "a drill whose overrides miss payment")
    rb = os.path.join(d.tmp, "ecs-leaky.yaml")
    with open(rb, "w") as f:
        f.write(text)
    code, log = d.run(rb)
    c.eq(code, 1, "a shadow violation fails the drill: exit 1")
    sent = [r["data"]["request"]["body"]["service"] for r in calls(log, "UpdateService")]
    c.ok("payment" not in sent, "no UpdateService for payment was sent (%s)" % sent)
    ends = [r for r in ev(log, "step.end") if r["data"].get("code") == "shadow_violation"]
    c.ok(ends, "a step failed with code shadow_violation")
    viol = ev(log, "shadow.violation")
    c.ok(viol and viol[0]["data"]["value"] == "payment", "the refusal names payment")
    end = ev(log, "run.end")[0]["data"] if ev(log, "run.end") else {}
    c.eq(end.get("status"), "rolled_back", "run.end rolled_back")
    c.ok(teardown_ok(log), "teardown ran after the failure")
    c.eq(diff(before, production_state(sb)), [], "production unchanged after the refused drill")


# the shadow section of the HELD and STOPPED drills: setup makes drill-api, a copy of the
# api service in the cluster params.cluster names, and teardown deletes it (STOPPED adds
# shadow params that point its steps at the copy)
DRILL_API_SHADOW = """
shadow:
  setup:
    - id: shadow-service
      action: aws.ecs.create_service
      with: { cluster: "${params.cluster}", service: drill-api, like: api, desired_count: 1,
              region: us-east-1 }
  teardown:
    - id: remove-shadow-service
      action: aws.ecs.delete_service
      with: { cluster: "${params.cluster}", service: drill-api, force: true, region: us-east-1 }
"""

# the drill waits in its steps until the signal comes (the ECS runbook's own steps may end
# before a signal sent at setup's end arrives, on a loaded machine: its copy's tasks start on
# a clock that runs from the copy's creation)
HELD = """
version: 1
name: shadow-held
params:
  cluster: { type: string, default: "%s" }
steps:
  - id: hold
    action: sleep
    with: { duration: 10m }
""" + DRILL_API_SHADOW


def case_sigterm_tears_down(sb, c, d):
    before = production_state(sb)
    rb = os.path.join(d.tmp, "held.yaml")
    with open(rb, "w") as f:
        f.write(HELD % sb.vars["DRB_SANDBOX_CLUSTER_US"])
    argv, audit = d.argv(rb)
    p = subprocess.Popen(argv, cwd=d.tmp, env=d.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = wait_for(lambda: ev(log_of(audit), "step.start", "hold"), 60, 0.02)
        c.ok(got, "setup made drill-api and the drill holds in its steps")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        d._check_stderr(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    log = log_of(audit)
    end = ev(log, "run.end")[0]["data"] if ev(log, "run.end") else {}
    c.ok("interrupted by a signal" in (end.get("error") or ""),
         "run.end says the signal stopped it (%s)" % end.get("error"))
    c.eq((p.returncode, end.get("status")), (1, "failed"),
         "SIGTERM stops the drill in its steps: exit 1, status failed")
    c.ok(teardown_ok(log) and calls(log, "DeleteService"), "teardown ran after SIGTERM")
    c.eq(diff(before, production_state(sb)), [], "production unchanged after the stopped drill")


# a drill with a stop condition (stop_when): it scales its copy up, then holds; the alarm goes
# to ALARM while it holds
STOPPED = """
version: 1
name: shadow-stopped
stop_when:
  - { alarm: drill-stop, region: us-east-1 }
params:
  cluster: { type: string, default: "%s" }
  service: { type: string, default: api }
steps:
  - id: scale-copy
    action: aws.ecs.update_service
    with: { cluster: "${params.cluster}", service: "${params.service}", desired_count: 2,
            region: us-east-1 }
    rollback:
      action: aws.ecs.update_service
      with: { cluster: "${params.cluster}", service: "${params.service}", desired_count: 1,
              region: us-east-1 }
  - id: hold
    action: sleep
    with: { duration: 10m }
""" + DRILL_API_SHADOW + "  params: { service: drill-api }\n"


def case_stop_condition_stops_a_shadow_drill(sb, c, d):
    # an alarm set during a game day stops it within 5 s: the copy's change is rolled back,
    # the copy torn down, production as it was
    before = production_state(sb)      # the alarm is the test's: made here, deleted below
    cw = sb.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="drill-stop", Namespace="drbook/test", MetricName="errors",
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold")
    cw.set_alarm_state(AlarmName="drill-stop", StateValue="OK", StateReason="quiet")
    rb = os.path.join(d.tmp, "stopped.yaml")
    with open(rb, "w") as f:
        f.write(STOPPED % sb.vars["DRB_SANDBOX_CLUSTER_US"])
    argv, audit = d.argv(rb)
    p = subprocess.Popen(argv, cwd=d.tmp, env=d.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        c.ok(wait_for(lambda: ev(log_of(audit), "step.start", "hold"), 60, 0.02),
             "the drill scaled its copy and holds")
        set_at = time.time()
        cw.set_alarm_state(AlarmName="drill-stop", StateValue="ALARM", StateReason="5xx")
        _, err = p.communicate(timeout=120)
        d._check_stderr(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        cw.delete_alarms(AlarmNames=["drill-stop"])
    log = log_of(audit)
    end = ev(log, "run.end")[0]["data"] if ev(log, "run.end") else {}
    c.eq((p.returncode, end.get("status"), end.get("reason")),
         (1, "rolled_back", "stop condition drill-stop"),
         "the alarm stopped the drill: exit 1, rolled back, the reason names the alarm")
    held = ev(log, "step.end", "hold")
    took = (datetime.fromisoformat(held[0]["ts"].replace("Z", "+00:00")).timestamp() - set_at
            if held else None)
    c.ok(took is not None and took < 5.0, "stopped within 5 s of the alarm (%s s)" % took)
    sent = [r["data"]["request"]["body"]["service"] for r in calls(log, "UpdateService")]
    rb_end = ev(log, "rollback.end", "scale-copy")
    c.ok(rb_end and rb_end[0]["data"]["status"] == "ok" and sent == ["drill-api"] * 2,
         "the copy's scaling was rolled back, on drill-api only (%s)" % sent)
    c.ok(teardown_ok(log) and calls(log, "DeleteService"), "teardown ran after the stop")
    c.eq(diff(before, production_state(sb)), [], "production unchanged after the stopped drill")


RDS_COPY = """
version: 1
name: shadow-rds-copy
lock: [db:drill-restore]
params:
  instance: { type: string, default: prod-db }
connections:
  drill_copy: { kind: postgres, rds_instance: drill-restore, region: us-east-1, user: postgres,
                dbname: app, password_env: DRB_SANDBOX_PG_PASSWORD }
steps:
  - id: copy-available
    action: aws.rds.describe_db_instance
    with: { id: "${params.instance}", region: us-east-1 }
    assert: result.status == "available" and result.id == "drill-restore"
  - id: copy-takes-writes
    action: pg.sentinel_write
    with: { connection: drill_copy }
shadow:
  setup:
    - id: restore
      action: aws.rds.restore_db_instance_from_snapshot
      with: { snapshot: "%s", target: drill-restore, region: us-east-1 }
    - id: restored
      action: aws.rds.describe_db_instance
      with: { id: drill-restore, region: us-east-1 }
      until: result.status == "available"
      every: 1s
      timeout: 3m
  params: { instance: drill-restore }
  teardown:
    - id: drop
      action: aws.rds.delete_db_instance
      with: { id: drill-restore, region: us-east-1 }
    - id: drop-again
      action: aws.rds.delete_db_instance
      with: { id: drill-restore, region: us-east-1 }
"""


def case_restored_copy_backed_by_postgres(sb, c, d):
    # a drill- instance restored from the seed snapshot is a real PostgreSQL server: the drill
    # writes to it (pg.sentinel_write through an rds_instance connection), and teardown
    # deletes it (twice: the second finds it gone, which is not an error)
    before = production_state(sb)
    rb = os.path.join(d.tmp, "rds-copy.yaml")
    with open(rb, "w") as f:
        f.write(RDS_COPY % sb.vars["DRB_SANDBOX_SNAPSHOT"])
    code, log = d.run(rb)
    c.eq(code, 0, "restored-copy drill: exit 0")
    w = ev(log, "step.end", "copy-takes-writes")
    c.ok(w and w[0]["data"]["status"] == "ok", "the drill- copy took a write")
    c.eq(len(calls(log, "DeleteDBInstance")), 2, "teardown deleted the copy (and again)")
    c.ok(teardown_ok(log), "both teardown steps ended ok")
    rds = sb.client("rds")
    gone = wait_for(lambda: not [db for db in rds.describe_db_instances()["DBInstances"]
                                 if db["DBInstanceIdentifier"] == "drill-restore"], 30)
    c.ok(gone, "drill-restore is gone")
    c.eq(diff(before, production_state(sb)), [], "production unchanged after the copy's drill")


def body(sb, c):
    sb.up()
    tmp = tempfile.mkdtemp(prefix="drb-shadow-")
    try:
        # the drills' topic: drill notifications go there (shadow.params.topic_arn)
        sb.client("sns").create_topic(Name="drill-alerts")
        d = Drill(sb, tmp)
        for case in (case_ecs_shadow_drill, case_gameday_runs_a_shadow_drill,
                     case_violation_rolls_back_and_tears_down,
                     case_sigterm_tears_down, case_stop_condition_stops_a_shadow_drill,
                     case_restored_copy_backed_by_postgres):
            print("# %s" % case.__name__, flush=True)
            case(sb, c, d)
        c.eq(d.sanitizer, [], "no sanitizer report from any drbook run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    # tasks start 8 s after a change (the copy is still degraded when the drill's checks
    # run, also on a loaded machine); a stopped production task is not replaced by the
    # scheduler within the test
    sys.exit(run_test(body, {"DRB_SANDBOX_ECS_REPLACE_DELAY": "600",
                             "DRB_SANDBOX_ECS_START_DELAY": "8"}))
