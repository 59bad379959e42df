"""drbook gameday: a schedule of drills; due ones run as drills with their own logs, listed
with their last run; schedule errors are reported with positions."""
import datetime
import http.server
import json
import os
import threading

from drbtest import EXAMPLES, check, main


def schedule(c, every="1h", extra=""):
    return c.write("gameday.yaml", f"""
        version: 1
        drills:
          - name: fanout
            runbook: {os.path.join(EXAMPLES, "parallel.yaml")}
            every: {every}
            params: {{ each: 10ms, items: [a, b] }}
          - name: hello
            runbook: {os.path.join(EXAMPLES, "hello.yaml")}
            every: 24h
            params: {{ work: 1ms }}
            approve: [approve]
          - name: off
            runbook: {os.path.join(EXAMPLES, "parallel.yaml")}
            every: 1h
            enabled: false
        {extra}
    """)


def test_due_drills_run_once_then_wait(c):
    s = schedule(c)
    r = c.drbook("gameday", s, "--due", "--runs-dir", "runs")
    check(r.code == 0 and r.out.split() == ["fanout", "hello"], "both enabled drills due", r)
    r = c.drbook("gameday", s, "--runs-dir", "runs")
    check(r.code == 0, "both drills succeed", r)
    logs = [f for f in os.listdir(c.path("runs")) if f.endswith(".jsonl")]
    check(len(logs) == 2, f"one log per drill: {logs}")
    for f in logs:
        first = json.loads(open(c.path("runs/" + f)).readline())
        check(first["data"]["drill"] is True, "ran as a drill")
        check(first["data"]["gameday"] in ("fanout", "hello"), "drill name recorded")
    r = c.drbook("gameday", s, "--due", "--runs-dir", "runs")
    check(r.code == 0 and r.out.strip() == "", "nothing due right after", r)
    r = c.drbook("gameday", s, "--list", "--runs-dir", "runs")
    check(r.code == 0 and "succeeded" in r.out and "disabled" in r.out, "list", r)


def test_drill_logs_are_signed_with_the_key(c):
    s = schedule(c)
    key = c.write("key", "game day key\n")
    r = c.drbook("gameday", s, "--runs-dir", "runs", env={"DRBOOK_AUDIT_KEY_FILE": key})
    check(r.code == 0, "drills ran", r)
    for f in os.listdir(c.path("runs")):
        if f.endswith(".jsonl"):
            check('"mac":' in open(c.path("runs/" + f)).read(), f"{f} carries MACs")
            v = c.drbook("audit", "verify", "runs/" + f, "--key-file", key)
            check(v.code == 0, "MACs verify", v)


def test_options_of_other_commands_are_refused(c):
    r = c.drbook("gameday", schedule(c), "--yes")
    check(r.code == 2 and "does not apply" in r.err, "--yes is not a gameday option", r)
    r = c.drbook("plan", os.path.join(EXAMPLES, "parallel.yaml"), "--approve", "x")
    check(r.code == 2, "--approve does not apply to plan", r)


def test_failing_drill_sets_exit_code(c):
    s = c.write("gd.yaml", f"""
        version: 1
        drills:
          - name: needs-approval
            runbook: {os.path.join(EXAMPLES, "hello.yaml")}
            every: 1h
    """)
    r = c.drbook("gameday", s, "--runs-dir", "runs")
    check(r.code == 3, "an approval nobody granted: the drill is refused -> 3", r)


def test_invalid_schedule_is_reported_with_positions(c):
    s = c.write("bad.yaml", """
        version: 1
        drills:
          - name: x
            runbook: nowhere.yaml
            every: often
            colour: blue
    """)
    r = c.drbook("gameday", s)
    check(r.code == 2, "invalid schedule -> 2", r)
    check(f"{s}:5:12: drill 'every' must be a duration" in r.err, "names the place", r)
    check("unknown key 'colour'" in r.err, "misspelt key", r)


def test_bundled_schedule_is_valid(c):
    from drbtest import SRC
    r = c.drbook("gameday", os.path.join(SRC, "runbooks", "gameday.yaml"), "--list",
                 "--runs-dir", "runs")
    check(r.code == 0 and "region-failover-quarterly" in r.out, "the bundled schedule lists", r)
    drills = [ln for ln in r.out.splitlines()[1:] if ln.strip()]
    check(len(drills) == 4 and all(", shadow" in ln for ln in drills),
          "every bundled game-day drill is a shadow drill: production is only read", r)


# ---- cron, blackout windows, notifications, targets, history ----

