"""No orphans: an exec step's program, and what it started, die with drbook (even kill -9);
the log records each child's pid, start time and boot before it runs on; resume refuses
--retry of a step whose recorded child still runs, naming it."""
import json
import os
import signal
import time

from drbtest import check, main

RUNBOOK = """
version: 1
name: orphans
steps:
  - id: work
    action: exec
    with: {{ argv: [sh, -c, "sleep 300 & echo $! > {d}/grandchild.pid; echo $$ > {d}/program.pid; while [ ! -e {d}/release ]; do sleep 0.05; done; kill $!"], timeout: 10m }}
"""


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(path, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def start(c):
    rb = c.write("o.yaml", RUNBOOK.format(d=c.dir))
    p = c.spawn("run", rb, "--audit", "run.jsonl", "--quiet")
    program = wait_for(c.path("program.pid"))
    grandchild = wait_for(c.path("grandchild.pid"))
    # the program may write its pid files before drbook has recorded it (a slow build)
    end = time.monotonic() + 20
    while time.monotonic() < end and '"exec.child"' not in open(c.path("run.jsonl")).read():
        time.sleep(0.02)
    return p, program, grandchild


def test_children_die_with_drbook(c):
    p, program, grandchild = start(c)
    try:
        log = [json.loads(x) for x in open(c.path("run.jsonl"))]
        rec = [r for r in log if r["event"] == "exec.child"]
        check(rec and rec[0]["step"] == "work", "exec.child recorded for the step")
        d = rec[0]["data"]
        check(d["pid"] > 0 and d["start_ticks"] > 0 and d["boot_id"] and d["host"],
              f"pid, start time, boot and host recorded: {d}")
        check(os.getpgid(program) == d["pid"], "the program runs in the recorded group")
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        end = time.monotonic() + 15
        while time.monotonic() < end and (alive(program) or alive(grandchild)):
            time.sleep(0.05)
        check(not alive(program), "the program died with drbook")
        check(not alive(grandchild), "what the program started died too")
    finally:
        for pid in (program, grandchild):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def rechain(path, change):
    """Rewrites the log with change(record) applied and the chain recomputed (no key)."""
    import hashlib
    lines = [json.loads(x) for x in open(path)]
    out = []
    for rec in lines:
        change(rec)
        if out:
            rec["prev"] = hashlib.sha256(out[-1].encode()).hexdigest()
        out.append(json.dumps(rec, separators=(",", ":"), ensure_ascii=False))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def test_resume_refuses_retry_while_the_child_runs(c):
    # With the guardian, a child dies with drbook within microseconds; what the check is for
    # is the child the kernel could not kill yet (uninterruptible I/O) or a guardian that
    # failed. The test stands in for it: the log's exec.child is made to name a live process
    # (same host and boot, its real start time), as it would after such a failure.
    p, program, grandchild = start(c)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    import subprocess
    stray = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        def point_at_stray(rec):
            if rec["event"] == "exec.child":
                rec["data"]["pid"] = stray.pid
                rec["data"]["start_ticks"] = start_ticks(stray.pid)
        rechain(c.path("run.jsonl"), point_at_stray)
        check(c.drbook("audit", "verify", "run.jsonl").code == 0, "the rewritten log verifies")
        r = c.drbook("resume", "run.jsonl", "--retry", "work")
        check(r.code == 3, "resume --retry refused while the child runs", r)
        msg = r.out + r.err
        check(str(stray.pid) in msg and "still runs" in msg and "'sh'" in msg,
              "the refusal names the program and its pid: " + msg)
        log = [json.loads(x) for x in open(c.path("run.jsonl"))]
        check(len([x for x in log if x["event"] == "step.start" and x["step"] == "work"]) == 1,
              "no second copy was started")
    finally:
        stray.kill()
        stray.wait()
    # a pid reused by another process (other start time) is not the child
    open(c.path("release"), "w").close()
    r = c.drbook("resume", "run.jsonl", "--retry", "work", timeout=60)
    check(r.code == 0, "with the first copy gone, --retry runs the step again", r)

if __name__ == "__main__":
    main(globals())
