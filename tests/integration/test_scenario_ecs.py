#!/usr/bin/env python3
# Scenario 1 end to end: runbooks/ecs-task-failure.yaml against the sandbox. One sandbox for
# the file; cases: nothing degraded (no change), an approval that is not given (exit 3, no
# change), an unknown service (preflight refuses), and the repair of two services whose tasks
# were stopped: the emulated services must report running == desired, only the degraded
# services get new tasks, the audit log verifies and run.end holds RTO/RPO/targets. The
# scheduler's own replacement is pushed far out (DRB_SANDBOX_ECS_REPLACE_DELAY) so that only
# the runbook can have repaired the services. SNS alerts are received by a loopback HTTP
# subscriber. The repair also checks the services' CloudWatch alarms (ALARM before, OK after:
# the sandbox's alarms follow the task counts) and that every service kept serving through
# the sandbox's load balancer stand-in, which a client asks every 50 ms throughout; a service
# with no task left must then answer 503 (the check can fail).
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))

from sandbox_lib.testkit import run_test  # noqa: E402

DRBOOK = os.environ.get("DRBOOK")
SRC = os.environ.get("SRC") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNBOOK = os.path.join(SRC, "runbooks", "ecs-task-failure.yaml")
if not DRBOOK or not os.access(DRBOOK, os.X_OK):
    sys.exit("DRBOOK must name the built drbook binary (ctest sets it)")


