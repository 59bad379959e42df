"""Kill -9 a run and resume it: finished steps are not repeated, an interrupted
non-idempotent step needs --assume-done or --retry, idempotent ones are re-run, done_when is
consulted, and the resumed log stays one valid chain."""
import os
import signal
import time

from drbtest import EXAMPLES, check, events, main

CHECKPOINT = os.path.join(EXAMPLES, "checkpoint.yaml")


def start_and_kill_in(c, step, runbook=CHECKPOINT, params=(), key=None):
    args = ["run", runbook, "-p", f"journal={c.path('journal')}", "--audit", "run.jsonl",
            "--quiet", *params]
    if key:
        args += ["--audit-key-file", key]
    p = c.spawn(*args)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(c.path("run.jsonl")):
                recs = c.log()
                if events(recs, "step.start", step):
                    time.sleep(0.3)
                    break
            time.sleep(0.05)
        else:
            raise AssertionError(f"step {step} never started")
    finally:
        groups = child_groups(p.pid)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # the shell of the long step may outlive drbook; it is in its own process group.
        # Only that group is killed: a kill by name would hit the same step of any other
        # test running on the machine at the time.
        for g in groups - {os.getpgrp()}:
            try:
                os.killpg(g, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def child_groups(pid):
    """The process groups of pid's children (from /proc)."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) == pid:
                out.add(int(fields[2]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def journal(c):
    with open(c.path("journal")) as f:
        return f.read().split()


def test_interrupted_non_idempotent_step_needs_a_decision(c):
    start_and_kill_in(c, "long-change")
    r = c.drbook("resume", "run.jsonl")
    check(r.code == 3, "resume refuses", r)
    check("long-change" in r.out + r.err and "--assume-done" in r.out + r.err,
          "names the step and the flags", r)
    r = c.drbook("resume", "run.jsonl", "--assume-done", "long-change")
    check(r.code == 0, "resume with --assume-done completes", r)
    j = journal(c)
    check(j.count("before") == 1, f"completed step not run again: {j}")
    check(j[-2:] == ["refresh", "after"], f"rest of the run happened: {j}")
    check("long-end" not in j, "assumed step not re-run")
    log = c.log()
    check(log[-1]["event"] == "run.end" and log[-1]["data"]["status"] == "succeeded", "end")
    check(events(log, "step.end", "long-change")[-1]["data"]["status"] == "assumed_done", "")
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 0, "chain valid after resume", v)


def test_retry_flag_reruns_the_step(c):
    start_and_kill_in(c, "long-change", params=("-p", "hold=1s"))
    time.sleep(1.2)
    r = c.drbook("resume", "run.jsonl", "--retry", "long-change")
    check(r.code == 0, "resume with --retry", r)
    j = journal(c)
    check(j.count("long-start") == 2 and j.count("long-end") >= 1, f"re-ran: {j}")
    check(j.count("before") == 1, "before not re-run")


def test_idempotent_step_is_rerun_without_asking(c):
    rb = c.write("idem.yaml", """
        version: 1
        name: idem
        params:
          journal: { type: string }
        steps:
          - id: once
            action: exec
            with: { argv: [sh, -c, "echo once >> \\"$0\\"", "${params.journal}"] }
          - id: slow-idempotent
            action: exec
            idempotent: true
            with: { argv: [sh, -c, "echo idem >> \\"$0\\"; sleep 30", "${params.journal}"] }
    """)
    start_and_kill_in(c, "slow-idempotent", runbook=rb)
    os.system("pkill -f 'echo idem' >/dev/null 2>&1")
    # make the re-run quick: the step itself is the same runbook, so patch nothing; kill it
    p = c.spawn("resume", "run.jsonl", "--quiet")
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    os.system("pkill -f 'echo idem' >/dev/null 2>&1")
    j = journal(c)
    check(j.count("once") == 1, f"completed step not repeated: {j}")
    check(j.count("idem") == 2, f"idempotent step re-run by resume: {j}")
    check(c.drbook("audit", "verify", "run.jsonl").code == 0, "chain valid")


DONE_WHEN = """
        version: 1
        name: done-when
        params:
          journal: { type: string }
          took_effect: { type: bool }
          hold: { type: string, default: "30" }
        steps:
          - id: make-marker
            action: exec
            done_when: params.took_effect and steps ~= nil
            with: { argv: [sh, -c, "echo made >> \\"$0\\"; sleep \\"$1\\"", "${params.journal}", "${params.hold}"] }
          - id: after
            action: exec
            with: { argv: [sh, -c, "echo after >> \\"$0\\"", "${params.journal}"] }
    """


def test_done_when_true_records_the_step_as_done(c):
    rb = c.write("dw.yaml", DONE_WHEN)
    start_and_kill_in(c, "make-marker", runbook=rb, params=("-p", "took_effect=true"))
    os.system("pkill -f 'echo made' >/dev/null 2>&1")
    r = c.drbook("resume", "run.jsonl")
    check(r.code == 0, "done_when true -> recorded as done, run goes on", r)
    j = journal(c)
    check(j.count("made") == 1 and j[-1] == "after", f"{j}")
    end = events(c.log(), "step.end", "make-marker")[-1]["data"]
    check(end["status"] == "ok" and end.get("resumed") == "done_when", f"{end}")


def test_done_when_false_reruns_the_step(c):
    rb = c.write("dw.yaml", DONE_WHEN)
    start_and_kill_in(c, "make-marker", runbook=rb, params=("-p", "took_effect=false"))
    os.system("pkill -f 'echo made' >/dev/null 2>&1")
    # the re-run holds for 30 s like the original: seeing it start is enough
    p = c.spawn("resume", "run.jsonl", "--quiet")
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    os.system("pkill -f 'echo made' >/dev/null 2>&1")
    check(journal(c).count("made") == 2, f"re-run because done_when was false: {journal(c)}")
    resume = events(c.log(), "run.resume")[0]["data"]["decisions"]
    check(resume == {"make-marker": "done_when: did not take effect"}, f"{resume}")


def test_resume_of_finished_run_is_refused(c):
    r = c.drbook("run", CHECKPOINT, "-p", f"journal={c.path('journal')}", "-p", "hold=0s",
                 "--audit", "run.jsonl")
    check(r.code == 0, "run", r)
    r = c.drbook("resume", "run.jsonl")
    check(r.code == 3 and "already ended" in r.out + r.err, "nothing to resume", r)
    check(journal(c).count("before") == 1, "nothing re-ran")


def test_resume_with_hmac_key_keeps_chain_and_macs(c):
    key = c.path("key")
    with open(key, "w") as f:
        f.write("correct horse battery staple\n")
    start_and_kill_in(c, "long-change", key=key)
    r = c.drbook("resume", "run.jsonl", "--assume-done", "long-change",
                 "--audit-key-file", key)
    check(r.code == 0, "resume with key", r)
    v = c.drbook("audit", "verify", "run.jsonl", "--key-file", key)
    check(v.code == 0, "MACs valid across the resume", v)
    with open(c.path("wrong"), "w") as f:
        f.write("wrong key\n")
    v = c.drbook("audit", "verify", "run.jsonl", "--key-file", c.path("wrong"))
    check(v.code == 1, "wrong key detected", v)


def test_resume_refuses_tampered_log(c):
    start_and_kill_in(c, "long-change")
    recs = open(c.path("run.jsonl")).read().splitlines()
    recs[1] = recs[1].replace('"before"', '"befor3"', 1)
    with open(c.path("run.jsonl"), "w") as f:
        f.write("\n".join(recs) + "\n")
    r = c.drbook("resume", "run.jsonl", "--assume-done", "long-change")
    check(r.code == 1, "tampered log -> refuse", r)
    check(not os.path.exists(c.path("journal")) or "after" not in journal(c), "nothing ran")


IN_FLIGHT = """\
version: 1
name: resume-in-flight
lua: [probe]
params:
  url: { type: string }
steps:
  - id: change
    action: http.request
    with: { method: POST, url: "${params.url}/start" }
    timeout: 30s
    done_when:
      action: probe.state
      with: { url: "${params.url}/state" }
      assert: result.body == "done"
"""
# done_when must be read-only by declaration; http.request's mode depends on its method
PROBE = """\
drbook.action("probe.state", { mode = "ro", args = { url = { type = "string", required = true } } },
  function(args) return http.request { method = "GET", url = args.url } end)
"""


class SlowEffect:
    """A provider that takes a change and carries it out 3 s later (an RDS promotion in
    small): POST /start counts the requests, GET /state says pending, then done."""

    def __init__(self):
        import http.server
        import threading
        self.starts, self.started_at = 0, None
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, text):
                self.send_response(200)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.starts += 1
                outer.started_at = outer.started_at or time.monotonic()
                self._send("accepted")

            def do_GET(self):
                t = outer.started_at
                self._send("done" if t and time.monotonic() - t >= 3 else "pending")

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_effect_in_flight_is_waited_for_not_repeated(c):
    # killed right after the change's call record (the provider took it, the effect is still
    # under way): resume asks done_when again until it says done, instead of a second request
    shim = os.path.join(os.environ.get("BUILD", ""), "tests", "libdrb_fault.so")
    check(os.path.isfile(shim), f"the fault shim {shim} is not built (target drb_fault)")
    c.write("probe.lua", PROBE)
    rb = c.write("inflight.yaml", IN_FLIGHT)
    fx = SlowEffect()
    try:
        env = {"LD_PRELOAD": shim, "DRB_FAULT_MATCH": "*/run.jsonl", "DRB_FAULT_KILL": "3",
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        r = c.drbook("run", rb, "-p", f"url={fx.url}", "--audit", "run.jsonl", "--quiet",
                     env=env)
        recs = c.log()
        check(r.code == -signal.SIGKILL and [x["event"] for x in recs] ==
              ["run.start", "step.start", "call"], f"killed after the call: {r.code} "
              f"{[x['event'] for x in recs]}")
        t0 = time.monotonic()
        r = c.drbook("resume", "run.jsonl", "--quiet")
        check(r.code == 0, "resume ends the run", r)
        check(fx.starts == 1, f"the change was asked for once, not again ({fx.starts})")
        d = events(c.log(), "run.resume")[0]["data"]["decisions"]
        check(d == {"change": "done_when: took effect (was in flight)"}, f"{d}")
        end = events(c.log(), "step.end", "change")[-1]["data"]
        check(end["status"] == "ok", f"{end}")
        check(time.monotonic() - t0 < 20, "it waited for the effect, not for the timeout")
        check(c.drbook("audit", "verify", "run.jsonl").code == 0, "the log verifies")
    finally:
        fx.close()


if __name__ == "__main__":
    main(globals())
