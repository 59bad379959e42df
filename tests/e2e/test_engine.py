"""End-to-end tests of the engine through the CLI: the example runbooks, parallel fan-out,
approvals, plan, retries, polling, timeouts, rollback, failure policies, sandbox limits,
secrets and the run lock."""
import json
import os
import signal
import subprocess
import time

from drbtest import EXAMPLES, SRC, check, events, main


def test_hello_example_succeeds_and_log_verifies(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "hello.yaml"), "--drill", "--yes",
                 "--audit", "run.jsonl")
    check(r.code == 0, "hello.yaml should succeed", r)
    check("succeeded" in r.out and "audit log:" in r.out, "summary missing", r)
    log = c.log()
    check(log[0]["event"] == "run.start" and log[-1]["event"] == "run.end", "log frame")
    check(log[0]["data"]["drill"] is True, "drill recorded")
    check(log[-1]["data"]["status"] == "succeeded", "run.end status")
    check(len(events(log, "step.end")) >= 6 + 5, "a step.end per step and child")
    v = c.drbook("audit", "verify", "run.jsonl")
    check(v.code == 0, "audit verify", v)


def test_parallel_fanout_runs_concurrently(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "--audit", "run.jsonl")
    check(r.code == 0, "parallel run", r)
    ends = events(c.log(), "step.end")
    children = [e for e in ends if e["step"].startswith("fan-out[")]
    check(len(children) == 8, f"8 children, got {len(children)}")
    parent = [e for e in ends if e["step"] == "fan-out"][0]
    dur = parent["data"]["duration_ms"]
    check(900 <= dur < 2500, f"8 x 1s in parallel should take ~1s, took {dur} ms")


def test_for_each_lua_children_each_see_their_own_item(c):
    # the loop variable is bound for a child's script under the same Lua lock as the script
    # runs: children running side by side never read each other's item
    rb = c.write("race.yaml", """
        version: 1
        name: race
        steps:
          - id: each
            for_each: "{ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }"
            as: it
            max_parallel: 8
            action: lua
            read_only: true
            script: return { got = it }
    """)
    wrong = []
    for n in range(6):
        log = f"run{n}.jsonl"
        r = c.drbook("run", rb, "--audit", log)
        check(r.code == 0, "the fan-out succeeds", r)
        items = {e["step"]: e["data"]["item"] for e in events(c.log(log), "step.start")
                 if e["step"].startswith("each[")}
        for e in events(c.log(log), "step.end"):
            if e["step"] in items and e["data"]["result"]["got"] != items[e["step"]]:
                wrong.append((n, e["step"], items[e["step"]], e["data"]["result"]["got"]))
    check(not wrong, f"a child's script read another child's item: {wrong}")