class Alerts:
    """A loopback HTTP endpoint subscribed to the SNS topic: what drbook published arrives."""

    def __init__(self):
        self.messages = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                try:
                    outer.messages.append(json.loads(self.rfile.read(n)))
                except ValueError:
                    pass
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = HTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.srv.server_port

    def take(self):
        got, self.messages = self.messages, []
        return got

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Drbook:
    """Runs drbook against the sandbox in a temporary folder, with an audit key."""

    def __init__(self, sb, tmp, runbook=RUNBOOK, extra_env=None):
        self.sb, self.tmp, self.runbook = sb, tmp, runbook
        self.key = os.path.join(tmp, "audit.key")
        with open(self.key, "w") as f:
            f.write(secrets.token_hex(32))
        self.env = dict(os.environ, **sb.vars)
        self.env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        self.env.update(extra_env or {})
        self.env.pop("DRBOOK_AUDIT_KEY_FILE", None)
        self.n = 0
        self.sanitizer_reports = []     # an ASan/UBSan build reports on stderr

    def run(self, *params, yes=True, timeout=180):
        """drbook run --drill with the sandbox's topic and PARAMS ("k=v"); (proc, log, path)."""
        self.n += 1
        audit = os.path.join(self.tmp, "run%d.jsonl" % self.n)
        argv = [DRBOOK, "run", self.runbook, "--drill", "--audit", audit, "--audit-key-file",
                self.key, "-p", "topic_arn=" + self.sb.vars["DRB_SANDBOX_TOPIC_ARN"]]
        for p in params:
            argv += ["-p", p]
        if yes:
            argv.append("--yes")
        p = subprocess.run(argv, cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        log = []
        if os.path.exists(audit):
            with open(audit) as f:
                log = [json.loads(line) for line in f if line.strip()]
        print("  drbook exit %d (%s)" % (p.returncode, os.path.basename(audit)), flush=True)
        if any(m in p.stderr for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")):
            self.sanitizer_reports.append(os.path.basename(audit))
            print(p.stderr[-4000:], flush=True)
        if p.returncode not in (0, 3):
            print(p.stdout[-3000:], p.stderr[-2000:], flush=True)
        return p, log, audit

    def verify(self, audit):
        return subprocess.run([DRBOOK, "audit", "verify", audit, "--key-file", self.key],
                              env=self.env, capture_output=True, text=True, timeout=60)


def calls(log, operation):
    return [r for r in log if r["event"] == "call" and r["data"].get("operation") == operation]


def run_end(log):
    ends = [r for r in log if r["event"] == "run.end"]
    return ends[-1]["data"] if ends else {}


def step_status(log, step):
    ends = [r for r in log if r["event"] == "step.end" and r["step"] == step]
    return ends[-1]["data"]["status"] if ends else None


def services_state(ecs, names):
    out = {}
    for s in ecs.describe_services(cluster="prod-us", services=names)["services"]:
        out[s["serviceName"]] = (s["desiredCount"], s["runningCount"])
    return out


def task_arns(ecs, names):
    return {n: sorted(ecs.list_tasks(cluster="prod-us", serviceName=n)["taskArns"]) for n in names}


def subjects(msgs):
    return [m.get("Subject") or "" for m in msgs if m.get("Type") == "Notification"]


def alarm_states(sb, names):
    cw = sb.client("cloudwatch")
    got = cw.describe_alarms(AlarmNames=["prod-us-%s-running-tasks" % n for n in names])
    return {a["AlarmName"][len("prod-us-"):-len("-running-tasks")]: a["StateValue"]
            for a in got["MetricAlarms"]}


def lb_get(sb, service):
    """(status, body) of GET /SERVICE/health through the load balancer stand-in."""
    try:
        with urllib.request.urlopen("%s/%s/health" % (sb.vars["DRB_SANDBOX_LB_URL"], service),
                                    timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}
    except OSError as e:
        return None, {"error": str(e)}


class Clients:
    """The application's users: every service through the load balancer, every 50 ms."""

    def __init__(self, sb, names):
        self.sb, self.names, self.answers = sb, names, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            for n in self.names:
                code, body = lb_get(self.sb, n)
                self.answers.append((n, code, body.get("task")))
            self._stop.wait(0.05)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(30)


def case_nothing_to_do(sb, c, d, alerts, ecs, names):
    before = task_arns(ecs, names)
    p, log, audit = d.run()
    c.eq(p.returncode, 0, "nothing below desired count: exit 0")
    c.eq(calls(log, "UpdateService"), [], "nothing below desired count: no UpdateService call")
    c.eq(step_status(log, "approve"), "skipped", "no change, so no approval asked")
    c.ok(task_arns(ecs, names) == before, "no task was replaced")
    end = run_end(log)
    c.eq(end.get("status"), "succeeded", "run.end status succeeded")
    c.eq(end.get("rpo_s"), 0.0, "run.end rpo_s 0 (no data involved)")
    c.ok(isinstance(end.get("rto_s"), float), "run.end holds rto_s")
    c.eq(d.verify(audit).returncode, 0, "the audit log verifies with its key")
    subj = subjects(alerts.take())
    c.ok(any("started" in s and s.startswith("[drill]") for s in subj),
         "SNS got the start alert, marked drill (%s)" % subj)
    c.ok(any("succeeded" in s for s in subj), "SNS got the end alert with the outcome")


def case_no_approval(sb, c, d, alerts, ecs, names):
    inj = sb.inject("ecs-task", "--service", "payment")
    c.eq(services_state(ecs, ["payment"])["payment"], (2, 1), "inject: payment runs 1 of 2")
    p, log, audit = d.run(yes=False)
    c.eq(p.returncode, 3, "without --yes and without a terminal the run is refused (exit 3)")
    c.eq(calls(log, "UpdateService"), [], "refused: no UpdateService call")
    c.eq(run_end(log).get("status"), "refused", "run.end status refused")
    c.eq(services_state(ecs, ["payment"])["payment"], (2, 1), "refused: payment still 1 of 2")
    c.ok(inj["task"] not in task_arns(ecs, ["payment"])["payment"],
         "the stopped task is not running")
    subj = subjects(alerts.take())
    c.ok(any("refused" in s for s in subj), "SNS got the failure alert (%s)" % subj)


def case_unknown_service(sb, c, d, alerts, ecs, names):
    p, log, audit = d.run("services=payment,billing")
    c.eq(p.returncode, 3, "an unknown service is refused by preflight (exit 3)")
    c.eq(calls(log, "UpdateService"), [], "preflight refusal: no UpdateService call")
    c.ok("services-exist" in (run_end(log).get("error") or ""),
         "run.end names the failed preflight (%s)" % run_end(log).get("error"))
    c.eq(services_state(ecs, ["payment"])["payment"], (2, 1), "still untouched")
    subj = subjects(alerts.take())
    c.ok(any("refused" in s for s in subj), "a refused preflight still alerts (%s)" % subj)


def case_repair(sb, c, d, alerts, ecs, names):
    clients = Clients(sb, names).start()
    try:
        time.sleep(0.3)
        sb.inject("ecs-task", "--service", "auth")
        state = services_state(ecs, names)
        c.eq(sorted(n for n, (want, run) in state.items() if run < want), ["auth", "payment"],
             "before: auth and payment are below their desired count")
        c.ok(wait_alarms(sb, names, {n: "ALARM" if n in ("auth", "payment") else "OK"
                                     for n in names}),
             "before: the alarms of auth and payment are in ALARM, the others OK (%s)" %
             alarm_states(sb, names))
        before = task_arns(ecs, names)
        p, log, audit = d.run("service_alarm={cluster}-{service}-running-tasks",
                              "health_url=%s/{service}/health" % sb.vars["DRB_SANDBOX_LB_URL"])
        time.sleep(0.3)
    finally:
        clients.stop()
    got = clients.answers
    c.ok(len(got) >= 10 * len(names) and all(code == 200 for _, code, _ in got),
         "every service kept serving through the load balancer: %d answers, not 200: %s" %
         (len(got), [(n, code) for n, code, _ in got if code != 200][:5]))
    for n in ("auth", "payment"):
        served_by = set(t for svc, _, t in got if svc == n)
        c.ok(served_by & set(before[n]) and served_by - set(before[n]),
             "%s was served by its old task, then by new ones (the repair happened under "
             "load)" % n)
    ab = step_result(log, "alarms-before") or {}
    c.eq((ab.get("checked"), ab.get("in_alarm"),
          {n: (a.get("name"), a.get("state")) for n, a in (ab.get("alarms") or {}).items()}),
         (True, 2, {"auth": ("prod-us-auth-running-tasks", "ALARM"),
                    "payment": ("prod-us-payment-running-tasks", "ALARM")}),
         "the audit log: both alarms in ALARM before the change")
    ac = step_result(log, "alarms-cleared") or {}
    c.eq(ac.get("went_to_alarm_and_back"), ["auth", "payment"],
         "the audit log: both alarms went to ALARM and back to OK")
    c.ok(all(a.get("now") == "OK" and a.get("ok_since", "") > a.get("alarm_since", "~")
             for a in (ac.get("alarms") or {}).values()) and len(ac.get("alarms") or {}) == 2,
         "OK since after the ALARM (%s)" % ac.get("alarms"))
    c.eq(alarm_states(sb, names), {n: "OK" for n in names},
         "after: every service's alarm is OK (boto3 DescribeAlarms)")
    c.eq(step_status(log, "serving"), "ok", "the run checked every service through the load "
         "balancer")
    c.eq(p.returncode, 0, "the repair run exits 0")
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-2000:], flush=True)
    state = services_state(ecs, names)
    c.eq(state, {n: (2, 2) for n in names}, "after: every service runs 2 of 2 (boto3)")
    after = task_arns(ecs, names)
    for n in ("auth", "payment"):
        c.ok(not set(after[n]) & set(before[n]) and len(after[n]) == 2,
             "%s runs two new tasks (a forced deployment, not the scheduler)" % n)
    for n in names:
        if n not in ("auth", "payment"):
            c.ok(after[n] == before[n], "%s (healthy) kept its tasks" % n)
    upd = calls(log, "UpdateService")
    c.eq(sorted(r["data"]["request"]["body"]["service"] for r in upd), ["auth", "payment"],
         "UpdateService was called for the degraded services only")
    c.ok(all(r["data"]["request"]["body"].get("forceNewDeployment") is True and
             "desiredCount" not in r["data"]["request"]["body"] for r in upd),
         "with forceNewDeployment and no change of the desired count")
    approvals = [r for r in log if r["event"] == "step.end" and r["step"] == "approve"]
    first_update = min(r["seq"] for r in upd) if upd else 0
    c.ok(approvals and approvals[0]["seq"] < first_update, "the approval came before the change")
    end = run_end(log)
    c.eq(end.get("status"), "succeeded", "run.end status succeeded")
    c.ok(isinstance(end.get("rto_s"), float) and end["rto_s"] < 60,
         "run.end rto_s under the 1m target (%s)" % end.get("rto_s"))
    c.eq(end.get("rpo_s"), 0.0, "run.end rpo_s 0")
    t = end.get("targets") or {}
    c.eq((t.get("rto_s"), t.get("rto"), t.get("rpo_s"), t.get("rpo")),
         (60.0, "met", 0.0, "met"), "run.end targets: rto 1m met, rpo 0 met")
    v = d.verify(audit)
    c.eq(v.returncode, 0, "drbook audit verify: intact (%s)" % (v.stdout + v.stderr).strip())
    subj = subjects(alerts.take())
    c.ok(any("started" in s for s in subj) and any("succeeded" in s for s in subj),
         "SNS got the start and end alerts (%s)" % subj)
    c.ok(not any("failed" in s or "refused" in s for s in subj), "and no failure alert")


