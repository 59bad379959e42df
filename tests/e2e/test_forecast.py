"""RTO forecast (issue 12 point 7): `drbook plan` predicts each step's duration (median and
p95) from the past runs and drills of the same runbook in the runs folder, finds the critical
path by predicted duration (not by number of steps), adds the preflight, and warns when the
predicted RTO exceeds the target; "no history" when there is none. Past runs are synthetic
logs (history reads logs, it does not verify them)."""
import json
import os

from drbtest import check, main

RB = """
    version: 1
    name: fc
    targets: {{ rto: {rto} }}
    preflight:
      - id: check
        action: sleep
        with: {{ duration: 0s }}
    steps:
      - id: a
        action: sleep
        with: {{ duration: 0s }}
      - id: b
        action: sleep
        with: {{ duration: 0s }}
        needs: [a]
      - id: c
        action: sleep
        with: {{ duration: 0s }}
        needs: []
      - id: d
        action: sleep
        with: {{ duration: 0s }}
        needs: [b, c]
"""

# seconds per run: a median 11 p95 30; b 15; c median 30 p95 31; d 5; preflight 1.
# By predicted median a -> b -> d is 31 s, c -> d 35 s: the forecast's path is c -> d, where
# the structural critical path (most steps) is a -> b -> d.
DURATIONS = {"a": [10, 12, 11, 30, 10], "b": [15] * 5, "c": [30, 31, 29, 30, 30], "d": [5] * 5,
             "check": [1] * 5}


def fake_log(c, fname, name, mode, steps, day):
    os.makedirs(c.path("runs"), exist_ok=True)
    recs = [("run.start", None, {"name": name, "mode": mode, "drill": mode == "drill"})]
    for sid, status, ms in steps:
        recs.append(("step.start", sid, {"action": "sleep"}))
        recs.append(("step.end", sid, {"status": status, "attempts": 1, "duration_ms": ms}))
    recs.append(("run.end", None, {"status": "succeeded", "exit_code": 0, "rto_s": 40.0}))
    with open(c.path(os.path.join("runs", fname)), "w") as f:
        for i, (ev, step, data) in enumerate(recs):
            f.write(json.dumps({"seq": i + 1, "ts": "2026-11-%02dT10:00:%02d.000Z" % (day, i),
                                "run": "r%d" % day, "event": ev, "step": step, "data": data,
                                "prev": "0" * 64}) + "\n")


def history(c):
    for k in range(5):
        steps = [(sid, "ok", v[k] * 1000) for sid, v in DURATIONS.items()]
        fake_log(c, "run%d.jsonl" % k, "fc", "drill" if k % 2 else "run", steps, k + 1)
    # not this runbook's history: a plan, another runbook, a step that failed, a for_each child
    fake_log(c, "plan.jsonl", "fc", "plan", [("c", "ok", 900000)], 10)
    fake_log(c, "other.jsonl", "other", "run", [("c", "ok", 900000)], 11)
    fake_log(c, "failed.jsonl", "fc", "run", [("check", "ok", 1000), ("c", "failed", 900000),
                                              ("a[1]", "ok", 900000)], 12)


def plan(c, rto, *extra):
    rb = c.write("fc.yaml", RB.format(rto=rto))
    return c.drbook("plan", rb, "--runs-dir", "runs", *extra)


def test_forecast_per_step_and_critical_path(c):
    history(c)
    r = plan(c, "1m")
    check(r.code == 0, "plan passes", r)
    check("predicted 11s (p95 30s, 5 runs)" in r.out, "step a: median and p95 beside it", r)
    check("predicted 30s (p95 31s, 5 runs)" in r.out, "step c: its failure is left out", r)
    check("RTO forecast from 6 past runs" in r.out, "the runs of this runbook are counted "
          "(5 and the failed one; not the plan, not the other runbook)", r)
    check("predicted critical path: c -> d" in r.out, "the path by predicted duration", r)
    check("critical path (3 steps): a -> b -> d" in r.out, "beside the structural one", r)
    check("predicted RTO 36s (p95 37s), target 1m" in r.out, "preflight + path vs target", r)
    check("warning" not in r.out + r.err, "no warning under the target", r)

    j = plan(c, "1m", "--json")
    check(j.code == 0, "plan --json", j)
    summary = [json.loads(x) for x in j.out.splitlines() if '"summary"' in x][-1]
    f = summary["forecast"]
    by = {s["id"]: s for s in f["steps"]}
    check(by["a"]["median_s"] == 11 and by["a"]["p95_s"] == 30 and by["a"]["samples"] == 5,
          f"step a in JSON: {by['a']}")
    check(by["c"]["samples"] == 5 and by["c"]["median_s"] == 30, f"the failed c is left out: "
          f"{by['c']}")
    check(f["critical_path"] == ["c", "d"], f"path: {f['critical_path']}")
    check((f["rto_median_s"], f["rto_p95_s"], f["preflight_median_s"]) == (36, 37, 1),
          f"totals: {f}")
    check(f["exceeds"] is False and f["target_rto_s"] == 60 and f["runs"] == 6, f"verdict: {f}")


def test_forecast_over_the_target_warns(c):
    history(c)
    r = plan(c, "30s")
    check(r.code == 0, "a forecast over the target is a warning, not a refusal", r)
    check("warning: the predicted critical path (36s) exceeds the RTO target (30s)" in r.out,
          "the warning names both", r)
    r = plan(c, "37s")
    check("warning: the predicted RTO at p95 (37s)" not in r.out, "p95 37 s is not over 37 s",
          r)
    r = plan(c, "36s")
    check("warning: the predicted RTO at p95 (37s) exceeds the RTO target (36s)" in r.out,
          "a p95 over the target is said too", r)


def test_no_history(c):
    r = plan(c, "1m")
    check(r.code == 0, "plan passes", r)
    check("RTO forecast: no history" in r.out, "says so", r)
    check("predicted" not in r.out.replace("RTO forecast: no history", ""),
          "no per-step prediction", r)
    j = plan(c, "1m", "--json")
    f = [json.loads(x) for x in j.out.splitlines() if '"summary"' in x][-1]["forecast"]
    check(f["history"] is False and f["runs"] == 0, f"JSON says no history: {f}")


def test_steps_without_history_say_so(c):
    history(c)
    rb = c.write("fc.yaml", RB.format(rto="1m") + "      - id: e\n        action: sleep\n"
                 "        with: { duration: 0s }\n        needs: [d]\n")
    r = c.drbook("plan", rb, "--runs-dir", "runs")
    check(r.code == 0, "plan passes", r)
    check("predicted: no history for this step" in r.out, "the new step has none", r)
    check("predicted critical path: c -> d -> e" in r.out, "it still ends the path", r)


if __name__ == "__main__":
    main(globals())
