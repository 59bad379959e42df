"""Bounded everywhere (issue 9 point 4): a step result that holds one large string many times,
Lua print per step, a huge for_each list, and one time budget per step (attempts, backoff,
polls and the step's own Lua) are each stopped at their cap with a clear error naming the
step, never by running out of memory or time."""
import json
import os
import resource

from drbtest import check, events, main


def test_result_with_many_references_is_refused(c):
    # 12 references to one 2 MiB string: 24 MiB of JSON for 2 MiB of Lua memory
    rb = c.write("conv.yaml", """
        version: 1
        name: conv-cap
        steps:
          - id: big
            action: lua
            script: |
              local s = string.rep("x", 2 * 1024 * 1024)
              local t = {}
              for i = 1, 12 do t[i] = s end
              return t
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a result over the cap fails the run", r)
    end = events(c.log(), "step.end", "big")[0]["data"]
    check("too large to convert to JSON: over 16 MiB" in end["error"], f"the cap is named: {end}")
    check(end["code"] == "limit", f"a limit, not a script error: {end}")
    check("step 'big'" in r.err and "conv.yaml:6" in r.err, "stderr names the step", r)
    check(os.path.getsize(c.path("run.jsonl")) < 64 * 1024, "nothing large reached the log")
    # the same data once (one 2 MiB string) is fine
    rb = c.write("ok.yaml", """
        version: 1
        name: conv-ok
        steps:
          - id: small
            action: lua
            script: |
              return {s = string.rep("y", 2 * 1024 * 1024)}
    """)
    r = c.drbook("run", rb, "--audit", "ok.jsonl")
    check(r.code == 0, "a 2 MiB result is below the cap", r)


def test_with_template_over_the_cap_is_refused(c):
    rb = c.write("with.yaml", """
        version: 1
        name: with-cap
        steps:
          - id: echo
            action: exec
            with:
              argv: ["true"]
              env: { A: "${(function() local s = string.rep('z', 9000000) return s .. s end)()}" }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "a with: value over the cap fails the step", r)
    end = events(c.log(), "step.end", "echo")[0]["data"]
    check("over 16 MiB" in end["error"], f"the cap is named: {end}")


PRINTS = """
    version: 1
    name: print-steps
    steps:
      - id: first
        action: lua
        script: |
          local line = string.rep("a", 50000)
          for i = 1, 60 do print(i, line) end
          return "first done"
      - id: second
        action: lua
        script: |
          print("second says hello")
          return "second done"
"""


def test_print_is_capped_per_step(c):
    rb = c.write("p.yaml", PRINTS)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 0, "the scripts go on past the cap", r)
    log = c.log()
    first = events(log, "lua.print", "first")
    cut = [p for p in first if p["data"].get("truncated")]
    check(len(cut) == 1, f"one truncation record for the first step, got {len(cut)}")
    check("1 MiB in this step" in cut[0]["data"]["line"], f"the per-step cap is named: {cut}")
    kept = sum(len(p["data"]["line"]) for p in first if not p["data"].get("truncated"))
    check(kept <= 1024 * 1024, f"at most 1 MiB kept for the step: {kept}")
    check(len(first) < 30, f"later prints of the step are dropped: {len(first)} records")
    check(first[-1] is cut[0], "nothing of the step is logged after its truncation record")
    second = events(log, "lua.print", "second")
    check([p["data"]["line"] for p in second] == ["second says hello"],
          f"the next step prints again (3 MiB is under the run's 8 MiB): {second}")


def big_list_runbook(c, n):
    items = json.dumps([f"s{i}" for i in range(n)])
    return c.write("fe.yaml", f"""
        version: 1
        name: fanout-cap
        params:
          services: {{ type: list, default: {items} }}
        steps:
          - id: scale
            for_each: params.services
            action: lua
            script: return item
    """)


