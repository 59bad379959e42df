#!/usr/bin/env python3
# drbook readiness against the sandbox (docs/operations.md "Readiness and alerts"): the region
# failover is ready on a healthy platform (its outage check skips itself in a readiness check)
# and the check changes nothing (AWS and PostgreSQL state); then drifts: a DR service deleted
# in moto, and the DR replica's WAL replay paused while the primary takes writes (lag over
# max_lag). Each flips drbook_ready and the failing check's drbook_check_ok in the textfile,
# exits 3, and notifies once (Slack-compatible webhook, a local server); putting it right
# flips them back and says so.
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_scenario_region import (RUNBOOKS, diff, drbook, region_params, show,  # noqa: E402
                                  snapshot)
from sandbox_lib.common import psql  # noqa: E402
from sandbox_lib.testkit import run_test, wait_for  # noqa: E402

RUNBOOK = os.path.join(RUNBOOKS, "region-failover.yaml")


def metrics(path):
    out = {}
    for line in open(path):
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line.strip())
        if m:
            out[(m.group(1), tuple(re.findall(r'(\w+)="([^"]*)"', m.group(2))))] = \
                float(m.group(3))
    return out


class Hook(http.server.BaseHTTPRequestHandler):
    texts = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Hook.texts.append(json.loads(self.rfile.read(n)).get("text", ""))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def body(sb, c):
    sb.up()
    work = tempfile.mkdtemp(prefix="drbook-readiness-")
    runs, prom = os.path.join(work, "runs"), os.path.join(work, "drbook.prom")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sb.vars["DRBOOK_SLACK_WEBHOOK_URL"] = "http://127.0.0.1:%d/hook" % srv.server_address[1]
    rb = ("runbook", "region-failover")

    def readiness(**extra):
        return drbook(sb, "readiness", RUNBOOK, "--runs-dir", runs, "--metrics-file", prom,
                      "--notify", "slack", *region_params(sb, **extra))

    try:
        before = snapshot(sb)
        p = readiness()
        if not c.eq(p.returncode, 0, "a healthy platform: region-failover is ready (exit 0)"):
            show(p)
        m = metrics(prom)
        c.eq(m.get(("drbook_ready", (rb,))), 1.0, "drbook_ready 1")
        c.eq(m.get(("drbook_check_ok", (rb, ("check", "confirm-outage")))), 1.0,
             "the outage check skips itself in a readiness check")
        c.eq(diff(before, snapshot(sb)), [], "the readiness check changed nothing")
        c.eq(Hook.texts, [], "ready: no notification")

        # the other failovers' invariants, in one command (each runbook's own preflight)
        others = [os.path.join(RUNBOOKS, n) for n in ("ecs-task-failure.yaml",
                                                      "rds-multi-az-failover.yaml")]
        p = drbook(sb, "readiness", *others, "--runs-dir", runs, "--json")
        if not c.eq(p.returncode, 0, "the ECS and Multi-AZ failovers are ready too (exit 0)"):
            show(p)
        try:
            got = {r["runbook"]: (r["ready"], len(r["checks"]))
                   for r in json.loads(p.stdout)["runbooks"]}
        except (ValueError, KeyError):
            got = {}
        c.ok(set(got) == {"ecs-task-failure", "rds-multi-az-failover"} and
             all(ready and n >= 2 for ready, n in got.values()),
             "each is ready after its own checks (%s)" % got)

        # drift 1: a DR service is gone
        ecs = sb.client("ecs", "eu-west-1")
        ecs.update_service(cluster="prod-eu", service="payment", desiredCount=0)
        ecs.delete_service(cluster="prod-eu", service="payment", force=True)
        p = readiness()
        if not c.eq(p.returncode, 3, "a DR service deleted: not ready (exit 3)"):
            show(p)
        m = metrics(prom)
        c.eq(m.get(("drbook_ready", (rb,))), 0.0, "drbook_ready flipped to 0")
        c.eq(m.get(("drbook_check_ok", (rb, ("check", "dr-services")))), 0.0,
             "drbook_check_ok{check=dr-services} 0")
        c.eq(m.get(("drbook_check_ok", (rb, ("check", "replica")))), 1.0,
             "the other checks still pass")
        c.ok(len(Hook.texts) == 1 and "region-failover is NOT READY" in Hook.texts[0]
             and "dr-services" in Hook.texts[0], "one notification naming the check: %r"
             % Hook.texts)
        p = readiness()
        c.eq((p.returncode, len(Hook.texts)), (3, 1), "still not ready: not notified again")
        ecs.create_service(cluster="prod-eu", serviceName="payment", desiredCount=1,
                           taskDefinition=ecs.describe_services(
                               cluster="prod-eu", services=["api"])["services"][0][
                                   "taskDefinition"])
        p = readiness()
        if not c.eq(p.returncode, 0, "the service is back: ready again"):
            show(p)
        c.eq(metrics(prom).get(("drbook_ready", (rb,))), 1.0, "drbook_ready back to 1")
        c.ok(len(Hook.texts) == 2 and "ready again" in Hook.texts[1],
             "the recovery is notified: %r" % Hook.texts[1:])

        # drift 2: the replica stops replaying while the primary takes writes
        dr, primary = sb.vars["DR_DB_DSN"], sb.vars["PRIMARY_DB_DSN"]
        psql(dr, "select pg_wal_replay_pause()", timeout=10)
        try:
            psql(primary, "create table if not exists readiness_probe (t timestamptz)",
                 timeout=10)
            deadline = time.time() + 3
            while time.time() < deadline:
                psql(primary, "insert into readiness_probe values (now())", timeout=10)
                time.sleep(0.3)
            p = readiness(max_lag="1s")
            if not c.eq(p.returncode, 3, "replay paused, lag over max_lag=1s: not ready"):
                show(p)
            m = metrics(prom)
            c.eq(m.get(("drbook_ready", (rb,))), 0.0, "drbook_ready 0 on lag")
            c.eq(m.get(("drbook_check_ok", (rb, ("check", "replica-lag")))), 0.0,
                 "drbook_check_ok{check=replica-lag} 0")
            c.ok(len(Hook.texts) == 3 and "replica-lag" in Hook.texts[2],
                 "the lag is notified: %r" % Hook.texts[2:])
        finally:
            psql(dr, "select pg_wal_replay_resume()", timeout=10)
        c.ok(wait_for(lambda: readiness(max_lag="1s").returncode == 0, 60),
             "replay resumed: ready again")
        m = metrics(prom)
        c.eq(m.get(("drbook_check_ok", (rb, ("check", "standby-replicas")))), 1.0,
             "ap-southeast-1's replica is checked too, and follows")

        # drift 3: ap-southeast-1's replica stops following (its upstream unreachable)
        ap = sb.vars["AP_DB_DSN"]
        upstream = psql(ap, "show primary_conninfo", timeout=10).strip()
        psql(ap, "alter system set primary_conninfo = 'host=127.0.0.1 port=1'", timeout=10)
        psql(ap, "select pg_reload_conf()", timeout=10)
        try:
            c.ok(wait_for(lambda: psql(ap, "select count(*) from pg_stat_wal_receiver where "
                                           "status = 'streaming'", timeout=10).strip() == "0",
                          30), "prod-db-ap's WAL receiver stopped streaming")
            p = readiness()
            if not c.eq(p.returncode, 3, "ap-southeast-1's replica not following: not ready"):
                show(p)
            m = metrics(prom)
            c.eq((m.get(("drbook_check_ok", (rb, ("check", "standby-replicas")))),
                  m.get(("drbook_check_ok", (rb, ("check", "replica-lag"))))), (0.0, 1.0),
                 "drbook_check_ok{check=standby-replicas} 0, eu-west-1's replica-lag 1")
            c.ok(len(Hook.texts) == 5 and "ap-southeast-1" in Hook.texts[4],
                 "the standby region's drift is notified: %r" % Hook.texts[4:])
        finally:
            psql(ap, "alter system set primary_conninfo = '%s'" % upstream.replace("'", "''"),
                 timeout=10)
            psql(ap, "select pg_reload_conf()", timeout=10)
        c.ok(wait_for(lambda: readiness().returncode == 0, 60),
             "ap-southeast-1's replica follows again: ready")
    finally:
        srv.shutdown()
        srv.server_close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_test(body))