def step_result(log, step):
    ends = [r for r in log if r["event"] == "step.end" and r["step"] == step]
    return ends[-1]["data"].get("result") if ends else None


def wait_alarms(sb, names, want, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if alarm_states(sb, names) == want:
            return True
        time.sleep(0.2)
    return False


def case_no_task_left(sb, c, d, alerts, ecs, names):
    """The stand-in and the alarm can fail: a service with no task left answers 503."""
    c.eq(lb_get(sb, "training")[0], 200, "training answers through the load balancer")
    sb.inject("ecs-task", "--service", "training")
    sb.inject("ecs-task", "--service", "training")
    c.eq(services_state(ecs, ["training"])["training"], (2, 0), "training runs 0 of 2")
    c.eq(lb_get(sb, "training")[0], 503, "with no task left the load balancer answers 503")
    c.ok(wait_alarms(sb, ["training"], {"training": "ALARM"}), "and its alarm is in ALARM")
    st = sb.status()[1].get("load_balancer", {}).get("stats", {}).get("training", {})
    c.ok(st.get("failed", 0) >= 1 and st.get("first_failure"),
         "sandbox status counts the failed answers (%s)" % st)


def body(sb, c):
    sb.up()
    names = sb.vars["DRB_SANDBOX_SERVICES"].split()
    ecs = sb.client("ecs")
    alerts = Alerts()
    tmp = tempfile.mkdtemp(prefix="drb-scen-ecs-")
    try:
        sb.client("sns").subscribe(TopicArn=sb.vars["DRB_SANDBOX_TOPIC_ARN"], Protocol="http",
                                   Endpoint=alerts.url)
        d = Drbook(sb, tmp)
        v = subprocess.run([DRBOOK, "validate", RUNBOOK], capture_output=True, text=True)
        c.eq((v.returncode, v.stdout + v.stderr), (0, ""), "drbook validate prints nothing")
        for case in (case_nothing_to_do, case_no_approval, case_unknown_service, case_repair,
                     case_no_task_left):
            print("# %s" % case.__name__, flush=True)
            case(sb, c, d, alerts, ecs, names)
        c.eq(d.sanitizer_reports, [], "no sanitizer report from any drbook run")
    finally:
        alerts.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    # the scheduler would replace a stopped task after 10 s by itself; push that out of the
    # test's reach so that a repaired service proves the runbook did it
    sys.exit(run_test(body, {"DRB_SANDBOX_ECS_REPLACE_DELAY": "600"}))
