"""End-to-end tests of the audit log's durability promises, with the fault-injection shim
(tests/tools/fault_shim.c) preloaded into drbook: every record is one write(2) and one fsync
before the action it announces starts, and a failed write or fsync stops the run with the
reason, runs nothing more (not even a compensation, which could not be recorded) and leaves a
log that verifies."""
import os

from drbtest import check, events, main

SHIM = os.path.join(os.environ.get("BUILD", ""), "tests", "libdrb_fault.so")

ROLLBACK_RUNBOOK = """
    version: 1
    name: faults
    on_failure: rollback
    steps:
      - id: one
        action: exec
        with: { argv: [sh, -c, "echo action one >> calls; touch one"] }
        rollback:
          action: exec
          with: { argv: [touch, undone] }
      - id: two
        action: exec
        with: { argv: [sh, -c, "echo action two >> calls; touch two"] }
      - id: three
        action: exec
        with: { argv: [touch, three] }
"""


def shim_env(c, fail=None):
    check(os.path.isfile(SHIM), f"the fault shim {SHIM} is not built (target drb_fault)")
    env = {"LD_PRELOAD": SHIM, "DRB_FAULT_MATCH": "*/run.jsonl",
           "DRB_FAULT_LOG": c.path("calls"),
           # an ASan build wants its runtime first in the library list; the shim is not
           # instrumented, so the order does not matter here
           "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
           .lstrip(":")}
    if fail:
        env["DRB_FAULT_FAIL"] = fail
    return env


def calls(c):
    with open(c.path("calls")) as f:
        return [line.split()[0] for line in f if line.strip()]


def clean_run(c):
    """The runbook, run once without faults: its path and the records of that run."""
    rb = c.write("r.yaml", ROLLBACK_RUNBOOK)
    clean = c.drbook("run", rb, "--audit", "clean.jsonl")
    check(clean.code == 0, "clean run", clean)
    return rb, c.log("clean.jsonl")


def reset(c):
    """Removes what the last run left (the steps' marker files, the shim's call list, its log)."""
    for f in ("one", "two", "three", "undone", "calls", "run.jsonl"):
        if os.path.exists(c.path(f)):
            os.unlink(c.path(f))


def test_every_record_is_one_write_and_one_fsync(c):
    rb = c.write("r.yaml", ROLLBACK_RUNBOOK)
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=shim_env(c))
    check(r.code == 0, "the run succeeds under the shim", r)
    log = c.log()
    seen = calls(c)
    writes = [x for x in seen if x in ("write", "pwrite", "writev")]
    syncs = [x for x in seen if x in ("fsync", "fdatasync")]
    check(len(writes) == len(log), f"{len(log)} records, {len(writes)} writes: one write each")
    check(len(syncs) == len(log), f"{len(log)} records, {len(syncs)} fsyncs: one fsync each")
    check(seen[:2] == ["write", "fsync"] and seen[-2:] == ["write", "fsync"],
          f"each write is followed by its fsync: {seen}")
    # the action of a step starts only once its step.start record is on disk
    synced, at = 0, {}
    for line in open(c.path("calls")).read().split("\n"):
        if line.split()[:1] in (["fsync"], ["fdatasync"]):
            synced += 1
        elif line.startswith("action "):
            at[line.split()[1]] = synced
    for step in ("one", "two"):
        start_seq = events(log, "step.start", step)[0]["seq"]
        check(at.get(step, -1) >= start_seq,
              f"step {step}: its action ran after {at.get(step)} fsyncs, before record "
              f"{start_seq} (its step.start) was synced")


def test_fsync_failure_stops_the_run(c):
    rb, records = clean_run(c)
    k = events(records, "step.start", "two")[0]["seq"]
    reset(c)
    # the fsync of step two's step.start record fails
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=shim_env(c, f"fsync:{k}:EIO"))
    check(r.code == 1, "a failed fsync fails the run", r)
    check("fsync" in r.out + r.err and "Input/output error" in r.out + r.err,
          "the reason is reported", r)
    check(os.path.exists(c.path("one")), "step one ran before the failure")
    check(not os.path.exists(c.path("two")), "step two's action must not start unrecorded")
    check(not os.path.exists(c.path("three")), "nothing after it runs")
    check(not os.path.exists(c.path("undone")),
          "no compensation runs once the log cannot record it")
    log = c.log()
    check(len(log) == k and log[-1]["event"] == "step.start",
          f"after a failed fsync the log takes no more records (the file's state is unknown): "
          f"{len(log)} records, the failed one was #{k}")
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 0, "what was written verifies", v)


def test_write_failure_is_cut_back_and_stops_the_run(c):
    rb, records = clean_run(c)
    k = events(records, "step.start", "two")[0]["seq"]
    reset(c)
    r = c.drbook("run", rb, "--audit", "run.jsonl", env=shim_env(c, f"write:{k}:ENOSPC"))
    check(r.code == 1, "a failed write fails the run", r)
    check("No space left on device" in r.out + r.err, "the reason is reported", r)
    check(not os.path.exists(c.path("two")) and not os.path.exists(c.path("three")),
          "nothing runs unrecorded")
    check(not os.path.exists(c.path("undone")), "no unrecorded compensation")
    log = c.log()
    check(not events(log, "step.start", "two"), "the failed record was cut back")
    check(log[-1]["event"] == "run.end" and log[-1]["data"]["status"] == "failed",
          "the log could still take records: the run's end is recorded")
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 0, "the log verifies (no partial line)", v)


def test_a_fault_at_every_record_stops_the_run_unrecorded_nothing(c):
    # For every record of a run, make its write fail (ENOSPC) and, separately, its fsync
    # fail (EIO): no action whose step.start is at or after that record may run, the reason
    # reaches stderr, and what was written still verifies.
    rb, records = clean_run(c)
    starts = {r["step"]: r["seq"] for r in records if r["event"] == "step.start"}
    ok = total = 0
    for k in range(1, len(records) + 1):
        for call, errno_name, text in (("write", "ENOSPC", "No space left on device"),
                                       ("fsync", "EIO", "Input/output error")):
            total += 1
            reset(c)
            r = c.drbook("run", rb, "--audit", "run.jsonl",
                         env=shim_env(c, f"{call}:{k}:{errno_name}"))
            where = f"record {k} ({records[k - 1]['event']} {records[k - 1]['step']}), {call}"
            check(r.code != 0, f"{where}: the run does not succeed", r)
            check(text in r.err, f"{where}: the reason is on stderr", r)
            for step, seq in starts.items():
                if seq >= k:
                    check(not os.path.exists(c.path(step)),
                          f"{where}: step {step}'s action ran unrecorded")
            if os.path.exists(c.path("run.jsonl")) and os.path.getsize(c.path("run.jsonl")):
                v = c.drbook("audit", "verify", "run.jsonl")
                check(v.code == 0, f"{where}: what was written verifies", v)
            ok += 1
    print(f"audit faults: {ok} of {total} (every record, write and fsync) stopped the run "
          "with nothing unrecorded")
    check(ok == total, f"{ok} of {total}")


if __name__ == "__main__":
    main(globals())
