#!/usr/bin/env python3
# Secrets never leave drbook (issue 9 point 6), on the four scenario runbooks in the sandbox.
# One sandbox, the four runs in sequence (ECS repair, Multi-AZ planned failover, corruption
# restore from a snapshot, region failover after an outage), each with marker secrets:
# temporary AWS credentials from the sandbox's STS (secret access key and session token), the
# PostgreSQL password (in every DSN and DRBOOK_DB_PASSWORD), a Slack webhook URL, and a secret
# list parameter. The runbooks are used as written, copied with two additions only: the secret
# list parameter and a start notification to the webhook whose text holds the list's values
# (runbooks/ is not changed). Every byte drbook wrote (stdout and stderr of `run --json` and
# of a plain `run`, the audit logs, the runs folder, `report` in md, html and json, `audit
# verify`) is searched for each marker.
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))
sys.path.insert(0, HERE)

from sandbox_lib.testkit import run_test  # noqa: E402
from test_scenario_ecs import DRBOOK, SRC, Alerts  # noqa: E402
from test_scenario_region import make_sentinel_table, now_rfc3339, region_params  # noqa: E402

LIST_MARKERS = ["list-secret-Kilo-4711", "list-secret-Lima-4712"]
WEBHOOK_TOKEN = "webhook-secret-Mike-4713"

EXTRA_PARAM = "  marker_keys: { type: list, secret: true, default: [a, b] }\n"
EXTRA_NOTIFY = """\
  - on: [start]
    action: notify
    with:
      channel: slack
      webhook_env: DRB_MARKER_WEBHOOK
      text: "keys ${params.marker_keys[1]} and ${params.marker_keys[2]}"
"""


def copy_runbooks(tmp):
    """runbooks/ copied (modules included), each scenario with the marker param and notify."""
    dst = os.path.join(tmp, "runbooks")
    shutil.copytree(os.path.join(SRC, "runbooks"), dst)
    for name in ("ecs-task-failure", "rds-multi-az-failover", "db-corruption-restore",
                 "region-failover"):
        path = os.path.join(dst, name + ".yaml")
        text = open(path).read()
        for key, add in (("params", EXTRA_PARAM), ("notify", EXTRA_NOTIFY)):
            text, n = re.subn(r"^%s:\n" % key, lambda m, a=add: m.group(0) + a, text, count=1,
                              flags=re.M)
            if n != 1:
                raise AssertionError("%s has no top-level %s: list" % (name, key))
        with open(path, "w") as f:
            f.write(text)
        v = subprocess.run([DRBOOK, "validate", path], capture_output=True, text=True)
        if v.returncode != 0:
            raise AssertionError("the marked copy of %s does not validate: %s" % (name, v.stderr))
    return dst


def temporary_credentials(sb):
    """Credentials from the sandbox's STS (AssumeRole): secret key and session token."""
    iam = sb.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="dr-secrets", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="dr-secrets", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    cred = sb.client("sts").assume_role(
        RoleArn="arn:aws:iam::%s:role/dr-secrets" % sb.vars["DRB_SANDBOX_ACCOUNT_ID"],
        RoleSessionName="secrets-test")["Credentials"]
    return cred


