"""drbook gameday: a schedule of drills; due ones run as drills with their own logs, listed
with their last run; schedule errors are reported with positions."""
import json
import os

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


if __name__ == "__main__":
    main(globals())
