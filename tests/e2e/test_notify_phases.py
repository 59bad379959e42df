"""Notifications in every phase of a run: sent after a refused preflight (the phase is still
read-only there), never counted as a change (a guard that fails after the start notification
still refuses the run, exit 3), and never sent by a plan. The notifications are exec actions
that append the event to a journal file, so what was sent can be read back."""
from drbtest import check, events, main

NOTIFY = """
        notify:
          - on: [start, success, failure, end]
            action: exec
            with: { argv: [sh, -c, "echo \\"$1 $2\\" >> \\"$0\\"", "JOURNAL", "${run.event}", "${run.status or '-'}"] }
"""


def runbook(c, body):
    text = """
        version: 1
        name: notify-phases
""" + NOTIFY.replace("JOURNAL", c.path("journal")) + body
    return c.write("rb.yaml", text)


def journal(c):
    try:
        with open(c.path("journal")) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def test_refused_preflight_still_sends_failure_and_end(c):
    rb = runbook(c, """
        preflight:
          - id: check
            action: lua
            read_only: true
            script: error("not today")
        steps:
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "a failed preflight refuses the run", r)
    check(journal(c) == ["start -", "failure refused", "end refused"],
          f"start, failure and end sent, got {journal(c)}", r)
    check(not events(c.log(), "notify.failed"), "no notify.failed", r)


def test_guard_after_start_notification_is_still_a_refusal(c):
    rb = runbook(c, """
        steps:
          - id: guard
            action: lua
            read_only: true
            script: error("lag too high")
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "a guard failing before any change refuses (exit 3), notification or not",
          r)
    check(c.log()[-1]["data"]["status"] == "refused", "run.end refused", r)
    check(journal(c) == ["start -", "failure refused", "end refused"],
          f"start, failure and end sent, got {journal(c)}", r)


def test_successful_run_sends_start_success_end(c):
    rb = runbook(c, """
        steps:
          - id: change
            action: exec
            with: { argv: [true] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "run succeeds", r)
    check(journal(c) == ["start -", "success succeeded", "end succeeded"],
          f"start, success and end sent, got {journal(c)}", r)


def test_plan_sends_no_notification(c):
    rb = runbook(c, """
        preflight:
          - id: check
            action: lua
            read_only: true
            script: return { ok = true }
        steps:
          - id: change
            action: exec
            with: { argv: [true] }
    """)
    r = c.drbook("plan", rb, "--audit", "plan.jsonl")
    check(r.code == 0, "plan succeeds", r)
    check(journal(c) == [], f"a plan sends nothing, got {journal(c)}", r)
    check(not [e for e in c.log("plan.jsonl") if e["event"] == "call"],
          "and makes no call", r)


if __name__ == "__main__":
    main(globals())
