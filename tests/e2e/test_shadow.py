"""Shadow drills (drbook run --shadow, docs/runbook-format.md "Shadow drills"): the setup,
the parameter overrides, the refusal of a change to anything that is not a shadow resource
before a byte of it is sent, and a teardown that runs after success, failure, rollback,
refusal and SIGTERM. The "system" is a local HTTP server that records every connection and
request it gets: http.request's resource is its url, so /drill-... paths are shadow
resources and /prod-... paths are production."""
import http.server
import os
import signal
import threading
import time

from drbtest import check, events, main


class Stub:
    """A threaded HTTP server on 127.0.0.1 that records (method, path) of every request and
    counts every accepted connection, so a refused call shows as no connection at all."""

    def __init__(self, delay=None):
        self.requests = []
        self.connections = 0
        self.delay = delay or {}
        stub = self

        class H(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                stub.requests.append((self.command, self.path))
                time.sleep(stub.delay.get((self.command, self.path), 0))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                stub.connections += 1
                return True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self, method=None):
        return [p for m, p in self.requests if method is None or m == method]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def runbook(c, stub, steps, extra="", preflight=""):
    """A runbook whose shadow: section makes /drill-copy (setup), points params.target at it,
    and deletes it (teardown); its one production default is /prod-db."""
    return c.write("rb.yaml", f"""
        version: 1
        name: shadow-e2e
        params:
          target: {{ type: string, default: "{stub.url('/prod-db')}" }}
          other: {{ type: string, default: "{stub.url('/prod-other')}" }}
        {preflight}
        steps:
        {steps}
        on_failure: abort
        shadow:
          setup:
            - id: make-copy
              action: http.request
              with: {{ method: POST, url: "{stub.url('/drill-copy')}" }}
          params:
            target: "{stub.url('/drill-copy')}"
          teardown:
            - id: remove-copy
              action: http.request
              with: {{ method: DELETE, url: "{stub.url('/drill-copy')}" }}
        {extra}
    """)


def records_of(log, phase):
    return [r for r in log if r["data"].get("phase") == phase]


