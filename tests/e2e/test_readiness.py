"""drbook readiness (DESIGN.md v1.1, docs/operations.md "Readiness"): every preflight check runs
read-only and without the run lock; exit 0 all ready, 3 one not ready, 2 invalid; the Prometheus
textfile is written atomically with escaped labels and flips with the state; the last run,
drill of each runbook come from the runs folder; --json; --notify tells people once per change.
No services: the checks look at files."""
import http.server
import json
import os
import re
import sys
import threading
import time

from drbtest import check, events, main

RUNBOOK = """
version: 1
name: {name}
targets: {{ rto: 1m, rpo: 0s }}
params:
  flag: {{ type: string, default: {flag} }}
  unused: {{ type: string, default: x }}
  outage: {{ type: bool, default: true }}
preflight:
  - id: flag-present
    action: exec
    read_only: true
    with: {{ argv: [test, -e, "${{params.flag}}"] }}
  - id: lua-check
    action: lua
    read_only: true
    script: return true
  - id: outage-confirmed
    description: a trigger, not an invariant, so skipped in readiness checks
    action: lua
    read_only: true
    when: run.mode ~= "readiness"
    script: if not params.outage then error("no outage now") end
  - id: advisory
    action: exec
    read_only: true
    critical: false
    with: {{ argv: ["false"] }}
steps:
  - id: hold
    action: exec
    with: {{ argv: [sh, -c, "while [ -e {hold} ]; do sleep 0.05; done"] }}
"""


