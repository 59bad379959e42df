"""Approvals asked on a real terminal (a pseudo-terminal): 'yes' approves, anything else
denies, and silence until the timeout refuses the run with exit 3."""
import os
import pty
import select
import time

from drbtest import DRBOOK, check, main

RUNBOOK = """
version: 1
name: tty-approval
steps:
  - id: gate
    action: approval
    with: { message: "Fail over prod-db?", timeout: 2s }
  - id: change
    action: exec
    with: { argv: [touch, changed] }
"""


def run_on_tty(c, answer, wait_for_prompt=True, timeout=20):
    """Runs drbook with a pseudo-terminal as its controlling terminal; types answer when the
    prompt appears. Returns (exit code, everything the terminal showed)."""
    rb = c.write("tty.yaml", RUNBOOK)
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(c.dir)
        os.environ["TERM"] = "xterm"
        os.execv(DRBOOK, [DRBOOK, "run", rb, "--audit", "run.jsonl"])
    shown = b""
    sent = False
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            if answer is not None and not sent and b"Type 'yes'" in shown:
                os.write(fd, answer.encode() + b"\n")
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_yes_on_the_terminal_approves(c):
    code, shown = run_on_tty(c, "yes")
    check(code == 0, f"approved run succeeds: {shown}")
    check("Fail over prod-db?" in shown, "the prompt shows the message")
    check(os.path.exists(c.path("changed")), "the step after the gate ran")
    appr = [e for e in c.log() if e["event"] == "approval" and "approved" in e["data"]]
    check(appr[-1]["data"]["approved"] and appr[-1]["data"]["how"] == "terminal", f"{appr}")


def test_no_on_the_terminal_denies(c):
    code, shown = run_on_tty(c, "no")
    check(code == 3, f"denied -> exit 3: {shown}")
    check(not os.path.exists(c.path("changed")), "nothing after the gate ran")


def test_silence_until_timeout_refuses(c):
    t = time.monotonic()
    code, shown = run_on_tty(c, None)
    check(code == 3, f"timed out -> exit 3: {shown}")
    check(time.monotonic() - t < 10, "gave up near the 2 s timeout")
    check("timed out" in shown, "says it timed out")


if __name__ == "__main__":
    main(globals())