def utc(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def quick(c, name="quick.yaml", rto="1m", sleep="10ms", scenario="quick"):
    """A runbook whose RTO is about `sleep` against the target `rto`."""
    return c.write(name, f"""
        version: 1
        name: quick
        scenario: {scenario}
        targets: {{ rto: {rto}, rpo: 1h }}
        steps:
          - id: work
            action: sleep
            with: {{ duration: {sleep} }}
    """)


def test_cron_drill_runs_at_its_firings(c):
    rb = quick(c)
    s = c.write("gd.yaml", f"""
        version: 1
        drills:
          - name: every-minute
            runbook: {rb}
            cron: "* * * * *"
          - name: new-year
            runbook: {rb}
            cron: "0 0 1 JAN *"
    """)
    r = c.drbook("gameday", s, "--due", "--runs-dir", "runs")
    # a firing less than catch_up (2h) ago and no run since: due; New Year is not (never ran,
    # but its last firing is months old unless today is 1 January)
    now = datetime.datetime.now(datetime.timezone.utc)
    want = ["every-minute"] + (["new-year"] if now.month == 1 and now.day == 1 and now.hour < 2
                               else [])
    check(r.code == 0 and r.out.split() == want, f"due: {want}", r)
    r = c.drbook("gameday", s, "--runs-dir", "runs")
    check(r.code == 0, "the cron drill ran", r)
    r = c.drbook("gameday", s, "--list", "--json", "--runs-dir", "runs")
    rows = {x["drill"]: x for x in json.loads(r.out)}
    check(rows["every-minute"]["last_outcome"] == "succeeded", "ran and succeeded", r)
    nxt = utc(rows["every-minute"]["next_due"])
    last = utc(rows["every-minute"]["last_run"])
    check(nxt.second == 0 and last < nxt <= last + datetime.timedelta(minutes=1),
          "next due: the next whole minute after the run", r)
    ny = utc(rows["new-year"]["next_due"]) if rows["new-year"]["next_due"] != "now" else None
    check(ny is None or (ny.month, ny.day, ny.hour, ny.minute) == (1, 1, 0, 0),
          "New Year's drill next due on 1 January 00:00 UTC", r)


def test_invalid_cron_is_reported_at_its_column(c):
    s = c.write("bad.yaml", """
        version: 1
        drills:
          - name: x
            runbook: x.yaml
            cron: "0 25 * * MON"
          - name: y
            runbook: y.yaml
            cron: "0 3 * * FUNDAY"
          - name: z
            runbook: z.yaml
            cron: "0 3 * *"
          - name: w
            runbook: w.yaml
            every: 1h
            cron: "0 3 * * *"
    """)
    r = c.drbook("gameday", s, "--list")
    check(r.code == 2, "invalid cron -> 2", r)
    check(f"{s}:5:14: invalid cron expression: hour value 25 is out of range 0-23" in r.err,
          "hour out of range, at the 25", r)
    check(f"{s}:8:20: invalid cron expression: unknown day of week name (SUN-SAT)" in r.err,
          "bad day name, at the name", r)
    check(f"{s}:11:19:" in r.err and "5 fields" in r.err, "missing field", r)
    check(f"{s}:14:12: a drill has 'every' or 'cron', not both" in r.err, "both", r)


def test_blackout_window_keeps_a_due_drill_from_starting(c):
    rb = quick(c)
    now = datetime.datetime.now(datetime.timezone.utc)
    frm = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s = c.write("gd.yaml", f"""
        version: 1
        blackout:
          - {{ from: "{frm}", until: "{until}", reason: change freeze }}
        drills:
          - name: frozen
            runbook: {rb}
            every: 1h
    """)
    r = c.drbook("gameday", s, "--due", "--runs-dir", "runs")
    check(r.code == 0 and r.out.strip() == "", "not due inside the window", r)
    r = c.drbook("gameday", s, "--runs-dir", "runs")
    check(r.code == 0 and "blackout until " + until in r.out and "change freeze" in r.out,
          "says why it did not run", r)
    check(not os.path.exists(c.path("runs")) or not os.listdir(c.path("runs")), "no run")
    r = c.drbook("gameday", s, "--list", "--runs-dir", "runs")
    check("blackout until" in r.out, "--list shows the window", r)
    # a recurring window around every minute of the day, per drill
    s = c.write("gd2.yaml", f"""
        version: 1
        drills:
          - name: nights-only
            runbook: {rb}
            every: 1h
            blackout: [{{ cron: "0 0 * * *", duration: 24h, reason: always }}]
          - name: free
            runbook: {rb}
            every: 1h
    """)
    r = c.drbook("gameday", s, "--due", "--runs-dir", "runs")
    check(r.out.split() == ["free"], "a drill's own window holds only that drill", r)


def test_blackout_format_errors_have_places(c):
    s = c.write("bad.yaml", """
        version: 1
        blackout:
          - { cron: "0 9 * * MON-FRI" }
          - { from: "2026-12-24T00:00:00Z", until: "2026-12-20T00:00:00Z" }
          - { cron: "0 9 * * MON-FRI", duration: 8h, from: "2026-12-24T00:00:00Z" }
        drills:
          - { name: x, runbook: x.yaml, every: 1h }
    """)
    r = c.drbook("gameday", s, "--list")
    check(r.code == 2, "invalid -> 2", r)
    check(f"{s}:3:5: a recurring blackout needs 'duration'" in r.err, "duration missing", r)
    check(f"{s}:4:44: blackout 'until' must be after 'from'" in r.err, "until before from", r)
    check(f"{s}:5:5: a blackout window is either recurring" in r.err, "both kinds", r)


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Hook.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def webhook():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_missed_target_fails_the_drill_and_notifies(c):
    slow = quick(c, "slow.yaml", rto="1s", sleep="1200ms")
    ok = quick(c, "ok.yaml")
    s = c.write("gd.yaml", f"""
        version: 1
        drills:
          - name: slow
            runbook: {slow}
            every: 1h
            notify: {{ channel: slack, severity: warning }}
          - name: fine
            runbook: {ok}
            every: 1h
            notify: [{{ channel: slack, on: [success], text: "drill fine: ${{run.status}}" }}]
    """)
    Hook.bodies = []
    srv = webhook()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        r = c.drbook("gameday", s, "--runs-dir", "runs",
                     env={"DRBOOK_SLACK_WEBHOOK_URL": url})
    finally:
        srv.shutdown()
        srv.server_close()
    check(r.code == 1, "a drill that missed its RTO target fails the game day", r)
    check("RTO" in r.out and "missed its target of 1s" in r.out, "says which target", r)
    texts = [b.get("text", "") for b in Hook.bodies]
    check(any("game-day drill slow: failed: RTO" in t for t in texts),
          f"the failure went to the drill's channel: {texts}", r)
    check(any("drill fine: succeeded" in t for t in texts), f"success notified: {texts}", r)
    logs = {}
    for f in os.listdir(c.path("runs")):
        if not f.endswith(".jsonl"):
            continue
        recs = [json.loads(x) for x in open(c.path("runs/" + f))]
        logs[recs[0]["data"]["gameday"]] = recs
    end = logs["slow"][-1]
    check(end["event"] == "run.end" and end["data"]["status"] == "failed"
          and end["data"]["exit_code"] == 1, "the drill's run failed", r)
    check(any(x["event"] == "call" and (x["step"] or "").startswith("gameday.notify")
              for x in logs["slow"]), "the notification is in the drill's log")
    r = c.drbook("gameday", s, "--history", "--json", "--runs-dir", "runs")
    h = json.loads(r.out)
    d = {x["name"]: x for x in h["drills"]}
    check(d["slow"]["counts"]["failed"] == 1 and d["slow"]["runs"][0]["rto"] == "missed",
          "history: failed, RTO missed", r)
    check(d["fine"]["counts"]["succeeded"] == 1 and d["fine"]["runs"][0]["rto"] == "met",
          "history: succeeded, RTO met", r)


def test_missed_rpo_target_fails_the_drill(c):
    # the run measured more data loss than the runbook's RPO target allows: a failed drill
    lossy = c.write("lossy.yaml", """
        version: 1
        name: lossy
        targets: { rto: 1m, rpo: 1h }
        steps:
          - id: measure
            action: lua
            read_only: true
            script: return { rpo_s = 7200 }
    """)
    s = c.write("gd.yaml", f"""
        version: 1
        drills:
          - {{ name: lossy, runbook: {lossy}, every: 1h }}
    """)
    r = c.drbook("gameday", s, "--runs-dir", "runs")
    check(r.code == 1, "a drill that missed its RPO target fails the game day", r)
    check("RPO 2h missed its target of 1h" in r.out + r.err, "says which target", r)
    r = c.drbook("gameday", s, "--history", "--json", "--runs-dir", "runs")
    d = {x["name"]: x for x in json.loads(r.out)["drills"]}
    run = d["lossy"]["runs"][0]
    check(d["lossy"]["counts"]["failed"] == 1 and (run["rto"], run["rpo"]) == ("met", "missed"),
          f"history: failed, RTO met, RPO missed ({run})", r)


def fake_log(c, name, drill, start, rto, end_targets=None, start_targets=None,
             status="succeeded", scenario="region-outage"):
    """An audit log as an older (or newer) engine wrote it; history reads, not verifies."""
    recs = [{"seq": 1, "ts": start, "run": name, "event": "run.start", "step": None,
             "data": {"name": "region-failover", "scenario": scenario, "mode": "run",
                      "drill": True, "gameday": drill, "targets": start_targets or {}}},
            {"seq": 2, "ts": start, "run": name, "event": "run.end", "step": None,
             "data": {"status": status, "exit_code": 0 if status == "succeeded" else 1,
                      "rto_s": rto, **({"targets": end_targets} if end_targets else {})}}]
    os.makedirs(c.path("runs"), exist_ok=True)
    with open(c.path(f"runs/{name}.jsonl"), "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def history_schedule(c):
    rb = quick(c, rto="15m")
    return c.write("gd.yaml", f"""
        version: 1
        drills:
          - {{ name: region, runbook: {rb}, every: 168h }}
          - {{ name: region-b, runbook: {rb}, every: 168h }}
    """)


def test_history_reads_every_log_format_and_the_trend(c):
    s = history_schedule(c)
    # newest format: targets.rto met|missed; older: rto_met; oldest: targets only in run.start
    fake_log(c, "r1", "region", "2026-01-01T03:00:00Z", 800,
             start_targets={"rto_s": 900})
    fake_log(c, "r2", "region", "2026-01-08T03:00:00Z", 950,
             end_targets={"rto_s": 900, "rto_met": False})
    fake_log(c, "r3", "region-b", "2026-01-15T03:00:00Z", 700,
             end_targets={"rto": "met", "rpo": "unknown"})
    fake_log(c, "r4", "region", "2026-01-22T03:00:00Z", 600,
             end_targets={"rto": "met", "rpo": "unknown"})
    fake_log(c, "r5", "region", "2026-01-29T03:00:00Z", 500, start_targets={})
    fake_log(c, "other", "not-in-schedule", "2026-01-29T04:00:00Z", 5)
    r = c.drbook("gameday", s, "--history", "--json", "--runs-dir", "runs")
    check(r.code == 0, "history", r)
    h = json.loads(r.out)
    d = {x["name"]: x for x in h["drills"]}
    runs = {x["run"]: x for x in d["region"]["runs"]}
    check(list(runs) == ["r1", "r2", "r4", "r5"], "the drill's runs, oldest first", r)
    check(runs["r1"]["rto"] == "met", "oldest format: run.start's target", r)
    check(runs["r2"]["rto"] == "missed" and runs["r2"]["outcome"] == "failed",
          "rto_met false: missed, and the drill failed", r)
    check(runs["r4"]["rto"] == "met", "newest format read as is", r)
    check(runs["r5"]["rto"] == "met", "no target in the log: the runbook's (15m)", r)
    check(d["region"]["counts"] == {"drills": 4, "succeeded": 3, "failed": 1, "refused": 0,
                                    "interrupted": 0}, "counts", r)
    sc = {x["scenario"]: x for x in h["scenarios"]}["region-outage"]
    check(sc["trend"] == "improving" and sc["window"] == 5 and sc["rto_slope_s"] < 0,
          "800, 950, 700, 600, 500 across both drills: improving", r)
    check("not-in-schedule" not in r.out, "other schedules' drills left out", r)
    r = c.drbook("gameday", s, "--history", "--runs-dir", "runs")
    check("improving" in r.out and "missed" in r.out, "text history", r)
    r = c.drbook("gameday", s, "--history", "--format", "html", "--runs-dir", "runs")
    check(r.code == 0 and "<svg class=\"trend\"" in r.out and "data-run=\"r5\"" in r.out
          and "class=\"target\"" in r.out and "<script" not in r.out and "http://" not in
          r.out.replace("http://www.w3.org/2000/svg", ""), "self-contained SVG chart", r)


def test_worsening_trend(c):
    s = history_schedule(c)
    for i, rto in enumerate([300, 320, 400, 500, 650, 700]):
        fake_log(c, f"w{i}", "region", f"2026-02-0{i + 1}T03:00:00Z", rto)
    r = c.drbook("gameday", s, "--history", "--json", "--runs-dir", "runs")
    sc = json.loads(r.out)["scenarios"][0]
    check(sc["trend"] == "worsening" and sc["window"] == 5, "the last five RTOs grow", r)


if __name__ == "__main__":
    main(globals())
