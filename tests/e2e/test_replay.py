"""drbook replay: a recorded run's decisions re-run offline against its recorded answers.
Nothing outside the process is touched; a changed runbook shows where decisions diverge."""
import json
import os
import time

from drbtest import EXAMPLES, check, main


def recorded_rollback_run(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "rollback.yaml"), "-p",
                 f"journal={c.path('journal')}", "--audit", "run.jsonl")
    check(r.code == 1, "the recorded run fails and rolls back", r)
    return open(c.path("journal")).read()


def test_replay_of_unchanged_runbook_has_the_same_decisions(c):
    journal = recorded_rollback_run(c)
    r = c.drbook("replay", "run.jsonl")
    check(r.code == 0, "same decisions -> exit 0", r)
    check("the same decisions" in r.out, "says so", r)
    check(open(c.path("journal")).read() == journal, "replay ran no command (journal unchanged)")


def test_replay_answers_every_call_from_the_log(c):
    recorded_rollback_run(c)
    r = c.drbook("replay", "run.jsonl", "--json")
    check(r.code == 0, "replay --json", r)
    lines = [json.loads(l) for l in r.out.splitlines()]
    calls = [l for l in lines if l["event"] == "call"]
    check(len(calls) >= 8, f"the exec calls and compensations were answered: {len(calls)}")
    check(lines[-1] == {"event": "replay", "diff": []}, f"no divergence: {lines[-1]}")


def test_changed_runbook_diverges(c):
    recorded_rollback_run(c)
    changed = c.write("changed.yaml", open(os.path.join(EXAMPLES, "rollback.yaml")).read()
                      .replace("when: params.fail", "when: not params.fail"))
    r = c.drbook("replay", "run.jsonl", "--runbook", changed)
    check(r.code == 1, "different decisions -> exit 1", r)
    check("DIVERGED" in r.out and "breaks" in r.out, "names the step that now differs", r)


def test_a_call_the_recording_lacks_fails_the_step(c):
    recorded_rollback_run(c)
    extra = c.write("extra.yaml", open(os.path.join(EXAMPLES, "rollback.yaml")).read()
                    .replace("steps:\n", "steps:\n  - id: new-call\n    action: exec\n"
                             "    with: { argv: [touch, should-not-exist] }\n", 1))
    r = c.drbook("replay", "run.jsonl", "--runbook", extra)
    check(r.code == 1, "diverged", r)
    check(not os.path.exists(c.path("should-not-exist")), "the new call was not performed")
    check("no recorded answer" in r.out, "says why the step failed", r)


def make_key(c, name, text):
    p = c.path(name)
    with open(p, "w") as f:
        f.write(text + "\n")
    os.chmod(p, 0o600)
    return p