def test_approval_without_terminal_is_refused_with_exit_3(c):
    rb = c.write("a.yaml", """
        version: 1
        name: needs-approval
        steps:
          - id: gate
            action: approval
            with: { message: "go?" }
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "approval with no terminal and no flag -> exit 3", r)
    check("--approve gate" in r.out + r.err, "message names the flag", r)
    check(not os.path.exists(c.path("changed")), "nothing after the gate ran")
    check(c.log()[-1]["data"]["status"] == "refused", "run.end refused")
    r = c.drbook("run", rb, "--approve", "gate", "--audit", "run2.jsonl")
    check(r.code == 0 and os.path.exists(c.path("changed")), "--approve gate lets it run", r)
    appr = [e for e in c.log("run2.jsonl") if e["event"] == "approval"]
    check(appr and appr[-1]["data"]["approved"] is True, "approval event recorded")


def test_denied_approval_after_a_change_rolls_back_and_fails(c):
    rb = c.write("a2.yaml", """
        version: 1
        name: approval-midway
        steps:
          - id: first
            action: exec
            with: { argv: [touch, first] }
            rollback:
              action: exec
              with: { argv: [rm, first] }
          - id: gate
            action: approval
            with: { message: "go on?" }
          - id: second
            action: exec
            with: { argv: [touch, second] }
        on_failure: rollback
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a change was made before the gate: a failure, not a refusal", r)
    check(not os.path.exists(c.path("first")), "the first step was rolled back")
    check(not os.path.exists(c.path("second")), "nothing after the gate ran")
    check(c.log()[-1]["data"]["status"] == "rolled_back", "run.end rolled_back")


def test_plan_calls_no_mutating_action(c):
    rb = c.write("p.yaml", """
        version: 1
        name: plan-me
        params:
          target: { type: string, default: blue }
        preflight:
          - id: look
            action: exec
            read_only: true
            with: { argv: [sh, -c, "echo looked > looked"] }
        steps:
          - id: change
            action: exec
            with: { argv: [sh, -c, "echo ${params.target} > changed"] }
          - id: later
            action: lua
            script: return 1
    """)
    r = c.drbook("plan", rb, "-p", "target=green", "--audit", "run.jsonl")
    check(r.code == 0, "plan succeeds", r)
    check(os.path.exists(c.path("looked")), "preflight ran")
    check(not os.path.exists(c.path("changed")), "plan must not run the mutating step")
    check("echo green > changed" in r.out, "plan shows interpolated arguments", r)
    check(not events(c.log(), "step.start", "change"), "no step.start for steps in plan")


def test_preflight_when_false_skips_the_check(c):
    rb = c.write("pw.yaml", """
        version: 1
        name: preflight-when
        params:
          strict: { type: bool, default: false }
        preflight:
          - id: strict-only
            action: lua
            read_only: true
            when: params.strict
            script: error("strict check failed")
          - id: optional
            action: lua
            read_only: true
            critical: false
            script: error("advisory only")
        steps:
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0 and os.path.exists(c.path("changed")),
          "a skipped check and a non-critical failure do not refuse the run", r)
    r = c.drbook("run", rb, "-p", "strict=true", "--audit", "run2.jsonl")
    check(r.code == 3, "the strict check refuses", r)


def test_preflight_rejects_mutating_lua_call(c):
    rb = c.write("p.yaml", """
        version: 1
        name: sneaky
        preflight:
          - id: sneaky
            action: lua
            read_only: true
            script: return exec{argv = {"touch", "mutated"}}
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "preflight failure -> exit 3", r)
    check(not os.path.exists(c.path("mutated")), "the mutating call was refused")
    check("mutating" in r.out + r.err, "says why", r)


def test_retry_with_backoff_then_success(c):
    rb = c.write("r.yaml", """
        version: 1
        name: flaky
        steps:
          - id: flaky
            action: exec
            retry: { attempts: 5, backoff: exponential, initial: 100ms, max: 200ms }
            with: { argv: [sh, -c, "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; [ $n -ge 3 ]"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "succeeds on the third attempt", r)
    log = c.log()
    check(len(events(log, "step.retry", "flaky")) == 2, "two retries logged")
    check(events(log, "step.end", "flaky")[0]["data"]["attempts"] == 3, "attempts == 3")
    for e in events(log, "step.retry"):
        check(0 <= e["data"]["delay_s"] <= 0.2, "delay within the cap")


def test_retry_gives_up_after_attempts(c):
    rb = c.write("r.yaml", """
        version: 1
        name: broken
        steps:
          - id: broken
            action: exec
            retry: { attempts: 3, initial: 10ms, max: 10ms }
            with: { argv: [sh, -c, "echo x >> tries; exit 1"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "fails with exit 1", r)
    with open(c.path("tries")) as f:
        check(len(f.readlines()) == 3, "exactly 3 attempts")


def test_until_polls_every_interval(c):
    rb = c.write("u.yaml", """
        version: 1
        name: poll
        steps:
          - id: wait
            action: exec
            read_only: true
            with: { argv: [sh, -c, "echo x >> polls; wc -l < polls"] }
            until: tonumber(result.stdout) >= 4
            every: 100ms
            timeout: 10s
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "until met on the 4th poll", r)
    with open(c.path("polls")) as f:
        check(len(f.readlines()) == 4, "polled exactly 4 times")


def test_until_not_met_before_timeout_fails(c):
    rb = c.write("u.yaml", """
        version: 1
        name: poll-timeout
        steps:
          - id: wait
            action: sleep
            with: { duration: 0s }
            until: false
            every: 200ms
            timeout: 1s
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "until not met before any change -> refused", r)
    check(r.elapsed < 5, "gave up at the timeout")
    end = events(c.log(), "step.end", "wait")[0]["data"]
    check("not met" in end["error"], end["error"])


def test_step_timeout_stops_a_hung_command(c):
    rb = c.write("t.yaml", """
        version: 1
        name: hung
        steps:
          - id: hung
            action: exec
            timeout: 1s
            with: { argv: [sleep, "30"] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "timeout -> failed", r)
    check(r.elapsed < 8, f"stopped near the timeout, took {r.elapsed:.1f}s")


def test_run_deadline(c):
    rb = c.write("d.yaml", """
        version: 1
        name: deadline
        deadline: 1s
        steps:
          - id: a
            action: exec
            with: { argv: [sleep, "0.7"] }
          - id: b
            action: sleep
            with: { duration: 700ms }
          - id: c
            action: exec
            with: { argv: [touch, reached] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "deadline passed -> failed", r)
    check(not os.path.exists(c.path("reached")), "no step after the deadline")


def test_rollback_runs_compensations_newest_first(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "rollback.yaml"), "-p",
                 f"journal={c.path('journal')}", "--audit", "run.jsonl")
    check(r.code == 1, "failed run with rollback exits 1", r)
    with open(c.path("journal")) as f:
        lines = f.read().split()
    check(lines == ["do-first", "do-second-x", "do-second-y", "do-third", "undo-second-y",
                    "undo-second-x", "undo-first"], f"journal order: {lines}")
    log = c.log()
    check(log[-1]["data"]["status"] == "rolled_back", "status rolled_back")
    check(len(events(log, "rollback.end")) == 3, "three compensations logged")


def test_on_failure_continue_and_critical(c):
    rb = c.write("c.yaml", """
        version: 1
        name: policies
        steps:
          - id: optional
            action: exec
            critical: false
            with: { argv: ["false"] }
          - id: goes-on
            action: exec
            on_failure: continue
            with: { argv: ["false"] }
          - id: last
            action: exec
            with: { argv: [touch, last] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a critical failure with continue still ends with exit 1", r)
    check(os.path.exists(c.path("last")), "continue went on")
    rb2 = c.write("c2.yaml", """
        version: 1
        name: noncritical
        steps:
          - id: optional
            action: exec
            critical: false
            with: { argv: ["false"] }
          - id: last
            action: exec
            with: { argv: [touch, last2] }
    """)
    r = c.drbook("run", rb2, "--audit", "run2.jsonl")
    check(r.code == 0 and os.path.exists(c.path("last2")), "non-critical failure: exit 0", r)


def test_failed_guard_before_any_change_is_a_refusal(c):
    rb = c.write("g.yaml", """
        version: 1
        name: guard
        params:
          lag: { type: int, default: 120 }
        steps:
          - id: lag-within-budget
            action: lua
            read_only: true
            script: return { lag = params.lag }
            assert: result.lag <= 60
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 3, "a read-only guard failing before any change -> exit 3", r)
    check(not os.path.exists(c.path("changed")), "nothing changed")
    check(c.log()[-1]["data"]["status"] == "refused", "run.end refused")
    r = c.drbook("run", rb, "-p", "lag=5", "--audit", "run2.jsonl")
    check(r.code == 0 and os.path.exists(c.path("changed")), "guard passes", r)


def test_action_error_before_any_change_is_a_failure(c):
    rb = c.write("e.yaml", """
        version: 1
        name: error-first
        steps:
          - id: look
            action: http.request
            with: { url: "http://127.0.0.1:9/nothing-listens-here", timeout: 2s }
          - id: change
            action: exec
            with: { argv: [touch, changed] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "an action error (not a guard) ends the run failed, exit 1", r)
    check(not os.path.exists(c.path("changed")), "nothing after it ran")


def test_run_global(c):
    rb = c.write("g.yaml", """
        version: 1
        name: run-global
        steps:
          - id: look
            action: lua
            read_only: true
            script: return { id = run.id, incident = run.incident_start, drill = run.drill }
    """)
    r = c.drbook("run", rb, "--drill", "--incident-start", "2026-11-25T10:00:00Z",
                 "--audit", "run.jsonl")
    check(r.code == 0, "run", r)
    log = c.log()
    res = events(log, "step.end", "look")[0]["data"]["result"]
    check(res == {"id": log[0]["run"], "incident": "2026-11-25T10:00:00.000Z", "drill": True},
          f"{res}")


def test_when_skips(c):
    rb = c.write("w.yaml", """
        version: 1
        name: when
        params:
          go: { type: bool, default: false }
        steps:
          - id: maybe
            action: exec
            when: params.go
            with: { argv: [touch, maybe] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0 and not os.path.exists(c.path("maybe")), "skipped", r)
    check(events(c.log(), "step.end", "maybe")[0]["data"]["status"] == "skipped", "logged")
    r = c.drbook("run", rb, "-p", "go=true", "--audit", "run2.jsonl")
    check(r.code == 0 and os.path.exists(c.path("maybe")), "-p go=true runs it", r)


def test_instruction_limit_in_assert(c):
    rb = c.write("l.yaml", """
        version: 1
        name: loop
        steps:
          - id: spin
            action: sleep
            with: { duration: 0s }
            assert: (function() while true do end end)()
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "infinite loop in assert fails the step (an error, not a guard)", r)
    check(r.elapsed < 3, f"ended quickly ({r.elapsed:.2f}s)")
    err = events(c.log(), "step.end", "spin")[0]["data"]["error"]
    check("instruction limit" in err, err)


def test_memory_limit_in_lua_step(c):
    rb = c.write("m.yaml", """
        version: 1
        name: bomb
        steps:
          - id: bomb
            action: lua
            script: local s = string.rep("x", 1 << 30); return #s
          - id: after
            action: lua
            on_failure: continue
            script: return 1
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "memory bomb fails the step, the process survives", r)
    err = events(c.log(), "step.end", "bomb")[0]["data"]["error"]
    check("memory" in err, err)


def test_sandbox_has_no_io_or_os_execute(c):
    rb = c.write("s.yaml", """
        version: 1
        name: escape
        steps:
          - id: io
            action: lua
            on_failure: continue
            script: return io.open("/etc/passwd")
          - id: osx
            action: lua
            on_failure: continue
            script: return os.execute("touch pwned")
          - id: req
            action: lua
            on_failure: continue
            script: return require("os")
          - id: dbg
            action: lua
            on_failure: continue
            script: return debug.getinfo(1)
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "every escape fails", r)
    check(not os.path.exists(c.path("pwned")), "os.execute did not run")
    for s in ("io", "osx", "req", "dbg"):
        check(events(c.log(), "step.end", s)[0]["data"]["status"] == "failed", s)


def test_secret_params_never_reach_log_or_output(c):
    rb = c.write("x.yaml", """
        version: 1
        name: secret
        params:
          token: { type: string, secret: true }
        steps:
          - id: use
            action: exec
            with: { argv: [sh, -c, "test -n \\"$1\\"", x, "${params.token}"] }
    """)
    secret = "s3cr3t-Value-9f8e7d"
    r = c.drbook("run", rb, "-p", f"token={secret}", "--audit", "run.jsonl", "--json")
    check(r.code == 0, "run ok", r)
    with open(c.path("run.jsonl")) as f:
        check(secret not in f.read(), "secret in the audit log")
    check(secret not in r.out and secret not in r.err, "secret in the output")
    rb2 = c.write("x2.yaml", """
        version: 1
        name: secret-in-error
        params:
          password: { type: string, secret: true }
        steps:
          - id: leak
            action: lua
            script: error("cannot log in with " .. params.password)
    """)
    r = c.drbook("run", rb2, "-p", f"password={secret}", "--audit", "run2.jsonl")
    check(r.code == 1, "failing run", r)
    check(secret not in r.out and secret not in r.err, "secret in an error's summary", r)
    check(secret not in open(c.path("run2.jsonl")).read(), "secret in the log's error")


def test_json_output_is_one_event_per_line(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "each=10ms", "--json",
                 "--audit", "run.jsonl")
    check(r.code == 0, "run ok", r)
    lines = [json.loads(l) for l in r.out.splitlines()]
    check(lines[0]["event"] == "run.start", "first event")
    check(lines[-1]["event"] == "summary" and lines[-1]["exit_code"] == 0, "summary last")


def test_quiet_prints_nothing(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "each=10ms", "--quiet",
                 "--audit", "run.jsonl")
    check(r.code == 0 and r.out == "", "quiet", r)


def test_run_lock_refuses_a_second_run(c):
    rb = c.write("slow.yaml", """
        version: 1
        name: slow
        lock: failover-prod
        steps:
          - id: hold
            action: sleep
            with: { duration: 20s }
    """)
    first = c.spawn("run", rb, "--audit", "first.jsonl", "--quiet")
    try:
        for _ in range(100):
            if os.path.exists(c.path("first.jsonl")) and "step.start" in open(c.path("first.jsonl")).read():
                break
            time.sleep(0.05)
        r = c.drbook("run", rb, "--audit", "second.jsonl")
        check(r.code == 3, "second run while the lock is held -> exit 3", r)
        check("lock" in r.out + r.err, "says it is the lock", r)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    r = c.drbook("run", c.write("quick.yaml", """
        version: 1
        name: slow
        lock: failover-prod
        steps:
          - id: hold
            action: sleep
            with: { duration: 0s }
    """), "--audit", "third.jsonl")
    check(r.code == 0, "a killed holder leaves no stale lock", r)


def test_bad_parameter_is_usage_error(c):
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "nosuch=1")
    check(r.code == 2 and "nosuch" in r.err, "unknown parameter -> exit 2", r)
    r = c.drbook("run", os.path.join(EXAMPLES, "parallel.yaml"), "-p", "each=soon")
    check(r.code == 2 and "each" in r.err, "bad duration -> exit 2", r)


def test_http_request_action(c):
    server = subprocess.Popen(["python3", "-c", """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"healthy": true}'
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.timeout = 30
s.handle_request(); s.handle_request()
"""], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        rb = c.write("h.yaml", f"""
            version: 1
            name: http
            preflight:
              - id: health
                action: http.request
                with: {{ url: "http://127.0.0.1:{port}/health" }}
                assert: result.status == 200
            steps:
              - id: again
                action: http.request
                with: {{ method: GET, url: "http://127.0.0.1:{port}/health" }}
                assert: result.status == 200 and result.body:find("healthy") ~= nil
        """)
        r = c.drbook("run", rb, "--audit", "run.jsonl")
        check(r.code == 0, "http.request GET in preflight and steps", r)
        check(events(c.log(), "call"), "the HTTP call is logged as a call event")
    finally:
        server.kill()
        server.wait()


def test_notifications_at_start_failure_and_end(c):
    hooks = subprocess.Popen(["python3", os.path.join(SRC, "tests", "unit", "notify",
                                                      "fake_hooks.py"), "--watch-stdin"],
                             stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        port = int(hooks.stdout.readline())
        secret_path = "/services/T000/B000/s3cr3tW3bh00k"
        rb = c.write("n.yaml", """
            version: 1
            name: notifying
            params:
              fail: { type: bool, default: false }
            notify:
              - on: [start, end]
                action: notify
                with: { channel: slack, text: "run ${run.event}: ${run.status or 'running'}" }
              - on: [failure]
                action: notify
                with: { channel: slack, severity: critical, text: "FAILED" }
            steps:
              - id: work
                action: exec
                with: { argv: [sh, -c, "${params.fail and 'exit 1' or 'exit 0'}"] }
        """)
        env = {"DRBOOK_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{port}{secret_path}"}
        r = c.drbook("run", rb, "--drill", "--audit", "run.jsonl", env=env)
        check(r.code == 0, "run with notifications", r)
        r = c.drbook("run", rb, "-p", "fail=true", "--audit", "run2.jsonl", env=env)
        check(r.code == 1, "failing run", r)
        import urllib.request
        sent = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_requests").read())
        texts = [json.loads(q["body"])["text"] for q in sent]
        check(len(texts) == 5, f"start+end, then start+failure+end: {texts}")
        check("[DRILL] run start: running" in texts[0] and "run end: succeeded" in texts[1],
              f"drill prefix and run status: {texts}")
        check("FAILED" in texts[3] and "run end: failed" in texts[4], f"{texts}")
        for log in ("run.jsonl", "run2.jsonl"):
            check(secret_path not in open(c.path(log)).read(), "webhook secret not logged")
    finally:
        hooks.kill()
        hooks.wait()


def test_tls_is_verified_and_ca_file_trusts_a_private_ca(c):
    cert, key = c.path("cert.pem"), c.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    server = subprocess.Popen(["python3", "-c", f"""
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('{cert}', '{key}')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.timeout = 20
for _ in range(4):
    try:
        s.handle_request()
    except Exception:
        pass
"""], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        rb = c.write("tls.yaml", f"""
            version: 1
            name: tls
            params:
              ca: {{ type: string, default: "" }}
            steps:
              - id: get
                action: http.request
                with: {{ url: "https://127.0.0.1:{port}/", ca_file: "${{params.ca ~= '' and params.ca or nil}}" }}
                assert: result.status == 200
        """)
        r = c.drbook("run", rb, "--audit", "run.jsonl")
        check(r.code == 1, "a self-signed certificate is refused (verification is on)", r)
        err = events(c.log(), "step.end", "get")[0]["data"]["error"]
        check("TLS" in err or "certificate" in err, f"says why: {err}")
        r = c.drbook("run", rb, "-p", f"ca={cert}", "--audit", "run2.jsonl")
        check(r.code == 0, "trusted through ca_file", r)
    finally:
        server.kill()
        server.wait()



def test_denied_action_is_attempted_once_under_retry(c):
    rb = c.write("d.yaml", """
        version: 1
        name: denied
        steps:
          - id: sneaky
            action: lua
            read_only: true
            retry: { attempts: 4, initial: 10ms, max: 10ms }
            script: return exec{argv = {"touch", "mutated"}}
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a denied call fails the step and the run", r)
    log = c.log()
    end = events(log, "step.end", "sneaky")[0]["data"]
    check(end["code"] == "denied" and end["attempts"] == 1,
          f"a denial is final: one attempt, not retried: {end}")
    check(not events(log, "step.retry"), "no step.retry for a denial")
    check(not os.path.exists(c.path("mutated")), "the mutating call was refused")


def test_invalid_argument_is_attempted_once_under_retry(c):
    rb = c.write("i.yaml", """
        version: 1
        name: invalid
        steps:
          - id: bad
            action: http.request
            retry: { attempts: 4, initial: 10ms, max: 10ms }
            with: { url: "ftp://127.0.0.1/x" }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "an invalid argument fails the step", r)
    end = events(c.log(), "step.end", "bad")[0]["data"]
    check(end["code"] == "invalid" and end["attempts"] == 1,
          f"what cannot succeed is not retried: {end}")
    check(not events(c.log(), "step.retry"), "no step.retry")


# A server that appends each request's method to the file argv[1] and answers every request
# with status argv[2] (default 200) and body argv[3] (default "ok").
COUNTING_SERVER = """
import http.server, sys
status = int(sys.argv[2]) if len(sys.argv) > 2 else 200
body = (sys.argv[3] if len(sys.argv) > 3 else "ok").encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        with open(sys.argv[1], "a") as f:
            f.write(self.command + "\\n")
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = answer
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def start_counting_server(*args):
    server = subprocess.Popen(["python3", "-c", COUNTING_SERVER, *args], stdout=subprocess.PIPE,
                              text=True)
    try:
        return server, int(server.stdout.readline())
    except Exception:
        server.kill()
        server.wait()
        raise


def test_aws_access_denied_is_sent_once_under_retry(c):
    # a real AccessDenied answer: neither the HTTP layer nor the step's retry: tries again
    received = c.path("received")
    denied = ('<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
              '<Message>not authorized</Message></Error><RequestId>1</RequestId>'
              '</ErrorResponse>')
    server, port = start_counting_server(received, "403", denied)
    try:
        rb = c.write("a.yaml", """
            version: 1
            name: aws-denied
            steps:
              - id: who
                action: aws.sts.get_caller_identity
                retry: { attempts: 4, initial: 10ms, max: 10ms }
        """)
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-example",
               "AWS_CONFIG_FILE": c.path("none"), "AWS_SHARED_CREDENTIALS_FILE": c.path("none"),
               "AWS_PROFILE": ""}
        r = c.drbook("run", rb, "--audit", "run.jsonl", env=env)
        check(r.code == 1, "AccessDenied fails the run", r)
        end = events(c.log(), "step.end", "who")[0]["data"]
        check(end["code"] == "denied" and end["attempts"] == 1, f"one attempt: {end}")
        sent = open(received).read().split()
        check(len(sent) == 1, f"the server received {len(sent)} requests, not exactly 1")
    finally:
        server.kill()
        server.wait()


def test_preflight_and_plan_refuse_mutating_calls_at_invoke(c):
    # the method comes from a parameter: the loader cannot see it, the engine must refuse
    # the call when it is made, before anything is sent
    received = c.path("received")
    server, port = start_counting_server(received)
    try:
        rb = c.write("p.yaml", f"""
            version: 1
            name: preflight-method
            params:
              method: {{ type: string, default: GET }}
            preflight:
              - id: probe
                action: http.request
                with: {{ method: "${{params.method}}", url: "http://127.0.0.1:{port}/x", body: "{{}}" }}
            steps:
              - id: s
                action: sleep
                with: {{ duration: 0s }}
        """)
        r = c.drbook("run", rb, "--audit", "get.jsonl")
        check(r.code == 0, "a GET in preflight is allowed", r)
        check(open(received).read().split() == ["GET"], "and the server sees it")
        os.unlink(received)
        for cmd in ("run", "plan"):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                r = c.drbook(cmd, rb, "-p", f"method={method}", "--audit",
                             f"{cmd}-{method}.jsonl")
                check(r.code == 3, f"{cmd}: a {method} in preflight refuses the run", r)
                check("mutating" in r.out + r.err or "not read-only" in r.out + r.err,
                      "says why", r)
                check(not os.path.exists(received),
                      f"{cmd}: the server received a {method}: "
                      f"{open(received).read() if os.path.exists(received) else ''}")
                end = events(c.log(f"{cmd}-{method}.jsonl"), "step.end", "probe")[0]["data"]
                check(end["code"] == "denied", f"refused as denied: {end}")
    finally:
        server.kill()
        server.wait()


def test_max_parallel_bounds_the_fanout(c):
    rb = c.write("m.yaml", """
        version: 1
        name: bounded
        params:
          items: { type: list, default: [1, 2, 3, 4, 5, 6] }
        steps:
          - id: fan
            for_each: params.items
            max_parallel: 2
            action: sleep
            with: { duration: 1s }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "run ok", r)
    log = c.log()
    edges = []
    for e in log:
        if e["step"] and e["step"].startswith("fan[") and e["event"] in ("step.start",
                                                                          "step.end"):
            edges.append((e["ts"], 0 if e["event"] == "step.end" else 1))
    edges.sort()  # at one instant an end comes before a start
    flight = peak = 0
    for _, start in edges:
        flight += 1 if start else -1
        peak = max(peak, flight)
    check(len(edges) == 12, f"six children started and ended: {edges}")
    check(peak == 2, f"at most 2 children in flight (and 2 at once): peak {peak}")
    dur = events(log, "step.end", "fan")[0]["data"]["duration_ms"]
    check(2900 <= dur < 6000, f"six 1 s children two at a time take about 3 s: {dur} ms")


def test_run_deadline_cuts_a_running_step(c):
    rb = c.write("d.yaml", """
        version: 1
        name: deadline-in-step
        deadline: 1s
        steps:
          - id: long
            action: exec
            with: { argv: [sleep, "30"] }
          - id: after
            action: exec
            with: { argv: [touch, reached] }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "the deadline fails the run", r)
    check(r.elapsed < 10, f"the running step is stopped at the deadline ({r.elapsed:.1f} s)")
    check(not os.path.exists(c.path("reached")), "nothing after it")

if __name__ == "__main__":
    main(globals())
