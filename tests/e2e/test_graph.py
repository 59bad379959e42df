"""Steps as a graph (format v1.1 `needs:`): steps whose needs have ended start at once, at most
max_parallel; a step without needs follows the one before it (v1 order); a failure stops new
starts; rollback undoes the newest completed first; resume and replay of branched runs; plan
shows the graph, the critical path, for_each items, when decisions and rollbacks. Also the
polling schedule of `until` and run.end's target verdicts (RTO/RPO, also after resume)."""
import json
import signal
import time

from drbtest import check, events, main


def spans(recs):
    """uid -> (seq of step.start, seq of step.end) for top-level steps that ran."""
    out = {}
    for r in recs:
        if r["event"] in ("step.start", "step.end") and "[" not in (r["step"] or "["):
            s, e = out.get(r["step"], (None, None))
            if r["event"] == "step.start":
                s = r["seq"]
            else:
                e = r["seq"]
            out[r["step"]] = (s, e)
    return out


def test_needs_empty_start_at_once_and_join(c):
    rb = c.write("g.yaml", """
        version: 1
        name: join
        steps:
          - id: a
            action: exec
            needs: []
            with: { argv: [sleep, "0.5"] }
          - id: b
            action: exec
            needs: []
            with: { argv: [sleep, "0.5"] }
          - id: c
            action: exec
            needs: [a, b]
            with: { argv: ["true"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "the graph runs", r)
    sp = spans(c.log())
    check(sp["b"][0] < sp["a"][1] and sp["a"][0] < sp["b"][1],
          "a and b run at the same time: %s" % sp, r)
    check(sp["c"][0] > max(sp["a"][1], sp["b"][1]), "c starts after both ended: %s" % sp)


def test_v1_runbook_runs_step_after_step(c):
    rb = c.write("v1.yaml", """
        version: 1
        name: v1
        steps:
          - id: a
            action: exec
            with: { argv: [sleep, "0.2"] }
          - id: b
            action: exec
            with: { argv: [sleep, "0.2"] }
          - id: c
            action: exec
            with: { argv: ["true"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "runs", r)
    sp = spans(c.log())
    check(sp["a"][1] < sp["b"][0] and sp["b"][1] < sp["c"][0],
          "without needs each step follows the one before it: %s" % sp)


def test_max_parallel_bounds_running_steps(c):
    rb = c.write("mp.yaml", """
        version: 1
        name: mp
        max_parallel: 2
        steps:
          - { id: a, action: exec, needs: [], with: { argv: [sleep, "0.3"] } }
          - { id: b, action: exec, needs: [], with: { argv: [sleep, "0.3"] } }
          - { id: c, action: exec, needs: [], with: { argv: [sleep, "0.3"] } }
          - { id: d, action: exec, needs: [], with: { argv: [sleep, "0.3"] } }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "runs", r)
    running = peak = 0
    for rec in c.log():
        if rec["event"] == "step.start":
            running += 1
            peak = max(peak, running)
        elif rec["event"] == "step.end":
            running -= 1
    check(peak == 2, "at most max_parallel (2) steps ran at once, and 2 did (peak %d)" % peak)


ROLLBACK = """
    version: 1
    name: rb
    on_failure: rollback
    params: { fail: { type: bool, default: true } }
    steps:
      - id: slow
        action: exec
        needs: []
        with: { argv: [sleep, "0.6"] }
        rollback: { action: exec, with: { argv: [echo, undo-slow] } }
      - id: quick
        action: exec
        needs: []
        with: { argv: [sleep, "0.1"] }
        rollback: { action: exec, with: { argv: [echo, undo-quick] } }
      - id: break
        action: exec
        needs: [quick]
        with: { argv: [sh, -c, "exit ${params.fail and 1 or 0}"] }
      - id: after
        action: exec
        needs: [break, slow]
        with: { argv: ["true"] }
"""


def test_failure_waits_for_running_steps_and_undoes_newest_completed_first(c):
    rb = c.write("rb.yaml", ROLLBACK)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "the run fails (exit 1)", r)
    recs = c.log()
    check(events(recs, "step.end", "slow"), "the running branch (slow) was let finish")
    check(not events(recs, "step.start", "after"), "no new step starts after the failure")
    ends = [e["step"] for e in recs if e["event"] == "step.end" and e["data"]["status"] == "ok"]
    undone = [e["step"] for e in recs if e["event"] == "rollback.start"]
    check(undone == [s for s in reversed(ends) if s in ("slow", "quick")],
          "rollback undoes the newest completed first: completed %s, undone %s" % (ends, undone))
    check(undone == ["slow", "quick"], "slow completed last, so it is undone first: %s" % undone)
    end = events(recs, "run.end")[0]["data"]
    check(end["status"] == "rolled_back", "run.end rolled_back: %s" % end)


def test_failed_need_skips_its_dependents_under_continue(c):
    rb = c.write("cont.yaml", """
        version: 1
        name: cont
        on_failure: continue
        steps:
          - id: bad
            action: exec
            with: { argv: ["false"] }
          - id: uses-bad
            action: exec
            needs: [bad]
            with: { argv: ["true"] }
          - id: uses-uses
            action: exec
            needs: [uses-bad]
            with: { argv: ["true"] }
          - id: next
            action: exec
            with: { argv: ["true"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a critical step failed: exit 1", r)
    recs = c.log()
    for s in ("uses-bad", "uses-uses"):
        e = events(recs, "step.end", s)
        check(e and e[0]["data"]["status"] == "skipped" and "did not end ok" in
              e[0]["data"].get("reason", ""), "%s is skipped, naming its need: %s" % (s, e))
        check(not events(recs, "step.start", s), "%s never started" % s)
    e = events(recs, "step.end", "next")
    check(e and e[0]["data"]["status"] == "ok",
          "a step without needs follows the one before it, whatever its end (v1)")


BRANCHED = """
    version: 1
    name: branched
    params: { journal: { type: string } }
    steps:
      - id: first
        action: exec
        with: { argv: [sh, -c, "echo first >> ${params.journal}"] }
      - id: left
        action: exec
        needs: [first]
        idempotent: true
        with: { argv: [sh, -c, "echo left >> ${params.journal}; sleep 1.5"] }
      - id: right
        action: lua
        needs: [first]
        read_only: true
        script: return { rpo_s = 2.5 }
      - id: right-slow
        action: exec
        idempotent: true
        with: { argv: [sh, -c, "echo right >> ${params.journal}; sleep 1.5"] }
      - id: join
        action: exec
        needs: [left, right-slow]
        with: { argv: [sh, -c, "echo join >> ${params.journal}"] }
"""


def test_resume_and_replay_of_a_branched_run(c):
    rb = c.write("br.yaml", BRANCHED)
    p = c.spawn("run", rb, "-p", "journal=" + c.path("journal"), "--audit", "run.jsonl",
                "--quiet")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with open(c.path("journal")) as f:
                    seen = f.read().split()
            except OSError:
                seen = []
            if "left" in seen and "right" in seen:  # both branches' commands are running
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the two branches never ran at once")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    time.sleep(1.7)  # the killed run's sleeps end on their own
    r = c.drbook("resume", "run.jsonl")
    check(r.code == 0, "the branched run resumes to success", r)
    with open(c.path("journal")) as f:
        lines = f.read().split()
    check(lines.count("first") == 1, "the finished step is not run again: %s" % lines)
    check(lines.count("left") == 2 and lines.count("right") == 2,
          "both interrupted branches (idempotent) ran again: %s" % lines)
    check(lines.count("join") == 1 and lines[-1] == "join", "join ran once, last: %s" % lines)
    recs = c.log()
    end = events(recs, "run.end")[0]["data"]
    check(end.get("rpo_s") == 2.5 and end["targets"]["rpo"] == "unknown",
          "after resume the RPO is still measured: %s" % end)
    check(c.drbook("audit", "verify", "run.jsonl").code == 0, "the resumed log verifies")
    r = c.drbook("replay", "run.jsonl")
    check(r.code == 0 and "the same decisions" in r.out, "replay of the branched run", r)


def test_plan_shows_graph_items_when_and_rollback(c):
    rb = c.write("plan.yaml", """
        version: 1
        name: plan-graph
        params:
          services: { type: list, default: [api, auth] }
          fast: { type: bool, default: true }
        steps:
          - id: promote
            action: exec
            needs: []
            with: { argv: [echo, promote] }
          - id: wait
            action: exec
            read_only: true
            with: { argv: [echo, "${steps.promote.result.stdout}"] }
          - id: scale
            action: exec
            needs: []
            for_each: params.services
            as: svc
            when: svc ~= "auth"
            with: { argv: [echo, "scale ${svc}"] }
            rollback: { action: exec, with: { argv: [echo, "undo ${svc}"] } }
          - id: slow
            action: exec
            needs: []
            when: not params.fast
            with: { argv: [echo, slow] }
          - id: flip
            action: exec
            needs: [wait, scale]
            with: { argv: [echo, flip] }
    """)
    r = c.drbook("plan", rb, "--audit", "plan.jsonl")
    check(r.code == 0, "plan succeeds", r)
    check("critical path (3 steps): promote -> wait -> flip" in r.out, "critical path", r)
    check("after wait, scale" in r.out and "starts at once" in r.out, "the graph", r)
    check('"scale api"' in r.out and '"undo api"' in r.out and '"undo auth"' in r.out,
          "for_each items expanded with their rollbacks", r)
    check("false now: skipped" in r.out and "true now: runs" in r.out, "when decisions", r)
    plan = events(c.log("plan.jsonl"), "plan")[0]["data"]
    check(plan["critical_path"] == ["promote", "wait", "flip"], "critical path in the log")
    steps = {s["id"]: s for s in plan["steps"]}
    check(steps["flip"]["needs"] == ["wait", "scale"] and steps["wait"]["needs"] == ["promote"],
          "needs in the plan record: %s" % steps)
    check([k["when_result"] for k in steps["scale"]["children"]] == ["run", "skip"],
          "per-item when: %s" % steps["scale"])
    check(steps["slow"]["when_result"] == "skip", "when of slow: %s" % steps["slow"])
    check(r.out.count("[changes]") >= 4 and not events(c.log("plan.jsonl"), "step.start"),
          "nothing ran")


def test_until_sees_the_condition_soon_after_it_holds(c):
    rb = c.write("poll.yaml", """
        version: 1
        name: poll
        steps:
          - id: arm
            action: exec
            with: { argv: [sh, -c, "(sleep 1; touch flag) >/dev/null 2>&1 &"] }
          - id: wait
            action: exec
            read_only: true
            with: { argv: [sh, -c, "test -f flag && echo yes || echo no"] }
            until: result.stdout == "yes\\n"
            every: 20s
            timeout: 60s
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "the wait ends", r)
    d = events(c.log(), "step.end", "wait")[0]["data"]
    # the flag appears after 1 s: a fixed 20 s schedule would see it after 20 s
    check(d["duration_ms"] < 10000 and d["polls"] >= 3 and
          d["wait_ms"] <= d["duration_ms"], "checked at once, then soon: %s" % d)
    # the sleeps between the checks are the declared wait: at least 100 ms before each check
    # after the first, and less than the whole wait (the checks themselves take time)
    check(100 * (d["polls"] - 1) - 5 <= d["slept_ms"] < d["wait_ms"],
          "slept_ms is the time slept between checks: %s" % d)
    check("waited" in r.out and "checks" in r.out, "the timeline shows the wait", r)


def test_run_end_target_verdicts(c):
    rb = c.write("t.yaml", """
        version: 1
        name: targets
        targets: { rto: 1h, rpo: 1ms }
        steps:
          - id: measure
            action: lua
            read_only: true
            script: return { rpo_s = 5 }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl", "--json")
    check(r.code == 0, "runs", r)
    end = events(c.log(), "run.end")[0]["data"]
    check(end["targets"]["rto"] == "met" and end["targets"]["rpo"] == "missed",
          "rto met, rpo missed: %s" % end)
    summary = json.loads(r.out.strip().splitlines()[-1])
    check(summary["targets"] == {"rto": "met", "rpo": "missed"}, "--json summary: %s" % summary)
    r = c.drbook("run", rb, "--audit", "run2.jsonl")
    check("RPO 5s (target 1ms: MISSED)" in r.out and "(target 1h: met)" in r.out,
          "the summary says it", r)
    r = c.drbook("report", "run2.jsonl", "--format", "md")
    check(r.code == 0 and "MISSED" in r.out and ": met" in r.out, "the report says it", r)


def test_notification_says_the_targets(c):
    rb = c.write("n.yaml", """
        version: 1
        name: notify-targets
        targets: { rto: 1h }
        steps:
          - { id: a, action: exec, with: { argv: ["true"] } }
        notify:
          - on: [end]
            action: exec
            with: { argv: [sh, -c, "echo rto ${run.targets.rto} rpo ${run.targets.rpo} > said"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "runs", r)
    with open(c.path("said")) as f:
        check(f.read().strip() == "rto met rpo unknown", "the notification can say the verdicts")


if __name__ == "__main__":
    main(globals())