def test_tampered_log_is_refused_before_anything_is_replayed(c):
    journal = recorded_rollback_run(c)
    lines = open(c.path("run.jsonl")).read().splitlines()
    n = next(i for i, l in enumerate(lines) if '"event":"step.end"' in l)
    lines[n] = lines[n].replace('"status":"ok"', '"status":"failed"', 1)
    check('"status":"failed"' in lines[n], "the test changed a recorded step.end")
    with open(c.path("run.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    r = c.drbook("replay", "run.jsonl", "--json")
    check(r.code == 1, "tampered log -> exit 1", r)
    check(f"run.jsonl:{n + 2}:" in r.err and "refusing to replay" in r.err,
          "names the first line whose chain breaks and why", r)
    check(r.out.strip() == "", "nothing was replayed (no event printed)", r)
    check(open(c.path("journal")).read() == journal, "no command ran")


def test_macs_are_checked_with_the_key(c):
    key = make_key(c, "key", "correct horse battery staple")
    wrong = make_key(c, "wrong", "wrong key")
    r = c.drbook("run", os.path.join(EXAMPLES, "rollback.yaml"), "-p",
                 f"journal={c.path('journal')}", "--audit", "run.jsonl", "--audit-key-file", key)
    check(r.code == 1, "the recorded run fails and rolls back", r)
    for args, env in ((["--key-file", key], None), (["--audit-key-file", key], None),
                      ([], {"DRBOOK_AUDIT_KEY_FILE": key})):
        r = c.drbook("replay", "run.jsonl", *args, env=env)
        check(r.code == 0, f"right key ({args or env}) -> the same decisions", r)
    for args, env in ((["--key-file", wrong], None), ([], {"DRBOOK_AUDIT_KEY_FILE": wrong})):
        r = c.drbook("replay", "run.jsonl", *args, env=env)
        check(r.code == 1 and "run.jsonl:1:" in r.err and "refusing to replay" in r.err,
              f"wrong key ({args or env}) -> refused, naming the line", r)
        check("DIVERGED" not in r.out and "the same decisions" not in r.out, "nothing replayed", r)
    # a log without MACs replayed with a key is refused too (as audit verify does)
    r = c.drbook("run", os.path.join(EXAMPLES, "rollback.yaml"), "-p",
                 f"journal={c.path('journal')}", "--audit", "plain.jsonl")
    check(r.code == 1, "a second recorded run, without MACs", r)
    r = c.drbook("replay", "plain.jsonl", "--key-file", key)
    check(r.code == 1 and "refusing to replay" in r.err, "no MACs but a key -> refused", r)


RESULTS = """
version: 1
name: results
steps:
  - id: calc
    action: lua
    script: return { n = 1, who = "recorded" }
  - id: probe
    action: exec
    with: { argv: [sh, -c, "echo 5"] }
    assert: tonumber(result.stdout) >= 3
"""


def test_a_different_result_or_status_is_listed_field_by_field(c):
    rb = c.write("results.yaml", RESULTS)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "recorded run", r)
    check(c.drbook("replay", "run.jsonl").code == 0, "unchanged -> the same decisions")
    changed = c.write("changed.yaml", RESULTS.replace('n = 1', 'n = 2')
                      .replace(">= 3", ">= 9"))
    r = c.drbook("replay", "run.jsonl", "--runbook", changed, "--json")
    check(r.code == 1, "a difference -> exit 1", r)
    diff = json.loads(r.out.splitlines()[-1])["diff"]
    by = {(d["step"], d["field"]): d for d in diff}
    calc = by.get(("calc", "result"))
    check(calc and '"n":1' in calc["recorded"] and '"n":2' in calc["replayed"],
          f"calc's result differs, both values shown: {diff}")
    check(by.get(("probe", "status")) == {"step": "probe", "field": "status", "recorded": "ok",
                                          "replayed": "failed"}, f"probe's status: {diff}")
    check(by.get(("(run)", "status"), {}).get("replayed") == "failed", f"run verdict: {diff}")
    check(("calc", "status") not in by, f"calc's status is the same: {diff}")
    r = c.drbook("replay", "run.jsonl", "--runbook", changed)
    check("calc" in r.out and "result" in r.out and "recorded" in r.out, "text lists it", r)


SLOW = """
version: 1
name: slow
targets: { rto: 15m }
params:
  dir: { type: string, required: true }
steps:
  - id: pause
    action: sleep
    with: { duration: 2s }
  - id: poll
    action: exec
    with: { argv: [sh, -c, "n=$(cat \\"$0/polls\\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \\"$0/polls\\"; echo $n", "${params.dir}"] }
    until: tonumber(result.stdout) >= 8
    every: 500ms
    timeout: 1m
  - id: flaky
    action: exec
    with: { argv: [sh, -c, "n=$(cat \\"$0/tries\\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \\"$0/tries\\"; echo $n", "${params.dir}"] }
    assert: tonumber(result.stdout) >= 3
    retry: { attempts: 4, backoff: fixed, initial: 500ms }
"""


def test_replay_takes_no_real_time(c):
    rb = c.write("slow.yaml", SLOW)
    r = c.drbook("run", rb, "-p", f"dir={c.dir}", "--audit", "run.jsonl")
    check(r.code == 0, "recorded run", r)
    recs = c.log()
    check(len([x for x in recs if x["event"] == "call" and x["step"] == "poll"]) == 8,
          "until polled 8 times")
    check(len([x for x in recs if x["event"] == "step.retry"]) == 2, "flaky was retried twice")
    rto = [x for x in recs if x["event"] == "run.end"][0]["data"]["rto_s"]
    check(r.elapsed >= 3.0 and rto >= 3.0, f"the recorded run waited: {r.elapsed:.1f}s rto {rto}")
    t = time.monotonic()
    r = c.drbook("replay", "run.jsonl", "--json")
    took = time.monotonic() - t
    check(r.code == 0, "the same decisions", r)
    check(took < 1.0, f"replay took {took:.2f}s of real time (recorded {rto:.1f}s)")
    end = [json.loads(l) for l in r.out.splitlines() if '"run.end"' in l][0]
    check(abs(end["data"]["rto_s"] - rto) <= 1.0,
          f"the replay's RTO comes from the recorded times: {end['data']} vs {rto}")
    check(open(c.path("polls")).read().strip() == "8", "replay ran no command")


def test_replay_usage_errors(c):
    check(c.drbook("replay").code == 2, "no log -> 2")
    check(c.drbook("replay", "missing.jsonl").code == 2, "missing log -> 2")


if __name__ == "__main__":
    main(globals())