def metrics(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line.strip())
        assert m, f"not an exposition line: {line!r}"
        labels = tuple(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def book(c, name, file):
    flag = c.path(f"flag-{file}")
    open(flag, "w").close()
    c.write(f"{file}.yaml", RUNBOOK.format(name=name, flag=flag, hold=c.path("hold")))
    return flag


def test_ready_then_not_ready_flips_the_metrics(c):
    flag = book(c, 'app "eu"\\west', "a")
    book(c, "b", "b")
    r = c.drbook("readiness", "a.yaml", "b.yaml", "--runs-dir", "runs", "--metrics-file",
                 "m.prom")
    check(r.code == 0, "both ready", r)
    check("READY" in r.out and "NOT READY" not in r.out, "says ready", r)
    m = metrics(c.path("m.prom"))
    a = ("runbook", 'app \\"eu\\"\\\\west')
    check(m[("drbook_ready", (a,))] == 1 and m[("drbook_ready", (("runbook", "b"),))] == 1,
          f"drbook_ready {m}")
    check(m[("drbook_check_ok", (a, ("check", "outage-confirmed")))] == 1,
          "a check skipped in readiness passes")
    check(m[("drbook_check_ok", (a, ("check", "advisory")))] == 0,
          "a failing non-critical check shows, without making the runbook not ready")
    check(not [f for f in os.listdir(c.dir) if ".tmp" in f], "no temporary file left")
    check(os.stat(c.path("m.prom")).st_mode & 0o777 == 0o644, "readable by node_exporter")

    os.unlink(flag)
    r = c.drbook("readiness", "a.yaml", "b.yaml", "--runs-dir", "runs", "--metrics-file",
                 "m.prom", "--json")
    check(r.code == 3, "one runbook not ready: exit 3", r)
    doc = json.loads(r.out)
    check(doc["ready"] is False, "overall not ready")
    ra = [x for x in doc["runbooks"] if x["path"] == "a.yaml"][0]
    check(ra["ready"] is False and "flag-present" in ra["error"], f"why: {ra}")
    check({x["check"]: x["ok"] for x in ra["checks"]}["flag-present"] is False, "the check")
    check({x["check"]: x["ok"] for x in ra["checks"]}["lua-check"] is True,
          "the checks after a failing one still run")
    m = metrics(c.path("m.prom"))
    check(m[("drbook_ready", (a,))] == 0, "the metric flipped")
    check(m[("drbook_ready", (("runbook", "b"),))] == 1, "the other stays ready")
    log = c.log(ra["audit"])
    start = events(log, "run.start")[0]["data"]
    check(start["mode"] == "readiness", f"the check's log says readiness: {start}")
    check(not [x for x in log if x["event"] == "step.start"
               and x["step"] == "hold"], "no step ran")


def test_last_runs_come_from_the_runs_folder(c):
    book(c, "svc", "s")
    r = c.drbook("run", "s.yaml", "--runs-dir", "runs", "--yes")
    check(r.code == 0, "a run", r)
    r = c.drbook("run", "s.yaml", "--runs-dir", "runs", "--yes", "--drill")
    check(r.code == 0, "a drill", r)
    r = c.drbook("plan", "s.yaml", "--runs-dir", "runs")
    check(r.code == 0, "a plan (not counted)", r)
    r = c.drbook("readiness", "s.yaml", "--runs-dir", "runs", "--metrics-file", "m.prom")
    check(r.code == 0, "ready", r)
    m = metrics(c.path("m.prom"))
    sv = ("runbook", "svc")
    check(m[("drbook_last_run_success", (sv, ("mode", "run")))] == 1, f"run: {m}")
    check(m[("drbook_last_run_success", (sv, ("mode", "drill")))] == 1, "drill")
    check(("drbook_last_run_success", (sv, ("mode", "shadow"))) not in m, "no shadow yet")
    rto = m[("drbook_last_run_rto_seconds", (sv, ("mode", "drill")))]
    check(0 < rto < 30, f"the drill's RTO: {rto}")
    r = c.drbook("readiness", "s.yaml", "--runs-dir", "runs", "--json")
    runs = json.loads(r.out)["runbooks"][0]["last_runs"]
    check({x["mode"] for x in runs} == {"run", "drill"}, f"last runs {runs}")
    check(len([f for f in os.listdir(c.path("runs")) if f.endswith(".jsonl")]) == 3,
          "readiness checks do not add to the runs folder's history")


def test_no_run_lock_is_taken(c):
    """A failover holding its lock is not disturbed, and a readiness check during it works."""
    book(c, "locked", "l")
    open(c.path("hold"), "w").close()
    p = c.spawn("run", "l.yaml", "--runs-dir", "runs", "--yes", "--audit", "run.jsonl")
    try:
        t = time.monotonic()
        while not (os.path.exists(c.path("run.jsonl"))
                   and events(c.log("run.jsonl"), "step.start", "hold")):
            check(time.monotonic() - t < 30 and p.poll() is None, "the run did not start")
            time.sleep(0.05)
        r = c.drbook("readiness", "l.yaml", "--runs-dir", "runs")
        check(r.code == 0, "readiness while the failover holds its lock", r)
        r2 = c.drbook("run", "l.yaml", "--runs-dir", "runs", "--yes", "--audit", "two.jsonl")
        check(r2.code == 3 and "held" in (r2.err + r2.out), "the lock is still the run's", r2)
    finally:
        os.unlink(c.path("hold"))
        p.wait(timeout=30)
    check(p.returncode == 0, "the failover ended as it would have")


def test_invalid_runbook_or_parameter_is_exit_2(c):
    book(c, "good", "g")
    c.write("bad.yaml", "version: 1\nname: bad\nstop_when: nope\nsteps: []\n")
    r = c.drbook("readiness", "g.yaml", "bad.yaml", "--runs-dir", "runs", "--metrics-file",
                 "m.prom")
    check(r.code == 2 and "bad.yaml:3:12:" in r.err, "invalid runbook", r)
    check(not os.path.exists(c.path("m.prom")), "nothing checked, nothing written")
    r = c.drbook("readiness", "g.yaml", "-p", "nosuch=1", "--runs-dir", "runs")
    check(r.code == 2 and "nosuch" in r.err, "undeclared parameter", r)
    r = c.drbook("readiness", "g.yaml", "-p", "unused=y", "--runs-dir", "runs")
    check(r.code == 0, "a declared parameter", r)
    r = c.drbook("readiness", "g.yaml", "--notify", "email")
    check(r.code == 2, "unknown channel", r)
    r = c.drbook("readiness")
    check(r.code == 2, "no runbook", r)
    r = c.drbook("readiness", "--help")
    check(r.code == 0 and "--metrics-file" in r.out, "help", r)


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Hook.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def test_notify_once_per_change(c):
    flag = book(c, "notified", "n")
    Hook.bodies = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = {"DRBOOK_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{srv.server_address[1]}/hook"}

    def check_now():
        return c.drbook("readiness", "n.yaml", "--runs-dir", "runs", "--notify", "slack",
                        env=env)
    try:
        check(check_now().code == 0 and Hook.bodies == [], "ready: nothing to say")
        os.unlink(flag)
        r = check_now()
        check(r.code == 3, "not ready", r)
        texts = [b.get("text", "") for b in Hook.bodies]
        check(len(texts) == 1 and "notified is NOT READY" in texts[0]
              and "flag-present" in texts[0], f"one alert with the reason: {texts}")
        check(check_now().code == 3 and len(Hook.bodies) == 1, "still not ready: no repeat")
        open(flag, "w").close()
        check(check_now().code == 0, "ready again")
        texts = [b.get("text", "") for b in Hook.bodies]
        check(len(texts) == 2 and "notified is ready again" in texts[1], f"recovery: {texts}")
    finally:
        srv.shutdown()
        srv.server_close()



def test_lease_table_and_evidence_bucket_must_answer(c):
    """With DRBOOK_LEASE_TABLE / DRBOOK_EVIDENCE set, a failover needs them: readiness reads
    the leases (never writes them) and lists the bucket; missing ones make it not ready."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    from motoserver import MotoServer

    book(c, "infra", "i")
    with MotoServer() as moto:
        env = moto.env(DRBOOK_LEASE_TABLE="drbook-leases",
                       DRBOOK_EVIDENCE="s3://drbook-evidence/prod")
        r = c.drbook("readiness", "i.yaml", "--runs-dir", "runs", "--json", env=env)
        check(r.code == 3, "neither the table nor the bucket exists: not ready", r)
        checks = {x["check"]: x for x in json.loads(r.out)["runbooks"][0]["checks"]}
        check(not checks["lease-table"]["ok"] and "drbook-leases" in checks["lease-table"]["error"],
              f"lease-table: {checks}")
        check(not checks["evidence-bucket"]["ok"], f"evidence-bucket: {checks}")
        check(checks["flag-present"]["ok"], "the runbook's own checks ran too")

        ddb = moto.client("dynamodb")
        ddb.create_table(TableName="drbook-leases", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}])
        moto.client("s3").create_bucket(Bucket="drbook-evidence")
        r = c.drbook("readiness", "i.yaml", "--runs-dir", "runs", "--metrics-file", "m.prom",
                     env=env)
        check(r.code == 0, "both answer: ready", r)
        m = metrics(c.path("m.prom"))
        check(m[("drbook_check_ok", (("runbook", "infra"), ("check", "lease-table")))] == 1
              and m[("drbook_check_ok", (("runbook", "infra"), ("check", "evidence-bucket")))]
              == 1, f"metrics {m}")
        check(ddb.scan(TableName="drbook-leases")["Count"] == 0, "no lease was written")
        check(moto.client("s3").list_objects_v2(Bucket="drbook-evidence")["KeyCount"] == 0,
              "nothing was uploaded")


if __name__ == "__main__":
    main(globals())
