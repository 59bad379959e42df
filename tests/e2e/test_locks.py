"""End-to-end tests of run locks: one machine-wide lock folder (never the working directory or
the runs folder), lists of keys shared between runbooks, the holder named in the refusal, and
a race of two runs started at once from two folders, 100 times."""
import json
import os
import subprocess
import tempfile
import time

from drbtest import DRBOOK, check, main

HOLD = """
    version: 1
    name: {name}
    {lock}
    steps:
      - id: hold
        action: exec
        with: {{ argv: [sh, -c, "while [ ! -e '{release}' ]; do sleep 0.01; done"], timeout: 60s }}
"""


def holder(c, folder, name, lock, release):
    """A runbook in its own folder that holds its locks until the file release exists."""
    os.makedirs(c.path(folder), exist_ok=True)
    return c.write(os.path.join(folder, "hold.yaml"),
                   HOLD.format(name=name, lock=lock, release=release))


def started(path, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and "step.start" in open(path).read():
            return True
        time.sleep(0.02)
    return False


def spawn_in(c, folder, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([DRBOOK, *args], cwd=c.path(folder), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=e, stdin=subprocess.DEVNULL)


def test_two_folders_and_runs_dirs_share_one_lock(c):
    # Two operators, each in their own folder with their own runs folder and HOME: the
    # lock folder is machine-wide, so the second is refused and told who holds it.
    release = c.path("release")
    a = holder(c, "alice", "failover-a", "lock: [db:prod-db]", release)
    b = holder(c, "bob", "failover-b", "lock: [db:prod-db]", release)
    first = spawn_in(c, "alice", "run", a, "--runs-dir", "runs-a", "--quiet",
                     env={"HOME": c.path("alice")})
    try:
        log_a = None
        end = time.monotonic() + 20
        while time.monotonic() < end and not log_a:
            runs = c.path("alice/runs-a")
            logs = os.listdir(runs) if os.path.isdir(runs) else []
            log_a = os.path.join(runs, logs[0]) if logs and started(os.path.join(runs, logs[0]), 5) else None
        check(log_a, "first run started")
        run_a = json.loads(open(log_a).readline())["run"]
        p = subprocess.run([DRBOOK, "run", b, "--runs-dir", "runs-b"], cwd=c.path("bob"),
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HOME=c.path("bob")), stdin=subprocess.DEVNULL)
        check(p.returncode == 3, f"second folder refused with exit 3: {p.returncode} {p.stdout} {p.stderr}")
        msg = p.stdout + p.stderr
        check("db:prod-db" in msg and run_a in msg and "host" in msg,
              "the refusal names the key, the holder's run and host: " + msg)
        runs_b = c.path("bob/runs-b")
        log_b = [json.loads(x) for x in open(os.path.join(runs_b, os.listdir(runs_b)[0]))]
        check(log_b[0]["event"] == "run.start" and log_b[0]["data"]["lock"] == ["db:prod-db"],
              "run.start records the keys")
        check(log_b[-1]["event"] == "run.end" and log_b[-1]["data"]["status"] == "refused",
              "run.end refused")
        check(not [r for r in log_b if r["event"] == "step.start"], "nothing ran")
    finally:
        open(release, "w").close()
        out, err = first.communicate(timeout=60)
    check(first.returncode == 0, "the holder finishes: " + err)


def test_runbooks_sharing_any_key_exclude_each_other(c):
    release = c.path("release")
    region = holder(c, "r", "region", "lock: [db:prod-db, db:prod-db-eu, dns:api]", release)
    multi_az = holder(c, "m", "multi-az", "lock: [db:prod-db]", c.path("never"))
    ecs = c.write("ecs.yaml", """
        version: 1
        name: ecs
        lock: [ecs:prod-us]
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """)
    first = c.spawn("run", region, "--audit", "region.jsonl", "--quiet")
    try:
        check(started(c.path("region.jsonl")), "region run started")
        r = c.drbook("run", multi_az, "--audit", "maz.jsonl")
        check(r.code == 3 and "db:prod-db" in r.out + r.err, "a shared key refuses", r)
        r = c.drbook("run", ecs, "--audit", "ecs.jsonl")
        check(r.code == 0, "disjoint keys run at once", r)
    finally:
        open(release, "w").close()
        first.communicate(timeout=60)
    check(first.returncode == 0, "holder succeeded")


def test_default_lock_folder_is_machine_wide(c):
    # Without DRBOOK_LOCK_DIR, root's locks live in /run/drbook/locks (the contract); the
    # key is the file name, encoded so that distinct keys never share a file.
    if os.geteuid() != 0:
        base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/drbook-{os.geteuid()}",
                            "drbook/locks" if os.environ.get("XDG_RUNTIME_DIR") else "locks")
    else:
        base = "/run/drbook/locks"
    key = f"e2e/default-{os.getpid()}-{time.time_ns()}"
    release = c.path("release")
    rb = holder(c, "d", "default-dir", f"lock: ['{key}']", release)
    env = {k: v for k, v in os.environ.items() if k != "DRBOOK_LOCK_DIR"}
    first = subprocess.Popen([DRBOOK, "run", rb, "--audit", "d.jsonl", "--quiet"], cwd=c.dir,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(started(c.path("d.jsonl")), "run started")
        name = key.replace("/", "%2F") + ".lock"
        path = os.path.join(base, name)
        check(os.path.exists(path), f"lock file {path} exists")
        check(not os.path.exists(c.path("drbook-runs/locks")), "nothing under the runs folder")
        note = open(path).read()
        check(json.loads(open(c.path("d.jsonl")).readline())["run"] in note, "holder note")
    finally:
        open(release, "w").close()
        first.communicate(timeout=60)
        try:
            os.unlink(os.path.join(base, key.replace("/", "%2F") + ".lock"))
        except OSError:
            pass
    check(first.returncode == 0, "holder succeeded")


def test_relative_lock_folder_is_refused(c):
    r = c.drbook("run", c.write("x.yaml", """
        version: 1
        name: x
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """), "--audit", "x.jsonl", env={"DRBOOK_LOCK_DIR": "locks"})
    check(r.code == 3 and "absolute" in r.err + r.out, "relative DRBOOK_LOCK_DIR refused", r)
    check(not os.path.exists(c.path("locks")), "nothing created relative to the cwd")


def test_empty_runs_dir_is_a_usage_error(c):
    rb = c.write("x.yaml", """
        version: 1
        name: x
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """)
    before = set(os.listdir("/"))
    r = c.drbook("run", rb, "--runs-dir", "")
    check(r.code == 2 and "runs-dir" in r.err, "--runs-dir '' -> exit 2", r)
    check(set(os.listdir("/")) == before, "nothing written to /")


if __name__ == "__main__":
    main(globals())
