"""SIGINT/SIGTERM stop a run within 2 s: no new step starts, the running action stops,
run.end is written, the declared rollbacks run and the lock is freed; a second signal during
the rollbacks skips the rest and the log says so."""
import json
import os
import signal
import time

from drbtest import check, main

RUNBOOK = """
version: 1
name: signals
lock: [signals-test]
on_failure: rollback
steps:
  - id: a
    action: exec
    with: {{ argv: [touch, "{d}/a"] }}
    rollback: {{ action: exec, with: {{ argv: [touch, "{d}/a-undone"] }} }}
  - id: b
    action: exec
    with: {{ argv: [touch, "{d}/b"] }}
    rollback: {{ action: exec, with: {{ argv: [touch, "{d}/b-undone"] }} }}
  - id: c
    action: exec
    with: {{ argv: [touch, "{d}/c"] }}
    rollback: {{ action: exec, with: {{ argv: [sh, -c, "touch {d}/c-undoing; sleep {slow}; touch {d}/c-undone"] }} }}
  - id: long
    action: sleep
    with: {{ duration: 60s }}
  - id: never
    action: exec
    with: {{ argv: [touch, "{d}/never"] }}
"""


def wait_started(c, log, step, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(c.path(log)):
            for line in open(c.path(log)):
                r = json.loads(line)
                if r["event"] == "step.start" and r["step"] == step:
                    return
        time.sleep(0.02)
    raise AssertionError(f"step {step} never started")


def wait_file(path, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not os.path.exists(path):
        time.sleep(0.02)
    return os.path.exists(path)


def test_first_signal_stops_and_rolls_back(c):
    rb = c.write("s.yaml", RUNBOOK.format(d=c.dir, slow=0))
    p = c.spawn("run", rb, "--audit", "run.jsonl", "--quiet")
    wait_started(c, "run.jsonl", "long")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    took = time.monotonic() - t0
    check(took < 2.0, f"stopped within 2 s ({took:.2f}s)")
    check(p.returncode == 1, f"exit 1 (something had changed): {p.returncode}")
    log = [json.loads(x) for x in open(c.path("run.jsonl"))]
    end = log[-1]
    check(end["event"] == "run.end" and end["data"]["status"] == "rolled_back",
          f"run.end rolled_back: {end['data']}")
    check("interrupted by a signal" in end["data"].get("error", ""), "the reason is the signal")
    check(all(os.path.exists(c.path(f"{s}-undone")) for s in "abc"), "every rollback ran")
    check(not os.path.exists(c.path("never")), "no step started after the signal")
    r = c.drbook("run", c.write("again.yaml", """
        version: 1
        name: again
        lock: [signals-test]
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """), "--audit", "again.jsonl")
    check(r.code == 0, "the lock was freed", r)


def test_the_runbooks_policy_decides_not_the_interrupted_steps(c):
    """The signal cuts short a step whose own policy is abort (a wait that must not undo the
    failover when it fails by itself): the operator's stop still runs the runbook's
    declared rollbacks, whichever step it happened to interrupt."""
    text = RUNBOOK.format(d=c.dir, slow=0).replace("  - id: long\n",
                                                   "  - id: long\n    on_failure: abort\n")
    check("on_failure: abort" in text, "the runbook under test has the step policy")
    p = c.spawn("run", c.write("s.yaml", text), "--audit", "run.jsonl", "--quiet")
    wait_started(c, "run.jsonl", "long")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    check(p.returncode == 1, f"exit 1: {p.returncode}")
    end = [json.loads(x) for x in open(c.path("run.jsonl"))][-1]
    check(end["data"]["status"] == "rolled_back", f"run.end rolled_back: {end['data']}")
    check(all(os.path.exists(c.path(f"{s}-undone")) for s in "abc"), "every rollback ran")


def test_second_signal_skips_the_rollbacks(c):
    rb = c.write("s.yaml", RUNBOOK.format(d=c.dir, slow=30))
    p = c.spawn("run", rb, "--audit", "run.jsonl", "--quiet")
    wait_started(c, "run.jsonl", "long")
    p.send_signal(signal.SIGINT)
    check(wait_file(c.path("c-undoing")), "the first signal started the rollbacks")
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    took = time.monotonic() - t0
    check(took < 2.0, f"the second signal ended the run within 2 s ({took:.2f}s)")
    check(p.returncode == 1, f"exit 1: {p.returncode}")
    log = [json.loads(x) for x in open(c.path("run.jsonl"))]
    skipped = [r["step"] for r in log if r["event"] == "rollback.skipped"]
    check(skipped == ["b", "a"], f"the remaining compensations are recorded as skipped: {skipped}")
    end = log[-1]["data"]
    check(end["status"] == "failed" and "needs a human" in end.get("error", ""),
          f"run.end says a human must look: {end}")
    check(not os.path.exists(c.path("a-undone")) and not os.path.exists(c.path("b-undone")),
          "skipped compensations did not run")


if __name__ == "__main__":
    main(globals())
