"""drbook replay: a recorded run's decisions re-run offline against its recorded answers.
Nothing outside the process is touched; a changed runbook shows where decisions diverge."""
import json
import os

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


def test_replay_usage_errors(c):
    check(c.drbook("replay").code == 2, "no log -> 2")
    check(c.drbook("replay", "missing.jsonl").code == 2, "missing log -> 2")


if __name__ == "__main__":
    main(globals())