class Runner:
    def __init__(self, sb, tmp, cred, webhook):
        self.sb, self.tmp = sb, tmp
        self.runs = os.path.join(tmp, "runs")
        self.env = dict(sb.env)
        self.env.update({k: str(v) for k, v in sb.vars.items()})
        self.env.update(AWS_ACCESS_KEY_ID=cred["AccessKeyId"],
                        AWS_SECRET_ACCESS_KEY=cred["SecretAccessKey"],
                        AWS_SESSION_TOKEN=cred["SessionToken"],
                        AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                        DRBOOK_DB_PASSWORD=sb.vars["DRB_SANDBOX_PG_PASSWORD"],
                        DRB_MARKER_WEBHOOK=webhook)
        self.env.pop("DRBOOK_AUDIT_KEY_FILE", None)
        self.written = []           # (what, text) of every output
        self.logs = []

    def drbook(self, *args, timeout=300):
        p = subprocess.run([DRBOOK] + list(args), env=self.env, cwd=self.tmp, text=True,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.written.append(("drbook %s: stdout" % " ".join(args[:2]), p.stdout))
        self.written.append(("drbook %s: stderr" % " ".join(args[:2]), p.stderr))
        return p

    def scenario(self, name, runbook, params, json_out=True):
        log = os.path.join(self.tmp, name + ".jsonl")
        argv = ["run", runbook, "--drill", "--yes", "--audit", log, "--runs-dir", self.runs,
                "-p", "marker_keys=" + ",".join(LIST_MARKERS)] + list(params)
        if json_out:
            argv.append("--json")
        t = time.monotonic()
        p = self.drbook(*argv)
        print("  %s: exit %d in %.1fs" % (name, p.returncode, time.monotonic() - t), flush=True)
        if p.returncode != 0:
            print(p.stdout[-3000:], p.stderr[-2000:], flush=True)
        records = []
        if os.path.exists(log):
            with open(log) as f:
                records = [json.loads(line) for line in f if line.strip()]
            for fmt in ("md", "html", "json"):
                self.drbook("report", log, "--format", fmt)
            self.drbook("audit", "verify", log)
        self.logs.append(log)
        return p, records


def calls(records, service=None):
    return [r for r in records if r["event"] == "call" and
            (service is None or r["data"].get("service") == service)]


def every_file(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.join(d, f)


def body(sb, c):
    sb.up()
    tmp = tempfile.mkdtemp(prefix="drb-scen-secrets-")
    hook = Alerts()
    try:
        rbs = copy_runbooks(tmp)
        cred = temporary_credentials(sb)
        webhook = hook.url + "services/" + WEBHOOK_TOKEN
        markers = {"AWS secret access key": cred["SecretAccessKey"],
                   "AWS session token": cred["SessionToken"],
                   "DB password": sb.vars["DRB_SANDBOX_PG_PASSWORD"],
                   "webhook URL": webhook, "webhook token": WEBHOOK_TOKEN,
                   "sandbox user's secret key": sb.vars["AWS_SECRET_ACCESS_KEY"]}
        for i, m in enumerate(LIST_MARKERS):
            markers["secret list item %d" % (i + 1)] = m
        r = Runner(sb, tmp, cred, webhook)
        topic = ["-p", "topic_arn=" + sb.vars["DRB_SANDBOX_TOPIC_ARN"]]
        account = ["-p", "account=" + sb.vars["DRB_SANDBOX_ACCOUNT_ID"]]

        print("# ecs-task-failure (a stopped task repaired)", flush=True)
        sb.inject("ecs-task", "--service", "payment")
        p, log = r.scenario("ecs", os.path.join(rbs, "ecs-task-failure.yaml"), topic)
        c.eq(p.returncode, 0, "ecs-task-failure succeeds with temporary credentials")
        c.ok(any(x["data"].get("operation") == "UpdateService" for x in calls(log)),
             "ecs: the repair called UpdateService (signed with the session token)")

        print("# rds-multi-az-failover (planned)", flush=True)
        make_sentinel_table(sb)
        p, log = r.scenario("rds", os.path.join(rbs, "rds-multi-az-failover.yaml"),
                            topic + account)
        c.eq(p.returncode, 0, "rds-multi-az-failover succeeds")
        c.ok(calls(log, "pg"), "rds: PostgreSQL was used through the DSN holding the password")

        print("# db-corruption-restore (snapshot)", flush=True)
        from test_scenario_corruption import point_record_at_prod
        point_record_at_prod(sb)
        snap_at = sb.client("rds").describe_db_snapshots(
            DBSnapshotIdentifier=sb.vars["DRB_SANDBOX_SNAPSHOT"])["DBSnapshots"][0][
            "SnapshotCreateTime"].timestamp()
        time.sleep(max(0.0, snap_at + 2.5 - time.time()))
        corr = sb.inject("corruption")
        p, log = r.scenario("corruption", os.path.join(rbs, "db-corruption-restore.yaml"),
                            topic + ["-p", "zone_id=" + sb.vars["DRB_SANDBOX_ZONE_ID"],
                                     "-p", "record_type=SRV",
                                     "-p", "detected_at=" + corr["corrupted_at"],
                                     "-p", "restore_to=" + corr["restore_to"],
                                     "-p", "method=snapshot",
                                     "-p", "snapshot=" + sb.vars["DRB_SANDBOX_SNAPSHOT"],
                                     # the region failover below promotes prod-db-eu as a
                                     # replica of prod-db: it must not follow the restore
                                     "-p", "rebuild_replicas=false"],
                            json_out=False)
        c.eq(p.returncode, 0, "db-corruption-restore succeeds")
        c.ok(calls(log, "pg"), "corruption: PostgreSQL was used with DRBOOK_DB_PASSWORD")

        print("# region-failover (after an outage)", flush=True)
        make_sentinel_table(sb)
        sb.sql("PRIMARY_DB_DSN", "insert into drbook.sentinel values (md5(random()::text), "
               "clock_timestamp(), 'heartbeat')")
        time.sleep(1)
        incident = now_rfc3339()
        sb.inject("region-outage")
        p, log = r.scenario("region", os.path.join(rbs, "region-failover.yaml"),
                            region_params(sb, incident_start=incident) +
                            ["--incident-start", incident])
        c.eq(p.returncode, 0, "region-failover succeeds")

        # the secrets did reach what needed them
        posts = hook.take()
        texts = [json.dumps(m) for m in posts]
        c.ok(len(posts) >= 4 and all(LIST_MARKERS[0] in t and LIST_MARKERS[1] in t
                                     for t in texts),
             "each run's start notification reached the webhook with the secret list's values "
             "(%d posts)" % len(posts))

        # every byte drbook wrote
        written = list(r.written)
        for path in sorted(set(every_file(tmp)) - set(every_file(rbs))):
            with open(path, "rb") as f:
                written.append((os.path.relpath(path, tmp), f.read().decode("utf-8", "replace")))
        total = sum(len(t) for _, t in written)
        c.ok(len(written) > 30 and total > 100000,
             "searched %d outputs, %d bytes" % (len(written), total))
        for what, marker in sorted(markers.items()):
            leaks = [w for w, t in written if marker in t]
            c.eq(leaks, [], "the %s appears nowhere drbook wrote" % what)
        masked = sum(open(lg).read().count("***") for lg in r.logs if os.path.exists(lg))
        c.ok(masked > 0, "secret values were masked (***), not dropped (%d)" % masked)
    finally:
        hook.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(body, {"DRB_SANDBOX_ECS_REPLACE_DELAY": "600"}))