def test_for_each_literal_list_over_the_cap_is_invalid(c):
    rb = big_list_runbook(c, 1001)
    r = c.drbook("validate", rb)
    check(r.code == 2, "a literal list over the cap is a validation error", r)
    check("fe.yaml:7:" in r.err and "1001 items, more than the 1000" in r.err,
          "the error names the place and the cap", r)
    rb = big_list_runbook(c, 1000)
    r = c.drbook("validate", rb)
    check(r.code == 0, "1000 items are allowed", r)


def test_for_each_value_over_the_cap_fails_at_run_time(c):
    rb = c.write("fe.yaml", """
        version: 1
        name: fanout-run-cap
        params:
          n: { type: int, default: 3 }
        steps:
          - id: scale
            for_each: "(function() local t = {} for i = 1, params.n do t[i] = i end return t end)()"
            action: lua
            script: return item
    """)
    r = c.drbook("run", rb, "--audit", "small.jsonl")
    check(r.code == 0, "a short list runs", r)
    r = c.drbook("plan", rb, "-p", "n=5000", "--audit", "plan.jsonl")
    check(r.code == 0 and "5000 items, more than the 1000 allowed: the run will fail this step"
          in r.out, "plan says so before the run, listing no items", r)
    r = c.drbook("run", rb, "-p", "n=5000", "--audit", "run.jsonl")
    check(r.code == 1, "a list over the cap fails the step", r)
    log = c.log()
    end = events(log, "step.end", "scale")[0]["data"]
    check("has 5000 items, more than the 1000 allowed" in end["error"], f"named: {end}")
    check(not events(log, "step.start", "scale[1]"), "no child started")


def test_lua_step_ends_at_its_timeout(c):
    # few VM instructions, much time each: only the step's own budget stops it early
    rb = c.write("spin.yaml", """
        version: 1
        name: lua-budget
        steps:
          - id: spin
            action: lua
            timeout: 1s
            script: |
              local x = ""
              while true do x = string.rep("ab", 30000):upper() end
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "the step fails", r)
    check(r.elapsed < 5, f"stopped near its 1 s timeout, not the 10 s Lua guard: {r.elapsed:.1f}s", r)
    end = events(c.log(), "step.end", "spin")[0]["data"]
    check("the step's time budget ran out" in end["error"], f"the budget is named: {end}")


def test_retries_share_the_step_timeout(c):
    # each attempt hangs; 4 attempts and their backoff must fit in the 2 s timeout together
    rb = c.write("retry.yaml", """
        version: 1
        name: retry-budget
        steps:
          - id: hang
            action: exec
            with: { argv: [sleep, "30"] }
            timeout: 2s
            retry: { attempts: 4, backoff: fixed, initial: 500ms }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    check(r.code == 1, "the step fails", r)
    end = events(c.log(), "step.end", "hang")[0]["data"]
    check(end["duration_ms"] < 3000, f"all attempts within the step's 2 s: {end}")
    check(r.elapsed < 8, f"the run took {r.elapsed:.1f}s", r)
    check("not retried: the step's time budget ends before attempt 2" in end["error"],
          f"the error says why no retry came: {end}")
    check(not events(c.log(), "step.retry", "hang"), "no retry announced that never came")


def test_until_polls_and_retries_stop_at_the_run_deadline(c):
    rb = c.write("until.yaml", """
        version: 1
        name: until-budget
        deadline: 2s
        steps:
          - id: wait
            action: exec
            read_only: true
            with: { argv: [sh, -c, "sleep 0.3; echo no"] }
            until: result.stdout == "yes"
            every: 1s
            retry: { attempts: 5, backoff: fixed, initial: 1s }
    """)
    r = c.drbook("run", rb, "--audit", "run.jsonl")
    # 3 when the deadline comes between checks (a check saying no), 1 when it stops a call
    check(r.code in (1, 3), "the wait fails", r)
    end = events(c.log(), "step.end", "wait")[0]["data"]
    check(end["duration_ms"] < 3500, f"polls end with the run's 2 s deadline: {end}")
    check(r.elapsed < 8, f"the run took {r.elapsed:.1f}s", r)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main(globals())