def test_shadow_drill_runs_setup_steps_on_the_copy_and_teardown(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: change
            action: http.request
            with: { method: PUT, url: "${params.target}" }
        """)
        # -p cannot point a shadow drill back at production: the shadow value wins
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl", "-p",
                     f"target={stub.url('/prod-db')}")
        check(r.code == 0, "a shadow drill touching only its copy succeeds", r)
        check(stub.requests == [("POST", "/drill-copy"), ("PUT", "/drill-copy"),
                                ("DELETE", "/drill-copy")],
              f"setup, the step on the copy, teardown, in order: {stub.requests}")
        log = c.log()
        start = events(log, "run.start")[0]["data"]
        check(start["mode"] == "shadow" and start["drill"] is True,
              f"run.start records mode shadow (and a drill): {start}")
        check(start["params"]["target"] == stub.url("/drill-copy"),
              "run.start records the overridden parameter")
        names = [r["event"] for r in log]
        for ev in ("shadow.setup.begin", "shadow.setup.end", "shadow.teardown.begin",
                   "shadow.teardown.end"):
            check(ev in names, f"{ev} is recorded: {names}")
        check(names.index("shadow.setup.end") < names.index("run.end") and
              names.index("shadow.teardown.end") < names.index("run.end"),
              "setup and teardown are inside the run")
        td = records_of(log, "teardown")
        check({r["event"] for r in td} >= {"step.start", "call", "step.end"} and
              all(r["step"] == "remove-copy" for r in td),
              f"the teardown step's records say phase teardown: {td}")
        check({r["step"] for r in records_of(log, "setup")} == {"make-copy"},
              "the setup step's records say phase setup")
        check(not [r for r in log if r["step"] == "change" and "phase" in r["data"]],
              "the steps' own records carry no phase")
        end = events(log, "run.end")[0]["data"]
        check(end["status"] == "succeeded" and end["exit_code"] == 0, f"run.end: {end}")
        rp = c.drbook("replay", "run.jsonl")
        check(rp.code == 0, "a shadow drill's log replays (setup and teardown included)", rp)
        for fmt in ("md", "html", "json"):
            rep = c.drbook("report", "run.jsonl", "--format", fmt)
            check(rep.code == 0 and "remove-copy" in rep.out,
                  f"the {fmt} report shows the teardown step", rep)
    finally:
        stub.close()


def test_change_to_production_is_refused_before_any_byte_is_sent(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: on-copy
            action: http.request
            with: { method: PUT, url: "${params.target}" }
            rollback:
              action: http.request
              with: { method: PATCH, url: "${params.target}" }
          - id: on-production
            action: http.request
            with: { method: PUT, url: "${params.other}" }
          - id: never
            action: http.request
            with: { method: PUT, url: "${params.target}" }
        """)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 1, "a shadow violation fails the run with exit 1", r)
        check("/prod-other" not in stub.paths(), f"production got nothing: {stub.requests}")
        check(stub.connections == len(stub.requests),
              f"no connection was even opened for the refused call: {stub.connections} "
              f"connections, {stub.requests}")
        check(stub.requests == [("POST", "/drill-copy"), ("PUT", "/drill-copy"),
                                ("PATCH", "/drill-copy"), ("DELETE", "/drill-copy")],
              f"setup, the copy's step, its rollback (on_failure abort notwithstanding), then "
              f"teardown: {stub.requests}")
        log = c.log()
        end = [e for e in events(log, "step.end", "on-production")]
        check(end and end[0]["data"]["status"] == "failed" and
              end[0]["data"]["code"] == "shadow_violation",
              f"the step fails with code shadow_violation: {end}")
        check("not a shadow resource" in end[0]["data"]["error"], "the error says why")
        check(not events(log, "call", "on-production"), "no call record: nothing was sent")
        v = events(log, "shadow.violation", "on-production")
        check(v and v[0]["data"]["resource"] == "url" and
              v[0]["data"]["value"] == stub.url("/prod-other"),
              f"the refusal is recorded with the resource it named: {v}")
        check(not events(log, "step.start", "never"), "no later step starts")
        check(not events(log, "call", "never"), "and nothing of it was sent")
        rend = events(log, "run.end")[0]["data"]
        check(rend["status"] == "rolled_back" and rend["exit_code"] == 1,
              f"run.end says rolled_back, exit 1: {rend}")
        names = [x["event"] for x in log]
        check(names.index("rollback.end") < names.index("shadow.teardown.begin"),
              "the rollback runs before the teardown")
    finally:
        stub.close()


def test_a_script_catching_the_refusal_still_fails_its_step(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, f"""
          - id: sneaky
            action: lua
            script: |
              local ok, e = pcall(http.request, {{ method = "POST",
                                                  url = "{stub.url('/prod-db')}" }})
              return {{ caught = not ok }}
        """)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 1, "exit 1", r)
        check("/prod-db" not in stub.paths(), f"nothing reached production: {stub.requests}")
        end = events(c.log(), "step.end", "sneaky")[0]["data"]
        check(end["code"] == "shadow_violation", f"the step still failed the rule: {end}")
        check(("DELETE", "/drill-copy") in stub.requests, "teardown ran")
    finally:
        stub.close()


def test_mutating_actions_without_a_resource_are_refused(c):
    stub = Stub()
    try:
        marker = c.path("touched")
        rb = runbook(c, stub, f"""
          - id: run-program
            action: exec
            with: {{ argv: [touch, "{marker}"] }}
        """)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 1, "exit 1", r)
        check(not os.path.exists(marker), "the program never ran")
        end = events(c.log(), "step.end", "run-program")[0]["data"]
        check(end["code"] == "shadow_violation" and "does not name" in end["error"],
              f"exec names no resource: refused: {end}")
    finally:
        stub.close()


