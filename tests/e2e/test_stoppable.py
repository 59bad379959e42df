"""Hostile Lua in every place drbook runs Lua: a script, when, assert, until, a module being
loaded, a custom action, and plan's preflight. Each hides an endless loop in an xpcall message
handler (which Lua runs with hooks off when the budget hook raised) or behind an error object's
__tostring; each run must end on its own within seconds, record run.end, and free its lock."""
import json
import os

from drbtest import check, main

LOOP = "xpcall(function() while true do end end, function() while true do end end)"

CASES = {
    "script": f"""
        steps:
          - id: s
            action: lua
            script: |
              {LOOP}
              return "escaped"
    """,
    "tail-call": """
        steps:
          - id: s
            action: lua
            script: return xpcall(function() while true do end end, function() while true do end end)
    """,
    "when": f"""
        steps:
          - id: s
            action: sleep
            with: {{ duration: 0s }}
            when: {LOOP}
    """,
    "assert": f"""
        steps:
          - id: s
            action: sleep
            with: {{ duration: 0s }}
            assert: {LOOP}
    """,
    "until": f"""
        steps:
          - id: s
            action: sleep
            with: {{ duration: 0s }}
            until: {LOOP}
            every: 100ms
            timeout: 5s
    """,
    "tostring": """
        steps:
          - id: s
            action: lua
            script: error(setmetatable({}, {__tostring = function() while true do end end}))
    """,
    "module": """
        lua: [hang]
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """,
}


def write_case(c, name, body):
    c.write("hang.lua", f"{LOOP}\nreturn {{}}\n")
    return c.write(f"{name}.yaml", f"""
        version: 1
        name: hostile-{name}
        lock: [hostile]
    """ + body)


def ends(c, name, rb, *args):
    r = c.drbook(*args, rb, "--audit", f"{name}.jsonl", timeout=60)
    check(r.elapsed < 30, f"{name}: ended on its own ({r.elapsed:.1f}s)", r)
    check(r.code != 0, f"{name}: the hostile code did not pass", r)
    return r


def test_every_place_lua_runs_ends(c):
    for name, body in CASES.items():
        rb = write_case(c, name, body)
        r = ends(c, name, rb, "run")
        if os.path.exists(c.path(f"{name}.jsonl")):
            log = [json.loads(x) for x in open(c.path(f"{name}.jsonl"))]
            check(log[-1]["event"] == "run.end", f"{name}: run.end recorded")
        else:
            check(r.code == 2, f"{name}: refused at load (exit 2) when no log was started", r)
    # the lock was freed every time: the same key is free now
    rb = write_case(c, "after", """
        steps:
          - id: s
            action: sleep
            with: { duration: 0s }
    """)
    r = c.drbook("run", rb, "--audit", "after.jsonl")
    check(r.code == 0, "the lock is free after the hostile runs", r)


def test_plan_preflight_and_validate_end(c):
    rb = write_case(c, "plan", f"""
        preflight:
          - id: p
            action: sleep
            with: {{ duration: 0s }}
            assert: {LOOP}
        steps:
          - id: s
            action: sleep
            with: {{ duration: 0s }}
    """)
    ends(c, "plan", rb, "plan")
    r = c.drbook("validate", rb, timeout=60)
    check(r.elapsed < 30, "validate ends", r)


if __name__ == "__main__":
    main(globals())