def test_teardown_runs_after_a_failed_step(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: check
            action: http.request
            with: { url: "${params.target}" }
            assert: result.status == 418
        """)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 1, "the failed step fails the drill", r)
        check(stub.requests[-1] == ("DELETE", "/drill-copy"), f"teardown ran: {stub.requests}")
        end = events(c.log(), "run.end")[0]["data"]
        check(end["status"] == "failed", f"run.end: {end}")
    finally:
        stub.close()


def test_teardown_runs_after_a_refused_preflight(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: change
            action: http.request
            with: { method: PUT, url: "${params.target}" }
        """, preflight="""
        preflight:
          - id: copy-ready
            action: http.request
            with: { url: "${params.target}" }
            assert: result.status == 503
        """)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 3, "a refused preflight still exits 3", r)
        check(stub.requests == [("POST", "/drill-copy"), ("GET", "/drill-copy"),
                                ("DELETE", "/drill-copy")],
              f"setup, the check on the copy, teardown: {stub.requests}")
    finally:
        stub.close()


def test_failed_setup_stops_before_preflight_and_tears_down(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: change
            action: http.request
            with: { method: PUT, url: "${params.target}" }
        """)
        # the setup step asserts something the stub never answers
        text = open(rb).read().replace(
            'with: { method: POST, url: "%s" }' % stub.url("/drill-copy"),
            'with: { method: POST, url: "%s" }\n      assert: result.status == 201'
            % stub.url("/drill-copy"))
        open(rb, "w").write(text)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 1, "a failed setup fails the drill", r)
        check(stub.requests == [("POST", "/drill-copy"), ("DELETE", "/drill-copy")],
              f"nothing but setup and teardown: {stub.requests}")
        end = events(c.log(), "run.end")[0]["data"]
        check("shadow setup step 'make-copy'" in end["error"], f"run.end says why: {end}")
    finally:
        stub.close()


def test_teardown_runs_after_sigterm_and_a_second_signal_does_not_stop_it(c):
    # teardown's DELETE takes 1.5 s: a second SIGTERM sent meanwhile must not cut it short
    stub = Stub(delay={("DELETE", "/drill-copy"): 1.5})
    try:
        rb = runbook(c, stub, """
          - id: long
            action: sleep
            with: { duration: 60s }
        """)
        p = c.spawn("run", rb, "--shadow", "--audit", "run.jsonl", "--quiet")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if os.path.exists(c.path("run.jsonl")) and events(c.log(), "step.start", "long"):
                    break
                time.sleep(0.05)
            check(events(c.log(), "step.start", "long"), "the long step started")
            p.send_signal(signal.SIGTERM)
            while time.monotonic() < deadline and ("DELETE", "/drill-copy") not in stub.requests:
                time.sleep(0.02)
            check(("DELETE", "/drill-copy") in stub.requests, "teardown began after SIGTERM")
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(p.returncode == 1, f"a stopped drill exits 1 (got {p.returncode})")
        log = c.log()
        te = events(log, "shadow.teardown.end")
        check(te and te[0]["data"]["status"] == "ok", f"the teardown ended ok: {te}")
        td = [r for r in events(log, "step.end", "remove-copy")]
        check(td and td[0]["data"]["status"] == "ok",
              f"the slow teardown step was not interrupted by the second signal: {td}")
        check(events(log, "run.end"), "run.end is written")
    finally:
        stub.close()


def test_a_shadow_drill_never_holds_off_a_real_run(c):
    """A drill takes the runbook's lock keys under "shadow:": the real failover of the same
    runbook starts while a drill holds them (a game day must never block the real thing), a
    second drill of it is refused (exit 3) naming the first, and run.start records the keys."""
    stub = Stub()
    p = None
    try:
        rb = runbook(c, stub, """
          - id: long
            action: sleep
            with: { duration: 60s }
        """)
        p = c.spawn("run", rb, "--shadow", "--audit", "drill.jsonl", "--quiet")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                os.path.exists(c.path("drill.jsonl")) and
                events(c.log("drill.jsonl"), "step.start", "long")):
            time.sleep(0.05)
        start = events(c.log("drill.jsonl"), "run.start")[0]["data"]
        check(start["lock"] == ["shadow:shadow-e2e"], f"the drill's keys: {start['lock']}")
        r = c.drbook("run", rb, "--shadow", "--audit", "drill2.jsonl", "--quiet")
        check(r.code == 3 and "shadow:shadow-e2e" in r.err, "a second drill is refused", r)
        real = c.write("real.yaml", open(rb).read().replace("duration: 60s", "duration: 0s"))
        r = c.drbook("run", real, "--audit", "real.jsonl", "--quiet")
        check(r.code == 0, "the real run is not held off by the drill", r)
        check(events(c.log("real.jsonl"), "run.start")[0]["data"]["lock"] == ["shadow-e2e"],
              "the real run takes the runbook's own key")
    finally:
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except Exception:  # noqa: BLE001
                p.kill()
                p.wait()
        stub.close()


def test_a_killed_shadow_drill_is_not_resumed(c):
    stub = Stub()
    try:
        rb = runbook(c, stub, """
          - id: long
            action: sleep
            with: { duration: 60s }
        """)
        p = c.spawn("run", rb, "--shadow", "--audit", "run.jsonl", "--quiet")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                    os.path.exists(c.path("run.jsonl")) and
                    events(c.log(), "step.start", "long")):
                time.sleep(0.05)
        finally:
            p.kill()
            p.wait()
        check(not events(c.log(), "run.end"), "killed: the log has no run.end")
        n = len(stub.requests)
        r = c.drbook("resume", "run.jsonl")
        check(r.code == 2 and "shadow drill" in r.err and "not resumed" in r.err,
              "resume refuses a shadow drill's log, saying what to do", r)
        check(len(stub.requests) == n, "and sends nothing")
    finally:
        stub.close()


def test_runbook_without_shadow_section_refuses_shadow_with_exit_2(c):
    rb = c.write("plain.yaml", """
        version: 1
        name: plain
        steps:
          - id: touch
            action: exec
            with: { argv: [touch, ran] }
    """)
    r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
    check(r.code == 2, "exit 2", r)
    check("no shadow: section" in r.err, "the error says why", r)
    check(not os.path.exists(c.path("ran")) and not os.path.exists(c.path("run.jsonl")),
          "nothing ran and no log was opened")
    r = c.drbook("plan", rb, "--shadow")
    check(r.code == 2 and "does not apply" in r.err, "plan takes no --shadow", r)


def test_shadow_resource_names(c):
    # drb_shadow_name through the engine: each url's last component decides
    stub = Stub()
    try:
        ok = ["/drill-a", "/x/drill-b/", "/y/drill-c?force=1", "/drill-d#frag"]
        bad = ["/drill", "/drillx", "/drill-e/prod", "/prod-drill-f"]
        steps = "".join(f"""
          - id: s{i}
            action: http.request
            critical: false
            on_failure: continue
            with: {{ method: POST, url: "{stub.url(p)}" }}
        """ for i, p in enumerate(ok))
        rb = runbook(c, stub, steps)
        r = c.drbook("run", rb, "--shadow", "--audit", "run.jsonl")
        check(r.code == 0, "shadow names are allowed", r)
        for p in bad:
            stub.requests.clear()
            rb = runbook(c, stub, f"""
              - id: s
                action: http.request
                with: {{ method: POST, url: "{stub.url(p)}" }}
            """)
            r = c.drbook("run", rb, "--shadow", "--audit", "run2.jsonl")
            check(r.code == 1 and p.split("?")[0] not in stub.paths(),
                  f"{p} is not a shadow resource: refused: {stub.requests}", r)
            os.unlink(c.path("run2.jsonl"))
    finally:
        stub.close()


if __name__ == "__main__":
    main(globals())
